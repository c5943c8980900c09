/* engine.c — one atomic step per input event or timer, in event-time order.
 *
 * A step: reset the view, run the rules modules, turn the view's changes into one
 * write set, apply it, and only then hand the outputs to the caller. Input events
 * carry a de-duplication marker "ev:<event_id>" whose value is a digest of the
 * event's content: the write set checks the marker is absent, so a redelivery (or
 * a second instance racing on the same event) applies nothing, and a different
 * event reusing an event_id is refused as bad input. Timers are read from the
 * store in (due, id) order and each fires as its own step that also deletes it;
 * after a step that scheduled new timers the queue is read again, so a timer a
 * handler adds for an earlier instant still fires in order. Handlers return
 * DASHI_ERR_INVALID for input that breaks a rule of EVENTS.md; the step is then
 * dropped whole, so bad input changes nothing.
 *
 * Several engines over one store (members of one consumer group) each fire the
 * timers due on their own stream time, so two may read the same timer due at
 * once. A timer step therefore carries TIMER_CHECK (the timer is still queued
 * with the due and payload read) next to its TIMER_DEL: the first step to commit
 * fires it, the other's whole step is a no-op (CONFLICT) and that engine reads
 * the queue again, which no longer holds it. So a timer fires at most once, and
 * exactly once as long as some engine advances past its due. The marker is read from the store
 * directly, not through the view: each is read once and written once, so it would
 * only push records that are read again out of the view's cache. Its value is
 * written as the text json_dumps gives {"d": digest, "t": time}.
 */
#include "core/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"

#define TIMER_BATCH 64
#define MAX_STEP_CONFLICTS 8 /* guarded event step run again; beyond, CONFLICT (a fence, not a race) */
#define MAX_TIMER_CONFLICTS 1000 /* in a row: beyond, a check other than the timer's own keeps failing */

struct dashi_engine {
    const dashi_rules *rules;   /* borrowed */
    const dashi_keyring *keys;  /* borrowed */
    dashi_state *state;         /* borrowed */
    dashi_view *view;           /* owned */
    dashi_writeset ws;
    dashi_engine_stats stats;
    dashi_step_hook hook;
    void *hook_opaque;
    bool guard; /* dashi_engine_set_guard(): steps check the records they write are unchanged */
};

void dashi_engine_set_guard(dashi_engine *e, bool on) {
    e->guard = on;
}

void dashi_engine_set_step_hook(dashi_engine *e, dashi_step_hook hook, void *opaque) {
    e->hook = hook;
    e->hook_opaque = opaque;
}

dashi_engine *dashi_engine_new(const dashi_rules *rules, const dashi_keyring *keys, dashi_state *state,
                               char *errstr, size_t errstr_size) {
    dashi_engine *e = NULL;
    if (!rules || !state) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "engine: rules and state are required");
        goto out;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->view = dashi_view_new(state))) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "engine: out of memory");
        dashi_engine_destroy(e);
        e = NULL;
        goto out;
    }
    e->rules = rules;
    e->keys = keys;
    e->state = state;
    dashi_writeset_init(&e->ws);
out:
    return e;
}

void dashi_engine_destroy(dashi_engine *e) {
    if (!e)
        return;
    dashi_view_destroy(e->view);
    dashi_writeset_clear(&e->ws);
    free(e);
}

void dashi_engine_stats_get(const dashi_engine *e, dashi_engine_stats *out) {
    *out = e->stats;
}

static void ctx_init(dashi_engine *e, dashi_ctx *ctx, dashi_time now, const char *cause, const dashi_event *ev) {
    memset(ctx, 0, sizeof(*ctx));
    ctx->view = e->view;
    ctx->rules = e->rules;
    ctx->set = dashi_rules_at(e->rules, now);
    ctx->keys = e->keys;
    ctx->now = now;
    ctx->cause = cause;
    ctx->event = ev;
}

static void ctx_free_outputs(dashi_ctx *ctx) {
    for (size_t i = 0; i < ctx->n_outputs; i++)
        dashi_event_clear(&ctx->outputs[i]);
    free(ctx->outputs);
    ctx->outputs = NULL;
    ctx->n_outputs = ctx->cap_outputs = 0;
}

/* The de-duplication marker of event id, read from the store itself: markers are
 * written once and read once, so they would only crowd the view's cache. *digest
 * gets its "d" (a malloc'ed copy; NULL when the marker is absent or has none). */
static dashi_err marker_read(dashi_engine *e, const char *id, bool *present, char **digest, char *errstr,
                             size_t errstr_size) {
    char key[DASHI_MAX_ID_LEN + 8]; /* "ev:" + an id of at most DASHI_MAX_ID_LEN bytes */
    dashi_bytes k = {key, 0}, v = {NULL, 0};
    json_t *mark = NULL;
    json_error_t jerr;
    dashi_err err;

    *present = false;
    *digest = NULL;
    if ((size_t)snprintf(key, sizeof(key), "ev:%s", id) >= sizeof(key)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "event_id: longer than %d bytes", DASHI_MAX_ID_LEN);
        goto out;
    }
    k.len = strlen(key);
    if ((err = e->state->ops->mget(e->state, 1, &k, &v, errstr, errstr_size)) != DASHI_OK || !v.data)
        goto out;
    *present = true;
    if (!(mark = json_loadb(v.data, v.len, 0, &jerr))) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "view: record %.100s is not JSON: %s", key,
                         jerr.text);
        goto out;
    }
    if (json_string_value(json_object_get(mark, "d")) &&
        !(*digest = strdup(json_string_value(json_object_get(mark, "d")))))
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "engine: out of memory");
out:
    json_decref(mark);
    free(v.data);
    return err;
}

/* Is the de-duplication marker of event id in the store? */
static bool marker_present(dashi_engine *e, const char *id) {
    bool present = false;
    char *digest = NULL;
    dashi_err err = marker_read(e, id, &present, &digest, NULL, 0);
    free(digest);
    return err == DASHI_OK && present;
}

/* Commit the view (plus the extra ops already in e->ws) and emit outputs.
 * *stop is set when the emit callback asked to stop; *timers_added (may be NULL)
 * when the view's changes schedule a timer. */
static dashi_err commit_step(dashi_engine *e, dashi_ctx *ctx, dashi_emit_fn emit, void *opaque, int *stop,
                             bool *timers_added, char *errstr, size_t errstr_size) {
    const char *msg = NULL;
    dashi_err err = dashi_view_error(e->view, &msg), result = DASHI_OK;
    size_t first = e->ws.n;
    if (err != DASHI_OK) {
        dashi_errf(err, errstr, errstr_size, "%s", msg);
        goto out;
    }
    if ((err = dashi_view_writeset(e->view, &e->ws)) != DASHI_OK) {
        dashi_errf(err, errstr, errstr_size, "engine: cannot build write set: %s", dashi_err_str(err));
        goto out;
    }
    for (size_t k = first; timers_added && k < e->ws.n; k++)
        *timers_added |= e->ws.ops[k].kind == DASHI_WS_TIMER_ADD;
    if (e->guard && (err = dashi_view_guard(e->view, &e->ws)) != DASHI_OK) {
        dashi_errf(err, errstr, errstr_size, "engine: cannot build write set: %s", dashi_err_str(err));
        goto out;
    }
    if (e->hook && (err = e->hook(e->hook_opaque, ctx, &e->ws)) != DASHI_OK) {
        dashi_errf(err, errstr, errstr_size, "engine: step hook refused %s: %s", ctx->cause, dashi_err_str(err));
        goto out;
    }
    const dashi_writeset *sets[1] = {&e->ws};
    err = e->state->ops->apply(e->state, 1, sets, &result, errstr, errstr_size);
    if (err != DASHI_OK)
        goto out;
    if (result != DASHI_OK) {
        err = result;
        if (result == DASHI_ERR_CONFLICT && ctx->event && marker_present(e, ctx->cause))
            err = DASHI_ERR_DUPLICATE; /* another instance applied the same event first */
        dashi_errf(err, errstr, errstr_size, "engine: step %s %s", ctx->cause,
                   err == DASHI_ERR_DUPLICATE ? "was applied concurrently" : "lost a guarded write (fenced)");
        goto out;
    }
    dashi_view_committed(e->view);
    e->stats.outputs += ctx->n_outputs;
    for (size_t i = 0; i < ctx->n_outputs && emit; i++)
        if (emit(opaque, &ctx->outputs[i]) != 0) {
            *stop = 1;
            break;
        }
out:
    dashi_writeset_clear(&e->ws);
    return err;
}

static dashi_err dispatch_timer(dashi_ctx *ctx, const dashi_timer *t) {
    const json_t *payload = NULL;
    json_t *parsed = NULL;
    dashi_err err = DASHI_OK;
    if (t->payload && t->payload_len) {
        parsed = json_loadb(t->payload, t->payload_len, JSON_DECODE_ANY, NULL);
        payload = parsed;
    }
    if (strncmp(t->id, "sp:", 3) == 0)
        err = dashi_identity_on_timer(ctx, t->id, payload);
    else if (strncmp(t->id, "cm:", 3) == 0)
        err = dashi_commission_on_timer(ctx, t->id, payload);
    else if (strncmp(t->id, "cp:", 3) == 0)
        err = dashi_campaign_on_timer(ctx, t->id, payload);
    /* unknown prefixes: the timer is simply removed (logged by the caller's stats) */
    json_decref(parsed);
    return err;
}

dashi_err dashi_engine_advance(dashi_engine *e, dashi_time until, dashi_emit_fn emit, void *opaque,
                               char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_timer *timers = NULL;
    size_t n = 0, conflicts = 0;
    int stop = 0;
    for (;;) {
        dashi_timers_free(timers, n);
        timers = NULL;
        n = 0;
        err = e->state->ops->timers_due(e->state, until, TIMER_BATCH, &timers, &n, errstr, errstr_size);
        if (err != DASHI_OK || n == 0)
            goto out;
        for (size_t i = 0; i < n && !stop; i++) {
            dashi_ctx ctx;
            dashi_view_reset(e->view);
            ctx_init(e, &ctx, timers[i].due, timers[i].id, NULL);
            err = dispatch_timer(&ctx, &timers[i]);
            /* the guard: the timer must still be queued as read, else another engine fired it */
            if (err == DASHI_OK)
                err = dashi_writeset_add(&e->ws, DASHI_WS_TIMER_CHECK, timers[i].id, strlen(timers[i].id),
                                         timers[i].payload, timers[i].payload ? timers[i].payload_len : 0,
                                         timers[i].due);
            if (err == DASHI_OK)
                err = dashi_writeset_add(&e->ws, DASHI_WS_TIMER_DEL, timers[i].id, strlen(timers[i].id), NULL, 0, 0);
            else
                dashi_errf(err, errstr, errstr_size, "timer %s: %s", timers[i].id,
                           ctx.error[0] ? ctx.error : dashi_err_str(err));
            bool added = false; /* did the handler schedule anything? then the queue order may have changed */
            if (err == DASHI_OK)
                err = commit_step(e, &ctx, emit, opaque, &stop, &added, errstr, errstr_size);
            dashi_writeset_clear(&e->ws);
            ctx_free_outputs(&ctx);
            if (err == DASHI_ERR_CONFLICT && ++conflicts <= MAX_TIMER_CONFLICTS) {
                /* fired (or moved) by another engine over the same store since we read it: nothing
                 * of this step was written; read the queue again, without it */
                e->stats.timers_taken++;
                err = DASHI_OK;
                if (errstr && errstr_size)
                    errstr[0] = '\0';
                break;
            }
            if (err != DASHI_OK)
                goto out;
            conflicts = 0;
            e->stats.timers++;
            if (added)
                break; /* read the queue again: the new timer may be due before the rest */
        }
        if (stop)
            goto out;
    }
out:
    dashi_timers_free(timers, n);
    return err;
}

/* 16 hex digits of SHA-256 of the event's canonical JSON: the marker's value. */
static char *event_digest(const dashi_event *ev, char *buf, size_t size) {
    char *text = dashi_event_dump(ev);
    const char *parts[1] = {text ? text : ""};
    dashi_ctx_make_id(buf, size, "d", parts, 1);
    free(text);
    return buf;
}

dashi_err dashi_engine_process(dashi_engine *e, const dashi_event *ev, dashi_emit_fn emit, void *opaque,
                               char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_ctx ctx;
    char marker[DASHI_MAX_ID_LEN + 8], digest[40], mtext[96], *prev = NULL;
    bool seen = false;
    int stop = 0, mlen;
    memset(&ctx, 0, sizeof(ctx));
    if (!dashi_event_type_is_input(ev->type)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s is an output event, not an input",
                         dashi_event_type_name(ev->type));
        goto out;
    }
    const char *id = dashi_event_id(ev);
    dashi_time t = dashi_event_time(ev);
    /* before any timer fires: an event outside the rules' plausible range (EVENTS.md
     * "Bad input") must not move the clock either */
    if (t < e->rules->plausible_from || t >= e->rules->plausible_until) {
        char a[DASHI_TIME_STRLEN], b[DASHI_TIME_STRLEN];
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "occurred_at: outside the plausible range [%s, %s) of the rules", dashi_time_format(e->rules->plausible_from, a),
                         dashi_time_format(e->rules->plausible_until, b));
        goto out;
    }
    if (strlen(id) > DASHI_MAX_ID_LEN) { /* validation refuses it before: the marker key is never cut */
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "event_id: longer than %d bytes", DASHI_MAX_ID_LEN);
        goto out;
    }
    if ((err = dashi_engine_advance(e, t, emit, opaque, errstr, errstr_size)) != DASHI_OK)
        goto out;

    snprintf(marker, sizeof(marker), "ev:%s", id); /* fits: the id's length was checked above */
    event_digest(ev, digest, sizeof(digest));
    for (int attempt = 0;; attempt++) {
        dashi_view_reset(e->view);
        if ((err = marker_read(e, id, &seen, &prev, errstr, errstr_size)) != DASHI_OK)
            goto out;
        if (seen) {
            if (prev && strcmp(prev, digest) != 0)
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                                 "event_id %s was already used by an event with different content", id);
            else
                err = dashi_errf(DASHI_ERR_DUPLICATE, errstr, errstr_size, "event %s already applied", id);
            e->stats.duplicates += err == DASHI_ERR_DUPLICATE;
            goto out;
        }
        ctx_init(e, &ctx, t, id, ev);
        if ((err = dashi_identity_on_event(&ctx, ev)) != DASHI_OK ||
            (err = dashi_commission_on_event(&ctx, ev)) != DASHI_OK ||
            (err = dashi_campaign_on_event(&ctx, ev)) != DASHI_OK) {
            const char *msg = NULL;
            if (dashi_view_error(e->view, &msg) != DASHI_OK)
                err = dashi_errf(dashi_view_error(e->view, NULL), errstr, errstr_size, "%s", msg);
            else
                dashi_errf(err, errstr, errstr_size, "%s", ctx.error[0] ? ctx.error : dashi_err_str(err));
            goto out;
        }
        /* what json_dumps(COMPACT|SORT_KEYS) makes of {"d": digest, "t": t}: the digest is "d-" + hex */
        mlen = snprintf(mtext, sizeof(mtext), "{\"d\":\"%s\",\"t\":%lld}", digest, (long long)t);
        err = dashi_writeset_add(&e->ws, DASHI_WS_CHECK_ABSENT, marker, strlen(marker), NULL, 0, 0);
        if (err == DASHI_OK)
            err = dashi_writeset_add(&e->ws, DASHI_WS_PUT, marker, strlen(marker), mtext, (size_t)mlen, 0);
        if (err == DASHI_OK)
            err = commit_step(e, &ctx, emit, opaque, &stop, NULL, errstr, errstr_size);
        if (err != DASHI_ERR_CONFLICT || !e->guard || attempt >= MAX_STEP_CONFLICTS)
            break;
        /* guarded: a record it read was changed by another writer meanwhile; run the step again */
        e->stats.retries++;
        free(prev);
        prev = NULL;
        dashi_writeset_clear(&e->ws);
        ctx_free_outputs(&ctx);
    }
    if (err == DASHI_OK)
        e->stats.events++;
    else if (err == DASHI_ERR_DUPLICATE)
        e->stats.duplicates++;
out:
    free(prev);
    dashi_writeset_clear(&e->ws);
    ctx_free_outputs(&ctx);
    dashi_view_reset(e->view);
    return err;
}
