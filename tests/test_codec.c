/* test_codec.c — Avro schemas, Confluent framing, hostile bytes, schema evolution, `dashi schemas`.
 *
 * Round trip: every line of tests/data/events/all-types.ndjson goes JSON -> struct
 * -> wire -> struct -> JSON unchanged. Hostile input: wrong magic byte, unknown id,
 * every truncation of every sample, random byte flips and random bodies, claimed
 * lengths and counts far beyond the buffer, trailing bytes: each must fail cleanly
 * (run this under -DDASHI_SANITIZE=ON too). Evolution: writer schemas built from the
 * current one with extra fields (optional, and with a default), one lacking optional
 * fields, one lacking a required field; values for them are built with avro-c
 * directly. The command is tested by compiling cli/cmd_schemas.c into this program
 * (the test binaries do not link cli/).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "consumers/codec.h"
#include "core/event.h"

#include "cli/cmd_schemas.c"

#define SAMPLES DASHI_SOURCE_DIR "/tests/data/events/all-types.ndjson"
#define SCHEMA_DIR DASHI_SOURCE_DIR "/schemas"

/* ---- helpers ---- */

static json_t *samples_load(void) {
    json_error_t jerr;
    FILE *f = fopen(SAMPLES, "r");
    json_t *arr = json_array();
    char line[8192];
    cr_assert_not_null(f, "cannot open %s", SAMPLES);
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '\n')
            continue;
        json_t *obj = json_loads(line, 0, &jerr);
        cr_assert_not_null(obj, "bad sample: %s", jerr.text);
        json_array_append_new(arr, obj);
    }
    fclose(f);
    return arr;
}

static void sample_event(json_t *samples, const char *type, dashi_event *ev) {
    size_t i;
    json_t *obj;
    char err[256] = "";
    json_array_foreach(samples, i, obj) {
        if (strcmp(json_string_value(json_object_get(obj, "type")), type) == 0) {
            cr_assert_eq(dashi_event_from_json(obj, ev, err, sizeof(err)), DASHI_OK, "%s", err);
            return;
        }
    }
    cr_assert_fail("no sample %s", type);
}

static dashi_codec *codec_ok(void) {
    char err[256] = "";
    dashi_codec *c = dashi_codec_new(err, sizeof(err));
    cr_assert_not_null(c, "codec: %s", err);
    return c;
}

static void encode_ok(dashi_codec *c, const dashi_event *ev, unsigned char **buf, size_t *len) {
    char err[256] = "";
    void *b = NULL;
    cr_assert_eq(dashi_codec_encode(c, ev, &b, len, err, sizeof(err)), DASHI_OK, "encode: %s", err);
    *buf = b;
}

static int is_zeroed(const dashi_event *ev) {
    dashi_event zero;
    memset(&zero, 0, sizeof(zero));
    return memcmp(ev, &zero, sizeof(zero)) == 0;
}

/* Decode must fail with code; out must be left cleared. Returns the message. */
static void decode_fails(dashi_codec *c, const void *buf, size_t len, dashi_err code,
                         const char *want) {
    char err[512] = "";
    dashi_event ev;
    dashi_err rc = dashi_codec_decode(c, buf, len, &ev, err, sizeof(err));
    cr_expect_eq(rc, code, "len %zu: expected %s, got %s (%s)", len, dashi_err_str(code),
                 dashi_err_str(rc), err);
    if (want)
        cr_expect(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    cr_expect(is_zeroed(&ev), "out not cleared");
    if (rc == DASHI_OK)
        dashi_event_clear(&ev);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Confluent frame of an avro-c value. */
static unsigned char *frame_value(int32_t id, avro_value_t *v, size_t *len) {
    size_t size = 0;
    cr_assert_eq(avro_value_sizeof(v, &size), 0, "%s", avro_strerror());
    unsigned char *buf = malloc(5 + size);
    buf[0] = 0;
    buf[1] = (unsigned char)((uint32_t)id >> 24);
    buf[2] = (unsigned char)((uint32_t)id >> 16);
    buf[3] = (unsigned char)((uint32_t)id >> 8);
    buf[4] = (unsigned char)id;
    avro_writer_t w = avro_writer_memory((const char *)buf + 5, (int64_t)size);
    cr_assert_eq(avro_value_write(w, v), 0, "%s", avro_strerror());
    avro_writer_free(w);
    *len = 5 + size;
    return buf;
}

static void field(avro_value_t *rec, const char *name, avro_value_t *out) {
    cr_assert_eq(avro_value_get_by_name(rec, name, out, NULL), 0, "no field %s", name);
}
static void put_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f;
    field(rec, name, &f);
    cr_assert_eq(avro_value_set_string(&f, s), 0);
}
static void put_long(avro_value_t *rec, const char *name, int64_t x) {
    avro_value_t f;
    field(rec, name, &f);
    cr_assert_eq(avro_value_set_long(&f, x), 0);
}
static void put_enum(avro_value_t *rec, const char *name, int x) {
    avro_value_t f;
    field(rec, name, &f);
    cr_assert_eq(avro_value_set_enum(&f, x), 0);
}
static void put_null(avro_value_t *rec, const char *name) {
    avro_value_t f, b;
    field(rec, name, &f);
    cr_assert_eq(avro_value_set_branch(&f, 0, &b), 0);
    cr_assert_eq(avro_value_set_null(&b), 0);
}
static void put_opt_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f, b;
    field(rec, name, &f);
    cr_assert_eq(avro_value_set_branch(&f, 1, &b), 0);
    cr_assert_eq(avro_value_set_string(&b, s), 0);
}
static int has_field(avro_value_t *rec, const char *name) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) == 0;
}

/* A value of the given schema (JSON text) holding the OrderPaid sample, with the
 * given paid amount for item 0. Optional fields the schema lacks are skipped. */
typedef struct built {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
} built;

static void built_free(built *b) {
    avro_value_decref(&b->value);
    avro_value_iface_decref(b->iface);
    avro_schema_decref(b->schema);
}

static void build_order_paid(const char *schema_json, int64_t paid0, built *b) {
    cr_assert_eq(avro_schema_from_json_length(schema_json, strlen(schema_json), &b->schema), 0, "%s",
                 avro_strerror());
    b->iface = avro_generic_class_from_schema(b->schema);
    cr_assert_not_null(b->iface);
    cr_assert_eq(avro_generic_value_new(b->iface, &b->value), 0);
    avro_value_t *v = &b->value, items, it;
    put_str(v, "event_id", "ord-20220609-0009");
    put_long(v, "occurred_at", 1654743600000LL); /* 2022-06-09T11:00:00+08:00 */
    put_str(v, "order_id", "o1");
    put_str(v, "uid", "cust1");
    if (has_field(v, "cart_id"))
        put_opt_str(v, "cart_id", "cart-77");
    put_enum(v, "order_type", DASHI_ORDER_NEW);
    put_enum(v, "billing", DASHI_BILLING_PREPAID);
    if (has_field(v, "campaign_id"))
        put_null(v, "campaign_id");
    field(v, "items", &items);
    cr_assert_eq(avro_value_append(&items, &it, NULL), 0);
    put_str(&it, "item_id", "i1");
    put_str(&it, "product_code", "ecs.g7.large");
    put_str(&it, "category", "ecs");
    put_long(&it, "list_amount", 120000);
    put_long(&it, "discount_amount", 20000);
    put_long(&it, "paid_amount", paid0);
    cr_assert_eq(avro_value_append(&items, &it, NULL), 0);
    put_str(&it, "item_id", "i2");
    put_str(&it, "product_code", "domain.com");
    put_str(&it, "category", "domain");
    put_long(&it, "list_amount", 6900);
    put_long(&it, "discount_amount", 0);
    put_long(&it, "paid_amount", 6900);
}

static char *current_schema_text(dashi_event_type t) {
    char *s = dashi_event_avro_schema_text(t);
    cr_assert_not_null(s);
    return s;
}

/* The current schema of t with extra field definitions inserted at position pos of
 * "fields" (JSON text, caller frees). */
static char *schema_with(dashi_event_type t, size_t pos, const char *field_json) {
    json_t *s = dashi_event_avro_schema(t);
    json_error_t jerr;
    json_t *f = json_loads(field_json, 0, &jerr);
    cr_assert_not_null(f, "%s", jerr.text);
    cr_assert_eq(json_array_insert_new(json_object_get(s, "fields"), pos, f), 0);
    char *text = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    return text;
}

/* The current schema of t without the named field. */
static char *schema_without(dashi_event_type t, const char *name) {
    json_t *s = dashi_event_avro_schema(t), *fields = json_object_get(s, "fields"), *f;
    size_t i;
    json_array_foreach(fields, i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) {
            json_array_remove(fields, i);
            break;
        }
    }
    char *text = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    return text;
}

/* JSON of ev (to compare events). */
static char *dump(const dashi_event *ev) {
    char *s = dashi_event_dump(ev);
    cr_assert_not_null(s);
    return s;
}

/* ---- schemas ---- */

Test(codec, schemas_parse_and_are_named) {
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        char *text = current_schema_text(t);
        avro_schema_t s;
        cr_assert_eq(avro_schema_from_json_length(text, strlen(text), &s), 0, "%s: %s",
                     dashi_event_type_name(t), avro_strerror());
        cr_expect(is_avro_record(s));
        cr_expect_str_eq(avro_schema_name(s), dashi_event_type_name(t));
        cr_expect_str_eq(avro_schema_namespace(s), DASHI_AVRO_NAMESPACE);
        avro_schema_decref(s);
        free(text);
    }
}

Test(codec, schema_shape) {
    json_t *s = dashi_event_avro_schema(DASHI_EV_COMMISSION_EVENT), *f;
    size_t i;
    int seen = 0;
    json_array_foreach(json_object_get(s, "fields"), i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *type = json_object_get(f, "type");
        if (strcmp(name, "occurred_at") == 0) {
            cr_expect_str_eq(json_string_value(json_object_get(type, "logicalType")), "timestamp-millis");
            cr_expect_str_eq(json_string_value(json_object_get(type, "type")), "long");
            seen++;
        } else if (strcmp(name, "tier") == 0) {
            cr_expect(json_is_array(type));
            cr_expect_str_eq(json_string_value(json_array_get(type, 0)), "null");
            cr_expect_str_eq(json_string_value(json_object_get(json_array_get(type, 1), "type")), "enum");
            cr_expect(json_is_null(json_object_get(f, "default")));
            seen++;
        } else if (strcmp(name, "installments") == 0) {
            cr_expect_str_eq(json_string_value(json_object_get(type, "type")), "array");
            cr_expect_str_eq(json_string_value(json_object_get(json_object_get(type, "items"), "name")),
                             "Installment");
            seen++;
        } else if (strcmp(name, "amount") == 0) {
            cr_expect_str_eq(json_string_value(type), "long");
            cr_expect_null(json_object_get(f, "default"));
            seen++;
        }
    }
    cr_expect_eq(seen, 4);
    json_decref(s);

    s = dashi_event_avro_schema(DASHI_EV_FRAUD_ALERT);
    json_array_foreach(json_object_get(s, "fields"), i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), "evidence") == 0) {
            json_t *type = json_object_get(f, "type");
            cr_expect_str_eq(json_string_value(json_object_get(type, "type")), "map");
            cr_expect_str_eq(json_string_value(json_object_get(type, "values")), "string");
        }
    }
    json_decref(s);
    cr_expect_null(dashi_event_avro_schema(DASHI_EV__COUNT));
}

Test(codec, shipped_schema_files_match_generated) {
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s.avsc", SCHEMA_DIR, dashi_event_type_name(t));
        char *have = read_file(path);
        char *want = current_schema_text(t);
        cr_expect_not_null(have, "missing %s", path);
        if (have)
            cr_expect_str_eq(have, want, "%s differs from the generated schema: run `dashi schemas --out schemas`",
                             path);
        free(have);
        free(want);
    }
}

static void quiet(void) {
    cr_redirect_stdout();
    cr_redirect_stderr();
}

Test(codec, schemas_command, .init = quiet) {
    char dir[] = "/tmp/dashi-schemas-XXXXXX", path[512];
    char *argv_check_src[] = {"schemas", "--check", SCHEMA_DIR, NULL};
    char *argv_out[] = {"dashi", "schemas", "--out", dir, NULL};
    char *argv_check[] = {"schemas", "--check", dir, NULL};
    char *argv_bad[] = {"schemas", "--frobnicate", NULL};
    char *argv_none[] = {"schemas", NULL};

    cr_assert_not_null(mkdtemp(dir));
    cr_expect_eq(dashi_cmd_schemas(3, argv_check_src), 0);
    cr_expect_eq(dashi_cmd_schemas(4, argv_out), 0);
    cr_expect_eq(dashi_cmd_schemas(3, argv_check), 0);

    /* a changed file, then a stray .avsc, make --check fail */
    snprintf(path, sizeof(path), "%s/OrderPaid.avsc", dir);
    FILE *f = fopen(path, "a");
    fputs(" ", f);
    fclose(f);
    cr_expect_eq(dashi_cmd_schemas(3, argv_check), 1);
    cr_expect_eq(dashi_cmd_schemas(4, argv_out), 0);
    cr_expect_eq(dashi_cmd_schemas(3, argv_check), 0);
    snprintf(path, sizeof(path), "%s/OrderShipped.avsc", dir);
    f = fopen(path, "w");
    fputs("{}", f);
    fclose(f);
    cr_expect_eq(dashi_cmd_schemas(3, argv_check), 1);
    unlink(path);
    snprintf(path, sizeof(path), "%s/TierAssigned.avsc", dir);
    unlink(path);
    cr_expect_eq(dashi_cmd_schemas(3, argv_check), 1);

    cr_expect_eq(dashi_cmd_schemas(2, argv_bad), 2);
    cr_expect_eq(dashi_cmd_schemas(1, argv_none), 2);

    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        snprintf(path, sizeof(path), "%s/%s.avsc", dir, dashi_event_type_name(t));
        unlink(path);
    }
    rmdir(dir);
}

/* ---- round trip ---- */

Test(codec, every_sample_round_trips) {
    json_t *samples = samples_load(), *obj;
    dashi_codec *c = codec_ok();
    size_t i;
    json_array_foreach(samples, i, obj) {
        char err[512] = "";
        dashi_event ev, back;
        unsigned char *buf;
        size_t len;
        cr_assert_eq(dashi_event_from_json(obj, &ev, err, sizeof(err)), DASHI_OK, "%s", err);
        encode_ok(c, &ev, &buf, &len);
        /* Confluent header: magic 0, big-endian id = type + 1 by default */
        cr_expect_eq(buf[0], 0);
        int32_t id = (int32_t)((uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4]);
        cr_expect_eq(id, (int32_t)ev.type + 1);
        cr_expect_eq(dashi_codec_schema_id(c, ev.type), (int32_t)ev.type + 1);
        cr_assert_eq(dashi_codec_decode(c, buf, len, &back, err, sizeof(err)), DASHI_OK,
                     "line %zu: %s", i + 1, err);
        json_t *a = dashi_event_to_json(&ev), *b = dashi_event_to_json(&back);
        char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
        cr_expect(json_equal(a, b), "line %zu:\n before %s\n after  %s", i + 1, ta, tb);
        free(ta);
        free(tb);
        json_decref(a);
        json_decref(b);
        free(buf);
        dashi_event_clear(&ev);
        dashi_event_clear(&back);
    }
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, extreme_values_round_trip) {
    json_t *samples = samples_load();
    dashi_codec *c = codec_ok();
    dashi_event ev, back;
    unsigned char *buf;
    size_t len;
    char err[256] = "";

    sample_event(samples, "CommissionEvent", &ev);
    ev.u.commission_event.delta = INT64_MIN + 1;
    ev.u.commission_event.amount = INT64_MAX;
    ev.u.commission_event.occurred_at = dashi_event_time(&ev) + 1; /* milliseconds */
    free(ev.u.commission_event.caused_by);
    ev.u.commission_event.caused_by = dashi_strdup("\xe8\xae\xa2\xe5\x8d\x95 \xf0\x9f\x98\x80"); /* UTF-8 */
    encode_ok(c, &ev, &buf, &len);
    cr_assert_eq(dashi_codec_decode(c, buf, len, &back, err, sizeof(err)), DASHI_OK, "%s", err);
    char *a = dump(&ev), *b = dump(&back);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
    free(buf);
    dashi_event_clear(&ev);
    dashi_event_clear(&back);
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, named_types_used_twice_round_trip) {
    json_t *samples = samples_load();
    dashi_codec *c = codec_ok();
    dashi_event ev, back;
    unsigned char *buf;
    size_t len;
    char err[256] = "";

    /* "removed" names the Identity record that "added" defines */
    sample_event(samples, "IdentityChanged", &ev);
    dashi_identity_changed *ic = &ev.u.identity_changed;
    ic->removed = calloc(2, sizeof(*ic->removed));
    ic->n_removed = 2;
    ic->removed[0] = (dashi_identity){DASHI_ID_PHONE, dashi_strdup("13800000001"), false};
    ic->removed[1] = (dashi_identity){DASHI_ID_DEVICE, dashi_strdup("abc"), true};
    encode_ok(c, &ev, &buf, &len);
    cr_assert_eq(dashi_codec_decode(c, buf, len, &back, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(back.u.identity_changed.n_removed, 2);
    cr_expect_eq(back.u.identity_changed.removed[1].kind, DASHI_ID_DEVICE);
    cr_expect_eq(back.u.identity_changed.removed[1].hashed, true);
    char *a = dump(&ev), *b = dump(&back);
    cr_expect_str_eq(a, b);
    for (size_t n = 5; n < len; n++)
        decode_fails(c, buf, n, DASHI_ERR_PARSE, NULL);
    free(a);
    free(b);
    free(buf);
    dashi_event_clear(&ev);
    dashi_event_clear(&back);

    /* CommissionEvent: Tier and CustomerKind enums, installments, reasons */
    sample_event(samples, "CommissionEvent", &ev);
    cr_assert_eq(dashi_strv_push(&ev.u.commission_event.reasons, &ev.u.commission_event.n_reasons,
                                 "CAP_REACHED"), 0);
    ev.u.commission_event.tier = DASHI_TIER_HEAD;
    ev.u.commission_event.customer_kind = DASHI_ENUM_NONE;
    ev.u.commission_event.review_ends_at = DASHI_TIME_NONE;
    encode_ok(c, &ev, &buf, &len);
    cr_assert_eq(dashi_codec_decode(c, buf, len, &back, err, sizeof(err)), DASHI_OK, "%s", err);
    a = dump(&ev);
    b = dump(&back);
    cr_expect_str_eq(a, b);
    cr_expect_eq(back.u.commission_event.customer_kind, DASHI_ENUM_NONE);
    cr_expect_eq(back.u.commission_event.review_ends_at, DASHI_TIME_NONE);
    free(a);
    free(b);
    free(buf);
    dashi_event_clear(&ev);
    dashi_event_clear(&back);
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, encode_rejects_invalid_events) {
    json_t *samples = samples_load();
    dashi_codec *c = codec_ok();
    dashi_event ev;
    void *buf = (void *)1;
    size_t len = 7;
    char err[256] = "";

    sample_event(samples, "OrderPaid", &ev);
    ev.u.order_paid.items[0].paid_amount = 1;
    cr_expect_eq(dashi_codec_encode(c, &ev, &buf, &len, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "items[0].paid_amount: must equal") != NULL, "%s", err);
    cr_expect_null(buf);
    cr_expect_eq(len, 0);
    dashi_event_clear(&ev);

    dashi_event_init(&ev, DASHI_EV_AMBASSADOR_ENROLLED); /* nothing set */
    cr_expect_eq(dashi_codec_encode(c, &ev, &buf, &len, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "event_id: missing required field") != NULL, "%s", err);
    dashi_codec_destroy(c);
    json_decref(samples);
}

/* ---- hostile bytes ---- */

Test(codec, wrong_magic_and_unknown_id) {
    json_t *samples = samples_load();
    dashi_codec *c = codec_ok();
    dashi_event ev;
    unsigned char *buf;
    size_t len;

    sample_event(samples, "OrderPaid", &ev);
    encode_ok(c, &ev, &buf, &len);
    buf[0] = 1;
    decode_fails(c, buf, len, DASHI_ERR_PARSE, "bad magic byte 0x01");
    buf[0] = 0;
    buf[4] = 99;
    decode_fails(c, buf, len, DASHI_ERR_NOT_FOUND, "unknown schema id 99");
    buf[1] = 0x80;
    decode_fails(c, buf, len, DASHI_ERR_NOT_FOUND, "unknown schema id");
    decode_fails(c, NULL, 0, DASHI_ERR_PARSE, "truncated frame");
    free(buf);
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, every_truncation_fails_cleanly) {
    json_t *samples = samples_load(), *obj;
    dashi_codec *c = codec_ok();
    size_t i;
    json_array_foreach(samples, i, obj) {
        dashi_event ev;
        unsigned char *buf;
        size_t len;
        char err[256];
        cr_assert_eq(dashi_event_from_json(obj, &ev, err, sizeof(err)), DASHI_OK);
        encode_ok(c, &ev, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            /* a copy of exactly n bytes, so ASan sees any read past them */
            unsigned char *cut = malloc(n ? n : 1);
            memcpy(cut, buf, n);
            decode_fails(c, cut, n, DASHI_ERR_PARSE, n < 5 ? "truncated frame" : NULL);
            free(cut);
        }
        /* one byte more than the record: trailing bytes */
        unsigned char *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        decode_fails(c, longer, len + 1, DASHI_ERR_PARSE, "trailing bytes");
        free(longer);
        free(buf);
        dashi_event_clear(&ev);
    }
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, claimed_lengths_and_counts_beyond_the_buffer) {
    dashi_codec *c = codec_ok();
    int32_t id = dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID);
    unsigned char buf[64];
    size_t n;

    /* event_id claims 2^40 bytes */
    memset(buf, 0, sizeof(buf));
    buf[4] = (unsigned char)id;
    n = 5;
    uint64_t zz = (uint64_t)1 << 41; /* zig-zag of 2^40 */
    while (zz >= 0x80) {
        buf[n++] = (unsigned char)(zz | 0x80);
        zz >>= 7;
    }
    buf[n++] = (unsigned char)zz;
    buf[n++] = 'x';
    decode_fails(c, buf, n, DASHI_ERR_PARSE, "length beyond the end");

    /* negative string length (-1 is zig-zag 0x01) */
    buf[5] = 0x01;
    decode_fails(c, buf, 6, DASHI_ERR_PARSE, "negative length");

    /* a varint that never ends */
    memset(buf + 5, 0xff, 20);
    decode_fails(c, buf, 25, DASHI_ERR_PARSE, "varint");

    /* OrderPaid up to items, then a block count of 2^40 items */
    n = 5;
    const char *strs[] = {"e", NULL};
    buf[n++] = 2; /* event_id "e" */
    buf[n++] = 'e';
    buf[n++] = 0x02; /* occurred_at 1 */
    buf[n++] = 2;    /* order_id "o" */
    buf[n++] = 'o';
    buf[n++] = 2; /* uid "u" */
    buf[n++] = 'u';
    buf[n++] = 0; /* cart_id null */
    buf[n++] = 0; /* order_type NEW */
    buf[n++] = 0; /* billing PREPAID */
    buf[n++] = 0; /* campaign_id null */
    size_t items_at = n;
    buf[n++] = 0; /* items: empty */
    (void)strs;
    char err[256] = "";
    dashi_event ev;
    cr_expect_eq(dashi_codec_decode(c, buf, n, &ev, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_event_clear(&ev);

    n = items_at;
    zz = (uint64_t)1 << 41;
    while (zz >= 0x80) {
        buf[n++] = (unsigned char)(zz | 0x80);
        zz >>= 7;
    }
    buf[n++] = (unsigned char)zz;
    decode_fails(c, buf, n, DASHI_ERR_PARSE, NULL);

    /* negative block count with a block size beyond the buffer */
    n = items_at;
    buf[n++] = 0x01; /* count -1 */
    buf[n++] = 0x7e; /* size 63 */
    decode_fails(c, buf, n, DASHI_ERR_PARSE, "bad block size");

    /* enum index out of range, union branch out of range */
    n = items_at;
    buf[n++] = 0;
    buf[items_at - 3] = 0x06; /* order_type index 3 of 3 */
    decode_fails(c, buf, n, DASHI_ERR_PARSE, "enum index out of range");
    buf[items_at - 3] = 0;
    buf[items_at - 4] = 0x04; /* cart_id branch 2 of 2 */
    decode_fails(c, buf, n, DASHI_ERR_PARSE, "union branch out of range");
    dashi_codec_destroy(c);
}

Test(codec, random_corruption_never_crashes) {
    json_t *samples = samples_load(), *obj;
    dashi_codec *c = codec_ok();
    size_t i;
    int decoded = 0, rejected = 0;

    json_array_foreach(samples, i, obj) {
        dashi_event ev;
        unsigned char *buf;
        size_t len;
        char err[256];
        cr_assert_eq(dashi_event_from_json(obj, &ev, err, sizeof(err)), DASHI_OK);
        encode_ok(c, &ev, &buf, &len);
        unsigned char *mut = malloc(len);
        for (int round = 0; round < 1500; round++) {
            memcpy(mut, buf, len);
            int flips = 1 + (int)(rng() % 3);
            for (int k = 0; k < flips; k++)
                mut[5 + rng() % (len - 5)] ^= (unsigned char)(1u << (rng() % 8));
            dashi_event out;
            if (dashi_codec_decode(c, mut, len, &out, err, sizeof(err)) == DASHI_OK) {
                /* whatever decodes is a valid event that can be written out */
                char *text = dashi_event_dump(&out);
                cr_expect_not_null(text, "decoded but cannot dump");
                free(text);
                dashi_event_clear(&out);
                decoded++;
            } else {
                cr_expect(is_zeroed(&out));
                rejected++;
            }
        }
        /* random bodies of random length under the sample's id */
        for (int round = 0; round < 300; round++) {
            size_t n = 5 + rng() % (len + 16);
            unsigned char *junk = malloc(n);
            memcpy(junk, buf, 5);
            for (size_t k = 5; k < n; k++)
                junk[k] = (unsigned char)rng();
            dashi_event out;
            if (dashi_codec_decode(c, junk, n, &out, err, sizeof(err)) == DASHI_OK)
                dashi_event_clear(&out);
            free(junk);
        }
        free(mut);
        free(buf);
        dashi_event_clear(&ev);
    }
    cr_expect_gt(rejected, 0);
    cr_log_info("corruption: %d decoded, %d rejected", decoded, rejected);
    dashi_codec_destroy(c);
    json_decref(samples);
}

/* ---- semantic validation on the Avro path ---- */

Test(codec, avro_records_are_validated_like_json) {
    dashi_codec *c = codec_ok();
    char *schema = current_schema_text(DASHI_EV_ORDER_PAID);
    int32_t id = dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID);
    built b;
    unsigned char *buf;
    size_t len;

    build_order_paid(schema, 100000, &b);
    buf = frame_value(id, &b.value, &len);
    dashi_event ev;
    char err[256] = "";
    cr_expect_eq(dashi_codec_decode(c, buf, len, &ev, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_event_clear(&ev);
    free(buf);

    /* paid identity */
    put_long(&b.value, "occurred_at", 1654743600000LL);
    avro_value_t items, it;
    field(&b.value, "items", &items);
    avro_value_get_by_index(&items, 0, &it, NULL);
    put_long(&it, "paid_amount", 99999);
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID,
                 "items[0].paid_amount: must equal list_amount - discount_amount (99999 != 120000 - 20000)");
    free(buf);

    /* negative amount */
    put_long(&it, "list_amount", -1);
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "items[0].list_amount: negative amount -1");
    free(buf);
    put_long(&it, "list_amount", 120000);
    put_long(&it, "paid_amount", 100000);

    /* empty uid, bad UTF-8, NUL inside a string, instant out of range */
    put_str(&b.value, "uid", "");
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "uid: must not be empty");
    free(buf);
    put_str(&b.value, "uid", "cust\xff");
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "uid: string is not UTF-8");
    free(buf);
    avro_value_t uid;
    field(&b.value, "uid", &uid);
    avro_value_set_string_len(&uid, "cu\0st", 6);
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "uid: string contains NUL");
    free(buf);
    put_str(&b.value, "uid", "cust1");
    put_long(&b.value, "occurred_at", INT64_MAX);
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "occurred_at: instant");
    free(buf);
    put_long(&b.value, "occurred_at", INT64_MIN);
    buf = frame_value(id, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "occurred_at: integer");
    free(buf);

    built_free(&b);
    free(schema);

    /* refund amount must be > 0 */
    schema = current_schema_text(DASHI_EV_ORDER_REFUNDED);
    avro_schema_t s;
    cr_assert_eq(avro_schema_from_json_length(schema, strlen(schema), &s), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    avro_value_t v;
    avro_generic_value_new(iface, &v);
    put_str(&v, "event_id", "r1");
    put_long(&v, "occurred_at", 1654743600000LL);
    put_str(&v, "order_id", "o1");
    put_str(&v, "uid", "cust1");
    put_enum(&v, "kind", DASHI_REFUND_REFUND);
    put_long(&v, "amount", 0);
    put_null(&v, "item_id");
    buf = frame_value(dashi_codec_schema_id(c, DASHI_EV_ORDER_REFUNDED), &v, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "amount: must be > 0 (got 0)");
    free(buf);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
    free(schema);
    dashi_codec_destroy(c);
}

/* ---- schema evolution ---- */

static void expect_same_as_sample(dashi_codec *c, const unsigned char *buf, size_t len,
                                  const dashi_event *want) {
    char err[256] = "";
    dashi_event got;
    cr_assert_eq(dashi_codec_decode(c, buf, len, &got, err, sizeof(err)), DASHI_OK, "%s", err);
    char *a = dump(want), *b = dump(&got);
    cr_expect_str_eq(b, a);
    free(a);
    free(b);
    dashi_event_clear(&got);
}

Test(codec, newer_writer_with_extra_fields) {
    json_t *samples = samples_load();
    dashi_codec *c = codec_ok();
    dashi_event want;
    char err[256] = "";
    sample_event(samples, "OrderPaid", &want);

    /* an extra optional field in the middle, an extra field with a default at the end */
    char *w1 = schema_with(DASHI_EV_ORDER_PAID, 4,
                           "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null}");
    json_t *tmp = json_loads(w1, 0, NULL);
    json_array_append_new(json_object_get(tmp, "fields"),
                          json_pack("{s:s, s:s, s:i}", "name", "priority", "type", "int", "default", 0));
    char *w2 = json_dumps(tmp, JSON_COMPACT);
    json_decref(tmp);
    char *w3 = schema_with(DASHI_EV_ORDER_PAID, 0,
                           "{\"name\":\"trace\",\"type\":{\"type\":\"map\",\"values\":\"string\"},\"default\":{}}");

    cr_assert_eq(dashi_codec_register(c, 101, DASHI_EV_ORDER_PAID, w1, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(dashi_codec_register(c, 102, DASHI_EV_ORDER_PAID, w2, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(dashi_codec_register(c, 103, DASHI_EV_ORDER_PAID, w3, err, sizeof(err)), DASHI_OK, "%s", err);
    /* encoding keeps using the current schema's id */
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID), DASHI_EV_ORDER_PAID + 1);

    built b;
    unsigned char *buf;
    size_t len;

    build_order_paid(w1, 100000, &b);
    put_opt_str(&b.value, "channel", "mobile-app");
    buf = frame_value(101, &b.value, &len);
    expect_same_as_sample(c, buf, len, &want);
    free(buf);
    built_free(&b);

    build_order_paid(w2, 100000, &b);
    put_null(&b.value, "channel");
    avro_value_t pr;
    field(&b.value, "priority", &pr);
    avro_value_set_int(&pr, 7);
    buf = frame_value(102, &b.value, &len);
    expect_same_as_sample(c, buf, len, &want);
    free(buf);
    built_free(&b);

    build_order_paid(w3, 100000, &b);
    avro_value_t trace, tv;
    field(&b.value, "trace", &trace);
    avro_value_add(&trace, "span", &tv, NULL, NULL);
    avro_value_set_string(&tv, "abc123");
    buf = frame_value(103, &b.value, &len);
    expect_same_as_sample(c, buf, len, &want);
    /* and the extra field is checked too: truncations fail */
    for (size_t n = 0; n < len; n++)
        decode_fails(c, buf, n, DASHI_ERR_PARSE, NULL);
    free(buf);
    built_free(&b);

    free(w1);
    free(w2);
    free(w3);
    dashi_event_clear(&want);
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, older_writer_without_optional_fields) {
    json_t *samples = samples_load();
    dashi_codec *c = codec_ok();
    dashi_event want;
    char err[256] = "";
    sample_event(samples, "OrderPaid", &want);
    free(want.u.order_paid.cart_id);
    want.u.order_paid.cart_id = NULL;

    /* a writer from before cart_id and campaign_id existed: avro-c cannot resolve
     * reader fields with defaults, the codec maps by name */
    char *w0 = schema_without(DASHI_EV_ORDER_PAID, "cart_id");
    json_t *tmp = json_loads(w0, 0, NULL), *f;
    size_t i;
    free(w0);
    json_array_foreach(json_object_get(tmp, "fields"), i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), "campaign_id") == 0) {
            json_array_remove(json_object_get(tmp, "fields"), i);
            break;
        }
    }
    w0 = json_dumps(tmp, JSON_COMPACT);
    json_decref(tmp);
    cr_assert(strstr(w0, "campaign_id") == NULL && strstr(w0, "cart_id") == NULL);
    cr_assert_eq(dashi_codec_register(c, 200, DASHI_EV_ORDER_PAID, w0, err, sizeof(err)), DASHI_OK, "%s", err);

    built b;
    unsigned char *buf;
    size_t len;
    build_order_paid(w0, 100000, &b);
    buf = frame_value(200, &b.value, &len);
    expect_same_as_sample(c, buf, len, &want);
    for (size_t n = 0; n < len; n++)
        decode_fails(c, buf, n, DASHI_ERR_PARSE, NULL);
    free(buf);

    /* still validated */
    avro_value_t items, it;
    field(&b.value, "items", &items);
    avro_value_get_by_index(&items, 1, &it, NULL);
    put_long(&it, "discount_amount", -5);
    buf = frame_value(200, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "items[1].discount_amount: negative amount -5");
    free(buf);
    built_free(&b);

    /* nor one whose field has another type */
    json_t *ws = dashi_event_avro_schema(DASHI_EV_ORDER_PAID), *wf;
    json_array_foreach(json_object_get(ws, "fields"), i, wf) {
        if (strcmp(json_string_value(json_object_get(wf, "name")), "uid") == 0)
            json_object_set_new(wf, "type", json_string("int"));
    }
    char *w2 = json_dumps(ws, JSON_COMPACT);
    json_decref(ws);
    cr_expect_eq(dashi_codec_register(c, 202, DASHI_EV_ORDER_PAID, w2, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "field 'uid' is a int") != NULL, "%s", err);
    free(w2);

    /* a writer without a required field cannot carry OrderPaid */
    char *w1 = schema_without(DASHI_EV_ORDER_PAID, "uid");
    cr_expect_eq(dashi_codec_register(c, 201, DASHI_EV_ORDER_PAID, w1, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "required field 'uid' missing") != NULL, "%s", err);
    free(w1);

    free(w0);
    dashi_event_clear(&want);
    dashi_codec_destroy(c);
    json_decref(samples);
}

Test(codec, writer_enum_symbol_unknown_to_reader) {
    dashi_codec *c = codec_ok();
    char err[256] = "";
    json_t *s = dashi_event_avro_schema(DASHI_EV_ORDER_PAID), *f;
    size_t i;
    json_array_foreach(json_object_get(s, "fields"), i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), "order_type") == 0)
            json_array_append_new(json_object_get(json_object_get(f, "type"), "symbols"),
                                  json_string("TRIAL"));
    }
    char *w = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    dashi_err rc = dashi_codec_register(c, 300, DASHI_EV_ORDER_PAID, w, err, sizeof(err));
    cr_assert_eq(rc, DASHI_OK, "%s", err);

    built b;
    unsigned char *buf;
    size_t len;
    build_order_paid(w, 100000, &b);
    buf = frame_value(300, &b.value, &len);
    dashi_event ev;
    cr_expect_eq(dashi_codec_decode(c, buf, len, &ev, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(ev.u.order_paid.order_type, DASHI_ORDER_NEW);
    dashi_event_clear(&ev);
    free(buf);

    put_enum(&b.value, "order_type", 3); /* TRIAL */
    buf = frame_value(300, &b.value, &len);
    decode_fails(c, buf, len, DASHI_ERR_INVALID, "order_type: unknown enum symbol 'TRIAL'");
    free(buf);
    built_free(&b);
    free(w);
    dashi_codec_destroy(c);
}

/* avro-c's resolver copies enum indexes; symbols must be matched by name */
Test(codec, writer_enum_symbols_in_another_order) {
    dashi_codec *c = codec_ok();
    char err[256] = "";
    json_t *s = dashi_event_avro_schema(DASHI_EV_ORDER_PAID), *f;
    size_t i;
    json_array_foreach(json_object_get(s, "fields"), i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), "order_type") == 0)
            json_object_set_new(json_object_get(f, "type"), "symbols",
                                json_pack("[s,s,s]", "UPGRADE", "RENEWAL", "NEW"));
    }
    char *w = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    cr_assert_eq(dashi_codec_register(c, 301, DASHI_EV_ORDER_PAID, w, err, sizeof(err)), DASHI_OK, "%s", err);

    built b;
    unsigned char *buf;
    size_t len;
    dashi_event ev;
    build_order_paid(w, 100000, &b);
    put_enum(&b.value, "order_type", 0); /* UPGRADE in the writer's order */
    buf = frame_value(301, &b.value, &len);
    cr_assert_eq(dashi_codec_decode(c, buf, len, &ev, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(ev.u.order_paid.order_type, DASHI_ORDER_UPGRADE);
    cr_expect_eq(ev.u.order_paid.billing, DASHI_BILLING_PREPAID);
    dashi_event_clear(&ev);
    free(buf);
    built_free(&b);
    free(w);
    dashi_codec_destroy(c);
}

Test(codec, registration) {
    dashi_codec *c = codec_ok();
    json_t *samples = samples_load();
    char err[256] = "";
    char *op = current_schema_text(DASHI_EV_ORDER_PAID);
    char *ta = current_schema_text(DASHI_EV_TIER_ASSIGNED);
    dashi_event ev, back;
    unsigned char *buf;
    size_t len;

    /* a registry id for the current schema becomes the encoding id */
    cr_assert_eq(dashi_codec_register(c, 1000, DASHI_EV_ORDER_PAID, op, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID), 1000);
    sample_event(samples, "OrderPaid", &ev);
    encode_ok(c, &ev, &buf, &len);
    cr_expect(buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 0x03 && buf[4] == 0xE8);
    cr_expect_eq(dashi_codec_decode(c, buf, len, &back, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_event_clear(&back);
    free(buf);

    /* the id is reused for another type: OrderPaid falls back to its default id */
    cr_assert_eq(dashi_codec_register(c, 1000, DASHI_EV_TIER_ASSIGNED, ta, err, sizeof(err)), DASHI_OK);
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID), DASHI_EV_ORDER_PAID + 1);
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_TIER_ASSIGNED), 1000);

    /* the default id replaced by a non-current schema: no id left to encode with */
    char *older = schema_without(DASHI_EV_ORDER_PAID, "cart_id");
    cr_assert_eq(dashi_codec_register(c, DASHI_EV_ORDER_PAID + 1, DASHI_EV_ORDER_PAID, older, err,
                                      sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID), -1);
    void *out = NULL;
    cr_expect_eq(dashi_codec_encode(c, &ev, &out, &len, err, sizeof(err)), DASHI_ERR_NOT_FOUND);
    cr_expect_null(out);
    free(older);

    /* bad schemas */
    cr_expect_eq(dashi_codec_register(c, 7, DASHI_EV_ORDER_PAID, "{not json", err, sizeof(err)),
                 DASHI_ERR_PARSE);
    cr_expect_eq(dashi_codec_register(c, 7, DASHI_EV_ORDER_PAID, "\"string\"", err, sizeof(err)),
                 DASHI_ERR_INVALID);
    cr_expect(strstr(err, "need a record") != NULL, "%s", err);
    cr_expect_eq(dashi_codec_register(c, 7, DASHI_EV__COUNT, op, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect_eq(dashi_codec_register(NULL, 7, DASHI_EV_ORDER_PAID, op, err, sizeof(err)), DASHI_ERR_INVALID);
    /* id 7 still maps to its default type after failed registrations */
    cr_expect_eq(dashi_codec_schema_id(c, DASHI_EV_CUSTOMER_BOUND), 7);

    dashi_event_clear(&ev);
    free(op);
    free(ta);
    dashi_codec_destroy(c);
    dashi_codec_destroy(NULL);
    json_decref(samples);
}

/* ---- limits (event.h DASHI_MAX_*): refused on the claimed sizes, before avro-c allocates ---- */

static size_t put_varint(unsigned char *p, int64_t v) {
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    do {
        p[n] = (unsigned char)(u & 0x7f);
        u >>= 7;
        if (u)
            p[n] |= 0x80;
        n++;
    } while (u);
    return n;
}

static size_t put_string(unsigned char *p, const char *s) {
    size_t n = put_varint(p, (int64_t)strlen(s));
    memcpy(p + n, s, strlen(s));
    return n + strlen(s);
}

Test(codec, array_counts_above_the_limit_are_refused_unread) {
    dashi_codec *c = codec_ok();
    int32_t id = dashi_codec_schema_id(c, DASHI_EV_ORDER_PAID);
    unsigned char buf[256];
    char err[256];
    dashi_event out;
    /* OrderPaid: event_id, occurred_at, order_id, uid, cart_id null, NEW, PREPAID, campaign_id null, items */
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = (unsigned char)(id >> 24), buf[n++] = (unsigned char)(id >> 16);
    buf[n++] = (unsigned char)(id >> 8), buf[n++] = (unsigned char)id;
    n += put_string(buf + n, "e1");
    n += put_varint(buf + n, 1655000000000);
    n += put_string(buf + n, "o1");
    n += put_string(buf + n, "u1");
    n += put_varint(buf + n, 0);
    n += put_varint(buf + n, 0);
    n += put_varint(buf + n, 0);
    n += put_varint(buf + n, 0);
    size_t head = n;
    /* 4,097 items claimed (the array limit + 1), none present */
    n += put_varint(buf + n, DASHI_MAX_ARRAY_LEN + 1);
    cr_expect_eq(dashi_codec_decode(c, buf, n, &out, err, sizeof(err)), DASHI_ERR_PARSE);
    cr_expect(strstr(err, "array or map longer than the limit"), "%s", err);
    cr_expect(is_zeroed(&out));
    /* the same in two blocks of 2,049 */
    n = head;
    n += put_varint(buf + n, 2049);
    cr_expect_eq(dashi_codec_decode(c, buf, n, &out, err, sizeof(err)), DASHI_ERR_PARSE);
    cr_expect(strstr(err, "truncated"), "one block within the limit is read: %s", err);
    /* 257 items that are there: decoded, then refused by the items limit like JSON */
    unsigned char *big = malloc(head + 16 + 257 * 16);
    memcpy(big, buf, head);
    n = head + put_varint(big + head, 257);
    for (int i = 0; i < 257; i++) {
        n += put_string(big + n, "i");
        n += put_string(big + n, "p");
        n += put_string(big + n, "ecs");
        n += put_varint(big + n, 0);
        n += put_varint(big + n, 0);
        n += put_varint(big + n, 0);
    }
    n += put_varint(big + n, 0);
    cr_expect_eq(dashi_codec_decode(c, big, n, &out, err, sizeof(err)), DASHI_ERR_INVALID, "%s", err);
    cr_expect(strstr(err, "items: 257 elements, more than the limit of 256"), "%s", err);
    free(big);
    dashi_codec_destroy(c);
}

Test(codec, records_above_the_size_limit_are_refused_unread) {
    dashi_codec *c = codec_ok();
    char err[256];
    dashi_event out;
    size_t n = DASHI_MAX_EVENT_BYTES + 1;
    unsigned char *buf = calloc(1, n);
    int32_t id = dashi_codec_schema_id(c, DASHI_EV_AMBASSADOR_ENROLLED);
    buf[1] = (unsigned char)(id >> 24), buf[2] = (unsigned char)(id >> 16);
    buf[3] = (unsigned char)(id >> 8), buf[4] = (unsigned char)id;
    cr_expect_eq(dashi_codec_decode(c, buf, n, &out, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "record of 1048577 bytes, more than the limit of 1048576"), "%s", err);
    cr_expect(is_zeroed(&out));
    free(buf);
    dashi_codec_destroy(c);
}

Test(codec, long_strings_in_avro_are_refused_like_json) {
    dashi_codec *c = codec_ok();
    dashi_event ev, out;
    char err[256];
    unsigned char buf[1024];
    int32_t id = dashi_codec_schema_id(c, DASHI_EV_AMBASSADOR_ENROLLED);
    size_t n = 0;
    char uid[DASHI_MAX_ID_LEN + 2];
    memset(uid, 'u', sizeof(uid) - 1);
    uid[sizeof(uid) - 1] = '\0';
    buf[n++] = 0;
    buf[n++] = (unsigned char)(id >> 24), buf[n++] = (unsigned char)(id >> 16);
    buf[n++] = (unsigned char)(id >> 8), buf[n++] = (unsigned char)id;
    n += put_string(buf + n, "e1");
    n += put_varint(buf + n, 1655000000000);
    n += put_string(buf + n, uid);
    cr_expect_eq(dashi_codec_decode(c, buf, n, &out, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "uid: string of 129 bytes is longer than the limit of 128"), "%s", err);
    /* and the encoder refuses to write it */
    dashi_event_init(&ev, DASHI_EV_AMBASSADOR_ENROLLED);
    ev.u.ambassador_enrolled.event_id = dashi_strdup("e1");
    ev.u.ambassador_enrolled.occurred_at = 1655000000000;
    ev.u.ambassador_enrolled.uid = dashi_strdup(uid);
    void *enc = NULL;
    size_t len = 0;
    cr_expect_eq(dashi_codec_encode(c, &ev, &enc, &len, err, sizeof(err)), DASHI_ERR_INVALID);
    free(enc);
    dashi_event_clear(&ev);
    dashi_codec_destroy(c);
}
