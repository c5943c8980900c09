/* test_backends.c — the memory and Redis back ends give the same outputs and the same state (issue 4 differential).
 *
 * A seeded stream of more than 100,000 events from `dashi gen` is replayed twice
 * with the real `dashi replay`: once on memory state, once on a private
 * redis-server (tests/support/redis_server.c). The two output files must be
 * byte-identical. The final Redis state is then compared with a second Redis
 * replay under another prefix, key by key — and the memory replay's outputs are
 * the reference for both. A differential test is only as good as its stream, so
 * the outputs must contain every output type and PENDING, CONFIRMED, REJECTED,
 * CANCELLED and CLAWBACK commission events.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"
#include "tests/support/proc.h"
#include "tests/support/redis_server.h"

#define UNTIL "2022-08-31T00:00:00+08:00"

static dashi_test_redis *srv;
static char dir[256];

static void setup(void) {
    char err[512];
    srv = dashi_test_redis_start(err, sizeof(err));
    cr_assert(srv, "redis-server: %s", err);
    cr_assert(dashi_test_tmpdir(dir, sizeof(dir)), "mkdtemp");
}

static void teardown(void) {
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

static void replay(const char *out, const char *state, const char *prefix) {
    const char *argv[] = {DASHI_BINARY, "replay", "--in", path("events.ndjson"), "--out", out, "--until", UNTIL,
                          "--state", state, "--prefix", prefix, "--quiet", NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, path("replay.log")), 0, "dashi replay --state %s failed (see %s)", state,
                 path("replay.log"));
}

static int dump_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    FILE *f = opaque;
    fwrite(key, 1, key_len, f);
    fputc('\t', f);
    fwrite(val, 1, val_len, f);
    fputc('\n', f);
    return 0;
}

static char *dump_state(const char *prefix, size_t *n_timers) {
    char err[512], *buf = NULL;
    size_t len = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), prefix, err, sizeof(err));
    cr_assert(st, "%s", err);
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(st->ops->scan(st, "", 0, dump_one, f, err, sizeof(err)), DASHI_OK, "%s", err);
    fclose(f);
    cr_assert_eq(st->ops->timers_count(st, n_timers, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_state_destroy(st);
    return buf;
}

Test(backends, memory_and_redis_agree_on_100k_events, .init = setup, .fini = teardown, .timeout = 1200) {
    const char *gen[] = {DASHI_BINARY, "gen", "--seed", "4", "--ambassadors", "3000", "--customers", "34000",
                         "--out", path("events.ndjson"), NULL};
    cr_assert_eq(dashi_test_run(gen, NULL, path("gen.log")), 0);
    size_t len = 0, lines = 0;
    char *events = dashi_test_slurp(path("events.ndjson"), &len);
    cr_assert(events);
    for (size_t i = 0; i < len; i++)
        lines += events[i] == '\n';
    free(events);
    cr_assert_geq(lines, 100000, "the stream has only %zu events", lines);

    replay(path("mem.ndjson"), "memory", "m:");
    replay(path("redis.ndjson"), dashi_test_redis_url(srv), "r1:");
    replay(path("redis2.ndjson"), dashi_test_redis_url(srv), "r2:");

    size_t la = 0, lb = 0, lc = 0;
    char *a = dashi_test_slurp(path("mem.ndjson"), &la), *b = dashi_test_slurp(path("redis.ndjson"), &lb),
         *c = dashi_test_slurp(path("redis2.ndjson"), &lc);
    cr_assert(a && b && c);
    cr_expect(la == lb && memcmp(a, b, la) == 0, "memory and Redis outputs differ (%zu vs %zu bytes)", la, lb);
    cr_expect(lb == lc && memcmp(b, c, lb) == 0, "two Redis replays differ (%zu vs %zu bytes)", lb, lc);
    static const char *must[] = {"\"type\":\"SamePersonDecision\"", "\"type\":\"CampaignEvent\"",
                                 "\"type\":\"TierAssigned\"",        "\"type\":\"FraudAlert\"",
                                 "\"event\":\"PENDING\"",            "\"event\":\"CONFIRMED\"",
                                 "\"event\":\"REJECTED\"",           "\"event\":\"CANCELLED\"",
                                 "\"event\":\"CLAWBACK\""};
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        cr_expect(strstr(a, must[i]), "the stream never produced %s: the comparison shows too little", must[i]);
    free(a);
    free(b);
    free(c);

    size_t t1 = 0, t2 = 0;
    char *s1 = dump_state("r1:", &t1), *s2 = dump_state("r2:", &t2);
    cr_expect(strlen(s1) > 1000000, "the Redis state is only %zu bytes", strlen(s1));
    cr_expect(strcmp(s1, s2) == 0, "two Redis replays left different states (%zu vs %zu bytes)", strlen(s1), strlen(s2));
    cr_expect_eq(t1, t2, "timers left: %zu vs %zu", t1, t2);
    free(s1);
    free(s2);
}
