/* test_rebalance.c — several `dashi run` members in one group give exactly replay's outputs and state.
 *
 * One redis-server and one `dashi devcluster` (4 partitions) per test. The
 * reference is `dashi replay` of the same events into the same Redis under
 * another prefix. Members order events across each other through Redis (the
 * group merge, merge.group, consumers/pipeline.c), so the assertion is plain
 * equality: the distinct output lines (ids and bytes) are replay's, the Redis
 * state (every data key and value) is replay's, as many timers are left queued,
 * every event has one de-duplication marker and the members' applied counts add
 * up to the events replay accepts (a redelivery after a rebalance is a
 * duplicate, not a second application), and the outbox is empty.
 *
 * Members run with merge.wait_ms=1000 and kafka.fetch.wait.max.ms=50: records of
 * one publish reach the two members within one fetch wait of each other, well
 * inside the lateness bound (the mock answers a fetch only when
 * fetch.wait.max.ms ends, 500 ms by default).
 *
 *   - two_members_join_and_leave_mid_stream: the stream is published in three
 *     parts; member A starts alone on the first; member B joins (rebalance: the
 *     range assignor gives each 12 of the 24 topic-partitions) and both apply the
 *     second part; A is stopped with SIGTERM (second rebalance: B takes every
 *     partition) while the last part is published. A and B run with
 *     idle.advance_ms=0 (the pauses between parts would otherwise let stream
 *     time follow the clock to the end, as in any run where input comes years
 *     late); a last member C, with nothing left to consume, then lets stream time
 *     follow the clock to the end, as replay's --until does. With merge.group=false
 *     (each member orders only its own partitions) and with a SIGTERM that
 *     applied the whole queue regardless of order, outputs differed (2 to 35 of
 *     ~7,700 in runs here).
 *   - stalled_member_holds_back_the_clock: A starts, B joins (12 topic-partitions
 *     each), then the whole stream is published, and B is stopped (SIGSTOP) for
 *     2.5 s while both have a backlog, with idle advance on (300 ms). A must neither apply past B's
 *     earliest queued event nor let stream time follow the clock (which fires the
 *     global timers) while B's partitions are not idle. With merge.group=false,
 *     A fires every timer up to the end while B is stopped.
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

#define UNTIL DASHI_TEST_LIVE_UNTIL

static void setup(void) {
    dashi_test_live_setup(4, NULL);
}

static void teardown(void) {
    dashi_test_live_teardown();
}

/* A member of group; idle_advance: whether stream time may follow the (capped) clock when it is idle. */
static pid_t start_member(const char *group, const char *log, int idle_advance) {
    const char *args[] = {"--set", "merge.wait_ms=1000", "--set", "kafka.fetch.wait.max.ms=50", "--set", "shutdown.deadline_ms=5000", "--set",
                          /* the mock holds a rebalance for session.timeout.ms - 1 s (45 s by default) */
                          "kafka.session.timeout.ms=6000", "--set", "kafka.heartbeat.interval.ms=500", "--set",
                          idle_advance ? "idle.advance_ms=300" : "idle.advance_ms=0", "--exit-idle", "9000",
                          "--clock-until", UNTIL, "--verbose", NULL};
    return dashi_test_live_spawn_run(group, "live:", log, args);
}

/* Replay into the same Redis under "ref:" so its state can be compared. */
static void replay(const char *in, const char *out) {
    dashi_test_live_replay(in, out, dashi_test_live_redis_url(), "ref:", dashi_test_live_path("rejects.txt"));
}

/* Split the generated stream (in occurred_at order) into parts at the given fractions. */
static size_t split(const char *in, const char *const *outs, const double *upto, size_t n_parts) {
    char *buf = dashi_test_slurp(in, NULL);
    cr_assert(buf);
    size_t total = 0;
    for (char *s = buf; *s; s++)
        total += *s == '\n';
    FILE *f = NULL;
    size_t line = 0, part = 0;
    for (char *s = strtok(buf, "\n"); s; s = strtok(NULL, "\n"), line++) {
        while (part < n_parts && (double)line >= upto[part] * (double)total) {
            if (f)
                fclose(f);
            f = NULL;
            part++;
        }
        if (!f) {
            cr_assert_lt(part, n_parts);
            f = fopen(outs[part], "w");
            cr_assert(f);
        }
        fprintf(f, "%s\n", s);
    }
    if (f)
        fclose(f);
    free(buf);
    return total;
}

/* ---- Redis ---- */

static size_t count_keys(const char *prefix) {
    return dashi_test_live_count_keys("live:", prefix);
}

/* Wait until at least n events are applied (markers), at most ms. */
static size_t wait_applied(size_t n, int ms) {
    size_t have = 0;
    for (int waited = 0; waited < ms; waited += 200) {
        if ((have = count_keys("ev:")) >= n)
            break;
        dashi_test_live_sleep_ms(200);
    }
    return have;
}

/* "applied" of a member's summary line, or -1. */
static long long applied_of(const char *log) {
    char *text = dashi_test_slurp(log, NULL);
    long long n = -1;
    const char *s = text ? strstr(text, "dashi run: stopped: ") : NULL;
    if (s) {
        long long consumed;
        if (sscanf(s, "dashi run: stopped: %lld consumed, %lld applied", &consumed, &n) != 2)
            n = -1;
    }
    free(text);
    return n;
}

/* ---- the comparison with replay ---- */

/* Everything a run of several members must share with replay (see the top). */
static void assert_equals_replay(size_t accepted, const char *const *logs, size_t n_logs) {
    size_t markers = count_keys("ev:");
    cr_expect_eq(markers, accepted, "%zu de-duplication markers for %zu events replay accepts", markers, accepted);
    long long applied = 0;
    for (size_t i = 0; i < n_logs; i++) {
        long long n = applied_of(logs[i]);
        cr_expect_geq(n, 0, "no summary line in %s", logs[i]);
        applied += n;
    }
    cr_expect_eq((size_t)applied, accepted, "the members applied %lld events, replay accepts %zu", applied, accepted);
    size_t live_timers = dashi_test_live_count_timers("live:"), ref_timers = dashi_test_live_count_timers("ref:");
    cr_expect_eq(live_timers, ref_timers, "%zu timers left queued, replay leaves %zu", live_timers, ref_timers);
    cr_expect_eq(count_keys("ob:"), 0, "outbox entries left unacknowledged");

    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    dashi_test_live_assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"), NULL,
                                    "distinct outputs of the members");
    char *a = dashi_test_live_dump_state("live:", dashi_test_live_path("live.state"), false),
         *b = dashi_test_live_dump_state("ref:", dashi_test_live_path("ref.state"), false);
    cr_assert(a && b);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect(strcmp(a, b) == 0, "Redis state of the members differs from replay's (%zu vs %zu bytes; see %s)", strlen(a),
              strlen(b), dashi_test_live_path("live.state"));
    free(a);
    free(b);
}

/* Times "pipeline: assigned" appears in a log. */
static size_t assignments(const char *log, const char *what) {
    char *text = dashi_test_slurp(log, NULL);
    size_t n = 0;
    for (char *s = text; s && (s = strstr(s, what)); s++)
        n++;
    free(text);
    return n;
}

Test(rebalance, two_members_join_and_leave_mid_stream, .init = setup, .fini = teardown, .timeout = 400) {
    dashi_test_live_gen("events.ndjson", "21", "200", "2000");
    char p1[512], p2[512], p3[512]; /* dashi_test_live_path() has only a few buffers */
    snprintf(p1, sizeof p1, "%s", dashi_test_live_path("p1.ndjson"));
    snprintf(p2, sizeof p2, "%s", dashi_test_live_path("p2.ndjson"));
    snprintf(p3, sizeof p3, "%s", dashi_test_live_path("p3.ndjson"));
    const char *parts[] = {p1, p2, p3};
    const double upto[] = {0.4, 0.7, 1.0};
    size_t total = split(dashi_test_live_path("events.ndjson"), parts, upto, 3);
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"));
    size_t accepted = total - dashi_test_live_count_lines(dashi_test_live_path("rejects.txt"));
    cr_assert_gt(accepted, 5000, "the stream is too small to show anything (%zu events)", accepted);

    /* A alone on the first part */
    dashi_test_live_publish(parts[0], NULL);
    pid_t a = start_member("g-reb", dashi_test_live_path("a.log"), 0);
    size_t have = wait_applied((size_t)(0.3 * (double)total), 60000);
    cr_assert_geq(have, (size_t)(0.3 * (double)total), "member A applied only %zu events in 60 s (see %s)", have,
                  dashi_test_live_path("a.log"));
    /* B joins: the group rebalances, the range assignor splits the partitions */
    pid_t b = start_member("g-reb", dashi_test_live_path("b.log"), 0);
    cr_assert(dashi_test_live_wait_file(dashi_test_live_path("b.log"), "pipeline: assigned", 30000),
              "member B got no partitions (see %s)", dashi_test_live_path("b.log"));
    /* both members apply the second part at once */
    size_t before_both = count_keys("ev:");
    dashi_test_live_publish(parts[1], NULL);
    dashi_test_live_sleep_ms(3000);
    size_t before_leave = count_keys("ev:");
    /* A leaves gracefully (SIGTERM) and the last part arrives: B takes every partition */
    kill(a, SIGTERM);
    dashi_test_live_publish(parts[2], NULL);
    int rc_a = dashi_test_wait(a), rc_b = dashi_test_wait(b);
    cr_assert_eq(rc_a, 0, "member A exited %d (see %s)", rc_a, dashi_test_live_path("a.log"));
    cr_assert_eq(rc_b, 0, "member B exited %d (see %s)", rc_b, dashi_test_live_path("b.log"));
    cr_expect_geq(assignments(dashi_test_live_path("a.log"), "pipeline: assigned"), 2,
                  "member A saw one assignment: no rebalance happened while it ran");
    cr_expect_geq(assignments(dashi_test_live_path("b.log"), "pipeline: assigned 24 "), 1,
                  "member B never took over every partition");
    cr_expect_gt(before_leave, before_both, "nothing was applied while both members ran");
    /* stream time reaches the end: a last member, idle from the start, advances it (fires the timers left) */
    pid_t c = start_member("g-reb", dashi_test_live_path("c.log"), 1);
    int rc_c = dashi_test_wait(c);
    cr_assert_eq(rc_c, 0, "member C exited %d (see %s)", rc_c, dashi_test_live_path("c.log"));
    fprintf(stderr, "rebalance: %zu events; applied: A %lld, B %lld (%zu while both ran), C %lld\n", total,
            applied_of(dashi_test_live_path("a.log")), applied_of(dashi_test_live_path("b.log")),
            before_leave - before_both, applied_of(dashi_test_live_path("c.log")));
    char la[512], lb[512], lc[512];
    snprintf(la, sizeof la, "%s", dashi_test_live_path("a.log"));
    snprintf(lb, sizeof lb, "%s", dashi_test_live_path("b.log"));
    snprintf(lc, sizeof lc, "%s", dashi_test_live_path("c.log"));
    const char *logs[] = {la, lb, lc};
    assert_equals_replay(accepted, logs, 3);
}

Test(rebalance, stalled_member_holds_back_the_clock, .init = setup, .fini = teardown, .timeout = 400) {
    dashi_test_live_gen("events.ndjson", "22", "300", "3000");
    replay(dashi_test_live_path("events.ndjson"), dashi_test_live_path("expected.ndjson"));
    size_t total = dashi_test_live_count_lines(dashi_test_live_path("events.ndjson"));
    size_t accepted = total - dashi_test_live_count_lines(dashi_test_live_path("rejects.txt"));
    cr_assert_gt(accepted, 8000, "the stream is too small to show anything (%zu events)", accepted);

    /* both members in the group (12 topic-partitions each) before any event: each gets a backlog */
    pid_t a = start_member("g-stall", dashi_test_live_path("a.log"), 1);
    cr_assert(dashi_test_live_wait_file(dashi_test_live_path("a.log"), "pipeline: assigned", 30000),
              "member A got no partitions (see %s)", dashi_test_live_path("a.log"));
    pid_t b = start_member("g-stall", dashi_test_live_path("b.log"), 1);
    cr_assert(dashi_test_live_wait_file(dashi_test_live_path("b.log"), "pipeline: assigned 12 ", 30000),
              "member B got no partitions (see %s)", dashi_test_live_path("b.log"));
    cr_assert(dashi_test_live_wait_file(dashi_test_live_path("a.log"), "pipeline: assigned 12 ", 30000),
              "member A was not given its half (see %s)", dashi_test_live_path("a.log"));
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    size_t have = wait_applied(300, 60000);
    cr_assert_geq(have, 300, "the members applied only %zu events in 60 s (see %s)", have, dashi_test_live_path("a.log"));
    size_t at_stop = count_keys("ev:");
    kill(b, SIGSTOP); /* shorter than the session timeout (6 s): B stays in the group */
    dashi_test_live_sleep_ms(2500);
    size_t at_cont = count_keys("ev:");
    kill(b, SIGCONT);
    int rc_a = dashi_test_wait(a), rc_b = dashi_test_wait(b);
    cr_assert_eq(rc_a, 0, "member A exited %d (see %s)", rc_a, dashi_test_live_path("a.log"));
    cr_assert_eq(rc_b, 0, "member B exited %d (see %s)", rc_b, dashi_test_live_path("b.log"));
    cr_expect_lt(at_stop, accepted, "everything was applied before B was stopped: the stall showed nothing");
    fprintf(stderr, "rebalance: %zu events; applied: A %lld, B %lld; %zu applied while B was stopped, of %zu left\n",
            total, applied_of(dashi_test_live_path("a.log")), applied_of(dashi_test_live_path("b.log")),
            at_cont - at_stop, accepted - at_stop);
    char la[512], lb[512];
    snprintf(la, sizeof la, "%s", dashi_test_live_path("a.log"));
    snprintf(lb, sizeof lb, "%s", dashi_test_live_path("b.log"));
    const char *logs[] = {la, lb};
    assert_equals_replay(accepted, logs, 2);
}
