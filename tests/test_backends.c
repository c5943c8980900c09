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

#include "tests/support/proc.h"
#include "tests/support/live.h"

static void setup(void) {
    dashi_test_live_setup(0, NULL);
}

static void teardown(void) {
    dashi_test_live_teardown();
}

static void replay(const char *out, const char *state, const char *prefix) {
    dashi_test_live_replay(dashi_test_live_path("events.ndjson"), out, state, prefix, NULL);
}

/* Every key and value under prefix, and the timers left. */
static char *dump_state(const char *prefix, size_t *n_timers) {
    char *text = dashi_test_live_dump_state(prefix, NULL, true);
    *n_timers = dashi_test_live_count_timers(prefix);
    return text;
}

Test(backends, memory_and_redis_agree_on_100k_events, .init = setup, .fini = teardown, .timeout = 1200) {
    dashi_test_live_gen("events.ndjson", "4", "3000", "34000");
    size_t len = 0, lines = 0;
    char *events = dashi_test_slurp(dashi_test_live_path("events.ndjson"), &len);
    cr_assert(events);
    for (size_t i = 0; i < len; i++)
        lines += events[i] == '\n';
    free(events);
    cr_assert_geq(lines, 100000, "the stream has only %zu events", lines);

    replay(dashi_test_live_path("mem.ndjson"), "memory", "m:");
    replay(dashi_test_live_path("redis.ndjson"), dashi_test_live_redis_url(), "r1:");
    replay(dashi_test_live_path("redis2.ndjson"), dashi_test_live_redis_url(), "r2:");

    size_t la = 0, lb = 0, lc = 0;
    char *a = dashi_test_slurp(dashi_test_live_path("mem.ndjson"), &la),
         *b = dashi_test_slurp(dashi_test_live_path("redis.ndjson"), &lb),
         *c = dashi_test_slurp(dashi_test_live_path("redis2.ndjson"), &lc);
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
