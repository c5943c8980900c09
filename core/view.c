/* view.c — per-step cache of records over the state ops table, and the write set that commits it.
 *
 * Entries live in a small open-addressing hash table keyed by the record key; a
 * step touches tens of keys (hundreds when two large persons merge), so the table
 * grows by doubling and is emptied at each reset. Each entry remembers whether it
 * was loaded from the store, whether the step changed it, and its JSON value
 * (NULL = absent). Writes are serialized at commit with JSON_COMPACT|JSON_SORT_KEYS
 * so both back ends hold byte-identical records for the same history.
 */
#include "core/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct view_entry {
    char *key;       /* owned; NULL = empty slot */
    uint64_t hash;
    json_t *val;     /* owned reference; NULL = absent */
    bool dirty;
} view_entry;

typedef struct view_timer {
    char *id;        /* owned */
    dashi_time due;
    json_t *payload; /* owned, may be NULL */
    bool add;        /* add or delete */
} view_timer;

struct dashi_view {
    dashi_state *st;          /* borrowed */
    view_entry *slots;
    size_t cap, used;
    view_timer *timers;
    size_t n_timers, cap_timers;
    dashi_err err;
    char errmsg[256];
};

static uint64_t hash_key(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

dashi_view *dashi_view_new(dashi_state *st) {
    dashi_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->st = st;
    v->cap = 64;
    v->slots = calloc(v->cap, sizeof(*v->slots));
    if (!v->slots) {
        free(v);
        return NULL;
    }
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
    for (size_t i = 0; i < v->cap; i++) {
        free(v->slots[i].key);
        json_decref(v->slots[i].val);
    }
    memset(v->slots, 0, v->cap * sizeof(*v->slots));
    v->used = 0;
    clear_timers(v);
    v->err = DASHI_OK;
    v->errmsg[0] = '\0';
}

void dashi_view_destroy(dashi_view *v) {
    if (!v)
        return;
    dashi_view_reset(v);
    free(v->slots);
    free(v->timers);
    free(v);
}

static view_entry *find_slot(view_entry *slots, size_t cap, const char *key, uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    while (slots[i].key && (slots[i].hash != h || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(dashi_view *v) {
    size_t ncap = v->cap * 2;
    view_entry *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < v->cap; i++)
        if (v->slots[i].key)
            *find_slot(ns, ncap, v->slots[i].key, v->slots[i].hash) = v->slots[i];
    free(v->slots);
    v->slots = ns;
    v->cap = ncap;
    return 0;
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

/* The entry for key, loaded from the store on first use; NULL on error. */
static view_entry *load(dashi_view *v, const char *key) {
    if (v->err != DASHI_OK)
        return NULL;
    uint64_t h = hash_key(key);
    view_entry *e = find_slot(v->slots, v->cap, key, h);
    if (e->key)
        return e;
    if ((v->used + 1) * 4 > v->cap * 3) {
        if (grow(v) < 0) {
            set_err(v, DASHI_ERR_NOMEM, "view: out of memory");
            return NULL;
        }
        e = find_slot(v->slots, v->cap, key, h);
    }
    char errstr[256] = "";
    dashi_bytes k = {(char *)key, strlen(key)}, val = {NULL, 0};
    dashi_err err = v->st->ops->mget(v->st, 1, &k, &val, errstr, sizeof(errstr));
    if (err != DASHI_OK) {
        set_err(v, err, errstr);
        return NULL;
    }
    json_t *j = NULL;
    if (val.data) {
        json_error_t jerr;
        j = json_loadb(val.data, val.len, 0, &jerr);
        free(val.data);
        if (!j) {
            char msg[512];
            snprintf(msg, sizeof(msg), "view: record %.100s is not JSON: %s", key, jerr.text);
            set_err(v, DASHI_ERR_BACKEND, msg);
            return NULL;
        }
    }
    e->key = strdup(key);
    if (!e->key) {
        json_decref(j);
        set_err(v, DASHI_ERR_NOMEM, "view: out of memory");
        return NULL;
    }
    e->hash = h;
    e->val = j;
    e->dirty = false;
    v->used++;
    return e;
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

#define VIEW_KEYF(fmt)                                  \
    char key[512];                                      \
    va_list ap;                                         \
    va_start(ap, fmt);                                  \
    vsnprintf(key, sizeof(key), fmt, ap);               \
    va_end(ap)

const json_t *dashi_view_getf(dashi_view *v, const char *fmt, ...) {
    VIEW_KEYF(fmt);
    return dashi_view_get(v, key);
}

json_t *dashi_view_editf(dashi_view *v, const char *fmt, ...) {
    VIEW_KEYF(fmt);
    return dashi_view_edit(v, key);
}

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

static int cmp_entry_ptr(const void *a, const void *b) {
    return strcmp((*(view_entry *const *)a)->key, (*(view_entry *const *)b)->key);
}

dashi_err dashi_view_writeset(dashi_view *v, dashi_writeset *ws) {
    dashi_err err = DASHI_OK;
    view_entry **dirty = NULL;
    size_t n = 0;
    if (v->err != DASHI_OK)
        return v->err;
    dirty = malloc((v->used + 1) * sizeof(*dirty));
    if (!dirty)
        return DASHI_ERR_NOMEM;
    for (size_t i = 0; i < v->cap; i++)
        if (v->slots[i].key && v->slots[i].dirty)
            dirty[n++] = &v->slots[i];
    qsort(dirty, n, sizeof(*dirty), cmp_entry_ptr); /* same write set bytes on every run */
    for (size_t i = 0; i < n && err == DASHI_OK; i++) {
        view_entry *e = dirty[i];
        if (!e->val) {
            err = dashi_writeset_add(ws, DASHI_WS_DEL, e->key, strlen(e->key), NULL, 0, 0);
            continue;
        }
        char *text = json_dumps(e->val, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!text) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        err = dashi_writeset_add(ws, DASHI_WS_PUT, e->key, strlen(e->key), text, strlen(text), 0);
        free(text);
    }
    for (size_t i = 0; i < v->n_timers && err == DASHI_OK; i++) {
        view_timer *t = &v->timers[i];
        if (!t->add) {
            err = dashi_writeset_add(ws, DASHI_WS_TIMER_DEL, t->id, strlen(t->id), NULL, 0, 0);
            continue;
        }
        char *text = t->payload ? json_dumps(t->payload, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                                : strdup("");
        if (!text) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        err = dashi_writeset_add(ws, DASHI_WS_TIMER_ADD, t->id, strlen(t->id), text, strlen(text), t->due);
        free(text);
    }
    free(dirty);
    return err;
}

void dashi_view_committed(dashi_view *v) {
    for (size_t i = 0; i < v->cap; i++)
        v->slots[i].dirty = false;
    clear_timers(v);
}

dashi_err dashi_view_error(const dashi_view *v, const char **msg) {
    if (msg)
        *msg = v->errmsg;
    return v->err;
}
