/* records.c — reads stored records by key or by prefix for explain and inspect, parsed with jansson.
 *
 * Design. A get is one mget of one key; a scan is one scan of the prefix whose
 * callback parses each value and keeps it under the rest of its key when it
 * matches. Both do nothing once r->err is set and set it on the first failure,
 * so a command makes many reads and looks at the error once. Nothing is cached
 * here: explain keeps its own cache of parsed records, inspect reads each key
 * once.
 */
#include "app/records.h"

#include <stdlib.h>
#include <string.h>

void dashi_records_init(dashi_records *r, dashi_state *st, const char *who, char *errstr, size_t errstr_size) {
    r->st = st;
    r->who = who;
    r->err = DASHI_OK;
    r->errstr = errstr;
    r->errstr_size = errstr_size;
}

json_t *dashi_records_get(dashi_records *r, const char *key, size_t key_len, bool *stored, size_t *stored_len) {
    dashi_bytes k = {(char *)key, key_len}, v = {NULL, 0}; /* mget only reads its keys */
    json_t *rec = NULL;
    if (stored)
        *stored = false;
    if (r->err != DASHI_OK)
        goto out;
    if ((r->err = r->st->ops->mget(r->st, 1, &k, &v, r->errstr, r->errstr_size)) != DASHI_OK || !v.data)
        goto out;
    if (stored)
        *stored = true;
    if (stored_len)
        *stored_len = v.len;
    rec = json_loadb(v.data, v.len, 0, NULL);
out:
    free(v.data);
    return rec;
}

/* What a scan keeps: records under a prefix whose string field equals want (all when field is NULL). */
typedef struct scan_acc {
    json_t *found; /* key without the prefix → record */
    size_t prefix_len;
    const char *field, *want;
} scan_acc;

static int scan_keep(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    scan_acc *a = opaque;
    json_t *rec = json_loadb(val, val_len, 0, NULL);
    const char *f;
    char *suffix = NULL;
    if (!rec)
        goto out;
    f = a->field ? json_string_value(json_object_get(rec, a->field)) : NULL;
    if (a->field && (!f || !a->want || strcmp(f, a->want) != 0))
        goto out;
    if (!(suffix = strndup(key + a->prefix_len, key_len - a->prefix_len)))
        goto out;
    json_object_set(a->found, suffix, rec);
out:
    free(suffix);
    json_decref(rec);
    return 0;
}

json_t *dashi_records_scan(dashi_records *r, const char *prefix, const char *field, const char *want) {
    scan_acc a = {json_object(), strlen(prefix), field, want};
    if (a.found && r->err == DASHI_OK)
        r->err = r->st->ops->scan(r->st, prefix, a.prefix_len, scan_keep, &a, r->errstr, r->errstr_size);
    if (!a.found && r->err == DASHI_OK)
        r->err = dashi_errf(DASHI_ERR_NOMEM, r->errstr, r->errstr_size, "%s: out of memory", r->who);
    if (r->err != DASHI_OK) {
        json_decref(a.found);
        a.found = NULL;
    }
    return a.found;
}
