/* test_records.c — app/records.c: one stored record by key, records under a prefix, and the first error stopping later reads.
 *
 * The records are put into a memory state through its write sets, as the rules
 * modules store them; a get must tell an absent key from a value that is not
 * JSON (inspect shows the one and lists the other), and a scan must keep only the
 * records whose field matches, keyed by the rest of their key. The error rule is
 * checked with a store whose reads fail and count their calls: after the first
 * failure no read reaches the store again and the error stays.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/records.h"
#include "core/state.h"

static void put(dashi_state *st, const char *key, const char *val) {
    dashi_writeset ws;
    dashi_err result = DASHI_OK;
    const dashi_writeset *sets[1] = {&ws};
    char err[256] = "";
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, key, strlen(key), val, strlen(val), 0), DASHI_OK);
    cr_assert_eq(st->ops->apply(st, 1, sets, &result, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(result, DASHI_OK);
    dashi_writeset_clear(&ws);
}

static char *dump(const json_t *j) {
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert(s);
    return s;
}

Test(records, get_tells_a_record_an_absent_key_and_a_value_that_is_not_json_apart) {
    dashi_state *st = dashi_state_mem_new();
    dashi_records r;
    char err[256] = "";
    bool stored = true;
    size_t len = 0;
    cr_assert(st);
    put(st, "ord:o1", "{\"uid\":\"c1\",\"paid\":100}");
    put(st, "ord:bad", "not json {");
    dashi_records_init(&r, st, "test", err, sizeof err);

    json_t *rec = dashi_records_get(&r, "ord:o1", 6, &stored, &len);
    char *s = dump(rec);
    cr_assert_str_eq(s, "{\"paid\":100,\"uid\":\"c1\"}");
    cr_assert(stored);
    cr_assert_eq(len, strlen("{\"uid\":\"c1\",\"paid\":100}"));
    free(s);
    json_decref(rec);

    len = 0;
    cr_assert_null(dashi_records_get(&r, "ord:bad", 7, &stored, &len));
    cr_assert(stored, "a value that is not JSON is stored");
    cr_assert_eq(len, strlen("not json {"));

    cr_assert_null(dashi_records_get(&r, "ord:none", 8, &stored, &len));
    cr_assert_not(stored, "an absent key is not stored");
    /* the key length is what is read, not the string up to its NUL */
    cr_assert_null(dashi_records_get(&r, "ord:o1", 5, &stored, NULL));
    cr_assert_not(stored);
    rec = dashi_records_get(&r, "ord:o1+", 6, NULL, NULL);
    cr_assert(json_is_object(rec));
    json_decref(rec);
    cr_assert_eq(r.err, DASHI_OK);
    dashi_state_destroy(st);
}

Test(records, scan_keeps_the_matching_records_under_the_rest_of_their_key) {
    dashi_state *st = dashi_state_mem_new();
    dashi_records r;
    char err[256] = "";
    static const char *const stored[][2] = {
        {"ord:o1", "{\"uid\":\"c1\",\"paid\":100}"}, {"ord:o2", "{\"uid\":\"c2\",\"paid\":200}"},
        {"ord:o3", "{\"uid\":\"c1\",\"paid\":300}"}, {"ord:o4", "{\"uid\":7}"},
        {"ord:o5", "not json {"},                       {"orc:o6", "{\"uid\":\"c1\"}"},
    };
    cr_assert(st);
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++)
        put(st, stored[i][0], stored[i][1]);
    dashi_records_init(&r, st, "test", err, sizeof err);

    json_t *found = dashi_records_scan(&r, "ord:", "uid", "c1");
    char *s = dump(found);
    cr_assert_str_eq(s, "{\"o1\":{\"paid\":100,\"uid\":\"c1\"},\"o3\":{\"paid\":300,\"uid\":\"c1\"}}");
    free(s);
    json_decref(found);

    found = dashi_records_scan(&r, "ord:", NULL, NULL);
    s = dump(found);
    cr_assert_str_eq(s, "{\"o1\":{\"paid\":100,\"uid\":\"c1\"},\"o2\":{\"paid\":200,\"uid\":\"c2\"},"
                        "\"o3\":{\"paid\":300,\"uid\":\"c1\"},\"o4\":{\"uid\":7}}");
    free(s);
    json_decref(found);

    found = dashi_records_scan(&r, "none:", "uid", "c1");
    cr_assert(json_is_object(found));
    cr_assert_eq(json_object_size(found), 0);
    json_decref(found);
    cr_assert_eq(r.err, DASHI_OK);
    dashi_state_destroy(st);
}

/* A store whose reads fail with a transport error and count the calls. */
typedef struct failing {
    dashi_state base;
    int mgets, scans;
} failing;

static dashi_err failing_mget(dashi_state *st, size_t n, const dashi_bytes *keys, dashi_bytes *vals, char *errstr,
                              size_t errstr_size) {
    (void)keys;
    ((failing *)st)->mgets++;
    for (size_t i = 0; i < n; i++)
        vals[i] = (dashi_bytes){NULL, 0};
    return dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "store away");
}

static dashi_err failing_scan(dashi_state *st, const char *prefix, size_t prefix_len, dashi_scan_fn fn,
                              void *opaque, char *errstr, size_t errstr_size) {
    (void)prefix;
    (void)prefix_len;
    (void)fn;
    (void)opaque;
    ((failing *)st)->scans++;
    return dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "store away");
}

static const struct dashi_state_ops failing_ops = {.name = "failing", .mget = failing_mget, .scan = failing_scan};

Test(records, the_first_error_is_kept_and_stops_every_later_read) {
    failing f = {{&failing_ops}, 0, 0};
    dashi_records r;
    char err[256] = "";
    bool stored = true;
    dashi_records_init(&r, &f.base, "test", err, sizeof err);

    cr_assert_null(dashi_records_get(&r, "k", 1, &stored, NULL));
    cr_assert_not(stored);
    cr_assert_eq(r.err, DASHI_ERR_TRANSPORT);
    cr_assert_str_eq(err, "store away");
    cr_assert_null(dashi_records_scan(&r, "p:", NULL, NULL));
    cr_assert_null(dashi_records_get(&r, "k", 1, NULL, NULL));
    cr_assert_eq(f.mgets, 1);
    cr_assert_eq(f.scans, 0);

    dashi_records_init(&r, &f.base, "test", err, sizeof err);
    cr_assert_null(dashi_records_scan(&r, "p:", "uid", "c1"));
    cr_assert_eq(r.err, DASHI_ERR_TRANSPORT);
    cr_assert_null(dashi_records_get(&r, "k", 1, NULL, NULL));
    cr_assert_eq(f.scans, 1);
    cr_assert_eq(f.mgets, 1);
}
