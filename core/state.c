/* state.c — the back-end-independent half of the state interface: write sets, timer arrays, open/destroy.
 *
 * Nothing here talks to a store. A write set is a growable array of operations
 * that owns copies of every key and value handed to it, so the caller's buffers
 * may be reused at once; the back ends (state/state_mem.c, state/state_redis.c)
 * only read it. dashi_state_apply_chain() gives apply_chain()'s contract over a
 * back end that has only apply(). Copies are NUL-terminated for the debugger's sake (the length is
 * still what counts), and a value of a PUT, CHECK_EQ, TIMER_ADD or TIMER_CHECK is never NULL,
 * even when empty, so "empty" and "absent" cannot be confused downstream.
 * dashi_state_open() only picks a constructor, "memory" or a Redis URL; it is
 * the one reference from core/ to state/, a cycle between the two static
 * libraries that CMakeLists.txt declares so the linker repeats them.
 */
#include "core/state.h"

#include <stdlib.h>
#include <string.h>

/* A malloc'ed, NUL-terminated copy of len bytes of p (p may be NULL when len is 0). */
static char *copy_bytes(const char *p, size_t len) {
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    if (len)
        memcpy(c, p, len);
    c[len] = '\0';
    return c;
}

void dashi_writeset_init(dashi_writeset *ws) {
    if (!ws)
        return;
    ws->ops = NULL;
    ws->n = 0;
    ws->cap = 0;
}

void dashi_writeset_clear(dashi_writeset *ws) {
    if (!ws)
        return;
    for (size_t i = 0; i < ws->n; i++) {
        free(ws->ops[i].key);
        free(ws->ops[i].val);
    }
    free(ws->ops);
    dashi_writeset_init(ws);
}

dashi_err dashi_writeset_add(dashi_writeset *ws, dashi_ws_kind kind, const char *key, size_t key_len,
                             const char *val, size_t val_len, dashi_time due) {
    dashi_err err = DASHI_OK;
    char *k = NULL; /* owned until stored in ws */
    char *v = NULL; /* owned until stored in ws */
    int has_val = kind == DASHI_WS_PUT || kind == DASHI_WS_CHECK_EQ || kind == DASHI_WS_TIMER_ADD ||
                  kind == DASHI_WS_TIMER_CHECK;

    if (!ws || (unsigned)kind > DASHI_WS_TIMER_CHECK || (!key && key_len) || (has_val && !val && val_len)) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 8;
        dashi_ws_op *ops = realloc(ws->ops, cap * sizeof *ops);
        if (!ops) {
            err = DASHI_ERR_NOMEM;
            goto out;
        }
        ws->ops = ops;
        ws->cap = cap;
    }
    k = copy_bytes(key, key_len);
    if (!k || (has_val && !(v = copy_bytes(val, val_len)))) {
        err = DASHI_ERR_NOMEM;
        goto out;
    }
    ws->ops[ws->n++] = (dashi_ws_op){
        .kind = kind,
        .key = k,
        .key_len = key_len,
        .val = v,
        .val_len = has_val ? val_len : 0,
        .due = kind == DASHI_WS_TIMER_ADD || kind == DASHI_WS_TIMER_CHECK ? due : 0,
    };
    k = v = NULL;
out:
    free(k);
    free(v);
    return err;
}

void dashi_timers_free(dashi_timer *timers, size_t n) {
    if (!timers)
        return;
    for (size_t i = 0; i < n; i++) {
        free(timers[i].id);
        free(timers[i].payload);
    }
    free(timers);
}

dashi_state *dashi_state_open(const char *spec, const char *prefix, char *errstr, size_t errstr_size) {
    dashi_state *st = NULL;
    if (!spec || !*spec) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "state: empty store spec (\"memory\" or a redis URL)");
        goto out;
    }
    if (strcmp(spec, "memory") == 0) {
        st = dashi_state_mem_new();
        if (!st)
            dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "state: out of memory creating the memory store");
        goto out;
    }
    st = dashi_state_redis_new(spec, prefix, errstr, errstr_size);
out:
    return st;
}

dashi_err dashi_state_apply_chain(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                                  size_t *n_applied, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    size_t i = 0;
    if (st->ops->apply_chain) {
        err = st->ops->apply_chain(st, n, sets, results, n_applied, errstr, errstr_size);
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        results[k] = DASHI_ERR_CONFLICT; /* not applied, until known otherwise */
    for (; i < n; i++) {
        if (!sets[i] || sets[i]->n == 0) {
            results[i] = DASHI_OK;
            continue;
        }
        err = st->ops->apply(st, 1, &sets[i], &results[i], errstr, errstr_size);
        if (err != DASHI_OK || results[i] != DASHI_OK)
            break;
    }
    *n_applied = i;
out:
    return err;
}

void dashi_state_destroy(dashi_state *st) {
    if (st && st->ops && st->ops->destroy)
        st->ops->destroy(st);
}
