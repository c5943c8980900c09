/* state.h — the state interface: an ops table over a key/value store with atomic write sets and timers.
 *
 * Like SQLite's VFS or Redis's ConnectionType, the rules code sees one small table
 * of operations and never which store is behind it: state/state_mem.c (tests,
 * offline replay) and state/state_redis.c (production) implement the same
 * contract, checked by one conformance suite (tests/test_state.c) run against both.
 *
 * The store holds opaque byte values under byte-string keys, plus a timer queue
 * ordered by (due, id). All writes go through dashi_writeset: a list of operations
 * applied atomically — either every operation takes effect or none. CHECK
 * operations are verified before the first write (optimistic concurrency and
 * de-duplication: an event's marker key must be absent), and a failed check makes
 * the whole set a no-op with DASHI_ERR_CONFLICT. apply() takes many write sets at
 * once so a back end can pipeline them in one round trip; each is still atomic on
 * its own and they are applied in order. apply_chain() (optional) applies sets
 * that build on one another: a set is applied only when all before it were.
 */
#ifndef DASHI_STATE_H
#define DASHI_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/time.h"

typedef struct dashi_bytes {
    char *data; /* owned by whoever filled it; NULL when absent */
    size_t len;
} dashi_bytes;

typedef enum dashi_ws_kind {
    DASHI_WS_PUT,          /* key := val */
    DASHI_WS_DEL,          /* delete key (absent is fine) */
    DASHI_WS_CHECK_ABSENT, /* key must not exist, else the set is a no-op, CONFLICT */
    DASHI_WS_CHECK_EQ,     /* key must hold exactly val, else CONFLICT */
    DASHI_WS_TIMER_ADD,    /* timer id=key due=due payload=val (replaces one of the same id) */
    DASHI_WS_TIMER_DEL,    /* remove timer id=key (absent is fine) */
    DASHI_WS_TIMER_CHECK,  /* timer id=key must be queued with due=due and payload=val (empty val: empty
                            * payload), else CONFLICT: the guard of a timer step, so a timer fires once
                            * even when several engines over one store read it due at the same time */
} dashi_ws_kind;

typedef struct dashi_ws_op {
    dashi_ws_kind kind;
    char *key; size_t key_len; /* owned by the write set */
    char *val; size_t val_len; /* owned by the write set; NULL for DEL and TIMER_DEL */
    dashi_time due;            /* TIMER_ADD and TIMER_CHECK only */
} dashi_ws_op;

typedef struct dashi_writeset {
    dashi_ws_op *ops;
    size_t n, cap;
} dashi_writeset;

/* Write-set building: each copies key and val. Return DASHI_OK or DASHI_ERR_NOMEM
 * (DASHI_ERR_INVALID for an unknown kind, or NULL bytes with a non-zero length). */
void dashi_writeset_init(dashi_writeset *ws);
void dashi_writeset_clear(dashi_writeset *ws); /* frees ops, keeps it usable; NULL-safe */
dashi_err dashi_writeset_add(dashi_writeset *ws, dashi_ws_kind kind, const char *key, size_t key_len,
                             const char *val, size_t val_len, dashi_time due);

typedef struct dashi_timer {
    char *id;            /* owned */
    dashi_time due;
    char *payload;       /* owned; may be NULL when empty */
    size_t payload_len;
} dashi_timer;
void dashi_timers_free(dashi_timer *timers, size_t n); /* NULL-safe */

typedef struct dashi_state dashi_state;

/* Called by scan() for each key with the prefix, in ascending byte order of key.
 * Return non-zero to stop. key/val are borrowed for the duration of the call. */
typedef int (*dashi_scan_fn)(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len);

struct dashi_state_ops {
    const char *name; /* "memory", "redis" */

    /* Read n keys. vals[i].data is a malloc'ed copy (caller frees with free()) or
     * NULL when the key is absent. One round trip for all n where the back end can. */
    dashi_err (*mget)(dashi_state *st, size_t n, const dashi_bytes *keys, dashi_bytes *vals,
                      char *errstr, size_t errstr_size);

    /* Apply n write sets in order, each atomically. results[i] is DASHI_OK or
     * DASHI_ERR_CONFLICT (a check failed; nothing of set i was written). The return
     * value is non-OK only when the store could not be reached or answered an error;
     * then results[] say which sets were applied (OK) and the rest are
     * DASHI_ERR_TRANSPORT or DASHI_ERR_BACKEND. A malformed set (unknown kind, a
     * TIMER_ADD due beyond ±2^53 ms, which a Redis score cannot hold exactly) makes
     * the whole call DASHI_ERR_INVALID with nothing applied. */
    dashi_err (*apply)(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                       char *errstr, size_t errstr_size);

    /* The first up to max timers with due <= until, ordered by (due, id bytes).
     * *out is a malloc'ed array the caller frees with dashi_timers_free(). Timers
     * stay queued until a write set removes them with TIMER_DEL. */
    dashi_err (*timers_due)(dashi_state *st, dashi_time until, size_t max, dashi_timer **out,
                            size_t *n_out, char *errstr, size_t errstr_size);

    /* Every key that starts with prefix (timers excluded), in ascending key order. */
    dashi_err (*scan)(dashi_state *st, const char *prefix, size_t prefix_len, dashi_scan_fn fn,
                      void *opaque, char *errstr, size_t errstr_size);

    /* Number of queued timers. */
    dashi_err (*timers_count)(dashi_state *st, size_t *n, char *errstr, size_t errstr_size);

    /* Drop every key and timer of this store (tests, `replay --state` on a fresh run). */
    dashi_err (*clear)(dashi_state *st, char *errstr, size_t errstr_size);

    void (*destroy)(dashi_state *st);

    /* Optional (NULL: dashi_state_apply_chain() applies the sets one call each).
     * Like apply(), but a chain: set i is applied only when every set before it
     * was. The first set that fails a check gets DASHI_ERR_CONFLICT and ends the
     * chain; every later set is not applied (DASHI_ERR_CONFLICT too). *n_applied is
     * the length of the applied prefix (empty sets count as applied). A back end
     * may run a whole chain as one atomic call (Redis: one script run; a very long
     * chain goes as several calls, each sent after the previous one applied whole).
     * Returns non-OK as apply() does; then results[i] say which sets were applied
     * (OK) and the first one not applied holds the error (DASHI_ERR_TRANSPORT when
     * it is not known whether it was). */
    dashi_err (*apply_chain)(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                             size_t *n_applied, char *errstr, size_t errstr_size);
};

/* st's apply_chain, or the same contract over apply() one set per call (one round
 * trip per set) when the back end has none. */
dashi_err dashi_state_apply_chain(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                                  size_t *n_applied, char *errstr, size_t errstr_size);

/* Every implementation's handle starts with this (C "inheritance" by first member). */
struct dashi_state {
    const struct dashi_state_ops *ops;
};

/* In-memory store (state/state_mem.c). Never fails but on out of memory. */
dashi_state *dashi_state_mem_new(void);

/* Redis store (state/state_redis.c). url: "redis://[user[:password]@]host[:port][/db]"
 * or "unix:///path/to/redis.sock[?db=N]" (also "redis+unix://" with user:password@).
 * Every key is stored under prefix (e.g. "dashi:"; may be NULL for none). Connects,
 * authenticates and loads its scripts; NULL with errstr on failure. */
dashi_state *dashi_state_redis_new(const char *url, const char *prefix, char *errstr, size_t errstr_size);
/* Call fn(opaque, seconds) after each Redis round trip that got its replies (for
 * metrics); fn NULL stops it. A no-op on a store that is not a Redis one. */
void dashi_state_redis_set_observer(dashi_state *st, void (*fn)(void *opaque, double seconds), void *opaque);

/* "memory" → dashi_state_mem_new(), anything else → dashi_state_redis_new(spec, prefix). */
dashi_state *dashi_state_open(const char *spec, const char *prefix, char *errstr, size_t errstr_size);

/* destroy(NULL) is a no-op. */
void dashi_state_destroy(dashi_state *st);

/* A Redis URL taken apart (state/redis_url.c): what dashi_state_redis_new() connects
 * with, public for its unit tests and for tools that must show where they connect
 * without the password. Forms: redis://[user[:password]@]host[:port][/db][?query],
 * unix:///path.sock[?query], redis+unix://[user[:password]@]/path.sock[?query];
 * query keys: db=N, timeout_ms=N. "user@" alone is a password (as redis-cli reads
 * it); user, password and path may be %-encoded. */
typedef struct dashi_redis_url {
    char *host;       /* owned; NULL for a unix socket */
    int port;         /* TCP port, 6379 by default */
    char *path;       /* owned; unix socket path, NULL for TCP */
    char *user;       /* owned; NULL: none (AUTH password) */
    char *password;   /* owned; NULL: no AUTH */
    int db;           /* SELECT db when not 0 */
    int timeout_ms;   /* connect and per-command timeout, 10000 by default */
} dashi_redis_url;

/* Fill *out (all zero on failure) or return DASHI_ERR_INVALID/NOMEM with errstr
 * (which never repeats the password). Free with dashi_redis_url_free(). */
dashi_err dashi_redis_url_parse(const char *url, dashi_redis_url *out, char *errstr, size_t errstr_size);
void dashi_redis_url_free(dashi_redis_url *u); /* frees the strings, not u; NULL-safe */

#endif
