/* config.c — the configuration table, its loader and its generated reference.
 *
 * Rows hold the field offset in dashi_config, so loading is one loop over the
 * table: find the row by name, check type and range, store. Strings are owned by
 * the config. The defaults make `dashi run` work against the embedded dev setup
 * (a private Redis on a unix socket, a mock cluster's bootstrap given on the
 * command line) without a file.
 */
#include "consumers/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumers/httpd.h"
#include "consumers/log.h"

#define ROW_S(n, d, f, desc) {n, DASHI_CFG_STRING, d, 0, 0, offsetof(dashi_config, f), desc}
#define ROW_I(n, d, lo, hi, f, desc) {n, DASHI_CFG_INT, d, lo, hi, offsetof(dashi_config, f), desc}
#define ROW_B(n, d, f, desc) {n, DASHI_CFG_BOOL, d, 0, 1, offsetof(dashi_config, f), desc}
#define TOPIC(t, name, desc) ROW_S("topic." name, name, topic[t], desc)

static const dashi_cfg_row rows[] = {
    ROW_S("redis.url", "unix:///tmp/dashi-redis.sock", redis_url,
          "Redis holding state and progress: redis://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N]"),
    ROW_S("redis.prefix", "dashi:", redis_prefix, "prefix of every Redis key dashi writes"),
    ROW_I("redis.timeout_ms", "5000", 10, 600000, redis_timeout_ms, "connect and command timeout towards Redis"),
    ROW_I("redis.wait_ms", "120000", 0, 86400000, redis_wait_ms,
          "how long `dashi run` waits for an unreachable Redis (at start-up or mid-run) before it stops with an "
          "error; it retries with exponential backoff from 100 ms to 5 s, logged (0 = wait forever)"),
    ROW_S("rules.file", "config/rules.json", rules_file, "the rules file (rule sets by period and campaigns)"),
    ROW_S("hmac.key", "env:DASHI_HMAC_KEY", hmac_key,
          "where the identity-hash secret is: env:NAME or file:/path (mode 0600); 'dev' only for demos"),
    ROW_S("schema_registry.url", "", schema_registry_url,
          "Confluent Schema Registry base URL (http:// or https://): writer schemas fetched by id, output schemas "
          "registered; empty = the shipped schemas with ids by event type (1..16). See docs/SCHEMA_REGISTRY.md"),
    ROW_S("schema_registry.user", "", schema_registry_user, "basic-auth user towards the registry (empty = no auth)"),
    ROW_S("schema_registry.password", "", schema_registry_password,
          "where the basic-auth password is: env:NAME or file:/path (mode 0600); never the password itself"),
    ROW_S("schema_registry.ca_file", "", schema_registry_ca_file,
          "PEM file of the CAs that sign the registry's TLS certificate (empty = the system's CAs)"),
    ROW_I("schema_registry.timeout_ms", "5000", 100, 600000, schema_registry_timeout_ms,
          "connect and whole-request timeout of one registry request"),
    ROW_I("schema_registry.unknown_id_ttl_ms", "30000", 0, 86400000, schema_registry_unknown_id_ttl_ms,
          "an id the registry answered 404 for is not asked again for this long (its records are dead-lettered); "
          "known ids are cached for good (ids are immutable)"),
    ROW_B("schema_registry.auto_register", "true", schema_registry_auto_register,
          "register dashi's schemas (POST /subjects/S/versions); false = only look them up (POST /subjects/S)"),
    ROW_S("schema_registry.subject_strategy", "auto", schema_registry_subject_strategy,
          "subject of a type's schema: topic (TOPIC-value), topic_record (TOPIC-dashi.v1.Type), record "
          "(dashi.v1.Type), or auto: topic for a topic carrying one event type, topic_record for a shared one"),
    ROW_S("group.id", "dashi", group_id, "Kafka consumer group of the processor"),
    TOPIC(DASHI_EV_ACCOUNT_REGISTERED, "registration", "input: AccountRegistered"),
    ROW_S("topic.association", "association", topic[DASHI_EV_LINK_VISITED], "input: LinkVisited"),
    ROW_S("topic.verification", "verification", topic[DASHI_EV_REAL_NAME_VERIFIED], "input: RealNameVerified"),
    ROW_S("topic.account", "account", topic[DASHI_EV_IDENTITY_CHANGED],
          "input: IdentityChanged, AmbassadorEnrolled, AccountFlagged, CustomerBound, CampaignEnrolled"),
    ROW_S("topic.order", "order", topic[DASHI_EV_ORDER_PAID], "input: OrderPaid, OrderRefunded"),
    ROW_S("topic.risk_action", "risk-action", topic[DASHI_EV_RISK_ACTION], "input: RiskAction"),
    ROW_S("topic.same_person", "same-person", topic[DASHI_EV_SAME_PERSON_DECISION], "output: SamePersonDecision"),
    ROW_S("topic.commission", "commission", topic[DASHI_EV_COMMISSION_EVENT], "output: CommissionEvent"),
    ROW_S("topic.campaign", "campaign", topic[DASHI_EV_CAMPAIGN_EVENT], "output: CampaignEvent"),
    ROW_S("topic.tier", "tier", topic[DASHI_EV_TIER_ASSIGNED], "output: TierAssigned"),
    ROW_S("topic.fraud_alert", "fraud-alert", topic[DASHI_EV_FRAUD_ALERT], "output: FraudAlert"),
    ROW_S("topic.dead_letter", "dead-letter", topic_dead_letter,
          "bad input records, original bytes, headers naming source topic, partition, offset and reason"),
    ROW_I("batch.max_events", "500", 1, 100000, batch_max_events, "events applied per Redis pipeline round trip"),
    ROW_I("poll.ms", "100", 1, 60000, poll_ms, "longest wait in one consumer poll"),
    ROW_I("merge.wait_ms", "200", 0, 600000, merge_wait_ms,
          "how long a partition task waits for a lagging topic before applying the earliest event it has"),
    ROW_I("queue.max_events", "20000", 100, 10000000, queue_max_events,
          "decoded input records a member holds waiting in its merge queues; when they hold this many, every "
          "topic-partition holding its share (this / assigned topic-partitions) stops fetching until the queues are "
          "down to half (librdkafka's own prefetch is bounded by kafka.queued.max.messages.kbytes)"),
    ROW_I("merge.max_stall_ms", "30000", 100, 86400000, merge_max_stall_ms,
          "the longest the merge waits, with nothing applied, for a partition that is behind (fetches failing, a "
          "member gone without leaving); then it applies what it has and order across that partition is lost"),
    ROW_B("merge.group", "true", merge_group,
          "merge across members too: each member publishes its partitions' earliest queued event time in Redis "
          "and applies an event only when no other member's partition can bring an earlier one (replay's order "
          "with several members); false = each member orders only its own partitions (faster, order across "
          "members not replay's)"),
    ROW_I("idle.advance_ms", "1000", 0, 86400000, idle_advance_ms,
          "when input is idle this long, stream time follows the wall clock so timers fire (0 = never)"),
    ROW_I("shutdown.deadline_ms", "10000", 100, 600000, shutdown_deadline_ms,
          "SIGTERM/SIGINT: finish the batch, flush, commit and close within this time"),
    ROW_I("max_message_bytes", "1048576", 1024, DASHI_MAX_EVENT_BYTES, max_message_bytes,
          "larger input records are dead-lettered unread (the decoder's own limit is 1048576)"),
    ROW_I("input.max_future_ms", "86400000", 0, 31622400000LL, input_max_future_ms,
          "an input whose occurred_at is more than this ahead of the wall clock is dead-lettered "
          "(\"occurred_at too far in the future\"): it would advance stream time and fire every timer"),
    ROW_S("metrics.listen", "", metrics_listen,
          "HOST:PORT serving /metrics (Prometheus), /healthz and /readyz, e.g. 127.0.0.1:9464 or :9464 (every "
          "interface); port 0 = an ephemeral port (logged); empty = off"),
    ROW_I("health.stall_ms", "60000", 1000, 86400000, health_stall_ms,
          "/healthz answers 503 when the processing loop has not ticked for this long"),
    ROW_S("log.level", "info", log_level, "least severe log level written: error, warn, info or debug"),
    ROW_S("log.format", "text", log_format, "log lines on stderr: text, or json (one JSON object a line)"),
    ROW_B("transactions", "false", transactions,
          "produce outputs and commit offsets in one Kafka transaction per batch (needs a real broker for isolation; the "
          "mock only acknowledges); transactional.id is kafka.transactional.id, else <group.id>-<hostname>"),
};

/* Event types that share another type's topic (EVENTS.md: the "account" and
 * "order" topics carry several types): the table names each topic once. */
static const struct {
    dashi_event_type type, same_as;
} shared_topics[] = {
    {DASHI_EV_AMBASSADOR_ENROLLED, DASHI_EV_IDENTITY_CHANGED}, {DASHI_EV_ACCOUNT_FLAGGED, DASHI_EV_IDENTITY_CHANGED},
    {DASHI_EV_CUSTOMER_BOUND, DASHI_EV_IDENTITY_CHANGED},      {DASHI_EV_CAMPAIGN_ENROLLED, DASHI_EV_IDENTITY_CHANGED},
    {DASHI_EV_ORDER_REFUNDED, DASHI_EV_ORDER_PAID},
};

const dashi_cfg_row *dashi_config_rows(size_t *n) {
    *n = sizeof(rows) / sizeof(rows[0]);
    return rows;
}

static const dashi_cfg_row *find_row(const char *name) {
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

/* String rows that take one of a few words (a typo must not be ignored). */
static const struct {
    const char *name, *choices; /* choices: words separated by '|' */
} string_choices[] = {
    {"schema_registry.subject_strategy", "auto|topic|topic_record|record"},
    {"log.level", "error|warn|info|debug"},
    {"log.format", "text|json"},
};

static int choice_ok(const char *choices, const char *value) {
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return 1;
        p += len + (bar != NULL);
    }
    return 0;
}

static dashi_err set_kafka(dashi_config *cfg, const char *prop, const char *value) {
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (strcmp(cfg->kafka[i].key, prop) == 0) {
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = dashi_strdup(value);
            return DASHI_OK;
        }
    return dashi_kv_push(&cfg->kafka, &cfg->n_kafka, prop, value) == 0 ? DASHI_OK : DASHI_ERR_NOMEM;
}

/* String rows whose values are a choice or have a form: refused here, so `dashi
 * config check` and --set catch them before anything starts. */
static dashi_err check_string(const char *key, const char *value, char *errstr, size_t errstr_size) {
    char host[256];
    int port;
    for (size_t i = 0; i < sizeof(string_choices) / sizeof(string_choices[0]); i++)
        if (strcmp(key, string_choices[i].name) == 0 && !choice_ok(string_choices[i].choices, value))
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: expected one of %s, got '%s'", key,
                              string_choices[i].choices, value);
    if (strcmp(key, "metrics.listen") == 0 && value[0] &&
        dashi_httpd_parse_listen(value, host, sizeof(host), &port, errstr, errstr_size) != DASHI_OK) {
        char why[300];
        snprintf(why, sizeof(why), "%s", errstr);
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %s", key, why);
    }
    return DASHI_OK;
}

dashi_err dashi_config_set(dashi_config *cfg, const char *key, const char *value, char *errstr, size_t errstr_size) {
    if (strncmp(key, "kafka.", 6) == 0) {
        if (key[6] == '\0')
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: empty librdkafka property name", key);
        return set_kafka(cfg, key + 6, value);
    }
    const dashi_cfg_row *r = find_row(key);
    if (!r)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: unknown setting (see docs/CONFIG.md)", key);
    char *field = (char *)cfg + r->offset;
    switch (r->type) {
    case DASHI_CFG_STRING: {
        char **s = (char **)field;
        if (check_string(key, value, errstr, errstr_size) != DASHI_OK)
            return DASHI_ERR_INVALID;
        free(*s);
        *s = dashi_strdup(value);
        return DASHI_OK;
    }
    case DASHI_CFG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || *value == '\0' || *end != '\0')
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: expected an integer, got '%s'", key, value);
        if (v < r->min || v > r->max)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %lld is out of range %lld..%lld", key, v,
                              (long long)r->min, (long long)r->max);
        *(int64_t *)field = v;
        return DASHI_OK;
    }
    case DASHI_CFG_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
            *(bool *)field = value[0] == 't';
            return DASHI_OK;
        }
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: expected true or false, got '%s'", key, value);
    }
    return DASHI_ERR_INTERNAL;
}

void dashi_config_destroy(dashi_config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].type == DASHI_CFG_STRING)
            free(*(char **)((char *)cfg + rows[i].offset));
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg->source);
    free(cfg);
}

dashi_config *dashi_config_new_default(char *errstr, size_t errstr_size) {
    dashi_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    cfg->source = dashi_strdup("(defaults)");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (dashi_config_set(cfg, rows[i].name, rows[i].def, errstr, errstr_size) != DASHI_OK) {
            dashi_config_destroy(cfg);
            return NULL;
        }
    return cfg; /* topics of types sharing one (shared_topics) stay NULL: see topic_of() */
}

/* Line of the first occurrence of "key" in the text (jansson keeps no positions
 * for values; the file is flat, so a key's text is unique enough). 0 if not found. */
static int key_line(const char *text, size_t len, const char *key) {
    size_t klen = strlen(key);
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            line++;
        else if (text[i] == '"' && len - i - 1 > klen && memcmp(text + i + 1, key, klen) == 0 &&
                 text[i + 1 + klen] == '"')
            return line;
    }
    return 0;
}

dashi_config *dashi_config_load(const char *path, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    dashi_config *cfg = NULL;
    if (!f) {
        dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    do { /* the whole file: its text gives the line of a bad key */
        if (len + 4096 > cap) {
            char *grown = realloc(text, cap = cap ? cap * 2 : 8192);
            if (!grown) {
                dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "%s: out of memory", path);
                goto out;
            }
            text = grown;
        }
        got = fread(text + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    cfg = dashi_config_load_buffer(path, text, len, errstr, errstr_size);
out:
    fclose(f);
    free(text);
    return cfg;
}

dashi_config *dashi_config_load_buffer(const char *name, const char *text, size_t len, char *errstr,
                                       size_t errstr_size) {
    json_error_t jerr;
    json_t *doc = NULL;
    const char *path = name ? name : "(buffer)";
    dashi_config *cfg = dashi_config_new_default(errstr, errstr_size);
    char why[512];
    if (!cfg)
        goto out;
    if (!(doc = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr))) {
        dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(doc)) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: expected a JSON object of settings", path);
        goto fail;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        char num[32];
        const char *val = NULL;
        if (key[0] == '_')
            continue; /* comments */
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v)), val = num;
        else if (json_is_boolean(v))
            val = json_is_true(v) ? "true" : "false";
        if (!val) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %s: expected a string, integer or boolean", path, key);
            goto fail;
        }
        const dashi_cfg_row *r = find_row(key);
        int line = key_line(text, len, key);
        if (r && (r->type == DASHI_CFG_STRING) != (json_is_string(v) != 0)) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s:%d: %s: expected %s", path, line, key,
                       r->type == DASHI_CFG_INT ? "an integer" : r->type == DASHI_CFG_BOOL ? "true or false" : "a string");
            goto fail;
        }
        if (dashi_config_set(cfg, key, val, why, sizeof(why)) != DASHI_OK) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s:%d: %s", path, line, why);
            goto fail;
        }
    }
    free(cfg->source);
    cfg->source = dashi_strdup(path);
    goto out;
fail:
    dashi_config_destroy(cfg);
    cfg = NULL;
out:
    json_decref(doc);
    return cfg;
}

static const char *topic_of(const dashi_config *cfg, dashi_event_type t) {
    for (size_t i = 0; i < sizeof(shared_topics) / sizeof(shared_topics[0]); i++)
        if (shared_topics[i].type == t)
            return cfg->topic[shared_topics[i].same_as];
    return cfg->topic[t];
}

size_t dashi_config_input_topics(const dashi_config *cfg, const char **topics) {
    size_t n = 0;
    for (int t = 0; t < DASHI_EV__FIRST_OUTPUT; t++) {
        const char *name = topic_of(cfg, (dashi_event_type)t);
        size_t k;
        for (k = 0; k < n && strcmp(topics[k], name) != 0; k++)
            ;
        if (k == n)
            topics[n++] = name;
    }
    return n;
}

int dashi_config_input_type_of_topic(const dashi_config *cfg, const char *name, int *types, size_t max) {
    int n = 0;
    for (int t = 0; t < DASHI_EV__FIRST_OUTPUT && (size_t)n < max; t++)
        if (strcmp(topic_of(cfg, (dashi_event_type)t), name) == 0)
            types[n++] = t;
    return n;
}

const char *dashi_config_topic(const dashi_config *cfg, dashi_event_type t) {
    return topic_of(cfg, t);
}

void dashi_config_write_docs(FILE *out) {
    fprintf(out, "# dashi configuration reference\n\n"
                 "Generated by `dashi config docs` from the configuration table in consumers/config.c — do not edit.\n\n"
                 "The file is a flat JSON object, e.g. `{\"redis.url\": \"redis://127.0.0.1:6379/0\", "
                 "\"kafka.bootstrap.servers\": \"broker:9092\"}`. Keys starting with `_` are comments. "
                 "Every `kafka.<property>` key is passed to librdkafka as `<property>` (consumer and producer); "
                 "a property librdkafka rejects stops start-up. TLS and SASL towards Kafka are such properties "
                 "(`kafka.security.protocol`, `kafka.ssl.ca.location`, `kafka.sasl.mechanisms`, "
                 "`kafka.sasl.username`, `kafka.sasl.password`).\n\n"
                 "| key | type | default | range | description |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const dashi_cfg_row *r = &rows[i];
        char range[64] = "";
        if (r->type == DASHI_CFG_INT)
            snprintf(range, sizeof(range), "%lld..%lld", (long long)r->min, (long long)r->max);
        else if (r->type == DASHI_CFG_BOOL)
            snprintf(range, sizeof(range), "true, false");
        fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", r->name,
                r->type == DASHI_CFG_STRING ? "string" : r->type == DASHI_CFG_INT ? "integer" : "boolean",
                r->def[0] ? r->def : "(empty)", range, r->description);
    }
}
