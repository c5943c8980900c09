/* test_config.c — the processor configuration table, loader, kafka.* pass-through and generated docs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/config.h"
#include "consumers/kafka.h"

static const char *write_tmp(const char *text) {
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/dashi-cfg-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

Test(config, defaults_cover_every_row) {
    char err[256];
    dashi_config *c = dashi_config_new_default(err, sizeof(err));
    cr_assert(c, "%s", err);
    cr_expect_str_eq(c->redis_prefix, "dashi:");
    cr_expect_eq(c->merge_wait_ms, 200);
    cr_expect_eq(c->transactions, false);
    cr_expect_str_eq(dashi_config_topic(c, DASHI_EV_ORDER_REFUNDED), "order");
    cr_expect_str_eq(dashi_config_topic(c, DASHI_EV_CAMPAIGN_ENROLLED), "account");
    cr_expect_str_eq(dashi_config_topic(c, DASHI_EV_FRAUD_ALERT), "fraud-alert");
    const char *topics[DASHI_EV__COUNT];
    cr_expect_eq(dashi_config_input_topics(c, topics), 6, "six input topics of EVENTS.md");
    int types[DASHI_EV__COUNT];
    cr_expect_eq(dashi_config_input_type_of_topic(c, "account", types, DASHI_EV__COUNT), 5);
    dashi_config_destroy(c);
    dashi_config_destroy(NULL);
}

Test(config, file_overrides_and_kafka_passthrough) {
    char err[256];
    const char *p = write_tmp("{\"_comment\": \"x\", \"redis.url\": \"redis://h:1/2\", \"merge.wait_ms\": 50,\n"
                              " \"transactions\": true, \"kafka.bootstrap.servers\": \"b:9092\", \"kafka.linger.ms\": 7}\n");
    dashi_config *c = dashi_config_load(p, err, sizeof(err));
    cr_assert(c, "%s", err);
    cr_expect_str_eq(c->redis_url, "redis://h:1/2");
    cr_expect_eq(c->merge_wait_ms, 50);
    cr_expect_eq(c->transactions, true);
    cr_assert_eq(c->n_kafka, 2);
    cr_expect_str_eq(c->kafka[0].key, "bootstrap.servers");
    cr_expect_str_eq(c->kafka[1].value, "7");
    rd_kafka_conf_t *conf = dashi_kafka_conf_new(c, DASHI_KAFKA_PRODUCER, NULL, NULL, NULL, err, sizeof(err));
    cr_assert(conf, "%s", err);
    char v[64];
    size_t vs = sizeof(v);
    cr_assert_eq(rd_kafka_conf_get(conf, "linger.ms", v, &vs), RD_KAFKA_CONF_OK);
    cr_expect_str_eq(v, "7");
    vs = sizeof(v);
    cr_assert_eq(rd_kafka_conf_get(conf, "enable.idempotence", v, &vs), RD_KAFKA_CONF_OK);
    cr_expect_str_eq(v, "true");
    rd_kafka_conf_destroy(conf);
    dashi_config_destroy(c);
    remove(p);
}

static void expect_refused(const char *text, const char *needle) {
    char err[512] = "";
    const char *p = write_tmp(text);
    dashi_config *c = dashi_config_load(p, err, sizeof(err));
    cr_expect_null(c, "accepted: %s", text);
    cr_expect(strstr(err, needle), "message '%s' lacks '%s'", err, needle);
    cr_expect(strstr(err, p), "message '%s' does not name the file", err);
    dashi_config_destroy(c);
    remove(p);
}

Test(config, bad_files_name_file_line_and_key) {
    expect_refused("{\"redis.urll\": \"x\"}", "redis.urll: unknown setting");
    expect_refused("{\n\"redis.url\": 5}", ":2: redis.url: expected a string");
    expect_refused("{\"merge.wait_ms\": -3}", "merge.wait_ms: -3 is out of range");
    expect_refused("{\"merge.wait_ms\": \"3\"}", "merge.wait_ms: expected an integer");
    expect_refused("{\"transactions\": 1}", "transactions: expected true or false");
    expect_refused("{\"batch.max_events\": [1]}", "batch.max_events: expected a string, integer or boolean");
    expect_refused("{\"a\": ", "");
    expect_refused("[1, 2]", "expected a JSON object");
}

Test(config, kafka_properties_are_checked_by_librdkafka) {
    char err[512];
    dashi_config *c = dashi_config_new_default(err, sizeof(err));
    cr_assert(c);
    cr_assert_eq(dashi_config_set(c, "kafka.no.such.property", "1", err, sizeof(err)), DASHI_OK);
    cr_expect_null(dashi_kafka_conf_new(c, DASHI_KAFKA_CONSUMER, NULL, NULL, NULL, err, sizeof(err)));
    cr_expect(strstr(err, "kafka.no.such.property"), "%s", err);
    dashi_config_destroy(c);
    c = dashi_config_new_default(err, sizeof(err));
    dashi_config_set(c, "kafka.enable.auto.commit", "true", err, sizeof(err));
    cr_expect_null(dashi_kafka_conf_new(c, DASHI_KAFKA_CONSUMER, NULL, NULL, NULL, err, sizeof(err)),
                   "auto commit would break the progress-in-Redis guarantee");
    cr_expect(strstr(err, "must be false"), "%s", err);
    dashi_config_destroy(c);
}

Test(config, docs_list_every_row) {
    size_t n;
    const dashi_cfg_row *rows = dashi_config_rows(&n);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dashi_config_write_docs(f);
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        char cell[128];
        snprintf(cell, sizeof(cell), "| `%s` |", rows[i].name);
        cr_expect(strstr(buf, cell), "docs lack %s", rows[i].name);
        cr_expect(strlen(rows[i].description) > 5, "%s has no description", rows[i].name);
    }
    /* the committed reference is the generated one */
    char *committed = NULL;
    FILE *g = fopen(DASHI_SOURCE_DIR "/docs/CONFIG.md", "r");
    cr_assert(g, "docs/CONFIG.md missing");
    size_t clen = 0;
    committed = malloc(len + 2);
    clen = fread(committed, 1, len + 1, g);
    fclose(g);
    cr_expect(clen == len && memcmp(committed, buf, len) == 0,
              "docs/CONFIG.md is stale: regenerate with `dashi config docs > docs/CONFIG.md`");
    free(committed);
    free(buf);
}

Test(config, load_from_a_buffer_like_a_file) {
    char err[512];
    const char *text = "{\n  \"redis.prefix\": \"buf:\",\n  \"input.max_future_ms\": 3600000,\n"
                       "  \"kafka.security.protocol\": \"SASL_SSL\"\n}";
    dashi_config *c = dashi_config_load_buffer("mem.json", text, strlen(text), err, sizeof(err));
    cr_assert(c, "%s", err);
    cr_expect_str_eq(c->redis_prefix, "buf:");
    cr_expect_eq(c->input_max_future_ms, 3600000);
    cr_expect_str_eq(c->source, "mem.json");
    dashi_config_destroy(c);
    /* not NUL-terminated: only len bytes are read */
    char cut[] = "{\"redis.prefix\": \"x:\"}GARBAGE";
    c = dashi_config_load_buffer("cut.json", cut, strlen(cut) - 7, err, sizeof(err));
    cr_assert(c, "%s", err);
    dashi_config_destroy(c);
    /* errors name the source, the line and the key */
    const char *bad = "{\n  \"poll.ms\": 100,\n  \"input.max_future_ms\": -1\n}";
    cr_expect_null(dashi_config_load_buffer("mem.json", bad, strlen(bad), err, sizeof(err)));
    cr_expect(strstr(err, "mem.json:3: input.max_future_ms: -1 is out of range"), "%s", err);
    cr_expect_null(dashi_config_load_buffer(NULL, "", 0, err, sizeof(err)));
    cr_expect(strstr(err, "(buffer)"), "%s", err);
    /* a key given twice is a mistake, not "the last one wins" */
    const char *twice = "{\"poll.ms\": 100, \"poll.ms\": 200}";
    cr_expect_null(dashi_config_load_buffer("mem.json", twice, strlen(twice), err, sizeof(err)));
    cr_expect(strstr(err, "mem.json") && strstr(err, "duplicate"), "%s", err);
}

Test(config, input_limits) {
    char err[256];
    dashi_config *c = dashi_config_new_default(err, sizeof(err));
    cr_assert(c, "%s", err);
    cr_expect_eq(c->input_max_future_ms, 86400000, "24 h ahead of the wall clock by default");
    cr_expect_eq(c->max_message_bytes, DASHI_MAX_EVENT_BYTES);
    /* max_message_bytes cannot exceed what the decoder reads */
    cr_expect_eq(dashi_config_set(c, "max_message_bytes", "1048577", err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "out of range 1024..1048576"), "%s", err);
    cr_expect_eq(dashi_config_set(c, "input.max_future_ms", "0", err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_config_destroy(c);
}
