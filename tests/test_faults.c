/* test_faults.c — try to break `dashi run`'s guarantees: kill -9 at random moments, Kafka faults, arrival orders.
 *
 * Every test runs the real programs as test_pipeline.c does: a private
 * redis-server (tests/support/redis_server.h), `dashi devcluster --control`
 * (tests/support/mockctl.h: librdkafka's mock cluster, with fault injection on its
 * stdin), `dashi gen`, `dashi publish`, `dashi run`, `dashi tail`. The reference
 * is a crash-free `dashi replay` of the same events:
 *  - outputs: the set of distinct live records equals replay's, byte for byte,
 *    and no output identity (type, id and, for a CommissionEvent, its event and
 *    cause; for a TierAssigned its ambassador and month) appears with two
 *    different contents;
 *  - state: every key under the run's prefix except the pipeline's bookkeeping
 *    (off:, ep:, ob:) and the queued timers equal those of a replay on Redis.
 *    The de-duplication markers ev:<id> are part of that state, so an input applied
 *    twice or not at all shows there.
 *
 * Arrival order: a backlog published topic by topic in reverse, or in a random
 * interleaving of the topics (each topic in time order, as one producer per topic
 * would send it), gives exactly replay's outputs and state — one member's merge
 * waits for every partition that is not at its end. Live, registrations published
 * a second after the rest, to a member already caught up, are still applied before
 * their customers' orders: a partition at its end is waited for merge.wait_ms after
 * the waiting record arrived.
 *
 * Each restart after a kill joins a fresh consumer group: on the mock, a member
 * killed with SIGKILL keeps its partitions until its session times out (45 s by
 * default, ~90 s measured until a same-group restart is assigned), and progress
 * lives in Redis, not in the group, so the group id carries nothing. The kill
 * schedule is a seeded PRNG (DASHI_FAULT_SEED overrides the default), printed with
 * every kill, so a failure can be replayed. bench/soak.sh runs the same test longer
 * through DASHI_FAULT_KILLS, DASHI_FAULT_AMBASSADORS, DASHI_FAULT_CUSTOMERS and
 * DASHI_FAULT_REDIS_RESTARTS (Redis with an fsynced AOF, SIGKILLed and restarted
 * after every kill).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/state.h"
#include "tests/support/live.h"
#include "tests/support/mockctl.h"
#include "tests/support/proc.h"

#define UNTIL DASHI_TEST_LIVE_UNTIL
#define PARTS 4

static const char *const input_topics[] = {"registration", "association", "verification", "account", "order", "risk-action"};
#define N_INPUT_TOPICS (sizeof(input_topics) / sizeof(input_topics[0]))

static dashi_test_mock *mock;
static dashi_state *progress_st; /* live: state, for progress() */

static void start_all(int brokers) {
    dashi_test_live_setup(0, NULL);
    mock = dashi_test_mock_start(DASHI_BINARY, dashi_test_live_dir(), brokers, PARTS);
    cr_assert(mock, "dashi devcluster --control did not start (see %s/devcluster.log)", dashi_test_live_dir());
    dashi_test_live_set_boot(dashi_test_mock_bootstrap(mock));
}

static void setup(void) {
    start_all(1);
}

static void setup3(void) {
    start_all(3);
}

static void teardown(void) {
    dashi_state_destroy(progress_st);
    progress_st = NULL;
    dashi_test_mock_stop(mock);
    dashi_test_live_teardown();
}

static void mock_ok(const char *cmd) {
    char answer[512];
    cr_assert_eq(dashi_test_mock_cmd(mock, answer, sizeof(answer), "%s", cmd), 0, "devcluster: %s -> %s", cmd, answer);
}

static long mock_pending(int broker, const char *api) {
    char answer[512];
    cr_assert_eq(dashi_test_mock_cmd(mock, answer, sizeof(answer), "pending %d %s", broker, api), 0, "pending: %s",
                 answer);
    return atol(answer + 3);
}

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the programs ---- */

static size_t gen(const char *seed, const char *ambassadors, const char *customers) {
    dashi_test_live_gen("events.ndjson", seed, ambassadors, customers);
    char *s = dashi_test_slurp(dashi_test_live_path("events.ndjson"), NULL);
    cr_assert(s);
    size_t n = 0;
    for (char *c = s; *c; c++)
        n += *c == '\n';
    free(s);
    return n;
}

/* Batches of 25 records (not the default 500): progress moves in small steps, so
 * kills land at many points of the stream, between and inside batch commits. */
static pid_t start_run(const char *group, const char *log) {
    const char *args[] = {"--set", "merge.wait_ms=100", "--set", "batch.max_events=25", "--exit-idle", "2000",
                          "--clock-until", UNTIL, "--verbose", NULL};
    return dashi_test_live_spawn_run(group, "live:", log, args);
}

static void run_to_end(const char *group) {
    pid_t run = start_run(group, dashi_test_live_path("run.log"));
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
}

static void tail_idle(const char *out, const char *idle_ms) {
    dashi_test_live_tail(out, NULL, idle_ms);
}

static void tail(const char *out) {
    tail_idle(out, "3000");
}

static void replay(const char *out, const char *state, const char *prefix) {
    dashi_test_live_replay(dashi_test_live_path("events.ndjson"), out, state, prefix,
                           dashi_test_live_path("rejects.txt"));
}

/* ---- progress: input records applied (or dead-lettered), from off:<topic>:<p> ---- */

static long long progress(void) {
    dashi_state *st = progress_st;
    char err[512];
    if (!st)
        st = progress_st = dashi_state_open(dashi_test_live_redis_url(), "live:", err, sizeof(err));
    cr_assert(st, "%s", err);
    char names[N_INPUT_TOPICS * PARTS][64];
    dashi_bytes keys[N_INPUT_TOPICS * PARTS], vals[N_INPUT_TOPICS * PARTS];
    size_t n = 0;
    for (size_t t = 0; t < N_INPUT_TOPICS; t++)
        for (int p = 0; p < PARTS; p++, n++) {
            snprintf(names[n], sizeof(names[n]), "off:%s:%d", input_topics[t], p);
            keys[n].data = names[n];
            keys[n].len = strlen(names[n]);
        }
    if (st->ops->mget(st, n, keys, vals, err, sizeof(err)) != DASHI_OK) { /* Redis busy: ask again later */
        dashi_state_destroy(st);
        progress_st = NULL;
        return -1;
    }
    long long sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (vals[i].data)
            sum += strtoll(vals[i].data, NULL, 10) + 1;
        free(vals[i].data);
    }
    return sum;
}

/* ---- comparing outputs ---- */

typedef dashi_test_live_lines lines;

static lines read_set(const char *file) {
    return dashi_test_live_read_set(file, NULL);
}

static void free_set(lines *l) {
    dashi_test_live_lines_free(l);
}

/* The identity of an output record: what a consumer de-duplicates by. */
static char *identity_of(const char *line) {
    json_t *j = json_loads(line, 0, NULL);
    cr_assert(j, "live output is not JSON: %.200s", line);
    const char *type = json_string_value(json_object_get(j, "type"));
    cr_assert(type, "live output without type: %.200s", line);
    static const char *const fields[][4] = {
        {"SamePersonDecision", "decision_id", NULL, NULL},
        {"CommissionEvent", "commission_id", "event", "caused_by"},
        {"CampaignEvent", "campaign_event_id", NULL, NULL},
        {"TierAssigned", "ambassador_uid", "month", NULL},
        {"FraudAlert", "alert_id", NULL, NULL},
        {"DeadLetter", "source.topic", "source.offset", NULL},
    };
    char id[1024];
    int n = snprintf(id, sizeof(id), "%s", type);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(fields[i][0], type) == 0)
            for (int f = 1; f < 4 && fields[i][f]; f++) {
                json_t *v = json_object_get(j, fields[i][f]);
                n += snprintf(id + n, sizeof(id) - (size_t)n, "|%s", json_is_string(v) ? json_string_value(v) : "?");
            }
    json_decref(j);
    return strdup(id);
}

typedef struct idpair {
    char *id;
    const char *line;
} idpair;

static int cmp_idpair(const void *a, const void *b) {
    const idpair *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->line, y->line);
}

/* Identities with two different contents among the distinct lines of l (first one in *example). */
static size_t conflicting_ids(const lines *l, char *example, size_t example_size) {
    idpair *v = calloc(l->n + 1, sizeof(*v));
    size_t conflicts = 0;
    for (size_t i = 0; i < l->n; i++)
        v[i] = (idpair){identity_of(l->v[i]), l->v[i]};
    qsort(v, l->n, sizeof(*v), cmp_idpair);
    example[0] = '\0';
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(v[i - 1].id, v[i].id) == 0) {
            if (!conflicts++)
                snprintf(example, example_size, "%s: %.200s | %.200s", v[i].id, v[i - 1].line, v[i].line);
        }
    for (size_t i = 0; i < l->n; i++)
        free(v[i].id);
    free(v);
    return conflicts;
}

/* Live outputs vs replay's: the same distinct set, no identity with two contents.
 * Returns how many live records were exact repeats (a re-send after a crash). */
static size_t assert_outputs_equal(const char *expected_file, const char *actual_file, size_t *n_missing) {
    lines e = read_set(expected_file), a = read_set(actual_file);
    dashi_test_live_diff d = dashi_test_live_diff_sets(&e, &a);
    size_t missing = d.missing, extra = d.extra;
    const char *first_missing = d.first_missing, *first_extra = d.first_extra;
    char example[600];
    size_t ref_conflicts = conflicting_ids(&e, example, sizeof(example));
    cr_expect_eq(ref_conflicts, 0, "the reference itself has %zu identities with two contents (%s): the identity "
                 "definition of this test is wrong", ref_conflicts, example);
    size_t conflicts = conflicting_ids(&a, example, sizeof(example));
    cr_expect_eq(conflicts, 0, "%zu output identities delivered with two different contents, e.g. %s", conflicts,
                 example);
    cr_expect(e.n > 100, "the reference has only %zu outputs: the stream is too small to show anything", e.n);
    cr_expect(missing == 0 && extra == 0,
              "%zu expected outputs, %zu distinct live outputs: %zu missing (first: %.300s), %zu extra (first: %.300s)",
              e.n, a.n, missing, first_missing ? first_missing : "-", extra, first_extra ? first_extra : "-");
    size_t repeats = a.total - a.n;
    if (n_missing)
        *n_missing = missing;
    fprintf(stderr, "  outputs: %zu expected, %zu live records, %zu distinct, %zu repeated, %zu missing, %zu extra\n",
            e.n, a.total, a.n, repeats, missing, extra);
    free_set(&e);
    free_set(&a);
    return repeats;
}

/* ---- comparing state ---- */

/* Keys (but bookkeeping) and queued timers of prefix into file; the number of ev: markers in *markers. */
static void dump_state(const char *prefix, const char *file, size_t *markers, size_t *outbox) {
    char err[512];
    char *keys = dashi_test_live_dump_state(prefix, NULL, false);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(keys, f);
    free(keys);
    dashi_state *st = dashi_state_open(dashi_test_live_redis_url(), prefix, err, sizeof(err));
    cr_assert(st, "%s", err);
    dashi_timer *timers = NULL;
    size_t n = 0;
    cr_assert_eq(st->ops->timers_due(st, INT64_C(1) << 52, 1000000, &timers, &n, err, sizeof(err)), DASHI_OK, "%s", err);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "timer\t%s\t%lld\t%.*s\n", timers[i].id, (long long)timers[i].due, (int)timers[i].payload_len,
                timers[i].payload ? timers[i].payload : "");
    dashi_timers_free(timers, n);
    fclose(f);
    dashi_state_destroy(st);
    *markers = dashi_test_live_count_keys(prefix, "ev:");
    if (outbox)
        *outbox = dashi_test_live_count_keys(prefix, "ob:");
}

/* The final Redis state under live: equals a crash-free replay's on Redis (under ref:). */
static void assert_state_equal(size_t n_events) {
    size_t live_markers = 0, ref_markers = 0, outbox = 0;
    replay(dashi_test_live_path("expected-redis.ndjson"), dashi_test_live_redis_url(), "ref:");
    dump_state("live:", dashi_test_live_path("live.state"), &live_markers, &outbox);
    dump_state("ref:", dashi_test_live_path("ref.state"), &ref_markers, NULL);
    char *a = dashi_test_slurp(dashi_test_live_path("live.state"), NULL),
         *b = dashi_test_slurp(dashi_test_live_path("ref.state"), NULL);
    cr_assert(a && b);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect_eq(live_markers, ref_markers, "%zu de-duplication markers live, %zu in the reference", live_markers,
                 ref_markers);
    cr_expect(ref_markers + 10 >= n_events, "only %zu markers for %zu events", ref_markers, n_events);
    cr_expect(strcmp(a, b) == 0, "Redis state differs from a crash-free replay's (%zu vs %zu bytes; see %s and %s)",
              strlen(a), strlen(b), dashi_test_live_path("live.state"), dashi_test_live_path("ref.state"));
    cr_expect_eq(outbox, 0, "%zu outbox entries left after the last run", outbox);
    fprintf(stderr, "  state: %zu bytes, %zu ev: markers, equal: %s, outbox left: %zu\n", strlen(a), live_markers,
            strcmp(a, b) == 0 ? "yes" : "NO", outbox);
    free(a);
    free(b);
}

static void check_against_replay(size_t n_events, bool allow_repeats) {
    tail(dashi_test_live_path("live.ndjson"));
    replay(dashi_test_live_path("expected.ndjson"), NULL, NULL);
    size_t missing = 0, again = 0;
    size_t repeats =
        assert_outputs_equal(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"), &missing);
    if (missing) { /* lost, or only not read back? a second, patient reader tells */
        tail_idle(dashi_test_live_path("live-again.ndjson"), "10000");
        lines e = read_set(dashi_test_live_path("expected.ndjson")),
              l = read_set(dashi_test_live_path("live-again.ndjson"));
        again = dashi_test_live_diff_sets(&e, &l).missing;
        fprintf(stderr, "  a second tail (idle 10 s) misses %zu of the %zu\n", again, missing);
        free_set(&e);
        free_set(&l);
    }
    if (!allow_repeats)
        cr_expect_eq(repeats, 0, "%zu outputs were delivered twice without any crash", repeats);
    assert_state_equal(n_events);
}

/* ---- 1. crashes ---- */

static unsigned long long rng_state;
static unsigned rnd(unsigned n) { /* splitmix64 */
    unsigned long long z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return n ? (unsigned)(z % n) : 0;
}

static bool log_has(const char *file, const char *what) {
    return dashi_test_live_file_has(file, what);
}

/* Wait for pred or the process to exit, at most ms; true when pred held. */
typedef bool (*until_fn)(pid_t pid, const char *log, long long arg);

static bool assigned(pid_t pid, const char *log, long long arg) {
    (void)pid, (void)arg;
    return log_has(log, "assigned ");
}

static bool progressed(pid_t pid, const char *log, long long target) {
    (void)pid, (void)log;
    return progress() >= target;
}

static bool wait_for(pid_t pid, const char *log, until_fn fn, long long arg, long ms) {
    long long deadline = mono_ms() + ms;
    while (mono_ms() < deadline) {
        if (fn(pid, log, arg))
            return true;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dashi run failed on its own (see %s)", log);
            return false; /* reaped: the caller must not kill or wait it */
        }
        dashi_test_live_sleep_ms(10);
    }
    return false;
}

Test(faults, twenty_kills, .init = setup, .fini = teardown, .timeout = 28800) {
    const char *env = getenv("DASHI_FAULT_SEED");
    unsigned long long seed = env ? strtoull(env, NULL, 10) : 20261128ULL;
    int want = getenv("DASHI_FAULT_KILLS") ? atoi(getenv("DASHI_FAULT_KILLS")) : 20;
    /* bench/soak.sh: DASHI_FAULT_REDIS_RESTARTS=1 runs Redis with an fsynced AOF and
     * kills (SIGKILL) and restarts it after every kill of dashi run */
    bool redis_restarts = getenv("DASHI_FAULT_REDIS_RESTARTS") && atoi(getenv("DASHI_FAULT_REDIS_RESTARTS")) > 0;
    int redis_kills = 0;
    if (redis_restarts) {
        const char *aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
        dashi_test_live_replace_redis(aof);
    }
    rng_state = seed;
    size_t n_events = gen(env ? env : "21", getenv("DASHI_FAULT_AMBASSADORS") ? getenv("DASHI_FAULT_AMBASSADORS") : "50",
                          getenv("DASHI_FAULT_CUSTOMERS") ? getenv("DASHI_FAULT_CUSTOMERS") : "1000");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    long long total = (long long)n_events;
    fprintf(stderr, "twenty_kills: seed %llu (DASHI_FAULT_SEED), %zu events, %d kills wanted\n", seed, n_events, want);
    int kills = 0, by_mode[4] = {0}, idle_kills = 0;
    long long t0 = mono_ms();
    for (int round = 0; round < 4 * want && (kills < want || progress() < total || idle_kills < 3); round++) {
        char group[64], log[64];
        snprintf(group, sizeof(group), "g-kill-%d", round);
        snprintf(log, sizeof(log), "run-%02d.log", round);
        const char *lp = dashi_test_live_path(log);
        long long before = progress();
        pid_t run = start_run(group, lp);
        cr_assert(run > 0);
        /* S: during start-up/join; A: just after the assignment (seek, outbox re-send);
         * B: mid-stream, when progress reaches a random target; I: everything applied,
         * while idle advance fires the timers */
        int mode = before >= total ? 3 : round < 2 ? 0 : (int)(rnd(100) < 15 ? 0 : rnd(100) < 20 ? 1 : 2);
        long long target = 0, step;
        long delay = 0;
        bool ready = true;
        switch (mode) {
        case 0:
            delay = 50 + (long)rnd(3450);
            dashi_test_live_sleep_ms(delay);
            ready = waitpid(run, NULL, WNOHANG) == 0;
            break;
        case 1:
            delay = (long)rnd(300);
            ready = wait_for(run, lp, assigned, 0, 30000);
            dashi_test_live_sleep_ms(delay);
            break;
        case 2:
            /* steps of total/(want/3) at most: the stream ends after about want kills */
            step = 3 * total / (want > 0 ? want : 1);
            target = before + 1 + (long long)rnd((unsigned)(step > 1 ? step : 1));
            if (target > total)
                target = total;
            ready = wait_for(run, lp, progressed, target, 60000);
            break;
        default:
            delay = 900 + (long)rnd(1200);
            ready = wait_for(run, lp, assigned, 0, 30000);
            dashi_test_live_sleep_ms(delay);
            break;
        }
        if (waitpid(run, NULL, WNOHANG) == 0) { /* still running (a reaped child answers -1) */
            kill(run, SIGKILL);
            dashi_test_wait(run);
            cr_expect(ready, "round %d: mode %c never reached its moment (see %s)", round, "SABI"[mode], lp);
            kills++;
            by_mode[mode]++;
            idle_kills += mode == 3;
            fprintf(stderr, "  kill %2d at %6.1f s: mode %c, %s %lld%s, progress %lld -> %lld of %lld\n", kills,
                    (double)(mono_ms() - t0) / 1000.0, "SABI"[mode],
                    mode == 0 ? "after start" : mode == 2 ? "when progress reached" : "after assignment",
                    mode == 2 ? target : (long long)delay, mode == 2 ? "" : " ms", before, progress(), total);
        } else {
            fprintf(stderr, "  round %d: the run ended before the kill (mode %c)\n", round, "SABI"[mode]);
        }
        if (redis_restarts) { /* a crash of Redis too: what the AOF has fsynced must be all there is */
            long long had = progress();
            dashi_state_destroy(progress_st);
            progress_st = NULL;
            cr_assert_eq(dashi_test_redis_kill(dashi_test_live_redis()), 0, "cannot kill redis-server");
            cr_assert_eq(dashi_test_redis_restart(dashi_test_live_redis()), 0,
                         "redis-server did not come back from its AOF");
            redis_kills++;
            long long has = progress();
            cr_expect_eq(has, had, "progress %lld before the Redis crash, %lld after its restart", had, has);
        }
    }
    if (redis_restarts)
        fprintf(stderr, "twenty_kills: redis-server killed and restarted from its AOF %d times\n", redis_kills);
    fprintf(stderr, "twenty_kills: %d kills (S %d, A %d, B %d, I %d) in %.1f s; the last run finishes the stream\n",
            kills, by_mode[0], by_mode[1], by_mode[2], by_mode[3], (double)(mono_ms() - t0) / 1000.0);
    cr_expect(kills >= want, "only %d kills landed while dashi run was running", kills);
    cr_expect(by_mode[2] >= 5, "only %d kills mid-stream", by_mode[2]);
    run_to_end("g-kill-final");
    cr_expect_eq(progress(), total, "the last run did not apply every record");
    check_against_replay(n_events, true);
}

/* ---- 2. Kafka faults through the mock cluster ---- */

/* A small stream, published before the fault so only `dashi run` meets it. */
static size_t small_stream(const char *seed) {
    size_t n = gen(seed, "25", "500");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    return n;
}

Test(faults, partition_leader_down_then_up, .init = setup3, .fini = teardown, .timeout = 300) {
    size_t n = gen("31", "30", "700");
    /* every partition on broker 1 but partition 0 of every topic (inputs, outputs, dead
     * letters) on broker 2; the group's coordinator stays on broker 1 */
    mock_ok("leader * * 1");
    mock_ok("leader * 0 2");
    mock_ok("coordinator g-leader 1");
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    pid_t run = start_run("g-leader", dashi_test_live_path("run.log"));
    cr_assert(wait_for(run, dashi_test_live_path("run.log"), progressed, (long long)n / 5, 60000),
              "the run did not get going");
    mock_ok("broker 2 down");
    long long at_down = progress();
    dashi_test_live_sleep_ms(1500);
    long long mid = progress();
    dashi_test_live_sleep_ms(2500);
    long long before_up = progress();
    mock_ok("broker 2 up");
    fprintf(stderr, "partition_leader_down_then_up: broker 2 down at %lld of %zu applied, %lld after 1.5 s, %lld after 4 s\n",
            at_down, n, mid, before_up);
    cr_expect(at_down < (long long)n, "the stream was done before the broker went down: the test showed nothing");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    cr_expect_eq(progress(), (long long)n);
    check_against_replay(n, false);
}

/* Request errors queued on the only broker, before the run starts, for three APIs at once. */
static long queue_errors(const char *api, const char *const *errs) {
    long queued = 0;
    for (size_t i = 0; errs[i]; i++) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "broker-errors 1 %s %s", api, errs[i]);
        mock_ok(cmd);
        queued += atol(errs[i]);
    }
    cr_assert_eq(mock_pending(1, api), queued);
    return queued;
}

Test(faults, request_errors_on_produce_fetch_and_commit, .init = setup, .fini = teardown, .timeout = 300) {
    size_t n = small_stream("32");
    /* retriable errors, some answered late; _TRANSPORT disconnects with requests in
     * flight: the idempotent producer and the consumer retry */
    const char *produce[] = {"4 NOT_LEADER_FOR_PARTITION", "3 REQUEST_TIMED_OUT 400", "2 _TRANSPORT",
                             "2 NOT_ENOUGH_REPLICAS 100", NULL};
    const char *fetch[] = {"3 NOT_LEADER_FOR_PARTITION", "3 REQUEST_TIMED_OUT 300", "2 _TRANSPORT",
                           "2 UNKNOWN_TOPIC_OR_PART", NULL};
    /* progress lives in Redis: dashi run never sends OffsetCommit (enable.auto.commit
     * is forced off and nothing commits), so these must stay queued */
    const char *commit[] = {"5 REQUEST_TIMED_OUT", "3 NOT_COORDINATOR", NULL};
    long qp = queue_errors("Produce", produce), qf = queue_errors("Fetch", fetch), qc = queue_errors("OffsetCommit", commit);
    run_to_end("g-errors");
    long lp = mock_pending(1, "Produce"), lf = mock_pending(1, "Fetch"), lc = mock_pending(1, "OffsetCommit");
    fprintf(stderr, "request errors met by dashi run: Produce %ld of %ld, Fetch %ld of %ld, OffsetCommit %ld of %ld\n",
            qp - lp, qp, qf - lf, qf, qc - lc, qc);
    cr_expect_eq(lp, 0, "%ld of %ld Produce errors were never met: the test showed nothing", lp, qp);
    cr_expect_eq(lf, 0, "%ld of %ld Fetch errors were never met: the test showed nothing", lf, qf);
    cr_expect_eq(lc, qc, "dashi run sent %ld OffsetCommit request(s)", qc - lc);
    cr_expect_eq(progress(), (long long)n);
    check_against_replay(n, false);
}

Test(faults, high_rtt, .init = setup, .fini = teardown, .timeout = 300) {
    size_t n = small_stream("35");
    pid_t run = start_run("g-rtt", dashi_test_live_path("run.log"));
    cr_assert(wait_for(run, dashi_test_live_path("run.log"), assigned, 0, 60000), "no assignment (see %s)",
              dashi_test_live_path("run.log"));
    mock_ok("rtt 1 300"); /* every request of every client now waits 300 ms for its answer */
    long long at = progress(), t = mono_ms();
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    fprintf(stderr, "high_rtt: 300 ms RTT from %lld of %zu applied; the run took %.1f s more\n", at, n,
            (double)(mono_ms() - t) / 1000.0);
    mock_ok("rtt 1 0");
    cr_expect(at < (long long)n, "the stream was done before the RTT went up");
    cr_expect_eq(progress(), (long long)n);
    check_against_replay(n, false);
}

/* ---- 3. arrival order ---- */

/* The input topic of an event line (its "type"), as index into input_topics. */
static int topic_of(const char *line) {
    static const struct {
        const char *type;
        int topic;
    } map[] = {{"AccountRegistered", 0}, {"LinkVisited", 1},     {"RealNameVerified", 2}, {"IdentityChanged", 3},
               {"AmbassadorEnrolled", 3}, {"AccountFlagged", 3}, {"CustomerBound", 3},    {"CampaignEnrolled", 3},
               {"OrderPaid", 4},          {"OrderRefunded", 4},  {"RiskAction", 5}};
    const char *t = strstr(line, "\"type\":\"");
    cr_assert(t, "no type in %.200s", line);
    t += 8;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strncmp(t, map[i].type, strlen(map[i].type)) == 0 && t[strlen(map[i].type)] == '"')
            return map[i].topic;
    cr_assert_fail("unknown event type in %.200s", line);
    return -1;
}

/* The events of events.ndjson (in their generated, time order), split by topic. */
typedef struct by_topic {
    char *buf;
    char **v[N_INPUT_TOPICS];
    size_t n[N_INPUT_TOPICS];
} by_topic;

static void split_by_topic(by_topic *bt) {
    memset(bt, 0, sizeof(*bt));
    bt->buf = dashi_test_slurp(dashi_test_live_path("events.ndjson"), NULL);
    cr_assert(bt->buf);
    for (size_t t = 0; t < N_INPUT_TOPICS; t++)
        bt->v[t] = calloc(200000, sizeof(char *));
    for (char *s = strtok(bt->buf, "\n"); s; s = strtok(NULL, "\n")) {
        int t = topic_of(s);
        cr_assert(bt->n[t] < 200000);
        bt->v[t][bt->n[t]++] = s;
    }
}

static void free_by_topic(by_topic *bt) {
    for (size_t t = 0; t < N_INPUT_TOPICS; t++)
        free(bt->v[t]);
    free(bt->buf);
}

Test(faults, backlog_published_topic_by_topic_in_reverse, .init = setup, .fini = teardown, .timeout = 300) {
    size_t n = gen("41", "30", "600");
    by_topic bt;
    split_by_topic(&bt);
    /* risk actions first, registrations last: in the brokers' logs every order now
     * precedes its customer's registration; with the backlog in place, the merge must
     * still apply everything in (occurred_at, event_id) order */
    for (int t = (int)N_INPUT_TOPICS - 1; t >= 0; t--) {
        char name[64];
        snprintf(name, sizeof(name), "topic-%s.ndjson", input_topics[t]);
        FILE *f = fopen(dashi_test_live_path(name), "w");
        cr_assert(f);
        for (size_t i = 0; i < bt.n[t]; i++)
            fprintf(f, "%s\n", bt.v[t][i]);
        fclose(f);
        if (bt.n[t])
            dashi_test_live_publish(dashi_test_live_path(name), NULL);
    }
    free_by_topic(&bt);
    run_to_end("g-reverse");
    cr_expect_eq(progress(), (long long)n);
    check_against_replay(n, false);
}

Test(faults, backlog_published_in_a_random_interleaving, .init = setup, .fini = teardown, .timeout = 300) {
    size_t n = gen("42", "30", "600");
    by_topic bt;
    split_by_topic(&bt);
    /* a seeded random merge of the six topics' sequences: each topic keeps its own
     * (time) order, as a producer per topic would; across topics anything goes */
    rng_state = 4242;
    size_t next[N_INPUT_TOPICS] = {0}, left = n, moved = 0;
    FILE *f = fopen(dashi_test_live_path("interleaved.ndjson"), "w");
    cr_assert(f);
    while (left > 0) {
        unsigned k = rnd((unsigned)left);
        size_t t = 0;
        while (k >= bt.n[t] - next[t])
            k -= (unsigned)(bt.n[t] - next[t]), t++;
        fprintf(f, "%s\n", bt.v[t][next[t]++]);
        left--;
    }
    fclose(f);
    free_by_topic(&bt);
    /* how far the publish order is from time order: lines whose position changed */
    char *a = dashi_test_slurp(dashi_test_live_path("events.ndjson"), NULL),
         *b = dashi_test_slurp(dashi_test_live_path("interleaved.ndjson"), NULL);
    cr_assert(a && b);
    for (char *x = a, *y = b; *x && *y;) {
        char *xe = strchr(x, '\n'), *ye = strchr(y, '\n');
        moved += (xe - x != ye - y) || memcmp(x, y, (size_t)(xe - x)) != 0;
        x = xe + 1, y = ye + 1;
    }
    free(a);
    free(b);
    fprintf(stderr, "random interleaving: %zu of %zu events published at another position than in time order\n", moved, n);
    cr_expect(moved > n / 2, "the interleaving is too close to time order to show anything");
    dashi_test_live_publish(dashi_test_live_path("interleaved.ndjson"), NULL);
    run_to_end("g-interleave");
    cr_expect_eq(progress(), (long long)n);
    check_against_replay(n, false);
}

Test(faults, live_arrival_late_within_the_lateness_bound, .init = setup, .fini = teardown, .timeout = 300) {
    size_t n = gen("43", "30", "600");
    by_topic bt;
    split_by_topic(&bt);
    /* everything but the registrations, then the registrations about a second later:
     * while `dashi run` is already live and has been caught up for longer than the
     * lateness bound, so the registration partition has been quiet at its end for
     * long. With merge.wait_ms=6000 every order must still wait for its customer's
     * registration (a late arrival within the bound) */
    FILE *rest = fopen(dashi_test_live_path("rest.ndjson"), "w"), *regs = fopen(dashi_test_live_path("regs.ndjson"), "w");
    cr_assert(rest && regs);
    for (size_t t = 0; t < N_INPUT_TOPICS; t++)
        for (size_t i = 0; i < bt.n[t]; i++)
            fprintf(t == 0 ? regs : rest, "%s\n", bt.v[t][i]);
    fclose(rest);
    fclose(regs);
    cr_assert(bt.n[0] > 0 && bt.n[4] > 0, "the stream has registrations and orders");
    free_by_topic(&bt);
    /* stream time follows the clock only after 25 s idle: long after the late arrivals */
    const char *args[] = {"--set", "merge.wait_ms=6000", "--set", "idle.advance_ms=25000", "--exit-idle", "27000",
                          "--clock-until", UNTIL, "--verbose", NULL};
    pid_t run = dashi_test_live_spawn_run("g-late", "live:", dashi_test_live_path("run.log"), args);
    cr_assert(dashi_test_live_wait_file(dashi_test_live_path("run.log"), "pipeline: assigned", 60000),
              "dashi run got no partitions (see %s)", dashi_test_live_path("run.log"));
    dashi_test_live_sleep_ms(8000); /* every partition at its end for longer than merge.wait_ms */
    long long t0 = mono_ms();
    dashi_test_live_publish(dashi_test_live_path("rest.ndjson"), NULL);
    dashi_test_live_sleep_ms(1000);
    dashi_test_live_publish(dashi_test_live_path("regs.ndjson"), NULL);
    long long late = mono_ms() - t0;
    fprintf(stderr, "live late arrival: the registrations were published %lld ms after the first order\n", late);
    cr_assert_lt(late, 5000, "the registrations came later than the lateness bound: the test shows nothing");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    cr_expect_eq(progress(), (long long)n);
    check_against_replay(n, false);
}
