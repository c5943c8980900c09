/* json.c — json_loadb()'s tree for plain JSON text, built without jansson's lexer.
 *
 * A direct recursive reader handles the subset dashi's own text is made of:
 * objects, arrays, strings without escapes (valid UTF-8 bytes are taken as they
 * are), integers of at most 18 digits, true, false and null, with JSON whitespace
 * between tokens. It builds the tree with the calls jansson's parser makes
 * (json_object_setn_new_nocheck, json_array_append_new, json_integer, a string of
 * the same bytes), so values and member order are the same; a repeated key under
 * JSON_REJECT_DUPLICATES, or anything outside the subset — an escape, a real, a
 * longer integer, a control character, invalid UTF-8, nesting deeper than
 * FAST_MAX_DEPTH, any syntax error, a root that is not an object or array, flags
 * other than JSON_REJECT_DUPLICATES and JSON_DECODE_ANY, out of memory — drops
 * what was built and parses the whole text again with json_loadb(). So the reader
 * only ever has to be right about valid plain text; jansson decides the rest,
 * errors included (tests/test_json.c compares the two on generated and mutated text).
 * dashi_json_split() scans the same subset without building anything, for readers
 * that take a few fields straight into a struct (an input event); they fall back to
 * a tree for whatever it refuses.
 */
#include "core/json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/event_desc.h" /* dashi_utf8_valid: jansson's UTF-8 rules */

#define FAST_MAX_DEPTH 64   /* deeper text goes to jansson (its own limit is 2048) */
#define FAST_MAX_DIGITS 18  /* an integer of at most 18 digits cannot overflow json_int_t */
#define FAST_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

typedef struct reader {
    const char *p, *end;
    bool reject_duplicates;
} reader;

static void skip_ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* A string after its opening quote, up to and past the closing one: *s and *len
 * borrow its bytes. false when it is not plain (escape, control character, invalid
 * UTF-8, no closing quote). */
static bool read_string(reader *r, const char **s, size_t *len) {
    const char *start = r->p;
    bool high = false;
    uint64_t word;
    while (r->end - r->p >= 8 && (memcpy(&word, r->p, 8), dashi_json_plain8(word)))
        r->p += 8; /* eight plain bytes at once, then byte by byte */
    for (;; r->p++) {
        if (r->p >= r->end)
            return false;
        unsigned char c = (unsigned char)*r->p;
        if (c == '"')
            break;
        if (c < 0x20 || c == '\\')
            return false;
        high |= c >= 0x80;
    }
    *s = start;
    *len = (size_t)(r->p - start);
    r->p++;
    return !high || dashi_utf8_valid(start, *len);
}

static json_t *read_value(reader *r, int depth);

static json_t *read_object(reader *r, int depth) {
    json_t *obj = json_object(), *val;
    const char *key;
    size_t key_len;

    if (!obj)
        return NULL;
    r->p++; /* '{' */
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return obj;
    }
    for (;;) {
        if (r->p >= r->end || *r->p != '"')
            break;
        r->p++;
        if (!read_string(r, &key, &key_len))
            break;
        if (r->reject_duplicates && json_object_getn(obj, key, key_len))
            break; /* jansson's "duplicate object key" */
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':')
            break;
        r->p++;
        skip_ws(r);
        if (!(val = read_value(r, depth + 1)))
            break;
        if (json_object_setn_new_nocheck(obj, key, key_len, val) != 0) /* releases val */
            break;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return obj;
        }
        break;
    }
    json_decref(obj);
    return NULL;
}

static json_t *read_array(reader *r, int depth) {
    json_t *arr = json_array(), *val;

    if (!arr)
        return NULL;
    r->p++; /* '[' */
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return arr;
    }
    for (;;) {
        if (!(val = read_value(r, depth + 1)) || json_array_append_new(arr, val) != 0)
            break;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return arr;
        }
        break;
    }
    json_decref(arr);
    return NULL;
}

/* An integer as jansson lexes it: '-'?, then '0' or a non-zero digit run, not
 * followed by a fraction or exponent (a real: jansson's turn). */
static bool lex_integer(reader *r, json_int_t *out) {
    const char *p = r->p;
    bool neg = false;
    int64_t v = 0;
    size_t digits = 0;

    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= r->end || *p < '0' || *p > '9')
        return false;
    if (*p == '0') {
        p++;
        digits = 1;
        if (p < r->end && *p >= '0' && *p <= '9')
            return false; /* a leading zero: jansson refuses it */
    } else {
        while (p < r->end && *p >= '0' && *p <= '9') {
            if (++digits > FAST_MAX_DIGITS)
                return false;
            v = v * 10 + (*p - '0');
            p++;
        }
    }
    if (p < r->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return false;
    r->p = p;
    *out = (json_int_t)(neg ? -v : v);
    return true;
}

static json_t *read_integer(reader *r) {
    json_int_t v;
    return lex_integer(r, &v) ? json_integer(v) : NULL;
}

/* A literal: the word, not followed by another letter (jansson lexes a letter run). */
static bool read_word(reader *r, const char *word, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return false;
    r->p += n;
    return true;
}

static json_t *read_value(reader *r, int depth) {
    const char *s;
    size_t len;

    if (r->p >= r->end || depth > FAST_MAX_DEPTH)
        return NULL;
    switch (*r->p) {
    case '{':
        return read_object(r, depth);
    case '[':
        return read_array(r, depth);
    case '"':
        r->p++;
        return read_string(r, &s, &len) ? json_stringn_nocheck(s, len) : NULL;
    case 't':
        return read_word(r, "true", 4) ? json_true() : NULL;
    case 'f':
        return read_word(r, "false", 5) ? json_false() : NULL;
    case 'n':
        return read_word(r, "null", 4) ? json_null() : NULL;
    default:
        return read_integer(r);
    }
}

/* ---------------------------------------------------------------- spans */

#define SPLIT_MAX_KEYS 64  /* a nested object with more members is refused (the caller falls back) */
#define SPLIT_MAX_DEPTH 16 /* and so is deeper nesting (each level holds SPLIT_MAX_KEYS keys) */

static bool scan_value(reader *r, dashi_json_span *v, int depth);

/* The container at r->p (its bracket): members into keys/vals (when not NULL, up to
 * max), checked to the closing bracket. Its count, or -1. */
static int scan_container(reader *r, char type, dashi_json_span *keys, dashi_json_span *vals, size_t max,
                          int depth) {
    dashi_json_span own_keys[SPLIT_MAX_KEYS], val;
    const char close = type == '{' ? '}' : ']';
    size_t n = 0;

    if (r->p >= r->end || *r->p != type || depth > SPLIT_MAX_DEPTH)
        return -1;
    if (type == '{' && !keys) { /* keys are needed to find a repeated one */
        keys = own_keys;
        max = SPLIT_MAX_KEYS;
    }
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        if (n >= max && (type == '{' || vals))
            return -1;
        if (type == '{') {
            dashi_json_span *k = &keys[n];
            if (r->p >= r->end || *r->p != '"')
                return -1;
            r->p++;
            k->type = '"';
            if (!read_string(r, &k->p, &k->len))
                return -1;
            for (size_t i = 0; i < n; i++)
                if (keys[i].len == k->len && memcmp(keys[i].p, k->p, k->len) == 0)
                    return -1; /* a repeated key */
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return -1;
            r->p++;
            skip_ws(r);
        }
        if (!scan_value(r, vals ? &vals[n] : &val, depth + 1))
            return -1;
        n++;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return n > (size_t)INT32_MAX ? -1 : (int)n; /* an int: -1 is the refusal */
        }
        return -1;
    }
}

static bool scan_value(reader *r, dashi_json_span *v, int depth) {
    if (r->p >= r->end)
        return false;
    v->p = r->p;
    v->type = *r->p;
    switch (*r->p) {
    case '{':
    case '[':
        if (scan_container(r, *r->p, NULL, NULL, 0, depth) < 0)
            return false;
        v->len = (size_t)(r->p - v->p);
        return true;
    case '"':
        r->p++;
        return read_string(r, &v->p, &v->len);
    case 't':
        return read_word(r, "true", 4);
    case 'f':
        return read_word(r, "false", 5);
    case 'n':
        return read_word(r, "null", 4);
    default:
        v->type = 'i';
        if (!lex_integer(r, &v->i))
            return false;
        v->len = (size_t)(r->p - v->p);
        return true;
    }
}

int dashi_json_split(const char *text, size_t len, char type, dashi_json_span *keys, dashi_json_span *vals,
                     size_t max) {
    reader r = {text, text ? text + len : NULL, true};
    int n;
    if (!text || !vals || (type == '{' && !keys))
        return -1;
    skip_ws(&r);
    if ((n = scan_container(&r, type, keys, vals, max, 1)) < 0)
        return -1;
    skip_ws(&r);
    return r.p == r.end ? n : -1;
}

/* ---------------------------------------------------------------- the tree */

json_t *dashi_json_loadb(const char *text, size_t len, size_t flags, json_error_t *error) {
    reader r = {text, text ? text + len : NULL, (flags & JSON_REJECT_DUPLICATES) != 0};
    json_t *root = NULL;

    if (!text || (flags & ~(size_t)FAST_FLAGS))
        goto slow;
    skip_ws(&r);
    if (r.p >= r.end || (*r.p != '{' && *r.p != '['))
        goto slow; /* empty, or a root jansson may refuse (or, with JSON_DECODE_ANY, take) */
    if (!(root = read_value(&r, 1)))
        goto slow;
    skip_ws(&r);
    if (r.p != r.end)
        goto slow; /* something after the root: jansson's "end of file expected" */
    if (error) { /* what json_loadb leaves in it on success */
        memset(error, 0, sizeof(*error));
        error->line = error->column = -1;
        strcpy(error->source, "<buffer>");
    }
    return root;
slow:
    json_decref(root);
    return json_loadb(text, len, flags, error);
}
