/* telemetry.h — dashi's metrics, health and readiness, and the /metrics, /healthz, /readyz endpoints.
 *
 * One telemetry object per `dashi run`: it defines every dashi_* metric family
 * (names and meanings in docs/OPERATIONS.md) in a registry (consumers/metrics.h),
 * serves them over HTTP when metrics.listen is set (consumers/httpd.h), and turns
 * what the pipeline reports into health:
 *   /healthz  200 while the processing loop has ticked within health.stall_ms;
 *   /readyz   200 when, in addition, Redis answered within the last 10 s, the
 *             consumer's statistics (librdkafka, every second) are fresh and show
 *             a broker UP, and the consumer group is settled (state "up", join
 *             state "steady"); else 503 with the first reason that failed.
 * The pipeline calls the hooks below at fixed points; each is NULL-safe, so a
 * pipeline without telemetry passes NULL. Hooks run on the processor thread
 * (librdkafka serves the statistics callback from rd_kafka_consumer_poll), the
 * Redis observer too; the HTTP thread reads only the registry (locked) and the
 * health fields (atomics).
 */
#ifndef DASHI_TELEMETRY_H
#define DASHI_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumers/config.h"
#include "consumers/metrics.h"
#include "core/event.h"
#include "core/rules.h"
#include "core/state.h"

typedef struct dashi_telemetry dashi_telemetry;

/* The registry with every family defined; the HTTP server listening when
 * cfg->metrics_listen is not empty (the bound port is logged, and given by
 * dashi_telemetry_port). cfg is borrowed for the object's life. */
dashi_telemetry *dashi_telemetry_new(const dashi_config *cfg, char *errstr, size_t errstr_size);
void dashi_telemetry_destroy(dashi_telemetry *t); /* NULL-safe; stops the server first */
dashi_metrics *dashi_telemetry_registry(dashi_telemetry *t); /* borrowed */
int dashi_telemetry_port(const dashi_telemetry *t);         /* 0 when not serving */

/* ---- hooks (NULL-safe) ---- */

/* A record was consumed from topic; type NULL when it could not be decoded. */
void dashi_telemetry_event_in(dashi_telemetry *t, const char *topic, const char *type);
/* A dead letter was written, with a short stable reason code (see intake_reason). */
void dashi_telemetry_dead_letter(dashi_telemetry *t, const char *code);
/* The reason code of a record refused before the rules (the text take_message or
 * the codec wrote): "too_large", "not_input", "undecodable" (frame, schema id,
 * Avro body), else "invalid" (decoded but breaks EVENTS.md). Static string. */
const char *dashi_telemetry_intake_reason(const char *why);
/* A record's step committed; arrived_mono_ms is when it was consumed (CLOCK_MONOTONIC ms). */
void dashi_telemetry_step(dashi_telemetry *t, int64_t arrived_mono_ms);
/* An output was handed to the producer on topic: events out, decisions, latency. */
void dashi_telemetry_event_out(dashi_telemetry *t, const char *topic, const dashi_event *ev);
/* The processing loop is alive (also called while waiting for Redis). */
void dashi_telemetry_alive(dashi_telemetry *t);
/* Once per loop: heartbeat, stream time, outbox depth, the rules version in force;
 * at most once a second it also counts the timers in st (a Redis round trip, which
 * doubles as the Redis liveness probe). st and rules may be NULL. */
void dashi_telemetry_tick(dashi_telemetry *t, dashi_state *st, const dashi_rules *rules, dashi_time stream_time,
                          int64_t outbox_depth);
/* librdkafka's statistics JSON of the consumer: lag per partition, brokers UP,
 * group state. Returns 0 (librdkafka frees json). */
int dashi_telemetry_kafka_stats(dashi_telemetry *t, const char *json, size_t len);
/* Observer for the Redis store: one round trip took seconds (opaque = the telemetry). */
void dashi_telemetry_redis_rtt(void *opaque, double seconds);

/* ---- health ---- */

typedef struct dashi_health {
    bool alive, ready;
    char why[160]; /* "ok", or the first reason it is not ready / not alive */
} dashi_health;

/* Health at now_ms (CLOCK_MONOTONIC ms; tests pass their own). */
void dashi_telemetry_health(dashi_telemetry *t, int64_t now_ms, dashi_health *out);
/* CLOCK_MONOTONIC in ms (the clock the hooks use). */
int64_t dashi_telemetry_now_ms(void);

#endif
