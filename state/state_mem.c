/* state_mem.c — the in-memory state store: a hash table of keys and a skip list of timers.
 *
 * Keys live in an open-addressing hash table (linear probing, backward-shift
 * deletion, so no tombstones; grown at 3/4 load), which keeps get/put O(1) for
 * millions of keys; scan() collects the keys with the prefix and sorts them, which
 * is fine for its rare callers (explain, tests). Timers live in a skip list ordered
 * by (due, id bytes) so timers_due() walks the head of the queue, and in a second
 * hash table from id to skip-list node so TIMER_ADD replaces and TIMER_DEL removes
 * in O(log n). The skip list draws levels from a fixed-seed xorshift generator, so
 * runs are reproducible.
 *
 * apply() keeps the contract's atomicity even under memory pressure: for each
 * write set it verifies every CHECK, then allocates everything the set needs
 * (copies, nodes, table room), and only then commits with steps that cannot fail.
 * A failed allocation leaves the set unapplied (DASHI_ERR_NOMEM). Not thread-safe:
 * one store belongs to one thread, like a Redis connection. scan()'s callback must
 * not modify the store.

 */
#include "core/state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_MAX_LEVEL 24      /* p = 1/4: enough for 4^24 timers */
#define MEM_DUE_LIMIT (1LL << 53) /* dues must be exact as doubles, as in Redis */

/* ---------------------------------------------------------------- hash table */

typedef struct mem_slot {
    char *key;      /* NULL marks an empty slot; ownership depends on the table (see below) */
    size_t key_len;
    uint64_t hash;
    void *val;      /* data table: owned value bytes; timer table: the mem_timer (owned by the skip list) */
    size_t val_len;
} mem_slot;

typedef struct mem_table {
    mem_slot *slots; /* owned; cap is 0 or a power of two */
    size_t cap, count;
} mem_table;

static uint64_t hash_bytes(const char *p, size_t len) {
    /* FNV-1a with a murmur3 finalizer, so low bits (our index) mix well. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Index of key in t, or SIZE_MAX. */
static size_t table_find(const mem_table *t, const char *key, size_t key_len, uint64_t hash) {
    if (!t->cap)
        return SIZE_MAX;
    size_t mask = t->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const mem_slot *s = &t->slots[i];
        if (!s->key)
            return SIZE_MAX;
        if (s->hash == hash && s->key_len == key_len && (!key_len || memcmp(s->key, key, key_len) == 0))
            return i;
    }
}

/* Place a slot known to be absent into a table known to have room. */
static void table_place(mem_table *t, mem_slot slot) {
    size_t mask = t->cap - 1;
    size_t i = slot.hash & mask;
    while (t->slots[i].key)
        i = (i + 1) & mask;
    t->slots[i] = slot;
    t->count++;
}

/* Make room for extra more entries below 3/4 load. Returns 0 or -1 (out of memory). */
static int table_reserve(mem_table *t, size_t extra) {
    size_t need = t->count + extra;
    if (need < t->count)
        return -1;
    if (need <= t->cap / 4 * 3)
        return 0;
    size_t cap = t->cap ? t->cap : 16;
    while (need > cap / 4 * 3) {
        if (cap > SIZE_MAX / 2 / sizeof(mem_slot))
            return -1;
        cap *= 2;
    }
    mem_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    mem_table grown = {.slots = slots, .cap = cap, .count = 0};
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].key)
            table_place(&grown, t->slots[i]);
    free(t->slots);
    *t = grown;
    return 0;
}

/* Remove the slot at i, shifting later members of its cluster back (no tombstones). */
static void table_remove_at(mem_table *t, size_t i) {
    size_t mask = t->cap - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->slots[j].key; j = (j + 1) & mask) {
        size_t home = t->slots[j].hash & mask;
        /* j may move into the hole when its home is not in the cyclic range (hole, j]. */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = (mem_slot){0};
    t->count--;
}

/* ---------------------------------------------------------------- skip list */

typedef struct mem_timer {
    dashi_time due;
    char *id; size_t id_len;           /* owned */
    char *payload; size_t payload_len; /* owned; never NULL */
    int level;
    struct mem_timer *next[];          /* level entries */
} mem_timer;

typedef struct mem_skiplist {
    mem_timer *head; /* owned sentinel with MEM_MAX_LEVEL links */
    int level;
    size_t count;
    uint64_t rng;
} mem_skiplist;

static int timer_cmp(dashi_time due, const char *id, size_t id_len, const mem_timer *t) {
    if (due != t->due)
        return due < t->due ? -1 : 1;
    size_t n = id_len < t->id_len ? id_len : t->id_len;
    int c = n ? memcmp(id, t->id, n) : 0;
    if (c)
        return c;
    return id_len < t->id_len ? -1 : id_len > t->id_len;
}

static int skiplist_random_level(mem_skiplist *sl) {
    int level = 1;
    for (;;) {
        uint64_t x = sl->rng; /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sl->rng = x;
        if ((x & 3) != 0 || level == MEM_MAX_LEVEL)
            return level;
        level++;
    }
}

/* A node with copies of id and payload, not linked yet. NULL on out of memory. */
static mem_timer *timer_new(mem_skiplist *sl, dashi_time due, const char *id, size_t id_len,
                            const char *payload, size_t payload_len) {
    int level = skiplist_random_level(sl);
    mem_timer *t = calloc(1, sizeof *t + (size_t)level * sizeof t->next[0]);
    if (!t)
        goto fail;
    t->due = due;
    t->level = level;
    t->id = malloc(id_len + 1);
    t->payload = malloc(payload_len + 1);
    if (!t->id || !t->payload)
        goto fail;
    if (id_len)
        memcpy(t->id, id, id_len);
    if (payload_len)
        memcpy(t->payload, payload, payload_len);
    t->id[id_len] = '\0';
    t->payload[payload_len] = '\0';
    t->id_len = id_len;
    t->payload_len = payload_len;
    return t;
fail:
    if (t) {
        free(t->id);
        free(t->payload);
    }
    free(t);
    return NULL;
}

static void timer_free(mem_timer *t) {
    if (!t)
        return;
    free(t->id);
    free(t->payload);
    free(t);
}

static void skiplist_insert(mem_skiplist *sl, mem_timer *node) {
    mem_timer *update[MEM_MAX_LEVEL];
    mem_timer *x = sl->head;
    for (int i = sl->level - 1; i >= 0; i--) {
        while (x->next[i] && timer_cmp(node->due, node->id, node->id_len, x->next[i]) > 0)
            x = x->next[i];
        update[i] = x;
    }
    for (int i = sl->level; i < node->level; i++)
        update[i] = sl->head;
    if (node->level > sl->level)
        sl->level = node->level;
    for (int i = 0; i < node->level; i++) {
        node->next[i] = update[i]->next[i];
        update[i]->next[i] = node;
    }
    sl->count++;
}

static void skiplist_unlink(mem_skiplist *sl, mem_timer *node) {
    mem_timer *x = sl->head;
    for (int i = sl->level - 1; i >= 0; i--) {
        while (x->next[i] && x->next[i] != node &&
               timer_cmp(node->due, node->id, node->id_len, x->next[i]) > 0)
            x = x->next[i];
        if (x->next[i] == node)
            x->next[i] = node->next[i];
    }
    while (sl->level > 1 && !sl->head->next[sl->level - 1])
        sl->level--;
    sl->count--;
}

/* ---------------------------------------------------------------- the store */

typedef struct mem_state {
    dashi_state base;
    mem_table data;    /* key → value; slots own key and value */
    mem_table timers;  /* id → mem_timer; slot.key borrows node->id */
    mem_skiplist queue;
    void **scratch;    /* owned; per-op allocations of the set being applied */
    size_t scratch_cap;
} mem_state;

static void mem_drop_all(mem_state *m) {
    for (size_t i = 0; i < m->data.cap; i++) {
        free(m->data.slots[i].key);
        free(m->data.slots[i].val);
    }
    free(m->data.slots);
    m->data = (mem_table){0};
    free(m->timers.slots);
    m->timers = (mem_table){0};
    mem_timer *t = m->queue.head->next[0];
    while (t) {
        mem_timer *next = t->next[0];
        timer_free(t);
        t = next;
    }
    for (int i = 0; i < MEM_MAX_LEVEL; i++)
        m->queue.head->next[i] = NULL;
    m->queue.level = 1;
    m->queue.count = 0;
}

static dashi_err mem_mget(dashi_state *st, size_t n, const dashi_bytes *keys, dashi_bytes *vals,
                          char *errstr, size_t errstr_size) {
    mem_state *m = (mem_state *)st;
    dashi_err err = DASHI_OK;
    size_t i = 0;
    for (i = 0; i < n; i++)
        vals[i] = (dashi_bytes){NULL, 0};
    for (i = 0; i < n; i++) {
        size_t at = table_find(&m->data, keys[i].data, keys[i].len, hash_bytes(keys[i].data, keys[i].len));
        if (at == SIZE_MAX)
            continue;
        const mem_slot *s = &m->data.slots[at];
        char *copy = malloc(s->val_len + 1);
        if (!copy) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "memory store: out of memory in mget");
            goto out;
        }
        if (s->val_len)
            memcpy(copy, s->val, s->val_len);
        copy[s->val_len] = '\0';
        vals[i] = (dashi_bytes){copy, s->val_len};
    }
out:
    if (err)
        for (size_t j = 0; j < n; j++) {
            free(vals[j].data);
            vals[j] = (dashi_bytes){NULL, 0};
        }
    return err;
}

static int op_valid(const dashi_ws_op *op) {
    if ((unsigned)op->kind > DASHI_WS_TIMER_CHECK || (!op->key && op->key_len))
        return 0;
    if ((op->kind == DASHI_WS_PUT || op->kind == DASHI_WS_CHECK_EQ || op->kind == DASHI_WS_TIMER_ADD ||
         op->kind == DASHI_WS_TIMER_CHECK) &&
        !op->val && op->val_len)
        return 0;
    if (op->kind == DASHI_WS_TIMER_ADD && (op->due > MEM_DUE_LIMIT || op->due < -MEM_DUE_LIMIT))
        return 0;
    return 1;
}

/* Whether every CHECK of ws holds against the current contents. */
static int mem_checks_hold(const mem_state *m, const dashi_writeset *ws) {
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        if (op->kind == DASHI_WS_TIMER_CHECK) {
            size_t t = table_find(&m->timers, op->key, op->key_len, hash_bytes(op->key, op->key_len));
            if (t == SIZE_MAX)
                return 0;
            const mem_timer *tm = m->timers.slots[t].val;
            if (tm->due != op->due || tm->payload_len != op->val_len ||
                (op->val_len && memcmp(tm->payload, op->val, op->val_len) != 0))
                return 0;
            continue;
        }
        if (op->kind != DASHI_WS_CHECK_ABSENT && op->kind != DASHI_WS_CHECK_EQ)
            continue;
        size_t at = table_find(&m->data, op->key, op->key_len, hash_bytes(op->key, op->key_len));
        if (op->kind == DASHI_WS_CHECK_ABSENT && at != SIZE_MAX)
            return 0;
        if (op->kind == DASHI_WS_CHECK_EQ) {
            if (at == SIZE_MAX)
                return 0;
            const mem_slot *s = &m->data.slots[at];
            if (s->val_len != op->val_len || (op->val_len && memcmp(s->val, op->val, op->val_len) != 0))
                return 0;
        }
    }
    return 1;
}

/* Allocate all that committing ws needs into m->scratch (a key copy then a value
 * copy per PUT, a node per TIMER_ADD) and room in both tables. 0, or -1 with
 * nothing kept but table room. */
static int mem_prepare(mem_state *m, const dashi_writeset *ws) {
    size_t need = 0, puts = 0, adds = 0;
    for (size_t i = 0; i < ws->n; i++) {
        if (ws->ops[i].kind == DASHI_WS_PUT)
            puts++;
        else if (ws->ops[i].kind == DASHI_WS_TIMER_ADD)
            adds++;
    }
    need = 2 * puts + adds;
    if (need > m->scratch_cap) {
        void **s = realloc(m->scratch, need * sizeof *s);
        if (!s)
            return -1;
        m->scratch = s;
        m->scratch_cap = need;
    }
    if (table_reserve(&m->data, puts) != 0 || table_reserve(&m->timers, adds) != 0)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        if (op->kind == DASHI_WS_PUT) {
            char *key = malloc(op->key_len + 1);
            char *val = malloc(op->val_len + 1);
            m->scratch[k++] = key;
            m->scratch[k++] = val;
            if (!key || !val)
                goto fail;
            if (op->key_len)
                memcpy(key, op->key, op->key_len);
            if (op->val_len)
                memcpy(val, op->val, op->val_len);
            key[op->key_len] = '\0';
            val[op->val_len] = '\0';
        } else if (op->kind == DASHI_WS_TIMER_ADD) {
            mem_timer *t = timer_new(&m->queue, op->due, op->key, op->key_len, op->val, op->val_len);
            m->scratch[k++] = t;
            if (!t)
                goto fail;
        }
    }
    return 0;
fail:
    /* scratch[0..k) holds what was allocated, in op order. */
    for (size_t i = 0, j = 0; i < ws->n && j < k; i++) {
        if (ws->ops[i].kind == DASHI_WS_PUT) {
            free(m->scratch[j++]);
            if (j < k)
                free(m->scratch[j++]);
        } else if (ws->ops[i].kind == DASHI_WS_TIMER_ADD) {
            timer_free(m->scratch[j++]);
        }
    }
    return -1;
}

/* Apply ws with the allocations mem_prepare() made; cannot fail. */
static void mem_commit(mem_state *m, const dashi_writeset *ws) {
    size_t k = 0;
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        uint64_t h = hash_bytes(op->key, op->key_len);
        size_t at;
        switch (op->kind) {
        case DASHI_WS_PUT: {
            char *key = m->scratch[k++];
            char *val = m->scratch[k++];
            at = table_find(&m->data, op->key, op->key_len, h);
            if (at != SIZE_MAX) {
                free(key);
                free(m->data.slots[at].val);
                m->data.slots[at].val = val;
                m->data.slots[at].val_len = op->val_len;
            } else {
                table_place(&m->data, (mem_slot){.key = key, .key_len = op->key_len, .hash = h,
                                                 .val = val, .val_len = op->val_len});
            }
            break;
        }
        case DASHI_WS_DEL:
            at = table_find(&m->data, op->key, op->key_len, h);
            if (at != SIZE_MAX) {
                free(m->data.slots[at].key);
                free(m->data.slots[at].val);
                table_remove_at(&m->data, at);
            }
            break;
        case DASHI_WS_TIMER_ADD: {
            mem_timer *t = m->scratch[k++];
            at = table_find(&m->timers, op->key, op->key_len, h);
            if (at != SIZE_MAX) {
                mem_timer *old = m->timers.slots[at].val;
                skiplist_unlink(&m->queue, old);
                timer_free(old);
                m->timers.slots[at].key = t->id;
                m->timers.slots[at].val = t;
            } else {
                table_place(&m->timers, (mem_slot){.key = t->id, .key_len = t->id_len, .hash = h, .val = t});
            }
            skiplist_insert(&m->queue, t);
            break;
        }
        case DASHI_WS_TIMER_DEL:
            at = table_find(&m->timers, op->key, op->key_len, h);
            if (at != SIZE_MAX) {
                mem_timer *old = m->timers.slots[at].val;
                table_remove_at(&m->timers, at);
                skiplist_unlink(&m->queue, old);
                timer_free(old);
            }
            break;
        case DASHI_WS_CHECK_ABSENT:
        case DASHI_WS_CHECK_EQ:
        case DASHI_WS_TIMER_CHECK:
            break;
        }
    }
}

static dashi_err mem_apply(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                           char *errstr, size_t errstr_size) {
    mem_state *m = (mem_state *)st;
    dashi_err err = DASHI_OK;
    size_t i = 0;

    /* Malformed input is rejected before anything is applied, as the Redis store does. */
    for (i = 0; i < n; i++) {
        for (size_t j = 0; sets[i] && j < sets[i]->n; j++)
            if (!op_valid(&sets[i]->ops[j])) {
                for (size_t r = 0; r < n; r++)
                    results[r] = DASHI_ERR_INVALID;
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                                 "memory store: write set %zu op %zu is malformed (kind, NULL bytes or due beyond 2^53)",
                                 i, j);
                goto out;
            }
    }
    for (i = 0; i < n; i++) {
        const dashi_writeset *ws = sets[i];
        if (!ws || ws->n == 0) {
            results[i] = DASHI_OK;
            continue;
        }
        if (!mem_checks_hold(m, ws)) {
            results[i] = DASHI_ERR_CONFLICT;
            continue;
        }
        if (mem_prepare(m, ws) != 0) {
            for (size_t r = i; r < n; r++)
                results[r] = DASHI_ERR_NOMEM;
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size,
                             "memory store: out of memory applying write set %zu (not applied)", i);
            goto out;
        }
        mem_commit(m, ws);
        results[i] = DASHI_OK;
    }
out:
    return err;
}

static dashi_err mem_timers_due(dashi_state *st, dashi_time until, size_t max, dashi_timer **out,
                                size_t *n_out, char *errstr, size_t errstr_size) {
    mem_state *m = (mem_state *)st;
    dashi_err err = DASHI_OK;
    dashi_timer *arr = NULL; /* owned until handed to *out */
    size_t n = 0, cap = 0;

    *out = NULL;
    *n_out = 0;
    for (mem_timer *t = m->queue.head->next[0]; t && t->due <= until && n < max; t = t->next[0]) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            if (ncap > max)
                ncap = max;
            dashi_timer *grown = realloc(arr, ncap * sizeof *grown);
            if (!grown)
                goto nomem;
            arr = grown;
            cap = ncap;
        }
        dashi_timer *d = &arr[n];
        d->due = t->due;
        d->payload = NULL;
        d->payload_len = t->payload_len;
        d->id = malloc(t->id_len + 1);
        if (!d->id)
            goto nomem;
        memcpy(d->id, t->id, t->id_len + 1);
        n++;
        if (t->payload_len) {
            d->payload = malloc(t->payload_len + 1);
            if (!d->payload)
                goto nomem;
            memcpy(d->payload, t->payload, t->payload_len + 1);
        }
    }
    *out = arr;
    *n_out = n;
    arr = NULL;
    n = 0;
    goto out;
nomem:
    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "memory store: out of memory listing timers");
out:
    dashi_timers_free(arr, n);
    return err;
}

static int slot_ptr_cmp(const void *a, const void *b) {
    const mem_slot *x = *(const mem_slot *const *)a;
    const mem_slot *y = *(const mem_slot *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static dashi_err mem_scan(dashi_state *st, const char *prefix, size_t prefix_len, dashi_scan_fn fn,
                          void *opaque, char *errstr, size_t errstr_size) {
    mem_state *m = (mem_state *)st;
    dashi_err err = DASHI_OK;
    const mem_slot **hits = NULL; /* owned; borrows the slots */
    size_t n = 0;

    if (m->data.count) {
        hits = malloc(m->data.count * sizeof *hits);
        if (!hits) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "memory store: out of memory in scan");
            goto out;
        }
    }
    for (size_t i = 0; i < m->data.cap; i++) {
        const mem_slot *s = &m->data.slots[i];
        if (s->key && s->key_len >= prefix_len && (!prefix_len || memcmp(s->key, prefix, prefix_len) == 0))
            hits[n++] = s;
    }
    if (n > 1)
        qsort(hits, n, sizeof *hits, slot_ptr_cmp);
    for (size_t i = 0; i < n; i++)
        if (fn(opaque, hits[i]->key, hits[i]->key_len, hits[i]->val, hits[i]->val_len))
            break;
out:
    free(hits);
    return err;
}

static dashi_err mem_timers_count(dashi_state *st, size_t *n, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    *n = ((mem_state *)st)->queue.count;
    return DASHI_OK;
}

static dashi_err mem_clear(dashi_state *st, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    mem_drop_all((mem_state *)st);
    return DASHI_OK;
}

static void mem_destroy(dashi_state *st) {
    mem_state *m = (mem_state *)st;
    if (!m)
        return;
    if (m->queue.head)
        mem_drop_all(m);
    free(m->queue.head);
    free(m->scratch);
    free(m);
}

static const struct dashi_state_ops mem_ops = {
    .name = "memory",
    .mget = mem_mget,
    .apply = mem_apply,
    .timers_due = mem_timers_due,
    .scan = mem_scan,
    .timers_count = mem_timers_count,
    .clear = mem_clear,
    .destroy = mem_destroy,
};

dashi_state *dashi_state_mem_new(void) {
    mem_state *m = calloc(1, sizeof *m);
    if (!m)
        goto fail;
    m->base.ops = &mem_ops;
    m->queue.head = calloc(1, sizeof *m->queue.head + MEM_MAX_LEVEL * sizeof m->queue.head->next[0]);
    if (!m->queue.head)
        goto fail;
    m->queue.head->level = MEM_MAX_LEVEL;
    m->queue.level = 1;
    m->queue.rng = 0x9e3779b97f4a7c15ULL;
    return &m->base;
fail:
    mem_destroy(m ? &m->base : NULL);
    return NULL;
}
