/* overlay.c — a batch's window on a store: guessed reads checked in one mget, staged write sets applied as one chain.
 *
 * In a batch the overlay keeps, per key the batch touched, an entry: its base (what
 * the store holds: a guess, or the bytes read at a check) and, when a staged set
 * wrote it, its current value — borrowed from that set's op, which the overlay owns
 * until the batch ends. A read answers the current value, else the base, else
 * makes a guess. Rewinding to step s drops the sets of steps >= s and rebuilds the
 * current values from the sets before s (rewinds are rare: a wrong guess, at
 * most a few per batch). The timers are a second table, by id: each holds what
 * the store's queue gave for it (read once per batch, up to a horizon and a
 * count) and what the staged sets did to it since; queries merge the two and check
 * that the answer cannot depend on a timer beyond what was read. Entries live in
 * chained hash tables (FNV-1a) and on a list for iteration, all freed at the end
 * of the batch. Between batches the overlay keeps, per key, the bytes the store
 * held when a batch last read (checked) or wrote it: the guesses of the next
 * batches. They live in their own hash table on an LRU list, bounded by
 * KNOWN_MAX_ENTRIES and KNOWN_MAX_BYTES; keys with the forget prefix (markers,
 * read once) are not kept. A guess is only a guess: the check reads every one,
 * so a stale or evicted entry costs a step run again, never a wrong result. See
 * overlay.h for the contract.
 */
#include "core/overlay.h"

#include <stdlib.h>
#include <string.h>

#define NO_STEP SIZE_MAX
#define TIMER_READ_FIRST 256 /* timers read from the store at the first query of a batch */
#define KNOWN_MAX_ENTRIES (1u << 20)           /* keys whose bytes are kept between batches, at most */
#define KNOWN_MAX_BYTES (48u * 1024 * 1024)    /* and bytes they take (entries, keys, values) */

/* ---------------------------------------------------------------- tables */

typedef struct ov_node {
    struct ov_node *chain; /* next in the bucket */
    uint64_t hash;
    size_t key_len;
    char *key;             /* points into the owning struct; NUL-terminated */
} ov_node;

typedef struct ov_table {
    ov_node **buckets;     /* owned; n_buckets is 0 or a power of two */
    size_t n_buckets;
    ov_node **all;         /* owned array; owns the nodes (in insertion order) */
    size_t n, cap;
} ov_table;

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static ov_node *table_find(const ov_table *t, const char *key, size_t key_len, uint64_t h) {
    if (!t->n_buckets)
        return NULL;
    ov_node *e = t->buckets[h & (t->n_buckets - 1)];
    while (e && (e->hash != h || e->key_len != key_len || (key_len && memcmp(e->key, key, key_len) != 0)))
        e = e->chain;
    return e;
}

/* Add node (its hash and key set); 0, or -1 on out of memory (node not added). */
static int table_add(ov_table *t, ov_node *node) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        ov_node **all = realloc(t->all, cap * sizeof(*all));
        if (!all)
            return -1;
        t->all = all;
        t->cap = cap;
    }
    if (t->n >= t->n_buckets) {
        size_t nb = t->n_buckets ? t->n_buckets * 2 : 64;
        ov_node **b = calloc(nb, sizeof(*b));
        if (!b)
            return -1;
        for (size_t i = 0; i < t->n; i++) {
            ov_node *e = t->all[i];
            e->chain = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = nb;
    }
    node->chain = t->buckets[node->hash & (t->n_buckets - 1)];
    t->buckets[node->hash & (t->n_buckets - 1)] = node;
    t->all[t->n++] = node;
    return 0;
}

/* Free every node with free_node, keep the arrays for the next batch. */
static void table_clear(ov_table *t, void (*free_node)(ov_node *)) {
    for (size_t i = 0; i < t->n; i++)
        free_node(t->all[i]);
    t->n = 0;
    if (t->n_buckets)
        memset(t->buckets, 0, t->n_buckets * sizeof(*t->buckets));
}

static void table_free(ov_table *t) {
    free(t->buckets);
    free(t->all);
    memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------- entries */

enum { BASE_NONE, BASE_GUESS, BASE_READ };

typedef struct ov_entry {
    ov_node node;
    int base;             /* BASE_NONE: not read in this batch (only written) */
    char *base_data;      /* owned; NULL = absent */
    size_t base_len;
    size_t first_step;    /* a guess: the first step that read it; NO_STEP when no staged step did */
    bool written;         /* a staged set wrote it: cur is its value now */
    const char *cur;      /* borrowed from a staged op; NULL = deleted */
    size_t cur_len;
    char key[];
} ov_entry;

typedef struct ov_timer {
    ov_node node;
    bool in_base;              /* the store's queue, as read, holds it */
    dashi_time base_due;
    const char *base_payload;  /* borrowed from the read timers; may be NULL (empty) */
    size_t base_payload_len;
    bool modded;               /* a staged set added or deleted it */
    bool present;              /* when modded: added (else deleted) */
    dashi_time due;            /* when modded and present */
    const char *payload;       /* borrowed from a staged op */
    size_t payload_len;
    char id[];
} ov_timer;

static void entry_free(ov_node *n) {
    ov_entry *e = (ov_entry *)n;
    free(e->base_data);
    free(e);
}

static void timer_free(ov_node *n) {
    free(n);
}

typedef struct ov_known {
    struct ov_known *chain;          /* next in the bucket */
    struct ov_known *newer, *older;  /* LRU list */
    uint64_t hash;
    char *val;                       /* owned; NULL = absent */
    size_t len, key_len;
    char key[];
} ov_known;

struct dashi_overlay {
    dashi_state base;          /* the store face (first member) */
    dashi_state *inner;        /* borrowed */
    bool active;               /* in a batch */
    /* what the store held at each key when last read or written through the overlay:
     * the guesses (bounded LRU; keys with forget_prefix are never kept) */
    ov_known **kb;             /* owned buckets; n_kb a power of two */
    size_t n_kb, k_count, k_bytes;
    ov_known *k_newest, *k_oldest;
    char *forget_prefix;       /* owned; NULL: none */
    size_t forget_len;
    bool open;                 /* a step is open (number n_steps) */
    dashi_writeset *sets;      /* owned: the set of each staged step */
    size_t n_steps, cap_steps, staged_ops;
    ov_table entries;
    /* timers */
    dashi_time horizon;
    bool timers_read;          /* tbase holds the store's first tlimit timers due <= tuntil */
    dashi_timer *tbase;        /* owned */
    size_t tn, tlimit;
    dashi_time tuntil;
    ov_table timers;
    dashi_overlay_stats stats;
};

/* The record of key in table t, made (zeroed, key copied at key_off of a block of
 * size + key_len + 1 bytes whose first member is its ov_node) when absent; *made
 * says which. NULL when out of memory. */
static ov_node *node_get(ov_table *t, const char *key, size_t key_len, size_t size, size_t key_off, bool *made) {
    uint64_t h = hash_bytes(key, key_len);
    ov_node *node = table_find(t, key, key_len, h);
    *made = false;
    if (node)
        return node;
    char *block = calloc(1, size + key_len + 1);
    if (!block)
        return NULL;
    char *copy = block + key_off;
    if (key_len)
        memcpy(copy, key, key_len);
    copy[key_len] = '\0';
    node = (ov_node *)(void *)block;
    node->key = copy;
    node->key_len = key_len;
    node->hash = h;
    if (table_add(t, node) != 0) {
        free(block);
        return NULL;
    }
    *made = true;
    return node;
}

static ov_entry *entry_get(dashi_overlay *o, const char *key, size_t key_len) {
    bool made;
    ov_entry *e = (ov_entry *)(void *)node_get(&o->entries, key, key_len, sizeof(ov_entry), offsetof(ov_entry, key),
                                               &made);
    if (e && made)
        e->first_step = NO_STEP;
    return e;
}

static ov_timer *timer_get(dashi_overlay *o, const char *id, size_t id_len) {
    bool made;
    return (ov_timer *)(void *)node_get(&o->timers, id, id_len, sizeof(ov_timer), offsetof(ov_timer, id), &made);
}

/* ---------------------------------------------------------------- what the store held */

static size_t known_cost(const ov_known *k) {
    return sizeof(*k) + k->key_len + k->len;
}

static ov_known *known_find(dashi_overlay *o, const char *key, size_t len, uint64_t h) {
    if (!o->n_kb)
        return NULL;
    ov_known *k = o->kb[h & (o->n_kb - 1)];
    while (k && (k->hash != h || k->key_len != len || (len && memcmp(k->key, key, len) != 0)))
        k = k->chain;
    return k;
}

static void known_unlink(dashi_overlay *o, ov_known *k) {
    if (k->newer)
        k->newer->older = k->older;
    else
        o->k_newest = k->older;
    if (k->older)
        k->older->newer = k->newer;
    else
        o->k_oldest = k->newer;
    k->newer = k->older = NULL;
}

static void known_push(dashi_overlay *o, ov_known *k) {
    k->older = o->k_newest;
    k->newer = NULL;
    if (o->k_newest)
        o->k_newest->newer = k;
    else
        o->k_oldest = k;
    o->k_newest = k;
}

static void known_remove(dashi_overlay *o, ov_known *k) {
    ov_known **p = &o->kb[k->hash & (o->n_kb - 1)];
    while (*p != k)
        p = &(*p)->chain;
    *p = k->chain;
    known_unlink(o, k);
    o->k_count--;
    o->k_bytes -= known_cost(k);
    free(k->val);
    free(k);
}

static bool forgotten(const dashi_overlay *o, const char *key, size_t len) {
    return o->forget_prefix && len >= o->forget_len && memcmp(key, o->forget_prefix, o->forget_len) == 0;
}

/* The store holds data (NULL: nothing) at key now. only_known: update a key already
 * kept, keep no new one. Out of memory only forgets. */
static void known_set(dashi_overlay *o, const char *key, size_t len, const char *data, size_t dlen, bool only_known) {
    uint64_t h = hash_bytes(key, len);
    ov_known *k = known_find(o, key, len, h);
    char *val = NULL;
    if ((!k && only_known) || forgotten(o, key, len))
        return;
    if (k && (k->val == NULL) == (data == NULL) && k->len == (data ? dlen : 0) &&
        (!data || !dlen || memcmp(k->val, data, dlen) == 0)) {
        known_unlink(o, k); /* the same bytes: only the newest now */
        known_push(o, k);
        return;
    }
    if (data && !(val = malloc(dlen + 1))) {
        if (k)
            known_remove(o, k);
        return;
    }
    if (val) {
        if (dlen)
            memcpy(val, data, dlen);
        val[dlen] = '\0';
    }
    if (!k) {
        if (o->k_count >= o->n_kb) { /* grow: at most one entry per bucket on average */
            size_t nb = o->n_kb ? o->n_kb * 2 : 1024;
            ov_known **b = calloc(nb, sizeof(*b));
            if (b) {
                for (ov_known *x = o->k_newest; x; x = x->older) {
                    x->chain = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                }
                free(o->kb);
                o->kb = b;
                o->n_kb = nb;
            }
        }
        if (!o->n_kb || !(k = calloc(1, sizeof(*k) + len + 1))) {
            free(val);
            return;
        }
        if (len)
            memcpy(k->key, key, len);
        k->key_len = len;
        k->hash = h;
        k->chain = o->kb[h & (o->n_kb - 1)];
        o->kb[h & (o->n_kb - 1)] = k;
        o->k_count++;
    } else {
        known_unlink(o, k);
        o->k_bytes -= known_cost(k);
        free(k->val);
    }
    k->val = val;
    k->len = val ? dlen : 0;
    o->k_bytes += known_cost(k);
    known_push(o, k);
    while (o->k_oldest && o->k_oldest != k && (o->k_count > KNOWN_MAX_ENTRIES || o->k_bytes > KNOWN_MAX_BYTES))
        known_remove(o, o->k_oldest);
}

static void known_forget(dashi_overlay *o, const char *key, size_t len) {
    ov_known *k = known_find(o, key, len, hash_bytes(key, len));
    if (k)
        known_remove(o, k);
}

/* Set ws may have changed the store: forget what was kept of its keys. */
static void known_forget_set(dashi_overlay *o, const dashi_writeset *ws) {
    for (size_t i = 0; ws && i < ws->n; i++)
        if (ws->ops[i].kind == DASHI_WS_PUT || ws->ops[i].kind == DASHI_WS_DEL)
            known_forget(o, ws->ops[i].key, ws->ops[i].key_len);
}
/* What a staged TIMER_ADD or TIMER_DEL op does to its timer. -1 on out of memory. */
static int timer_stage(dashi_overlay *o, const dashi_ws_op *op) {
    ov_timer *t = timer_get(o, op->key, op->key_len);
    if (!t)
        return -1;
    t->modded = true;
    t->present = op->kind == DASHI_WS_TIMER_ADD;
    t->due = op->due;
    t->payload = t->present ? op->val : NULL;
    t->payload_len = t->present ? op->val_len : 0;
    return 0;
}

/* What set ws does to the batch's values and timers. -1 on out of memory. */
static int replay_set(dashi_overlay *o, const dashi_writeset *ws) {
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        if (op->kind == DASHI_WS_PUT || op->kind == DASHI_WS_DEL) {
            ov_entry *e = entry_get(o, op->key, op->key_len);
            if (!e)
                return -1;
            e->written = true;
            e->cur = op->kind == DASHI_WS_PUT ? op->val : NULL;
            e->cur_len = op->kind == DASHI_WS_PUT ? op->val_len : 0;
        } else if ((op->kind == DASHI_WS_TIMER_ADD || op->kind == DASHI_WS_TIMER_DEL) && timer_stage(o, op) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Rebuild the timer table from the timers read and the staged sets. -1 on out of memory. */
static int timers_rebuild(dashi_overlay *o) {
    table_clear(&o->timers, timer_free);
    for (size_t i = 0; i < o->tn; i++) {
        ov_timer *t = timer_get(o, o->tbase[i].id, strlen(o->tbase[i].id));
        if (!t)
            return -1;
        t->in_base = true;
        t->base_due = o->tbase[i].due;
        t->base_payload = o->tbase[i].payload;
        t->base_payload_len = o->tbase[i].payload ? o->tbase[i].payload_len : 0;
    }
    for (size_t s = 0; s < o->n_steps; s++)
        for (size_t i = 0; i < o->sets[s].n; i++) {
            const dashi_ws_op *op = &o->sets[s].ops[i];
            if ((op->kind == DASHI_WS_TIMER_ADD || op->kind == DASHI_WS_TIMER_DEL) && timer_stage(o, op) != 0)
                return -1;
        }
    return 0;
}

/* ---------------------------------------------------------------- life cycle */

static const struct dashi_state_ops overlay_ops;

dashi_overlay *dashi_overlay_new(dashi_state *inner) {
    dashi_overlay *o = calloc(1, sizeof(*o));
    if (!o)
        goto out;
    o->base.ops = &overlay_ops;
    o->inner = inner;
    o->horizon = DASHI_TIME_NONE;
out:
    return o;
}

void dashi_overlay_end(dashi_overlay *o) {
    for (size_t i = 0; i < o->n_steps; i++)
        dashi_writeset_clear(&o->sets[i]);
    o->n_steps = 0;
    o->staged_ops = 0;
    o->open = false;
    table_clear(&o->entries, entry_free);
    table_clear(&o->timers, timer_free);
    dashi_timers_free(o->tbase, o->tn);
    o->tbase = NULL;
    o->tn = o->tlimit = 0;
    o->timers_read = false;
    o->active = false;
}

void dashi_overlay_destroy(dashi_overlay *o) {
    if (!o)
        return;
    dashi_overlay_end(o);
    while (o->k_oldest)
        known_remove(o, o->k_oldest);
    free(o->kb);
    free(o->forget_prefix);
    free(o->sets);
    table_free(&o->entries);
    table_free(&o->timers);
    free(o);
}

dashi_state *dashi_overlay_state(dashi_overlay *o) {
    return &o->base;
}

void dashi_overlay_forget_prefix(dashi_overlay *o, const char *prefix) {
    free(o->forget_prefix);
    o->forget_prefix = prefix && *prefix ? strdup(prefix) : NULL;
    o->forget_len = o->forget_prefix ? strlen(o->forget_prefix) : 0;
}

void dashi_overlay_stats_get(const dashi_overlay *o, dashi_overlay_stats *out) {
    *out = o->stats;
}

void dashi_overlay_begin(dashi_overlay *o, dashi_time horizon) {
    dashi_overlay_end(o);
    o->active = true;
    o->horizon = horizon;
    o->stats.batches++;
}

size_t dashi_overlay_steps(const dashi_overlay *o) {
    return o->n_steps;
}

size_t dashi_overlay_staged_ops(const dashi_overlay *o) {
    return o->staged_ops;
}

size_t dashi_overlay_step(dashi_overlay *o) {
    o->open = true;
    return o->n_steps;
}

dashi_err dashi_overlay_stage(dashi_overlay *o, dashi_writeset *ws) {
    if (!o->active || !o->open)
        return DASHI_ERR_INTERNAL;
    if (o->n_steps == o->cap_steps) {
        size_t cap = o->cap_steps ? o->cap_steps * 2 : 64;
        dashi_writeset *sets = realloc(o->sets, cap * sizeof(*sets));
        if (!sets)
            return DASHI_ERR_NOMEM;
        o->sets = sets;
        o->cap_steps = cap;
    }
    /* the local effect first: on out of memory the step stays open, nothing taken */
    if (replay_set(o, ws) != 0) {
        dashi_overlay_rewind(o, o->n_steps); /* undo what replay_set did */
        o->open = true;
        return DASHI_ERR_NOMEM;
    }
    o->sets[o->n_steps++] = *ws;
    o->staged_ops += ws->n;
    dashi_writeset_init(ws);
    o->open = false;
    return DASHI_OK;
}

void dashi_overlay_rewind(dashi_overlay *o, size_t step) {
    if (step < o->n_steps)
        o->stats.rewinds++;
    for (size_t i = step; i < o->n_steps; i++) {
        o->staged_ops -= o->sets[i].n;
        dashi_writeset_clear(&o->sets[i]);
    }
    if (step < o->n_steps)
        o->n_steps = step;
    o->open = false;
    for (size_t i = 0; i < o->entries.n; i++) {
        ov_entry *e = (ov_entry *)o->entries.all[i];
        e->written = false;
        e->cur = NULL;
        e->cur_len = 0;
        if (e->base == BASE_GUESS && e->first_step != NO_STEP && e->first_step >= o->n_steps)
            e->first_step = NO_STEP;
    }
    for (size_t i = 0; i < o->timers.n; i++)
        ((ov_timer *)o->timers.all[i])->modded = false;
    /* replay_set fails only on out of memory adding an entry or a timer; every key
     * and id of the sets kept has one already, so it cannot fail here */
    for (size_t s = 0; s < o->n_steps; s++)
        (void)replay_set(o, &o->sets[s]);
}

/* ---------------------------------------------------------------- reads */

/* A malloc'ed NUL-terminated copy into *out ({NULL, 0} when data is NULL). -1 on out of memory. */
static int copy_out(const char *data, size_t len, dashi_bytes *out) {
    *out = (dashi_bytes){NULL, 0};
    if (!data)
        return 0;
    char *c = malloc(len + 1);
    if (!c)
        return -1;
    if (len)
        memcpy(c, data, len);
    c[len] = '\0';
    *out = (dashi_bytes){c, len};
    return 0;
}

static dashi_err ov_mget(dashi_state *st, size_t n, const dashi_bytes *keys, dashi_bytes *vals, char *errstr,
                         size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    dashi_err err = DASHI_OK;
    if (!o->active) /* one step at a time: nothing to learn, it costs a copy per read */
        return o->inner->ops->mget(o->inner, n, keys, vals, errstr, errstr_size);
    for (size_t i = 0; i < n; i++)
        vals[i] = (dashi_bytes){NULL, 0};
    for (size_t i = 0; i < n; i++) {
        ov_entry *e = entry_get(o, keys[i].data, keys[i].len);
        int rc = -1;
        o->stats.reads++;
        if (e && e->written) {
            rc = copy_out(e->cur, e->cur_len, &vals[i]);
        } else if (e && e->base != BASE_NONE) {
            if (e->base == BASE_GUESS && e->first_step == NO_STEP)
                e->first_step = o->n_steps;
            rc = copy_out(e->base_data, e->base_len, &vals[i]);
        } else if (e) {
            ov_known *k = known_find(o, e->key, e->node.key_len, e->node.hash);
            o->stats.guesses++;
            if (k) {
                known_unlink(o, k); /* used: the newest */
                known_push(o, k);
            }
            if (k && k->val) {
                if (!(e->base_data = malloc(k->len + 1)))
                    goto nomem;
                memcpy(e->base_data, k->val, k->len + 1);
                e->base_len = k->len;
            }
            e->base = BASE_GUESS;
            e->first_step = o->n_steps;
            rc = copy_out(e->base_data, e->base_len, &vals[i]);
        }
        if (rc != 0)
            goto nomem;
    }
    goto out;
nomem:
    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
    for (size_t i = 0; i < n; i++) {
        free(vals[i].data);
        vals[i] = (dashi_bytes){NULL, 0};
    }
out:
    return err;
}

dashi_err dashi_overlay_check(dashi_overlay *o, size_t *first_wrong, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_bytes *keys = NULL, *vals = NULL; /* owned arrays; keys borrow the entries' keys */
    ov_entry **which = NULL;                /* owned array; borrows */
    size_t n = 0;

    *first_wrong = NO_STEP;
    for (size_t i = 0; i < o->entries.n; i++)
        n += ((ov_entry *)o->entries.all[i])->base == BASE_GUESS;
    if (n == 0)
        goto out;
    keys = malloc(n * sizeof(*keys));
    vals = calloc(n, sizeof(*vals));
    which = malloc(n * sizeof(*which));
    if (!keys || !vals || !which) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
        goto out;
    }
    n = 0;
    for (size_t i = 0; i < o->entries.n; i++) {
        ov_entry *e = (ov_entry *)o->entries.all[i];
        if (e->base != BASE_GUESS)
            continue;
        which[n] = e;
        keys[n++] = (dashi_bytes){e->key, e->node.key_len};
    }
    o->stats.checks++;
    if ((err = o->inner->ops->mget(o->inner, n, keys, vals, errstr, errstr_size)) != DASHI_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ov_entry *e = which[i];
        known_set(o, e->key, e->node.key_len, vals[i].data, vals[i].len, false);
        bool same = (vals[i].data == NULL) == (e->base_data == NULL) && vals[i].len == e->base_len &&
                    (!vals[i].data || !vals[i].len || memcmp(vals[i].data, e->base_data, vals[i].len) == 0);
        if (!same) {
            o->stats.wrong++;
            free(e->base_data);
            e->base_data = vals[i].data;
            e->base_len = vals[i].data ? vals[i].len : 0;
            vals[i].data = NULL;
            if (e->first_step != NO_STEP && e->first_step < *first_wrong)
                *first_wrong = e->first_step;
        }
        e->base = BASE_READ;
    }
out:
    for (size_t i = 0; vals && i < n; i++)
        free(vals[i].data);
    free(keys);
    free(vals);
    free(which);
    return err;
}

/* ---------------------------------------------------------------- timers */

static int timer_cmp(dashi_time a_due, const char *a, size_t a_len, dashi_time b_due, const char *b, size_t b_len) {
    if (a_due != b_due)
        return a_due < b_due ? -1 : 1;
    size_t n = a_len < b_len ? a_len : b_len;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

typedef struct due_item {
    const ov_timer *t;
    dashi_time due;
} due_item;

static int cmp_due_item(const void *a, const void *b) {
    const due_item *x = a, *y = b;
    return timer_cmp(x->due, x->t->id, x->t->node.key_len, y->due, y->t->id, y->t->node.key_len);
}

/* Read the store's first limit timers due <= until into the batch's view of the queue. */
static dashi_err timers_read(dashi_overlay *o, dashi_time until, size_t limit, char *errstr, size_t errstr_size) {
    dashi_timer *got = NULL;
    size_t n = 0;
    dashi_err err = o->inner->ops->timers_due(o->inner, until, limit, &got, &n, errstr, errstr_size);
    o->stats.timer_reads++;
    if (err != DASHI_OK)
        return err;
    dashi_timers_free(o->tbase, o->tn);
    o->tbase = got;
    o->tn = n;
    o->tlimit = limit;
    o->tuntil = until;
    o->timers_read = true;
    if (timers_rebuild(o) != 0) {
        o->timers_read = false; /* read again at the next query */
        return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
    }
    return DASHI_OK;
}

static dashi_err ov_timers_due(dashi_state *st, dashi_time until, size_t max, dashi_timer **out, size_t *n_out,
                               char *errstr, size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    dashi_err err = DASHI_OK;
    due_item *items = NULL; /* owned */
    dashi_timer *arr = NULL; /* owned until handed to *out */
    size_t n = 0, k = 0;

    if (!o->active)
        return o->inner->ops->timers_due(o->inner, until, max, out, n_out, errstr, errstr_size);
    *out = NULL;
    *n_out = 0;
    o->stats.timer_queries++;
    if (max == 0)
        goto out;
    for (;;) {
        if (!o->timers_read || until > o->tuntil) {
            dashi_time u = until;
            if (o->timers_read && o->tuntil > u)
                u = o->tuntil;
            if (o->horizon != DASHI_TIME_NONE && o->horizon > u)
                u = o->horizon;
            size_t limit = o->timers_read && o->tlimit > TIMER_READ_FIRST ? o->tlimit : TIMER_READ_FIRST;
            if ((err = timers_read(o, u, limit, errstr, errstr_size)) != DASHI_OK)
                goto out;
        }
        free(items);
        items = malloc((o->timers.n + 1) * sizeof(*items));
        if (!items) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
            goto out;
        }
        n = 0;
        for (size_t i = 0; i < o->timers.n; i++) {
            const ov_timer *t = (const ov_timer *)o->timers.all[i];
            bool present = t->modded ? t->present : t->in_base;
            dashi_time due = t->modded ? t->due : t->base_due;
            if (present && due <= until)
                items[n++] = (due_item){t, due};
        }
        qsort(items, n, sizeof(*items), cmp_due_item);
        k = n < max ? n : max;
        if (o->tn < o->tlimit)
            break; /* every timer due <= tuntil was read */
        /* the read stopped at its limit: timers after its last one were not read */
        const dashi_timer *last = &o->tbase[o->tn - 1];
        if (until < last->due ||
            (k == max && timer_cmp(items[k - 1].due, items[k - 1].t->id, items[k - 1].t->node.key_len, last->due,
                                   last->id, strlen(last->id)) <= 0))
            break;
        if ((err = timers_read(o, o->tuntil, o->tlimit * 4, errstr, errstr_size)) != DASHI_OK)
            goto out;
    }
    if (k && !(arr = calloc(k, sizeof(*arr)))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        const ov_timer *t = items[i].t;
        const char *pl = t->modded ? t->payload : t->base_payload;
        size_t pl_len = t->modded ? t->payload_len : t->base_payload_len;
        arr[i].due = items[i].due;
        if (!(arr[i].id = strdup(t->id)) || (pl && pl_len && !(arr[i].payload = malloc(pl_len + 1)))) {
            dashi_timers_free(arr, k);
            arr = NULL;
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
            goto out;
        }
        if (arr[i].payload) {
            memcpy(arr[i].payload, pl, pl_len);
            arr[i].payload[pl_len] = '\0';
            arr[i].payload_len = pl_len;
        }
    }
    *out = arr;
    *n_out = k;
out:
    free(items);
    return err;
}

/* ---------------------------------------------------------------- commit */

dashi_err dashi_overlay_commit(dashi_overlay *o, size_t *n_applied, dashi_err *failed, char *errstr,
                               size_t errstr_size) {
    dashi_err err = DASHI_OK;
    const dashi_writeset **sets = NULL; /* owned array; borrows the staged sets */
    dashi_err *results = NULL;          /* owned */
    size_t n = o->n_steps;

    *n_applied = 0;
    *failed = DASHI_OK;
    if (n == 0)
        goto out;
    sets = malloc(n * sizeof(*sets));
    results = malloc(n * sizeof(*results));
    if (!sets || !results) {
        err = *failed = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "overlay: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sets[i] = &o->sets[i];
        o->stats.sets += o->sets[i].n != 0;
    }
    o->stats.commits++;
    err = dashi_state_apply_chain(o->inner, n, sets, results, n_applied, errstr, errstr_size);
    if (*n_applied < n)
        *failed = results[*n_applied];
    else if (err != DASHI_OK)
        *failed = err;
    /* what the store holds now: the values as of the applied steps (a set whose
     * outcome is unknown makes its keys unknown) */
    if (*n_applied < n && (*failed == DASHI_ERR_TRANSPORT || *failed == DASHI_ERR_BACKEND))
        for (size_t s = *n_applied; s < n; s++)
            known_forget_set(o, &o->sets[s]);
    dashi_overlay_rewind(o, *n_applied);
    for (size_t i = 0; i < o->entries.n; i++) {
        const ov_entry *e = (const ov_entry *)o->entries.all[i];
        if (e->written)
            known_set(o, e->key, e->node.key_len, e->cur, e->cur_len, e->base == BASE_NONE);
        else if (e->base == BASE_READ)
            known_set(o, e->key, e->node.key_len, e->base_data, e->base_len, false);
    }
out:
    free(sets);
    free(results);
    return err;
}

/* ---------------------------------------------------------------- the store face */


static dashi_err ov_apply(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                          char *errstr, size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    if (!o->active) {
        dashi_err err = o->inner->ops->apply(o->inner, n, sets, results, errstr, errstr_size);
        for (size_t i = 0; i < n && o->k_count; i++)
            known_forget_set(o, sets[i]); /* keys kept by a batch are no longer what it saw */
        return err;
    }
    for (size_t i = 0; i < n; i++)
        results[i] = DASHI_ERR_INTERNAL;
    return dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "overlay: apply in a batch (stage instead)");
}

static dashi_err ov_apply_chain(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                                size_t *n_applied, char *errstr, size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    if (!o->active) {
        dashi_err err = dashi_state_apply_chain(o->inner, n, sets, results, n_applied, errstr, errstr_size);
        for (size_t i = 0; i < n && o->k_count; i++)
            known_forget_set(o, sets[i]);
        return err;
    }
    *n_applied = 0;
    for (size_t i = 0; i < n; i++)
        results[i] = DASHI_ERR_INTERNAL;
    return dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "overlay: apply in a batch (stage instead)");
}

static dashi_err ov_scan(dashi_state *st, const char *prefix, size_t prefix_len, dashi_scan_fn fn, void *opaque,
                         char *errstr, size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    return o->inner->ops->scan(o->inner, prefix, prefix_len, fn, opaque, errstr, errstr_size);
}

static dashi_err ov_timers_count(dashi_state *st, size_t *n, char *errstr, size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    return o->inner->ops->timers_count(o->inner, n, errstr, errstr_size);
}

static dashi_err ov_clear(dashi_state *st, char *errstr, size_t errstr_size) {
    dashi_overlay *o = (dashi_overlay *)st;
    return o->inner->ops->clear(o->inner, errstr, errstr_size);
}

static void ov_destroy(dashi_state *st) {
    dashi_overlay_destroy((dashi_overlay *)st);
}

static const struct dashi_state_ops overlay_ops = {
    .name = "overlay",
    .mget = ov_mget,
    .apply = ov_apply,
    .timers_due = ov_timers_due,
    .scan = ov_scan,
    .timers_count = ov_timers_count,
    .clear = ov_clear,
    .destroy = ov_destroy,
    .apply_chain = ov_apply_chain,
};
