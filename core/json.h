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

#include <stddef.h>

#include <jansson.h>

/* What json_loadb(text, len, flags, error) returns (a new reference, or NULL with
 * *error filled by jansson; error may be NULL). Borrows text. */
json_t *dashi_json_loadb(const char *text, size_t len, size_t flags, json_error_t *error);

#endif
