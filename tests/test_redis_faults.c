/* test_redis_faults.c — `dashi run` when Redis is away: at start-up, past redis.wait_ms, and restarted mid-run.
 *
 * Each test starts a redis-server with persistence (appendonly yes, appendfsync
 * always: an acknowledged write survives kill -9) and a `dashi devcluster`,
 * publishes a generated stream and runs `dashi run`. Redis is missing when the
 * run starts, or is killed (SIGKILL) and started again on the same socket and
 * directory while the run applies events. The reference is `dashi replay` of the
 * same events: the live outputs must be the same set, byte for byte, and the
 * Redis state the same as a replay's on Redis (progress, epochs and outbox
 * aside) — nothing lost, nothing applied twice.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/state.h"
#include "tests/support/proc.h"
#include "tests/support/redis_server.h"

#define UNTIL "2022-08-31T00:00:00+08:00"

static dashi_test_redis *srv;
static pid_t dc = -1;
static char dir[256], boot[256], redis_url_set[512];

static void setup(void) {
    char err[512];
    srv = dashi_test_redis_start_with((const char *[]){"--appendonly", "yes", "--appendfsync", "always", NULL}, err,
                                      sizeof(err));
    cr_assert(srv, "redis-server: %s", err);
    cr_assert(dashi_test_tmpdir(dir, sizeof(dir)), "mkdtemp");
    dc = dashi_test_devcluster(DASHI_BINARY, dir, 4, boot, sizeof(boot));
    cr_assert(dc > 0, "dashi devcluster did not start (see %s/devcluster.log)", dir);
    snprintf(redis_url_set, sizeof(redis_url_set), "redis.url=%s", dashi_test_redis_url(srv));
}

static void teardown(void) {
    dashi_test_kill(dc, SIGTERM);
    dashi_test_redis_stop(srv);
    if (!getenv("DASHI_TEST_KEEP")) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "kept %s\n", dir);
    }
}

static const char *path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void gen_and_publish(const char *seed, const char *ambassadors, const char *customers) {
    const char *g[] = {DASHI_BINARY, "gen", "--seed", seed, "--ambassadors", ambassadors,
                       "--customers", customers, "--out", path("events.ndjson"), NULL};
    cr_assert_eq(dashi_test_run(g, NULL, path("gen.log")), 0, "dashi gen failed");
    const char *p[] = {DASHI_BINARY, "publish", "--bootstrap", boot, "--in", path("events.ndjson"), NULL};
    cr_assert_eq(dashi_test_run(p, NULL, path("publish.log")), 0, "dashi publish failed (see %s)", path("publish.log"));
}

static pid_t start_run(const char *wait_ms) {
    char rules[512], wait[64];
    snprintf(rules, sizeof(rules), "rules.file=%s/config/rules.json", DASHI_SOURCE_DIR);
    snprintf(wait, sizeof(wait), "redis.wait_ms=%s", wait_ms);
    const char *argv[] = {DASHI_BINARY, "run", "--bootstrap", boot, "--set", redis_url_set, "--set", "group.id=g-faults",
                          "--set", "redis.prefix=live:", "--set", rules, "--set", "hmac.key=dev", "--set",
                          "merge.wait_ms=100", "--set", wait, "--exit-idle", "2500", "--clock-until", UNTIL, NULL};
    return dashi_test_spawn(argv, NULL, path("run.log"));
}

static void tail(const char *out) {
    const char *argv[] = {DASHI_BINARY, "tail", "--bootstrap", boot, "--idle-ms", "3000", NULL};
    cr_assert_eq(dashi_test_run(argv, out, path("tail.log")), 0, "dashi tail failed");
}

static void replay(const char *out, const char *prefix) {
    const char *argv[] = {DASHI_BINARY, "replay", "--in", path("events.ndjson"), "--out", out, "--until", UNTIL,
                          "--quiet", "--rejects", path("rejects.txt"), "--state",
                          prefix ? dashi_test_redis_url(srv) : "memory", "--prefix", prefix ? prefix : "dashi:", NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, path("replay.log")), 0, "dashi replay failed");
}

/* ---- comparing outputs: the distinct lines of two files ---- */

typedef struct lines {
    char **v;
    size_t n;
    char *buf;
} lines;

static int cmpstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static lines read_set(const char *file) {
    lines l = {0};
    size_t cap = 1024;
    l.buf = dashi_test_slurp(file, NULL);
    cr_assert(l.buf, "cannot read %s", file);
    l.v = malloc(cap * sizeof(char *));
    for (char *s = strtok(l.buf, "\n"); s; s = strtok(NULL, "\n")) {
        if (l.n == cap)
            l.v = realloc(l.v, (cap *= 2) * sizeof(char *));
        l.v[l.n++] = s;
    }
    qsort(l.v, l.n, sizeof(char *), cmpstr);
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++)
        if (k == 0 || strcmp(l.v[k - 1], l.v[i]) != 0)
            l.v[k++] = l.v[i];
    l.n = k;
    return l;
}

static void assert_same_set(const char *expected_file, const char *actual_file) {
    lines e = read_set(expected_file), a = read_set(actual_file);
    size_t i = 0, j = 0, missing = 0, extra = 0;
    const char *first_missing = NULL, *first_extra = NULL;
    while (i < e.n || j < a.n) {
        int c = i == e.n ? 1 : j == a.n ? -1 : strcmp(e.v[i], a.v[j]);
        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            first_missing = first_missing ? first_missing : e.v[i];
            missing++, i++;
        } else {
            first_extra = first_extra ? first_extra : a.v[j];
            extra++, j++;
        }
    }
    cr_expect(e.n > 100, "the reference has only %zu outputs: the stream is too small to show anything", e.n);
    cr_expect(missing == 0 && extra == 0,
              "%zu expected outputs, %zu distinct live outputs: %zu missing (first: %.300s), %zu extra (first: %.300s)",
              e.n, a.n, missing, first_missing ? first_missing : "-", extra, first_extra ? first_extra : "-");
    free(e.v), free(e.buf), free(a.v), free(a.buf);
}

/* ---- Redis state ---- */

static int dump_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    FILE *f = opaque;
    if ((key_len >= 4 && memcmp(key, "off:", 4) == 0) || (key_len >= 3 && memcmp(key, "ep:", 3) == 0) ||
        (key_len >= 3 && memcmp(key, "ob:", 3) == 0))
        return 0;
    fwrite(key, 1, key_len, f);
    fputc('\t', f);
    fwrite(val, 1, val_len, f);
    fputc('\n', f);
    return 0;
}

static char *dump_state(const char *prefix, const char *file) {
    char err[512];
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), prefix, err, sizeof(err));
    cr_assert(st, "%s", err);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    cr_assert_eq(st->ops->scan(st, "", 0, dump_one, f, err, sizeof(err)), DASHI_OK, "%s", err);
    fclose(f);
    dashi_state_destroy(st);
    return dashi_test_slurp(file, NULL);
}

static int count_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    (void)key, (void)key_len, (void)val, (void)val_len;
    (*(size_t *)opaque)++;
    return 0;
}

/* De-duplication markers under live: (events applied); 0 when Redis does not answer. */
static size_t applied_now(void) {
    char err[512];
    size_t n = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), "live:", err, sizeof(err));
    if (!st)
        return 0;
    if (st->ops->scan(st, "ev:", 3, count_one, &n, err, sizeof(err)) != DASHI_OK)
        n = 0;
    dashi_state_destroy(st);
    return n;
}

static size_t count_lines(const char *file) {
    char *buf = dashi_test_slurp(file, NULL);
    size_t n = 0;
    for (char *s = buf; s && *s; s++)
        n += *s == '\n';
    free(buf);
    return n;
}

static bool log_has(const char *text) {
    char *log = dashi_test_slurp(path("run.log"), NULL);
    bool found = log && strstr(log, text);
    free(log);
    return found;
}

Test(faults, redis_unreachable_at_start_is_waited_for, .init = setup, .fini = teardown, .timeout = 300) {
    gen_and_publish("31", "30", "300");
    cr_assert_eq(dashi_test_redis_kill(srv), 0);
    pid_t run = start_run("60000");
    sleep_ms(4000);
    cr_assert_eq(kill(run, 0), 0, "dashi run did not wait for Redis (see %s)", path("run.log"));
    cr_expect(log_has("Redis unreachable (start-up)"), "no log line about waiting for Redis");
    cr_expect(log_has("retry 4 in 800 ms"), "the waits do not back off exponentially (see %s)", path("run.log"));
    cr_assert_eq(dashi_test_redis_restart(srv), 0, "redis-server did not come back");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed once Redis was there (see %s)", path("run.log"));
    tail(path("live.ndjson"));
    replay(path("expected.ndjson"), NULL);
    assert_same_set(path("expected.ndjson"), path("live.ndjson"));
}

Test(faults, redis_gone_longer_than_redis_wait_ms_stops_with_an_error, .init = setup, .fini = teardown,
     .timeout = 120) {
    gen_and_publish("32", "5", "20");
    cr_assert_eq(dashi_test_redis_kill(srv), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t run = start_run("1500");
    int rc = dashi_test_wait(run);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_neq(rc, 0, "dashi run exited 0 without Redis");
    cr_expect(took < 1.5 + 6.0, "gave up after %.1f s, redis.wait_ms is 1.5 s", took);
    cr_expect(log_has("redis.wait_ms"), "the error does not name redis.wait_ms (see %s)", path("run.log"));
}

Test(faults, redis_restarted_mid_run_loses_nothing_and_applies_nothing_twice, .init = setup, .fini = teardown,
     .timeout = 400) {
    gen_and_publish("33", "60", "1200");
    size_t total = count_lines(path("events.ndjson")), restarts = 0;
    pid_t run = start_run("60000");
    /* kill -9 Redis twice while events are applied, each time at a fraction of the stream */
    const double at[] = {0.2, 0.55};
    for (size_t k = 0; k < 2; k++) {
        size_t have = 0;
        for (int waited = 0; waited < 90000 && (have = applied_now()) < (size_t)(at[k] * (double)total); waited += 50)
            sleep_ms(50);
        if (have >= total)
            break; /* too late: the run is through */
        cr_assert_eq(dashi_test_redis_kill(srv), 0);
        sleep_ms(2000);
        cr_assert_eq(dashi_test_redis_restart(srv), 0, "redis-server did not come back");
        restarts++;
    }
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", path("run.log"));
    cr_expect_eq(restarts, 2, "only %zu restart(s) came while events were applied", restarts);
    cr_expect(log_has("Redis unreachable (applying"), "the run never saw Redis go away (see %s)", path("run.log"));
    tail(path("live.ndjson"));
    replay(path("expected.ndjson"), NULL);
    assert_same_set(path("expected.ndjson"), path("live.ndjson"));
    /* the same state as a fault-free replay on Redis */
    replay(path("expected2.ndjson"), "ref:");
    char *a = dump_state("live:", path("live.state")), *b = dump_state("ref:", path("ref.state"));
    cr_assert(a && b);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect(strcmp(a, b) == 0, "Redis state after %zu restart(s) differs from a fault-free run (%zu vs %zu bytes)",
              restarts, strlen(a), strlen(b));
    free(a);
    free(b);
}
