/* kafka.h — librdkafka handles built from the dashi configuration, and the dev tools' plumbing.
 *
 * Every client (the processor's consumer and producer, publish, tail) is created
 * here, so kafka.* pass-through, the error of a rejected property, and the
 * settings the guarantees rely on (idempotent producer, acks=all, manual offset
 * commits, the range assignor that keeps partition p of every input topic on one
 * member) are decided in one place.
 */
#ifndef DASHI_KAFKA_H
#define DASHI_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "consumers/config.h"
#include "core/error.h"

typedef enum { DASHI_KAFKA_CONSUMER, DASHI_KAFKA_PRODUCER } dashi_kafka_role;

/* Callbacks a client may need (all optional); opaque is the client-level opaque;
 * transactional_id is the one per-client setting that is not a kafka.* row. */
typedef struct dashi_kafka_hooks {
    void (*dr_msg_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
    void (*rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque);
    void (*log_cb)(const rd_kafka_t *rk, int level, const char *fac, const char *buf); /* NULL: the process log */
    /* statistics JSON every statistics.interval.ms (1000 unless kafka.statistics.interval.ms says otherwise) */
    int (*stats_cb)(rd_kafka_t *rk, char *json, size_t json_len, void *opaque);
    void *opaque;
    const char *transactional_id; /* producer only (borrowed, may be NULL): make it transactional */
} dashi_kafka_hooks;

/* A client of the given role. bootstrap (may be NULL) overrides kafka.bootstrap.servers;
 * group (consumer only; NULL = cfg->group_id). Any kafka.* property librdkafka
 * rejects makes this fail with its message: "kafka.foo: No such configuration property". */
rd_kafka_t *dashi_kafka_new(const dashi_config *cfg, dashi_kafka_role role, const char *bootstrap,
                            const char *group, const dashi_kafka_hooks *hooks /* borrows, may be NULL */,
                            char *errstr, size_t errstr_size);

/* Only the configuration of such a client (for `dashi config check`: validates every
 * kafka.* property without connecting anywhere). Caller destroys it. */
rd_kafka_conf_t *dashi_kafka_conf_new(const dashi_config *cfg, dashi_kafka_role role, const char *bootstrap,
                                      const char *group, const dashi_kafka_hooks *hooks, char *errstr,
                                      size_t errstr_size);

/* Produce a copy of value to topic with key and an "id" header (may be NULL),
 * retrying while the local queue is full. opaque is passed to the delivery report. */
dashi_err dashi_kafka_produce(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                              const void *value, size_t len, rd_kafka_headers_t *headers /* takes */,
                              void *opaque, char *errstr, size_t errstr_size);

/* Signal flag shared by the long-running commands: 0 running, 1 stop gracefully, 2 stop now. */
extern volatile int dashi_kafka_stop;
/* Install SIGINT/SIGTERM handlers: the first asks for a graceful stop, the second for an immediate one. */
void dashi_kafka_install_signals(void);

#endif
