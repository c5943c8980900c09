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

#include "tests/support/live.h"
#include "tests/support/proc.h"
#include "tests/support/redis_server.h"

#define UNTIL DASHI_TEST_LIVE_UNTIL

static void setup(void) {
    dashi_test_live_setup(4, (const char *[]){"--appendonly", "yes", "--appendfsync", "always", NULL});
}

static void teardown(void) {
    dashi_test_live_teardown();
}

static void gen_and_publish(const char *seed, const char *ambassadors, const char *customers) {
    dashi_test_live_gen("events.ndjson", seed, ambassadors, customers);
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
}

static pid_t start_run(const char *wait_ms) {
    char wait[64];
    snprintf(wait, sizeof(wait), "redis.wait_ms=%s", wait_ms);
    const char *args[] = {"--set", "merge.wait_ms=100", "--set", wait, "--exit-idle", "2500", "--clock-until", UNTIL,
                          NULL};
    return dashi_test_live_spawn_run("g-faults", "live:", NULL, args);
}

static void replay(const char *out, const char *prefix) {
    dashi_test_live_replay(dashi_test_live_path("events.ndjson"), out, prefix ? dashi_test_live_redis_url() : "memory",
                           prefix ? prefix : "dashi:", dashi_test_live_path("rejects.txt"));
}

/* De-duplication markers under live: (events applied); 0 when Redis does not answer. */
static size_t applied_now(void) {
    return dashi_test_live_count_keys_or_0("live:", "ev:");
}

static bool log_has(const char *text) {
    return dashi_test_live_file_has(dashi_test_live_path("run.log"), text);
}

Test(faults, redis_unreachable_at_start_is_waited_for, .init = setup, .fini = teardown, .timeout = 300) {
    gen_and_publish("31", "30", "300");
    cr_assert_eq(dashi_test_redis_kill(dashi_test_live_redis()), 0);
    pid_t run = start_run("60000");
    dashi_test_live_sleep_ms(4000);
    cr_assert_eq(kill(run, 0), 0, "dashi run did not wait for Redis (see %s)", dashi_test_live_path("run.log"));
    cr_expect(log_has("Redis unreachable (start-up)"), "no log line about waiting for Redis");
    cr_expect(log_has("retry 4 in 800 ms"), "the waits do not back off exponentially (see %s)",
              dashi_test_live_path("run.log"));
    cr_assert_eq(dashi_test_redis_restart(dashi_test_live_redis()), 0, "redis-server did not come back");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed once Redis was there (see %s)",
                 dashi_test_live_path("run.log"));
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("expected.ndjson"), NULL);
    dashi_test_live_assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"), NULL,
                                    "distinct live outputs");
}

Test(faults, redis_gone_longer_than_redis_wait_ms_stops_with_an_error, .init = setup, .fini = teardown,
     .timeout = 120) {
    gen_and_publish("32", "5", "20");
    cr_assert_eq(dashi_test_redis_kill(dashi_test_live_redis()), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t run = start_run("1500");
    int rc = dashi_test_wait(run);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_neq(rc, 0, "dashi run exited 0 without Redis");
    cr_expect(took < 1.5 + 6.0, "gave up after %.1f s, redis.wait_ms is 1.5 s", took);
    cr_expect(log_has("redis.wait_ms"), "the error does not name redis.wait_ms (see %s)",
              dashi_test_live_path("run.log"));
}

Test(faults, redis_restarted_mid_run_loses_nothing_and_applies_nothing_twice, .init = setup, .fini = teardown,
     .timeout = 400) {
    gen_and_publish("33", "60", "1200");
    size_t total = dashi_test_live_count_lines(dashi_test_live_path("events.ndjson")), restarts = 0;
    pid_t run = start_run("60000");
    /* kill -9 Redis twice while events are applied, each time at a fraction of the stream */
    const double at[] = {0.2, 0.55};
    for (size_t k = 0; k < 2; k++) {
        size_t have = 0;
        for (int waited = 0; waited < 90000 && (have = applied_now()) < (size_t)(at[k] * (double)total); waited += 50)
            dashi_test_live_sleep_ms(50);
        if (have >= total)
            break; /* too late: the run is through */
        cr_assert_eq(dashi_test_redis_kill(dashi_test_live_redis()), 0);
        dashi_test_live_sleep_ms(2000);
        cr_assert_eq(dashi_test_redis_restart(dashi_test_live_redis()), 0, "redis-server did not come back");
        restarts++;
    }
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    cr_expect_eq(restarts, 2, "only %zu restart(s) came while events were applied", restarts);
    cr_expect(log_has("Redis unreachable (applying"), "the run never saw Redis go away (see %s)",
              dashi_test_live_path("run.log"));
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    replay(dashi_test_live_path("expected.ndjson"), NULL);
    dashi_test_live_assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"), NULL,
                                    "distinct live outputs");
    /* the same state as a fault-free replay on Redis */
    replay(dashi_test_live_path("expected2.ndjson"), "ref:");
    char *a = dashi_test_live_dump_state("live:", dashi_test_live_path("live.state"), false),
         *b = dashi_test_live_dump_state("ref:", dashi_test_live_path("ref.state"), false);
    cr_assert(a && b);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect(strcmp(a, b) == 0, "Redis state after %zu restart(s) differs from a fault-free run (%zu vs %zu bytes)",
              restarts, strlen(a), strlen(b));
    free(a);
    free(b);
}
