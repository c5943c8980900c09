/* harness.c — the test harness over core/engine.c (see harness.h).
 *
 * One dashi_engine over one store; the engine's emit callback appends a deep copy
 * of each output (one allocation per output, so pointers handed to tests stay put
 * while more arrive), and its step hook notes where the step's outputs begin and
 * how many write-set operations the rules made, without changing the set. JSON
 * field queries read each output's JSON form, made on first use and kept. A
 * second view over the same store serves direct module calls: the engine resets
 * its own view at every step, so neither sees stale records of the other.
 */
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/view.h"

#define DEFAULT_RULES DASHI_SOURCE_DIR "/config/rules.json"
#define DEFAULT_PREFIX "t:"
#define DEFAULT_ID_DIGITS 4

struct dashi_harness {
    dashi_rules *rules;     /* owned */
    dashi_keyring *keys;    /* owned */
    dashi_state *state;     /* owned */
    dashi_engine *engine;   /* owned; borrows the three above */
    dashi_view *view;       /* owned; for direct steps */
    dashi_event **outs;     /* owned: n_outs outputs, each malloc'ed */
    json_t **jsons;         /* owned, parallel to outs: JSON forms made on demand (NULL until then) */
    size_t n_outs, cap_outs;
    size_t mark;            /* n_outs before the last committed step */
    size_t step_ops;        /* the rules' write-set operations of that step */
    dashi_err emit_err;     /* first failure to keep an output */
    int seq, id_digits;
    char error[512];        /* why the last feed failed */
};

/* ------------------------------------------------------------------ outputs */

/* Take ev's contents (moved, not copied) as the next output. */
static dashi_err keep(dashi_harness *h, dashi_event *ev) {
    dashi_err err = DASHI_OK;
    dashi_event *slot = NULL;
    if (h->n_outs == h->cap_outs) {
        size_t cap = h->cap_outs ? 2 * h->cap_outs : 64;
        dashi_event **outs = realloc(h->outs, cap * sizeof(*outs));
        json_t **jsons = outs ? realloc(h->jsons, cap * sizeof(*jsons)) : NULL;
        if (outs)
            h->outs = outs;
        if (jsons)
            h->jsons = jsons;
        if (!outs || !jsons) {
            err = DASHI_ERR_NOMEM;
            goto out;
        }
        h->cap_outs = cap;
    }
    if (!(slot = malloc(sizeof(*slot)))) {
        err = DASHI_ERR_NOMEM;
        goto out;
    }
    *slot = *ev;
    memset(ev, 0, sizeof(*ev));
    h->jsons[h->n_outs] = NULL;
    h->outs[h->n_outs++] = slot;
out:
    if (err != DASHI_OK)
        dashi_event_clear(ev);
    return err;
}

/* dashi_emit_fn: keep a copy of the engine's (borrowed) output. */
static int collect(void *opaque, const dashi_event *out) {
    dashi_harness *h = opaque;
    dashi_event copy;
    dashi_err err = dashi_event_copy(&copy, out);
    if (err == DASHI_OK)
        err = keep(h, &copy);
    else
        dashi_event_clear(&copy);
    if (err != DASHI_OK && h->emit_err == DASHI_OK)
        h->emit_err = err;
    return err != DASHI_OK;
}

/* Write-set operations the rules made: all but the engine's marker check and put
 * ("ev:<cause>") for an event step and its check and deletion of the fired timer. */
static size_t rules_ops(const dashi_ctx *ctx, const dashi_writeset *ws) {
    char marker[512];
    size_t n = 0;
    snprintf(marker, sizeof(marker), "ev:%s", ctx->cause ? ctx->cause : "");
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        bool own = ctx->event ? (op->kind == DASHI_WS_CHECK_ABSENT || op->kind == DASHI_WS_PUT) &&
                                    op->key_len == strlen(marker) && memcmp(op->key, marker, op->key_len) == 0
                              : (op->kind == DASHI_WS_TIMER_DEL || op->kind == DASHI_WS_TIMER_CHECK) && ctx->cause && op->key_len == strlen(ctx->cause) &&
                                    memcmp(op->key, ctx->cause, op->key_len) == 0;
        n += !own;
    }
    return n;
}

/* dashi_step_hook: note the step, add nothing. */
static dashi_err on_step(void *opaque, const dashi_ctx *ctx, dashi_writeset *ws) {
    dashi_harness *h = opaque;
    h->mark = h->n_outs;
    h->step_ops = rules_ops(ctx, ws);
    return DASHI_OK;
}

/* The JSON form of output i, made once. */
static const json_t *output_json(dashi_harness *h, size_t i) {
    if (!h->jsons[i])
        h->jsons[i] = dashi_event_to_json(h->outs[i]);
    cr_assert_not_null(h->jsons[i], "output %zu: no JSON form (out of memory)", i);
    return h->jsons[i];
}

/* Does output i have every field of fields (pairs, NULL name ends)? */
static bool fields_match(dashi_harness *h, size_t i, const char *const *fields) {
    bool ok = true;
    char *text = NULL;
    for (size_t k = 0; ok && fields && fields[k]; k += 2) {
        const json_t *v = output_json(h, i);
        const char *path = fields[k], *want = fields[k + 1];
        char name[128];
        while (v && *path) {
            size_t len = strcspn(path, ".");
            snprintf(name, sizeof(name), "%.*s", (int)len, path);
            v = json_object_get(v, name);
            path += len + (path[len] == '.');
        }
        if (!want) {
            ok = !v || json_is_null(v);
        } else if (!v) {
            ok = false;
        } else if (json_is_string(v)) {
            ok = strcmp(json_string_value(v), want) == 0;
        } else {
            text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            ok = text && strcmp(text, want) == 0;
            free(text);
            text = NULL;
        }
    }
    return ok;
}

/* The scan under every query: the nth match (nth < 0 counts from the end) of type
 * among outputs >= from, by pred and fields; *count gets the number of matches. */
static const dashi_event *scan(dashi_harness *h, int type, size_t from, long nth, dashi_harness_pred pred,
                               const void *arg, const char *const *fields, size_t *count) {
    const dashi_event *found = NULL;
    size_t n = 0, *hits = NULL;
    if (h->n_outs > from && !(hits = malloc((h->n_outs - from) * sizeof(*hits))))
        cr_assert_fail("harness: out of memory");
    for (size_t i = from; i < h->n_outs; i++) {
        const dashi_event *ev = h->outs[i];
        if ((type < 0 || (int)ev->type == type) && (!pred || pred(ev, arg)) && fields_match(h, i, fields))
            hits[n++] = i;
    }
    if (nth >= 0 && (size_t)nth < n)
        found = h->outs[hits[nth]];
    else if (nth < 0 && (size_t)-nth <= n)
        found = h->outs[hits[n - (size_t)-nth]];
    if (count)
        *count = n;
    free(hits);
    return found;
}

/* Collect the NULL-name-terminated name/value pairs of ap into a malloc'ed array. */
static const char **pairs_of(va_list ap) {
    size_t n = 0, cap = 8;
    const char **f = malloc(cap * sizeof(*f));
    cr_assert_not_null(f, "harness: out of memory");
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (n + 3 > cap) {
            const char **g = realloc(f, (cap *= 2) * sizeof(*f));
            cr_assert_not_null(g, "harness: out of memory");
            f = g;
        }
        f[n++] = name;
        if (!name)
            break;
        f[n++] = va_arg(ap, const char *);
    }
    return f;
}

size_t dashi_harness_n_outputs(const dashi_harness *h) {
    return h->n_outs;
}

const dashi_event *dashi_harness_output(const dashi_harness *h, size_t i) {
    return i < h->n_outs ? h->outs[i] : NULL;
}

size_t dashi_harness_mark(const dashi_harness *h) {
    return h->mark;
}

size_t dashi_harness_step_ops(const dashi_harness *h) {
    return h->step_ops;
}

const dashi_event *dashi_harness_find_if(dashi_harness *h, int type, size_t from, long nth, dashi_harness_pred pred,
                                         const void *arg) {
    return scan(h, type, from, nth, pred, arg, NULL, NULL);
}

size_t dashi_harness_count_if(dashi_harness *h, int type, size_t from, dashi_harness_pred pred, const void *arg) {
    size_t n = 0;
    scan(h, type, from, 0, pred, arg, NULL, &n);
    return n;
}

const dashi_event *dashi_harness_findv(dashi_harness *h, int type, size_t from, long nth, const char *const *fields) {
    return scan(h, type, from, nth, NULL, NULL, fields, NULL);
}

size_t dashi_harness_countv(dashi_harness *h, int type, size_t from, const char *const *fields) {
    size_t n = 0;
    scan(h, type, from, 0, NULL, NULL, fields, &n);
    return n;
}

const dashi_event *dashi_harness_find(dashi_harness *h, int type, size_t from, long nth, ...) {
    va_list ap;
    va_start(ap, nth);
    const char **fields = pairs_of(ap);
    va_end(ap);
    const dashi_event *found = dashi_harness_findv(h, type, from, nth, fields);
    free(fields);
    return found;
}

size_t dashi_harness_count(dashi_harness *h, int type, size_t from, ...) {
    va_list ap;
    va_start(ap, from);
    const char **fields = pairs_of(ap);
    va_end(ap);
    size_t n = dashi_harness_countv(h, type, from, fields);
    free(fields);
    return n;
}

/* ------------------------------------------------------------------ life cycle */

dashi_harness *dashi_harness_start(const dashi_harness_opts *opts) {
    static const dashi_harness_opts defaults = {0};
    char err[512] = "";
    dashi_harness *h = calloc(1, sizeof(*h));
    if (!opts)
        opts = &defaults;
    cr_assert_not_null(h, "harness: out of memory");
    h->id_digits = opts->id_digits > 0 ? opts->id_digits : DEFAULT_ID_DIGITS;
    h->rules = dashi_rules_load(opts->rules ? opts->rules : DEFAULT_RULES, err, sizeof(err));
    cr_assert_not_null(h->rules, "rules: %s", err);
    h->keys = dashi_keyring_load(NULL, err, sizeof(err));
    cr_assert_not_null(h->keys, "keys: %s", err);
    h->state = dashi_state_open(opts->state ? opts->state : "memory", opts->prefix ? opts->prefix : DEFAULT_PREFIX, err,
                                sizeof(err));
    cr_assert_not_null(h->state, "state %s: %s", opts->state ? opts->state : "memory", err);
    cr_assert_eq(h->state->ops->clear(h->state, err, sizeof(err)), DASHI_OK, "state clear: %s", err);
    h->engine = dashi_engine_new(h->rules, h->keys, h->state, err, sizeof(err));
    cr_assert_not_null(h->engine, "engine: %s", err);
    dashi_engine_set_step_hook(h->engine, on_step, h);
    h->view = dashi_view_new(h->state);
    cr_assert_not_null(h->view, "harness: out of memory");
    return h;
}

void dashi_harness_stop(dashi_harness *h) {
    if (!h)
        return;
    for (size_t i = 0; i < h->n_outs; i++) {
        dashi_event_clear(h->outs[i]);
        free(h->outs[i]);
        json_decref(h->jsons[i]);
    }
    free(h->outs);
    free(h->jsons);
    dashi_view_destroy(h->view);
    dashi_engine_destroy(h->engine);
    dashi_state_destroy(h->state);
    dashi_keyring_destroy(h->keys);
    dashi_rules_destroy(h->rules);
    free(h);
}

/* ------------------------------------------------------------------ inputs */

dashi_time dashi_harness_time(const char *text) {
    dashi_time t = 0;
    char err[128] = "";
    cr_assert_eq(dashi_time_parse(text, &t, err, sizeof(err)), DASHI_OK, "%s: %s", text, err);
    return t;
}

dashi_err dashi_harness_feedv(dashi_harness *h, const char *fmt, va_list ap) {
    char *text = NULL, id[32], err[512] = "";
    json_t *obj = NULL;
    json_error_t jerr = {0};
    dashi_event ev;
    dashi_err rc = DASHI_OK;
    va_list aq;
    va_copy(aq, ap);
    int len = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    cr_assert_geq(len, 0, "harness: bad format %s", fmt);
    text = malloc((size_t)len + 3);
    cr_assert_not_null(text, "harness: out of memory");
    vsnprintf(text + 1, (size_t)len + 1, fmt, ap);
    /* members only: wrap them in braces */
    if (text[1 + strspn(text + 1, " \t\r\n")] == '{') {
        memmove(text, text + 1, (size_t)len + 1);
    } else {
        text[0] = '{';
        text[len + 1] = '}';
        text[len + 2] = '\0';
    }
    obj = json_loads(text, 0, &jerr);
    cr_assert(json_is_object(obj), "harness: not a JSON object: %s: %s", jerr.text, text);
    if (!json_object_get(obj, "event_id")) {
        snprintf(id, sizeof(id), "e%0*d", h->id_digits, ++h->seq);
        json_object_set_new(obj, "event_id", json_string(id));
    }
    cr_assert_eq(dashi_event_from_json(obj, &ev, err, sizeof(err)), DASHI_OK, "%s: %s", text, err);
    h->error[0] = '\0';
    rc = dashi_engine_process(h->engine, &ev, collect, h, h->error, sizeof(h->error));
    cr_assert_eq(h->emit_err, DASHI_OK, "harness: cannot keep an output: %s", dashi_err_str(h->emit_err));
    if (rc == DASHI_OK)
        h->error[0] = '\0';
    dashi_event_clear(&ev);
    json_decref(obj);
    free(text);
    return rc;
}

dashi_err dashi_harness_feed(dashi_harness *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dashi_err rc = dashi_harness_feedv(h, fmt, ap);
    va_end(ap);
    return rc;
}

void dashi_harness_feed_ok(dashi_harness *h, const char *fmt, ...) {
    va_list ap;
    char what[160];
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    dashi_err rc = dashi_harness_feedv(h, fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, DASHI_OK, "%s: %s (%s...)", dashi_err_str(rc), h->error, what);
}

int dashi_harness_seq(const dashi_harness *h) {
    return h->seq;
}

const char *dashi_harness_error(const dashi_harness *h) {
    return h->error;
}

void dashi_harness_advance(dashi_harness *h, dashi_time until) {
    char err[512] = "";
    dashi_err rc = dashi_engine_advance(h->engine, until, collect, h, err, sizeof(err));
    cr_assert_eq(h->emit_err, DASHI_OK, "harness: cannot keep an output: %s", dashi_err_str(h->emit_err));
    cr_assert_eq(rc, DASHI_OK, "advance: %s: %s", dashi_err_str(rc), err);
}

/* ------------------------------------------------------------------ state */

dashi_state *dashi_harness_state(dashi_harness *h) {
    return h->state;
}

dashi_rules *dashi_harness_rules(dashi_harness *h) {
    return h->rules;
}

dashi_keyring *dashi_harness_keys(dashi_harness *h) {
    return h->keys;
}

json_t *dashi_harness_record(dashi_harness *h, const char *key) {
    dashi_bytes k = {(char *)key, strlen(key)}, v = {NULL, 0};
    json_t *rec = NULL;
    json_error_t jerr;
    char err[256] = "";
    cr_assert_eq(h->state->ops->mget(h->state, 1, &k, &v, err, sizeof(err)), DASHI_OK, "mget %s: %s", key, err);
    if (!v.data)
        goto out;
    rec = json_loadb(v.data, v.len, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(rec, "record %s is not JSON: %s", key, jerr.text);
out:
    free(v.data);
    return rec;
}

/* Every queued timer (malloc'ed array in *timers). */
static size_t all_timers(dashi_harness *h, dashi_timer **timers) {
    size_t n = 0;
    char err[256] = "";
    *timers = NULL;
    cr_assert_eq(h->state->ops->timers_due(h->state, INT64_MAX, SIZE_MAX, timers, &n, err, sizeof(err)), DASHI_OK,
                 "timers: %s", err);
    return n;
}

size_t dashi_harness_timers(dashi_harness *h, const char *prefix) {
    dashi_timer *timers = NULL;
    size_t n = 0, count = 0;
    char err[256] = "";
    if (!prefix) {
        cr_assert_eq(h->state->ops->timers_count(h->state, &count, err, sizeof(err)), DASHI_OK, "timers: %s", err);
        goto out;
    }
    n = all_timers(h, &timers);
    for (size_t i = 0; i < n; i++)
        count += strncmp(timers[i].id, prefix, strlen(prefix)) == 0;
out:
    dashi_timers_free(timers, n);
    return count;
}

bool dashi_harness_timer(dashi_harness *h, const char *id, dashi_time *due) {
    dashi_timer *timers = NULL;
    size_t n = all_timers(h, &timers);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        if (strcmp(timers[i].id, id) == 0) {
            found = true;
            if (due)
                *due = timers[i].due;
        }
    dashi_timers_free(timers, n);
    return found;
}

typedef struct text_buf {
    char *s;
    size_t n, cap;
} text_buf;

/* Append "a=b\n" (b may be empty). Also the dashi_scan_fn of dump. */
static int text_line(void *opaque, const char *a, size_t a_len, const char *b, size_t b_len) {
    text_buf *t = opaque;
    size_t need = t->n + a_len + b_len + 3;
    if (need > t->cap) {
        size_t cap = need > 2 * t->cap ? need : 2 * t->cap;
        char *s = realloc(t->s, cap);
        cr_assert_not_null(s, "harness: out of memory");
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->n, a, a_len);
    t->n += a_len;
    t->s[t->n++] = '=';
    if (b_len)
        memcpy(t->s + t->n, b, b_len);
    t->n += b_len;
    t->s[t->n++] = '\n';
    t->s[t->n] = '\0';
    return 0;
}

char *dashi_harness_dump(dashi_harness *h) {
    text_buf t = {calloc(1, 1), 0, 1};
    dashi_timer *timers = NULL;
    char err[256] = "";
    cr_assert_not_null(t.s, "harness: out of memory");
    cr_assert_eq(h->state->ops->scan(h->state, "", 0, text_line, &t, err, sizeof(err)), DASHI_OK, "scan: %s", err);
    size_t n = all_timers(h, &timers);
    for (size_t i = 0; i < n; i++)
        text_line(&t, timers[i].id, strlen(timers[i].id), timers[i].payload ? timers[i].payload : "",
                  timers[i].payload ? timers[i].payload_len : 0);
    dashi_timers_free(timers, n);
    for (size_t i = 0; i < h->n_outs; i++) {
        char *j = dashi_event_dump(h->outs[i]);
        cr_assert_not_null(j, "harness: out of memory");
        text_line(&t, j, strlen(j), "", 0);
        free(j);
    }
    return t.s;
}

/* ------------------------------------------------------------------ direct module calls */

void dashi_harness_ctx_begin(dashi_harness *h, dashi_ctx *ctx, dashi_time now, const char *cause) {
    dashi_view_reset(h->view);
    *ctx = (dashi_ctx){.view = h->view, .rules = h->rules, .set = dashi_rules_at(h->rules, now), .keys = h->keys,
                       .now = now, .cause = cause, .event = NULL};
}

void dashi_harness_ctx_end(dashi_harness *h, dashi_ctx *ctx, bool commit) {
    dashi_writeset ws;
    dashi_err res = DASHI_OK, keep_err = DASHI_OK;
    const char *msg = NULL;
    char err[256] = "";
    dashi_writeset_init(&ws);
    if (!commit)
        goto out;
    cr_assert_eq(dashi_view_error(h->view, &msg), DASHI_OK, "direct step %s: %s", ctx->cause, msg ? msg : "");
    cr_assert_eq(dashi_view_writeset(h->view, &ws), DASHI_OK, "direct step %s: write set", ctx->cause);
    const dashi_writeset *sets[1] = {&ws};
    cr_assert_eq(h->state->ops->apply(h->state, 1, sets, &res, err, sizeof(err)), DASHI_OK, "apply: %s", err);
    cr_assert_eq(res, DASHI_OK, "direct step %s: %s", ctx->cause, dashi_err_str(res));
    h->mark = h->n_outs;
    h->step_ops = ws.n;
    for (size_t i = 0; i < ctx->n_outputs && keep_err == DASHI_OK; i++)
        keep_err = keep(h, &ctx->outputs[i]);
    cr_assert_eq(keep_err, DASHI_OK, "harness: cannot keep an output: %s", dashi_err_str(keep_err));
out:
    for (size_t i = 0; i < ctx->n_outputs; i++)
        dashi_event_clear(&ctx->outputs[i]); /* what was not moved (all of them without commit) */
    free(ctx->outputs);
    ctx->outputs = NULL;
    ctx->n_outputs = ctx->cap_outputs = 0;
    dashi_writeset_clear(&ws);
    dashi_view_reset(h->view);
}
