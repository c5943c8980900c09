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

/* Statistics of this engine since it was created. */
typedef struct dashi_engine_stats {
    uint64_t events, duplicates, timers, outputs, retries;
    uint64_t timers_taken; /* timer steps dropped because another engine fired that timer first */
} dashi_engine_stats;
void dashi_engine_stats_get(const dashi_engine *e, dashi_engine_stats *out);

#endif
