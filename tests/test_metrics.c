/* test_metrics.c — the metrics registry and its Prometheus text, dashi's families checked by promtool, and the HTTP endpoints.
 *
 * Registry tests render small registries and compare with the text the
 * exposition format prescribes (escaping, cumulative buckets, _sum/_count).
 * The promtool test fills a telemetry registry through the very hooks the
 * pipeline calls (every dashi_* family gets samples) and runs Debian's
 * `promtool check metrics` on the render; a deliberately bad text shows the
 * check can fail. The HTTP tests start the server on an ephemeral port and speak
 * HTTP/1.0 over a plain socket.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "consumers/codec.h"
#include "consumers/config.h"
#include "consumers/httpd.h"
#include "consumers/metrics.h"
#include "consumers/telemetry.h"
#include "core/rules.h"
#include "core/state.h"

#define PROMTOOL "/usr/bin/promtool"

static dashi_metrics *m;

static void setup(void) {
    char err[256];
    m = dashi_metrics_new(err, sizeof(err));
    cr_assert(m, "%s", err);
}

static void teardown(void) {
    dashi_metrics_destroy(m);
}

static dashi_metric_family *def(const char *name, dashi_metric_type type, const char *const *labels,
                                const double *b, size_t nb) {
    char err[256];
    dashi_metric_family *f = dashi_metrics_define(m, name, type, "help text", labels, b, nb, err, sizeof(err));
    cr_assert(f, "%s", err);
    return f;
}

static char *render(void) {
    size_t len = 0;
    char *text = dashi_metrics_render(m, &len);
    cr_assert(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

TestSuite(registry, .init = setup, .fini = teardown);

Test(registry, counter_renders_and_only_goes_up) {
    static const char *labels[] = {"topic", "type", NULL};
    dashi_metric_family *c = def("x_events_total", DASHI_METRIC_COUNTER, labels, NULL, 0);
    const char *a[] = {"order", "OrderPaid"}, *b[] = {"registration", "AccountRegistered"};
    dashi_metrics_add(c, a, 1);
    dashi_metrics_add(c, b, 2);
    dashi_metrics_add(c, a, 3);
    dashi_metrics_add(c, a, -10);  /* a counter never goes down */
    dashi_metrics_add(c, a, NAN);  /* nor becomes NaN */
    dashi_metrics_set(c, a, 0);    /* set is for gauges */
    cr_assert_eq(dashi_metrics_value(c, a), 4);
    cr_assert_eq(dashi_metrics_value(c, b), 2);
    char *text = render();
    cr_assert_str_eq(text, "# HELP x_events_total help text\n"
                           "# TYPE x_events_total counter\n"
                           "x_events_total{topic=\"order\",type=\"OrderPaid\"} 4\n"
                           "x_events_total{topic=\"registration\",type=\"AccountRegistered\"} 2\n");
    free(text);
}

Test(registry, gauge_set_add_reset) {
    static const char *labels[] = {"partition", NULL};
    dashi_metric_family *g = def("x_lag", DASHI_METRIC_GAUGE, labels, NULL, 0);
    dashi_metric_family *u = def("x_ready", DASHI_METRIC_GAUGE, NULL, NULL, 0);
    const char *p0[] = {"0"}, *p1[] = {"1"};
    dashi_metrics_set(g, p0, 7);
    dashi_metrics_set(g, p1, 3);
    dashi_metrics_add(g, p1, -1);
    cr_assert_eq(dashi_metrics_value(g, p1), 2);
    dashi_metrics_set(u, NULL, 1);
    char *text = render();
    cr_assert_str_eq(text, "# HELP x_lag help text\n# TYPE x_lag gauge\nx_lag{partition=\"0\"} 7\nx_lag{partition=\"1\"} 2\n"
                           "# HELP x_ready help text\n# TYPE x_ready gauge\nx_ready 1\n");
    free(text);
    dashi_metrics_reset(g); /* labelled: the series go */
    dashi_metrics_reset(u); /* unlabelled: back to 0 */
    cr_assert(isnan(dashi_metrics_value(g, p0)));
    text = render();
    cr_assert_str_eq(text, "# HELP x_lag help text\n# TYPE x_lag gauge\n"
                           "# HELP x_ready help text\n# TYPE x_ready gauge\nx_ready 0\n");
    free(text);
}

Test(registry, histogram_buckets_are_cumulative_with_sum_and_count) {
    static const double b[] = {0.1, 1, 10};
    static const char *labels[] = {"op", NULL};
    dashi_metric_family *h = def("x_seconds", DASHI_METRIC_HISTOGRAM, labels, b, 3);
    const char *op[] = {"get"};
    double obs[] = {0.05, 0.1, 0.5, 2, 20, 1};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        dashi_metrics_observe(h, op, obs[i]);
    dashi_metrics_observe(h, op, NAN); /* ignored */
    cr_assert_eq(dashi_metrics_value(h, op), 6);
    char *text = render();
    /* le is inclusive: 0.1 falls in le="0.1", 1 in le="1" */
    cr_assert_str_eq(text, "# HELP x_seconds help text\n"
                           "# TYPE x_seconds histogram\n"
                           "x_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
                           "x_seconds_bucket{op=\"get\",le=\"1\"} 4\n"
                           "x_seconds_bucket{op=\"get\",le=\"10\"} 5\n"
                           "x_seconds_bucket{op=\"get\",le=\"+Inf\"} 6\n"
                           "x_seconds_sum{op=\"get\"} 23.65\n"
                           "x_seconds_count{op=\"get\"} 6\n");
    free(text);
}

Test(registry, unlabelled_histogram_is_there_from_the_start) {
    static const double b[] = {0.5};
    def("x_wait_seconds", DASHI_METRIC_HISTOGRAM, NULL, b, 1);
    char *text = render();
    cr_assert_str_eq(text, "# HELP x_wait_seconds help text\n# TYPE x_wait_seconds histogram\n"
                           "x_wait_seconds_bucket{le=\"0.5\"} 0\nx_wait_seconds_bucket{le=\"+Inf\"} 0\n"
                           "x_wait_seconds_sum 0\nx_wait_seconds_count 0\n");
    free(text);
}

Test(registry, label_values_and_help_are_escaped) {
    static const char *labels[] = {"reason", NULL};
    char err[256];
    dashi_metric_family *c = dashi_metrics_define(m, "x_dead_total", DASHI_METRIC_COUNTER, "a \\ back\nslash \"q\"",
                                                  labels, NULL, 0, err, sizeof(err));
    cr_assert(c, "%s", err);
    const char *v[] = {"say \"hi\"\\now\nnext"};
    dashi_metrics_add(c, v, 1);
    char *text = render();
    cr_assert_str_eq(text, "# HELP x_dead_total a \\\\ back\\nslash \"q\"\n"
                           "# TYPE x_dead_total counter\n"
                           "x_dead_total{reason=\"say \\\"hi\\\"\\\\now\\nnext\"} 1\n");
    free(text);
    char out[64];
    cr_assert_eq(dashi_metrics_escape_label("a\"b\\c\nd", out, sizeof(out)), 10);
    cr_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    cr_assert_eq(dashi_metrics_escape_label("a\"b", out, 3), 4); /* cut, NUL-terminated */
    cr_assert_str_eq(out, "a\\");
}

Test(registry, numbers_are_shortest_exact) {
    char out[48];
    struct {
        double v;
        const char *text;
    } cases[] = {{0, "0"}, {0.1, "0.1"}, {0.0001, "0.0001"}, {1e21, "1e+21"}, {-2.5, "-2.5"},
                 {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"}, {1.0 / 3, "0.33333333333333331"},
                 {9007199254740993.0, "9007199254740992"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dashi_metrics_format_value(cases[i].v, out, sizeof(out));
        cr_expect_str_eq(out, cases[i].text);
    }
}

Test(registry, bad_definitions_are_refused) {
    char err[256];
    static const char *le[] = {"le", NULL}, *bad[] = {"9x", NULL};
    static const double desc[] = {1, 0.5}, inf[] = {1, INFINITY};
    cr_assert_null(dashi_metrics_define(m, "9bad", DASHI_METRIC_GAUGE, "", NULL, NULL, 0, err, sizeof(err)));
    cr_assert_null(dashi_metrics_define(m, "a-b", DASHI_METRIC_GAUGE, "", NULL, NULL, 0, err, sizeof(err)));
    cr_assert_null(dashi_metrics_define(m, "x_h", DASHI_METRIC_HISTOGRAM, "", le, desc, 0, err, sizeof(err)));
    cr_assert_null(dashi_metrics_define(m, "x_h", DASHI_METRIC_GAUGE, "", bad, NULL, 0, err, sizeof(err)));
    cr_assert_null(dashi_metrics_define(m, "x_h", DASHI_METRIC_HISTOGRAM, "", NULL, desc, 2, err, sizeof(err)));
    cr_assert(strstr(err, "ascending"), "%s", err);
    cr_assert_null(dashi_metrics_define(m, "x_h", DASHI_METRIC_HISTOGRAM, "", NULL, inf, 2, err, sizeof(err)));
    def("x_ok", DASHI_METRIC_GAUGE, NULL, NULL, 0);
    cr_assert_null(dashi_metrics_define(m, "x_ok", DASHI_METRIC_COUNTER, "", NULL, NULL, 0, err, sizeof(err)));
    cr_assert(strstr(err, "twice"), "%s", err);
    /* NULL registry and family are no-ops */
    dashi_metrics_add(NULL, NULL, 1);
    dashi_metrics_observe(NULL, NULL, 1);
    dashi_metrics_destroy(NULL);
}

Test(registry, series_guard_drops_past_the_limit) {
    static const char *labels[] = {"id", NULL};
    dashi_metric_family *c = def("x_many_total", DASHI_METRIC_COUNTER, labels, NULL, 0);
    char id[32];
    for (int i = 0; i < DASHI_METRICS_MAX_SERIES + 10; i++) {
        snprintf(id, sizeof(id), "%d", i);
        const char *v[] = {id};
        dashi_metrics_add(c, v, 1);
    }
    cr_assert_eq(dashi_metrics_dropped(m), 10);
    const char *first[] = {"0"};
    dashi_metrics_add(c, first, 1); /* existing series still count */
    cr_assert_eq(dashi_metrics_value(c, first), 2);
}

/* ---------------------------------------------------------------- dashi's families */

static dashi_config *cfg;
static dashi_telemetry *tel;

static void tel_setup(void) {
    char err[512];
    cfg = dashi_config_new_default(err, sizeof(err));
    cr_assert(cfg, "%s", err);
}

static void tel_teardown(void) {
    dashi_telemetry_destroy(tel);
    dashi_config_destroy(cfg);
}

static const char stats_ok[] =
    "{\"brokers\":{\"127.0.0.1:9092/1\":{\"name\":\"127.0.0.1:9092/1\",\"nodeid\":1,\"source\":\"learned\",\"state\":\"UP\"},"
    "\"GroupCoordinator\":{\"nodeid\":-1,\"source\":\"logical\",\"state\":\"UP\"}},"
    "\"cgrp\":{\"state\":\"up\",\"join_state\":\"steady\",\"assignment_size\":2},"
    "\"topics\":{\"order\":{\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetch_state\":\"active\",\"hi_offset\":120,\"app_offset\":100,\"next_offset\":110},"
    "\"1\":{\"partition\":1,\"fetch_state\":\"none\",\"hi_offset\":50,\"app_offset\":-1001,\"next_offset\":-1001},"
    "\"-1\":{\"partition\":-1,\"fetch_state\":\"none\",\"hi_offset\":-1,\"app_offset\":-1001}}},"
    "\"registration\":{\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetch_state\":\"active\",\"hi_offset\":9,\"app_offset\":-1001,\"next_offset\":4}}}}}";

static void out_event(dashi_event *ev, dashi_event_type type, dashi_time at) {
    dashi_event_init(ev, type);
    switch (type) {
    case DASHI_EV_COMMISSION_EVENT:
        ev->u.commission_event.event = DASHI_CE_REJECTED;
        ev->u.commission_event.occurred_at = at;
        cr_assert_eq(dashi_strv_push(&ev->u.commission_event.reasons, &ev->u.commission_event.n_reasons,
                                     "NOT_ASSOCIATED"), 0);
        break;
    case DASHI_EV_SAME_PERSON_DECISION:
        ev->u.same_person_decision.status = DASHI_SP_SAME_PERSON;
        ev->u.same_person_decision.decided_at = at;
        ev->u.same_person_decision.matched_on = calloc(2, sizeof(int));
        ev->u.same_person_decision.matched_on[0] = DASHI_ID_PHONE;
        ev->u.same_person_decision.matched_on[1] = DASHI_ID_EMAIL;
        ev->u.same_person_decision.n_matched_on = 2;
        break;
    case DASHI_EV_CAMPAIGN_EVENT:
        ev->u.campaign_event.kind = DASHI_CAMP_BONUS;
        ev->u.campaign_event.occurred_at = at;
        break;
    case DASHI_EV_FRAUD_ALERT:
        ev->u.fraud_alert.kind = dashi_strdup("SELF_REFERRAL");
        ev->u.fraud_alert.occurred_at = at;
        break;
    default: /* TierAssigned: its event time is the start of its month */
        ev->u.tier_assigned.month = dashi_strdup("2022-06");
        break;
    }
}

/* Every dashi_* family gets samples through the pipeline's own hooks. */
static void populate(dashi_telemetry *t) {
    char err[512];
    dashi_telemetry_event_in(t, "order", "OrderPaid");
    dashi_telemetry_event_in(t, "order", NULL);
    dashi_telemetry_dead_letter(t, "undecodable");
    dashi_telemetry_dead_letter(t, "rejected");
    dashi_telemetry_step(t, dashi_telemetry_now_ms() - 3);
    dashi_time at = 1654653600000; /* 2022-06-08: a replayed event, large latency */
    dashi_event_type types[] = {DASHI_EV_COMMISSION_EVENT, DASHI_EV_SAME_PERSON_DECISION, DASHI_EV_CAMPAIGN_EVENT,
                                DASHI_EV_FRAUD_ALERT, DASHI_EV_TIER_ASSIGNED};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        dashi_event ev;
        out_event(&ev, types[i], at);
        dashi_telemetry_event_out(t, dashi_event_topic(types[i]), &ev);
        dashi_event_clear(&ev);
    }
    dashi_telemetry_redis_rtt(t, 0.0004);
    dashi_telemetry_kafka_stats(t, stats_ok, strlen(stats_ok));
    dashi_rules *rules = dashi_rules_load(DASHI_SOURCE_DIR "/config/rules.json", err, sizeof(err));
    cr_assert(rules, "%s", err);
    dashi_state *st = dashi_state_mem_new();
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_TIMER_ADD, "t1", 2, "{}", 2, at + 1000), DASHI_OK);
    const dashi_writeset *sets[] = {&ws};
    dashi_err result;
    cr_assert_eq(st->ops->apply(st, 1, sets, &result, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_writeset_clear(&ws);
    dashi_telemetry_tick(t, st, rules, at, 3);
    dashi_state_destroy(st);
    dashi_rules_destroy(rules);
}

static double sample(const char *text, const char *series) {
    const char *p = text;
    size_t n = strlen(series);
    while ((p = strstr(p, series))) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    cr_assert_fail("no sample %s in:\n%s", series, text);
    return NAN;
}

TestSuite(families, .init = tel_setup, .fini = tel_teardown);

Test(families, hooks_fill_every_family) {
    char err[512];
    tel = dashi_telemetry_new(cfg, err, sizeof(err));
    cr_assert(tel, "%s", err);
    cr_assert_eq(dashi_telemetry_port(tel), 0, "metrics.listen is empty by default: no server");
    populate(tel);
    char *text = dashi_metrics_render(dashi_telemetry_registry(tel), NULL);
    cr_assert(text);
    cr_expect_eq(sample(text, "dashi_events_in_total{topic=\"order\",type=\"OrderPaid\"}"), 1);
    cr_expect_eq(sample(text, "dashi_events_in_total{topic=\"order\",type=\"unknown\"}"), 1);
    cr_expect_eq(sample(text, "dashi_events_out_total{topic=\"commission\",type=\"CommissionEvent\"}"), 1);
    cr_expect_eq(sample(text, "dashi_events_out_total{topic=\"tier\",type=\"TierAssigned\"}"), 1);
    cr_expect_eq(sample(text, "dashi_dead_letters_total{reason=\"undecodable\"}"), 1);
    cr_expect_eq(sample(text, "dashi_decisions_total{kind=\"commission\",outcome=\"REJECTED\",reason=\"NOT_ASSOCIATED\"}"), 1);
    cr_expect_eq(sample(text, "dashi_decisions_total{kind=\"same_person\",outcome=\"SAME_PERSON\",reason=\"PHONE,EMAIL\"}"), 1);
    cr_expect_eq(sample(text, "dashi_decisions_total{kind=\"campaign\",outcome=\"BONUS\",reason=\"\"}"), 1);
    cr_expect_eq(sample(text, "dashi_decisions_total{kind=\"alert\",outcome=\"SELF_REFERRAL\",reason=\"\"}"), 1);
    cr_expect_eq(sample(text, "dashi_event_latency_seconds_count"), 5);
    cr_expect_eq(sample(text, "dashi_event_latency_seconds_bucket{le=\"86400\"}"), 0, "a 2022 event is > 1 day old");
    cr_expect_eq(sample(text, "dashi_step_seconds_count"), 1);
    cr_expect_eq(sample(text, "dashi_redis_roundtrip_seconds_bucket{le=\"0.0005\"}"), 1);
    cr_expect_eq(sample(text, "dashi_consumer_lag{topic=\"order\",partition=\"0\"}"), 20);
    cr_expect_eq(sample(text, "dashi_consumer_lag{topic=\"registration\",partition=\"0\"}"), 5, "next_offset when nothing consumed");
    cr_expect_null(strstr(text, "partition=\"1\""), "a partition not fetched has no lag series");
    cr_expect_eq(sample(text, "dashi_outbox_depth"), 3);
    cr_expect_eq(sample(text, "dashi_timers_pending"), 1);
    cr_expect_eq(sample(text, "dashi_rules_version_info{version=\"2022-06-01\"}"), 1);
    cr_expect_eq(sample(text, "dashi_stream_time_seconds"), 1654653600);
    cr_expect_gt(sample(text, "dashi_last_step_timestamp_seconds"), 1.6e9);
    cr_expect_eq(sample(text, "dashi_ready"), 1);
    free(text);
}

static int run_promtool(const char *text, char *out, size_t size) {
    char path[] = "/tmp/dashi-metrics-XXXXXX", cmd[512];
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run promtool");
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(families, promtool_accepts_the_exposition) {
    char err[512], out[8192];
    cr_assert_eq(access(PROMTOOL, X_OK), 0, PROMTOOL " is missing: install Debian's prometheus package");
    tel = dashi_telemetry_new(cfg, err, sizeof(err));
    cr_assert(tel, "%s", err);
    populate(tel);
    char *text = dashi_metrics_render(dashi_telemetry_registry(tel), NULL);
    static const char *names[] = {"dashi_events_in_total", "dashi_events_out_total", "dashi_dead_letters_total",
                                  "dashi_decisions_total", "dashi_event_latency_seconds", "dashi_step_seconds",
                                  "dashi_redis_roundtrip_seconds", "dashi_consumer_lag", "dashi_outbox_depth",
                                  "dashi_timers_pending", "dashi_rules_version_info", "dashi_stream_time_seconds",
                                  "dashi_last_step_timestamp_seconds", "dashi_ready"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char type_line[128];
        snprintf(type_line, sizeof(type_line), "# TYPE %s ", names[i]);
        cr_expect(strstr(text, type_line), "%s is not exposed", names[i]);
    }
    int rc = run_promtool(text, out, sizeof(out));
    cr_expect_eq(rc, 0, "promtool check metrics failed (%d):\n%s\n--- text ---\n%s", rc, out, text);
    free(text);
    /* the check can fail: a counter without _total and without help is linted */
    rc = run_promtool("# TYPE bad counter\nbad 1\n", out, sizeof(out));
    cr_expect_neq(rc, 0, "promtool accepted a linted text: %s", out);
}

Test(families, dead_letter_codes_of_real_codec_errors) {
    char err[512], why[512];
    dashi_codec *codec = dashi_codec_new(err, sizeof(err));
    cr_assert(codec, "%s", err);
    dashi_event ev;
    const unsigned char garbage[] = "{\"type\":\"AccountRegistered\"}", short_frame[] = {0, 0},
                        bad_schema[] = {0, 0, 0, 0x7f, 0x7f, 1}, bad_body[] = {0, 0, 0, 0, 1, 0xff, 0xff, 0xff};
    struct {
        const unsigned char *p;
        size_t n;
    } cases[] = {{garbage, sizeof(garbage) - 1}, {short_frame, 2}, {bad_schema, 6}, {bad_body, 8}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_neq(dashi_codec_decode(codec, cases[i].p, cases[i].n, &ev, why, sizeof(why)), DASHI_OK);
        cr_expect_str_eq(dashi_telemetry_intake_reason(why), "undecodable", "case %zu: %s", i, why);
    }
    /* a record that decodes but breaks EVENTS.md: encode an event missing its uid */
    dashi_event bad;
    dashi_event_init(&bad, DASHI_EV_AMBASSADOR_ENROLLED);
    bad.u.ambassador_enrolled.event_id = dashi_strdup("e1");
    bad.u.ambassador_enrolled.occurred_at = 1654653600000;
    bad.u.ambassador_enrolled.uid = dashi_strdup("");
    void *buf = NULL;
    size_t len = 0;
    if (dashi_codec_encode(codec, &bad, &buf, &len, why, sizeof(why)) == DASHI_OK) {
        cr_assert_neq(dashi_codec_decode(codec, buf, len, &ev, why, sizeof(why)), DASHI_OK, "empty uid decoded");
        cr_expect_str_eq(dashi_telemetry_intake_reason(why), "invalid", "%s", why);
    }
    free(buf);
    dashi_event_clear(&bad);
    cr_expect_str_eq(dashi_telemetry_intake_reason("record of 2000000 bytes exceeds max_message_bytes"), "too_large");
    cr_expect_str_eq(dashi_telemetry_intake_reason("CommissionEvent is not an input event"), "not_input");
    dashi_codec_destroy(codec);
}

Test(families, health_follows_its_inputs) {
    char err[512];
    tel = dashi_telemetry_new(cfg, err, sizeof(err));
    cr_assert(tel, "%s", err);
    dashi_health h;
    int64_t now = dashi_telemetry_now_ms();
    dashi_telemetry_health(tel, now, &h);
    cr_assert(h.alive);
    cr_assert_not(h.ready);
    cr_assert(strstr(h.why, "redis"), "%s", h.why);
    dashi_telemetry_redis_rtt(tel, 0.001);
    dashi_telemetry_health(tel, now, &h);
    cr_assert(strstr(h.why, "statistics"), "%s", h.why);
    static const char no_broker[] = "{\"brokers\":{\"b/1\":{\"nodeid\":1,\"state\":\"DOWN\"}},"
                                    "\"cgrp\":{\"state\":\"up\",\"join_state\":\"steady\"}}";
    dashi_telemetry_kafka_stats(tel, no_broker, strlen(no_broker));
    dashi_telemetry_health(tel, now, &h);
    cr_assert(strstr(h.why, "no broker up"), "%s", h.why);
    static const char joining[] = "{\"brokers\":{\"b/1\":{\"nodeid\":1,\"state\":\"UP\"}},"
                                  "\"cgrp\":{\"state\":\"up\",\"join_state\":\"wait-sync\"}}";
    dashi_telemetry_kafka_stats(tel, joining, strlen(joining));
    dashi_telemetry_health(tel, now, &h);
    cr_assert(strstr(h.why, "not settled"), "%s", h.why);
    dashi_telemetry_kafka_stats(tel, stats_ok, strlen(stats_ok));
    dashi_telemetry_health(tel, dashi_telemetry_now_ms(), &h);
    cr_assert(h.ready, "%s", h.why);
    /* Redis silent for 11 s: not ready; loop silent past health.stall_ms: not alive */
    dashi_telemetry_health(tel, dashi_telemetry_now_ms() + 11000, &h);
    cr_assert(h.alive);
    cr_assert_not(h.ready);
    dashi_telemetry_health(tel, dashi_telemetry_now_ms() + cfg->health_stall_ms + 1000, &h);
    cr_assert_not(h.alive);
    cr_assert(strstr(h.why, "silent"), "%s", h.why);
}

/* ---------------------------------------------------------------- HTTP */

/* GET path from 127.0.0.1:port with HTTP/1.0; the status, and the body in *body (malloc'ed). */
static int http_get(int port, const char *method, const char *path, char **body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect to port %d", port);
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    int status = 0;
    cr_assert_eq(sscanf(buf, "HTTP/1.%*d %d", &status), 1, "not HTTP: %s", buf);
    char *b = strstr(buf, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

Test(families, http_endpoints_on_an_ephemeral_port) {
    char err[512], *body = NULL;
    cr_assert_eq(dashi_config_set(cfg, "metrics.listen", "127.0.0.1:0", err, sizeof(err)), DASHI_OK, "%s", err);
    tel = dashi_telemetry_new(cfg, err, sizeof(err));
    cr_assert(tel, "%s", err);
    int port = dashi_telemetry_port(tel);
    cr_assert_gt(port, 0);
    dashi_telemetry_event_in(tel, "order", "OrderPaid");

    cr_assert_eq(http_get(port, "GET", "/metrics", &body), 200);
    cr_expect(strstr(body, "dashi_events_in_total{topic=\"order\",type=\"OrderPaid\"} 1\n"), "%s", body);
    cr_expect(strstr(body, "# TYPE dashi_ready gauge\n"), "%s", body);
    free(body);
    cr_assert_eq(http_get(port, "GET", "/healthz", &body), 200);
    cr_expect_str_eq(body, "ok\n");
    free(body);
    cr_assert_eq(http_get(port, "GET", "/readyz", &body), 503);
    cr_expect(strstr(body, "not ready: redis"), "%s", body);
    free(body);

    dashi_telemetry_redis_rtt(tel, 0.001);
    dashi_telemetry_kafka_stats(tel, stats_ok, strlen(stats_ok));
    cr_assert_eq(http_get(port, "GET", "/readyz", &body), 200);
    cr_expect_str_eq(body, "ready\n");
    free(body);
    cr_assert_eq(http_get(port, "GET", "/nothing", &body), 404);
    free(body);
    cr_assert_eq(http_get(port, "POST", "/metrics", &body), 405);
    free(body);

    /* the port is taken: a second server on it fails with a message */
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    cr_assert_eq(dashi_config_set(cfg, "metrics.listen", listen, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_telemetry *second = dashi_telemetry_new(cfg, err, sizeof(err));
    cr_expect_null(second);
    cr_expect(strstr(err, "cannot listen"), "%s", err);
    dashi_telemetry_destroy(second);
}

Test(families, listen_addresses_are_checked) {
    char err[512], host[64];
    int port;
    cr_assert_eq(dashi_httpd_parse_listen("[::1]:9464", host, sizeof(host), &port, err, sizeof(err)), DASHI_OK);
    cr_expect_str_eq(host, "::1");
    cr_expect_eq(port, 9464);
    cr_assert_eq(dashi_httpd_parse_listen(":0", host, sizeof(host), &port, err, sizeof(err)), DASHI_OK);
    cr_expect_str_eq(host, "");
    cr_expect_eq(port, 0);
    cr_expect_neq(dashi_config_set(cfg, "metrics.listen", "localhost", err, sizeof(err)), DASHI_OK);
    cr_expect_neq(dashi_config_set(cfg, "metrics.listen", "127.0.0.1:70000", err, sizeof(err)), DASHI_OK);
    cr_expect(strstr(err, "metrics.listen"), "%s", err);
    cr_expect_eq(dashi_config_set(cfg, "metrics.listen", "", err, sizeof(err)), DASHI_OK, "empty = off");
    cr_expect_neq(dashi_config_set(cfg, "log.level", "verbose", err, sizeof(err)), DASHI_OK);
    cr_expect_neq(dashi_config_set(cfg, "log.format", "xml", err, sizeof(err)), DASHI_OK);
    cr_expect_eq(dashi_config_set(cfg, "log.format", "json", err, sizeof(err)), DASHI_OK);
}
