/* json.h — json_loadb()'s tree for plain JSON text, without jansson's lexer.
 *
 * Parsing NDJSON input and view records with json_loadb() cost about 180
 * instructions per byte, most of it in jansson's lexer (a callback and a buffer
 * append per byte). dashi_json_loadb() builds the same tree (same values, same
 * member order) directly for the plain text dashi reads and writes, and hands
 * everything else — escapes, reals, long integers, errors — to json_loadb() itself,
 * so the result, and every error message, is jansson's.
 */
#ifndef DASHI_JSON_H
#define DASHI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define DASHI_BYTES8(c) (0x0101010101010101ULL * (unsigned char)(c))

/* Are the 8 bytes of x all plain string bytes of JSON text — printable ASCII other
 * than '"' and '\\' — which a writer copies and a reader takes as they are?
 * ((v - 0x01..) & ~v & 0x80.. is non-zero exactly when some byte of v is zero, and
 * (x - n..) & ~x & 0x80.. when some byte is below n; x & 0x80.. finds non-ASCII.) */
static inline bool dashi_json_plain8(uint64_t x) {
    uint64_t quote = x ^ DASHI_BYTES8('"'), backslash = x ^ DASHI_BYTES8('\\');
    return !((((x - DASHI_BYTES8(0x20)) & ~x) | ((quote - DASHI_BYTES8(1)) & ~quote) |
              ((backslash - DASHI_BYTES8(1)) & ~backslash) | x) &
             DASHI_BYTES8(0x80));
}

/* What json_loadb(text, len, flags, error) returns (a new reference, or NULL with
 * *error filled by jansson; error may be NULL). Borrows text. */
json_t *dashi_json_loadb(const char *text, size_t len, size_t flags, json_error_t *error);

/* One value of plain JSON text, as dashi_json_split() finds it (borrows the text). */
typedef struct dashi_json_span {
    char type;     /* '{' object, '[' array, '"' string, 'i' integer, 't' true, 'f' false, 'n' null */
    const char *p; /* a string's bytes (no escapes, no quotes), or a container's text from its bracket */
    size_t len;    /* bytes at p */
    json_int_t i;  /* an integer's value */
} dashi_json_span;

/* The members of the JSON object (type '{') or the elements of the array (type '[')
 * that text[0..len) holds, whitespace around it allowed: keys[i] (strings; unused for
 * an array, may then be NULL) and vals[i] in text order, nested containers checked
 * whole but not split. Their count; -1 when the text is not such a container of the
 * plain subset dashi_json_loadb() reads itself, repeats a key in any of its objects
 * (json_loadb with JSON_REJECT_DUPLICATES refuses that), nests deeper than 16 or holds
 * more than max members (64 in a nested object). So a count means jansson reads the
 * text, to the same values. For readers that want a few fields and no tree. */
int dashi_json_split(const char *text, size_t len, char type, dashi_json_span *keys, dashi_json_span *vals,
                     size_t max);

#endif
