/* test_json.c — dashi_json_loadb() gives what json_loadb() gives, tree, member order and errors.
 *
 * The fast reader must build exactly jansson's tree for the text it takes and hand
 * everything else to jansson. Compared here: every line of a generated stream and
 * the canonical text of each event (the records the view reads look like it), hard
 * cases at the edges of the subset, and every one-byte mutation (replacement,
 * deletion, insertion) of a few texts, so each syntax error and each byte the fast
 * reader must refuse is met. Equal means: both NULL with the same error (text,
 * line, column, position), or the same dump in iteration order (integers and reals
 * told apart).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/generate.h"
#include "core/json.h"

/* The tree as text in its own member order; "" for NULL. */
static char *dump_ordered(const json_t *j) {
    return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("");
}

/* The type letter of dashi_json_span for a jansson value. */
static char span_type(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return '{';
    case JSON_ARRAY: return '[';
    case JSON_STRING: return '"';
    case JSON_INTEGER: return 'i';
    case JSON_TRUE: return 't';
    case JSON_FALSE: return 'f';
    case JSON_NULL: return 'n';
    default: return '?';
    }
}

/* dashi_json_split() takes only text jansson takes with JSON_REJECT_DUPLICATES, and
 * finds the members jansson finds. */
static void check_split(const char *text, size_t len) {
    dashi_json_span keys[64], vals[64];
    for (int t = 0; t < 2; t++) {
        char type = t ? '[' : '{';
        int n = dashi_json_split(text, len, type, keys, vals, 64);
        if (n < 0)
            continue;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        cr_assert(j, "split took '%.*s', jansson refuses it", (int)len, text);
        cr_assert_eq(span_type(j), type, "'%.*s'", (int)len, text);
        cr_assert_eq((size_t)n, type == '{' ? json_object_size(j) : json_array_size(j), "'%.*s'", (int)len, text);
        size_t i = 0;
        if (type == '{') {
            const char *k;
            json_t *v;
            json_object_foreach(j, k, v) {
                cr_assert_eq(keys[i].len, strlen(k));
                cr_assert(memcmp(keys[i].p, k, keys[i].len) == 0);
                cr_assert_eq(vals[i].type, span_type(v), "'%.*s' member %s", (int)len, text, k);
                if (json_is_string(v))
                    cr_assert(vals[i].len == json_string_length(v) && memcmp(vals[i].p, json_string_value(v), vals[i].len) == 0);
                if (json_is_integer(v))
                    cr_assert_eq(vals[i].i, json_integer_value(v));
                i++;
            }
        } else {
            json_t *v;
            json_array_foreach(j, i, v) cr_assert_eq(vals[i].type, span_type(v), "'%.*s' element %zu", (int)len, text, i);
        }
        json_decref(j);
    }
}

/* Both loaders on text[0..len) with flags: the same result. */
static void check_same(const char *text, size_t len, size_t flags) {
    json_error_t ea, eb;
    memset(&ea, 0x55, sizeof ea);
    memset(&eb, 0x55, sizeof eb);
    if (flags == JSON_REJECT_DUPLICATES)
        check_split(text, len);
    json_t *a = dashi_json_loadb(text, len, flags, &ea), *b = json_loadb(text, len, flags, &eb);
    char *da = dump_ordered(a), *db = dump_ordered(b);
    cr_assert(da && db);
    cr_expect_eq(a == NULL, b == NULL, "'%.*s' (flags %zu): fast %s, jansson %s", (int)len, text, flags,
                 a ? "parsed" : ea.text, b ? "parsed" : eb.text);
    cr_expect_str_eq(da, db, "'%.*s' (flags %zu)", (int)len, text, flags);
    if (!a && !b) {
        cr_expect_str_eq(ea.text, eb.text, "'%.*s'", (int)len, text);
        cr_expect_eq(ea.line, eb.line);
        cr_expect_eq(ea.column, eb.column);
        cr_expect_eq(ea.position, eb.position);
    } else if (a && b) {
        cr_expect_str_eq(ea.text, eb.text);
        cr_expect_str_eq(ea.source, eb.source);
        cr_expect_eq(ea.line, eb.line);
        cr_expect_eq(ea.column, eb.column);
    }
    json_decref(a);
    json_decref(b);
    free(da);
    free(db);
}

static void check_all_flags(const char *text, size_t len) {
    check_same(text, len, 0);
    check_same(text, len, JSON_REJECT_DUPLICATES);
    check_same(text, len, JSON_DECODE_ANY);
    check_same(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY);
    check_same(text, len, JSON_DISABLE_EOF_CHECK); /* not in the subset: jansson's */
}

static void check_str(const char *text) {
    check_all_flags(text, strlen(text));
}

Test(json, generated_stream_and_its_canonical_text) {
    dashi_gen_opts o;
    char err[256], *buf = NULL, *line = NULL;
    size_t size = 0, cap = 0, lines = 0;
    uint64_t n = 0;
    ssize_t len;
    dashi_gen_opts_default(&o);
    o.ambassadors = 40;
    o.customers = 400;
    o.sorted = 0;
    FILE *f = open_memstream(&buf, &size);
    cr_assert(f);
    cr_assert_eq(dashi_generate(&o, f, &n, err, sizeof err), DASHI_OK, "%s", err);
    fclose(f);
    f = fmemopen(buf, size, "r");
    cr_assert(f);
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        check_same(line, (size_t)len, JSON_REJECT_DUPLICATES);
        json_t *j = json_loadb(line, (size_t)len, 0, NULL);
        cr_assert(j);
        char *canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        check_same(canon, strlen(canon), 0);
        free(canon);
        json_decref(j);
        lines++;
    }
    cr_expect_eq(lines, n);
    cr_expect_gt(lines, 1000);
    fclose(f);
    free(line);
    free(buf);
}

Test(json, hard_cases) {
    static const char *const cases[] = {
        "{}", "[]", " { } ", "\t[\r\n]\n", "{\"a\":1}", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":[2]}}",
        "{\"\":\"\"}", "[-0]", "[0]", "[00]", "[01]", "[-]", "[-a]", "[1.5]", "[1e3]", "[1E3]", "[0.0]",
        "[123456789012345678]", "[-123456789012345678]", "[1234567890123456789]", "[9223372036854775807]",
        "[9223372036854775808]", "[-9223372036854775808]", "[true,false,null]", "[truex]", "[tru]",
        "[nul]", "[True]", "[\"a\\nb\"]", "[\"a\\u0000b\"]", "[\"\\u00e9\"]", "[\"caf\xc3\xa9\"]",
        "[\"\xe4\xb8\xad\xe6\x96\x87\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\xc3\"]", "[\"\xc0\xaf\"]",
        "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xff\"]", "[\"a\x01\"]", "[\"a\x7f\"]",
        "[\"abc", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "[1,]", "[,1]", "{,}", "{\"a\" 1}",
        "{1:2}", "[1 2]", "[1]x", "[1] ", "[1][2]", "\"str\"", "12", "true", "null", " ", "",
        "{\"a\":[{\"b\":[{\"c\":[]}]}]}", "[\xc3\xa9]", "{\"k\xc3\xa9\":1}", "[1,{\"x\":-5,\"y\":[true]}]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_str(cases[i]);
    /* an embedded NUL, inside a string and after the root */
    check_all_flags("[\"a\0b\"]", 7);
    check_all_flags("[1]\0", 4);
    /* nesting around the fast reader's depth limit and beyond */
    for (int depth = 60; depth <= 70; depth++) {
        char text[200];
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        check_all_flags(text, 2 * (size_t)depth);
    }
    /* NULL text */
    json_error_t e;
    cr_expect_null(dashi_json_loadb(NULL, 0, 0, &e));
    cr_expect_str_eq(e.text, "wrong arguments");
}

Test(json, every_one_byte_mutation) {
    static const char *const seeds[] = {
        "{\"type\":\"OrderPaid\",\"amount\":-1200,\"items\":[{\"n\":0,\"ok\":true,\"x\":null}],\"s\":\"\xc3\xa9\"}",
        "[{\"a\":[1,2,{\"b\":false}]},\"c\",-0,{}]",
    };
    static const char subst[] = "\"\\{}[]:,0-.eE 9tfnx\t\n";
    char buf[256];
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        const char *t = seeds[s];
        size_t n = strlen(t);
        for (size_t i = 0; i <= n; i++) {
            if (i < n) { /* deletion */
                memcpy(buf, t, i);
                memcpy(buf + i, t + i + 1, n - i - 1);
                check_same(buf, n - 1, JSON_REJECT_DUPLICATES);
                check_same(buf, n - 1, 0);
            }
            for (size_t k = 0; k < sizeof subst; k++) { /* the NUL at the end of subst too */
                if (i < n) { /* replacement */
                    memcpy(buf, t, n);
                    buf[i] = subst[k];
                    check_same(buf, n, JSON_REJECT_DUPLICATES);
                }
                memcpy(buf, t, i); /* insertion */
                buf[i] = subst[k];
                memcpy(buf + i + 1, t + i, n - i);
                check_same(buf, n + 1, JSON_REJECT_DUPLICATES);
            }
            for (unsigned hi = 0x80; i < n && hi <= 0xff; hi += 0x1f) { /* non-ASCII bytes */
                memcpy(buf, t, n);
                buf[i] = (char)hi;
                check_same(buf, n, 0);
            }
        }
    }
}
