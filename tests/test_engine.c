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
 * Batches (dashi_engine_process_batch) give what one event at a time gives —
 * results, messages, outputs, state — with duplicates and refused events inside a
 * batch, and stay exact when another engine writes meanwhile: a conflict in the
 * middle of a batch (the chain keeps later sets out, the batch runs again from
 * it), an event applied concurrently (a duplicate), a record changed between two
 * batches (a wrong guess found by the check), a timer fired by the other engine.
 * Outputs are handed out only once their set is in the store.
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
    char *v[128];
    size_t n;
} outs;

static int keep(void *opaque, const dashi_event *ev) {
    outs *o = opaque;
    cr_assert_lt(o->n, 128);
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

/* ---- batches (dashi_engine_process_batch) ---- */

static const char reg_c3[] =
    "{\"type\":\"AccountRegistered\",\"event_id\":\"r3\",\"occurred_at\":\"2022-06-01T10:00:02+08:00\","
    "\"uid\":\"c3\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
    "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"13800000001\"}]}";
static const char amb_a1[] =
    "{\"type\":\"AmbassadorEnrolled\",\"event_id\":\"e1\",\"occurred_at\":\"2022-06-01T09:00:00+08:00\",\"uid\":\"a1\"}";
static const char amb_a2[] =
    "{\"type\":\"AmbassadorEnrolled\",\"event_id\":\"e2\",\"occurred_at\":\"2022-06-01T11:00:00+08:00\",\"uid\":\"a2\"}";
/* the next day: the day-end timers of the registrations fire before it, inside the batch */
static const char amb_a3[] =
    "{\"type\":\"AmbassadorEnrolled\",\"event_id\":\"e3\",\"occurred_at\":\"2022-06-02T12:00:00+08:00\",\"uid\":\"a3\"}";
/* r1 again with other content: refused */
static const char reg_c1_reused[] =
    "{\"type\":\"AccountRegistered\",\"event_id\":\"r1\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\","
    "\"uid\":\"c9\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[]}";
static const char amb_too_early[] =
    "{\"type\":\"AmbassadorEnrolled\",\"event_id\":\"e0\",\"occurred_at\":\"2018-06-01T09:00:00+08:00\",\"uid\":\"a0\"}";

/* Every key, value and timer of the store, as text (malloc'ed). */
static char *dump_all(void) {
    char *buf = NULL;
    size_t len = 0, n = 0;
    dashi_timer *t = NULL;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(g_st->ops->scan(g_st, "", 0, dump_kv, f, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(g_st->ops->timers_due(g_st, (dashi_time)1 << 52, 100000, &t, &n, g_err, sizeof g_err), DASHI_OK);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "timer %s %lld %.*s\n", t[i].id, (long long)t[i].due, (int)t[i].payload_len,
                t[i].payload ? t[i].payload : "");
    dashi_timers_free(t, n);
    fclose(f);
    return buf;
}

typedef struct evs {
    dashi_event ev[16];
    const dashi_event *p[16];
    size_t n;
} evs;

static void evs_parse(evs *e, const char *const *jsons, size_t n) {
    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(dashi_event_parse(jsons[i], strlen(jsons[i]), &e->ev[i], g_err, sizeof g_err), DASHI_OK, "%s",
                     g_err);
        e->p[i] = &e->ev[i];
    }
    e->n = n;
}

static void evs_clear(evs *e) {
    for (size_t i = 0; i < e->n; i++)
        dashi_event_clear(&e->ev[i]);
    e->n = 0;
}

/* One at a time: each event's result and message, the outputs, then the store's dump; the store is cleared after. */
typedef struct reference {
    dashi_err err[16];
    char why[16][512];
    outs o;
    char *dump;
} reference;

static void run_reference(reference *r, const evs *e, dashi_time until) {
    dashi_engine *eng = engine();
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < e->n; i++)
        r->err[i] = dashi_engine_process(eng, e->p[i], keep, &r->o, r->why[i], sizeof r->why[i]);
    if (until != DASHI_TIME_NONE)
        cr_assert_eq(dashi_engine_advance(eng, until, keep, &r->o, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    r->dump = dump_all();
    dashi_engine_destroy(eng);
    cr_assert_eq(g_st->ops->clear(g_st, g_err, sizeof g_err), DASHI_OK);
}

static void reference_free(reference *r) {
    outs_free(&r->o);
    free(r->dump);
}

static void expect_same_outputs(const outs *got, const outs *want) {
    cr_expect_eq(got->n, want->n, "%zu outputs, one at a time %zu", got->n, want->n);
    for (size_t i = 0; i < got->n && i < want->n; i++)
        cr_expect_str_eq(got->v[i], want->v[i], "output %zu", i);
}

ENGINE_TEST(batch_equals_one_at_a_time_with_duplicates_and_refusals) {
    const char *const jsons[] = {amb_a1, reg_c1, reg_c1 /* again: a duplicate */, reg_c1_reused, amb_too_early,
                                 reg_c2, amb_a2, amb_a3, reg_c3};
    evs e;
    reference ref;
    evs_parse(&e, jsons, 9);
    run_reference(&ref, &e, DAY_AFTER + 86400000LL);
    cr_assert_eq(ref.err[2], DASHI_ERR_DUPLICATE, "the test shows nothing: %s", ref.why[2]);
    cr_assert_eq(ref.err[3], DASHI_ERR_INVALID, "the test shows nothing: %s", ref.why[3]);
    cr_assert_eq(ref.err[4], DASHI_ERR_INVALID, "the test shows nothing: %s", ref.why[4]);

    for (size_t batch = 1; batch <= 9; batch += 4) { /* 1, 5, 9 events per call */
        dashi_engine *eng = engine();
        outs o = {0};
        dashi_batch_result res[9];
        for (size_t at = 0; at < e.n; at += batch) {
            size_t n = e.n - at < batch ? e.n - at : batch, done = 0;
            dashi_batch_opts opts = {.emit = keep, .emit_opaque = &o, .until = DASHI_TIME_NONE};
            cr_assert_eq(dashi_engine_process_batch(eng, e.p + at, n, &opts, res + at, &done, g_err, sizeof g_err),
                         DASHI_OK, "%s", g_err);
            cr_assert_eq(done, n);
        }
        dashi_batch_opts fin = {.emit = keep, .emit_opaque = &o, .until = DAY_AFTER + 86400000LL};
        size_t done = 0;
        cr_assert_eq(dashi_engine_process_batch(eng, NULL, 0, &fin, NULL, &done, g_err, sizeof g_err), DASHI_OK, "%s",
                     g_err);
        for (size_t i = 0; i < e.n; i++) {
            cr_expect_eq(res[i].err, ref.err[i], "batch %zu, event %zu: %s, one at a time %s", batch, i,
                         dashi_err_str(res[i].err), dashi_err_str(ref.err[i]));
            if (ref.err[i] != DASHI_OK)
                cr_expect_str_eq(res[i].why, ref.why[i], "batch %zu, event %zu", batch, i);
        }
        expect_same_outputs(&o, &ref.o);
        char *dump = dump_all();
        cr_expect_str_eq(dump, ref.dump, "batch %zu: the state differs from one at a time", batch);
        dashi_engine_stats st;
        dashi_engine_stats_get(eng, &st);
        cr_expect_eq(st.duplicates, 1);
        cr_expect_eq(st.events, 6);
        cr_expect_gt(st.timers, 0, "no timer fired: the test shows less");
        free(dump);
        outs_free(&o);
        dashi_engine_destroy(eng);
        cr_assert_eq(g_st->ops->clear(g_st, g_err, sizeof g_err), DASHI_OK);
    }
    reference_free(&ref);
    evs_clear(&e);
}

ENGINE_TEST(batch_stops_after_an_invalid_event_when_asked) {
    const char *const jsons[] = {amb_a1, amb_too_early, reg_c1, amb_a2};
    evs e;
    evs_parse(&e, jsons, 4);
    dashi_engine *eng = engine();
    outs o = {0};
    dashi_batch_result res[4];
    size_t done = 0;
    dashi_batch_opts opts = {.emit = keep, .emit_opaque = &o, .until = DASHI_TIME_NONE, .stop_after_invalid = true};
    cr_assert_eq(dashi_engine_process_batch(eng, e.p, 4, &opts, res, &done, g_err, sizeof g_err), DASHI_OK, "%s",
                 g_err);
    cr_expect_eq(done, 2, "the batch went on to event %zu", done);
    cr_expect_eq(res[0].err, DASHI_OK);
    cr_expect_eq(res[1].err, DASHI_ERR_INVALID);
    cr_expect(strstr(res[1].why, "outside the plausible range"), "%s", res[1].why);
    dashi_bytes k = {"ev:r1", 5}, v = {NULL, 0};
    cr_assert_eq(g_st->ops->mget(g_st, 1, &k, &v, g_err, sizeof g_err), DASHI_OK);
    cr_expect_null(v.data, "an event after the stop was applied");
    /* the rest, in a second call */
    cr_assert_eq(dashi_engine_process_batch(eng, e.p + 2, 2, &opts, res + 2, &done, g_err, sizeof g_err), DASHI_OK);
    cr_expect_eq(done, 2);
    cr_expect_eq(res[2].err, DASHI_OK);
    cr_expect_eq(res[3].err, DASHI_OK);
    outs_free(&o);
    dashi_engine_destroy(eng);
    evs_clear(&e);
}

/* While A builds the set of its batch's event `at` (the first time), B applies `json` one at a time. */
typedef struct meddle {
    dashi_engine *b;
    outs *b_outs;
    const char *at;   /* event id */
    const char *json; /* what B applies */
    int fired;
} meddle;

static dashi_err b_meddles(void *opaque, const dashi_ctx *ctx, dashi_writeset *ws) {
    meddle *m = opaque;
    (void)ws;
    if (ctx->event && !m->fired && strcmp(dashi_event_id(ctx->event), m->at) == 0) {
        m->fired = 1;
        feed(m->b, m->b_outs, m->json);
    }
    return DASHI_OK;
}

/* A store that lets another writer in right before a chain is applied (after the
 * batch's check read the store): a conflict the commit, not the check, meets. */
typedef struct meddling_store {
    dashi_state base;
    dashi_state *inner;      /* borrowed */
    dashi_engine *b;         /* borrowed: the other writer, over inner */
    outs *b_outs;
    const char *json;        /* what b applies before the next chain */
} meddling_store;

static dashi_err ms_mget(dashi_state *st, size_t n, const dashi_bytes *k, dashi_bytes *v, char *e, size_t es) {
    dashi_state *in = ((meddling_store *)st)->inner;
    return in->ops->mget(in, n, k, v, e, es);
}
static dashi_err ms_apply(dashi_state *st, size_t n, const dashi_writeset *const *s, dashi_err *r, char *e, size_t es) {
    dashi_state *in = ((meddling_store *)st)->inner;
    return in->ops->apply(in, n, s, r, e, es);
}
static dashi_err ms_chain(dashi_state *st, size_t n, const dashi_writeset *const *s, dashi_err *r, size_t *na, char *e,
                          size_t es) {
    meddling_store *m = (meddling_store *)st;
    if (m->json) {
        const char *json = m->json;
        m->json = NULL;
        feed(m->b, m->b_outs, json);
    }
    return dashi_state_apply_chain(m->inner, n, s, r, na, e, es);
}
static dashi_err ms_due(dashi_state *st, dashi_time u, size_t max, dashi_timer **out, size_t *n, char *e, size_t es) {
    dashi_state *in = ((meddling_store *)st)->inner;
    return in->ops->timers_due(in, u, max, out, n, e, es);
}
static dashi_err ms_scan(dashi_state *st, const char *p, size_t pl, dashi_scan_fn fn, void *o, char *e, size_t es) {
    dashi_state *in = ((meddling_store *)st)->inner;
    return in->ops->scan(in, p, pl, fn, o, e, es);
}
static dashi_err ms_count(dashi_state *st, size_t *n, char *e, size_t es) {
    dashi_state *in = ((meddling_store *)st)->inner;
    return in->ops->timers_count(in, n, e, es);
}
static dashi_err ms_clear(dashi_state *st, char *e, size_t es) {
    dashi_state *in = ((meddling_store *)st)->inner;
    return in->ops->clear(in, e, es);
}
static void ms_destroy(dashi_state *st) {
    (void)st;
}
static const struct dashi_state_ops meddling_ops = {
    .name = "meddling", .mget = ms_mget, .apply = ms_apply, .timers_due = ms_due, .scan = ms_scan,
    .timers_count = ms_count, .clear = ms_clear, .destroy = ms_destroy, .apply_chain = ms_chain,
};

/* A's batch [a1, c1, c3, a2] while B applies c2 (sharing c1's phone) — during A's
 * build of c1 (the check finds A's read of the phone's record wrong: A runs again
 * from c1), or right before A's chain is applied (c1's set fails its guard at
 * commit; c3's set, computed on c1's unapplied result, must not commit either: the
 * batch runs again from c1 on B's result). Either way the state and the outputs
 * are the serial ones (c2 first). */
static void check_meddled_batch(bool at_commit) {
    const char *const jsons[] = {amb_a1, reg_c1, reg_c3, amb_a2};
    const char *const serial[] = {reg_c2, amb_a1, reg_c1, reg_c3, amb_a2};
    evs e, all;
    reference ref;
    evs_parse(&all, serial, 5);
    run_reference(&ref, &all, DASHI_TIME_NONE);
    evs_parse(&e, jsons, 4);

    dashi_engine *b = engine(), *a = NULL;
    outs oa = {0}, ob = {0};
    meddle m = {.b = b, .b_outs = &ob, .at = "r1", .json = reg_c2};
    meddling_store ms = {.base = {.ops = &meddling_ops}, .inner = g_st, .b = b, .b_outs = &ob};
    if (at_commit) {
        ms.json = reg_c2;
        a = dashi_engine_new(g_rules, g_keys, &ms.base, g_err, sizeof g_err);
        cr_assert_not_null(a, "%s", g_err);
    } else {
        a = engine();
        dashi_engine_set_step_hook(a, b_meddles, &m);
    }
    dashi_engine_set_guard(a, true);
    dashi_engine_set_guard(b, true);
    dashi_batch_result res[4];
    size_t done = 0;
    dashi_batch_opts opts = {.emit = keep, .emit_opaque = &oa, .until = DASHI_TIME_NONE};
    cr_assert_eq(dashi_engine_process_batch(a, e.p, 4, &opts, res, &done, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert(at_commit ? ms.json == NULL : m.fired == 1, "B did not run");
    cr_assert_eq(done, 4);
    for (size_t i = 0; i < 4; i++)
        cr_expect_eq(res[i].err, DASHI_OK, "event %zu: %s", i, res[i].why);
    dashi_engine_stats sa;
    dashi_engine_stats_get(a, &sa);
    if (at_commit)
        cr_expect_eq(sa.retries, 1, "A ran c1 again %" PRIu64 " time(s)", sa.retries);
    else
        cr_expect_gt(sa.wrong, 0, "the check found no wrong read");
    char *dump = dump_all();
    cr_expect_str_eq(dump, ref.dump, "a meddled batch differs from the serial order c2, a1, c1, c3, a2");
    /* B's outputs then A's are the serial outputs */
    outs both = {0};
    for (size_t i = 0; i < ob.n; i++)
        both.v[both.n++] = ob.v[i];
    for (size_t i = 0; i < oa.n; i++)
        both.v[both.n++] = oa.v[i];
    expect_same_outputs(&both, &ref.o);
    free(dump);
    outs_free(&oa);
    outs_free(&ob);
    reference_free(&ref);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
    evs_clear(&e);
    evs_clear(&all);
}

ENGINE_TEST(batch_write_behind_its_back_is_found_by_the_check) {
    check_meddled_batch(false);
}

ENGINE_TEST(batch_conflict_in_the_middle_runs_again_from_it) {
    check_meddled_batch(true);
}

/* Another instance applies one of the batch's events first: it is a duplicate, the rest applies. */
static void check_concurrent_duplicate(bool guard) {
    const char *const jsons[] = {amb_a1, reg_c1, amb_a2};
    evs e;
    reference ref;
    evs_parse(&e, jsons, 3);
    run_reference(&ref, &e, DASHI_TIME_NONE);
    dashi_engine *a = engine(), *b = engine();
    outs oa = {0}, ob = {0};
    meddle m = {.b = b, .b_outs = &ob, .at = "r1", .json = reg_c1};
    dashi_engine_set_guard(a, guard);
    dashi_engine_set_step_hook(a, b_meddles, &m);
    dashi_batch_result res[3];
    size_t done = 0;
    dashi_batch_opts opts = {.emit = keep, .emit_opaque = &oa, .until = DASHI_TIME_NONE};
    cr_assert_eq(dashi_engine_process_batch(a, e.p, 3, &opts, res, &done, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(m.fired, 1);
    cr_expect_eq(done, 3);
    cr_expect_eq(res[0].err, DASHI_OK);
    cr_expect_eq(res[1].err, DASHI_ERR_DUPLICATE, "guard %d: %s: %s", guard, dashi_err_str(res[1].err), res[1].why);
    cr_expect_eq(res[2].err, DASHI_OK);
    dashi_engine_stats sa;
    dashi_engine_stats_get(a, &sa);
    cr_expect_eq(sa.events, 2);
    cr_expect_eq(sa.duplicates, 1);
    char *dump = dump_all();
    cr_expect_str_eq(dump, ref.dump);
    /* A emitted what one at a time emits but c1's (B emitted those) */
    cr_expect_gt(ob.n, 0);
    cr_expect_eq(oa.n + ob.n, ref.o.n);
    free(dump);
    outs_free(&oa);
    outs_free(&ob);
    reference_free(&ref);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
    evs_clear(&e);
}

ENGINE_TEST(batch_event_applied_concurrently_is_a_duplicate) {
    check_concurrent_duplicate(false);
    cr_assert_eq(g_st->ops->clear(g_st, g_err, sizeof g_err), DASHI_OK);
    check_concurrent_duplicate(true);
}

/* step_done and emit run only once the step's set is in the store. */
typedef struct after_commit {
    outs o;
    size_t steps, events, timers;
} after_commit;

static void check_committed(void *opaque, const dashi_ctx *ctx) {
    after_commit *c = opaque;
    c->steps++;
    if (ctx->event) {
        char key[200];
        snprintf(key, sizeof key, "ev:%s", dashi_event_id(ctx->event));
        dashi_bytes k = {key, strlen(key)}, v = {NULL, 0};
        cr_assert_eq(g_st->ops->mget(g_st, 1, &k, &v, g_err, sizeof g_err), DASHI_OK);
        cr_expect_not_null(v.data, "step_done for %s before its marker is in the store", key);
        free(v.data);
        c->events++;
    } else {
        dashi_timer *t = NULL;
        size_t n = 0;
        cr_assert_eq(g_st->ops->timers_due(g_st, ctx->now, 100000, &t, &n, g_err, sizeof g_err), DASHI_OK);
        for (size_t i = 0; i < n; i++)
            cr_expect_str_neq(t[i].id, ctx->cause, "step_done for timer %s while it is still queued", ctx->cause);
        dashi_timers_free(t, n);
        c->timers++;
    }
    cr_expect_eq(c->o.n >= ctx->n_outputs, 1);
}

ENGINE_TEST(batch_outputs_only_after_their_set_committed) {
    const char *const jsons[] = {amb_a1, reg_c1, reg_c2, amb_a3};
    evs e;
    evs_parse(&e, jsons, 4);
    dashi_engine *eng = engine();
    after_commit c = {0};
    dashi_batch_result res[4];
    size_t done = 0;
    dashi_batch_opts opts = {.emit = keep, .emit_opaque = &c.o, .step_done = check_committed, .step_done_opaque = &c,
                             .until = DASHI_TIME_NONE};
    cr_assert_eq(dashi_engine_process_batch(eng, e.p, 4, &opts, res, &done, g_err, sizeof g_err), DASHI_OK, "%s",
                 g_err);
    cr_expect_eq(c.events, 4);
    cr_expect_gt(c.timers, 0, "no timer fired inside the batch: the test shows less");
    cr_expect_gt(c.o.n, 0);
    outs_free(&c.o);
    dashi_engine_destroy(eng);
    evs_clear(&e);
}

/* A record another writer changed between two batches: A's guess is wrong, the check finds it. */
ENGINE_TEST(batch_reads_what_another_writer_wrote) {
    const char *const serial[] = {reg_c1, reg_c2, reg_c3};
    evs all, e1, e3;
    reference ref;
    evs_parse(&all, serial, 3);
    run_reference(&ref, &all, DASHI_TIME_NONE);
    evs_parse(&e1, (const char *const[]){reg_c1}, 1);
    evs_parse(&e3, (const char *const[]){reg_c3}, 1);
    dashi_engine *a = engine(), *b = engine();
    outs oa = {0}, ob = {0};
    dashi_batch_result res[1];
    size_t done = 0;
    dashi_batch_opts opts = {.emit = keep, .emit_opaque = &oa, .until = DASHI_TIME_NONE};
    cr_assert_eq(dashi_engine_process_batch(a, e1.p, 1, &opts, res, &done, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    feed(b, &ob, reg_c2);
    cr_assert_eq(dashi_engine_process_batch(a, e3.p, 1, &opts, res, &done, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_expect_eq(res[0].err, DASHI_OK);
    dashi_engine_stats sa;
    dashi_engine_stats_get(a, &sa);
    cr_expect_gt(sa.wrong, 0, "no guess was wrong: the test shows nothing");
    char *dump = dump_all();
    cr_expect_str_eq(dump, ref.dump, "A's second batch did not see B's write");
    free(dump);
    outs_free(&oa);
    outs_free(&ob);
    reference_free(&ref);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
    evs_clear(&all);
    evs_clear(&e1);
    evs_clear(&e3);
}

/* A timer another engine fires while A's batch holds it: A's timer set fails, A fires nothing more. */
ENGINE_TEST(batch_timer_fired_by_another_engine_meanwhile) {
    dashi_engine *a = engine(), *b = engine();
    outs oa = {0}, ob = {0};
    race r = {.b = b, .b_outs = &ob};
    feed(a, &oa, reg_json);
    outs_free(&oa);
    size_t queued = timers_queued();
    cr_assert_gt(queued, 0);
    dashi_engine_set_step_hook(a, let_b_fire_first, &r);
    dashi_batch_opts opts = {.emit = keep, .emit_opaque = &oa, .until = DAY_AFTER};
    size_t done = 0;
    cr_assert_eq(dashi_engine_process_batch(a, NULL, 0, &opts, NULL, &done, g_err, sizeof g_err), DASHI_OK, "%s",
                 g_err);
    cr_assert_eq(r.fired, 1);
    dashi_engine_stats sa, sb;
    dashi_engine_stats_get(a, &sa);
    dashi_engine_stats_get(b, &sb);
    cr_expect_eq(sb.timers, queued);
    cr_expect_eq(sa.timers, 0, "A fired %" PRIu64 " timer(s) B had fired", sa.timers);
    cr_expect_eq(sa.timers_taken, 1);
    cr_expect_eq(oa.n, 0);
    cr_expect_eq(timers_queued(), 0);
    outs_free(&oa);
    outs_free(&ob);
    dashi_engine_destroy(a);
    dashi_engine_destroy(b);
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
