/* pipeline.h — `dashi run`: the live processor (Kafka in, rules on Redis state, Kafka out).
 *
 * See pipeline.c for the design and README "Guarantees" for what holds with which
 * broker. One pipeline is one consumer group member; run several for scale-out.
 */
#ifndef DASHI_PIPELINE_H
#define DASHI_PIPELINE_H

#include <stdint.h>

#include "consumers/config.h"
#include "core/error.h"
#include "core/time.h"

typedef struct dashi_pipeline_opts {
    const dashi_config *cfg;     /* borrowed */
    const char *bootstrap;       /* overrides kafka.bootstrap.servers; may be NULL */
    dashi_time clock_until;      /* idle advance never moves stream time past this; DASHI_TIME_NONE = wall clock */
    int64_t exit_idle_ms;        /* exit after this long with nothing to do (0 = run until signalled) */
    int verbose;
    struct dashi_telemetry *tel; /* borrowed, may be NULL: metrics and health (consumers/telemetry.h) */
} dashi_pipeline_opts;

typedef struct dashi_pipeline_stats {
    uint64_t consumed, applied, duplicates, dead_letters, outputs_produced, outputs_acked, timers, resent;
    uint64_t pauses;  /* times a topic-partition stopped fetching: its queue held its share of queue.max_events */
    double seconds;
} dashi_pipeline_stats;

/* Run until stopped by a signal (dashi_kafka_stop) or exit_idle_ms. DASHI_OK on a
 * clean stop; an error stops start-up or a fatal condition. */
dashi_err dashi_pipeline_run(const dashi_pipeline_opts *opts, dashi_pipeline_stats *stats, char *errstr,
                             size_t errstr_size);

#endif
