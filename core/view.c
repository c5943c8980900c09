/* view.c — per-step cache of records over the state ops table, and the write set that commits it.
 *
 * The view keeps the records it has seen across steps, so the rules code pays for a
 * JSON parse only when a record's bytes changed, not on every read. Each entry holds
 * the bytes the store returned (or was sent) for its key, "raw", and the JSON tree
 * parsed from exactly those bytes. The first read of a key in a step still asks the
 * store (one mget, as before): equal bytes reuse the tree, other bytes are parsed
 * again. So the cache never answers differently from the store, whoever else wrote
 * to it (a pipeline's hook, a second instance, a test); it only saves the parse.
 *
 * The invariant "tree == parse(raw)" between steps is kept like this:
 *   - a step that is reset without dashi_view_committed() (dropped, failed, or a
 *     caller that applies the write set itself) forgets every record it edited;
 *   - at commit an edited record's tree is made what a parse of its dump gives: the
 *     keys of every object re-inserted in dump order when they are not (a parse
 *     keeps text order, the dump sorts; handlers may iterate objects). When that
 *     cannot hold — a node shared with another tree (an edit through one record
 *     would change the other), a NUL in a string or key, a root that is not an
 *     object or array (a load refuses those) — the step's records are forgotten and
 *     the next read parses them again.
 * Records read-only in a step are never changed by it (the API hands them out const).
 *
 * Entries live in a chained hash table (FNV-1a) and on an LRU list; at each reset
 * the least recently used are dropped while the cache holds more than
 * VIEW_CACHE_ENTRIES records or VIEW_CACHE_BYTES bytes of keys and raw values, so
 * memory stays bounded whatever the store's size (a step itself may touch more;
 * its entries are pinned until it ends). The step's entries are also on a "touched"
 * list, so reset, write set and commit cost what the step touched, not the cache
 * size. Records are written as json_dumps(JSON_COMPACT | JSON_SORT_KEYS) writes
 * them (by a writer of its own, see "serialization"), so both back ends hold
 * byte-identical records for the same history; a record whose text equals its raw
 * bytes (edited, but unchanged) is left out of the write set, and so is the delete
 * of a record that is absent.
 */
#include "core/view.h"
#include "core/event.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_CACHE_ENTRIES 32768                /* records kept between steps */
#define VIEW_CACHE_BYTES (4u * 1024 * 1024)     /* bytes of keys + raw values kept between steps (the trees take ~10x) */
#define VIEW_BUCKETS_MIN 1024

typedef struct view_entry {
    struct view_entry *chain;         /* next in the bucket */
    struct view_entry *newer, *older; /* LRU list */
    uint64_t hash;
    uint64_t step;      /* the step that last read it from the store */
    json_t *val;        /* owned reference; NULL = absent; == parse(raw) between steps */
    char *raw;          /* owned: the store's bytes at the last read or commit; NULL = absent */
    size_t raw_len;
    char *pending;      /* owned: the dump in this step's write set (NULL: delete, or none) */
    size_t pending_len;
    bool dirty;         /* edited in this step */
    bool written;       /* in this step's write set: pending is what it holds */
    bool settled;       /* written, and the dump found the tree already what a parse of pending gives */
    bool drop;          /* forget when the step ends */
    size_t key_len;
    char key[];         /* NUL-terminated */
} view_entry;

typedef struct view_timer {
    char *id;        /* owned */
    dashi_time due;
    json_t *payload; /* owned, may be NULL */
    bool add;        /* add or delete */
} view_timer;

struct dashi_view {
    dashi_state *st;           /* borrowed */
    view_entry **buckets;      /* owned table of chains; n_buckets is a power of two */
    size_t n_buckets, count, bytes;
    view_entry *newest, *oldest;
    view_entry **touched;      /* owned array; borrows the entries read in this step */
    size_t n_touched, cap_touched;
    uint64_t step;
    view_timer *timers;
    size_t n_timers, cap_timers;
    dashi_err err;
    char errmsg[256];
};

static uint64_t hash_key(const char *s, size_t *len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    const char *p = s;
    for (; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    *len = (size_t)(p - s);
    return h;
}

static size_t entry_bytes(const view_entry *e) {
    return e->key_len + e->raw_len;
}

/* ---------------------------------------------------------------- table and LRU */

static void lru_unlink(dashi_view *v, view_entry *e) {
    if (e->newer)
        e->newer->older = e->older;
    else
        v->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        v->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(dashi_view *v, view_entry *e) {
    e->older = v->newest;
    e->newer = NULL;
    if (v->newest)
        v->newest->newer = e;
    else
        v->oldest = e;
    v->newest = e;
}

static view_entry *lookup(const dashi_view *v, const char *key, size_t key_len, uint64_t h) {
    view_entry *e = v->buckets[h & (v->n_buckets - 1)];
    while (e && (e->hash != h || e->key_len != key_len || memcmp(e->key, key, key_len) != 0))
        e = e->chain;
    return e;
}

/* Double the bucket array when the table is fuller than one entry per bucket.
 * Out of memory only keeps chains longer. */
static void maybe_grow(dashi_view *v) {
    if (v->count < v->n_buckets)
        return;
    size_t n = v->n_buckets * 2;
    view_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < v->n_buckets; i++)
        for (view_entry *e = v->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(v->buckets);
    v->buckets = b;
    v->n_buckets = n;
}

static void entry_free(view_entry *e) {
    json_decref(e->val);
    free(e->raw);
    free(e->pending);
    free(e);
}

/* Remove e from the table and the LRU list and free it (not from the touched list). */
static void evict(dashi_view *v, view_entry *e) {
    view_entry **p = &v->buckets[e->hash & (v->n_buckets - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    lru_unlink(v, e);
    v->count--;
    v->bytes -= entry_bytes(e);
    entry_free(e);
}

/* ---------------------------------------------------------------- life cycle */

dashi_view *dashi_view_new(dashi_state *st) {
    dashi_view *v = calloc(1, sizeof(*v));
    if (!v)
        goto out;
    v->st = st;
    v->n_buckets = VIEW_BUCKETS_MIN;
    if (!(v->buckets = calloc(v->n_buckets, sizeof(*v->buckets)))) {
        dashi_view_destroy(v);
        v = NULL;
    }
out:
    return v;
}

static void clear_timers(dashi_view *v) {
    for (size_t i = 0; i < v->n_timers; i++) {
        free(v->timers[i].id);
        json_decref(v->timers[i].payload);
    }
    v->n_timers = 0;
}

void dashi_view_reset(dashi_view *v) {
    /* the step is over: what it edited but did not commit (or could not keep) goes */
    for (size_t i = 0; i < v->n_touched; i++) {
        view_entry *e = v->touched[i];
        if (e->dirty || e->drop) {
            evict(v, e);
            continue;
        }
        free(e->pending);
        e->pending = NULL;
        e->written = false;
    }
    v->n_touched = 0;
    v->step++;
    while (v->oldest && (v->count > VIEW_CACHE_ENTRIES || v->bytes > VIEW_CACHE_BYTES))
        evict(v, v->oldest);
    clear_timers(v);
    v->err = DASHI_OK;
    v->errmsg[0] = '\0';
}

void dashi_view_destroy(dashi_view *v) {
    if (!v)
        return;
    for (view_entry *e = v->newest, *next; e; e = next) {
        next = e->older;
        entry_free(e);
    }
    clear_timers(v);
    free(v->buckets);
    free(v->touched);
    free(v->timers);
    free(v);
}

static void set_err(dashi_view *v, dashi_err err, const char *msg) {
    if (v->err != DASHI_OK)
        return;
    v->err = err;
    size_t n = strlen(msg); /* truncation is fine: the message only explains */
    if (n >= sizeof(v->errmsg))
        n = sizeof(v->errmsg) - 1;
    memcpy(v->errmsg, msg, n);
    v->errmsg[n] = '\0';
}

/* ---------------------------------------------------------------- reads */

/* Make e's tree the parse of *bytes (NULL data = absent), which e then owns (*bytes
 * is emptied). 0, or -1 with the view's error set and *bytes left to the caller. */
static int entry_fill(dashi_view *v, view_entry *e, dashi_bytes *bytes) {
    json_t *j = NULL;
    json_error_t jerr;
    int rc = -1;

    if (bytes->data && !(j = dashi_json_loadb(bytes->data, bytes->len, 0, &jerr))) {
        char msg[512];
        snprintf(msg, sizeof(msg), "view: record %.100s is not JSON: %s", e->key, jerr.text);
        set_err(v, DASHI_ERR_BACKEND, msg);
        goto out;
    }
    json_decref(e->val);
    free(e->raw);
    v->bytes -= entry_bytes(e);
    e->val = j;
    e->raw = bytes->data;
    e->raw_len = bytes->data ? bytes->len : 0;
    v->bytes += entry_bytes(e);
    *bytes = (dashi_bytes){NULL, 0};
    rc = 0;
out:
    return rc;
}

/* A new, empty entry for key in the table (absent, no bytes); NULL on out of memory. */
static view_entry *entry_new(dashi_view *v, const char *key, size_t key_len, uint64_t h) {
    view_entry *e = calloc(1, sizeof(*e) + key_len + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, key_len + 1);
    e->key_len = key_len;
    e->hash = h;
    e->step = v->step - 1; /* not read in this step yet */
    maybe_grow(v);
    e->chain = v->buckets[h & (v->n_buckets - 1)];
    v->buckets[h & (v->n_buckets - 1)] = e;
    lru_push_newest(v, e);
    v->count++;
    v->bytes += entry_bytes(e);
    return e;
}

static int touch(dashi_view *v, view_entry *e) {
    if (v->n_touched == v->cap_touched) {
        size_t cap = v->cap_touched ? v->cap_touched * 2 : 64;
        view_entry **t = realloc(v->touched, cap * sizeof(*t));
        if (!t)
            return -1;
        v->touched = t;
        v->cap_touched = cap;
    }
    v->touched[v->n_touched++] = e;
    e->step = v->step;
    lru_unlink(v, e);
    lru_push_newest(v, e);
    return 0;
}

/* The entry for key, read from the store on its first use in the step; NULL on error. */
static view_entry *load(dashi_view *v, const char *key) {
    char errstr[256];
    size_t key_len;
    uint64_t h;
    view_entry *e, *result = NULL;
    dashi_bytes k, val = {NULL, 0};
    dashi_err err;

    if (v->err != DASHI_OK)
        goto out;
    h = hash_key(key, &key_len);
    if ((e = lookup(v, key, key_len, h)) != NULL && e->step == v->step) {
        result = e;
        goto out;
    }
    errstr[0] = '\0';
    k = (dashi_bytes){(char *)key, key_len};
    if ((err = v->st->ops->mget(v->st, 1, &k, &val, errstr, sizeof(errstr))) != DASHI_OK) {
        set_err(v, err, errstr);
        goto out;
    }
    if ((!e && !(e = entry_new(v, key, key_len, h))) || touch(v, e) < 0) {
        if (e) /* not touched: it holds nothing of this step */
            evict(v, e);
        set_err(v, DASHI_ERR_NOMEM, "view: out of memory");
        goto out;
    }
    if ((val.data == NULL) == (e->raw == NULL) && val.len == e->raw_len &&
        (!val.data || memcmp(val.data, e->raw, val.len) == 0))
        result = e; /* the same bytes: the tree already is their parse */
    else if (entry_fill(v, e, &val) == 0)
        result = e;
    else
        e->drop = true;
out:
    free(val.data);
    return result;
}

const json_t *dashi_view_get(dashi_view *v, const char *key) {
    view_entry *e = load(v, key);
    return e ? e->val : NULL;
}

json_t *dashi_view_edit(dashi_view *v, const char *key) {
    view_entry *e = load(v, key);
    if (!e)
        return NULL;
    if (!e->val || !json_is_object(e->val)) {
        json_decref(e->val);
        e->val = json_object();
    }
    e->dirty = true;
    return e->val;
}

void dashi_view_put(dashi_view *v, const char *key, json_t *val) {
    view_entry *e = load(v, key);
    if (!e) {
        json_decref(val);
        return;
    }
    json_decref(e->val);
    e->val = val;
    e->dirty = true;
}

void dashi_view_del(dashi_view *v, const char *key) {
    dashi_view_put(v, key, NULL);
}

bool dashi_view_exists(dashi_view *v, const char *key) {
    return dashi_view_get(v, key) != NULL;
}

/* Format a key into key[VIEW_KEY_MAX]. A key that does not fit is never cut (two
 * long ids would then share a record): it poisons the step as bad input, which the
 * engine refuses whole. Validation (event.h limits) keeps every real key far below. */
#define VIEW_KEY_MAX 512

/* vsnprintf(key, size, fmt, ap), with the common key formats — text and "%s" of a
 * string, like "acct:%s" — copied without printf (it was a cost of every read); any
 * other conversion, or a NULL string, goes to vsnprintf. Returns the length, or a
 * value >= size when the key does not fit. */
static int key_format(char *key, size_t size, const char *fmt, va_list ap) {
    va_list fast;
    size_t n = 0;
    int rc = -1;

    va_copy(fast, ap);
    for (const char *f = fmt; *f; f++) {
        const char *s = f, *arg;
        size_t len;
        if (*f == '%') {
            if (f[1] != 's' || !(arg = va_arg(fast, const char *)))
                goto out; /* rc -1: printf's turn */
            s = arg;
            len = strlen(arg);
            f++;
        } else {
            len = 1;
        }
        if (n + len >= size) {
            rc = (int)size; /* too long: the caller refuses it */
            goto out;
        }
        memcpy(key + n, s, len);
        n += len;
    }
    key[n] = '\0';
    rc = (int)n;
out:
    va_end(fast);
    return rc >= 0 ? rc : vsnprintf(key, size, fmt, ap);
}

#define VIEW_KEYF(fmt)                                                          \
    char key[VIEW_KEY_MAX];                                                     \
    va_list ap;                                                                 \
    va_start(ap, fmt);                                                          \
    int klen = key_format(key, sizeof(key), fmt, ap);                           \
    va_end(ap);                                                                 \
    if (klen < 0 || (size_t)klen >= sizeof(key)) {                              \
        set_err(v, DASHI_ERR_INVALID, "view: state key longer than 511 bytes"); \
        return NULL;                                                            \
    }

const json_t *dashi_view_getf(dashi_view *v, const char *fmt, ...) {
    VIEW_KEYF(fmt);
    return dashi_view_get(v, key);
}

json_t *dashi_view_editf(dashi_view *v, const char *fmt, ...) {
    VIEW_KEYF(fmt);
    return dashi_view_edit(v, key);
}

/* ---------------------------------------------------------------- timers */

static void add_timer_op(dashi_view *v, const char *id, dashi_time due, json_t *payload, bool add) {
    if (v->n_timers == v->cap_timers) {
        size_t cap = v->cap_timers ? v->cap_timers * 2 : 8;
        view_timer *t = realloc(v->timers, cap * sizeof(*t));
        if (!t) {
            json_decref(payload);
            set_err(v, DASHI_ERR_NOMEM, "view: out of memory");
            return;
        }
        v->timers = t;
        v->cap_timers = cap;
    }
    view_timer *t = &v->timers[v->n_timers];
    t->id = strdup(id);
    if (!t->id) {
        json_decref(payload);
        set_err(v, DASHI_ERR_NOMEM, "view: out of memory");
        return;
    }
    t->due = due;
    t->payload = payload;
    t->add = add;
    v->n_timers++;
}

void dashi_view_timer_add(dashi_view *v, const char *id, dashi_time due, json_t *payload) {
    add_timer_op(v, id, due, payload, true);
}

void dashi_view_timer_del(dashi_view *v, const char *id) {
    add_timer_op(v, id, 0, NULL, false);
}

/* ---------------------------------------------------------------- serialization */

/* Records are written byte for byte as json_dumps(JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENCODE_ANY) writes them, without its per-container loop check (a "%p" key in
 * a hash table), its callback per fragment and its printf per integer, which made
 * it the largest cost of a step. Reals, rare in records, are still written by
 * jansson. Strings are escaped as jansson does without JSON_ENSURE_ASCII: '"', '\\'
 * and the control characters (\b \f \n \r \t by name, the others as \u00XX), the
 * rest as is; invalid UTF-8 fails the dump, as it does in jansson. */

#define DUMP_MAX_DEPTH 2048 /* far beyond any record; a deeper tree is refused, like a cycle */

typedef struct key_val {
    const char *key; /* borrowed from the object, or into a sort's key buffer */
    size_t len;
    json_t *val;     /* borrowed, or a reference held during a sort */
} key_val;

/* jansson's JSON_SORT_KEYS order: bytes, then length. */
static int cmp_key_val(const void *a, const void *b) {
    const key_val *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

typedef struct out_buf {
    char *p;     /* owned; NUL-terminated by dump_canonical */
    size_t len, cap;
    bool failed; /* out of memory, or a value jansson would not write */
    bool settle; /* put the members of objects out of dump order in dump order (not shared ones) */
    bool unsettled; /* a parse of the text would not give the tree as it is: an object out
                     * of dump order left so, a node with another owner, a NUL in a string or key */
} out_buf;

/* Room for n more bytes and a NUL; false (and failed) when there is none. */
static inline bool out_room(out_buf *b, size_t n) {
    if (b->failed)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    return true;
}

static inline void out_put(out_buf *b, const char *s, size_t n) {
    if (!out_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline void out_char(out_buf *b, char c) {
    if (out_room(b, 1))
        b->p[b->len++] = c;
}

static void out_string(out_buf *b, const char *s, size_t n) {
    int bad = 0;
    if (!out_room(b, DASHI_JSON_QUOTE_ROOM(n)))
        return;
    b->unsettled |= memchr(s, '\0', n) != NULL; /* a load refuses \u0000 */
    b->len += dashi_json_quote(b->p + b->len, s, n, &bad);
    b->failed |= bad;
}

static void out_int(out_buf *b, json_int_t v) {
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    out_put(b, tmp + i, sizeof(tmp) - i);
}

static void out_value(out_buf *b, const json_t *j, int depth);

/* kv in dump order: an insertion sort for the few members of most objects, qsort beyond. */
static void sort_key_vals(key_val *kv, size_t n) {
    if (n > 24) {
        qsort(kv, n, sizeof(*kv), cmp_key_val);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        key_val x = kv[i];
        size_t k = i;
        for (; k > 0 && cmp_key_val(&kv[k - 1], &x) > 0; k--)
            kv[k] = kv[k - 1];
        kv[k] = x;
    }
}

/* Put obj's members in the order of kv (all of them, in dump order, borrowed from
 * obj). A member deleted and set again goes to the end, so the members that already
 * are a prefix of that order, in order, stay; the others move to the end in order (an
 * edit mostly adds a key or two to a sorted record: they and the keys after them
 * move). 0, or -1 on out of memory, when obj may have lost members. */
static int reorder_members(json_t *obj, const key_val *kv, size_t n) {
    size_t keep = 0, bytes = 0;
    char *keys = NULL;
    int rc = -1;

    for (void *it = json_object_iter(obj); it && keep < n; it = json_object_iter_next(obj, it))
        if (json_object_iter_key(it) == kv[keep].key)
            keep++; /* kv[0..keep) appear in obj in this order */
    for (size_t i = keep; i < n; i++)
        bytes += kv[i].len;
    if (!(keys = malloc(bytes + 1))) /* copies: a delete frees the object's own key */
        goto out;
    bytes = 0;
    for (size_t i = keep; i < n; i++) {
        memcpy(keys + bytes, kv[i].key, kv[i].len);
        bytes += kv[i].len;
    }
    rc = 0;
    bytes = 0;
    for (size_t i = keep; i < n; i++) {
        const char *key = keys + bytes;
        json_t *val = json_incref(kv[i].val); /* the delete drops the object's reference */
        bytes += kv[i].len;
        if (json_object_deln(obj, key, kv[i].len) != 0) {
            json_decref(val);
            rc = -1;
        } else if (json_object_setn_new(obj, key, kv[i].len, val) != 0) { /* releases val */
            rc = -1;
        }
    }
out:
    free(keys);
    return rc;
}

static void out_object(out_buf *b, const json_t *j, int depth) {
    key_val small[16], *kv = small;
    size_t n = json_object_size(j), i = 0;
    bool sorted = true;

    if (n > sizeof(small) / sizeof(small[0]) && !(kv = malloc(n * sizeof(*kv)))) {
        b->failed = true;
        return;
    }
    for (void *it = json_object_iter((json_t *)j); it && i < n; it = json_object_iter_next((json_t *)j, it), i++) {
        kv[i] = (key_val){json_object_iter_key(it), json_object_iter_key_len(it), json_object_iter_value(it)};
        sorted = sorted && (i == 0 || cmp_key_val(&kv[i - 1], &kv[i]) < 0);
    }
    if (!sorted)
        sort_key_vals(kv, i);
    out_char(b, '{');
    for (size_t k = 0; k < i && !b->failed; k++) {
        if (k)
            out_char(b, ',');
        out_string(b, kv[k].key, kv[k].len);
        out_char(b, ':');
        out_value(b, kv[k].val, depth + 1);
    }
    out_char(b, '}');
    if (!sorted) {
        /* a view's own tree (b->settle), not shared: the record it is saved as would parse
         * back in dump order, so the tree is put in that order (after the writing: moving
         * a member frees the key kv borrowed); out of memory fails the dump, and the step */
        if (!b->settle || j->refcount != 1)
            b->unsettled = true;
        else if (i == n && reorder_members((json_t *)j, kv, n) != 0)
            b->failed = true;
        else if (i != n)
            b->unsettled = true;
    }
    if (kv != small)
        free(kv);
}

static void out_value(out_buf *b, const json_t *j, int depth) {
    char *text;
    if (depth > DUMP_MAX_DEPTH) {
        b->failed = true;
        return;
    }
    if (j->refcount != 1 && j->refcount != (size_t)-1) /* shared; -1: the immortal true, false, null */
        b->unsettled = true;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        out_object(b, j, depth);
        break;
    case JSON_ARRAY:
        out_char(b, '[');
        for (size_t i = 0; i < json_array_size(j) && !b->failed; i++) {
            if (i)
                out_char(b, ',');
            out_value(b, json_array_get(j, i), depth + 1);
        }
        out_char(b, ']');
        break;
    case JSON_STRING:
        out_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        out_int(b, json_integer_value(j));
        break;
    case JSON_REAL: /* jansson's own "%.17g" rules */
        if (!(text = json_dumps(j, JSON_ENCODE_ANY))) {
            b->failed = true;
            break;
        }
        out_put(b, text, strlen(text));
        free(text);
        break;
    case JSON_TRUE:
        out_put(b, "true", 4);
        break;
    case JSON_FALSE:
        out_put(b, "false", 5);
        break;
    case JSON_NULL:
        out_put(b, "null", 4);
        break;
    }
}

/* The canonical text of j (malloc'ed, *len set), or NULL. With settled (a view
 * record's tree), objects out of dump order that only j holds are put in dump order,
 * and *settled tells whether a parse of the text now gives j as it is (see
 * make_reparsable); NULL for a tree that is not to be changed. */
static char *dump_canonical(const json_t *j, size_t size_hint, size_t *len, bool *settled) {
    out_buf b = {.settle = settled != NULL};
    out_room(&b, size_hint); /* one allocation for most records: about the size they had */
    out_value(&b, j, 0);
    if (b.failed || !b.p) {
        free(b.p);
        return NULL;
    }
    b.p[b.len] = '\0'; /* out_room kept room for it */
    *len = b.len;
    if (settled)
        *settled = !b.unsettled;
    return b.p;
}

/* ---------------------------------------------------------------- commit */

static int cmp_entry_ptr(const void *a, const void *b) {
    return strcmp((*(view_entry *const *)a)->key, (*(view_entry *const *)b)->key);
}

dashi_err dashi_view_guard(const dashi_view *v, dashi_writeset *ws) {
    dashi_err err = DASHI_OK;
    for (size_t i = 0; i < v->n_touched && err == DASHI_OK; i++) {
        const view_entry *e = v->touched[i];
        if (!e->written || e->step != v->step) /* only what this step read from the store and writes */
            continue;
        err = e->raw ? dashi_writeset_add(ws, DASHI_WS_CHECK_EQ, e->key, e->key_len, e->raw, e->raw_len, 0)
                     : dashi_writeset_add(ws, DASHI_WS_CHECK_ABSENT, e->key, e->key_len, NULL, 0, 0);
    }
    return err;
}

dashi_err dashi_view_writeset(dashi_view *v, dashi_writeset *ws) {
    dashi_err err = DASHI_OK;
    view_entry **dirty = NULL;
    size_t n = 0;
    if (v->err != DASHI_OK)
        return v->err;
    dirty = malloc((v->n_touched + 1) * sizeof(*dirty));
    if (!dirty)
        return DASHI_ERR_NOMEM;
    for (size_t i = 0; i < v->n_touched; i++)
        if (v->touched[i]->dirty)
            dirty[n++] = v->touched[i];
    qsort(dirty, n, sizeof(*dirty), cmp_entry_ptr); /* same write set bytes on every run */
    for (size_t i = 0; i < n && err == DASHI_OK; i++) {
        view_entry *e = dirty[i];
        free(e->pending);
        e->pending = NULL;
        e->pending_len = 0;
        e->written = true;
        e->settled = false;
        if (!e->val) {
            if (e->raw) /* deleting an absent record changes nothing */
                err = dashi_writeset_add(ws, DASHI_WS_DEL, e->key, e->key_len, NULL, 0, 0);
            continue;
        }
        if (!(e->pending = dump_canonical(e->val, e->raw_len + 64, &e->pending_len, &e->settled))) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        if (e->raw && e->raw_len == e->pending_len && memcmp(e->raw, e->pending, e->raw_len) == 0)
            continue; /* edited, but the same bytes */
        err = dashi_writeset_add(ws, DASHI_WS_PUT, e->key, e->key_len, e->pending, e->pending_len, 0);
    }
    for (size_t i = 0; i < v->n_timers && err == DASHI_OK; i++) {
        view_timer *t = &v->timers[i];
        if (!t->add) {
            err = dashi_writeset_add(ws, DASHI_WS_TIMER_DEL, t->id, strlen(t->id), NULL, 0, 0);
            continue;
        }
        size_t len = 0;
        char *text = t->payload ? dump_canonical(t->payload, 0, &len, NULL) : strdup("");
        if (!text) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        err = dashi_writeset_add(ws, DASHI_WS_TIMER_ADD, t->id, strlen(t->id), text, len, t->due);
        free(text);
    }
    free(dirty);
    return err;
}

/* Does parsing give obj's keys in the order obj iterates them? The dump sorts keys by
 * bytes, then length (jansson's JSON_SORT_KEYS), and a parse keeps text order. */
static bool keys_in_dump_order(json_t *obj) {
    const char *prev = NULL;
    size_t prev_len = 0;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *k = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it), min = len < prev_len ? len : prev_len;
        int c = prev ? memcmp(prev, k, min) : -1;
        if (prev && (c > 0 || (c == 0 && prev_len >= len)))
            return false;
        prev = k;
        prev_len = len;
    }
    return true;
}

/* Put obj's members in dump order (same members, same values). 0, or -1 on out of
 * memory, when obj may have lost members: the caller drops the whole tree. */
static int sort_keys(json_t *obj) {
    size_t n = json_object_size(obj), i = 0;
    key_val *kv = malloc(n * sizeof(*kv) + 1);
    int rc = -1;

    if (!kv)
        goto out;
    for (void *it = json_object_iter(obj); it && i < n; it = json_object_iter_next(obj, it), i++)
        kv[i] = (key_val){json_object_iter_key(it), json_object_iter_key_len(it), json_object_iter_value(it)};
    sort_key_vals(kv, i);
    rc = i == n ? reorder_members(obj, kv, n) : -1;
out:
    free(kv);
    return rc;
}

/* Make j what parsing its dump gives back (see the header): sort the keys of every
 * object not in dump order. false when that cannot be done: a node has another
 * owner (*shared set; such a node is never changed, so its other owner is not), a
 * string or key holds a NUL (a load refuses the record), or out of memory. */
static bool make_reparsable(json_t *j, bool *shared) {
    if (j->refcount != 1) {
        if (j->refcount == (size_t)-1) /* true, false, null: immortal singletons */
            return true;
        *shared = true;
        return false;
    }
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!make_reparsable(json_array_get(j, i), shared))
                return false;
    } else if (json_is_object(j)) {
        if (!keys_in_dump_order(j) && sort_keys(j) != 0)
            return false;
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it))
            if (memchr(json_object_iter_key(it), '\0', json_object_iter_key_len(it)) ||
                !make_reparsable(json_object_iter_value(it), shared))
                return false;
    } else if (json_is_string(j)) {
        return !memchr(json_string_value(j), '\0', json_string_length(j)); /* a load refuses \u0000 */
    }
    return true;
}

void dashi_view_committed(dashi_view *v) {
    bool shared = false;
    clear_timers(v);
    for (size_t i = 0; i < v->n_touched; i++) {
        view_entry *e = v->touched[i];
        if (!e->dirty)
            continue;
        e->dirty = false;
        /* settled: the write set's dump met every node and found nothing to change */
        if (!e->written || (e->val && !(json_is_object(e->val) || json_is_array(e->val))) ||
            (e->val && !e->settled && !make_reparsable(e->val, &shared))) {
            e->drop = true; /* parse it again when it is next read */
            continue;
        }
        free(e->raw);
        v->bytes -= entry_bytes(e);
        e->raw = e->pending;
        e->raw_len = e->pending ? e->pending_len : 0;
        v->bytes += entry_bytes(e);
        e->pending = NULL;
        e->pending_len = 0;
        e->written = false;
    }
    if (shared) /* a tree of this step shares a node with another one: forget them all */
        for (size_t i = 0; i < v->n_touched; i++)
            v->touched[i]->drop = true;
}

dashi_err dashi_view_error(const dashi_view *v, const char **msg) {
    if (msg)
        *msg = v->errmsg;
    return v->err;
}
