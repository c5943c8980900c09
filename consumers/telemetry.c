/* telemetry.c — the dashi_* metric families, the pipeline's hooks into them, health and the HTTP routes.
 *
 * Every family is defined up front (so a scrape shows each one from the first
 * second, with HELP and TYPE), by the exact names docs/OPERATIONS.md lists and
 * deploy/'s alert rules and dashboard use. Hooks turn pipeline facts into series:
 * an output's decision labels come from the output itself (commission event and
 * first reason code, same-person status and matched kinds, campaign event kind,
 * alert kind), never from identity values. Latency is wall time minus the
 * output's own event time, so a replay of history shows large values by design.
 *
 * Health lives in atomics (ms of CLOCK_MONOTONIC): the last loop tick, the last
 * Redis reply (from the store's round-trip observer), the last consumer
 * statistics, with the brokers UP and the group state they showed. /readyz and
 * the dashi_ready gauge are computed from them with the same function.
 */
#include "consumers/telemetry.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "consumers/httpd.h"
#include "consumers/log.h"

#define REDIS_FRESH_MS 10000
#define STATS_FRESH_MS 10000
#define TIMERS_EVERY_MS 1000

struct dashi_telemetry {
    const dashi_config *cfg;
    dashi_metrics *m;
    dashi_metric_family *in, *out, *dead, *decisions, *latency, *step, *rtt, *lag, *outbox, *timers, *rules, *stream,
        *last_step, *ready;
    dashi_httpd *http;
    int64_t stall_ms;
    const char *rules_version; /* borrowed from the rules: the version last exported */
    int64_t timers_at;         /* last timers count (processor thread only) */
    atomic_llong alive_ms, redis_ms, stats_ms;
    atomic_int brokers_up, group_ok, have_stats;
};

int64_t dashi_telemetry_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- health */

void dashi_telemetry_health(dashi_telemetry *t, int64_t now_ms, dashi_health *out) {
    memset(out, 0, sizeof(*out));
    if (!t) {
        snprintf(out->why, sizeof(out->why), "no telemetry");
        return;
    }
    int64_t alive = atomic_load(&t->alive_ms), redis = atomic_load(&t->redis_ms), stats = atomic_load(&t->stats_ms);
    out->alive = now_ms - alive <= t->stall_ms;
    if (!out->alive)
        snprintf(out->why, sizeof(out->why), "processing loop silent for %lld ms", (long long)(now_ms - alive));
    else if (redis == 0 || now_ms - redis > REDIS_FRESH_MS)
        snprintf(out->why, sizeof(out->why), "redis: no reply within %d ms", REDIS_FRESH_MS);
    else if (!atomic_load(&t->have_stats) || now_ms - stats > STATS_FRESH_MS)
        snprintf(out->why, sizeof(out->why), "kafka: no consumer statistics within %d ms", STATS_FRESH_MS);
    else if (atomic_load(&t->brokers_up) <= 0)
        snprintf(out->why, sizeof(out->why), "kafka: no broker up");
    else if (!atomic_load(&t->group_ok))
        snprintf(out->why, sizeof(out->why), "kafka: consumer group assignment not settled");
    else {
        out->ready = true;
        snprintf(out->why, sizeof(out->why), "ok");
    }
}

/* ---------------------------------------------------------------- HTTP */

static int handle(void *opaque, const char *path, char **body, size_t *len, const char **content_type) {
    dashi_telemetry *t = opaque;
    dashi_health h;
    char text[256];
    int status = 200;
    if (strcmp(path, "/metrics") == 0) {
        *body = dashi_metrics_render(t->m, len);
        *content_type = "text/plain; version=0.0.4; charset=utf-8";
        return *body ? 200 : 500;
    }
    dashi_telemetry_health(t, dashi_telemetry_now_ms(), &h);
    if (strcmp(path, "/healthz") == 0) {
        status = h.alive ? 200 : 503;
        snprintf(text, sizeof(text), "%s\n", h.alive ? "ok" : h.why);
    } else if (strcmp(path, "/readyz") == 0) {
        status = h.ready ? 200 : 503;
        snprintf(text, sizeof(text), "%s%s\n", h.ready ? "" : "not ready: ", h.ready ? "ready" : h.why);
    } else {
        status = 404;
        snprintf(text, sizeof(text), "not found: try /metrics, /healthz or /readyz\n");
    }
    *body = strdup(text);
    *len = *body ? strlen(*body) : 0;
    return status;
}

/* ---------------------------------------------------------------- life cycle */

static const double latency_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400};
static const double step_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double rtt_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

#define NB(a) (sizeof(a) / sizeof(a[0]))

dashi_telemetry *dashi_telemetry_new(const dashi_config *cfg, char *errstr, size_t errstr_size) {
    static const char *topic_type[] = {"topic", "type", NULL}, *reason[] = {"reason", NULL},
                      *decision[] = {"kind", "outcome", "reason", NULL}, *tp[] = {"topic", "partition", NULL},
                      *version[] = {"version", NULL};
    dashi_telemetry *t = calloc(1, sizeof(*t));
    if (!t) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    t->cfg = cfg;
    t->stall_ms = cfg && cfg->health_stall_ms > 0 ? cfg->health_stall_ms : 60000;
    atomic_store(&t->alive_ms, dashi_telemetry_now_ms());
    if (!(t->m = dashi_metrics_new(errstr, errstr_size)))
        goto fail;
#define DEF(field, name, type, help, labels, b, nb)                                                                    \
    if (!(t->field = dashi_metrics_define(t->m, name, type, help, labels, b, nb, errstr, errstr_size)))                 \
    goto fail
    DEF(in, "dashi_events_in_total", DASHI_METRIC_COUNTER, "Input records consumed, by topic and event type.",
        topic_type, NULL, 0);
    DEF(out, "dashi_events_out_total", DASHI_METRIC_COUNTER, "Output events handed to the producer, by topic and type.",
        topic_type, NULL, 0);
    DEF(dead, "dashi_dead_letters_total", DASHI_METRIC_COUNTER, "Records written to the dead-letter topic, by reason code.",
        reason, NULL, 0);
    DEF(decisions, "dashi_decisions_total", DASHI_METRIC_COUNTER,
        "Decisions emitted: kind commission|same_person|campaign|alert, outcome, reason code.", decision, NULL, 0);
    DEF(latency, "dashi_event_latency_seconds", DASHI_METRIC_HISTOGRAM,
        "Wall time from an output's event time (occurred_at) to its hand-off to the producer; large when replaying history.",
        NULL, latency_buckets, NB(latency_buckets));
    DEF(step, "dashi_step_seconds", DASHI_METRIC_HISTOGRAM, "Time from consuming a record to committing its step.", NULL,
        step_buckets, NB(step_buckets));
    DEF(rtt, "dashi_redis_roundtrip_seconds", DASHI_METRIC_HISTOGRAM, "Redis round trips (one command or one pipeline).",
        NULL, rtt_buckets, NB(rtt_buckets));
    DEF(lag, "dashi_consumer_lag", DASHI_METRIC_GAUGE,
        "Records behind the high watermark, per assigned input partition (from librdkafka statistics).", tp, NULL, 0);
    DEF(outbox, "dashi_outbox_depth", DASHI_METRIC_GAUGE,
        "Outbox entries written or re-sent by this member and not yet deleted after delivery.", NULL, NULL, 0);
    DEF(timers, "dashi_timers_pending", DASHI_METRIC_GAUGE, "Timers queued in the state store.", NULL, NULL, 0);
    DEF(rules, "dashi_rules_version_info", DASHI_METRIC_GAUGE, "The rules version in force at stream time (value 1).",
        version, NULL, 0);
    DEF(stream, "dashi_stream_time_seconds", DASHI_METRIC_GAUGE, "Stream time (latest event time applied), Unix seconds.",
        NULL, NULL, 0);
    DEF(last_step, "dashi_last_step_timestamp_seconds", DASHI_METRIC_GAUGE,
        "Wall time of the last committed record step, Unix seconds.", NULL, NULL, 0);
    DEF(ready, "dashi_ready", DASHI_METRIC_GAUGE, "1 when /readyz answers 200, else 0.", NULL, NULL, 0);
#undef DEF
    if (cfg && cfg->metrics_listen && cfg->metrics_listen[0]) {
        if (!(t->http = dashi_httpd_start(cfg->metrics_listen, handle, t, errstr, errstr_size)))
            goto fail;
        dashi_log(DASHI_LOG_INFO, "http", "serving /metrics, /healthz, /readyz on %s (port %d)", cfg->metrics_listen,
                  dashi_httpd_port(t->http));
    }
    return t;
fail:
    dashi_telemetry_destroy(t);
    return NULL;
}

void dashi_telemetry_destroy(dashi_telemetry *t) {
    if (!t)
        return;
    dashi_httpd_stop(t->http);
    dashi_metrics_destroy(t->m);
    free(t);
}

dashi_metrics *dashi_telemetry_registry(dashi_telemetry *t) {
    return t ? t->m : NULL;
}

int dashi_telemetry_port(const dashi_telemetry *t) {
    return t ? dashi_httpd_port(t->http) : 0;
}

/* ---------------------------------------------------------------- hooks */

void dashi_telemetry_event_in(dashi_telemetry *t, const char *topic, const char *type) {
    if (!t)
        return;
    const char *v[] = {topic, type ? type : "unknown"};
    dashi_metrics_add(t->in, v, 1);
}

void dashi_telemetry_dead_letter(dashi_telemetry *t, const char *code) {
    if (!t)
        return;
    const char *v[] = {code ? code : "unknown"};
    dashi_metrics_add(t->dead, v, 1);
}

const char *dashi_telemetry_intake_reason(const char *why) {
    static const char *const undecodable[] = {"truncated frame", "bad magic byte", "unknown schema id", "Avro body of"};
    if (!why)
        return "invalid";
    if (strstr(why, "exceeds max_message_bytes"))
        return "too_large";
    if (strstr(why, "is not an input event"))
        return "not_input";
    if (strstr(why, "does not belong on topic"))
        return "wrong_topic";
    if (strstr(why, "too far in the future"))
        return "future";
    for (size_t i = 0; i < NB(undecodable); i++)
        if (strncmp(why, undecodable[i], strlen(undecodable[i])) == 0)
            return "undecodable";
    return "invalid";
}

void dashi_telemetry_step(dashi_telemetry *t, int64_t arrived_mono_ms) {
    if (!t)
        return;
    int64_t d = dashi_telemetry_now_ms() - arrived_mono_ms;
    dashi_metrics_observe(t->step, NULL, d > 0 ? (double)d / 1000.0 : 0.0);
    dashi_metrics_set(t->last_step, NULL, wall_seconds());
}

void dashi_telemetry_event_out(dashi_telemetry *t, const char *topic, const dashi_event *ev) {
    if (!t || !ev)
        return;
    const char *v[] = {topic, dashi_event_type_name(ev->type)};
    dashi_metrics_add(t->out, v, 1);
    char matched[64] = "";
    const char *d[3] = {NULL, NULL, ""};
    switch (ev->type) {
    case DASHI_EV_COMMISSION_EVENT: {
        const dashi_commission_event *c = &ev->u.commission_event;
        d[0] = "commission";
        d[1] = dashi_enum_name(DASHI_ENUM_COMMISSION_KIND, c->event);
        d[2] = c->n_reasons ? c->reasons[0] : "";
        break;
    }
    case DASHI_EV_SAME_PERSON_DECISION: {
        const dashi_same_person_decision *s = &ev->u.same_person_decision;
        size_t n = 0;
        for (size_t i = 0; i < s->n_matched_on; i++) {
            const char *k = dashi_enum_name(DASHI_ENUM_IDENTITY_KIND, s->matched_on[i]);
            n += (size_t)snprintf(matched + n, n < sizeof(matched) ? sizeof(matched) - n : 0, "%s%s", i ? "," : "",
                                  k ? k : "?");
        }
        d[0] = "same_person";
        d[1] = dashi_enum_name(DASHI_ENUM_SP_STATUS, s->status);
        d[2] = matched;
        break;
    }
    case DASHI_EV_CAMPAIGN_EVENT:
        d[0] = "campaign";
        d[1] = dashi_enum_name(DASHI_ENUM_CAMPAIGN_KIND, ev->u.campaign_event.kind);
        break;
    case DASHI_EV_FRAUD_ALERT:
        d[0] = "alert";
        d[1] = ev->u.fraud_alert.kind;
        break;
    default:
        break;
    }
    if (d[0]) {
        if (!d[1])
            d[1] = "";
        dashi_metrics_add(t->decisions, d, 1);
    }
    dashi_time at = dashi_event_time(ev);
    if (at != DASHI_TIME_NONE) {
        double lat = wall_seconds() - (double)at / 1000.0;
        dashi_metrics_observe(t->latency, NULL, lat > 0 ? lat : 0.0);
    }
}

void dashi_telemetry_alive(dashi_telemetry *t) {
    if (t)
        atomic_store(&t->alive_ms, dashi_telemetry_now_ms());
}

void dashi_telemetry_tick(dashi_telemetry *t, dashi_state *st, const dashi_rules *rules, dashi_time stream_time,
                          int64_t outbox_depth) {
    if (!t)
        return;
    int64_t now = dashi_telemetry_now_ms();
    atomic_store(&t->alive_ms, now);
    dashi_metrics_set(t->outbox, NULL, (double)(outbox_depth > 0 ? outbox_depth : 0));
    if (stream_time != DASHI_TIME_NONE) {
        dashi_metrics_set(t->stream, NULL, (double)stream_time / 1000.0);
        const dashi_ruleset *rs = rules ? dashi_rules_at(rules, stream_time) : NULL;
        if (rs && rs->version && rs->version != t->rules_version) {
            const char *v[] = {rs->version};
            dashi_metrics_reset(t->rules);
            dashi_metrics_set(t->rules, v, 1);
            t->rules_version = rs->version;
        }
    }
    if (st && now - t->timers_at >= TIMERS_EVERY_MS) {
        char err[256];
        size_t n = 0;
        t->timers_at = now;
        if (st->ops->timers_count && st->ops->timers_count(st, &n, err, sizeof(err)) == DASHI_OK)
            dashi_metrics_set(t->timers, NULL, (double)n);
    }
    dashi_health h;
    dashi_telemetry_health(t, now, &h);
    dashi_metrics_set(t->ready, NULL, h.ready ? 1 : 0);
}

static int64_t jint(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

int dashi_telemetry_kafka_stats(dashi_telemetry *t, const char *json, size_t len) {
    if (!t || !json)
        return 0;
    json_t *doc = json_loadb(json, len, 0, NULL);
    if (!doc)
        return 0;
    int up = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(doc, "brokers"), k, v) {
        const char *state = json_string_value(json_object_get(v, "state"));
        const char *source = json_string_value(json_object_get(v, "source"));
        if (source && (strcmp(source, "internal") == 0 || strcmp(source, "logical") == 0))
            continue;
        if (jint(v, "nodeid") >= 0 && state && strcmp(state, "UP") == 0)
            up++;
    }
    const json_t *cg = json_object_get(doc, "cgrp");
    const char *state = json_string_value(json_object_get(cg, "state"));
    const char *join = json_string_value(json_object_get(cg, "join_state"));
    int settled = state && join && strcmp(state, "up") == 0 && strcmp(join, "steady") == 0;
    /* lag of the partitions being fetched: high watermark - position */
    dashi_metrics_reset(t->lag);
    json_t *topic;
    json_object_foreach(json_object_get(doc, "topics"), k, topic) {
        const char *pk;
        json_t *part;
        json_object_foreach(json_object_get(topic, "partitions"), pk, part) {
            const char *fetch = json_string_value(json_object_get(part, "fetch_state"));
            int64_t id = jint(part, "partition"), hi = jint(part, "hi_offset");
            int64_t pos = jint(part, "app_offset") >= 0 ? jint(part, "app_offset") : jint(part, "next_offset");
            if (id < 0 || hi < 0 || pos < 0 || !fetch || strcmp(fetch, "none") == 0 || strcmp(fetch, "stopped") == 0)
                continue;
            char num[24];
            snprintf(num, sizeof(num), "%lld", (long long)id);
            const char *labels[] = {k, num};
            dashi_metrics_set(t->lag, labels, (double)(hi > pos ? hi - pos : 0));
        }
    }
    json_decref(doc);
    atomic_store(&t->brokers_up, up);
    atomic_store(&t->group_ok, settled);
    atomic_store(&t->have_stats, 1);
    atomic_store(&t->stats_ms, dashi_telemetry_now_ms());
    return 0;
}

void dashi_telemetry_redis_rtt(void *opaque, double seconds) {
    dashi_telemetry *t = opaque;
    if (!t)
        return;
    dashi_metrics_observe(t->rtt, NULL, seconds);
    atomic_store(&t->redis_ms, dashi_telemetry_now_ms());
}
