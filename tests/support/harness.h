/* harness.h — the real engine for unit tests: feed JSON events, fire timers, query the outputs and the state.
 *
 * A test starts one harness per test (Criterion forks a process per test):
 *
 *     static dashi_harness *h;
 *     static void setup(void) { h = dashi_harness_start(NULL); }     // config/rules.json, memory
 *     static void teardown(void) { dashi_harness_stop(h); }
 *     ...
 *     dashi_harness_feed_ok(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"%s\",\"uid\":\"amb1\"", at);
 *     dashi_harness_advance(h, dashi_harness_time("2022-08-01T00:00:00+08:00"));
 *     const dashi_event *ev = dashi_harness_find(h, DASHI_EV_COMMISSION_EVENT, 0, -1,
 *                                                "order_id", "o1", "event", "CONFIRMED", NULL);
 *
 * Everything runs through core/engine.c as in production: dashi_engine_process()
 * fires the timers due at or before the event, runs identity → commission →
 * campaign, commits one write set with the event's de-duplication marker, and the
 * harness keeps a deep copy (dashi_event_copy) of every output the engine emits,
 * in emit order. No test re-implements a step. The one exception is deliberate:
 * tests that call a module function directly (dashi_identity_person,
 * dashi_campaign_first_order_bonus, ...) get a dashi_ctx over the harness's own
 * view with dashi_harness_ctx_begin() and close it with dashi_harness_ctx_end(),
 * which commits the view like an engine step but without an input event, hence
 * without a marker.
 *
 * Operations a test never expects to fail (start, advance, reading the state,
 * committing a direct step, parsing the JSON a test wrote) fail the test with a
 * Criterion assertion; feed returns the engine's verdict, because refusing bad
 * input is behaviour under test. Compiled into every test program (Criterion and
 * the dashi libraries are linked into all of them).
 */
#ifndef DASHI_TEST_HARNESS_H
#define DASHI_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/ctx.h"
#include "core/error.h"
#include "core/event.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"
#include "core/time.h"

typedef struct dashi_harness dashi_harness;

typedef struct dashi_harness_opts {
    const char *rules;  /* rules file; NULL: DASHI_SOURCE_DIR "/config/rules.json" */
    const char *state;  /* NULL or "memory": a fresh in-memory store; else a Redis URL (dashi_state_open) */
    const char *prefix; /* key prefix in Redis; NULL: "t:" */
    int id_digits;      /* digits of the automatic event ids "e0001"; 0: 4 */
} dashi_harness_opts;

/* ---- life cycle ---- */

/* Load the rules, the development keyring (dashi_keyring_load(NULL)), open the
 * store (emptied with clear(): a Redis store starts empty too) and make an engine.
 * opts may be NULL (all defaults); it is not kept. Asserts on failure. */
dashi_harness *dashi_harness_start(const dashi_harness_opts *opts);
/* Free the outputs, the engine, the store, the keyring and the rules. NULL-safe. */
void dashi_harness_stop(dashi_harness *h);

/* ---- inputs ---- */

/* Process one input event written as printf-style JSON: a whole object "{...}", or
 * only its members ("\"type\":...") which are wrapped in braces. When it has no
 * "event_id", the next automatic one is added: "e" + dashi_harness_seq()+1 in
 * id_digits digits. The text must parse as an input event (asserted: it is the
 * test's own text); the return is the engine's: DASHI_OK, DASHI_ERR_INVALID (the
 * step was dropped as bad input), DASHI_ERR_DUPLICATE, ... with the message in
 * dashi_harness_error(). */
dashi_err dashi_harness_feed(dashi_harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
dashi_err dashi_harness_feedv(dashi_harness *h, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The same, asserting DASHI_OK (the failure names the event and the engine's message). */
void dashi_harness_feed_ok(dashi_harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Automatic event ids handed out so far (the last one was "e<seq>"). */
int dashi_harness_seq(const dashi_harness *h);
/* Why the last feed failed ("" after a success); owned by h. */
const char *dashi_harness_error(const dashi_harness *h);

/* Fire every timer due at or before until (dashi_engine_advance). Asserts success. */
void dashi_harness_advance(dashi_harness *h, dashi_time until);

/* "2022-06-08T10:00:00+08:00" → dashi_time; asserts the text parses. */
dashi_time dashi_harness_time(const char *text);

/* ---- outputs: owned by h; each stays at its address until stop ---- */

size_t dashi_harness_n_outputs(const dashi_harness *h);
const dashi_event *dashi_harness_output(const dashi_harness *h, size_t i); /* NULL when i is out of range */
/* Outputs there were before the last committed step (engine or direct): the
 * index of that step's first output. 0 before any step. */
size_t dashi_harness_mark(const dashi_harness *h);
/* Operations of the last committed step's write set that came from the rules (the
 * view's changes), without the engine's own marker check/put or timer deletion. */
size_t dashi_harness_step_ops(const dashi_harness *h);

/* Queries over outputs i >= from of one type (or any type: -1). nth picks among the
 * matches: 0 the first, 1 the second, ..., -1 the last, -2 the one before; NULL
 * when there is no such match. */
typedef bool (*dashi_harness_pred)(const dashi_event *ev, const void *arg);
/* Matches are the outputs pred accepts (pred NULL: all of the type). */
const dashi_event *dashi_harness_find_if(dashi_harness *h, int type, size_t from, long nth, dashi_harness_pred pred,
                                         const void *arg);
size_t dashi_harness_count_if(dashi_harness *h, int type, size_t from, dashi_harness_pred pred, const void *arg);
/* Matches are the outputs whose JSON form (dashi_event_to_json, EVENTS.md names)
 * has every field: name/value string pairs ending with a NULL name. A name may be
 * a dotted path into nested objects ("referral.link_id"); a value matches a JSON
 * string exactly and any other JSON value by its compact text ("3", "true"); a
 * NULL value matches a field that is absent or null. */
const dashi_event *dashi_harness_find(dashi_harness *h, int type, size_t from, long nth, ...)
    __attribute__((sentinel));
size_t dashi_harness_count(dashi_harness *h, int type, size_t from, ...) __attribute__((sentinel));
/* The same with the pairs in an array (fields[2k] NULL ends it; NULL: no fields). */
const dashi_event *dashi_harness_findv(dashi_harness *h, int type, size_t from, long nth, const char *const *fields);
size_t dashi_harness_countv(dashi_harness *h, int type, size_t from, const char *const *fields);

/* ---- state ---- */

/* Borrowed from h. The rules may be edited in place by a test (a field of a rule
 * set); the engine reads them at every step. The keyring may get keys added. */
dashi_state *dashi_harness_state(dashi_harness *h);
dashi_rules *dashi_harness_rules(dashi_harness *h);
dashi_keyring *dashi_harness_keys(dashi_harness *h);
/* The record stored at key (read with the store's mget), parsed: a new reference
 * the caller json_decref()s, or NULL when the key is absent. Asserts on errors. */
json_t *dashi_harness_record(dashi_harness *h, const char *key);
/* Number of queued timers whose id starts with prefix (NULL: all): "sp:" identity,
 * "cm:" commission, "cp:" campaign. */
size_t dashi_harness_timers(dashi_harness *h, const char *prefix);
/* Is the timer id queued? Its due time in *due (may be NULL). */
bool dashi_harness_timer(dashi_harness *h, const char *id, dashi_time *due);
/* Everything as one text, for searching it: every "key=value" of the store, every
 * "timer-id=payload", every output's JSON, one a line. malloc'ed; the caller frees. */
char *dashi_harness_dump(dashi_harness *h);

/* ---- direct module calls ---- */

/* Fill *ctx for a step of the test's own at now with cause (borrowed; outputs'
 * caused_by): the harness's view (reset), its rules, the rule set in force at now,
 * its keys, no input event. */
void dashi_harness_ctx_begin(dashi_harness *h, dashi_ctx *ctx, dashi_time now, const char *cause);
/* End that step. commit: apply the view's changes as one write set (no marker)
 * and keep ctx's outputs (moved to h) as the engine would emit them; otherwise
 * drop both. Frees what ctx owns and resets the view. Asserts on back-end errors. */
void dashi_harness_ctx_end(dashi_harness *h, dashi_ctx *ctx, bool commit);

#endif
