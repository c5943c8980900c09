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
 *
 * The engine and its view read and write through a batch overlay (core/overlay.h),
 * which passes everything through to the store outside a batch, so process() and
 * advance() work one step, one round trip per read, at a time. A batch
 * (dashi_engine_process_batch, see engine.h) runs the same steps, built by the same
 * code, against the overlay: reads are guessed from the bytes last seen, sets staged;
 * then the guesses are checked in one mget (a wrong one rewinds the batch to the
 * first step that read it and runs from there again), the sets applied as one
 * chain, and the outputs of the committed steps handed out in order. A batch is
 * committed in units of at most BATCH_MAX_STEPS steps or BATCH_MAX_OPS ops. Inside
 * a unit the timers of an event are fired by querying the overlay's queue after
 * every timer step (no round trip), which gives advance()'s order: advance()
 * queries again after a step that added a timer, and without one the rest of its
 * list is what a query would return.
 */
#include "core/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"
#include "core/overlay.h"

#define TIMER_BATCH 64
#define MAX_STEP_CONFLICTS 8 /* guarded event step run again; beyond, CONFLICT (a fence, not a race) */
#define MAX_TIMER_CONFLICTS 1000 /* in a row: beyond, a check other than the timer's own keeps failing */
#define BATCH_MAX_STEPS 1024     /* steps of one batch commit */
#define BATCH_MAX_OPS 32768      /* staged ops of one batch commit */
#define NO_EVENT SIZE_MAX

/* A step of the batch now being run: the engine's record beside the overlay's staged set. */
typedef struct batch_step {
    size_t event;          /* index of the event it belongs to (its own step, or a timer fired before
                            * it); the batch's n for the final advance */
    bool is_event;         /* the event's own step (else a timer step) */
    bool has_set;          /* it changes the store (an applied event, a fired timer) */
    dashi_time now;
    char *cause;           /* owned: the timer id; NULL for an event step */
    dashi_event *outputs;  /* owned */
    size_t n_outputs;
} batch_step;

struct dashi_engine {
    const dashi_rules *rules;   /* borrowed */
    const dashi_keyring *keys;  /* borrowed */
    dashi_state *state;         /* borrowed */
    dashi_overlay *ov;          /* owned: over state */
    dashi_state *st;            /* the overlay's store face: what the engine and the view use */
    dashi_view *view;           /* owned */
    batch_step *steps;          /* owned: the steps of the batch unit now being run */
    size_t n_steps, cap_steps;
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
    if (!e || !(e->ov = dashi_overlay_new(state)) || !(e->view = dashi_view_new(dashi_overlay_state(e->ov)))) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "engine: out of memory");
        dashi_engine_destroy(e);
        e = NULL;
        goto out;
    }
    e->rules = rules;
    e->keys = keys;
    e->state = state;
    e->st = dashi_overlay_state(e->ov);
    dashi_overlay_forget_prefix(e->ov, "ev:"); /* markers are read once */
    dashi_writeset_init(&e->ws);
out:
    return e;
}

static void steps_truncate(dashi_engine *e, size_t n);

void dashi_engine_destroy(dashi_engine *e) {
    if (!e)
        return;
    steps_truncate(e, 0);
    free(e->steps);
    dashi_view_destroy(e->view);
    dashi_overlay_destroy(e->ov);
    dashi_writeset_clear(&e->ws);
    free(e);
}

void dashi_engine_stats_get(const dashi_engine *e, dashi_engine_stats *out) {
    dashi_overlay_stats os;
    dashi_overlay_stats_get(e->ov, &os);
    *out = e->stats;
    out->guesses = os.guesses;
    out->wrong = os.wrong;
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
    if ((err = e->st->ops->mget(e->st, 1, &k, &v, errstr, errstr_size)) != DASHI_OK || !v.data)
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

/* Build the step's write set in e->ws: the view's changes (after the extra ops
 * already in it), the guard's checks, the hook's ops. *timers_added (may be NULL)
 * is set when the view's changes schedule a timer. */
static dashi_err build_set(dashi_engine *e, dashi_ctx *ctx, bool *timers_added, char *errstr, size_t errstr_size) {
    const char *msg = NULL;
    dashi_err err = dashi_view_error(e->view, &msg);
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
    if (e->hook && (err = e->hook(e->hook_opaque, ctx, &e->ws)) != DASHI_OK)
        dashi_errf(err, errstr, errstr_size, "engine: step hook refused %s: %s", ctx->cause, dashi_err_str(err));
out:
    return err;
}

/* The message of a step whose set was not applied because a check failed. */
static dashi_err step_lost(dashi_err err, const char *cause, char *errstr, size_t errstr_size) {
    return dashi_errf(err, errstr, errstr_size, "engine: step %s %s", cause,
                      err == DASHI_ERR_DUPLICATE ? "was applied concurrently" : "lost a guarded write (fenced)");
}

/* Commit the view (plus the extra ops already in e->ws) and emit outputs.
 * *stop is set when the emit callback asked to stop; *timers_added (may be NULL)
 * when the view's changes schedule a timer. */
static dashi_err commit_step(dashi_engine *e, dashi_ctx *ctx, dashi_emit_fn emit, void *opaque, int *stop,
                             bool *timers_added, char *errstr, size_t errstr_size) {
    dashi_err err, result = DASHI_OK;
    if ((err = build_set(e, ctx, timers_added, errstr, errstr_size)) != DASHI_OK)
        goto out;
    const dashi_writeset *sets[1] = {&e->ws};
    err = e->st->ops->apply(e->st, 1, sets, &result, errstr, errstr_size);
    if (err != DASHI_OK)
        goto out;
    if (result != DASHI_OK) {
        err = result;
        if (result == DASHI_ERR_CONFLICT && ctx->event && marker_present(e, ctx->cause))
            err = DASHI_ERR_DUPLICATE; /* another instance applied the same event first */
        step_lost(err, ctx->cause, errstr, errstr_size);
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

/* Run the handler of timer t on a fresh step (ctx is set up, its outputs are the
 * caller's to free) and add the timer's own ops to e->ws: the guard (it must still
 * be queued as read, else another engine fired it) and its removal. */
static dashi_err run_timer(dashi_engine *e, dashi_ctx *ctx, const dashi_timer *t, char *errstr, size_t errstr_size) {
    dashi_err err;
    dashi_view_reset(e->view);
    ctx_init(e, ctx, t->due, t->id, NULL);
    err = dispatch_timer(ctx, t);
    if (err == DASHI_OK)
        err = dashi_writeset_add(&e->ws, DASHI_WS_TIMER_CHECK, t->id, strlen(t->id), t->payload,
                                 t->payload ? t->payload_len : 0, t->due);
    if (err == DASHI_OK)
        err = dashi_writeset_add(&e->ws, DASHI_WS_TIMER_DEL, t->id, strlen(t->id), NULL, 0, 0);
    else
        dashi_errf(err, errstr, errstr_size, "timer %s: %s", t->id, ctx->error[0] ? ctx->error : dashi_err_str(err));
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
        err = e->st->ops->timers_due(e->st, until, TIMER_BATCH, &timers, &n, errstr, errstr_size);
        if (err != DASHI_OK || n == 0)
            goto out;
        for (size_t i = 0; i < n && !stop; i++) {
            dashi_ctx ctx;
            err = run_timer(e, &ctx, &timers[i], errstr, errstr_size);
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

/* The checks an event passes before anything runs: an input, a plausible time, an id that fits its marker key. */
static dashi_err event_check(const dashi_engine *e, const dashi_event *ev, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    if (!dashi_event_type_is_input(ev->type)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s is an output event, not an input",
                         dashi_event_type_name(ev->type));
        goto out;
    }
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
    if (strlen(dashi_event_id(ev)) > DASHI_MAX_ID_LEN) /* validation refuses it before: the marker key is never cut */
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "event_id: longer than %d bytes", DASHI_MAX_ID_LEN);
out:
    return err;
}

/* Run ev's step up to its write set: a fresh view, the marker check (DUPLICATE,
 * or INVALID when its id was used by other content), the handlers, and the
 * marker's ops in e->ws. ctx is set up (its outputs are the caller's to free). */
static dashi_err run_event(dashi_engine *e, dashi_ctx *ctx, const dashi_event *ev, const char *digest, char *errstr,
                           size_t errstr_size) {
    char marker[DASHI_MAX_ID_LEN + 8], mtext[96], *prev = NULL;
    const char *id = dashi_event_id(ev);
    dashi_time t = dashi_event_time(ev);
    bool seen = false;
    dashi_err err;
    int mlen;

    dashi_view_reset(e->view);
    ctx_init(e, ctx, t, id, ev);
    snprintf(marker, sizeof(marker), "ev:%s", id); /* fits: event_check() checked the id's length */
    if ((err = marker_read(e, id, &seen, &prev, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (seen) {
        if (prev && strcmp(prev, digest) != 0)
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                             "event_id %s was already used by an event with different content", id);
        else
            err = dashi_errf(DASHI_ERR_DUPLICATE, errstr, errstr_size, "event %s already applied", id);
        goto out;
    }
    if ((err = dashi_identity_on_event(ctx, ev)) != DASHI_OK || (err = dashi_commission_on_event(ctx, ev)) != DASHI_OK ||
        (err = dashi_campaign_on_event(ctx, ev)) != DASHI_OK) {
        const char *msg = NULL;
        if (dashi_view_error(e->view, &msg) != DASHI_OK)
            err = dashi_errf(dashi_view_error(e->view, NULL), errstr, errstr_size, "%s", msg);
        else
            dashi_errf(err, errstr, errstr_size, "%s", ctx->error[0] ? ctx->error : dashi_err_str(err));
        goto out;
    }
    /* what json_dumps(COMPACT|SORT_KEYS) makes of {"d": digest, "t": t}: the digest is "d-" + hex */
    mlen = snprintf(mtext, sizeof(mtext), "{\"d\":\"%s\",\"t\":%lld}", digest, (long long)t);
    err = dashi_writeset_add(&e->ws, DASHI_WS_CHECK_ABSENT, marker, strlen(marker), NULL, 0, 0);
    if (err == DASHI_OK)
        err = dashi_writeset_add(&e->ws, DASHI_WS_PUT, marker, strlen(marker), mtext, (size_t)mlen, 0);
out:
    free(prev);
    return err;
}

dashi_err dashi_engine_process(dashi_engine *e, const dashi_event *ev, dashi_emit_fn emit, void *opaque,
                               char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_ctx ctx;
    char digest[40];
    int stop = 0;
    memset(&ctx, 0, sizeof(ctx));
    if ((err = event_check(e, ev, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if ((err = dashi_engine_advance(e, dashi_event_time(ev), emit, opaque, errstr, errstr_size)) != DASHI_OK)
        goto out;
    event_digest(ev, digest, sizeof(digest));
    for (int attempt = 0;; attempt++) {
        if ((err = run_event(e, &ctx, ev, digest, errstr, errstr_size)) != DASHI_OK)
            break;
        err = commit_step(e, &ctx, emit, opaque, &stop, NULL, errstr, errstr_size);
        if (err != DASHI_ERR_CONFLICT || !e->guard || attempt >= MAX_STEP_CONFLICTS)
            break;
        /* guarded: a record it read was changed by another writer meanwhile; run the step again */
        e->stats.retries++;
        dashi_writeset_clear(&e->ws);
        ctx_free_outputs(&ctx);
    }
    if (err == DASHI_OK)
        e->stats.events++;
    else if (err == DASHI_ERR_DUPLICATE)
        e->stats.duplicates++;
out:
    dashi_writeset_clear(&e->ws);
    ctx_free_outputs(&ctx);
    dashi_view_reset(e->view);
    return err;
}

/* ---------------------------------------------------------------- batches */

/* One call of dashi_engine_process_batch(). */
typedef struct batch_run {
    const dashi_event *const *events; /* borrowed */
    size_t n;
    const dashi_batch_opts *opts;     /* borrowed */
    dashi_batch_result *results;      /* borrowed */
    size_t start;        /* the first event of the unit now being run */
    size_t done;         /* events [start, done) reached their outcome in the unit */
    bool until_done;     /* the final advance reached its end */
    bool cut;            /* ended after an INVALID event (opts->stop_after_invalid) */
    size_t stop;         /* the event (n: the final advance) that ended with an error; NO_EVENT: none */
    dashi_err final_err; /* the final advance's error */
    char final_why[512];
} batch_run;

static void steps_truncate(dashi_engine *e, size_t n) {
    for (size_t i = n; i < e->n_steps; i++) {
        batch_step *s = &e->steps[i];
        for (size_t k = 0; k < s->n_outputs; k++)
            dashi_event_clear(&s->outputs[k]);
        free(s->outputs);
        free(s->cause);
    }
    if (n < e->n_steps)
        e->n_steps = n;
}

/* The engine's record of the step just opened in the overlay; NULL on out of memory. */
static batch_step *step_push(dashi_engine *e, size_t event, bool is_event, dashi_time now, const char *cause) {
    if (e->n_steps == e->cap_steps) {
        size_t cap = e->cap_steps ? e->cap_steps * 2 : 64;
        batch_step *grown = realloc(e->steps, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        e->steps = grown;
        e->cap_steps = cap;
    }
    batch_step *s = &e->steps[e->n_steps];
    memset(s, 0, sizeof(*s));
    if (cause && !(s->cause = strdup(cause)))
        return NULL;
    s->event = event;
    s->is_event = is_event;
    s->now = now;
    e->n_steps++;
    return s;
}

/* Close the step now open (its number is e->n_steps - 1 in both records): stage
 * e->ws as its set (with has_set, its outputs are kept), or an empty one. On
 * failure the step is dropped from both. */
static dashi_err step_close(dashi_engine *e, dashi_ctx *ctx, bool has_set, char *errstr, size_t errstr_size) {
    dashi_writeset empty;
    dashi_err err;
    dashi_writeset_init(&empty);
    if (!has_set)
        dashi_writeset_clear(&e->ws);
    if ((err = dashi_overlay_stage(e->ov, has_set ? &e->ws : &empty)) != DASHI_OK) {
        dashi_errf(err, errstr, errstr_size, "engine: cannot stage a step: %s", dashi_err_str(err));
        dashi_overlay_rewind(e->ov, e->n_steps - 1);
        steps_truncate(e, e->n_steps - 1);
        goto out;
    }
    batch_step *s = &e->steps[e->n_steps - 1];
    s->has_set = has_set;
    if (has_set) {
        dashi_view_committed(e->view);
        s->outputs = ctx->outputs;
        s->n_outputs = ctx->n_outputs;
        ctx->outputs = NULL;
        ctx->n_outputs = ctx->cap_outputs = 0;
    }
out:
    dashi_writeset_clear(&e->ws);
    return err;
}

static bool unit_full(const dashi_engine *e) {
    return e->n_steps >= BATCH_MAX_STEPS || dashi_overlay_staged_ops(e->ov) >= BATCH_MAX_OPS;
}

/* Open a step in the overlay and the engine's record. */
static dashi_err step_open(dashi_engine *e, size_t event, bool is_event, dashi_time now, const char *cause,
                           char *errstr, size_t errstr_size) {
    size_t at = dashi_overlay_step(e->ov);
    if (at != e->n_steps || !step_push(e, event, is_event, now, cause)) {
        dashi_overlay_rewind(e->ov, at);
        return dashi_errf(at != e->n_steps ? DASHI_ERR_INTERNAL : DASHI_ERR_NOMEM, errstr, errstr_size,
                          "engine: cannot open a batch step");
    }
    return DASHI_OK;
}

/* Fire the timers due <= until in the unit, each its own step, in (due, id) order.
 * *complete is false when the unit filled up first. A timer's error (its handler
 * refused it) is returned, its step staged empty. */
static dashi_err batch_advance(dashi_engine *e, dashi_time until, size_t event, bool *complete, char *errstr,
                               size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_timer *t = NULL;
    size_t nt = 0;
    *complete = false;
    while (!unit_full(e)) {
        dashi_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        dashi_timers_free(t, nt);
        t = NULL;
        nt = 0;
        if ((err = e->st->ops->timers_due(e->st, until, 1, &t, &nt, errstr, errstr_size)) != DASHI_OK)
            goto out;
        if (nt == 0) {
            *complete = true;
            goto out;
        }
        if ((err = step_open(e, event, false, t[0].due, t[0].id, errstr, errstr_size)) != DASHI_OK)
            goto out;
        err = run_timer(e, &ctx, &t[0], errstr, errstr_size);
        if (err == DASHI_OK)
            err = build_set(e, &ctx, NULL, errstr, errstr_size);
        /* a failed step is staged empty: its reads are checked like the others', so a
         * failure caused by a wrong guess is found and run again */
        dashi_err cerr = step_close(e, &ctx, err == DASHI_OK, errstr, errstr_size);
        ctx_free_outputs(&ctx);
        if (err == DASHI_OK)
            err = cerr;
        if (err != DASHI_OK)
            goto out;
    }
out:
    dashi_timers_free(t, nt);
    return err;
}

/* Run event j in the unit: its checks, the timers due before it, its step. Its
 * outcome goes to results[j]; *complete is false when the unit filled up while
 * firing its timers (it is run again in the next unit). */
static void batch_event(dashi_engine *e, batch_run *run, size_t j, bool *complete) {
    const dashi_event *ev = run->events[j];
    dashi_batch_result *r = &run->results[j];
    char digest[40];
    dashi_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    r->why[0] = '\0';
    *complete = true;
    if ((r->err = event_check(e, ev, r->why, sizeof(r->why))) != DASHI_OK)
        goto out;
    if ((r->err = batch_advance(e, dashi_event_time(ev), j, complete, r->why, sizeof(r->why))) != DASHI_OK ||
        !*complete)
        goto out;
    if ((r->err = step_open(e, j, true, dashi_event_time(ev), NULL, r->why, sizeof(r->why))) != DASHI_OK)
        goto out;
    event_digest(ev, digest, sizeof(digest));
    r->err = run_event(e, &ctx, ev, digest, r->why, sizeof(r->why));
    if (r->err == DASHI_OK)
        r->err = build_set(e, &ctx, NULL, r->why, sizeof(r->why));
    dashi_err cerr = step_close(e, &ctx, r->err == DASHI_OK, r->why, sizeof(r->why));
    if (r->err == DASHI_OK)
        r->err = cerr;
out:
    if (r->err == DASHI_OK)
        r->why[0] = '\0';
    ctx_free_outputs(&ctx);
    dashi_writeset_clear(&e->ws);
}

/* Run the unit from event j on (earlier steps of j, timers, are kept). */
static void batch_exec(dashi_engine *e, batch_run *run, size_t j) {
    bool complete = true;
    run->done = j;
    run->cut = false;
    run->stop = NO_EVENT;
    run->until_done = run->opts->until == DASHI_TIME_NONE;
    for (; j < run->n; j++) {
        if (unit_full(e))
            return;
        batch_event(e, run, j, &complete);
        if (!complete)
            return;
        dashi_err err = run->results[j].err;
        if (err != DASHI_OK && err != DASHI_ERR_DUPLICATE && err != DASHI_ERR_INVALID) {
            run->stop = j;
            return;
        }
        run->done = j + 1;
        if (err == DASHI_ERR_INVALID && run->opts->stop_after_invalid) {
            run->cut = true;
            return;
        }
    }
    if (!run->until_done && !unit_full(e)) {
        run->final_why[0] = '\0';
        run->final_err = batch_advance(e, run->opts->until, run->n, &complete, run->final_why, sizeof(run->final_why));
        if (run->final_err != DASHI_OK)
            run->stop = run->n;
        else
            run->until_done = complete;
    }
}

/* Hand out the outputs of committed step s, and count it. */
static void step_emit(dashi_engine *e, const batch_run *run, const batch_step *s) {
    if (!s->has_set)
        return;
    const dashi_event *ev = s->is_event ? run->events[s->event] : NULL;
    e->stats.outputs += s->n_outputs;
    if (s->is_event)
        e->stats.events++;
    else
        e->stats.timers++;
    for (size_t i = 0; i < s->n_outputs && run->opts->emit; i++)
        if (run->opts->emit(run->opts->emit_opaque, &s->outputs[i]) != 0)
            break;
    if (run->opts->step_done) {
        dashi_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        ctx.now = s->now;
        ctx.cause = ev ? dashi_event_id(ev) : s->cause;
        ctx.event = ev;
        ctx.outputs = s->outputs;
        ctx.n_outputs = ctx.cap_outputs = s->n_outputs;
        run->opts->step_done(run->opts->step_done_opaque, &ctx);
    }
}

/* Record err for event j (n: the final advance). */
static void set_result(batch_run *run, size_t j, dashi_err err, const char *why) {
    char *dst = j < run->n ? run->results[j].why : run->final_why;
    size_t size = j < run->n ? sizeof(run->results[j].why) : sizeof(run->final_why);
    if (j < run->n)
        run->results[j].err = err;
    else
        run->final_err = err;
    if (dst != why)
        snprintf(dst, size, "%s", why ? why : "");
}

dashi_err dashi_engine_process_batch(dashi_engine *e, const dashi_event *const *events, size_t n,
                                     const dashi_batch_opts *opts, dashi_batch_result *results, size_t *n_done,
                                     char *errstr, size_t errstr_size) {
    batch_run run = {.events = events, .n = n, .opts = opts, .results = results, .stop = NO_EVENT};
    dashi_err err = DASHI_OK;
    unsigned event_conflicts = 0, timer_conflicts = 0;
    size_t conflict_event = NO_EVENT;
    bool finished = false;
    char why[512];

    if (errstr && errstr_size)
        errstr[0] = '\0';
    run.until_done = opts->until == DASHI_TIME_NONE;
    while (!finished) {
        if (run.start == n && run.until_done)
            break;
        /* the unit's timer horizon: the latest time it may fire timers up to */
        dashi_time horizon = DASHI_TIME_NONE;
        for (size_t j = run.start; j < n; j++)
            if (dashi_event_type_is_input(events[j]->type) && dashi_event_time(events[j]) > horizon &&
                dashi_event_time(events[j]) < e->rules->plausible_until)
                horizon = dashi_event_time(events[j]);
        if (opts->until != DASHI_TIME_NONE && opts->until > horizon)
            horizon = opts->until;
        dashi_overlay_begin(e->ov, horizon);
        steps_truncate(e, 0);
        batch_exec(e, &run, run.start);
        /* check the guesses; run again from the first step that read a wrong one */
        for (;;) {
            size_t wrong = NO_EVENT;
            why[0] = '\0';
            if ((err = dashi_overlay_check(e->ov, &wrong, why, sizeof(why))) != DASHI_OK) {
                set_result(&run, run.start, err, why); /* nothing of the unit is applied */
                run.stop = run.start;
                run.done = run.start;
                steps_truncate(e, 0);
                dashi_overlay_rewind(e->ov, 0);
                break;
            }
            if (wrong == NO_EVENT)
                break;
            size_t j = e->steps[wrong].event;
            e->stats.reruns += e->n_steps - wrong;
            steps_truncate(e, wrong);
            dashi_overlay_rewind(e->ov, wrong);
            batch_exec(e, &run, j);
        }
        /* commit the unit */
        size_t applied = 0;
        dashi_err failed = DASHI_OK;
        why[0] = '\0';
        err = dashi_overlay_commit(e->ov, &applied, &failed, why, sizeof(why));
        e->stats.batches += e->n_steps > 0;
        dashi_overlay_end(e->ov);
        for (size_t s = 0; s < applied; s++)
            step_emit(e, &run, &e->steps[s]);
        if (applied == e->n_steps) {
            if (run.done > run.start)
                timer_conflicts = 0;
            for (size_t j = run.start; j < run.done; j++)
                e->stats.duplicates += results[j].err == DASHI_ERR_DUPLICATE;
            if (run.done > conflict_event || conflict_event == NO_EVENT)
                event_conflicts = 0;
            run.start = run.done;
            finished = run.stop != NO_EVENT || run.cut;
            continue;
        }
        /* step f was not applied, nor anything after it */
        batch_step *f = &e->steps[applied];
        size_t j = f->event;
        for (size_t k = run.start; k < j; k++)
            e->stats.duplicates += results[k].err == DASHI_ERR_DUPLICATE;
        run.start = j;
        run.stop = NO_EVENT;
        if (failed != DASHI_ERR_CONFLICT) {
            set_result(&run, j, failed, why[0] ? why : dashi_err_str(failed));
            run.stop = j;
            finished = true;
        } else if (!f->is_event) {
            /* fired (or moved) by another engine since it was read: the next unit reads the queue again */
            e->stats.timers_taken++;
            if (++timer_conflicts > MAX_TIMER_CONFLICTS) {
                step_lost(DASHI_ERR_CONFLICT, f->cause, why, sizeof(why));
                set_result(&run, j, DASHI_ERR_CONFLICT, why);
                run.stop = j;
                finished = true;
            }
        } else if (e->guard) {
            /* a record it read was changed by another writer meanwhile: run the step again */
            if (conflict_event != j) {
                conflict_event = j;
                event_conflicts = 0;
            }
            if (event_conflicts++ >= MAX_STEP_CONFLICTS) {
                step_lost(DASHI_ERR_CONFLICT, dashi_event_id(events[j]), why, sizeof(why));
                set_result(&run, j, DASHI_ERR_CONFLICT, why);
                run.stop = j;
                finished = true;
            } else {
                e->stats.retries++;
            }
        } else {
            dashi_err lost = marker_present(e, dashi_event_id(events[j])) ? DASHI_ERR_DUPLICATE : DASHI_ERR_CONFLICT;
            step_lost(lost, dashi_event_id(events[j]), why, sizeof(why));
            set_result(&run, j, lost, why);
            if (lost == DASHI_ERR_DUPLICATE) {
                e->stats.duplicates++; /* another instance applied the same event first */
                run.start = j + 1;
            } else {
                run.stop = j;
                finished = true;
            }
        }
    }
    steps_truncate(e, 0);
    dashi_view_reset(e->view);
    *n_done = run.start;
    err = DASHI_OK;
    if (run.stop != NO_EVENT && run.stop == run.start) {
        err = run.stop < n ? results[run.stop].err : run.final_err;
        dashi_errf(err, errstr, errstr_size, "%s", run.stop < n ? results[run.stop].why : run.final_why);
    }
    return err;
}
