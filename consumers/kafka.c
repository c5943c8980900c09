/* kafka.c — building librdkafka clients from the configuration; produce with back-pressure; signals.
 *
 * Defaults are set first and kafka.* properties after, so an operator can
 * override anything (e.g. security.protocol), except what would break the
 * processor's guarantees: enable.auto.commit (progress lives in Redis),
 * enable.idempotence and acks — those are forced and a conflicting value is an
 * error rather than a silent change. librdkafka's own log lines go through the
 * process log (consumers/log.h, component "kafka") unless a hook says otherwise.
 */
#include "consumers/kafka.h"

#include "consumers/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

volatile int dashi_kafka_stop = 0;

static void on_signal(int sig) {
    (void)sig;
    dashi_kafka_stop = dashi_kafka_stop ? 2 : 1;
}

void dashi_kafka_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void log_to_process_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    dashi_log_rdkafka(rk, level, fac, buf);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr, size_t errstr_size) {
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "kafka.%s: %s", name, why);
        return -1;
    }
    return 0;
}

static const struct {
    dashi_kafka_role role;
    const char *name, *value;
    int forced; /* the guarantees depend on it: a different kafka.* value is refused */
} defaults[] = {
    {DASHI_KAFKA_CONSUMER, "enable.auto.commit", "false", 1},
    {DASHI_KAFKA_CONSUMER, "enable.auto.offset.store", "false", 0},
    {DASHI_KAFKA_CONSUMER, "auto.offset.reset", "earliest", 0},
    {DASHI_KAFKA_CONSUMER, "partition.assignment.strategy", "range", 1},
    {DASHI_KAFKA_CONSUMER, "enable.partition.eof", "true", 0},
    {DASHI_KAFKA_PRODUCER, "enable.idempotence", "true", 1},
    {DASHI_KAFKA_PRODUCER, "acks", "all", 1},
    {DASHI_KAFKA_PRODUCER, "linger.ms", "5", 0},
};

rd_kafka_conf_t *dashi_kafka_conf_new(const dashi_config *cfg, dashi_kafka_role role, const char *bootstrap,
                                      const char *group, const dashi_kafka_hooks *hooks, char *errstr,
                                      size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (defaults[i].role == role && conf_set(conf, defaults[i].name, defaults[i].value, errstr, errstr_size))
            goto fail;
    if (hooks && hooks->stats_cb && conf_set(conf, "statistics.interval.ms", "1000", errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const char *k = cfg->kafka[i].key, *v = cfg->kafka[i].value;
        for (size_t d = 0; d < sizeof(defaults) / sizeof(defaults[0]); d++)
            if (defaults[d].forced && defaults[d].role == role && strcmp(defaults[d].name, k) == 0 &&
                strcmp(defaults[d].value, v) != 0) {
                dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "kafka.%s: must be %s (dashi's guarantees rely on it)",
                           k, defaults[d].value);
                goto fail;
            }
        if (conf_set(conf, k, v, errstr, errstr_size))
            goto fail;
    }
    if (bootstrap && conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size))
        goto fail;
    if (role == DASHI_KAFKA_CONSUMER && conf_set(conf, "group.id", group ? group : cfg->group_id, errstr, errstr_size))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, hooks && hooks->log_cb ? hooks->log_cb : log_to_process_log);
    if (hooks && hooks->transactional_id && role == DASHI_KAFKA_PRODUCER &&
        conf_set(conf, "transactional.id", hooks->transactional_id, errstr, errstr_size))
        goto fail;
    if (hooks) {
        if (hooks->stats_cb)
            rd_kafka_conf_set_stats_cb(conf, hooks->stats_cb);
        if (hooks->dr_msg_cb)
            rd_kafka_conf_set_dr_msg_cb(conf, hooks->dr_msg_cb);
        if (hooks->rebalance_cb)
            rd_kafka_conf_set_rebalance_cb(conf, hooks->rebalance_cb);
        rd_kafka_conf_set_opaque(conf, hooks->opaque);
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *dashi_kafka_new(const dashi_config *cfg, dashi_kafka_role role, const char *bootstrap,
                            const char *group, const dashi_kafka_hooks *hooks, char *errstr, size_t errstr_size) {
    char why[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = dashi_kafka_conf_new(cfg, role, bootstrap, group, hooks, errstr, errstr_size);
    if (!conf)
        goto out;
    rk = rd_kafka_new(role == DASHI_KAFKA_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "kafka: %s", why);
        goto out;
    }
    conf = NULL; /* rd_kafka_new took it */
    if (role == DASHI_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(rk);
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rk;
}

dashi_err dashi_kafka_produce(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                              const void *value, size_t len, rd_kafka_headers_t *headers, void *opaque,
                              char *errstr, size_t errstr_size) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return DASHI_OK; /* headers now belong to the message */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && dashi_kafka_stop < 2) {
            rd_kafka_poll(rk, 50);
            continue;
        }
        if (headers)
            rd_kafka_headers_destroy(headers);
        return dashi_errf(err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? DASHI_ERR_TRANSPORT : DASHI_ERR_BACKEND, errstr,
                          errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
    }
}
