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

#include "tests/support/proc.h"
#include "tests/support/live.h"

#define UNTIL DASHI_TEST_LIVE_UNTIL

static void setup(void) {
    dashi_test_live_setup(4, NULL);
}

static void teardown(void) {
    dashi_test_live_teardown();
}

/* dashi run until idle; extra: one more --set (NULL: none). */
static pid_t start_run_with(const char *group, const char *prefix, const char *extra) {
    const char *args[] = {"--set", "merge.wait_ms=100", "--exit-idle", "2500", "--clock-until", UNTIL,
                          extra ? "--set" : NULL, extra, NULL};
    return dashi_test_live_spawn_run(group, prefix, NULL, args);
}

static pid_t start_run(const char *group, const char *prefix) {
    return start_run_with(group, prefix, NULL);
}

static void replay(const char *in, const char *out, const char *state, const char *prefix) {
    dashi_test_live_replay(in, out, state, prefix, dashi_test_live_path("rejects.txt"));
}

static void assert_same_set(const char *expected_file, const char *actual_file) {
    dashi_test_live_assert_same_set(expected_file, actual_file, NULL, "distinct live outputs");
}

Test(pipeline, run_equals_replay, .init = setup, .fini = teardown, .timeout = 300) {
    dashi_test_live_gen("events.ndjson", "11", "40", "400");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    pid_t run = start_run("g-equal", "live:");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL);
    assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"));
}

Test(pipeline, kill9_and_restart_lose_nothing, .init = setup, .fini = teardown, .timeout = 600) {
    dashi_test_live_gen("events.ndjson", "12", "60", "1200");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
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
    cr_assert_eq(dashi_test_wait(run), 0, "final dashi run failed (see %s)", dashi_test_live_path("run.log"));
    cr_expect(kills >= 1, "no run was still running when the kill came: the test showed nothing");
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL);
    assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"));
    /* the same state as a crash-free replay on Redis */
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected2.ndjson"), dashi_test_live_redis_url(),
           "ref:");
    char *a = dashi_test_live_dump_state("live:", dashi_test_live_path("live.state"), false),
         *b = dashi_test_live_dump_state("ref:", dashi_test_live_path("ref.state"), false);
    cr_assert(a && b);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect(strcmp(a, b) == 0, "Redis state after %d kill(s) differs from a crash-free run (%zu vs %zu bytes)", kills,
              strlen(a), strlen(b));
    free(a);
    free(b);
}

Test(pipeline, bad_records_go_to_dead_letters, .init = setup, .fini = teardown, .timeout = 300) {
    dashi_test_live_gen("events.ndjson", "13", "20", "200");
    FILE *f = fopen(dashi_test_live_path("events.ndjson"), "a");
    cr_assert(f);
    /* valid Avro, refused by the rules: a refund of an order nobody paid */
    fprintf(f, "{\"type\":\"OrderRefunded\",\"event_id\":\"bad-refund\",\"occurred_at\":\"2022-06-20T10:00:00+08:00\","
               "\"order_id\":\"no-such-order\",\"uid\":\"cust000001\",\"kind\":\"REFUND\",\"amount\":100}\n");
    fclose(f);
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    f = fopen(dashi_test_live_path("garbage.txt"), "w");
    cr_assert(f);
    fprintf(f, "not avro at all\n\x01\x02\x03\n{\"type\":\"OrderPaid\"}\n");
    fclose(f);
    dashi_test_live_publish(dashi_test_live_path("garbage.txt"), "order"); /* raw bytes onto an input topic */
    pid_t run = start_run("g-dlq", "live:");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    dashi_test_live_tail(dashi_test_live_path("dlq.ndjson"), "dead-letter", "3000");
    char *d = dashi_test_slurp(dashi_test_live_path("dlq.ndjson"), NULL);
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
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL);
    /* tail of all topics includes the dead letters: drop them before comparing */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "grep -v '\"type\":\"DeadLetter\"' '%s' > '%s'", dashi_test_live_path("live.ndjson"),
             dashi_test_live_path("live-good.ndjson"));
    cr_assert_eq(system(cmd), 0);
    assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live-good.ndjson"));
}

/* A run without --exit-idle, stopped by signals: how many outputs it produced, from its stats line. */
static pid_t start_run_forever(const char *group, const char *prefix) {
    const char *args[] = {"--set", "shutdown.deadline_ms=5000", "--clock-until", UNTIL, NULL};
    return dashi_test_live_spawn_run(group, prefix, NULL, args);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(pipeline, sigterm_is_graceful_and_a_second_signal_is_immediate, .init = setup, .fini = teardown, .timeout = 600) {
    dashi_test_live_gen("events.ndjson", "14", "60", "1200");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    /* 1: one SIGTERM mid-stream: exits 0 within the deadline, says what it did */
    pid_t run = start_run_forever("g-sig", "live:");
    struct timespec ts = {5, 0}, t0;
    nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(run, SIGTERM);
    int rc = dashi_test_wait(run);
    double took = seconds_since(&t0);
    cr_expect_eq(rc, 0, "dashi run exited %d on SIGTERM (see %s)", rc, dashi_test_live_path("run.log"));
    cr_expect(took < 5.0 + 3.0, "graceful stop took %.1f s, deadline 5 s", took);
    char *log = dashi_test_slurp(dashi_test_live_path("run.log"), NULL);
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
    cr_assert_eq(dashi_test_wait(run), 0, "final dashi run failed (see %s)", dashi_test_live_path("run.log"));
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL);
    assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"));
}

/* transactions=true on the mock cluster: init_transactions, a transaction per loop turn with the
 * consumed offsets, commit. The mock only acknowledges (no markers, no fencing), so this shows the
 * transactional path runs and gives the same outputs, not read-committed isolation. */
Test(pipeline, transactions_run_equals_replay, .init = setup, .fini = teardown, .timeout = 300) {
    dashi_test_live_gen("events.ndjson", "15", "40", "400");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    pid_t run = start_run_with("g-txn", "live:", "transactions=true");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    char *log = dashi_test_slurp(dashi_test_live_path("run.log"), NULL);
    cr_expect(log && strstr(log, "transactions: transactional.id g-txn-"), "no transactional producer:\n%s",
              log ? log : "");
    cr_expect(log && !strstr(log, "aborted"), "a transaction was aborted:\n%s", log ? log : "");
    free(log);
    /* outbox entries go only after their transaction committed: an empty outbox shows commits happened */
    size_t left = dashi_test_live_count_keys("live:", "ob:");
    cr_expect_eq(left, 0, "%zu outbox entries left: their transactions never committed", left);
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL);
    assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"));
}

/* Flow control: with queues of 4 records per topic-partition (queue.max_events=100
 * over 24), fetching pauses and resumes many times; nothing is skipped or repeated,
 * and the order is replay's. The backlog takes far longer than merge.max_stall_ms
 * (2 s) to apply: a stall counted from the records' arrival (as the merge's hard
 * cap once was) would give up waiting for the paused partitions and lose order. */
Test(pipeline, small_queues_pause_fetching_and_equal_replay, .init = setup, .fini = teardown, .timeout = 300) {
    dashi_test_live_gen("events.ndjson", "16", "40", "400");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    const char *args[] = {"--set", "merge.wait_ms=100", "--set", "queue.max_events=100", "--set",
                          "merge.max_stall_ms=2000", "--set", "kafka.fetch.wait.max.ms=100", "--exit-idle", "2500",
                          "--clock-until", UNTIL, NULL};
    pid_t run = dashi_test_live_spawn_run("g-pause", "live:", NULL, args);
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    char *log = dashi_test_slurp(dashi_test_live_path("run.log"), NULL);
    const char *s = log ? strstr(log, "re-sent), ") : NULL;
    unsigned long long pauses = 0;
    cr_assert(s && sscanf(s, "re-sent), %llu fetch pauses", &pauses) == 1, "no summary line:\n%s", log ? log : "");
    cr_expect(!strstr(log, "applying without it"), "the merge gave up waiting:\n%s", log);
    free(log);
    cr_expect_gt(pauses, 10, "fetching paused only %llu times: flow control did not act", pauses);
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL);
    assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"));
}
