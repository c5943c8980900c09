/* view.h — one processing step's window on the state: cached reads, buffered writes, one atomic commit.
 *
 * The rules code reads and edits records (JSON objects) by key; nothing reaches the
 * store until the engine commits the step as one write set, with the event's
 * de-duplication marker, so an event is applied wholly or not at all. Records are
 * stored as compact JSON with sorted keys, so the same state is the same bytes in
 * every back end. A read that fails in the back end returns NULL and poisons the
 * step: the engine sees dashi_view_error() and retries the whole event; handlers
 * need not check I/O errors themselves.
 *
 * Keys are plain strings; each module keeps its own prefix (see README "State
 * layout"). Borrowed pointers returned here stay valid until the step ends.
 */
#ifndef DASHI_VIEW_H
#define DASHI_VIEW_H

#include <stdarg.h>
#include <stdbool.h>

#include <jansson.h>

#include "core/error.h"
#include "core/state.h"
#include "core/time.h"

typedef struct dashi_view dashi_view;

/* Borrows st for the view's lifetime. */
dashi_view *dashi_view_new(dashi_state *st);
void dashi_view_destroy(dashi_view *v); /* NULL-safe */

/* Read-only record at key: borrowed, NULL when absent (or on a back-end error). */
const json_t *dashi_view_get(dashi_view *v, const char *key);
const json_t *dashi_view_getf(dashi_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The record at key for editing: borrowed; an empty object is created when absent.
 * The record is written back at commit. NULL only on a back-end error. */
json_t *dashi_view_edit(dashi_view *v, const char *key);
json_t *dashi_view_editf(dashi_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Replace the record at key (takes val) / delete it. */
void dashi_view_put(dashi_view *v, const char *key, json_t *val);
void dashi_view_del(dashi_view *v, const char *key);
bool dashi_view_exists(dashi_view *v, const char *key);

/* Timers: fire when the clock reaches due (id unique; adding again replaces).
 * payload is taken (may be NULL). */
void dashi_view_timer_add(dashi_view *v, const char *id, dashi_time due, json_t *payload);
void dashi_view_timer_del(dashi_view *v, const char *id);

/* ---- for the engine ---- */
/* Write set of the pending changes (dirty records, deletes, timers) plus extra ops
 * the caller added; ws is filled (not cleared first). */
dashi_err dashi_view_writeset(dashi_view *v, dashi_writeset *ws);
/* Optimistic concurrency for several writers over one store: after
 * dashi_view_writeset(), add to ws a check that every record this step writes
 * still holds the bytes the step read (CHECK_EQ, or CHECK_ABSENT when it was
 * absent), so a concurrent writer's update is never overwritten unseen: the set
 * fails with DASHI_ERR_CONFLICT instead and the step can run again. */
dashi_err dashi_view_guard(const dashi_view *v, dashi_writeset *ws);
/* Forget cache and pending changes (start a new step). */
void dashi_view_reset(dashi_view *v);
/* Keep the cache but drop pending-changes marks (after a successful commit). */
void dashi_view_committed(dashi_view *v);
/* First back-end error of this step (DASHI_OK when none), with its message. */
dashi_err dashi_view_error(const dashi_view *v, const char **msg);

#endif
