/* test_pipeline.c — `dashi run` end to end: real redis-server, librdkafka's mock cluster, dashi's own commands.
 *
 * Each test starts its own redis-server (tests/support/redis_server.c) and its own
 * `dashi devcluster`, generates a stream with `dashi gen`, publishes it as Avro
 * with `dashi publish`, runs `dashi run` and reads the outputs back with `dashi
 * tail`. The reference is `dashi replay` of the same events: the live outputs
 * must be the same set of records, byte for byte (ids included). What these tests
 * show and what they cannot (Kafka transactions on the mock) is listed in the
 * README under "Guarantees".
 */
#include <criterion/criterion.h>
#include <signal.h>
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
    srv = dashi_test_redis_start(err, sizeof(err));
    cr_assert(srv, "redis-server: %s", err);
    cr_assert(dashi_test_tmpdir(dir, sizeof(dir)), "mkdtemp");
    dc = dashi_test_devcluster(DASHI_BINARY, dir, 4, boot, sizeof(boot));
    cr_assert(dc > 0, "dashi devcluster did not start (see %s/devcluster.log)", dir);
    snprintf(redis_url_set, sizeof(redis_url_set), "redis.url=%s", dashi_test_redis_url(srv));
}

static void teardown(void) {
    dashi_test_kill(dc, SIGTERM);
    dashi_test_redis_stop(srv);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static const char *path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static void gen(const char *seed, const char *ambassadors, const char *customers) {
    const char *argv[] = {DASHI_BINARY, "gen", "--seed", seed, "--ambassadors", ambassadors,
                          "--customers", customers, "--out", path("events.ndjson"), NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, path("gen.log")), 0, "dashi gen failed");
}

static void publish(const char *file, const char *raw_topic) {
    const char *argv[] = {DASHI_BINARY, "publish", "--bootstrap", boot, "--in", file,
                          raw_topic ? "--raw-topic" : NULL, raw_topic, NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, path("publish.log")), 0, "dashi publish failed (see %s)", path("publish.log"));
}

/* dashi run until idle; extra: one more --set (NULL: none). */
static pid_t start_run_with(const char *group, const char *prefix, const char *extra) {
    char g[128], pfx[128], rules[512];
    snprintf(g, sizeof(g), "group.id=%s", group);
    snprintf(pfx, sizeof(pfx), "redis.prefix=%s", prefix);
    snprintf(rules, sizeof(rules), "rules.file=%s/config/rules.json", DASHI_SOURCE_DIR);
    const char *argv[] = {DASHI_BINARY, "run", "--bootstrap", boot, "--set", redis_url_set, "--set", g, "--set", pfx,
                          "--set", rules, "--set", "hmac.key=dev", "--set", "merge.wait_ms=100", "--exit-idle",
                          "2500", "--clock-until", UNTIL, extra ? "--set" : NULL, extra, NULL};
    return dashi_test_spawn(argv, NULL, path("run.log"));
}

static pid_t start_run(const char *group, const char *prefix) {
    return start_run_with(group, prefix, NULL);
}

static void tail(const char *out, const char *topic) {
    const char *argv[] = {DASHI_BINARY, "tail", "--bootstrap", boot, "--idle-ms", "3000",
                          topic ? "--topic" : NULL, topic, NULL};
    cr_assert_eq(dashi_test_run(argv, out, path("tail.log")), 0, "dashi tail failed");
}

static void replay(const char *in, const char *out, const char *state, const char *prefix) {
    const char *argv[] = {DASHI_BINARY, "replay", "--in", in, "--out", out, "--until", UNTIL, "--quiet",
                          "--rejects", path("rejects.txt"), "--state", state ? state : "memory", "--prefix",
                          prefix ? prefix : "dashi:", NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, path("replay.log")), 0, "dashi replay failed");
}

/* The distinct lines of a file, sorted. */
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
    l.buf = dashi_test_slurp(file, NULL);
    cr_assert(l.buf, "cannot read %s", file);
    size_t cap = 1024;
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

static void free_set(lines *l) {
    free(l->v);
    free(l->buf);
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
            if (!first_missing)
                first_missing = e.v[i];
            missing++, i++;
        } else {
            if (!first_extra)
                first_extra = a.v[j];
            extra++, j++;
        }
    }
    cr_expect(e.n > 100, "the reference has only %zu outputs: the stream is too small to show anything", e.n);
    cr_expect(missing == 0 && extra == 0,
              "%zu expected outputs, %zu distinct live outputs: %zu missing (first: %.300s), %zu extra (first: %.300s)",
              e.n, a.n, missing, first_missing ? first_missing : "-", extra, first_extra ? first_extra : "-");
    free_set(&e);
    free_set(&a);
}

Test(pipeline, run_equals_replay, .init = setup, .fini = teardown, .timeout = 300) {
    gen("11", "40", "400");
    publish(path("events.ndjson"), NULL);
    pid_t run = start_run("g-equal", "live:");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", path("run.log"));
    tail(path("live.ndjson"), NULL);
    replay(path("events.ndjson"), path("expected.ndjson"), NULL, NULL);
    assert_same_set(path("expected.ndjson"), path("live.ndjson"));
}

/* Every key and value under prefix except progress/fencing/outbox, as "key\tvalue\n" lines. */
static int dump_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    FILE *f = opaque;
    if ((key_len >= 4 && (memcmp(key, "off:", 4) == 0)) || (key_len >= 3 && memcmp(key, "ep:", 3) == 0) ||
        (key_len >= 3 && memcmp(key, "ob:", 3) == 0))
        return 0;
    fwrite(key, 1, key_len, f);
    fputc('\t', f);
    fwrite(val, 1, val_len, f);
    fputc('\n', f);
    return 0;
}

static void dump_state(const char *prefix, const char *file) {
    char err[512];
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), prefix, err, sizeof(err));
    cr_assert(st, "%s", err);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    cr_assert_eq(st->ops->scan(st, "", 0, dump_one, f, err, sizeof(err)), DASHI_OK, "%s", err);
    fclose(f);
    dashi_state_destroy(st);
}

Test(pipeline, kill9_and_restart_lose_nothing, .init = setup, .fini = teardown, .timeout = 600) {
    gen("12", "60", "1200");
    publish(path("events.ndjson"), NULL);
    unsigned seed = 12345;
    int kills = 0;
    /* kill -9 at seeded moments; each restart rejoins the group and resumes from Redis */
    for (int round = 0; round < 4; round++) {
        pid_t run = start_run("g-kill", "live:");
        seed = seed * 1103515245u + 12345u;
        int ms = 3500 + (int)(seed % 3000); /* the group join takes ~3 s on the mock */
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (kill(run, 0) == 0) {
            dashi_test_kill(run, SIGKILL);
            kills++;
        } else {
            dashi_test_wait(run);
        }
    }
    pid_t run = start_run("g-kill", "live:");
    cr_assert_eq(dashi_test_wait(run), 0, "final dashi run failed (see %s)", path("run.log"));
    cr_expect(kills >= 1, "no run was still running when the kill came: the test showed nothing");
    tail(path("live.ndjson"), NULL);
    replay(path("events.ndjson"), path("expected.ndjson"), NULL, NULL);
    assert_same_set(path("expected.ndjson"), path("live.ndjson"));
    /* the same state as a crash-free replay on Redis */
    replay(path("events.ndjson"), path("expected2.ndjson"), dashi_test_redis_url(srv), "ref:");
    dump_state("live:", path("live.state"));
    dump_state("ref:", path("ref.state"));
    char *a = dashi_test_slurp(path("live.state"), NULL), *b = dashi_test_slurp(path("ref.state"), NULL);
    cr_assert(a && b);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect(strcmp(a, b) == 0, "Redis state after %d kill(s) differs from a crash-free run (%zu vs %zu bytes)", kills,
              strlen(a), strlen(b));
    free(a);
    free(b);
}

Test(pipeline, bad_records_go_to_dead_letters, .init = setup, .fini = teardown, .timeout = 300) {
    gen("13", "20", "200");
    FILE *f = fopen(path("events.ndjson"), "a");
    cr_assert(f);
    /* valid Avro, refused by the rules: a refund of an order nobody paid */
    fprintf(f, "{\"type\":\"OrderRefunded\",\"event_id\":\"bad-refund\",\"occurred_at\":\"2022-06-20T10:00:00+08:00\","
               "\"order_id\":\"no-such-order\",\"uid\":\"cust000001\",\"kind\":\"REFUND\",\"amount\":100}\n");
    fclose(f);
    publish(path("events.ndjson"), NULL);
    f = fopen(path("garbage.txt"), "w");
    cr_assert(f);
    fprintf(f, "not avro at all\n\x01\x02\x03\n{\"type\":\"OrderPaid\"}\n");
    fclose(f);
    publish(path("garbage.txt"), "order"); /* raw bytes onto an input topic */
    pid_t run = start_run("g-dlq", "live:");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", path("run.log"));
    tail(path("dlq.ndjson"), "dead-letter");
    char *d = dashi_test_slurp(path("dlq.ndjson"), NULL);
    cr_assert(d);
    size_t n = 0;
    for (char *s = d; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s))
        n += strncmp(s, "{\"type\":\"DeadLetter\"", 20) == 0; /* one line per record */
    cr_expect_eq(n, 4, "expected 4 dead letters, got %zu:\n%s", n, d);
    cr_expect(strstr(d, "\"source.topic\":\"order\""), "no source topic header:\n%s", d);
    cr_expect(strstr(d, "\"source.offset\":"), "no source offset header");
    cr_expect(strstr(d, "refund of unknown order"), "the rules' reason is missing:\n%s", d);
    cr_expect(strstr(d, "magic byte") || strstr(d, "wire") || strstr(d, "frame"), "no decode reason:\n%s", d);
    free(d);
    /* and the good events flowed: the outputs equal a replay of the same input (bad lines refused there too) */
    tail(path("live.ndjson"), NULL);
    replay(path("events.ndjson"), path("expected.ndjson"), NULL, NULL);
    /* tail of all topics includes the dead letters: drop them before comparing */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "grep -v '\"type\":\"DeadLetter\"' '%s' > '%s'", path("live.ndjson"), path("live-good.ndjson"));
    cr_assert_eq(system(cmd), 0);
    assert_same_set(path("expected.ndjson"), path("live-good.ndjson"));
}

/* A run without --exit-idle, stopped by signals: how many outputs it produced, from its stats line. */
static pid_t start_run_forever(const char *group, const char *prefix) {
    char g[128], pfx[128], rules[512];
    snprintf(g, sizeof(g), "group.id=%s", group);
    snprintf(pfx, sizeof(pfx), "redis.prefix=%s", prefix);
    snprintf(rules, sizeof(rules), "rules.file=%s/config/rules.json", DASHI_SOURCE_DIR);
    const char *argv[] = {DASHI_BINARY, "run", "--bootstrap", boot, "--set", redis_url_set, "--set", g, "--set", pfx,
                          "--set", rules, "--set", "hmac.key=dev", "--set", "shutdown.deadline_ms=5000",
                          "--clock-until", UNTIL, NULL};
    return dashi_test_spawn(argv, NULL, path("run.log"));
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(pipeline, sigterm_is_graceful_and_a_second_signal_is_immediate, .init = setup, .fini = teardown, .timeout = 600) {
    gen("14", "60", "1200");
    publish(path("events.ndjson"), NULL);
    /* 1: one SIGTERM mid-stream: exits 0 within the deadline, says what it did */
    pid_t run = start_run_forever("g-sig", "live:");
    struct timespec ts = {5, 0}, t0;
    nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(run, SIGTERM);
    int rc = dashi_test_wait(run);
    double took = seconds_since(&t0);
    cr_expect_eq(rc, 0, "dashi run exited %d on SIGTERM (see %s)", rc, path("run.log"));
    cr_expect(took < 5.0 + 3.0, "graceful stop took %.1f s, deadline 5 s", took);
    char *log = dashi_test_slurp(path("run.log"), NULL);
    cr_expect(log && strstr(log, "dashi run: stopped:"), "no summary line after SIGTERM:\n%s", log ? log : "");
    free(log);
    /* 2: two signals: exits at once */
    run = start_run_forever("g-sig", "live:");
    nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(run, SIGTERM);
    kill(run, SIGINT);
    rc = dashi_test_wait(run);
    took = seconds_since(&t0);
    cr_expect(took < 3.0, "second signal did not stop at once (%.1f s)", took);
    /* 3: whatever the stops left, a last run completes and nothing is lost or doubled */
    run = start_run("g-sig", "live:");
    cr_assert_eq(dashi_test_wait(run), 0, "final dashi run failed (see %s)", path("run.log"));
    tail(path("live.ndjson"), NULL);
    replay(path("events.ndjson"), path("expected.ndjson"), NULL, NULL);
    assert_same_set(path("expected.ndjson"), path("live.ndjson"));
}

static int count_key(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    (void)key, (void)key_len, (void)val, (void)val_len;
    (*(size_t *)opaque)++;
    return 0;
}

/* transactions=true on the mock cluster: init_transactions, a transaction per loop turn with the
 * consumed offsets, commit. The mock only acknowledges (no markers, no fencing), so this shows the
 * transactional path runs and gives the same outputs, not read-committed isolation. */
Test(pipeline, transactions_run_equals_replay, .init = setup, .fini = teardown, .timeout = 300) {
    gen("15", "40", "400");
    publish(path("events.ndjson"), NULL);
    pid_t run = start_run_with("g-txn", "live:", "transactions=true");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", path("run.log"));
    char *log = dashi_test_slurp(path("run.log"), NULL);
    cr_expect(log && strstr(log, "transactions: transactional.id g-txn-"), "no transactional producer:\n%s",
              log ? log : "");
    cr_expect(log && !strstr(log, "aborted"), "a transaction was aborted:\n%s", log ? log : "");
    free(log);
    /* outbox entries go only after their transaction committed: an empty outbox shows commits happened */
    char err[512];
    size_t left = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), "live:", err, sizeof(err));
    cr_assert(st, "%s", err);
    cr_assert_eq(st->ops->scan(st, "ob:", 3, count_key, &left, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_state_destroy(st);
    cr_expect_eq(left, 0, "%zu outbox entries left: their transactions never committed", left);
    tail(path("live.ndjson"), NULL);
    replay(path("events.ndjson"), path("expected.ndjson"), NULL, NULL);
    assert_same_set(path("expected.ndjson"), path("live.ndjson"));
}
