/* test_overlay.c — the batch overlay answers as the store would after the staged sets, and finds its wrong guesses.
 *
 * A model check: random write sets (puts, deletes, timer adds and deletes) are
 * staged in an overlay over a store and applied, one by one, to a shadow store
 * holding the same start; once a first step's reads have been checked (the
 * guesses corrected), reads and timer queries of the overlay after every set
 * (random keys, random until and max) must equal the shadow's. The store starts
 * with more timers than the overlay reads at once, so queries that need more make
 * it read again. Then the guesses: bytes the overlay kept from an earlier batch
 * go stale behind its back, the check names the first step that read one, a
 * rewind drops the steps from there and restores what the earlier steps wrote,
 * and the commit applies the chain, after which the store equals the shadow.
 * Runs on the memory store and on Redis.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/overlay.h"
#include "core/state.h"
#include "tests/support/redis_server.h"

static dashi_test_redis *g_srv;
static dashi_state *g_st, *g_shadow;
static char g_err[512];

static void mem_setup(void) {
    g_st = dashi_state_mem_new();
    g_shadow = dashi_state_mem_new();
    cr_assert(g_st && g_shadow);
}

static void redis_setup(void) {
    g_srv = dashi_test_redis_start(g_err, sizeof g_err);
    cr_assert_not_null(g_srv, "cannot start redis-server: %s", g_err);
    g_st = dashi_state_open(dashi_test_redis_url(g_srv), "o:", g_err, sizeof g_err);
    cr_assert_not_null(g_st, "%s", g_err);
    g_shadow = dashi_state_mem_new();
}

static void teardown(void) {
    dashi_state_destroy(g_st);
    dashi_state_destroy(g_shadow);
    dashi_test_redis_stop(g_srv);
}

#define OVERLAY_TEST(name)                                                                                 \
    static void check_##name(void);                                                                        \
    Test(overlay_memory, name, .init = mem_setup, .fini = teardown, .timeout = 120) { check_##name(); }   \
    Test(overlay_redis, name, .init = redis_setup, .fini = teardown, .timeout = 120) { check_##name(); } \
    static void check_##name(void)

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void add(dashi_writeset *ws, dashi_ws_kind kind, const char *key, const char *val, dashi_time due) {
    cr_assert_eq(dashi_writeset_add(ws, kind, key, strlen(key), val, val ? strlen(val) : 0, due), DASHI_OK);
}

static void apply_to(dashi_state *st, const dashi_writeset *ws) {
    dashi_err r = DASHI_ERR_INTERNAL;
    const dashi_writeset *sets[1] = {ws};
    cr_assert_eq(st->ops->apply(st, 1, sets, &r, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_assert_eq(r, DASHI_OK);
}

/* The value at key in st ("-" when absent), malloc'ed. */
static char *get(dashi_state *st, const char *key) {
    dashi_bytes k = {(char *)key, strlen(key)}, v = {NULL, 0};
    cr_assert_eq(st->ops->mget(st, 1, &k, &v, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    return v.data ? v.data : strdup("-");
}

/* Timers due <= until, first max, as text. */
static char *due(dashi_state *st, dashi_time until, size_t max) {
    dashi_timer *t = NULL;
    size_t n = 0, len = 0;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(st->ops->timers_due(st, until, max, &t, &n, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s@%lld:%.*s;", t[i].id, (long long)t[i].due, (int)t[i].payload_len,
                t[i].payload ? t[i].payload : "");
    dashi_timers_free(t, n);
    fclose(f);
    return buf;
}

OVERLAY_TEST(reads_and_timers_equal_the_store_after_the_staged_sets) {
    dashi_overlay *o = dashi_overlay_new(g_st);
    dashi_state *face = dashi_overlay_state(o);
    uint32_t seed = 7;
    char key[32], val[32], id[32];
    /* the same start in both: keys, and 600 timers (more than one read of the overlay) */
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    for (int i = 0; i < 40; i += 2) {
        snprintf(key, sizeof key, i % 4 ? "acct:k%d" : "k%d", i);
        snprintf(val, sizeof val, "start%d", i);
        add(&ws, DASHI_WS_PUT, key, val, 0);
    }
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof id, "t%03d", i);
        snprintf(val, sizeof val, i % 3 ? "p%d" : "", i);
        add(&ws, DASHI_WS_TIMER_ADD, id, val, 1000 + (i % 50) * 10);
    }
    apply_to(g_st, &ws);
    apply_to(g_shadow, &ws);
    dashi_writeset_clear(&ws);

    for (int round = 0; round < 3; round++) {
        dashi_overlay_begin(o, round == 0 ? DASHI_TIME_NONE : 1200);
        /* step 0 reads every key (guesses: absent in round 0, what was kept later) and
         * the check reads them from the store: from then on the batch reads exactly */
        size_t wrong = 0;
        dashi_overlay_step(o);
        for (int k = 0; k < 48; k++) {
            snprintf(key, sizeof key, k % 4 ? "acct:k%d" : "k%d", k);
            free(get(face, key));
        }
        cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
        cr_assert_eq(dashi_overlay_check(o, &wrong, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
        cr_expect_eq(wrong == SIZE_MAX, round > 0, "round %d: wrong guesses at step %zu", round, wrong);
        if (wrong != SIZE_MAX)
            dashi_overlay_rewind(o, wrong);
        if (dashi_overlay_steps(o) == 0) {
            dashi_overlay_step(o);
            cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
        }
        for (int step = 1; step < 41; step++) {
            cr_assert_eq(dashi_overlay_step(o), (size_t)step);
            /* reads and queries, as the step would make them */
            for (int q = 0; q < 6; q++) {
                int k = (int)(lcg(&seed) % 48);
                snprintf(key, sizeof key, k % 4 ? "acct:k%d" : "k%d", k);
                char *a = get(face, key), *b = get(g_shadow, key);
                cr_expect_str_eq(a, b, "round %d step %d: %s", round, step, key);
                free(a);
                free(b);
            }
            dashi_time until = 900 + (dashi_time)(lcg(&seed) % 700);
            size_t max = 1 + lcg(&seed) % (step % 5 == 0 ? 700 : 8);
            char *a = due(face, until, max), *b = due(g_shadow, until, max);
            cr_expect_str_eq(a, b, "round %d step %d: timers due <= %lld, max %zu", round, step, (long long)until, max);
            free(a);
            free(b);
            /* the step's set */
            dashi_writeset_init(&ws);
            for (int w = 0; w < 4; w++) {
                int k = (int)(lcg(&seed) % 48), kind = (int)(lcg(&seed) % 4);
                snprintf(key, sizeof key, k % 4 ? "acct:k%d" : "k%d", k);
                snprintf(val, sizeof val, "r%d.%d.%d", round, step, w);
                snprintf(id, sizeof id, "t%03d", (int)(lcg(&seed) % 650));
                if (kind == 0)
                    add(&ws, DASHI_WS_PUT, key, val, 0);
                else if (kind == 1)
                    add(&ws, DASHI_WS_DEL, key, NULL, 0);
                else if (kind == 2)
                    add(&ws, DASHI_WS_TIMER_ADD, id, w % 2 ? val : "", 900 + (dashi_time)(lcg(&seed) % 800));
                else
                    add(&ws, DASHI_WS_TIMER_DEL, id, NULL, 0);
            }
            apply_to(g_shadow, &ws);
            cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
            cr_assert_eq(ws.n, 0, "stage took the ops");
            dashi_writeset_clear(&ws);
        }
        cr_assert_eq(dashi_overlay_check(o, &wrong, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
        cr_expect_eq(wrong, SIZE_MAX, "round %d: a guess was wrong with no other writer", round);
        size_t applied = 0;
        dashi_err failed = DASHI_OK;
        cr_assert_eq(dashi_overlay_commit(o, &applied, &failed, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
        cr_expect_eq(applied, 41);
        cr_expect_eq(failed, DASHI_OK);
        dashi_overlay_end(o);
        /* the store now equals the shadow */
        for (int k = 0; k < 48; k++) {
            snprintf(key, sizeof key, k % 4 ? "acct:k%d" : "k%d", k);
            char *a = get(g_st, key), *b = get(g_shadow, key);
            cr_expect_str_eq(a, b, "after round %d: %s", round, key);
            free(a);
            free(b);
        }
        char *a = due(g_st, 1 << 20, 10000), *b = due(g_shadow, 1 << 20, 10000);
        cr_expect_str_eq(a, b, "after round %d: the timers", round);
        free(a);
        free(b);
    }
    dashi_overlay_stats s;
    dashi_overlay_stats_get(o, &s);
    cr_expect_gt(s.timer_reads, 3, "the overlay never read more timers: the test shows less");
    dashi_overlay_destroy(o);
}

OVERLAY_TEST(a_stale_guess_is_found_and_rewound) {
    dashi_overlay *o = dashi_overlay_new(g_st);
    dashi_state *face = dashi_overlay_state(o);
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    add(&ws, DASHI_WS_PUT, "acct:a", "1", 0);
    add(&ws, DASHI_WS_PUT, "b", "1", 0);
    apply_to(g_st, &ws);
    dashi_writeset_clear(&ws);
    /* a first batch reads both: the overlay keeps their bytes */
    dashi_overlay_begin(o, DASHI_TIME_NONE);
    dashi_overlay_step(o);
    free(get(face, "acct:a"));
    free(get(face, "b"));
    cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
    size_t wrong = 0, applied = 0;
    dashi_err failed;
    cr_assert_eq(dashi_overlay_check(o, &wrong, g_err, sizeof g_err), DASHI_OK);
    cr_assert_eq(dashi_overlay_commit(o, &applied, &failed, g_err, sizeof g_err), DASHI_OK);
    dashi_overlay_end(o);

    dashi_overlay_stats s;
    dashi_overlay_stats_get(o, &s);
    uint64_t wrong_before = s.wrong;
    /* another writer changes b */
    add(&ws, DASHI_WS_PUT, "b", "2", 0);
    apply_to(g_st, &ws);
    dashi_writeset_clear(&ws);

    dashi_overlay_begin(o, DASHI_TIME_NONE);
    dashi_overlay_step(o); /* step 0 reads a, writes c */
    char *v = get(face, "acct:a");
    cr_expect_str_eq(v, "1");
    free(v);
    add(&ws, DASHI_WS_PUT, "c", "from0", 0);
    cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
    dashi_overlay_step(o); /* step 1 reads b: the stale guess "1"; writes c again */
    v = get(face, "b");
    cr_expect_str_eq(v, "1", "the overlay should guess the bytes it kept");
    free(v);
    v = get(face, "c");
    cr_expect_str_eq(v, "from0", "a later step sees an earlier step's write");
    free(v);
    add(&ws, DASHI_WS_PUT, "c", "from1", 0);
    cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
    cr_assert_eq(dashi_overlay_check(o, &wrong, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_expect_eq(wrong, 1, "the check named step %zu", wrong);
    dashi_overlay_rewind(o, 1);
    cr_expect_eq(dashi_overlay_steps(o), 1);
    v = get(face, "c");
    cr_expect_str_eq(v, "from0", "the rewind kept step 0's write, dropped step 1's");
    free(v);
    dashi_overlay_step(o);
    v = get(face, "b");
    cr_expect_str_eq(v, "2", "after the check b reads as the store holds it");
    free(v);
    add(&ws, DASHI_WS_CHECK_EQ, "b", "2", 0);
    add(&ws, DASHI_WS_PUT, "c", "from1b", 0);
    cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
    cr_assert_eq(dashi_overlay_check(o, &wrong, g_err, sizeof g_err), DASHI_OK);
    cr_expect_eq(wrong, SIZE_MAX);
    cr_assert_eq(dashi_overlay_commit(o, &applied, &failed, g_err, sizeof g_err), DASHI_OK);
    cr_expect_eq(applied, 2);
    dashi_overlay_end(o);
    v = get(g_st, "c");
    cr_expect_str_eq(v, "from1b");
    free(v);
    dashi_overlay_stats_get(o, &s);
    cr_expect_eq(s.wrong - wrong_before, 1);
    dashi_overlay_destroy(o);
}

/* A set of the chain fails its check at commit: the steps before it are applied, none after. */
OVERLAY_TEST(commit_stops_at_a_failed_set) {
    dashi_overlay *o = dashi_overlay_new(g_st);
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    dashi_overlay_begin(o, DASHI_TIME_NONE);
    const char *keys[] = {"k0", "k1", "k2"};
    for (int s = 0; s < 3; s++) {
        dashi_overlay_step(o);
        add(&ws, DASHI_WS_PUT, keys[s], "v", 0);
        if (s == 1)
            add(&ws, DASHI_WS_CHECK_ABSENT, "taken", NULL, 0);
        cr_assert_eq(dashi_overlay_stage(o, &ws), DASHI_OK);
    }
    /* the other writer, after the check and before the commit */
    add(&ws, DASHI_WS_PUT, "taken", "yes", 0);
    apply_to(g_st, &ws);
    dashi_writeset_clear(&ws);
    size_t applied = 0;
    dashi_err failed = DASHI_OK;
    cr_assert_eq(dashi_overlay_commit(o, &applied, &failed, g_err, sizeof g_err), DASHI_OK, "%s", g_err);
    cr_expect_eq(applied, 1);
    cr_expect_eq(failed, DASHI_ERR_CONFLICT);
    dashi_overlay_end(o);
    char *a = get(g_st, "k0"), *b = get(g_st, "k1"), *c = get(g_st, "k2");
    cr_expect_str_eq(a, "v");
    cr_expect_str_eq(b, "-");
    cr_expect_str_eq(c, "-", "a set after the failed one was applied");
    free(a);
    free(b);
    free(c);
    /* outside a batch the face passes through */
    dashi_state *face = dashi_overlay_state(o);
    add(&ws, DASHI_WS_PUT, "k9", "x", 0);
    apply_to(face, &ws);
    dashi_writeset_clear(&ws);
    a = get(g_st, "k9");
    cr_expect_str_eq(a, "x");
    free(a);
    dashi_overlay_destroy(o);
}
