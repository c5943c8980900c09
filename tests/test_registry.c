/* test_registry.c — schema ids through a Schema Registry: the client, the codec on top of it, and `dashi run` with it.
 *
 * Confluent's Schema Registry is a Java service Debian does not package; the tests
 * talk to tests/support/registry_server.c instead, a libmicrohttpd server in the
 * test process with the same endpoints, bodies and status codes, which counts and
 * logs every request (so "the second decode makes no request" is measured at the
 * server, not taken from the client's word). Unit tests drive dashi_registry and
 * dashi_codec_new_for_config against it: lookups and their caches, registration,
 * subjects, schema evolution, every failure class and whether it is retriable,
 * basic auth. The last test runs the product: `dashi publish` with the registry →
 * `dashi run` with it (real redis-server, librdkafka's mock cluster) → `dashi tail`
 * with it, whose outputs must equal `dashi replay` of the same events, and a record
 * with an id the registry does not know must land in the dead-letter topic.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consumers/codec.h"
#include "consumers/config.h"
#include "consumers/registry.h"
#include "core/event.h"
#include "tests/support/live.h"
#include "tests/support/proc.h"
#include "tests/support/registry_server.h"

#define SAMPLES DASHI_SOURCE_DIR "/tests/data/events/all-types.ndjson"

static dashi_test_registry *srv;

static void start_registry(void) {
    char err[256];
    srv = dashi_test_registry_start(err, sizeof(err));
    cr_assert(srv, "test registry: %s", err);
}

static void stop_registry(void) {
    dashi_test_registry_stop(srv);
    srv = NULL;
}

/* ---- helpers ---- */

/* The first sample of type in tests/data/events/all-types.ndjson. */
static void sample(const char *type, dashi_event *ev) {
    FILE *f = fopen(SAMPLES, "r");
    char line[8192], needle[64], err[256] = "";
    cr_assert(f, "cannot open %s", SAMPLES);
    snprintf(needle, sizeof(needle), "\"type\": \"%s\"", type);
    while (fgets(line, sizeof(line), f)) {
        if (!strstr(line, needle))
            continue;
        fclose(f);
        memset(ev, 0, sizeof(*ev));
        cr_assert_eq(dashi_event_parse(line, strlen(line), ev, err, sizeof(err)), DASHI_OK, "%s", err);
        return;
    }
    fclose(f);
    cr_assert_fail("no sample %s", type);
}

/* A default configuration pointing at url, with extra "key=value" settings (NULL-terminated). */
static dashi_config *config_for(const char *url, ...) {
    char err[256];
    va_list ap;
    dashi_config *cfg = dashi_config_new_default(err, sizeof(err));
    cr_assert(cfg, "%s", err);
    if (url)
        cr_assert_eq(dashi_config_set(cfg, "schema_registry.url", url, err, sizeof(err)), DASHI_OK, "%s", err);
    va_start(ap, url);
    for (const char *kv = va_arg(ap, const char *); kv; kv = va_arg(ap, const char *)) {
        char key[128];
        const char *eq = strchr(kv, '=');
        cr_assert(eq);
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        cr_assert_eq(dashi_config_set(cfg, key, eq + 1, err, sizeof(err)), DASHI_OK, "%s", err);
    }
    va_end(ap);
    return cfg;
}

static dashi_codec *registry_codec(const dashi_config *cfg, uint32_t prepare) {
    char err[1024] = "";
    dashi_codec *c = dashi_codec_new_for_config(cfg, prepare, err, sizeof(err));
    cr_assert(c, "codec: %s", err);
    return c;
}

/* ev in the wire format with schema id `id` (the body written with dashi's current
 * schema), followed by extra body bytes. malloc'ed. */
static unsigned char *frame(const dashi_event *ev, int32_t id, const void *extra, size_t extra_len, size_t *len) {
    char err[256] = "";
    void *buf = NULL;
    size_t n = 0;
    dashi_codec *plain = dashi_codec_new(err, sizeof(err));
    cr_assert(plain, "%s", err);
    cr_assert_eq(dashi_codec_encode(plain, ev, &buf, &n, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_codec_destroy(plain);
    unsigned char *out = malloc(n + extra_len);
    memcpy(out, buf, n);
    if (extra_len)
        memcpy(out + n, extra, extra_len);
    free(buf);
    out[1] = (unsigned char)((uint32_t)id >> 24);
    out[2] = (unsigned char)((uint32_t)id >> 16);
    out[3] = (unsigned char)((uint32_t)id >> 8);
    out[4] = (unsigned char)id;
    *len = n + extra_len;
    return out;
}

static int32_t frame_id(const void *buf) {
    const unsigned char *p = buf;
    return (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4]);
}

/* Decode buf and expect the same JSON as want. */
static void expect_decodes_to(dashi_codec *c, const void *buf, size_t len, const dashi_event *want) {
    char err[1024] = "";
    dashi_event got;
    memset(&got, 0, sizeof(got));
    cr_assert_eq(dashi_codec_decode(c, buf, len, &got, err, sizeof(err)), DASHI_OK, "decode: %s", err);
    char *a = dashi_event_dump(want), *b = dashi_event_dump(&got);
    cr_expect_str_eq(b, a);
    free(a);
    free(b);
    dashi_event_clear(&got);
}

/* Decode buf expecting failure err; the message in msg. */
static dashi_err decode_fails(dashi_codec *c, const void *buf, size_t len, char *msg, size_t msg_size) {
    dashi_event got;
    memset(&got, 0, sizeof(got));
    msg[0] = '\0';
    dashi_err err = dashi_codec_decode(c, buf, len, &got, msg, msg_size);
    cr_assert_neq(err, DASHI_OK, "decode succeeded unexpectedly");
    return err;
}

/* ---- no registry: exactly as before ---- */

Test(registry, without_url_the_fixed_ids_are_used) {
    char err[256];
    dashi_config *cfg = config_for(NULL, NULL);
    dashi_codec *c = dashi_codec_new_for_config(cfg, DASHI_CODEC_OUTPUT_TYPES, err, sizeof(err));
    cr_assert(c, "%s", err);
    for (int t = 0; t < DASHI_EV__COUNT; t++)
        cr_expect_eq(dashi_codec_schema_id(c, (dashi_event_type)t), t + 1);
    dashi_codec_destroy(c);
    cr_expect_null(dashi_registry_new(cfg, err, sizeof(err)), "a client without a URL");
    cr_expect(strstr(err, "schema_registry.url"), "%s", err);
    dashi_config_destroy(cfg);
    dashi_registry_destroy(NULL);
}

/* ---- reader side ---- */

Test(registry, id_lookup_and_caching, .init = start_registry, .fini = stop_registry) {
    dashi_event want;
    size_t len;
    sample("OrderPaid", &want);
    char *schema = dashi_event_avro_schema_text(DASHI_EV_ORDER_PAID);
    int32_t id = dashi_test_registry_add(srv, "order-dashi.v1.OrderPaid", schema);
    cr_assert_geq(id, 1001);
    unsigned char *buf = frame(&want, id, NULL, 0, &len);
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), NULL);
    dashi_codec *c = registry_codec(cfg, 0);
    cr_expect_eq(dashi_test_registry_requests(srv), 0, "start-up without prepared types makes no request");

    expect_decodes_to(c, buf, len, &want);
    char path[64];
    snprintf(path, sizeof(path), "GET /schemas/ids/%d", (int)id);
    cr_expect_eq(dashi_test_registry_count(srv, path), 1, "one GET for a new id");
    cr_expect_eq(dashi_test_registry_requests(srv), 1);
    for (int i = 0; i < 50; i++)
        expect_decodes_to(c, buf, len, &want);
    cr_expect_eq(dashi_test_registry_requests(srv), 1, "the id is cached: no request after the first decode");
    /* an id fetched for decoding is not used to encode: dashi registers its own */
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID), -1);

    /* the client alone: cached after one GET, the text is the registry's */
    char err[512];
    const char *got = NULL;
    dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_assert(reg, "%s", err);
    cr_assert_eq(dashi_registry_schema_by_id(reg, id, &got, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_str_eq(got, schema);
    cr_assert_eq(dashi_registry_schema_by_id(reg, id, &got, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(dashi_registry_requests(reg), 1);
    cr_expect_eq(dashi_test_registry_requests(srv), 2);
    dashi_registry_destroy(reg);

    free(buf);
    free(schema);
    dashi_event_clear(&want);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

/* Avro binary of a long (zig-zag varint) into p; its length. */
static size_t avro_long(int64_t v, unsigned char *p) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    do {
        p[n] = (unsigned char)(z & 0x7f);
        z >>= 7;
        if (z)
            p[n] |= 0x80;
        n++;
    } while (z);
    return n;
}

Test(registry, writer_with_an_extra_optional_field_decodes_into_the_reader_schema, .init = start_registry,
     .fini = stop_registry) {
    dashi_event want;
    size_t len;
    sample("OrderPaid", &want);
    /* a newer producer: dashi's OrderPaid with one more optional field at the end */
    json_t *s = dashi_event_avro_schema(DASHI_EV_ORDER_PAID);
    json_array_append_new(json_object_get(s, "fields"),
                          json_pack("{s:s, s:[s,s], s:n}", "name", "channel", "type", "null", "string", "default"));
    char *writer = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    int32_t id = dashi_test_registry_add(srv, "order-dashi.v1.OrderPaid", writer);
    cr_assert_geq(id, 1001);
    /* its body: dashi's fields, then the union branch 1 (string) and "mobile-app" */
    unsigned char extra[32];
    size_t n = avro_long(1, extra);
    n += avro_long(10, extra + n);
    memcpy(extra + n, "mobile-app", 10);
    n += 10;
    unsigned char *buf = frame(&want, id, extra, n, &len);

    dashi_config *cfg = config_for(dashi_test_registry_url(srv), NULL);
    dashi_codec *c = registry_codec(cfg, 0);
    expect_decodes_to(c, buf, len, &want);
    expect_decodes_to(c, buf, len, &want);
    cr_expect_eq(dashi_test_registry_requests(srv), 1);
    /* the writer schema is enforced: without the extra bytes the body is truncated */
    char msg[1024];
    cr_expect_eq(decode_fails(c, buf, len - n, msg, sizeof(msg)), DASHI_ERR_PARSE, "%s", msg);

    free(buf);
    free(writer);
    dashi_event_clear(&want);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

Test(registry, unknown_id_is_not_retriable_and_is_remembered, .init = start_registry, .fini = stop_registry) {
    dashi_event ev;
    size_t len;
    char msg[1024];
    sample("OrderPaid", &ev);
    unsigned char *buf = frame(&ev, 4242, NULL, 0, &len);
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), NULL);
    dashi_codec *c = registry_codec(cfg, 0);

    dashi_err err = decode_fails(c, buf, len, msg, sizeof(msg));
    cr_expect_eq(err, DASHI_ERR_NOT_FOUND, "%s", msg);
    cr_expect_not(dashi_err_retriable(err), "an unknown id must go to the dead-letter topic, not be retried");
    cr_expect(strstr(msg, "unknown schema id 4242"), "the reason names the id: %s", msg);
    cr_expect(strstr(msg, "404") && strstr(msg, "40403"), "the registry's answer is in the reason: %s", msg);
    /* within schema_registry.unknown_id_ttl_ms the registry is not asked again */
    err = decode_fails(c, buf, len, msg, sizeof(msg));
    cr_expect_eq(err, DASHI_ERR_NOT_FOUND, "%s", msg);
    cr_expect(strstr(msg, "4242"), "%s", msg);
    cr_expect_eq(dashi_test_registry_requests(srv), 1, "a known-unknown id costs no request");
    /* once it exists, a fresh client (or the TTL passing) finds it */
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
    cfg = config_for(dashi_test_registry_url(srv), "schema_registry.unknown_id_ttl_ms=0", NULL);
    c = registry_codec(cfg, 0);
    cr_expect_eq(decode_fails(c, buf, len, msg, sizeof(msg)), DASHI_ERR_NOT_FOUND);
    cr_expect_eq(decode_fails(c, buf, len, msg, sizeof(msg)), DASHI_ERR_NOT_FOUND);
    cr_expect_eq(dashi_test_registry_requests(srv), 3, "with a TTL of 0 every miss asks");
    char *schema = dashi_event_avro_schema_text(DASHI_EV_ORDER_PAID);
    dashi_test_registry_put(srv, 4242, schema, NULL);
    expect_decodes_to(c, buf, len, &ev);

    free(schema);
    free(buf);
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

Test(registry, server_error_is_retriable_and_recovers, .init = start_registry, .fini = stop_registry) {
    dashi_event ev;
    size_t len;
    char msg[1024];
    sample("AccountRegistered", &ev);
    char *schema = dashi_event_avro_schema_text(DASHI_EV_ACCOUNT_REGISTERED);
    int32_t id = dashi_test_registry_add(srv, "registration-value", schema);
    unsigned char *buf = frame(&ev, id, NULL, 0, &len);
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), NULL);
    dashi_codec *c = registry_codec(cfg, 0);

    static const int statuses[] = {500, 503, 429};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        dashi_test_registry_fail_with(srv, statuses[i]);
        dashi_err err = decode_fails(c, buf, len, msg, sizeof(msg));
        cr_expect(dashi_err_retriable(err), "HTTP %d must be retriable, got %s: %s", statuses[i], dashi_err_str(err),
                  msg);
        char code[16];
        snprintf(code, sizeof(code), "HTTP %d", statuses[i]);
        cr_expect(strstr(msg, code), "the status is in the message: %s", msg);
        cr_expect(strstr(msg, dashi_test_registry_url(srv)), "the URL is in the message: %s", msg);
    }
    /* a failure is not cached: the registry back, the same record decodes */
    dashi_test_registry_fail_with(srv, 0);
    expect_decodes_to(c, buf, len, &ev);
    /* and registering fails the same way: encode of an unprepared type */
    dashi_test_registry_fail_with(srv, 500);
    void *out = NULL;
    size_t olen = 0;
    dashi_err err = dashi_codec_encode(c, &ev, &out, &olen, msg, sizeof(msg));
    cr_expect(dashi_err_retriable(err), "%s: %s", dashi_err_str(err), msg);
    cr_expect_null(out);
    dashi_test_registry_fail_with(srv, 0);
    cr_assert_eq(dashi_codec_encode(c, &ev, &out, &olen, msg, sizeof(msg)), DASHI_OK, "%s", msg);
    cr_expect_eq(frame_id(out), id, "the registry's id for the same schema");
    free(out);

    free(schema);
    free(buf);
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

Test(registry, server_down_is_retriable_with_the_url, .init = start_registry) {
    char url[64], msg[1024];
    dashi_event ev;
    size_t len;
    snprintf(url, sizeof(url), "%s", dashi_test_registry_url(srv));
    stop_registry(); /* nothing listens on that port any more */
    sample("OrderPaid", &ev);
    unsigned char *buf = frame(&ev, 1001, NULL, 0, &len);
    dashi_config *cfg = config_for(url, "schema_registry.timeout_ms=2000", NULL);
    dashi_codec *c = registry_codec(cfg, 0);

    dashi_err err = decode_fails(c, buf, len, msg, sizeof(msg));
    cr_expect_eq(err, DASHI_ERR_TRANSPORT, "%s: %s", dashi_err_str(err), msg);
    cr_expect(dashi_err_retriable(err));
    cr_expect(strstr(msg, url), "the URL is in the message: %s", msg);
    /* start-up with types to prepare fails with the same story */
    dashi_codec *c2 = dashi_codec_new_for_config(cfg, DASHI_CODEC_OUTPUT_TYPES, msg, sizeof(msg));
    cr_expect_null(c2);
    cr_expect(strstr(msg, url) && strstr(msg, "SamePersonDecision"), "%s", msg);

    free(buf);
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

Test(registry, a_slow_registry_times_out, .init = start_registry, .fini = stop_registry) {
    char msg[1024];
    const char *schema = NULL;
    struct timespec t0, t1;
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), "schema_registry.timeout_ms=300", NULL);
    dashi_registry *reg = dashi_registry_new(cfg, msg, sizeof(msg));
    cr_assert(reg, "%s", msg);
    dashi_test_registry_delay_ms(srv, 2000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dashi_err err = dashi_registry_schema_by_id(reg, 1001, &schema, msg, sizeof(msg));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_eq(err, DASHI_ERR_TRANSPORT, "%s", msg);
    cr_expect(took < 1.5, "timeout 300 ms, took %.2f s", took);
    cr_expect(strstr(msg, "/schemas/ids/1001"), "%s", msg);
    dashi_registry_destroy(reg);
    dashi_config_destroy(cfg);
}

/* ---- writer side ---- */

Test(registry, registering_returns_the_id_and_is_cached, .init = start_registry, .fini = stop_registry) {
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), NULL);
    dashi_codec *c = registry_codec(cfg, DASHI_CODEC_OUTPUT_TYPES);
    char subject[128], err[1024];
    /* start-up registered the five outputs under TOPIC-value */
    cr_expect_eq(dashi_test_registry_count(srv, "POST /subjects/"), 5);
    for (int t = DASHI_EV__FIRST_OUTPUT; t < DASHI_EV__COUNT; t++) {
        snprintf(subject, sizeof(subject), "%s-value", dashi_config_topic(cfg, (dashi_event_type)t));
        int32_t id = dashi_test_registry_subject_id(srv, subject);
        cr_expect_geq(id, 1001, "%s registered", subject);
        cr_expect_eq(dashi_codec_schema_id(c, (dashi_event_type)t), id, "%s", subject);
    }
    /* encoding outputs makes no further request and carries the registry's id */
    dashi_event ev;
    void *buf = NULL;
    size_t len = 0;
    sample("CommissionEvent", &ev);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(dashi_codec_encode(c, &ev, &buf, &len, err, sizeof(err)), DASHI_OK, "%s", err);
        cr_expect_eq(frame_id(buf), dashi_test_registry_subject_id(srv, "commission-value"));
        if (i == 0)
            expect_decodes_to(c, buf, len, &ev); /* the id registered here decodes without a GET */
        free(buf);
    }
    cr_expect_eq(dashi_test_registry_requests(srv), 5);
    dashi_event_clear(&ev);
    /* an input type on a shared topic is registered on first encode, under TOPIC-Type */
    sample("OrderRefunded", &ev);
    cr_assert_eq(dashi_codec_encode(c, &ev, &buf, &len, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(frame_id(buf), dashi_test_registry_subject_id(srv, "order-dashi.v1.OrderRefunded"));
    free(buf);
    cr_expect_eq(dashi_test_registry_requests(srv), 6);
    dashi_event_clear(&ev);

    /* the client alone: one POST per (subject, schema), the same id for the same schema */
    dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_assert(reg, "%s", err);
    char *schema = dashi_event_avro_schema_text(DASHI_EV_TIER_ASSIGNED);
    int32_t a = -1, b = -1;
    cr_assert_eq(dashi_registry_id_for(reg, "tier-value", schema, &a, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(dashi_registry_id_for(reg, "tier-value", schema, &b, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(a, dashi_codec_schema_id(c, DASHI_EV_TIER_ASSIGNED), "already registered: the same id");
    cr_expect_eq(a, b);
    cr_expect_eq(dashi_registry_requests(reg), 1);
    const char *text = NULL;
    cr_assert_eq(dashi_registry_schema_by_id(reg, a, &text, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(dashi_registry_requests(reg), 1, "a registered schema is cached under its id");
    free(schema);
    dashi_registry_destroy(reg);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

Test(registry, subjects_by_strategy) {
    static const struct {
        const char *strategy, *order_paid, *commission;
    } cases[] = {
        {"auto", "order-dashi.v1.OrderPaid", "commission-value"},
        {"topic", "order-value", "commission-value"},
        {"topic_record", "order-dashi.v1.OrderPaid", "commission-dashi.v1.CommissionEvent"},
        {"record", "dashi.v1.OrderPaid", "dashi.v1.CommissionEvent"},
    };
    char err[512], kv[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(kv, sizeof(kv), "schema_registry.subject_strategy=%s", cases[i].strategy);
        dashi_config *cfg = config_for("http://127.0.0.1:9", kv, NULL);
        dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
        cr_assert(reg, "%s", err);
        cr_expect_str_eq(dashi_registry_subject(reg, DASHI_EV_ORDER_PAID), cases[i].order_paid);
        cr_expect_str_eq(dashi_registry_subject(reg, DASHI_EV_COMMISSION_EVENT), cases[i].commission);
        cr_expect_eq(dashi_registry_requests(reg), 0);
        dashi_registry_destroy(reg);
        dashi_config_destroy(cfg);
    }
    /* auto follows the configured topic names */
    dashi_config *cfg = config_for("http://127.0.0.1:9", "topic.registration=signups", NULL);
    dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_assert(reg, "%s", err);
    cr_expect_str_eq(dashi_registry_subject(reg, DASHI_EV_ACCOUNT_REGISTERED), "signups-value");
    cr_expect_str_eq(dashi_registry_subject(reg, DASHI_EV_CAMPAIGN_ENROLLED), "account-dashi.v1.CampaignEnrolled");
    cr_expect_null(dashi_registry_subject(reg, DASHI_EV__COUNT));
    dashi_registry_destroy(reg);
    /* a typo is refused by the configuration itself */
    cr_expect_eq(dashi_config_set(cfg, "schema_registry.subject_strategy", "topic-name", err, sizeof(err)),
                 DASHI_ERR_INVALID);
    cr_expect(strstr(err, "auto|topic|topic_record|record"), "%s", err);
    dashi_config_destroy(cfg);
}

Test(registry, topic_strategy_on_a_shared_topic_is_refused_by_the_registry, .init = start_registry,
     .fini = stop_registry) {
    /* why "auto" exists: one subject per topic cannot hold OrderPaid and OrderRefunded */
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), "schema_registry.subject_strategy=topic", NULL);
    dashi_codec *c = registry_codec(cfg, 1u << DASHI_EV_ORDER_PAID);
    dashi_event ev;
    void *buf = NULL;
    size_t len = 0;
    char err[1024];
    sample("OrderRefunded", &ev);
    dashi_err rc = dashi_codec_encode(c, &ev, &buf, &len, err, sizeof(err));
    cr_expect_eq(rc, DASHI_ERR_BACKEND, "%s: %s", dashi_err_str(rc), err);
    cr_expect_not(dashi_err_retriable(rc));
    cr_expect(strstr(err, "HTTP 409") && strstr(err, "incompatible"), "%s", err);
    cr_expect(strstr(err, "/subjects/order-value/versions"), "%s", err);
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

Test(registry, lookup_only_without_auto_register, .init = start_registry, .fini = stop_registry) {
    char err[1024];
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), "schema_registry.auto_register=false", NULL);
    /* nothing registered yet: start-up fails, naming the subject, and registers nothing */
    cr_expect_null(dashi_codec_new_for_config(cfg, 1u << DASHI_EV_FRAUD_ALERT, err, sizeof(err)));
    cr_expect(strstr(err, "fraud-alert-value") && strstr(err, "404"), "%s", err);
    cr_expect_eq(dashi_test_registry_subjects(srv), 0);
    cr_expect_eq(dashi_test_registry_count(srv, "POST /subjects/fraud-alert-value/versions"), 0);
    /* registered by someone else: looked up */
    char *schema = dashi_event_avro_schema_text(DASHI_EV_FRAUD_ALERT);
    int32_t id = dashi_test_registry_add(srv, "fraud-alert-value", schema);
    dashi_codec *c = registry_codec(cfg, 1u << DASHI_EV_FRAUD_ALERT);
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_FRAUD_ALERT), id);
    cr_expect_eq(dashi_test_registry_count(srv, "POST /subjects/fraud-alert-value"), 2);
    cr_expect_eq(dashi_test_registry_count(srv, "POST /subjects/fraud-alert-value/versions"), 0);
    free(schema);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

/* ---- bad schemas ---- */

Test(registry, a_schema_that_is_no_dashi_event_is_bad_input, .init = start_registry, .fini = stop_registry) {
    dashi_event ev;
    size_t len;
    char msg[1024];
    sample("OrderPaid", &ev);
    dashi_test_registry_put(srv, 7001,
                            "{\"type\":\"record\",\"name\":\"Foo\",\"namespace\":\"com.example\","
                            "\"fields\":[{\"name\":\"x\",\"type\":\"long\"}]}",
                            NULL);
    dashi_test_registry_put(srv, 7002, "\"string\"", NULL);
    dashi_test_registry_put(srv, 7003, "syntax = \"proto3\"; message OrderPaid { string uid = 1; }", "PROTOBUF");
    /* a record named like a dashi event but missing its required fields */
    dashi_test_registry_put(srv, 7004,
                            "{\"type\":\"record\",\"name\":\"OrderPaid\",\"namespace\":\"dashi.v1\","
                            "\"fields\":[{\"name\":\"x\",\"type\":\"long\"}]}",
                            NULL);
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), NULL);
    dashi_codec *c = registry_codec(cfg, 0);
    static const struct {
        int32_t id;
        const char *says;
    } cases[] = {{7001, "not a dashi event"}, {7002, "not a dashi event"}, {7003, "PROTOBUF"}, {7004, "missing"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *buf = frame(&ev, cases[i].id, NULL, 0, &len);
        dashi_err err = decode_fails(c, buf, len, msg, sizeof(msg));
        cr_expect_eq(err, DASHI_ERR_INVALID, "id %d: %s: %s", (int)cases[i].id, dashi_err_str(err), msg);
        cr_expect(strstr(msg, cases[i].says), "id %d: %s", (int)cases[i].id, msg);
        char id[16];
        snprintf(id, sizeof(id), "%d", (int)cases[i].id);
        cr_expect(strstr(msg, id), "the reason names the id: %s", msg);
        free(buf);
    }
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
    dashi_config_destroy(cfg);
}

/* ---- authentication and secrets ---- */

Test(registry, basic_auth_header_is_sent, .init = start_registry, .fini = stop_registry) {
    char err[1024];
    setenv("DASHI_TEST_REGISTRY_PW", "s3cret pass", 1);
    dashi_test_registry_require_auth(srv, "dashi", "s3cret pass");
    dashi_config *cfg = config_for(dashi_test_registry_url(srv), "schema_registry.user=dashi",
                                   "schema_registry.password=env:DASHI_TEST_REGISTRY_PW", NULL);
    dashi_codec *c = registry_codec(cfg, 1u << DASHI_EV_TIER_ASSIGNED);
    char *auth = dashi_test_registry_last_auth(srv);
    cr_expect_str_eq(auth, "Basic ZGFzaGk6czNjcmV0IHBhc3M=", "base64(\"dashi:s3cret pass\")");
    free(auth);
    cr_expect_geq(dashi_codec_schema_id(c, DASHI_EV_TIER_ASSIGNED), 1001);
    dashi_codec_destroy(c);
    /* a wrong password: 401, retriable (the record is not at fault), the password never shown */
    setenv("DASHI_TEST_REGISTRY_PW", "wrong", 1);
    cr_expect_null(dashi_codec_new_for_config(cfg, 1u << DASHI_EV_FRAUD_ALERT, err, sizeof(err)));
    cr_expect(strstr(err, "HTTP 401"), "%s", err);
    cr_expect_not(strstr(err, "wrong"), "%s", err);
    dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_assert(reg, "%s", err);
    const char *s = NULL;
    dashi_err rc = dashi_registry_schema_by_id(reg, 1001, &s, err, sizeof(err));
    cr_expect_eq(rc, DASHI_ERR_TRANSPORT, "%s", err);
    dashi_registry_destroy(reg);
    /* no auth configured: no header */
    dashi_config_destroy(cfg);
    cfg = config_for(dashi_test_registry_url(srv), NULL);
    reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_assert(reg, "%s", err);
    dashi_registry_schema_by_id(reg, 1001, &s, err, sizeof(err));
    auth = dashi_test_registry_last_auth(srv);
    cr_expect_str_eq(auth, "");
    free(auth);
    dashi_registry_destroy(reg);
    dashi_config_destroy(cfg);
}

Test(registry, password_references) {
    char err[512], dir[256], ref[600], path[512];
    /* the password itself is refused; user and password go together */
    dashi_config *cfg = config_for("http://127.0.0.1:9", "schema_registry.user=u", "schema_registry.password=hunter2",
                                   NULL);
    cr_expect_null(dashi_registry_new(cfg, err, sizeof(err)));
    cr_expect(strstr(err, "env:NAME or file:/path"), "%s", err);
    cr_expect_not(strstr(err, "hunter2"), "%s", err);
    dashi_config_destroy(cfg);
    cfg = config_for("http://127.0.0.1:9", "schema_registry.user=u", NULL);
    cr_expect_null(dashi_registry_new(cfg, err, sizeof(err)));
    cr_expect(strstr(err, "schema_registry.password"), "%s", err);
    dashi_config_destroy(cfg);
    unsetenv("DASHI_TEST_NO_SUCH_VAR");
    cfg = config_for("http://127.0.0.1:9", "schema_registry.user=u", "schema_registry.password=env:DASHI_TEST_NO_SUCH_VAR",
                     NULL);
    cr_expect_null(dashi_registry_new(cfg, err, sizeof(err)));
    cr_expect(strstr(err, "DASHI_TEST_NO_SUCH_VAR"), "%s", err);
    dashi_config_destroy(cfg);
    /* file: only when the owner alone can read it */
    cr_assert(dashi_test_tmpdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/pw", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("from-a-file\n", f);
    fclose(f);
    chmod(path, 0644);
    snprintf(ref, sizeof(ref), "schema_registry.password=file:%s", path);
    cfg = config_for("http://127.0.0.1:9", "schema_registry.user=u", ref, NULL);
    cr_expect_null(dashi_registry_new(cfg, err, sizeof(err)));
    cr_expect(strstr(err, "chmod 600"), "%s", err);
    chmod(path, 0600);
    dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_expect(reg, "%s", err);
    dashi_registry_destroy(reg);
    dashi_config_destroy(cfg);
    unlink(path);
    rmdir(dir);
    /* only http(s) */
    cfg = config_for("ftp://127.0.0.1/", NULL);
    cr_expect_null(dashi_registry_new(cfg, err, sizeof(err)));
    dashi_config_destroy(cfg);
}

Test(registry, credentials_in_the_url_are_masked, .init = start_registry) {
    char url[128], err[1024];
    const char *s = NULL;
    /* the server is stopped: every request fails and the message shows the URL */
    snprintf(url, sizeof(url), "http://someone:topsecret@%s", dashi_test_registry_url(srv) + 7);
    stop_registry();
    dashi_config *cfg = config_for(url, NULL);
    dashi_registry *reg = dashi_registry_new(cfg, err, sizeof(err));
    cr_assert(reg, "%s", err);
    cr_expect_eq(dashi_registry_schema_by_id(reg, 1001, &s, err, sizeof(err)), DASHI_ERR_TRANSPORT);
    cr_expect_not(strstr(err, "topsecret"), "%s", err);
    cr_expect(strstr(err, "http://***@127.0.0.1:"), "%s", err);
    cr_expect_not(strstr(dashi_registry_url(reg), "topsecret"));
    dashi_registry_destroy(reg);
    dashi_config_destroy(cfg);
}

/* ---- the product: publish → run → tail, all with the registry ---- */

#define UNTIL DASHI_TEST_LIVE_UNTIL

static void live_setup(void) {
    start_registry();
    dashi_test_live_setup(4, NULL);
}

static void live_teardown(void) {
    dashi_test_live_teardown();
    stop_registry();
}

/* The sorted distinct lines of file, as one string (malloc'ed). */
static char *sorted_set(const char *file) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "LC_ALL=C sort -u '%s' > '%s.sorted'", file, file);
    cr_assert_eq(system(cmd), 0, "sort %s", file);
    snprintf(cmd, sizeof(cmd), "%s.sorted", file);
    char *s = dashi_test_slurp(cmd, NULL);
    cr_assert(s, "cannot read %s", cmd);
    return s;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(registry_live, publish_run_tail_with_the_registry_equal_replay, .init = live_setup, .fini = live_teardown,
     .timeout = 300) {
    const char *url = dashi_test_registry_url(srv);
    char reg_set[128];
    snprintf(reg_set, sizeof(reg_set), "schema_registry.url=%s", url);

    dashi_test_live_gen("events.ndjson", "21", "30", "300");
    const char *pub[] = {DASHI_BINARY,
                         "publish",
                         "--bootstrap",
                         dashi_test_live_boot(),
                         "--schema-registry",
                         url,
                         "--in",
                         dashi_test_live_path("events.ndjson"),
                         NULL};
    cr_assert_eq(dashi_test_run(pub, NULL, dashi_test_live_path("publish.log")), 0, "dashi publish failed (see %s)",
                 dashi_test_live_path("publish.log"));
    /* publish registered the input schemas: one subject per single-type topic, TOPIC-Type on shared ones */
    cr_expect_geq(dashi_test_registry_subject_id(srv, "registration-value"), 1001);
    cr_expect_geq(dashi_test_registry_subject_id(srv, "order-dashi.v1.OrderPaid"), 1001);
    cr_expect_eq(dashi_test_registry_count(srv, "GET "), 0);
    size_t input_subjects = dashi_test_registry_subjects(srv);
    cr_expect_geq(input_subjects, 5, "the generated stream has at least five input types");

    /* a record whose id the registry does not know: 99999 = 00 01 86 9f */
    FILE *f = fopen(dashi_test_live_path("unknown-id.bin"), "w");
    cr_assert(f);
    fwrite("\x00\x00\x01\x86\x9f\x02\x04xy", 1, 9, f);
    fputc('\n', f);
    fclose(f);
    const char *raw[] = {DASHI_BINARY,           "publish", "--bootstrap",
                         dashi_test_live_boot(), "--in",    dashi_test_live_path("unknown-id.bin"),
                         "--raw-topic",          "order",   NULL};
    cr_assert_eq(dashi_test_run(raw, NULL, dashi_test_live_path("publish-raw.log")), 0, "raw publish failed");

    /* a run that meets a registry failing every lookup waits, dead-letters nothing, and
     * when stopped exits with the registry's error, having applied nothing */
    dashi_test_registry_fail_gets(srv, 1 << 30, 503);
    const char *run[] = {"--set", "merge.wait_ms=100", "--set", reg_set, "--exit-idle", "2500", "--clock-until", UNTIL,
                         NULL};
    pid_t pid = dashi_test_live_spawn_run("g-registry", "live:", dashi_test_live_path("run-outage.log"), run);
    cr_assert(pid > 0);
    for (int i = 0; i < 300 && dashi_test_registry_count_status(srv, "GET /schemas/ids/", 503) < 3; i++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect_geq(dashi_test_registry_count_status(srv, "GET /schemas/ids/", 503), 3, "the run never looked an id up");
    kill(pid, SIGTERM);
    int rc = dashi_test_wait(pid);
    char *outage = dashi_test_slurp(dashi_test_live_path("run-outage.log"), NULL);
    cr_expect_eq(rc, 1, "stopped while the registry failed: exit 1 (%d)", rc);
    cr_expect(outage && strstr(outage, "HTTP 503") && !strstr(outage, "dead letter"), "%.1500s", outage ? outage : "");
    cr_expect(outage && strstr(outage, "dashi run: schema registry GET"), "the exit names the registry:\n%.1500s",
              outage ? outage : "");
    free(outage);
    dashi_test_registry_fail_gets(srv, 0, 0);
    unsigned failed_before = dashi_test_registry_count_status(srv, "GET /schemas/ids/", 503);

    /* the next run (same state; another group, not to wait out the first member's session on the mock)
     * meets five failed lookups: retried, never dead-lettered */
    dashi_test_registry_fail_gets(srv, 5, 503);
    cr_assert_eq(
        dashi_test_wait(dashi_test_live_spawn_run("g-registry-2", "live:", dashi_test_live_path("run.log"), run)), 0,
        "dashi run failed (see %s)", dashi_test_live_path("run.log"));
    /* the run fetched each input id once (plus the unknown one) and registered the five outputs */
    unsigned gets = dashi_test_registry_count_status(srv, "GET /schemas/ids/", 200);
    cr_expect_eq(dashi_test_registry_count_status(srv, "GET /schemas/ids/", 503) - failed_before, 5);
    cr_expect_leq(gets, input_subjects, "%u lookups for %zu input schemas: ids are cached", gets, input_subjects);
    cr_expect_geq(gets, 2);
    cr_expect_eq(dashi_test_registry_count_status(srv, "GET /schemas/ids/99999", 404), 1);
    cr_expect_geq(dashi_test_registry_subject_id(srv, "commission-value"), 1001);
    char *runlog = dashi_test_slurp(dashi_test_live_path("run.log"), NULL);
    cr_expect(runlog && strstr(runlog, "retrying") && strstr(runlog, "HTTP 503"), "no retry logged:\n%.1000s",
              runlog ? runlog : "");
    free(runlog);

    const char *tail[] = {DASHI_BINARY, "tail", "--bootstrap", dashi_test_live_boot(), "--schema-registry", url,
                          "--idle-ms",  "3000", NULL};
    cr_assert_eq(dashi_test_run(tail, dashi_test_live_path("live.ndjson"), dashi_test_live_path("tail.log")), 0,
                 "dashi tail failed");
    const char *replay[] = {DASHI_BINARY,
                            "replay",
                            "--in",
                            dashi_test_live_path("events.ndjson"),
                            "--out",
                            dashi_test_live_path("expected.ndjson"),
                            "--until",
                            UNTIL,
                            "--quiet",
                            "--rejects",
                            dashi_test_live_path("rejects.txt"),
                            NULL};
    cr_assert_eq(dashi_test_run(replay, NULL, dashi_test_live_path("replay.log")), 0, "dashi replay failed");

    /* the dead letter names the id */
    char *live = dashi_test_slurp(dashi_test_live_path("live.ndjson"), NULL);
    cr_assert(live);
    size_t dead = 0;
    const char *first_dead = strstr(live, "{\"type\":\"DeadLetter\",\"headers\"");
    for (const char *s = first_dead; s; s = strstr(s + 1, "{\"type\":\"DeadLetter\",\"headers\""))
        dead++;
    cr_expect_eq(dead, 1, "one dead letter (the unknown id), got %zu:\n%.1500s", dead, first_dead ? first_dead : "");
    cr_expect(strstr(live, "unknown schema id 99999"), "the reason names the id");
    free(live);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "grep -v '\"type\":\"DeadLetter\"' '%s' > '%s'", dashi_test_live_path("live.ndjson"),
             dashi_test_live_path("live-good.ndjson"));
    cr_assert_eq(system(cmd), 0);
    char *want = sorted_set(dashi_test_live_path("expected.ndjson")),
         *got = sorted_set(dashi_test_live_path("live-good.ndjson"));
    cr_expect_gt(count_lines(want), 100, "the reference has only %zu outputs", count_lines(want));
    cr_expect(strcmp(want, got) == 0, "live outputs (%zu distinct) differ from replay (%zu distinct); see %s",
              count_lines(got), count_lines(want), dashi_test_live_dir());
    free(want);
    free(got);

    /* the outputs really carry the registry's ids: without it they cannot be read */
    const char *plain[] = {DASHI_BINARY, "tail", "--bootstrap", dashi_test_live_boot(), "--topic", "commission",
                           "--idle-ms",  "2000", NULL};
    cr_assert_eq(dashi_test_run(plain, dashi_test_live_path("plain.ndjson"), dashi_test_live_path("plain.log")), 0);
    char *log = dashi_test_slurp(dashi_test_live_path("plain.log"), NULL);
    cr_expect(log && strstr(log, "unknown schema id 10"), "a tail without the registry should not know the ids:\n%.500s",
              log ? log : "");
    free(log);
}
