/* test_engine.c — the engine's guards: a timer fires once across engines sharing a store; bad events refused.
 *
 * Members of one consumer group each run an engine over the one Redis store and
 * each fires the timers due on its own stream time, so two of them may read the
 * same timer due at once. The timer step's TIMER_CHECK makes the first commit win
 * and the other a no-op. The race is made deterministic with the step hook: while
 * engine A's timer step is between "read the queue" and "apply", the hook lets
 * engine B fire the same timer to completion. Every case runs on the memory and
 * on the Redis store (a private redis-server per test).
 *
 * The engine's own refusals run through the harness (the real engine on a memory
 * store): an event outside the rules' plausible range, or with an id too long for
 * its marker, returns DASHI_ERR_INVALID with its reason, fires no timer and changes
 * nothing.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/event.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"
#include "tests/support/harness.h"
#include "tests/support/redis_server.h"

static dashi_test_redis *g_srv;
static dashi_state *g_st;
static dashi_rules *g_rules;
static dashi_keyring *g_keys;
static char g_err[512];

static void common_setup(void) {
    g_rules = dashi_rules_load(DASHI_SOURCE_DIR "/config/rules.json", g_err, sizeof g_err);
    cr_assert_not_null(g_rules, "%s", g_err);
    g_keys = dashi_keyring_load(NULL, g_err, sizeof g_err);
    cr_assert_not_null(g_keys, "%s", g_err);
}

static void mem_setup(void) {
    common_setup();
    g_st = dashi_state_open("memory", NULL, g_err, sizeof g_err);
    cr_assert_not_null(g_st, "%s", g_err);
}

static void redis_setup(void) {
    common_setup();
    g_srv = dashi_test_redis_start(g_err, sizeof g_err);
    cr_assert_not_null(g_srv, "cannot start redis-server: %s", g_err);
    g_st = dashi_state_open(dashi_test_redis_url(g_srv), "t:", g_err, sizeof g_err);
    cr_assert_not_null(g_st, "%s", g_err);
}

static void teardown(void) {
    dashi_state_destroy(g_st);
    dashi_test_redis_stop(g_srv);
    dashi_keyring_destroy(g_keys);
    dashi_rules_destroy(g_rules);
    g_st = NULL;
    g_srv = NULL;
}

#define ENGINE_TEST(name)                                                                    \
    static void check_##name(void);                                                          \
    Test(engine_memory, name, .init = mem_setup, .fini = teardown, .timeout = 60) { check_##name(); } \
    Test(engine_redis, name, .init = redis_setup, .fini = teardown, .timeout = 60) { check_##name(); } \
    static void check_##name(void)

/* Outputs of one engine, as their JSON text. */
typedef struct outs {
    char *v[64];
    size_t n;
} outs;

static int keep(void *opaque, const dashi_event *ev) {
    outs *o = opaque;
    cr_assert_lt(o->n, 64);
    o->v[o->n++] = dashi_event_dump(ev);
    return 0;
}

static void outs_free(outs *o) {
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i]);
    o->n = 0;
}

static size_t count_type(const outs *o, const char *type) {
    char needle[80];
    size_t n = 0;
    snprintf(needle, sizeof needle, "\"type\":\"%s\"", type);
    for (size_t i = 0; i < o->n; i++)
        n += strstr(o->v[i], needle) != NULL;
    return n;
}

static dashi_engine *engine(void) {
    dashi_engine *e = dashi_engine_new(g_rules, g_keys, g_st, g_err, sizeof g_err);
    cr_assert_not_null(e, "%s", g_err);
    return e;
}

static void feed(dashi_engine *e, outs *o, const char *json) {
    dashi_event ev;
    cr_assert_eq(dashi_event_parse(json, strlen(json), &ev, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(dashi_engine_process(e, &ev, keep, o, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    dashi_event_clear(&ev);
}

static size_t timers_queued(void) {
    size_t n = 0;
    cr_assert_eq(g_st->ops->timers_count(g_st, &n, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    return n;
}

/* A registration on 2022-06-01: its identity decision becomes final at the T+0 day end. */
static const char reg_json[] =
    "{\"type\":\"AccountRegistered\",\"event_id\":\"r1\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\","
    "\"uid\":\"c1\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
    "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"13800000001\"}]}";
#define DAY_AFTER 1654185600000LL /* 2022-06-03T00:00:00+08:00: past every day-end timer of reg_json */

/* The race: while A's timer step is between reading the queue and applying, B fires the same timer. */
typedef struct race {
    dashi_engine *b;
    outs *b_outs;
    int fired; /* B ran once inside A's step */
    dashi_err b_err;
} race;

static dashi_err let_b_fire_first(void *opaque, const dashi_ctx *ctx, dashi_writeset *ws) {
    race *r = opaque;
    (void)ws;
    if (!ctx->event && !r->fired) {
        r->fired = 1;
        char err[256];
        r->b_err = dashi_engine_advance(r->b, DAY_AFTER, keep, r->b_outs, err, sizeof err);
    }
    return DASHI_OK;
}

ENGINE_TEST(a_timer_read_due_by_two_engines_fires_once) {
    dashi_engine *a = engine(), *b = engine(), *ref_e = NULL;
    outs oa = {0}, ob = {0}, oref = {0};
    race r = {.b = b, .b_outs = &ob};
    feed(a, &oa, reg_json);
    outs_free(&oa);
    size_t queued = timers_queued();
    cr_assert_gt(queued, 0, "the registration scheduled no timer: the test shows nothing");

    dashi_engine_set_step_hook(a, let_b_fire_first, &r);
    cr_assert_eq(dashi_engine_advance(a, DAY_AFTER, keep, &oa, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(r.fired, 1, "engine A ran no timer step");
    cr_assert_eq(r.b_err, DASHI_OK);

    dashi_engine_stats sa, sb;
    dashi_engine_stats_get(a, &sa);
    dashi_engine_stats_get(b, &sb);
    /* B fired every due timer; A's step for the first lost its check and A found nothing more to fire */
    cr_expect_eq(sb.timers, queued, "B fired %" PRIu64 " of %zu timers", sb.timers, queued);
    cr_expect_eq(sa.timers, 0, "A fired %" PRIu64 " timer(s) that B had fired", sa.timers);
    cr_expect_eq(sa.timers_taken, 1, "A counted %" PRIu64 " timers taken by another engine", sa.timers_taken);
    cr_expect_eq(timers_queued(), 0);

    /* exactly what one engine alone emits for the same history */
    cr_expect_gt(ob.n, 0, "the timers emitted nothing: the test shows nothing");
    cr_expect_eq(oa.n, 0, "A emitted %zu output(s) for a timer B fired", oa.n);
    cr_expect_eq(count_type(&ob, "SamePersonDecision"), ob.n);
    cr_assert_eq(g_st->ops->clear(g_st, g_err, sizeof g_err), DASHI_OK);
    ref_e = engine();
    feed(ref_e, &oref, reg_json);
    outs_free(&oref);
    cr_assert_eq(dashi_engine_advance(ref_e, DAY_AFTER, keep, &oref, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(oref.n, ob.n, "one engine alone emits %zu, the two together %zu", oref.n, oa.n + ob.n);
    for (size_t i = 0; i < ob.n; i++)
        cr_expect_str_eq(ob.v[i], oref.v[i]);
    outs_free(&oa);
    outs_free(&ob);
    outs_free(&oref);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
    dashi_engine_destroy(ref_e);
}

ENGINE_TEST(a_timer_fired_by_one_engine_is_gone_for_the_other) {
    dashi_engine *a = engine(), *b = engine();
    outs oa = {0}, ob = {0};
    feed(a, &oa, reg_json);
    outs_free(&oa);
    cr_assert_eq(dashi_engine_advance(a, DAY_AFTER, keep, &oa, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(dashi_engine_advance(b, DAY_AFTER, keep, &ob, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_expect_gt(oa.n, 0);
    cr_expect_eq(ob.n, 0);
    outs_free(&oa);
    outs_free(&ob);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
}

/* The check compares due and payload too: a timer re-scheduled since it was read is not fired as read. */
ENGINE_TEST(timer_check_op_sees_a_moved_timer) {
    dashi_writeset ws;
    dashi_err result;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, "t1", 2, "p", 1, 100), DASHI_OK);
    const dashi_writeset *sets[1] = {&ws};
    cr_assert_eq(g_st->ops->apply(g_st, 1, sets, &result, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(result, DASHI_OK);
    struct {
        const char *id, *payload;
        dashi_time due;
        dashi_err want;
    } cases[] = {
        {"t1", "p", 200, DASHI_ERR_CONFLICT}, {"t1", "q", 100, DASHI_ERR_CONFLICT},
        {"t1", "", 100, DASHI_ERR_CONFLICT},  {"t2", "p", 100, DASHI_ERR_CONFLICT},
        {"t1", "p", 100, DASHI_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dashi_writeset_clear(&ws);
        cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_CHECK, cases[i].id, strlen(cases[i].id), cases[i].payload,
                                        strlen(cases[i].payload), cases[i].due), DASHI_OK);
        cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_DEL, "t1", 2, NULL, 0, 0), DASHI_OK);
        cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, "k", 1, "v", 1, 0), DASHI_OK);
        cr_assert_eq(g_st->ops->apply(g_st, 1, sets, &result, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
        cr_expect_eq(result, cases[i].want, "case %zu: %s", i, dashi_err_str(result));
        size_t n = timers_queued();
        dashi_bytes k = {"k", 1}, v = {NULL, 0};
        cr_assert_eq(g_st->ops->mget(g_st, 1, &k, &v, g_err, sizeof g_err), DASHI_OK);
        cr_expect_eq(n, cases[i].want == DASHI_OK ? 0u : 1u, "case %zu: %zu timers queued", i, n);
        cr_expect_eq(v.data != NULL, cases[i].want == DASHI_OK, "case %zu: the set's put %s", i,
                     v.data ? "was applied" : "was not applied");
        free(v.data);
    }
    dashi_writeset_clear(&ws);
}

/* ---- guarded steps: two engines writing one record at once ---- */

static int dump_kv(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    FILE *f = opaque;
    fprintf(f, "%.*s\t%.*s\n", (int)key_len, key, (int)val_len, val);
    return 0;
}

/* Every key and value of the store, as text (malloc'ed). */
static char *dump_store(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(g_st->ops->scan(g_st, "", 0, dump_kv, f, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    fclose(f);
    return buf;
}

/* Registrations of two customers sharing a phone number: both write its identity record. */
static const char reg_c1[] =
    "{\"type\":\"AccountRegistered\",\"event_id\":\"r1\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\","
    "\"uid\":\"c1\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
    "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"13800000001\"}]}";
static const char reg_c2[] =
    "{\"type\":\"AccountRegistered\",\"event_id\":\"r2\",\"occurred_at\":\"2022-06-01T10:00:01+08:00\","
    "\"uid\":\"c2\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
    "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"13800000001\"}]}";

typedef struct interleave {
    dashi_engine *b;
    outs *b_outs;
    int fired;
} interleave;

/* While A's first event step is between reading and applying, B applies reg_c2 to completion. */
static dashi_err let_b_apply_first(void *opaque, const dashi_ctx *ctx, dashi_writeset *ws) {
    interleave *r = opaque;
    (void)ws;
    if (ctx->event && !r->fired) {
        r->fired = 1;
        feed(r->b, r->b_outs, reg_c2);
    }
    return DASHI_OK;
}

/* Run the race: A applies reg_c1 while B applies reg_c2 inside A's step. The store's dump. */
static char *run_race(bool guard, uint64_t *a_retries) {
    dashi_engine *a = engine(), *b = engine();
    outs oa = {0}, ob = {0};
    interleave r = {.b = b, .b_outs = &ob};
    dashi_engine_set_guard(a, guard);
    dashi_engine_set_guard(b, guard);
    dashi_engine_set_step_hook(a, let_b_apply_first, &r);
    feed(a, &oa, reg_c1);
    cr_assert_eq(r.fired, 1);
    dashi_engine_stats sa;
    dashi_engine_stats_get(a, &sa);
    *a_retries = sa.retries;
    outs_free(&oa);
    outs_free(&ob);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
    return dump_store();
}

ENGINE_TEST(guarded_steps_of_two_engines_give_a_serial_order) {
    /* the reference: B's event, then A's, one after the other */
    dashi_engine *c = engine();
    outs oc = {0};
    feed(c, &oc, reg_c2);
    feed(c, &oc, reg_c1);
    outs_free(&oc);
    dashi_engine_destroy(c);
    char *serial = dump_store();
    cr_assert_eq(g_st->ops->clear(g_st, g_err, sizeof g_err), DASHI_OK);

    /* unguarded, A overwrites what B wrote to the shared record: the race shows something */
    uint64_t retries = 0;
    char *lost = run_race(false, &retries);
    cr_assert_str_neq(lost, serial, "the two registrations share no record: the test shows nothing");
    cr_assert_eq(g_st->ops->clear(g_st, g_err, sizeof g_err), DASHI_OK);

    /* guarded, A's step fails its check, runs again on B's result: the serial state */
    char *guarded = run_race(true, &retries);
    cr_expect_eq(retries, 1, "A ran its step again %" PRIu64 " time(s)", retries);
    cr_expect_str_eq(guarded, serial, "a guarded race differs from the serial order B, A");
    free(serial);
    free(lost);
    free(guarded);
}

/* ---- refusals ---- */

static dashi_harness *g_h;

static void harness_setup(void) {
    g_h = dashi_harness_start(NULL);
}

static void harness_teardown(void) {
    dashi_harness_stop(g_h);
}

Test(engine, events_outside_the_plausible_range_are_refused_before_any_timer, .init = harness_setup, .fini = harness_teardown) {
    /* a registration queues its T+0 timer */
    dashi_harness_feed_ok(g_h, "\"type\":\"AccountRegistered\",\"occurred_at\":\"2022-06-05T10:00:00+08:00\",\"uid\":\"c1\","
                             "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[]");
    size_t timers = dashi_harness_timers(g_h, NULL);
    cr_assert_gt(timers, 0);
    char *before = dashi_harness_dump(g_h);
    /* before the first period (2019-01-01): refused */
    cr_expect_eq(dashi_harness_feed(g_h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2018-12-31T23:59:59+08:00\","
                                       "\"uid\":\"a1\""),
                 DASHI_ERR_INVALID);
    cr_expect(strstr(dashi_harness_error(g_h), "occurred_at: outside the plausible range [2019-01-01T00:00:00+08:00, "
                                             "2030-01-01T00:00:00+08:00) of the rules"),
              "%s", dashi_harness_error(g_h));
    /* at the end of the range (exclusive): refused, and no timer fired on the way */
    cr_expect_eq(dashi_harness_feed(g_h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2030-01-01T00:00:00+08:00\","
                                       "\"uid\":\"a2\""),
                 DASHI_ERR_INVALID);
    cr_expect_eq(dashi_harness_timers(g_h, NULL), timers, "a refused event moved the clock");
    char *after = dashi_harness_dump(g_h);
    cr_expect_str_eq(after, before, "a refused event changed the state");
    free(before);
    free(after);
    /* the first instant of the range is accepted */
    dashi_harness_feed_ok(g_h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2019-01-01T00:00:00+08:00\",\"uid\":\"a3\"");
}

Test(engine, an_event_id_too_long_for_a_marker_is_refused, .init = harness_setup, .fini = harness_teardown) {
    /* validation refuses it first; the engine checks again, so its marker key is never cut */
    char id[DASHI_MAX_ID_LEN + 2];
    memset(id, 'e', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_AMBASSADOR_ENROLLED);
    ev.u.ambassador_enrolled.event_id = dashi_strdup(id);
    ev.u.ambassador_enrolled.occurred_at = dashi_harness_time("2022-06-05T10:00:00+08:00");
    ev.u.ambassador_enrolled.uid = dashi_strdup("a1");
    char err[256];
    dashi_engine *e = dashi_engine_new(dashi_harness_rules(g_h), dashi_harness_keys(g_h), dashi_harness_state(g_h), err,
                                       sizeof(err));
    cr_assert(e, "%s", err);
    cr_expect_eq(dashi_engine_process(e, &ev, NULL, NULL, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "event_id: longer than 128 bytes"), "%s", err);
    dashi_engine_destroy(e);
    dashi_event_clear(&ev);
}
