/* test_state.c — the state conformance suite, run against the memory and the Redis store, plus Redis-only cases.
 *
 * Every conformance check is a function of a dashi_state*; STATE_TEST(name)
 * registers it twice, as state_memory/name and state_redis/name, so the two back
 * ends are held to the same behaviour by construction. The Redis fixture starts a
 * private redis-server per test (tests/support/redis_server.h); a server that
 * cannot start fails the test rather than skipping it. Redis-only tests (URL
 * parsing, AUTH, SELECT, key layout, prefix isolation, NOSCRIPT, dropped
 * connections) follow the conformance checks.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"
#include "tests/support/redis_server.h"

static dashi_state *g_st;
static dashi_test_redis *g_srv;
static char g_err[512];

static void mem_setup(void) {
    g_st = dashi_state_open("memory", NULL, g_err, sizeof g_err);
    cr_assert_not_null(g_st, "%s", g_err);
    cr_assert_str_eq(g_st->ops->name, "memory");
}

static void mem_teardown(void) {
    dashi_state_destroy(g_st);
    g_st = NULL;
}

static void redis_setup(void) {
    g_srv = dashi_test_redis_start(g_err, sizeof g_err);
    cr_assert_not_null(g_srv, "cannot start redis-server: %s", g_err);
    g_st = dashi_state_open(dashi_test_redis_url(g_srv), "t:", g_err, sizeof g_err);
    cr_assert_not_null(g_st, "%s", g_err);
    cr_assert_str_eq(g_st->ops->name, "redis");
}

static void redis_teardown(void) {
    dashi_state_destroy(g_st);
    g_st = NULL;
    dashi_test_redis_stop(g_srv);
    g_srv = NULL;
}

TestSuite(state_memory, .timeout = 60);
TestSuite(state_redis, .timeout = 60);

#define STATE_TEST(name)                                                                         \
    static void check_##name(dashi_state *st);                                                  \
    Test(state_memory, name, .init = mem_setup, .fini = mem_teardown) { check_##name(g_st); }   \
    Test(state_redis, name, .init = redis_setup, .fini = redis_teardown) { check_##name(g_st); } \
    static void check_##name(dashi_state *st)

/* ---------------------------------------------------------------- helpers */

static void ws_add(dashi_writeset *ws, dashi_ws_kind kind, const char *key, const char *val, dashi_time due) {
    dashi_err e = dashi_writeset_add(ws, kind, key, strlen(key), val, val ? strlen(val) : 0, due);
    cr_assert_eq(e, DASHI_OK, "writeset_add: %s", dashi_err_str(e));
}

/* Apply one set, return its result (the call itself must succeed). */
static dashi_err apply1(dashi_state *st, const dashi_writeset *ws) {
    dashi_err result = DASHI_ERR_INTERNAL;
    const dashi_writeset *sets[] = {ws};
    char err[512] = "";
    dashi_err e = st->ops->apply(st, 1, sets, &result, err, sizeof err);
    cr_assert_eq(e, DASHI_OK, "apply: %s: %s", dashi_err_str(e), err);
    return result;
}

static void put_bin(dashi_state *st, const char *key, size_t key_len, const char *val, size_t val_len) {
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, key, key_len, val, val_len, 0), DASHI_OK);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
}

static void put(dashi_state *st, const char *key, const char *val) {
    put_bin(st, key, strlen(key), val, strlen(val));
}

static void del(dashi_state *st, const char *key) {
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_DEL, key, NULL, 0);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
}

static void timer_add(dashi_state *st, const char *id, dashi_time due, const char *payload) {
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_TIMER_ADD, id, payload, due);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
}

static void timer_del(dashi_state *st, const char *id) {
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_TIMER_DEL, id, NULL, 0);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
}

/* One write set of kind (PUT or DEL) on the keys key_fmt % i for i = from, from + step, … below to;
 * a PUT's value is val_fmt % i. */
static void apply_range(dashi_state *st, dashi_ws_kind kind, const char *key_fmt, const char *val_fmt, int from,
                        int to, int step) {
    char key[64], val[128];
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    for (int i = from; i < to; i += step) {
        snprintf(key, sizeof key, key_fmt, i);
        if (val_fmt)
            snprintf(val, sizeof val, val_fmt, i);
        ws_add(&ws, kind, key, val_fmt ? val : NULL, 0);
    }
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
}

/* The value of key (malloc'ed, *len set) or NULL when absent. */
static char *get_bin(dashi_state *st, const char *key, size_t key_len, size_t *len) {
    dashi_bytes k = {(char *)key, key_len}, v = {NULL, 0};
    char err[512] = "";
    dashi_err e = st->ops->mget(st, 1, &k, &v, err, sizeof err);
    cr_assert_eq(e, DASHI_OK, "mget: %s: %s", dashi_err_str(e), err);
    if (len)
        *len = v.len;
    return v.data;
}

static char *get(dashi_state *st, const char *key) {
    return get_bin(st, key, strlen(key), NULL);
}

static void expect_val(dashi_state *st, const char *key, const char *want) {
    char *v = get(st, key);
    if (!want) {
        cr_expect_null(v, "key '%s' should be absent, holds '%s'", key, v ? v : "");
    } else {
        cr_expect_not_null(v, "key '%s' should hold '%s', is absent", key, want);
        if (v)
            cr_expect_str_eq(v, want, "key '%s'", key);
    }
    free(v);
}

static size_t timers_count(dashi_state *st) {
    size_t n = 0;
    char err[512] = "";
    dashi_err e = st->ops->timers_count(st, &n, err, sizeof err);
    cr_assert_eq(e, DASHI_OK, "timers_count: %s", err);
    return n;
}

static dashi_timer *timers_due(dashi_state *st, dashi_time until, size_t max, size_t *n) {
    dashi_timer *t = NULL;
    char err[512] = "";
    dashi_err e = st->ops->timers_due(st, until, max, &t, n, err, sizeof err);
    cr_assert_eq(e, DASHI_OK, "timers_due: %s", err);
    return t;
}

/* scan() collector: keys joined by ',' and key=value pairs by ';'. */
typedef struct scan_acc {
    char keys[8192];
    char pairs[8192];
    size_t n;
    size_t stop_after; /* 0: never stop */
} scan_acc;

static int scan_collect(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    scan_acc *a = opaque;
    size_t kl = strlen(a->keys), pl = strlen(a->pairs);
    snprintf(a->keys + kl, sizeof a->keys - kl, "%s%.*s", a->n ? "," : "", (int)key_len, key);
    snprintf(a->pairs + pl, sizeof a->pairs - pl, "%s%.*s=%.*s", a->n ? ";" : "", (int)key_len, key, (int)val_len,
             val);
    a->n++;
    return a->stop_after && a->n >= a->stop_after;
}

static void scan(dashi_state *st, const char *prefix, scan_acc *acc) {
    char err[512] = "";
    memset(acc->keys, 0, sizeof acc->keys);
    memset(acc->pairs, 0, sizeof acc->pairs);
    acc->n = 0;
    dashi_err e = st->ops->scan(st, prefix, prefix ? strlen(prefix) : 0, scan_collect, acc, err, sizeof err);
    cr_assert_eq(e, DASHI_OK, "scan: %s", err);
}

/* ---------------------------------------------------------------- write sets (no store) */

Test(writeset, copies_and_clears) {
    dashi_writeset ws;
    char key[] = "key", val[] = "value";
    dashi_writeset_init(&ws);
    cr_assert_eq(ws.n, 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, key, 3, val, 5, 0), DASHI_OK);
    key[0] = 'X';
    val[0] = 'X';
    cr_assert_eq(ws.n, 100);
    cr_assert(ws.cap >= 100);
    cr_assert_eq(memcmp(ws.ops[99].key, "key", 3), 0, "the set keeps its own copy");
    cr_assert_eq(memcmp(ws.ops[99].val, "value", 5), 0);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_DEL, "k", 1, "ignored", 7, 0), DASHI_OK);
    cr_assert_null(ws.ops[100].val, "DEL carries no value");
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, "e", 1, NULL, 0, 0), DASHI_OK);
    cr_assert_not_null(ws.ops[101].val, "an empty PUT value is empty, not absent");
    cr_assert_eq(ws.ops[101].val_len, 0);
    cr_assert_eq(dashi_writeset_add(&ws, (dashi_ws_kind)42, "k", 1, NULL, 0, 0), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, NULL, 3, NULL, 0, 0), DASHI_ERR_INVALID);
    dashi_writeset_clear(&ws);
    cr_assert_eq(ws.n, 0);
    cr_assert_null(ws.ops);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, "t", 1, "p", 1, 77), DASHI_OK, "usable after clear");
    cr_assert_eq(ws.ops[0].due, 77);
    dashi_writeset_clear(&ws);
    dashi_writeset_clear(NULL);
    dashi_timers_free(NULL, 3);
    dashi_state_destroy(NULL);
}

Test(writeset, open_rejects_empty_spec) {
    char err[256] = "";
    cr_assert_null(dashi_state_open(NULL, NULL, err, sizeof err));
    cr_assert(strlen(err) > 0);
    cr_assert_null(dashi_state_open("bogus://x", NULL, err, sizeof err));
    cr_assert(strstr(err, "scheme"), "%s", err);
}

/* ---------------------------------------------------------------- conformance */

STATE_TEST(get_absent) {
    size_t len = 99;
    char *v = get_bin(st, "nope", 4, &len);
    cr_assert_null(v);
    cr_assert_eq(len, 0);
}

STATE_TEST(put_get_binary) {
    const char key[] = {'b', '\0', 'k', '\xff'};
    const char val[] = {'\0', 'a', '\0', '\n', '\xfe', '\0'};
    put_bin(st, key, sizeof key, val, sizeof val);
    size_t len = 0;
    char *v = get_bin(st, key, sizeof key, &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, sizeof val);
    cr_assert_eq(memcmp(v, val, sizeof val), 0);
    free(v);
    /* "b" (the key up to its NUL) is another key */
    cr_assert_null(get_bin(st, "b", 1, NULL));
    /* an empty value exists and is distinguishable from absent */
    put(st, "empty", "");
    v = get_bin(st, "empty", 5, &len);
    cr_assert_not_null(v, "an empty value is not an absent one");
    cr_assert_eq(len, 0);
    free(v);
    /* empty key */
    put_bin(st, "", 0, "zero", 4);
    v = get_bin(st, "", 0, &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, 4);
    free(v);
}

STATE_TEST(overwrite_and_delete) {
    put(st, "k", "one");
    put(st, "k", "two");
    expect_val(st, "k", "two");
    del(st, "k");
    expect_val(st, "k", NULL);
    del(st, "k"); /* deleting an absent key is fine */
    del(st, "never");
    put(st, "k", "three");
    expect_val(st, "k", "three");
}

STATE_TEST(mget_many_with_absent) {
    enum { N = 1000 };
    dashi_writeset ws;
    char key[32], val[32];
    dashi_writeset_init(&ws);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)
            continue;
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(val, sizeof val, "val:%d", i * 7);
        ws_add(&ws, DASHI_WS_PUT, key, val, 0);
    }
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);

    dashi_bytes *keys = calloc(N, sizeof *keys), *vals = calloc(N, sizeof *vals);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        keys[i].data = strdup(key);
        keys[i].len = strlen(key);
    }
    char err[512] = "";
    cr_assert_eq(st->ops->mget(st, N, keys, vals, err, sizeof err), DASHI_OK, "%s", err);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            cr_expect_null(vals[i].data, "key:%d should be absent", i);
        } else {
            snprintf(val, sizeof val, "val:%d", i * 7);
            cr_assert_not_null(vals[i].data, "key:%d", i);
            cr_expect_eq(vals[i].len, strlen(val));
            cr_expect_eq(memcmp(vals[i].data, val, vals[i].len), 0, "key:%d", i);
        }
        free(vals[i].data);
        free(keys[i].data);
    }
    cr_assert_eq(st->ops->mget(st, 0, keys, vals, err, sizeof err), DASHI_OK, "n = 0 is fine");
    free(keys);
    free(vals);
}

STATE_TEST(check_absent) {
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_CHECK_ABSENT, "marker:1", NULL, 0);
    ws_add(&ws, DASHI_WS_PUT, "marker:1", "done", 0);
    ws_add(&ws, DASHI_WS_PUT, "balance", "10", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    expect_val(st, "marker:1", "done");
    expect_val(st, "balance", "10");
    dashi_writeset_clear(&ws);

    /* The same event again: conflict, and nothing of the set is written, including
     * a PUT placed before the failing check. */
    ws_add(&ws, DASHI_WS_PUT, "balance", "20", 0);
    ws_add(&ws, DASHI_WS_TIMER_ADD, "t:dup", "p", 5);
    ws_add(&ws, DASHI_WS_DEL, "marker:1", NULL, 0);
    ws_add(&ws, DASHI_WS_CHECK_ABSENT, "marker:1", NULL, 0);
    ws_add(&ws, DASHI_WS_PUT, "other", "x", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT);
    dashi_writeset_clear(&ws);
    expect_val(st, "balance", "10");
    expect_val(st, "marker:1", "done");
    expect_val(st, "other", NULL);
    cr_assert_eq(timers_count(st), 0);
}

STATE_TEST(checks_see_the_state_before_the_set) {
    /* Checks are verified before the first write of their set, so a PUT of the
     * same set does not satisfy or break a check. */
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_PUT, "a", "1", 0);
    ws_add(&ws, DASHI_WS_CHECK_ABSENT, "a", NULL, 0);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    expect_val(st, "a", "1");

    ws_add(&ws, DASHI_WS_PUT, "a", "2", 0);
    ws_add(&ws, DASHI_WS_CHECK_EQ, "a", "2", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT);
    dashi_writeset_clear(&ws);
    expect_val(st, "a", "1");
}

STATE_TEST(check_eq) {
    put(st, "epoch", "7");
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_CHECK_EQ, "epoch", "7", 0);
    ws_add(&ws, DASHI_WS_PUT, "offset", "100", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    expect_val(st, "offset", "100");

    ws_add(&ws, DASHI_WS_PUT, "offset", "200", 0);
    ws_add(&ws, DASHI_WS_CHECK_EQ, "epoch", "6", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT, "a stale epoch is fenced");
    dashi_writeset_clear(&ws);
    ws_add(&ws, DASHI_WS_CHECK_EQ, "epoch", "77", 0); /* prefix of neither */
    ws_add(&ws, DASHI_WS_PUT, "offset", "200", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT);
    dashi_writeset_clear(&ws);
    ws_add(&ws, DASHI_WS_CHECK_EQ, "absent", "", 0);
    ws_add(&ws, DASHI_WS_PUT, "offset", "200", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT, "an absent key is not equal to the empty value");
    dashi_writeset_clear(&ws);
    expect_val(st, "offset", "100");

    put(st, "empty", "");
    ws_add(&ws, DASHI_WS_CHECK_EQ, "empty", "", 0);
    ws_add(&ws, DASHI_WS_PUT, "offset", "300", 0);
    cr_assert_eq(apply1(st, &ws), DASHI_OK, "an empty value equals the empty value");
    dashi_writeset_clear(&ws);
    expect_val(st, "offset", "300");

    const char bin[] = {'x', '\0', 'y'};
    put_bin(st, "bin", 3, bin, sizeof bin);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_CHECK_EQ, "bin", 3, bin, 2, 0), DASHI_OK);
    cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT, "a shorter value is not equal");
    dashi_writeset_clear(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_CHECK_EQ, "bin", 3, bin, 3, 0), DASHI_OK);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
}

STATE_TEST(several_sets_middle_conflicts) {
    put(st, "taken", "yes");
    dashi_writeset a, b, c;
    dashi_writeset_init(&a);
    dashi_writeset_init(&b);
    dashi_writeset_init(&c);
    ws_add(&a, DASHI_WS_PUT, "x", "from-a", 0);
    ws_add(&b, DASHI_WS_PUT, "y", "from-b", 0);
    ws_add(&b, DASHI_WS_CHECK_ABSENT, "taken", NULL, 0);
    ws_add(&c, DASHI_WS_CHECK_EQ, "x", "from-a", 0); /* sees a's write: sets apply in order */
    ws_add(&c, DASHI_WS_PUT, "z", "from-c", 0);
    const dashi_writeset *sets[] = {&a, &b, &c};
    dashi_err results[3] = {DASHI_ERR_INTERNAL, DASHI_ERR_INTERNAL, DASHI_ERR_INTERNAL};
    char err[512] = "";
    cr_assert_eq(st->ops->apply(st, 3, sets, results, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(results[0], DASHI_OK);
    cr_assert_eq(results[1], DASHI_ERR_CONFLICT);
    cr_assert_eq(results[2], DASHI_OK);
    expect_val(st, "x", "from-a");
    expect_val(st, "y", NULL);
    expect_val(st, "z", "from-c");
    dashi_writeset_clear(&a);
    dashi_writeset_clear(&b);
    dashi_writeset_clear(&c);
}

/* apply_chain (or the one-set-per-call fallback of a store without it): a set is
 * applied only when every set before it was. */
STATE_TEST(chain_stops_at_the_first_failed_set) {
    put(st, "taken", "yes");
    dashi_writeset a, b, c, d, empty;
    dashi_writeset_init(&a);
    dashi_writeset_init(&b);
    dashi_writeset_init(&c);
    dashi_writeset_init(&d);
    dashi_writeset_init(&empty);
    ws_add(&a, DASHI_WS_PUT, "x", "from-a", 0);
    ws_add(&a, DASHI_WS_TIMER_ADD, "t1", "pa", 50);
    ws_add(&b, DASHI_WS_CHECK_EQ, "x", "from-a", 0); /* sees a's write */
    ws_add(&b, DASHI_WS_TIMER_CHECK, "t1", "pa", 50);  /* and its timer */
    ws_add(&b, DASHI_WS_PUT, "y", "from-b", 0);
    ws_add(&c, DASHI_WS_PUT, "w", "from-c", 0);
    ws_add(&c, DASHI_WS_CHECK_ABSENT, "taken", NULL, 0); /* fails */
    ws_add(&d, DASHI_WS_PUT, "z", "from-d", 0);          /* would apply on its own */
    const dashi_writeset *sets[] = {&a, &empty, &b, &c, &d, &empty};
    dashi_err results[6];
    size_t applied = 99;
    char err[512] = "";
    for (size_t i = 0; i < 6; i++)
        results[i] = DASHI_ERR_INTERNAL;
    cr_assert_eq(dashi_state_apply_chain(st, 6, sets, results, &applied, err, sizeof err), DASHI_OK, "%s", err);
    cr_expect_eq(applied, 3);
    cr_expect_eq(results[0], DASHI_OK);
    cr_expect_eq(results[1], DASHI_OK);
    cr_expect_eq(results[2], DASHI_OK);
    cr_expect_eq(results[3], DASHI_ERR_CONFLICT);
    cr_expect_eq(results[4], DASHI_ERR_CONFLICT, "a set after a failed one is not applied");
    cr_expect_eq(results[5], DASHI_ERR_CONFLICT);
    expect_val(st, "x", "from-a");
    expect_val(st, "y", "from-b");
    expect_val(st, "w", NULL);
    expect_val(st, "z", NULL);
    cr_expect_eq(timers_count(st), 1);

    /* all applied; an empty chain */
    const dashi_writeset *ok[] = {&d, &empty, &a};
    cr_assert_eq(dashi_state_apply_chain(st, 3, ok, results, &applied, err, sizeof err), DASHI_OK, "%s", err);
    cr_expect_eq(applied, 3);
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(results[i], DASHI_OK, "set %zu", i);
    expect_val(st, "z", "from-d");
    cr_assert_eq(dashi_state_apply_chain(st, 0, ok, results, &applied, err, sizeof err), DASHI_OK, "%s", err);
    cr_expect_eq(applied, 0);
    dashi_writeset_clear(&a);
    dashi_writeset_clear(&b);
    dashi_writeset_clear(&c);
    dashi_writeset_clear(&d);
}

/* A long chain of sets that each build on the one before: all applied in order. */
STATE_TEST(chain_of_dependent_sets) {
    dashi_writeset ws[300];
    const dashi_writeset *sets[300];
    dashi_err results[300];
    char prev[16], cur[16], err[512] = "";
    size_t applied = 0;
    for (int i = 0; i < 300; i++) {
        dashi_writeset_init(&ws[i]);
        snprintf(prev, sizeof prev, "%d", i - 1);
        snprintf(cur, sizeof cur, "%d", i);
        if (i)
            ws_add(&ws[i], DASHI_WS_CHECK_EQ, "acct:n", prev, 0);
        else
            ws_add(&ws[i], DASHI_WS_CHECK_ABSENT, "acct:n", NULL, 0);
        ws_add(&ws[i], DASHI_WS_PUT, "acct:n", cur, 0);
        ws_add(&ws[i], DASHI_WS_PUT, i % 2 ? "plainkey" : "cp:other", cur, 0);
        sets[i] = &ws[i];
    }
    cr_assert_eq(dashi_state_apply_chain(st, 300, sets, results, &applied, err, sizeof err), DASHI_OK, "%s", err);
    cr_expect_eq(applied, 300);
    expect_val(st, "acct:n", "299");
    expect_val(st, "plainkey", "299");
    expect_val(st, "cp:other", "298");
    for (int i = 0; i < 300; i++)
        dashi_writeset_clear(&ws[i]);
}

STATE_TEST(empty_sets_and_empty_calls) {
    dashi_writeset empty;
    dashi_writeset_init(&empty);
    dashi_err results[2] = {DASHI_ERR_INTERNAL, DASHI_ERR_INTERNAL};
    const dashi_writeset *sets[] = {&empty, &empty};
    char err[512] = "";
    cr_assert_eq(st->ops->apply(st, 2, sets, results, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(results[0], DASHI_OK);
    cr_assert_eq(results[1], DASHI_OK);
    cr_assert_eq(st->ops->apply(st, 0, sets, results, err, sizeof err), DASHI_OK, "%s", err);
}

STATE_TEST(timers_order_until_max) {
    timer_add(st, "b", 2000, "pb");
    timer_add(st, "a", 2000, "pa");
    timer_add(st, "c", 1000, "pc");
    timer_add(st, "z", 3000, "pz");
    timer_add(st, "aa", 2000, "paa");
    timer_add(st, "early", -5, "neg"); /* before 1970 is a due like any other */
    cr_assert_eq(timers_count(st), 6);

    size_t n = 0;
    dashi_timer *t = timers_due(st, 2000, 100, &n);
    const char *want[] = {"early", "c", "a", "aa", "b"};
    const dashi_time want_due[] = {-5, 1000, 2000, 2000, 2000};
    cr_assert_eq(n, 5, "due <= until is inclusive");
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(t[i].id, want[i], "position %zu", i);
        cr_expect_eq(t[i].due, want_due[i], "position %zu", i);
    }
    cr_expect_eq(t[2].payload_len, 2);
    cr_expect_eq(memcmp(t[2].payload, "pa", 2), 0);
    dashi_timers_free(t, n);

    t = timers_due(st, 2000, 3, &n);
    cr_assert_eq(n, 3, "max limits");
    cr_expect_str_eq(t[2].id, "a");
    dashi_timers_free(t, n);

    t = timers_due(st, 1999, 100, &n);
    cr_assert_eq(n, 2);
    dashi_timers_free(t, n);

    t = timers_due(st, -6, 100, &n);
    cr_assert_eq(n, 0);
    cr_assert_null(t);

    t = timers_due(st, 5000, 0, &n);
    cr_assert_eq(n, 0, "max 0 lists nothing");
    dashi_timers_free(t, n);

    cr_assert_eq(timers_count(st), 6, "listing does not remove");
}

STATE_TEST(timers_millisecond_precision_and_range) {
    const dashi_time base = 1654567890123LL; /* 2022-06-07T02:11:30.123Z */
    const dashi_time big = (1LL << 53);
    timer_add(st, "t2", base + 1, "");
    timer_add(st, "t1", base, "");
    timer_add(st, "t3", big, "");
    timer_add(st, "t0", -big, "");
    size_t n = 0;
    dashi_timer *t = timers_due(st, base, 10, &n);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(t[0].id, "t0");
    cr_expect_eq(t[0].due, -big);
    cr_expect_str_eq(t[1].id, "t1");
    cr_expect_eq(t[1].due, base);
    cr_expect_null(t[1].payload, "an empty payload comes back NULL");
    cr_expect_eq(t[1].payload_len, 0);
    dashi_timers_free(t, n);
    t = timers_due(st, INT64_MAX, 10, &n);
    cr_assert_eq(n, 4);
    cr_expect_eq(t[2].due, base + 1);
    cr_expect_eq(t[3].due, big);
    dashi_timers_free(t, n);

    /* beyond 2^53 a due is not exact in Redis: both stores refuse the call */
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_PUT, "k", "v", 0);
    dashi_writeset bad;
    dashi_writeset_init(&bad);
    ws_add(&bad, DASHI_WS_TIMER_ADD, "huge", "", big + 2);
    const dashi_writeset *sets[] = {&ws, &bad};
    dashi_err results[2];
    char err[512] = "";
    cr_assert_eq(st->ops->apply(st, 2, sets, results, err, sizeof err), DASHI_ERR_INVALID);
    cr_assert(strstr(err, "2^53"), "%s", err);
    expect_val(st, "k", NULL);
    cr_assert_eq(timers_count(st), 4);
    dashi_writeset_clear(&ws);
    dashi_writeset_clear(&bad);
}

STATE_TEST(timers_replace_delete_payload) {
    const char bin_payload[] = {'\0', 'p', '\0'};
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, "day-end", 7, bin_payload, 3, 500), DASHI_OK);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    timer_add(st, "review", 100, "r1");
    cr_assert_eq(timers_count(st), 2);

    size_t n = 0;
    dashi_timer *t = timers_due(st, 1000, 10, &n);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(t[1].id, "day-end");
    cr_assert_eq(t[1].payload_len, 3);
    cr_expect_eq(memcmp(t[1].payload, bin_payload, 3), 0);
    dashi_timers_free(t, n);

    /* same id: replaced (new due and payload), not duplicated */
    timer_add(st, "review", 900, "r2");
    cr_assert_eq(timers_count(st), 2);
    t = timers_due(st, 1000, 10, &n);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(t[0].id, "day-end");
    cr_expect_str_eq(t[1].id, "review");
    cr_expect_eq(t[1].due, 900);
    cr_expect_eq(t[1].payload_len, 2);
    cr_expect_eq(memcmp(t[1].payload, "r2", 2), 0);
    dashi_timers_free(t, n);

    timer_del(st, "day-end");
    timer_del(st, "day-end"); /* absent is fine */
    cr_assert_eq(timers_count(st), 1);
    t = timers_due(st, 1000, 10, &n);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(t[0].id, "review");
    dashi_timers_free(t, n);

    /* add and delete of one id in one set: the later op wins */
    ws_add(&ws, DASHI_WS_TIMER_ADD, "x", "p", 10);
    ws_add(&ws, DASHI_WS_TIMER_DEL, "x", NULL, 0);
    ws_add(&ws, DASHI_WS_TIMER_DEL, "review", NULL, 0);
    ws_add(&ws, DASHI_WS_TIMER_ADD, "review", "r3", 50);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    t = timers_due(st, 1000, 10, &n);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(t[0].id, "review");
    cr_expect_eq(t[0].due, 50);
    dashi_timers_free(t, n);

    /* timer ids live apart from keys */
    put(st, "review", "a key");
    cr_assert_eq(timers_count(st), 1);
    expect_val(st, "review", "a key");
}

STATE_TEST(timers_binary_id_order) {
    /* ids compare as unsigned bytes, shorter first on a common prefix */
    const char id_ff[] = {'\xff'};
    const char id_nul[] = {'a', '\0'};
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, id_ff, 1, "", 0, 10), DASHI_OK);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, id_nul, 2, "", 0, 10), DASHI_OK);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, "a", 1, "", 0, 10), DASHI_OK);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, "b", 1, "", 0, 10), DASHI_OK);
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    size_t n = 0;
    dashi_timer *t = timers_due(st, 10, 10, &n);
    cr_assert_eq(n, 4);
    cr_expect_str_eq(t[0].id, "a");
    cr_expect_eq(memcmp(t[1].id, id_nul, 2), 0, "\"a\\0\" after \"a\"");
    cr_expect_str_eq(t[2].id, "b");
    cr_expect_eq((unsigned char)t[3].id[0], 0xff, "0xff sorts last");
    dashi_timers_free(t, n);
}

STATE_TEST(scan_prefix_order) {
    put(st, "a:2", "two");
    put(st, "a:10", "ten");
    put(st, "a:1", "one");
    put(st, "a", "bare");
    put(st, "b:1", "b-one");
    put(st, "a:\xff", "high");
    put(st, "a*", "star");
    put(st, "ab", "ab");
    timer_add(st, "a:timer", 5, "p");

    scan_acc acc;
    scan(st, "a:", &acc);
    cr_expect_str_eq(acc.keys, "a:1,a:10,a:2,a:\xff");
    cr_expect_str_eq(acc.pairs, "a:1=one;a:10=ten;a:2=two;a:\xff=high");

    scan(st, "a*", &acc); /* glob characters are literal */
    cr_expect_str_eq(acc.keys, "a*");

    scan(st, "", &acc);
    cr_expect_str_eq(acc.keys, "a,a*,a:1,a:10,a:2,a:\xff,ab,b:1", "timers are not keys");

    scan(st, NULL, &acc);
    cr_expect_eq(acc.n, 8);

    scan(st, "zzz", &acc);
    cr_expect_eq(acc.n, 0);

    acc.stop_after = 2;
    scan(st, "a", &acc);
    acc.stop_after = 0;
    cr_expect_str_eq(acc.keys, "a,a*", "non-zero from the callback stops the scan");
}

STATE_TEST(clear_drops_everything) {
    put(st, "k1", "v1");
    put(st, "k2", "v2");
    timer_add(st, "t1", 10, "p");
    timer_add(st, "t2", 20, "");
    char err[512] = "";
    cr_assert_eq(st->ops->clear(st, err, sizeof err), DASHI_OK, "%s", err);
    expect_val(st, "k1", NULL);
    expect_val(st, "k2", NULL);
    cr_assert_eq(timers_count(st), 0);
    scan_acc acc;
    scan(st, NULL, &acc);
    cr_assert_eq(acc.n, 0);
    /* and the store works after */
    put(st, "k1", "again");
    timer_add(st, "t1", 10, "p");
    expect_val(st, "k1", "again");
    cr_assert_eq(timers_count(st), 1);
    cr_assert_eq(st->ops->clear(st, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(st->ops->clear(st, err, sizeof err), DASHI_OK, "clearing an empty store is fine");
}

STATE_TEST(large_batch) {
    enum { N = 10000 };
    dashi_writeset *ws = calloc(N, sizeof *ws);
    const dashi_writeset **sets = calloc(N, sizeof *sets);
    dashi_err *results = calloc(N, sizeof *results);
    char key[64], val[64];
    for (int i = 0; i < N; i++) {
        dashi_writeset_init(&ws[i]);
        snprintf(key, sizeof key, "event:%06d", i);
        ws_add(&ws[i], DASHI_WS_CHECK_ABSENT, key, NULL, 0);
        ws_add(&ws[i], DASHI_WS_PUT, key, "1", 0);
        snprintf(key, sizeof key, "acct:%d", i % 100);
        snprintf(val, sizeof val, "%d", i);
        ws_add(&ws[i], DASHI_WS_PUT, key, val, 0);
        snprintf(key, sizeof key, "timer:%06d", i);
        ws_add(&ws[i], DASHI_WS_TIMER_ADD, key, val, 1000 + i % 50);
        sets[i] = &ws[i];
    }
    char err[512] = "";
    cr_assert_eq(st->ops->apply(st, N, sets, results, err, sizeof err), DASHI_OK, "%s", err);
    for (int i = 0; i < N; i++)
        cr_assert_eq(results[i], DASHI_OK, "set %d", i);
    cr_assert_eq(timers_count(st), N);
    expect_val(st, "event:009999", "1");
    expect_val(st, "acct:7", "9907"); /* the last writer in order wins */

    /* redelivery of the whole batch: every set is a duplicate */
    cr_assert_eq(st->ops->apply(st, N, sets, results, err, sizeof err), DASHI_OK, "%s", err);
    for (int i = 0; i < N; i++)
        cr_assert_eq(results[i], DASHI_ERR_CONFLICT, "set %d", i);

    size_t n = 0;
    dashi_timer *t = timers_due(st, 1000, N, &n);
    cr_assert_eq(n, N / 50, "200 timers are due at 1000");
    cr_expect_str_eq(t[0].id, "timer:000000");
    cr_expect_str_eq(t[1].id, "timer:000050");
    dashi_timers_free(t, n);

    for (int i = 0; i < N; i++)
        dashi_writeset_clear(&ws[i]);
    free(ws);
    free(sets);
    free(results);
}

/* ---------------------------------------------------------------- Redis URL parsing */

static dashi_redis_url parse_ok(const char *url) {
    dashi_redis_url u;
    char err[256] = "";
    dashi_err e = dashi_redis_url_parse(url, &u, err, sizeof err);
    cr_assert_eq(e, DASHI_OK, "%s: %s", url, err);
    return u;
}

static void parse_bad(const char *url, const char *msg_part) {
    dashi_redis_url u;
    char err[256] = "";
    cr_assert_eq(dashi_redis_url_parse(url, &u, err, sizeof err), DASHI_ERR_INVALID, "%s should not parse", url);
    cr_assert(strstr(err, msg_part), "%s: message '%s' lacks '%s'", url, err, msg_part);
    cr_assert_null(u.host);
    cr_assert_null(u.password);
}

Test(redis_url, tcp_forms) {
    dashi_redis_url u = parse_ok("redis://localhost");
    cr_expect_str_eq(u.host, "localhost");
    cr_expect_eq(u.port, 6379);
    cr_expect_null(u.path);
    cr_expect_null(u.user);
    cr_expect_null(u.password);
    cr_expect_eq(u.db, 0);
    cr_expect_eq(u.timeout_ms, 10000);
    dashi_redis_url_free(&u);

    u = parse_ok("redis://10.0.0.5:6380/3");
    cr_expect_str_eq(u.host, "10.0.0.5");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 3);
    dashi_redis_url_free(&u);

    u = parse_ok("redis://dashi:s3cr%40t:x@redis.internal:7000/2?timeout_ms=250");
    cr_expect_str_eq(u.user, "dashi");
    cr_expect_str_eq(u.password, "s3cr@t:x", "first ':' splits user from password; %%40 is '@'");
    cr_expect_str_eq(u.host, "redis.internal");
    cr_expect_eq(u.port, 7000);
    cr_expect_eq(u.db, 2);
    cr_expect_eq(u.timeout_ms, 250);
    dashi_redis_url_free(&u);

    u = parse_ok("redis://:only-pass@h/");
    cr_expect_null(u.user, "':password' has no user");
    cr_expect_str_eq(u.password, "only-pass");
    cr_expect_eq(u.db, 0);
    dashi_redis_url_free(&u);

    u = parse_ok("redis://justpass@h:1");
    cr_expect_null(u.user, "'x@' is a password, as in redis-cli");
    cr_expect_str_eq(u.password, "justpass");
    cr_expect_eq(u.port, 1);
    dashi_redis_url_free(&u);

    u = parse_ok("redis://[::1]:6390?db=4");
    cr_expect_str_eq(u.host, "::1");
    cr_expect_eq(u.port, 6390);
    cr_expect_eq(u.db, 4);
    dashi_redis_url_free(&u);

    dashi_redis_url_free(NULL);
}

Test(redis_url, unix_forms) {
    dashi_redis_url u = parse_ok("unix:///var/run/redis/redis.sock");
    cr_expect_str_eq(u.path, "/var/run/redis/redis.sock");
    cr_expect_null(u.host);
    cr_expect_eq(u.db, 0);
    dashi_redis_url_free(&u);

    u = parse_ok("unix:///tmp/r.sock?db=5");
    cr_expect_str_eq(u.path, "/tmp/r.sock");
    cr_expect_eq(u.db, 5);
    dashi_redis_url_free(&u);

    u = parse_ok("redis+unix://app:pw@/tmp/dir%20x/r.sock?db=1&timeout_ms=900");
    cr_expect_str_eq(u.user, "app");
    cr_expect_str_eq(u.password, "pw");
    cr_expect_str_eq(u.path, "/tmp/dir x/r.sock");
    cr_expect_eq(u.db, 1);
    cr_expect_eq(u.timeout_ms, 900);
    dashi_redis_url_free(&u);

    u = parse_ok("redis+unix:///tmp/a@b/r.sock");
    cr_expect_str_eq(u.path, "/tmp/a@b/r.sock", "an '@' inside the path is not userinfo");
    cr_expect_null(u.password);
    dashi_redis_url_free(&u);
}

Test(redis_url, rejects) {
    parse_bad("http://h", "scheme");
    parse_bad("localhost:6379", "scheme");
    parse_bad("redis://", "no host");
    parse_bad("redis://u:pw@", "no host");
    parse_bad("redis://h:0", "port");
    parse_bad("redis://h:70000", "port");
    parse_bad("redis://h:abc", "port");
    parse_bad("redis://h/x", "db");
    parse_bad("redis://h?db=-1", "db");
    parse_bad("redis://h?bogus=1", "unknown query key");
    parse_bad("redis://h?timeout_ms=0", "timeout_ms");
    parse_bad("unix://", "absolute path");
    parse_bad("unix://relative.sock", "absolute path");
    parse_bad("redis://u:bad%zz@h", "%-escape");
    parse_bad("redis://[::1", "'['");
    /* the password is never echoed */
    dashi_redis_url u;
    char err[256] = "";
    cr_assert_neq(dashi_redis_url_parse("redis://u:topsecret@h:99999", &u, err, sizeof err), DASHI_OK);
    cr_assert_null(strstr(err, "topsecret"), "%s", err);
}

/* ---------------------------------------------------------------- Redis only */

static dashi_test_redis *start_server(void) {
    char err[512] = "";
    dashi_test_redis *srv = dashi_test_redis_start(err, sizeof err);
    cr_assert_not_null(srv, "cannot start redis-server: %s", err);
    return srv;
}

/* A Redis store on srv's server under prefix (NULL: none), asserted to open. */
static dashi_state *open_redis(const dashi_test_redis *srv, const char *prefix) {
    char err[512] = "";
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), prefix, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    return st;
}

static void cmd(const dashi_test_redis *srv, const char *const *argv, const char *want) {
    char out[256];
    int rc = dashi_test_redis_command(srv, out, sizeof out, argv);
    cr_assert_eq(rc, 0, "%s: %s", argv[0], out);
    if (want)
        cr_assert_str_eq(out, want, "%s", argv[0]);
}

Test(state_redis_only, key_layout) {
    dashi_test_redis *srv = start_server();
    dashi_state *st = open_redis(srv, "dashi:");
    put(st, "timers", "a data key named like the timer set");
    timer_add(st, "t1", 42, "payload");
    cmd(srv, (const char *[]){"GET", "dashi:k:timers", NULL}, "a data key named like the timer set");
    cmd(srv, (const char *[]){"ZSCORE", "dashi:timers", "t1", NULL}, "42");
    cmd(srv, (const char *[]){"HGET", "dashi:timerp", "t1", NULL}, "payload");
    cmd(srv, (const char *[]){"DBSIZE", NULL}, "3");
    cr_assert_eq(timers_count(st), 1);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, prefix_isolation) {
    dashi_test_redis *srv = start_server();
    dashi_state *a = open_redis(srv, "p1:");
    dashi_state *b = open_redis(srv, "p2:");
    dashi_state *none = open_redis(srv, NULL);

    put(a, "k", "from-a");
    put(b, "k", "from-b");
    put(a, "only-a", "1");
    timer_add(a, "t", 1, "");
    timer_add(b, "t", 2, "");
    timer_add(b, "u", 3, "");
    expect_val(a, "k", "from-a");
    expect_val(b, "k", "from-b");
    expect_val(b, "only-a", NULL);
    expect_val(none, "k", NULL);
    cr_assert_eq(timers_count(a), 1);
    cr_assert_eq(timers_count(b), 2);
    cr_assert_eq(timers_count(none), 0);

    scan_acc acc;
    scan(a, "", &acc);
    cr_expect_str_eq(acc.keys, "k,only-a");
    scan(b, "", &acc);
    cr_expect_str_eq(acc.keys, "k");

    /* a check in one store does not see the other's keys */
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_CHECK_ABSENT, "only-a", NULL, 0);
    ws_add(&ws, DASHI_WS_PUT, "x", "1", 0);
    cr_assert_eq(apply1(b, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);

    char e2[512] = "";
    cr_assert_eq(a->ops->clear(a, e2, sizeof e2), DASHI_OK, "%s", e2);
    expect_val(a, "k", NULL);
    cr_assert_eq(timers_count(a), 0);
    expect_val(b, "k", "from-b");
    cr_assert_eq(timers_count(b), 2);
    /* the store without prefix clears only its own layout, not other prefixes */
    cr_assert_eq(none->ops->clear(none, e2, sizeof e2), DASHI_OK, "%s", e2);
    expect_val(b, "k", "from-b");

    dashi_state_destroy(a);
    dashi_state_destroy(b);
    dashi_state_destroy(none);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, glob_characters_in_store_prefix) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *a = open_redis(srv, "p?[x]*:");
    dashi_state *b = open_redis(srv, "pZx*:");
    put(a, "k", "a");
    put(b, "k", "b");
    scan_acc acc;
    scan(a, "", &acc);
    cr_expect_str_eq(acc.pairs, "k=a");
    cr_assert_eq(a->ops->clear(a, err, sizeof err), DASHI_OK, "%s", err);
    expect_val(b, "k", "b");
    dashi_state_destroy(a);
    dashi_state_destroy(b);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, auth_user_password_and_db) {
    dashi_test_redis *srv = start_server();
    char url[512], err[512] = "";
    cmd(srv, (const char *[]){"ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "&*", "+@all", NULL}, "OK");

    snprintf(url, sizeof url, "redis+unix://alice:wrong-pw@%s", dashi_test_redis_socket(srv));
    cr_assert_null(dashi_state_open(url, "t:", err, sizeof err), "a wrong password is refused");
    cr_assert(strstr(err, "alice"), "%s", err);
    cr_assert(strstr(err, "refused"), "%s", err);
    cr_assert(strstr(err, "WRONGPASS"), "%s", err);
    cr_assert_null(strstr(err, "wrong-pw"), "the password is not echoed: %s", err);

    snprintf(url, sizeof url, "redis+unix://alice:s3cret@%s?db=3", dashi_test_redis_socket(srv));
    dashi_state *st = dashi_state_open(url, "t:", err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    put(st, "k", "in-db-3");
    expect_val(st, "k", "in-db-3");
    cmd(srv, (const char *[]){"EXISTS", "t:k:k", NULL}, "0"); /* not in db 0 */
    dashi_state_destroy(st);

    redisContext *c = redisConnectUnix(dashi_test_redis_socket(srv));
    cr_assert(c && !c->err);
    redisReply *r = redisCommand(c, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(c, "GET t:k:k");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    cr_expect_str_eq(r->str, "in-db-3");
    freeReplyObject(r);
    redisFree(c);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, auth_password_only) {
    dashi_test_redis *srv = start_server();
    char url[512], err[512] = "";
    cmd(srv, (const char *[]){"CONFIG", "SET", "requirepass", "pw-for-default", NULL}, "OK");

    cr_assert_null(dashi_state_open(dashi_test_redis_url(srv), "t:", err, sizeof err));
    cr_assert(strstr(err, "wants a password"), "%s", err);

    snprintf(url, sizeof url, "redis+unix://bad@%s", dashi_test_redis_socket(srv));
    cr_assert_null(dashi_state_open(url, "t:", err, sizeof err));
    cr_assert(strstr(err, "default user"), "%s", err);
    cr_assert(strstr(err, "refused"), "%s", err);

    snprintf(url, sizeof url, "redis+unix://pw-for-default@%s", dashi_test_redis_socket(srv));
    dashi_state *st = dashi_state_open(url, "t:", err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    put(st, "k", "v");
    expect_val(st, "k", "v");
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, unreachable) {
    char err[512] = "";
    cr_assert_null(dashi_state_open("unix:///nonexistent/dashi.sock", "t:", err, sizeof err));
    cr_assert(strstr(err, "cannot connect"), "%s", err);
    cr_assert(strstr(err, "/nonexistent/dashi.sock"), "%s", err);
    cr_assert_null(dashi_state_open("redis://127.0.0.1:1?timeout_ms=500", "t:", err, sizeof err));
    cr_assert(strstr(err, "127.0.0.1:1"), "%s", err);
}

Test(state_redis_only, noscript_recovery) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *st = open_redis(srv, "t:");
    put(st, "a", "1");
    timer_add(st, "t", 5, "p");

    cmd(srv, (const char *[]){"SCRIPT", "FLUSH", NULL}, "OK");
    /* a pipeline of several sets all hitting NOSCRIPT is resent whole, in order */
    dashi_writeset w1, w2;
    dashi_writeset_init(&w1);
    dashi_writeset_init(&w2);
    ws_add(&w1, DASHI_WS_PUT, "b", "2", 0);
    ws_add(&w2, DASHI_WS_CHECK_EQ, "b", "2", 0);
    ws_add(&w2, DASHI_WS_PUT, "c", "3", 0);
    const dashi_writeset *sets[] = {&w1, &w2};
    dashi_err results[2];
    cr_assert_eq(st->ops->apply(st, 2, sets, results, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(results[0], DASHI_OK);
    cr_assert_eq(results[1], DASHI_OK);
    expect_val(st, "c", "3");
    dashi_writeset_clear(&w1);
    dashi_writeset_clear(&w2);

    cmd(srv, (const char *[]){"SCRIPT", "FLUSH", NULL}, "OK");
    size_t n = 0;
    dashi_timer *t = timers_due(st, 10, 10, &n);
    cr_assert_eq(n, 1, "timers_due reloads its script too");
    dashi_timers_free(t, n);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

/* The chain script: reloaded on NOSCRIPT; a set refused half-way through a chain
 * leaves the sets before it applied and writes nothing of its own or later. */
Test(state_redis_only, chain_noscript_and_refused_set) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), "t:", err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    dashi_writeset a, b, c;
    dashi_writeset_init(&a);
    dashi_writeset_init(&b);
    dashi_writeset_init(&c);
    ws_add(&a, DASHI_WS_PUT, "a", "1", 0);
    ws_add(&b, DASHI_WS_CHECK_EQ, "a", "1", 0);
    ws_add(&b, DASHI_WS_TIMER_ADD, "t", "p", 5);
    ws_add(&c, DASHI_WS_PUT, "c", "3", 0);
    const dashi_writeset *sets[] = {&a, &b, &c};
    dashi_err results[3];
    size_t applied = 0;

    cmd(srv, (const char *[]){"SCRIPT", "FLUSH", NULL}, "OK");
    cr_assert_eq(dashi_state_apply_chain(st, 3, sets, results, &applied, err, sizeof err), DASHI_OK, "%s", err);
    cr_expect_eq(applied, 3);
    expect_val(st, "c", "3");
    cr_expect_eq(timers_count(st), 1);

    /* the timer keys hold the wrong type: b is refused, a applied, c not */
    cr_assert_eq(st->ops->clear(st, err, sizeof err), DASHI_OK, "%s", err);
    cmd(srv, (const char *[]){"SET", "t:timers", "not a zset", NULL}, "OK");
    cr_expect_eq(dashi_state_apply_chain(st, 3, sets, results, &applied, err, sizeof err), DASHI_ERR_BACKEND);
    cr_expect(strstr(err, "wrong type"), "%s", err);
    cr_expect_eq(applied, 1);
    cr_expect_eq(results[0], DASHI_OK);
    cr_expect_eq(results[1], DASHI_ERR_BACKEND);
    cr_expect_eq(results[2], DASHI_ERR_CONFLICT);
    expect_val(st, "a", "1");
    expect_val(st, "c", NULL);

    /* a server gone: nothing known applied */
    cr_assert_eq(dashi_test_redis_kill(srv), 0);
    cr_expect_eq(dashi_state_apply_chain(st, 3, sets, results, &applied, err, sizeof err), DASHI_ERR_TRANSPORT);
    cr_expect_eq(applied, 0);
    cr_expect_eq(results[0], DASHI_ERR_TRANSPORT);
    dashi_writeset_clear(&a);
    dashi_writeset_clear(&b);
    dashi_writeset_clear(&c);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

/* A chain longer than one script call goes as several calls; a conflict in the
 * second call keeps the first call's sets and applies nothing after it. */
Test(state_redis_only, long_chain_in_several_calls, .timeout = 120) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), "t:", err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    enum { SETS = 12, OPS = 10000 }; /* 120,000 ops: more than one call takes */
    dashi_writeset ws[SETS];
    const dashi_writeset *sets[SETS];
    dashi_err results[SETS];
    size_t applied = 0;
    char key[32];
    put(st, "stop", "x");
    for (int i = 0; i < SETS; i++) {
        dashi_writeset_init(&ws[i]);
        for (int k = 0; k < OPS; k++) {
            snprintf(key, sizeof key, "k%d", k);
            ws_add(&ws[i], DASHI_WS_PUT, key, i == 0 ? "first" : "later", 0);
        }
        snprintf(key, sizeof key, "set%d", i);
        ws_add(&ws[i], DASHI_WS_PUT, key, "done", 0);
        if (i == 11)
            ws_add(&ws[i], DASHI_WS_CHECK_ABSENT, "stop", NULL, 0);
        sets[i] = &ws[i];
    }
    cr_assert_eq(dashi_state_apply_chain(st, SETS, sets, results, &applied, err, sizeof err), DASHI_OK, "%s", err);
    cr_expect_eq(applied, 11);
    cr_expect_eq(results[11], DASHI_ERR_CONFLICT);
    expect_val(st, "set10", "done");
    expect_val(st, "set11", NULL);
    expect_val(st, "k5", "later");
    /* the first call refused as a whole: the chain stops before anything */
    del(st, "stop");
    cmd(srv, (const char *[]){"SET", "t:timers", "not a zset", NULL}, "OK");
    ws_add(&ws[0], DASHI_WS_TIMER_DEL, "t", NULL, 0);
    cr_expect_eq(dashi_state_apply_chain(st, SETS, sets, results, &applied, err, sizeof err), DASHI_ERR_BACKEND);
    cr_expect_eq(applied, 0);
    expect_val(st, "set11", NULL);
    for (int i = 0; i < SETS; i++)
        dashi_writeset_clear(&ws[i]);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, dropped_connection_is_transport_then_reconnects) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *st = open_redis(srv, "t:");
    put(st, "a", "1");

    cr_assert_eq(dashi_test_redis_kill(srv), 0);
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_PUT, "b", "2", 0);
    const dashi_writeset *sets[] = {&ws, &ws};
    dashi_err results[2] = {DASHI_OK, DASHI_OK};
    dashi_err e = st->ops->apply(st, 2, sets, results, err, sizeof err);
    cr_assert_eq(e, DASHI_ERR_TRANSPORT, "%s: %s", dashi_err_str(e), err);
    cr_assert(dashi_err_retriable(e));
    cr_assert_eq(results[0], DASHI_ERR_TRANSPORT);
    cr_assert_eq(results[1], DASHI_ERR_TRANSPORT);
    cr_assert(strlen(err) > 0);

    /* every other op fails the same way while the server is down */
    dashi_bytes k = {"a", 1}, v = {NULL, 0};
    cr_assert_eq(st->ops->mget(st, 1, &k, &v, err, sizeof err), DASHI_ERR_TRANSPORT, "%s", err);
    cr_assert_null(v.data);
    dashi_timer *t = NULL;
    size_t n = 0;
    cr_assert_eq(st->ops->timers_due(st, 10, 10, &t, &n, err, sizeof err), DASHI_ERR_TRANSPORT, "%s", err);
    cr_assert_eq(st->ops->timers_count(st, &n, err, sizeof err), DASHI_ERR_TRANSPORT, "%s", err);
    scan_acc acc = {0};
    cr_assert_eq(st->ops->scan(st, "", 0, scan_collect, &acc, err, sizeof err), DASHI_ERR_TRANSPORT, "%s", err);
    cr_assert_eq(st->ops->clear(st, err, sizeof err), DASHI_ERR_TRANSPORT, "%s", err);

    /* back up (empty: no persistence): the store reconnects and reloads its scripts */
    cr_assert_eq(dashi_test_redis_restart(srv), 0);
    cr_assert_eq(st->ops->apply(st, 1, sets, results, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(results[0], DASHI_OK);
    expect_val(st, "b", "2");
    expect_val(st, "a", NULL);
    dashi_writeset_clear(&ws);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, connection_drops_between_calls) {
    /* The server restarts while the store is idle: the first call notices the dead
     * socket (TRANSPORT, nothing applied or a clean reconnect), the retry works. */
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *st = open_redis(srv, "t:");
    put(st, "a", "1");
    cr_assert_eq(dashi_test_redis_restart(srv), 0);
    dashi_bytes k = {"a", 1}, v = {NULL, 0};
    dashi_err e = st->ops->mget(st, 1, &k, &v, err, sizeof err);
    cr_assert(e == DASHI_ERR_TRANSPORT || e == DASHI_OK, "%s: %s", dashi_err_str(e), err);
    free(v.data);
    cr_assert_eq(st->ops->mget(st, 1, &k, &v, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_null(v.data, "the restarted server is empty");
    put(st, "a", "2");
    expect_val(st, "a", "2");
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, server_error_is_backend) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *st = open_redis(srv, "t:");
    /* someone else's value of the wrong type under our timer key: the script refuses
     * before writing anything */
    cmd(srv, (const char *[]){"SET", "t:timers", "not a zset", NULL}, "OK");
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    ws_add(&ws, DASHI_WS_PUT, "k", "v", 0);
    ws_add(&ws, DASHI_WS_TIMER_ADD, "t", "p", 5);
    dashi_writeset ok;
    dashi_writeset_init(&ok);
    ws_add(&ok, DASHI_WS_PUT, "k2", "v2", 0);
    const dashi_writeset *sets[] = {&ws, &ok};
    dashi_err results[2];
    dashi_err e = st->ops->apply(st, 2, sets, results, err, sizeof err);
    cr_assert_eq(e, DASHI_ERR_BACKEND, "%s", err);
    cr_assert(!dashi_err_retriable(e));
    cr_assert(strstr(err, "wrong type"), "%s", err);
    cr_assert_eq(results[0], DASHI_ERR_BACKEND);
    cr_assert_eq(results[1], DASHI_OK, "later sets of the pipeline still apply");
    expect_val(st, "k", NULL);
    expect_val(st, "k2", "v2");
    dashi_writeset_clear(&ws);
    dashi_writeset_clear(&ok);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, test_server_restart_keeps_url) {
    dashi_test_redis *srv = start_server();
    char url[256];
    snprintf(url, sizeof url, "%s", dashi_test_redis_url(srv));
    cr_assert(strncmp(url, "unix:///tmp/", 12) == 0, "%s", url);
    int pid = dashi_test_redis_pid(srv);
    cr_assert_gt(pid, 0);
    cr_assert_eq(dashi_test_redis_restart(srv), 0);
    cr_assert_neq(dashi_test_redis_pid(srv), pid);
    cr_assert_str_eq(dashi_test_redis_url(srv), url);
    cmd(srv, (const char *[]){"PING", NULL}, "PONG");
    dashi_test_redis_stop(srv);
    dashi_test_redis_stop(NULL);
}

/* ---------------------------------------------------------------- both stores, one history */

STATE_TEST(many_keys_put_delete) {
    /* enough keys to grow the memory store's table several times, with deletions
     * in between (its backward-shift delete must keep every other key findable) */
    enum { N = 20000 };
    char key[32], val[32];
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        ws_add(&ws, DASHI_WS_PUT, key, val, 0);
        if (i % 3 == 2) { /* delete one a bit back */
            snprintf(key, sizeof key, "k%d", i - 1);
            ws_add(&ws, DASHI_WS_DEL, key, NULL, 0);
        }
    }
    cr_assert_eq(apply1(st, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    dashi_bytes *keys = calloc(N, sizeof *keys), *vals = calloc(N, sizeof *vals);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        keys[i] = (dashi_bytes){strdup(key), strlen(key)};
    }
    char err[512] = "";
    cr_assert_eq(st->ops->mget(st, N, keys, vals, err, sizeof err), DASHI_OK, "%s", err);
    size_t present = 0;
    for (int i = 0; i < N; i++) {
        int deleted = i % 3 == 1 && i + 1 < N;
        if (deleted) {
            cr_expect_null(vals[i].data, "k%d was deleted", i);
        } else {
            snprintf(val, sizeof val, "v%d", i);
            cr_expect(vals[i].data && vals[i].len == strlen(val) && memcmp(vals[i].data, val, vals[i].len) == 0,
                      "k%d", i);
        }
        present += vals[i].data != NULL;
        free(vals[i].data);
        free(keys[i].data);
    }
    free(keys);
    free(vals);
    scan_acc acc;
    scan(st, "k1999", &acc);
    cr_expect_str_eq(acc.keys, "k19991,k19992,k19994,k19995,k19997,k19998,k19999");
    cr_expect_eq(present, N - (N / 3), "%zu present", present);
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

typedef struct dump_acc {
    char *buf;
    size_t len, cap;
} dump_acc;

static void dump_put(dump_acc *d, const char *p, size_t n) {
    if (d->len + n + 1 > d->cap) {
        d->cap = (d->len + n + 1) * 2;
        d->buf = realloc(d->buf, d->cap);
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    d->buf[d->len] = '\0';
}

static int dump_kv(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    dump_put(opaque, key, key_len);
    dump_put(opaque, "=", 1);
    dump_put(opaque, val, val_len);
    dump_put(opaque, ";", 1);
    return 0;
}

/* Everything a store holds, as text: keys and values in order, then the timer queue. */
static char *dump_store(dashi_state *st) {
    dump_acc d = {0};
    char err[512] = "", line[128];
    dump_put(&d, "", 0);
    cr_assert_eq(st->ops->scan(st, NULL, 0, dump_kv, &d, err, sizeof err), DASHI_OK, "%s", err);
    size_t n = 0;
    dashi_timer *t = timers_due(st, INT64_MAX, 1000000, &n);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "|%s@%lld:%.*s", t[i].id, (long long)t[i].due, (int)t[i].payload_len,
                           t[i].payload ? t[i].payload : "");
        dump_put(&d, line, (size_t)len);
    }
    dashi_timers_free(t, n);
    return d.buf;
}

/* Adds one operation of a random history to ws, drawn from seed (ctx: the caller's). */
typedef void (*history_op)(dashi_writeset *ws, uint32_t *seed, const void *ctx);

/* A seeded random history of n_sets write sets, batched at random (1..max_batch
 * sets a call), each of 1..6 operations of op, applied to a memory and a Redis
 * store: every result and the final contents must agree. With timers, the due
 * timers are also compared now and then along the way. */
static void same_random_history(uint32_t seed, size_t n_sets, size_t max_batch, history_op op, const void *ctx,
                                bool timers) {
    enum { MAXB = 64 };
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    dashi_state *mem = dashi_state_open("memory", NULL, err, sizeof err);
    dashi_state *red = dashi_state_open(dashi_test_redis_url(srv), "r:", err, sizeof err);
    cr_assert_not_null(mem);
    cr_assert_not_null(red, "%s", err);
    cr_assert_leq(max_batch, MAXB);
    dashi_writeset ws[MAXB];
    const dashi_writeset *sets[MAXB];
    dashi_err rm[MAXB], rr[MAXB];
    size_t done = 0, conflicts = 0;
    while (done < n_sets) {
        size_t b = 1 + lcg(&seed) % max_batch;
        for (size_t i = 0; i < b; i++) {
            dashi_writeset_init(&ws[i]);
            size_t nops = 1 + lcg(&seed) % 6;
            for (size_t j = 0; j < nops; j++)
                op(&ws[i], &seed, ctx);
            sets[i] = &ws[i];
        }
        cr_assert_eq(mem->ops->apply(mem, b, sets, rm, err, sizeof err), DASHI_OK, "%s", err);
        cr_assert_eq(red->ops->apply(red, b, sets, rr, err, sizeof err), DASHI_OK, "%s", err);
        for (size_t i = 0; i < b; i++) {
            cr_assert_eq(rm[i], rr[i], "set %zu: memory %d, redis %d", done + i, rm[i], rr[i]);
            conflicts += rm[i] == DASHI_ERR_CONFLICT;
            dashi_writeset_clear(&ws[i]);
        }
        done += b;
        if (timers && lcg(&seed) % 8 == 0) {
            size_t nm = 0, nr = 0;
            dashi_time until = (dashi_time)(lcg(&seed) % 40) - 5;
            size_t max = 1 + lcg(&seed) % 20;
            dashi_timer *tm = timers_due(mem, until, max, &nm), *tr = timers_due(red, until, max, &nr);
            cr_assert_eq(nm, nr);
            for (size_t i = 0; i < nm; i++) {
                cr_assert_str_eq(tm[i].id, tr[i].id);
                cr_assert_eq(tm[i].due, tr[i].due);
            }
            dashi_timers_free(tm, nm);
            dashi_timers_free(tr, nr);
        }
    }
    cr_assert_gt(conflicts, 100, "the history exercises conflicts (%zu)", conflicts);
    cr_assert_lt(conflicts, n_sets - 100, "and applies (%zu conflicts)", conflicts);
    char *dm = dump_store(mem), *dr = dump_store(red);
    cr_assert_str_eq(dm, dr);
    cr_assert_eq(timers_count(mem), timers_count(red));
    free(dm);
    free(dr);
    dashi_state_destroy(mem);
    dashi_state_destroy(red);
    dashi_test_redis_stop(srv);
}

/* Any kind of operation on 30 keys and 200 timer ids, due from -5 to 34. */
static void any_op(dashi_writeset *ws, uint32_t *seed, const void *ctx) {
    char key[16], val[16];
    (void)ctx;
    snprintf(key, sizeof key, "k%u", (unsigned)(lcg(seed) % 30));
    snprintf(val, sizeof val, "v%u", (unsigned)(lcg(seed) % 4));
    dashi_ws_kind kind = (dashi_ws_kind)(lcg(seed) % 6);
    if (kind == DASHI_WS_TIMER_ADD || kind == DASHI_WS_TIMER_DEL)
        snprintf(key, sizeof key, "t%u", (unsigned)(lcg(seed) % 200));
    dashi_time due = (dashi_time)(lcg(seed) % 40) - 5;
    ws_add(ws, kind, key, kind == DASHI_WS_CHECK_EQ && lcg(seed) % 2 ? "v0" : val, due);
}

Test(state_redis_only, same_random_history_same_state) {
    /* A seeded random history of write sets, batched at random, applied to both
     * stores: every result and the final contents must agree. */
    same_random_history(20240607, 3000, 64, any_op, NULL, true);
}

/* ---------------------------------------------------------------- bucketed keys
 *
 * The Redis store keeps keys with a family ("acct:", "attr:", …) as fields of bucket
 * hashes, packs 43-character base64url digests into 32 bytes, and moves a value
 * larger than a listpack entry to a plain key of its own (state/state_redis.c,
 * docs/STATE_LAYOUT.md). None of that may show: the same checks on both stores. */

static const char digest_a[] = "8OOrlo66m98R_BSVoCMDOIbn27lwtGAzFy6frdBMuhY"; /* 43 chars, packs */
static const char digest_odd[] = "8OOrlo66m98R_BSVoCMDOIbn27lwtGAzFy6frdBMuhZ"; /* stray low bits: kept as text */

/* A value of len bytes: the pattern repeated (so long values cross listpack limits). */
static char *filled(const char *pattern, size_t len) {
    char *v = malloc(len + 1);
    size_t pl = strlen(pattern);
    for (size_t i = 0; i < len; i++)
        v[i] = pattern[i % pl];
    v[len] = '\0';
    return v;
}

static void expect_bin(dashi_state *st, const char *key, size_t key_len, const char *want, size_t want_len) {
    size_t len = 0;
    char *v = get_bin(st, key, key_len, &len);
    cr_assert_not_null(v, "key '%.*s' is absent", (int)key_len, key);
    cr_expect_eq(len, want_len, "key '%.*s': %zu bytes, want %zu", (int)key_len, key, len, want_len);
    cr_expect(len == want_len && memcmp(v, want, len) == 0, "key '%.*s' holds other bytes", (int)key_len, key);
    free(v);
}

STATE_TEST(bucketed_keys_lengths_and_digests) {
    char key[600], val[700];
    /* field lengths 0 (the key is only its family), 1, 43 (a digest), 63..65, 300 */
    static const size_t field_lens[] = {0, 1, 43, 63, 64, 65, 300};
    /* value lengths around the listpack limits (64, 256) and far beyond */
    static const size_t val_lens[] = {0, 1, 63, 64, 65, 255, 256, 257, 5000};
    for (size_t f = 0; f < sizeof field_lens / sizeof *field_lens; f++)
        for (size_t v = 0; v < sizeof val_lens / sizeof *val_lens; v++) {
            char *field = filled(f == 2 ? digest_a : "fld", field_lens[f]);
            snprintf(key, sizeof key, "fam:%s", field);
            char *value = filled(v % 2 ? digest_a : "{\"a\":[\"u1\"],\"\xfe\xff\"}", val_lens[v] + f);
            put(st, key, value);
            expect_val(st, key, value);
            /* CHECK_EQ sees exactly this value; a one-byte change conflicts */
            dashi_writeset ws;
            dashi_writeset_init(&ws);
            ws_add(&ws, DASHI_WS_CHECK_EQ, key, value, 0);
            ws_add(&ws, DASHI_WS_CHECK_ABSENT, "fam:absent", NULL, 0);
            cr_assert_eq(apply1(st, &ws), DASHI_OK, "%zu/%zu", field_lens[f], val_lens[v]);
            dashi_writeset_clear(&ws);
            if (strlen(value)) {
                value[strlen(value) - 1] ^= 1;
                dashi_writeset_init(&ws);
                ws_add(&ws, DASHI_WS_CHECK_EQ, key, value, 0);
                cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT);
                dashi_writeset_clear(&ws);
            }
            dashi_writeset_init(&ws);
            ws_add(&ws, DASHI_WS_CHECK_ABSENT, key, NULL, 0);
            cr_assert_eq(apply1(st, &ws), DASHI_ERR_CONFLICT, "a bucketed key is present for CHECK_ABSENT");
            dashi_writeset_clear(&ws);
            free(field);
            free(value);
        }
    /* a value moving small → large → small → deleted, read and scanned at each step */
    char *big = filled("x", 1000);
    put(st, "mv:k", "small");
    put(st, "mv:k", big);
    expect_val(st, "mv:k", big);
    scan_acc acc;
    scan(st, "mv:", &acc);
    cr_expect_eq(acc.n, 1, "moved to a plain key, seen once");
    put(st, "mv:k", "small again");
    scan(st, "mv:", &acc);
    cr_expect_str_eq(acc.pairs, "mv:k=small again");
    del(st, "mv:k");
    expect_val(st, "mv:k", NULL);
    put(st, "mv:k", big);
    del(st, "mv:k");
    expect_val(st, "mv:k", NULL);
    scan(st, "mv:", &acc);
    cr_expect_eq(acc.n, 0);
    free(big);

    /* digests: packed or not, in keys and values, next to bytes the packing escapes */
    const struct { const char *k, *v; } cases[] = {
        {"attr:P1.", digest_a},
        {"attr:E1.", digest_odd},
        {"attr:X", "\xfe\xff\xfe"},
        {"attr:\xfe", "\xff"},
        {"attr:\xff\xfe", "\xfe"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(key, sizeof key, "%s%s", cases[i].k, i < 2 ? cases[i].v : "");
        snprintf(val, sizeof val, "{\"e\":{\"P1.%s\":[0,1]},\"x\":\"%s%s\",\"y\":\"%s-\"}", digest_a, cases[i].v,
                 digest_a, digest_a);
        put(st, key, val);
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(key, sizeof key, "%s%s", cases[i].k, i < 2 ? cases[i].v : "");
        snprintf(val, sizeof val, "{\"e\":{\"P1.%s\":[0,1]},\"x\":\"%s%s\",\"y\":\"%s-\"}", digest_a, cases[i].v,
                 digest_a, digest_a);
        expect_bin(st, key, strlen(key), val, strlen(val));
    }
    scan(st, "attr:", &acc);
    cr_expect_eq(acc.n, 5);
    snprintf(val, sizeof val, "attr:E1.%s,attr:P1.%s,attr:X,attr:\xfe,attr:\xff\xfe", digest_odd, digest_a);
    cr_expect_str_eq(acc.keys, val, "byte order, digests unpacked");
    scan(st, "attr:P1.8OO", &acc);
    cr_expect_eq(acc.n, 1, "a prefix that ends inside a packed digest");
    scan(st, "attr:P1.8OOX", &acc);
    cr_expect_eq(acc.n, 0);
    /* a NUL inside a bucketed key and a family-like prefix past 16 bytes */
    const char nulkey[] = {'f', ':', '\0', 'x'};
    put_bin(st, nulkey, sizeof nulkey, "nul", 3);
    expect_bin(st, nulkey, sizeof nulkey, "nul", 3);
    put(st, "0123456789abcdefg:x", "no family (':' beyond 16 bytes)");
    scan(st, "0123456789abcdefg", &acc);
    cr_expect_str_eq(acc.keys, "0123456789abcdefg:x");
}

STATE_TEST(bucketed_keys_many_in_one_family) {
    /* enough keys that buckets hold many fields each, deleted again in between */
    enum { N = 3000 };
    char key[32], val[32];
    apply_range(st, DASHI_WS_PUT, "acct:u%07d", "{\"t\":%d}", 0, N, 1);
    apply_range(st, DASHI_WS_DEL, "acct:u%07d", NULL, 0, N, 2);
    for (int i = 0; i < N; i += 97) {
        snprintf(key, sizeof key, "acct:u%07d", i);
        snprintf(val, sizeof val, "{\"t\":%d}", i);
        expect_val(st, key, i % 2 ? val : NULL);
    }
    scan_acc acc;
    scan(st, "acct:u000299", &acc);
    cr_expect_str_eq(acc.keys, "acct:u0002991,acct:u0002993,acct:u0002995,acct:u0002997,acct:u0002999");
    scan(st, "acct:u00029", &acc);
    cr_expect_eq(acc.n, 50);
    scan(st, "ac", &acc);
    cr_expect_eq(acc.n, N / 2);
}

/* Keys of the Redis database matching pattern, counted. */
static long long count_keys(redisContext *c, const char *pattern) {
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

Test(state_redis_only, bucket_layout) {
    dashi_test_redis *srv = start_server();
    char err[512] = "", key[64];
    dashi_state *st = open_redis(srv, "t:");
    redisContext *c = redisConnectUnix(dashi_test_redis_socket(srv));
    cr_assert(c && !c->err);

    /* a family key is a field of a bucket hash; nothing else is stored for it */
    put(st, "acct:u1", "{\"t\":1}");
    cr_assert_eq(count_keys(c, "t:h:acct:*"), 1);
    cr_assert_eq(count_keys(c, "t:k:*"), 0);
    cmd(srv, (const char *[]){"DBSIZE", NULL}, "1");
    /* plain families and keys without a family stay plain keys */
    put(st, "ob:000:x", "outbox");
    put(st, "off:x", "1");
    put(st, "ep:x", "1");
    put(st, "bare", "1");
    cmd(srv, (const char *[]){"GET", "t:k:ob:000:x", NULL}, "outbox");
    cr_assert_eq(count_keys(c, "t:k:*"), 4);
    cr_assert_eq(count_keys(c, "t:h:*"), 1);

    /* many keys of one family share buckets, which stay listpacks */
    for (int i = 0; i < 40000; i += 1000)
        apply_range(st, DASHI_WS_PUT, "ev:r%d", "{\"d\":\"d-52a8d7a66138cf0b\",\"t\":1654012810000}", i, i + 1000, 1);
    long long buckets = count_keys(c, "t:h:ev:*");
    cr_assert_gt(buckets, 10000, "%lld buckets", buckets);
    cr_assert_lt(buckets, 40000, "%lld buckets: several keys share one", buckets);
    redisReply *r = redisCommand(c, "SCAN 0 MATCH t:h:ev:* COUNT 100");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->element[1]->elements > 0);
    redisReply *enc = redisCommand(c, "OBJECT ENCODING %s", r->element[1]->element[0]->str);
    cr_assert(enc && enc->type == REDIS_REPLY_STRING);
    cr_expect_str_eq(enc->str, "listpack");
    freeReplyObject(enc);
    freeReplyObject(r);

    /* a digest is stored in 32 bytes, not 43 characters, key and value alike */
    snprintf(key, sizeof key, "attr:P1.%s", digest_a);
    put(st, key, digest_a);
    r = redisCommand(c, "SCAN 0 MATCH t:h:attr:* COUNT 100000");
    cr_assert(r && r->element[1]->elements == 1);
    redisReply *all = redisCommand(c, "HGETALL %s", r->element[1]->element[0]->str);
    cr_assert(all && all->type == REDIS_REPLY_ARRAY && all->elements == 2);
    cr_expect_eq(all->element[0]->len, 3 + 33, "field 'P1.' + packed digest");
    cr_expect_eq(all->element[1]->len, 33, "value: packed digest");
    freeReplyObject(all);
    freeReplyObject(r);

    /* a large value is a plain key; shrinking it moves it back into its bucket */
    char *big = filled("y", 2000);
    put(st, "acct:u1", big);
    cr_assert_eq(count_keys(c, "t:h:acct:*"), 0, "the emptied bucket is gone");
    cr_assert_eq(count_keys(c, "t:k:acct:u1"), 1);
    put(st, "acct:u1", "{}");
    cr_assert_eq(count_keys(c, "t:k:acct:*"), 0);
    cr_assert_eq(count_keys(c, "t:h:acct:*"), 1);
    free(big);

    /* deleting every key leaves no empty hash behind */
    for (int i = 0; i < 40000; i += 1000)
        apply_range(st, DASHI_WS_DEL, "ev:r%d", NULL, i, i + 1000, 1);
    del(st, "acct:u1");
    snprintf(key, sizeof key, "attr:P1.%s", digest_a);
    del(st, key);
    cr_assert_eq(count_keys(c, "t:h:*"), 0);
    cmd(srv, (const char *[]){"DBSIZE", NULL}, "4");

    /* clear() drops buckets too */
    put(st, "acct:u2", "x");
    cr_assert_eq(st->ops->clear(st, err, sizeof err), DASHI_OK, "%s", err);
    cmd(srv, (const char *[]){"DBSIZE", NULL}, "0");
    redisFree(c);
    dashi_state_destroy(st);
    dashi_test_redis_stop(srv);
}

Test(state_redis_only, listpack_limit_raised_or_respected) {
    dashi_test_redis *srv = start_server();
    char err[512] = "";
    /* the store raises hash-max-listpack-value to 256 when it may */
    dashi_state *st = open_redis(srv, "t:");
    dashi_state_destroy(st);
    redisContext *c = redisConnectUnix(dashi_test_redis_socket(srv));
    cr_assert(c && !c->err);
    redisReply *r = redisCommand(c, "CONFIG GET hash-max-listpack-value");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    cr_expect_str_eq(r->element[1]->str, "256");
    freeReplyObject(r);

    /* a user that may not CONFIG: the store works with the server's limit (64), and
     * values above it go to plain keys, so no bucket turns into a hashtable */
    freeReplyObject(redisCommand(c, "CONFIG SET hash-max-listpack-value 64"));
    cmd(srv, (const char *[]){"ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-config", NULL}, "OK");
    char url[512];
    snprintf(url, sizeof url, "redis+unix://app:pw@%s", dashi_test_redis_socket(srv));
    st = dashi_state_open(url, "t:", err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    char *v100 = filled("v", 100), *v50 = filled("w", 50);
    put(st, "fam:a", v100);
    put(st, "fam:b", v50);
    expect_val(st, "fam:a", v100);
    expect_val(st, "fam:b", v50);
    cr_assert_eq(count_keys(c, "t:k:fam:a"), 1, "100 bytes > 64: a plain key");
    cr_assert_eq(count_keys(c, "t:h:fam:*"), 1);
    r = redisCommand(c, "SCAN 0 MATCH t:h:fam:* COUNT 100000");
    redisReply *enc = redisCommand(c, "OBJECT ENCODING %s", r->element[1]->element[0]->str);
    cr_expect_str_eq(enc->str, "listpack");
    freeReplyObject(enc);
    freeReplyObject(r);
    r = redisCommand(c, "CONFIG GET hash-max-listpack-value");
    cr_expect_str_eq(r->element[1]->str, "64", "not changed by a user without +config");
    freeReplyObject(r);
    free(v100);
    free(v50);
    dashi_state_destroy(st);
    redisFree(c);
    dashi_test_redis_stop(srv);
}

/* A data operation (ctx: a value large enough to leave its bucket) on keys of every
 * placement: plain, plain family, bucketed, bucketed with a digest. */
static void placed_op(dashi_writeset *ws, uint32_t *seed, const void *ctx) {
    static const char *const key_forms[] = {"k%u", "ob:%u", "acct:u%u", "attr:P1.%u", "x:%u"};
    const char *big = ctx;
    char key[128], val[600];
    unsigned form = lcg(seed) % 5, id = lcg(seed) % 12;
    snprintf(key, sizeof key, key_forms[form], id);
    if (form == 3)
        snprintf(key, sizeof key, "attr:P1.%.40s%03u", digest_a, id * 16);
    switch (lcg(seed) % 4) {
    case 0: snprintf(val, sizeof val, "v%u", (unsigned)(lcg(seed) % 3)); break;
    case 1: snprintf(val, sizeof val, "{\"e\":{\"P1.%s\":[0]}}", digest_a); break;
    case 2: snprintf(val, sizeof val, "\xfe%u\xff", (unsigned)(lcg(seed) % 2)); break;
    default: snprintf(val, sizeof val, "%s%u", big, (unsigned)(lcg(seed) % 2)); break;
    }
    dashi_ws_kind kind = (dashi_ws_kind)(lcg(seed) % 4); /* data ops only */
    ws_add(ws, kind, key, val, 0);
}

Test(state_redis_only, same_random_history_bucketed) {
    /* The random history again, over keys of every placement: plain, plain family,
     * bucketed, bucketed with a digest; values small, with digests and escapes, and
     * large enough to move to a plain key and back. */
    char *big = filled("0123456789", 400);
    same_random_history(7, 2000, 32, placed_op, big, false);
    free(big);
}
