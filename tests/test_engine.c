/* test_engine.c — the engine's own refusals: events outside the rules' plausible range, ids too long for a marker.
 *
 * Through the harness (the real engine on a memory store): a refused event returns
 * DASHI_ERR_INVALID with its reason, fires no timer and changes nothing.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "tests/support/harness.h"

static dashi_harness *h;

static void setup(void) {
    h = dashi_harness_start(NULL);
}

static void teardown(void) {
    dashi_harness_stop(h);
}

Test(engine, events_outside_the_plausible_range_are_refused_before_any_timer, .init = setup, .fini = teardown) {
    /* a registration queues its T+0 timer */
    dashi_harness_feed_ok(h, "\"type\":\"AccountRegistered\",\"occurred_at\":\"2022-06-05T10:00:00+08:00\",\"uid\":\"c1\","
                             "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[]");
    size_t timers = dashi_harness_timers(h, NULL);
    cr_assert_gt(timers, 0);
    char *before = dashi_harness_dump(h);
    /* before the first period (2019-01-01): refused */
    cr_expect_eq(dashi_harness_feed(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2018-12-31T23:59:59+08:00\","
                                       "\"uid\":\"a1\""),
                 DASHI_ERR_INVALID);
    cr_expect(strstr(dashi_harness_error(h), "occurred_at: outside the plausible range [2019-01-01T00:00:00+08:00, "
                                             "2030-01-01T00:00:00+08:00) of the rules"),
              "%s", dashi_harness_error(h));
    /* at the end of the range (exclusive): refused, and no timer fired on the way */
    cr_expect_eq(dashi_harness_feed(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2030-01-01T00:00:00+08:00\","
                                       "\"uid\":\"a2\""),
                 DASHI_ERR_INVALID);
    cr_expect_eq(dashi_harness_timers(h, NULL), timers, "a refused event moved the clock");
    char *after = dashi_harness_dump(h);
    cr_expect_str_eq(after, before, "a refused event changed the state");
    free(before);
    free(after);
    /* the first instant of the range is accepted */
    dashi_harness_feed_ok(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2019-01-01T00:00:00+08:00\",\"uid\":\"a3\"");
}

Test(engine, an_event_id_too_long_for_a_marker_is_refused, .init = setup, .fini = teardown) {
    /* validation refuses it first; the engine checks again, so its marker key is never cut */
    char id[DASHI_MAX_ID_LEN + 2];
    memset(id, 'e', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_AMBASSADOR_ENROLLED);
    ev.u.ambassador_enrolled.event_id = dashi_strdup(id);
    ev.u.ambassador_enrolled.occurred_at = dashi_harness_time("2022-06-05T10:00:00+08:00");
    ev.u.ambassador_enrolled.uid = dashi_strdup("a1");
    char err[256];
    dashi_engine *e = dashi_engine_new(dashi_harness_rules(h), dashi_harness_keys(h), dashi_harness_state(h), err,
                                       sizeof(err));
    cr_assert(e, "%s", err);
    cr_expect_eq(dashi_engine_process(e, &ev, NULL, NULL, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "event_id: longer than 128 bytes"), "%s", err);
    dashi_engine_destroy(e);
    dashi_event_clear(&ev);
}
