/* engine.h — runs steps: orders timers before events, dispatches to the rules modules, commits atomically.
 *
 * For each input event the engine first fires every timer due at or before the
 * event's time (RULES: a timer due at t fires before an event stamped t), then
 * checks the event's de-duplication marker, runs identity → commission → campaign
 * on one view, and commits the view's changes plus the marker as one write set.
 * Outputs are handed to the emit callback only after their step committed, in
 * order. A redelivered event (marker present) changes nothing and emits nothing.
 */
#ifndef DASHI_ENGINE_H
#define DASHI_ENGINE_H

#include <stdbool.h>

#include "core/ctx.h"
#include "core/event.h"
#include "core/rules.h"
#include "core/state.h"

typedef struct dashi_engine dashi_engine;

/* Called once per output of a committed step; out is borrowed for the call.
 * Return non-zero to stop processing (the step stays committed). */
typedef int (*dashi_emit_fn)(void *opaque, const dashi_event *out);

/* Borrows rules, keys and state for the engine's lifetime. */
dashi_engine *dashi_engine_new(const dashi_rules *rules, const dashi_keyring *keys, dashi_state *state,
                               char *errstr, size_t errstr_size);
void dashi_engine_destroy(dashi_engine *e); /* NULL-safe */

/* Fire timers due <= the event time, then apply the input event. DASHI_ERR_DUPLICATE
 * when it was applied before (nothing emitted). DASHI_ERR_INVALID when ev is not an
 * input event. Back-end errors are returned as they are (retriable ones may be
 * retried with the same event). */
dashi_err dashi_engine_process(dashi_engine *e, const dashi_event *ev, dashi_emit_fn emit, void *opaque,
                               char *errstr, size_t errstr_size);

/* Fire every timer due <= until, in (due, id) order. Each timer step is guarded by
 * TIMER_CHECK: a timer another engine over the same store fired (or re-scheduled)
 * since it was read is skipped, counted in stats.timers_taken. */
dashi_err dashi_engine_advance(dashi_engine *e, dashi_time until, dashi_emit_fn emit, void *opaque,
                               char *errstr, size_t errstr_size);

/* A step hook runs after the rules, before the step's write set is applied: it may
 * add operations (input progress, a fencing check, an outbox of the outputs) so
 * they commit atomically with the step. ctx->event is NULL for a timer step;
 * ctx->outputs are the step's outputs in emit order. A non-OK return drops the step. */
typedef dashi_err (*dashi_step_hook)(void *opaque, const dashi_ctx *ctx, dashi_writeset *ws);
void dashi_engine_set_step_hook(dashi_engine *e, dashi_step_hook hook, void *opaque);

/* Several engines over one store (members of one group): with guard on, a step
 * also checks that every record it writes still holds what it read
 * (dashi_view_guard); when another engine changed one meanwhile, the event step
 * runs again on the new state (stats.retries), up to 8 times, then returns
 * DASHI_ERR_CONFLICT (which the pipeline reads as being fenced). Off by default:
 * one engine alone (replay) has no concurrent writer and saves the checks. */
void dashi_engine_set_guard(dashi_engine *e, bool on);

/* ---- batches: many events, a few round trips ----
 *
 * dashi_engine_process_batch() applies events[0..n) exactly as n calls of
 * dashi_engine_process() one after the other would (the same outputs in the same
 * order, the same state, the same per-event outcome) — each event, and each timer
 * fired before it, is still its own step with its own atomic write set (marker,
 * guard checks, the hook's ops) — but in about three round trips per batch instead
 * of ten per event: the steps run against a batch overlay (core/overlay.h) that
 * answers reads from what the batch already read or wrote, guesses keys it has not
 * read (the bytes last seen there), reads the store's timers once, and stages the write
 * sets; one mget then checks every guess (a wrong one: the batch runs again from
 * the first step that read it, on the store's bytes), and one call applies the
 * sets as a chain (dashi_state_apply_chain: Redis runs them in one script), where a
 * set is applied only when every set before it was. A set that fails its checks
 * (a duplicate marker written by another instance, a guarded record another member
 * changed, a timer it fired, the pipeline's fencing epoch) therefore takes no later
 * set of the batch with it; the batch continues from that step, on state read
 * again, exactly as one-at-a-time processing retries that step. Outputs are handed
 * out only after their set is in the store, in step order.
 *
 * How the pipeline calls it (consumers/pipeline.c):
 *   - Collect the next records in merge order (as drain() picks them) into an
 *     array of event pointers; apply them with one call. results[i] is what
 *     dashi_engine_process() would have returned for events[i]: DASHI_OK (applied),
 *     DASHI_ERR_DUPLICATE, DASHI_ERR_INVALID (why says why: dead-letter it), or the
 *     error that stopped the batch at that event.
 *   - The step hook (dashi_engine_set_step_hook) is called once for every step
 *     when its write set is built, before the batch commits, with ctx->event ==
 *     events[i] (the same pointer) for an event step, NULL for a timer step
 *     (ctx->cause its id, ctx->now its due). It must only add ops to ws, from ctx
 *     alone: a step's set may be built more than once (the batch ran again from an
 *     earlier step) or never committed. So the progress/epoch/outbox ops go in the
 *     hook, but what is to be produced is taken from step_done (or emit), which run
 *     only for steps whose set committed, in order, after the whole batch commit.
 *   - stop_after_invalid = true ends the batch right after an event refused as
 *     INVALID (results[*n_done - 1]), so its dead letter (with progress = its
 *     offset) is written before any later event of its partition commits progress.
 *   - When *n_done < n the batch stopped at events[*n_done]: results[*n_done].err is
 *     returned. Nothing of events after it is in the store; timers fired before it
 *     may be (as with dashi_engine_process). Retriable (Redis away): call again
 *     from events[*n_done] (a set that committed with its reply lost is then found
 *     by its marker: DUPLICATE; its outbox holds its outputs). DASHI_ERR_CONFLICT:
 *     fenced, as from dashi_engine_process.
 *   - The guard (dashi_engine_set_guard) works as for process(): every record a
 *     step writes is checked to still hold what the step read, the step runs
 *     again on a conflict up to 8 times. In a batch, a record is read from the
 *     store once (at the check), not at each step: another member's write between
 *     that read and the commit makes the set fail and the batch go on from it.
 *     Timers another member schedules during a batch are seen by the next batch.
 */

/* One event's outcome in a batch. */
typedef struct dashi_batch_result {
    dashi_err err;  /* as dashi_engine_process() returns it */
    char why[512];  /* its message when err != DASHI_OK */
} dashi_batch_result;

/* Called once per step whose set committed, in order, after its outputs went to
 * emit. ctx is borrowed for the call: ctx->event (one of the batch's events, or
 * NULL for a timer step), ctx->cause, ctx->now, ctx->outputs[0..n_outputs); its
 * view, rules and set are NULL. */
typedef void (*dashi_step_done_fn)(void *opaque, const dashi_ctx *ctx);

typedef struct dashi_batch_opts {
    dashi_emit_fn emit;           /* per output of a committed step, in order (may be NULL); its return
                                   * value cuts that step's remaining outputs short, as in process() */
    void *emit_opaque;
    dashi_step_done_fn step_done; /* may be NULL */
    void *step_done_opaque;
    dashi_time until;             /* after the events, fire every timer due <= until, as
                                   * dashi_engine_advance(); DASHI_TIME_NONE: not */
    bool stop_after_invalid;      /* end the batch after an event refused as INVALID */
} dashi_batch_opts;

/* Apply events[0..n) (borrowed for the call) in order, as described above.
 * results[0..n) (caller's array) get each event's outcome; *n_done the number of
 * events whose outcome is final (OK, DUPLICATE or INVALID). Returns DASHI_OK when
 * the batch ran to its end (or stopped after an INVALID as asked), else the error
 * that stopped it: results[*n_done].err, or (*n_done == n) the until advance's
 * error, with its message in errstr. */
dashi_err dashi_engine_process_batch(dashi_engine *e, const dashi_event *const *events, size_t n,
                                     const dashi_batch_opts *opts, dashi_batch_result *results, size_t *n_done,
                                     char *errstr, size_t errstr_size);

/* Statistics of this engine since it was created. */
typedef struct dashi_engine_stats {
    uint64_t events, duplicates, timers, outputs, retries;
    uint64_t timers_taken; /* timer steps dropped because another engine fired that timer first */
    uint64_t batches;      /* commits of dashi_engine_process_batch() (a long batch commits in several) */
    uint64_t reruns;       /* steps run again in a batch because a read it made was guessed wrong */
    uint64_t guesses;      /* reads of a batch answered by a guess (core/overlay.h) */
    uint64_t wrong;        /* of them, found wrong by the check */
} dashi_engine_stats;
void dashi_engine_stats_get(const dashi_engine *e, dashi_engine_stats *out);

#endif
