/* records.h — the operator tools' reader of stored records: one key, or every key under a prefix, parsed as JSON.
 *
 * `dashi explain` and `dashi inspect` both read the rules modules' records (their
 * layouts are in the headers of core/identity.c, core/commission.c and
 * core/campaign.c) through the state ops only, so they work on any dashi_state:
 * mget of one key, or scan of a prefix keeping the records whose string field
 * equals a value. This module is that reading, with the error rule both follow:
 * the first back-end error is kept in the reader and every later read is skipped,
 * so a caller reads freely and checks once at the end. What a caller does with a
 * record (explain caches it, inspect prints it and lists absent keys) stays with
 * the caller. The reader is a plain struct with no allocation of its own: it
 * needs no _destroy.
 */
#ifndef DASHI_RECORDS_H
#define DASHI_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/error.h"
#include "core/state.h"

typedef struct dashi_records {
    dashi_state *st;    /* borrowed: the store read */
    const char *who;    /* borrowed: the command named in this module's own errors ("explain") */
    dashi_err err;      /* first error of a read; reads stop after it */
    char *errstr;       /* borrowed: where that error's text is written */
    size_t errstr_size;
} dashi_records;

/* A reader of st for the command who (both borrowed, and errstr too), with no error yet. */
void dashi_records_init(dashi_records *r, dashi_state *st, const char *who, char *errstr, size_t errstr_size);

/* The value under key (key_len bytes; borrowed) parsed as JSON (an object or an
 * array, as json_loadb reads by default): a new reference. NULL when the key is
 * absent (*stored false), when its value is not such JSON (*stored true, *stored_len its length in bytes), or when r->err is set (by
 * this read, or earlier: then nothing is read; *stored false). stored and
 * stored_len may be NULL. */
json_t *dashi_records_get(dashi_records *r, const char *key, size_t key_len, bool *stored, size_t *stored_len);

/* The JSON records (read as by dashi_records_get) under prefix (borrowed) — when
 * field is not NULL, only objects whose string member field equals want (both
 * borrowed) — as a new object keyed by the rest of each key. Values that are not
 * JSON are passed over. NULL when r->err is set (by this scan, out of memory
 * included, or earlier: then nothing is read). */
json_t *dashi_records_scan(dashi_records *r, const char *prefix, const char *field, const char *want);

#endif
