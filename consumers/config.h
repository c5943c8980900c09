/* config.h — the processor configuration: one table of rows, one file, kafka.* passed to librdkafka.
 *
 * Every setting is a row (name, type, default, range, description) of one table;
 * the loader, `dashi config check`, and the generated reference docs/CONFIG.md
 * are all driven by it, so they cannot disagree. Keys "kafka.<property>" are not
 * in the table: they pass through to librdkafka (minus the prefix), which
 * validates them — a property it rejects stops start-up with its own message.
 * The file is a flat JSON object {"redis.url": "unix:///run/redis.sock", ...};
 * unknown keys are errors naming the key (a typo must not be ignored).
 */
#ifndef DASHI_CONFIG_H
#define DASHI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/event.h"

typedef enum { DASHI_CFG_STRING, DASHI_CFG_INT, DASHI_CFG_BOOL } dashi_cfg_type;

typedef struct dashi_cfg_row {
    const char *name;
    dashi_cfg_type type;
    const char *def;         /* default, as text */
    int64_t min, max;        /* range of INT rows */
    size_t offset;           /* of the field in dashi_config */
    const char *description;
} dashi_cfg_row;

typedef struct dashi_config {
    char *source;                        /* file it came from, or "(defaults)" */
    char *redis_url, *redis_prefix;
    char *rules_file, *hmac_key;
    char *schema_registry_url, *schema_registry_user, *schema_registry_password;
    char *schema_registry_ca_file, *schema_registry_subject_strategy;
    int64_t schema_registry_timeout_ms, schema_registry_unknown_id_ttl_ms;
    bool schema_registry_auto_register;
    char *group_id;
    char *topic[DASHI_EV__COUNT];        /* topic of each event type */
    char *topic_dead_letter;
    int64_t batch_max_events, poll_ms, merge_wait_ms, idle_advance_ms, queue_max_events;
    int64_t merge_max_stall_ms;
    int64_t shutdown_deadline_ms, redis_timeout_ms, max_message_bytes;
    char *metrics_listen;                /* "HOST:PORT" of /metrics, /healthz, /readyz; "" = off */
    char *log_level, *log_format;        /* error|warn|info|debug, text|json */
    int64_t health_stall_ms;
    int64_t input_max_future_ms;         /* inputs further ahead of the wall clock are dead letters */
    int64_t redis_wait_ms;
    bool transactions;
    bool merge_group;                    /* order across members through Redis (pipeline.c "group merge") */
    dashi_kv *kafka; size_t n_kafka;     /* kafka.* properties without the prefix, in file order */
} dashi_config;

/* The table (for docs and tools). */
const dashi_cfg_row *dashi_config_rows(size_t *n);

/* Defaults only. */
dashi_config *dashi_config_new_default(char *errstr, size_t errstr_size);
/* Defaults overridden by the file; NULL with "FILE: key: what is wrong" on error. */
dashi_config *dashi_config_load(const char *path, char *errstr, size_t errstr_size);
/* The same from len bytes of text (borrowed; need not be NUL-terminated); name (may
 * be NULL) stands for the file in messages and becomes cfg->source. */
dashi_config *dashi_config_load_buffer(const char *name, const char *text, size_t len, char *errstr,
                                       size_t errstr_size);
void dashi_config_destroy(dashi_config *cfg); /* NULL-safe */

/* Set one key (as in the file) from text: used by the loader and by command-line
 * overrides ("--set key=value"). kafka.* keys are appended/replaced. */
dashi_err dashi_config_set(dashi_config *cfg, const char *key, const char *value, char *errstr, size_t errstr_size);

/* The input topic names (one per input event type, duplicates removed), in a
 * static array of at most DASHI_EV__COUNT entries; returns the count. */
size_t dashi_config_input_topics(const dashi_config *cfg, const char **topics);
/* The input event types carried by topic name (into types, at most max); their count. */
int dashi_config_input_type_of_topic(const dashi_config *cfg, const char *name, int *types, size_t max);
/* Topic of an event type (input, output). Borrowed. */
const char *dashi_config_topic(const dashi_config *cfg, dashi_event_type t);

/* Markdown reference of every row (docs/CONFIG.md). */
void dashi_config_write_docs(FILE *out);

#endif
