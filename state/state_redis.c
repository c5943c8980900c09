/* state_redis.c — the Redis state store: write sets as one atomic Lua script each, pipelined; timers in a sorted set.
 *
 * Key layout under the store prefix P (e.g. "dashi:"):
 *   P "k:" key   string   a data key (the "k:" namespace keeps every possible key,
 *                         even one named "timers", apart from the store's own keys)
 *   P "timers"   zset     timer ids, score = due in ms (exact: dues are limited to
 *                         ±2^53); equal scores sort by member bytes, which is the
 *                         contract's (due, id) order
 *   P "timerp"   hash     timer id → payload
 * scan() and clear() touch only these, so several stores with different prefixes
 * (that are not prefixes of one another) share one database.
 *
 * apply() runs one Lua script per write set, with EVALSHA: KEYS are the two timer
 * keys then one data key per PUT/DEL/CHECK op (every key the script touches is
 * declared, as Redis asks), ARGV[1] is a string of one kind byte per op and the
 * rest their arguments. The script makes a first pass that verifies every CHECK
 * and everything that could make a write fail (the encoding, the types of the
 * timer keys, numeric dues) and a second that writes, so a failing set writes
 * nothing (Redis keeps the writes of a script that fails half-way). Its "#!lua"
 * shebang (Redis >= 7.0) makes Redis refuse it up front when out of memory rather
 * than at some write in the middle. All n sets go out in one pipeline (append n
 * times, then read n replies): one round trip per apply().
 *
 * Why EVALSHA + SCRIPT LOAD rather than a Redis 7 function: a script is named by
 * the SHA1 of its text, so two dashi versions running side by side (a rolling
 * upgrade) each get their own script and never replace the other's, while a
 * FUNCTION LOAD REPLACE of one library name is global to the server. Scripts are
 * lost on restart and SCRIPT FLUSH; the store reloads them on connect and, on a
 * NOSCRIPT reply (no set was applied by that call), reloads and resends only the
 * sets that got it. (Should another client flush and reload scripts during one
 * pipeline, a resent set runs after later sets of the same batch: the ordering
 * between them is then lost; nothing else is.)
 *
 * timers_due() is a read-only script (ZRANGEBYSCORE + HGET) so ids, dues and
 * payloads come from one consistent instant in one round trip.
 *
 * Errors: a connection that breaks (EOF, reset, timeout) is dropped and the call
 * returns DASHI_ERR_TRANSPORT (retriable); the next call reconnects (AUTH, SELECT,
 * SCRIPT LOAD) by itself. Error replies are DASHI_ERR_BACKEND. SIGPIPE from a write
 * to a dead socket is blocked and discarded around every call, so the process is
 * not killed and its signal disposition is left alone. One store = one hiredis
 * context = one thread. Keys and values are binary-safe (argv with lengths).
 * An optional observer (dashi_state_redis_set_observer) is told the duration of
 * every round trip that got its replies: a command, or one whole pipeline.
 */
#include "core/state.h"

#include <hiredis/hiredis.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATA_NS "k:"
#define DATA_NS_LEN 2
#define DUE_LIMIT (1LL << 53)
#define SCAN_COUNT "1000"
#define MGET_CHUNK 1000

/* KEYS[1] timers zset, KEYS[2] payload hash, KEYS[3..] one per P/D/A/E op.
 * ARGV[1] kinds: P put(val) D del A check-absent E check-eq(val)
 * T timer-add(id, due, payload) X timer-del(id) C timer-check(id, due, payload).
 * Returns 1 applied, 0 conflict. A timer check against timer keys of the wrong type
 * fails in the first pass, before any write (a script error). */
static const char apply_script[] =
    "#!lua\n"
    "local kinds = ARGV[1]\n"
    "local k, a, timers = 3, 2, false\n"
    "for i = 1, #kinds do\n"
    "  local c = string.byte(kinds, i)\n"
    "  if c == 80 then k = k + 1; a = a + 1\n"
    "  elseif c == 68 then k = k + 1\n"
    "  elseif c == 65 then\n"
    "    if redis.call('EXISTS', KEYS[k]) == 1 then return 0 end\n"
    "    k = k + 1\n"
    "  elseif c == 69 then\n"
    "    if redis.call('GET', KEYS[k]) ~= ARGV[a] then return 0 end\n"
    "    k = k + 1; a = a + 1\n"
    "  elseif c == 84 then\n"
    "    if tonumber(ARGV[a + 1]) == nil then return redis.error_reply('dashi: timer due is not a number') end\n"
    "    a = a + 3; timers = true\n"
    "  elseif c == 88 then a = a + 1; timers = true\n"
    "  elseif c == 67 then\n"
    "    local s = redis.call('ZSCORE', KEYS[1], ARGV[a])\n"
    "    if not s or tonumber(s) ~= tonumber(ARGV[a + 1]) then return 0 end\n"
    "    if (redis.call('HGET', KEYS[2], ARGV[a]) or '') ~= ARGV[a + 2] then return 0 end\n"
    "    a = a + 3\n"
    "  else return redis.error_reply('dashi: unknown write-set op kind') end\n"
    "end\n"
    "if k ~= #KEYS + 1 or a ~= #ARGV + 1 then return redis.error_reply('dashi: malformed write set') end\n"
    "if timers then\n"
    "  local t1 = redis.call('TYPE', KEYS[1]).ok\n"
    "  local t2 = redis.call('TYPE', KEYS[2]).ok\n"
    "  if (t1 ~= 'zset' and t1 ~= 'none') or (t2 ~= 'hash' and t2 ~= 'none') then\n"
    "    return redis.error_reply('dashi: timer keys hold the wrong type')\n"
    "  end\n"
    "end\n"
    "k, a = 3, 2\n"
    "for i = 1, #kinds do\n"
    "  local c = string.byte(kinds, i)\n"
    "  if c == 80 then redis.call('SET', KEYS[k], ARGV[a]); k = k + 1; a = a + 1\n"
    "  elseif c == 68 then redis.call('DEL', KEYS[k]); k = k + 1\n"
    "  elseif c == 65 then k = k + 1\n"
    "  elseif c == 69 then k = k + 1; a = a + 1\n"
    "  elseif c == 84 then\n"
    "    redis.call('ZADD', KEYS[1], ARGV[a + 1], ARGV[a])\n"
    "    redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 2])\n"
    "    a = a + 3\n"
    "  elseif c == 67 then a = a + 3\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[1], ARGV[a])\n"
    "    redis.call('HDEL', KEYS[2], ARGV[a])\n"
    "    a = a + 1\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* KEYS[1] timers zset, KEYS[2] payload hash; ARGV until, max. Returns id, due, payload triples. */
static const char due_script[] =
    "#!lua flags=no-writes\n"
    "local r = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])\n"
    "local out = {}\n"
    "for i = 1, #r, 2 do\n"
    "  out[#out + 1] = r[i]\n"
    "  out[#out + 1] = r[i + 1]\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[2], r[i]) or ''\n"
    "end\n"
    "return out\n";

typedef struct redis_state {
    dashi_state base;
    redisContext *ctx;     /* owned; NULL while disconnected */
    dashi_redis_url url;   /* owned */
    char *where;           /* owned; "host:port" or the socket path, for messages */
    char *prefix;          /* owned; "" when none */
    size_t prefix_len;
    char *key_timers;      /* owned; prefix "timers" */
    char *key_timerp;      /* owned; prefix "timerp" */
    size_t key_timers_len, key_timerp_len;
    char apply_sha[41], due_sha[41];
    /* Scratch reused by every call; owned. */
    const char **argv;     /* pointers into arena or the caller's buffers */
    size_t *argvlen;
    size_t argv_cap;
    char *arena;
    size_t arena_cap;
    void (*observe)(void *opaque, double seconds); /* may be NULL */
    void *observe_opaque;                          /* borrowed */
} redis_state;

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- SIGPIPE */

/* Block SIGPIPE in this thread for the duration of a call; on release, discard one
 * raised meanwhile (a write to a closed socket) unless it was pending before. */
typedef struct pipe_guard {
    sigset_t old;
    int was_pending;
} pipe_guard;

static void pipe_guard_take(pipe_guard *g) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_guard_release(pipe_guard *g) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---------------------------------------------------------------- scratch */

static int reserve_argv(redis_state *r, size_t n) {
    if (n <= r->argv_cap)
        return 0;
    size_t cap = r->argv_cap ? r->argv_cap : 64;
    while (cap < n)
        cap *= 2;
    const char **argv = realloc(r->argv, cap * sizeof *argv);
    if (!argv)
        return -1;
    r->argv = argv;
    size_t *lens = realloc(r->argvlen, cap * sizeof *lens);
    if (!lens)
        return -1;
    r->argvlen = lens;
    r->argv_cap = cap;
    return 0;
}

static int reserve_arena(redis_state *r, size_t n) {
    if (n <= r->arena_cap)
        return 0;
    size_t cap = r->arena_cap ? r->arena_cap : 4096;
    while (cap < n)
        cap *= 2;
    char *arena = realloc(r->arena, cap);
    if (!arena)
        return -1;
    r->arena = arena;
    r->arena_cap = cap;
    return 0;
}

/* Write prefix "k:" key at *pos in the arena (room reserved), returning its start. */
static const char *arena_data_key(redis_state *r, size_t *pos, const char *key, size_t key_len) {
    char *p = r->arena + *pos;
    memcpy(p, r->prefix, r->prefix_len);
    memcpy(p + r->prefix_len, DATA_NS, DATA_NS_LEN);
    if (key_len)
        memcpy(p + r->prefix_len + DATA_NS_LEN, key, key_len);
    *pos += r->prefix_len + DATA_NS_LEN + key_len;
    return p;
}

/* ---------------------------------------------------------------- connection */

static void rs_drop(redis_state *r) {
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
}

/* The connection broke during what: drop it and say so. */
static dashi_err rs_lost(redis_state *r, const char *what, char *errstr, size_t errstr_size) {
    const char *why = r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "connection error";
    dashi_err err = dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size,
                               "redis %s: connection lost during %s: %s (will reconnect on the next call)",
                               r->where, what, why);
    rs_drop(r);
    return err;
}

/* One command on the live connection. DASHI_OK with *out set (possibly an error
 * reply: the caller decides), TRANSPORT when the connection broke. */
static dashi_err rs_call(redis_state *r, int argc, const char **argv, const size_t *lens, redisReply **out,
                         const char *what, char *errstr, size_t errstr_size) {
    double t0 = r->observe ? mono_seconds() : 0;
    *out = redisCommandArgv(r->ctx, argc, argv, lens);
    if (!*out)
        return rs_lost(r, what, errstr, errstr_size);
    if (r->observe)
        r->observe(r->observe_opaque, mono_seconds() - t0);
    return DASHI_OK;
}

/* rs_call that also turns an error reply into DASHI_ERR_BACKEND (reply freed). */
static dashi_err rs_call_ok(redis_state *r, int argc, const char **argv, const size_t *lens, redisReply **out,
                            const char *what, char *errstr, size_t errstr_size) {
    dashi_err err = rs_call(r, argc, argv, lens, out, what, errstr, errstr_size);
    if (err == DASHI_OK && (*out)->type == REDIS_REPLY_ERROR) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: %s failed: %.*s", r->where, what,
                         (int)(*out)->len, (*out)->str);
        freeReplyObject(*out);
        *out = NULL;
    }
    return err;
}

static dashi_err rs_load_script(redis_state *r, const char *src, char sha[41], char *errstr, size_t errstr_size) {
    const char *argv[] = {"SCRIPT", "LOAD", src};
    size_t lens[] = {6, 4, strlen(src)};
    redisReply *rep = NULL;
    dashi_err err = rs_call(r, 3, argv, lens, &rep, "SCRIPT LOAD", errstr, errstr_size);
    if (err)
        goto out;
    if (rep->type == REDIS_REPLY_ERROR) {
        int noauth = rep->len >= 6 && memcmp(rep->str, "NOAUTH", 6) == 0;
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: %s: %.*s", r->where,
                         noauth ? "the server wants a password and the URL has none"
                                : "cannot load dashi's Lua scripts (Redis >= 7.0 needed)",
                         (int)rep->len, rep->str);
        goto out;
    }
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: SCRIPT LOAD gave no SHA1", r->where);
        goto out;
    }
    memcpy(sha, rep->str, 40);
    sha[40] = '\0';
out:
    freeReplyObject(rep);
    return err;
}

static dashi_err rs_load_scripts(redis_state *r, char *errstr, size_t errstr_size) {
    dashi_err err = rs_load_script(r, apply_script, r->apply_sha, errstr, errstr_size);
    if (!err)
        err = rs_load_script(r, due_script, r->due_sha, errstr, errstr_size);
    return err;
}

/* (Re)connect: connect, AUTH, SELECT, SCRIPT LOAD. On failure r->ctx stays NULL. */
static dashi_err rs_connect(redis_state *r, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    struct timeval tv = {r->url.timeout_ms / 1000, (r->url.timeout_ms % 1000) * 1000};

    rs_drop(r);
    r->ctx = r->url.path ? redisConnectUnixWithTimeout(r->url.path, tv)
                         : redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (!r->ctx) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory connecting", r->where);
        goto out;
    }
    if (r->ctx->err) {
        err = dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "redis %s: cannot connect: %s", r->where,
                         r->ctx->errstr);
        goto out;
    }
    if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
        err = dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "redis %s: cannot set the timeout: %s",
                         r->where, r->ctx->errstr);
        goto out;
    }
    if (r->url.password) {
        const char *argv[3] = {"AUTH"};
        size_t lens[3] = {4};
        int argc = 1;
        if (r->url.user) {
            argv[argc] = r->url.user;
            lens[argc++] = strlen(r->url.user);
        }
        argv[argc] = r->url.password;
        lens[argc++] = strlen(r->url.password);
        if ((err = rs_call(r, argc, argv, lens, &rep, "AUTH", errstr, errstr_size)) != DASHI_OK)
            goto out;
        if (rep->type == REDIS_REPLY_ERROR) {
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size,
                             "redis %s: authentication as %s%s%s refused: %.*s", r->where,
                             r->url.user ? "user '" : "the default user", r->url.user ? r->url.user : "",
                             r->url.user ? "'" : "", (int)rep->len, rep->str);
            goto out;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    if (r->url.db) {
        char db[16];
        int len = snprintf(db, sizeof db, "%d", r->url.db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, (size_t)len};
        if ((err = rs_call_ok(r, 2, argv, lens, &rep, "SELECT", errstr, errstr_size)) != DASHI_OK)
            goto out;
        freeReplyObject(rep);
        rep = NULL;
    }
    err = rs_load_scripts(r, errstr, errstr_size);
out:
    freeReplyObject(rep);
    if (err)
        rs_drop(r);
    return err;
}

static dashi_err rs_ready(redis_state *r, char *errstr, size_t errstr_size) {
    if (r->ctx && !r->ctx->err)
        return DASHI_OK;
    return rs_connect(r, errstr, errstr_size);
}

/* ---------------------------------------------------------------- mget */

static dashi_err redis_mget(dashi_state *st, size_t n, const dashi_bytes *keys, dashi_bytes *vals,
                            char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    pipe_guard guard;
    size_t bytes = 0, pos = 0;

    pipe_guard_take(&guard);
    for (size_t i = 0; i < n; i++) {
        vals[i] = (dashi_bytes){NULL, 0};
        bytes += r->prefix_len + DATA_NS_LEN + keys[i].len;
    }
    if (n == 0)
        goto out;
    if (n > INT_MAX - 1 || reserve_argv(r, n + 1) != 0 || reserve_arena(r, bytes) != 0) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in mget", r->where);
        goto out;
    }
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    r->argv[0] = "MGET";
    r->argvlen[0] = 4;
    for (size_t i = 0; i < n; i++) {
        r->argv[i + 1] = arena_data_key(r, &pos, keys[i].data, keys[i].len);
        r->argvlen[i + 1] = r->prefix_len + DATA_NS_LEN + keys[i].len;
    }
    if ((err = rs_call_ok(r, (int)n + 1, r->argv, r->argvlen, &rep, "MGET", errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: MGET gave an unexpected reply", r->where);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        char *copy = malloc(e->len + 1);
        if (!copy) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in mget", r->where);
            goto out;
        }
        memcpy(copy, e->str, e->len);
        copy[e->len] = '\0';
        vals[i] = (dashi_bytes){copy, e->len};
    }
out:
    freeReplyObject(rep);
    if (err)
        for (size_t i = 0; i < n; i++) {
            free(vals[i].data);
            vals[i] = (dashi_bytes){NULL, 0};
        }
    pipe_guard_release(&guard);
    return err;
}

/* ---------------------------------------------------------------- apply */

static int op_valid(const dashi_ws_op *op) {
    if ((unsigned)op->kind > DASHI_WS_TIMER_CHECK || (!op->key && op->key_len))
        return 0;
    if ((op->kind == DASHI_WS_PUT || op->kind == DASHI_WS_CHECK_EQ || op->kind == DASHI_WS_TIMER_ADD ||
         op->kind == DASHI_WS_TIMER_CHECK) &&
        !op->val && op->val_len)
        return 0;
    if ((op->kind == DASHI_WS_TIMER_ADD || op->kind == DASHI_WS_TIMER_CHECK) &&
        (op->due > DUE_LIMIT || op->due < -DUE_LIMIT))
        return 0;
    return 1;
}

/* Append EVALSHA for ws to the pipeline. 0, or -1 out of memory. */
static int append_set(redis_state *r, const dashi_writeset *ws) {
    static const char kind_byte[] = {
        [DASHI_WS_PUT] = 'P', [DASHI_WS_DEL] = 'D', [DASHI_WS_CHECK_ABSENT] = 'A',
        [DASHI_WS_CHECK_EQ] = 'E', [DASHI_WS_TIMER_ADD] = 'T', [DASHI_WS_TIMER_DEL] = 'X',
        [DASHI_WS_TIMER_CHECK] = 'C',
    };
    size_t nkeys = 0, nargs = 0, bytes = ws->n + 24; /* kinds string + numkeys */
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        switch (op->kind) {
        case DASHI_WS_PUT: case DASHI_WS_CHECK_EQ:
            nkeys++; nargs++;
            bytes += r->prefix_len + DATA_NS_LEN + op->key_len;
            break;
        case DASHI_WS_DEL: case DASHI_WS_CHECK_ABSENT:
            nkeys++;
            bytes += r->prefix_len + DATA_NS_LEN + op->key_len;
            break;
        case DASHI_WS_TIMER_ADD: case DASHI_WS_TIMER_CHECK:
            nargs += 3;
            bytes += 24; /* the due as text */
            break;
        case DASHI_WS_TIMER_DEL:
            nargs++;
            break;
        }
    }
    size_t argc = 3 + 2 + nkeys + 1 + nargs;
    if (argc > INT_MAX || reserve_argv(r, argc) != 0 || reserve_arena(r, bytes) != 0)
        return -1;

    size_t pos = 0, key_at = 5, arg_at = 5 + nkeys + 1;
    char *kinds = r->arena;
    pos += ws->n;
    char *numkeys = r->arena + pos;
    int numkeys_len = snprintf(numkeys, 24, "%zu", 2 + nkeys);
    pos += (size_t)numkeys_len + 1;
    r->argv[0] = "EVALSHA";           r->argvlen[0] = 7;
    r->argv[1] = r->apply_sha;        r->argvlen[1] = 40;
    r->argv[2] = numkeys;             r->argvlen[2] = (size_t)numkeys_len;
    r->argv[3] = r->key_timers;       r->argvlen[3] = r->key_timers_len;
    r->argv[4] = r->key_timerp;       r->argvlen[4] = r->key_timerp_len;
    r->argv[5 + nkeys] = kinds;       r->argvlen[5 + nkeys] = ws->n;
    for (size_t i = 0; i < ws->n; i++) {
        const dashi_ws_op *op = &ws->ops[i];
        kinds[i] = kind_byte[op->kind];
        switch (op->kind) {
        case DASHI_WS_PUT: case DASHI_WS_CHECK_EQ: case DASHI_WS_DEL: case DASHI_WS_CHECK_ABSENT:
            r->argvlen[key_at] = r->prefix_len + DATA_NS_LEN + op->key_len;
            r->argv[key_at++] = arena_data_key(r, &pos, op->key, op->key_len);
            if (op->kind == DASHI_WS_PUT || op->kind == DASHI_WS_CHECK_EQ) {
                r->argv[arg_at] = op->val ? op->val : "";
                r->argvlen[arg_at++] = op->val_len;
            }
            break;
        case DASHI_WS_TIMER_ADD: case DASHI_WS_TIMER_CHECK: {
            char *due = r->arena + pos;
            int due_len = snprintf(due, 24, "%lld", (long long)op->due);
            pos += (size_t)due_len + 1;
            r->argv[arg_at] = op->key ? op->key : "";   r->argvlen[arg_at++] = op->key_len;
            r->argv[arg_at] = due;                      r->argvlen[arg_at++] = (size_t)due_len;
            r->argv[arg_at] = op->val ? op->val : "";   r->argvlen[arg_at++] = op->val_len;
            break;
        }
        case DASHI_WS_TIMER_DEL:
            r->argv[arg_at] = op->key ? op->key : "";
            r->argvlen[arg_at++] = op->key_len;
            break;
        }
    }
    return redisAppendCommandArgv(r->ctx, (int)argc, r->argv, r->argvlen) == REDIS_OK ? 0 : -1;
}

static int is_noscript(const redisReply *rep) {
    return rep->type == REDIS_REPLY_ERROR && rep->len >= 8 && memcmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* One pipeline over the sets with todo[i] set: results for each; todo[i] stays set
 * only for the sets that got NOSCRIPT (not applied, to be resent). */
static dashi_err apply_round(redis_state *r, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                             unsigned char *todo, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    size_t sent = 0;
    double t0 = r->observe ? mono_seconds() : 0;

    for (size_t i = 0; i < n; i++) {
        if (!todo[i])
            continue;
        if (append_set(r, sets[i]) != 0) {
            /* Nothing is on the wire before the first read: drop the half-built pipeline. */
            rs_drop(r);
            for (size_t j = 0; j < n; j++)
                if (todo[j])
                    results[j] = DASHI_ERR_NOMEM;
            return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size,
                              "redis %s: out of memory building write set %zu (none of this call sent)", r->where, i);
        }
        sent++;
    }
    for (size_t i = 0; i < n && sent; i++) {
        if (!todo[i])
            continue;
        redisReply *rep = NULL;
        sent--;
        if (redisGetReply(r->ctx, (void **)&rep) != REDIS_OK || !rep) {
            err = rs_lost(r, "apply", errstr, errstr_size);
            for (size_t j = i; j < n; j++)
                if (todo[j]) {
                    results[j] = DASHI_ERR_TRANSPORT;
                    todo[j] = 0;
                }
            break;
        }
        if (is_noscript(rep)) {
            results[i] = DASHI_ERR_BACKEND; /* until the resend says otherwise */
        } else if (rep->type == REDIS_REPLY_INTEGER && (rep->integer == 0 || rep->integer == 1)) {
            results[i] = rep->integer ? DASHI_OK : DASHI_ERR_CONFLICT;
            todo[i] = 0;
        } else {
            results[i] = DASHI_ERR_BACKEND;
            todo[i] = 0;
            if (!err)
                err = rep->type == REDIS_REPLY_ERROR
                          ? dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: write set %zu failed: %.*s",
                                       r->where, i, (int)rep->len, rep->str)
                          : dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size,
                                       "redis %s: write set %zu: unexpected script reply type %d", r->where, i,
                                       rep->type);
        }
        freeReplyObject(rep);
    }
    if (r->observe && r->ctx)
        r->observe(r->observe_opaque, mono_seconds() - t0);
    return err;
}

static dashi_err redis_apply(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                             char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    unsigned char *todo = NULL; /* owned */
    size_t pending = 0;
    pipe_guard guard;

    pipe_guard_take(&guard);
    for (size_t i = 0; i < n; i++) {
        results[i] = DASHI_OK;
        for (size_t j = 0; sets[i] && j < sets[i]->n; j++)
            if (!op_valid(&sets[i]->ops[j])) {
                for (size_t k = 0; k < n; k++)
                    results[k] = DASHI_ERR_INVALID;
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                                 "redis store: write set %zu op %zu is malformed (kind, NULL bytes or due beyond 2^53)",
                                 i, j);
                goto out;
            }
    }
    if (n == 0)
        goto out;
    if (!(todo = calloc(n, 1))) {
        for (size_t i = 0; i < n; i++)
            results[i] = DASHI_ERR_NOMEM;
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in apply", r->where);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (sets[i] && sets[i]->n) {
            todo[i] = 1;
            pending++;
        }
    if (!pending)
        goto out;
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK) {
        for (size_t i = 0; i < n; i++)
            if (todo[i])
                results[i] = err; /* TRANSPORT, or BACKEND (AUTH, SCRIPT LOAD) or NOMEM */
        goto out;
    }
    for (int round = 0; round < 2; round++) {
        /* a set's error reply in the first round survives a clean resend round; a
         * broken connection (retriable) outranks it */
        dashi_err rerr = apply_round(r, n, sets, results, todo, errstr, errstr_size);
        if (rerr && (!err || rerr == DASHI_ERR_TRANSPORT || rerr == DASHI_ERR_NOMEM))
            err = rerr;
        pending = 0;
        for (size_t i = 0; i < n; i++)
            pending += todo[i];
        if (!pending || rerr == DASHI_ERR_TRANSPORT || rerr == DASHI_ERR_NOMEM)
            break;
        /* NOSCRIPT: the script cache was flushed (SCRIPT FLUSH, or a restart we did not notice). */
        dashi_err lerr = rs_load_scripts(r, errstr, errstr_size);
        if (lerr) {
            for (size_t i = 0; i < n; i++)
                if (todo[i])
                    results[i] = lerr == DASHI_ERR_TRANSPORT ? DASHI_ERR_TRANSPORT : DASHI_ERR_BACKEND;
            if (!err || lerr == DASHI_ERR_TRANSPORT)
                err = lerr;
            pending = 0;
            break;
        }
    }
    if (pending && !err)
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size,
                         "redis %s: NOSCRIPT again right after reloading the apply script", r->where);
out:
    free(todo);
    pipe_guard_release(&guard);
    return err;
}

/* ---------------------------------------------------------------- timers */

/* EVALSHA of the timers script, reloading once on NOSCRIPT. */
static dashi_err rs_evalsha_due(redis_state *r, const char *until, const char *max, redisReply **out,
                                char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    for (int round = 0; round < 2; round++) {
        const char *argv[] = {"EVALSHA", r->due_sha, "2", r->key_timers, r->key_timerp, until, max};
        size_t lens[] = {7, 40, 1, r->key_timers_len, r->key_timerp_len, strlen(until), strlen(max)};
        if ((err = rs_call(r, 7, argv, lens, out, "timers_due", errstr, errstr_size)) != DASHI_OK)
            return err;
        if (!is_noscript(*out) || round == 1)
            break;
        freeReplyObject(*out);
        *out = NULL;
        if ((err = rs_load_scripts(r, errstr, errstr_size)) != DASHI_OK)
            return err;
    }
    if ((*out)->type == REDIS_REPLY_ERROR) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: timers_due failed: %.*s", r->where,
                         (int)(*out)->len, (*out)->str);
        freeReplyObject(*out);
        *out = NULL;
    }
    return err;
}

static dashi_err redis_timers_due(dashi_state *st, dashi_time until, size_t max, dashi_timer **out,
                                  size_t *n_out, char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    dashi_timer *arr = NULL; /* owned until handed to *out */
    size_t n = 0;
    char until_s[24], max_s[24];
    pipe_guard guard;

    pipe_guard_take(&guard);
    *out = NULL;
    *n_out = 0;
    if (max == 0)
        goto out;
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    snprintf(until_s, sizeof until_s, "%lld", (long long)until);
    snprintf(max_s, sizeof max_s, "%llu", (unsigned long long)(max > (size_t)LONG_MAX ? (size_t)LONG_MAX : max));
    if ((err = rs_evalsha_due(r, until_s, max_s, &rep, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 3) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: timers script gave an unexpected reply",
                         r->where);
        goto out;
    }
    if (rep->elements && !(arr = calloc(rep->elements / 3, sizeof *arr)))
        goto nomem;
    for (size_t i = 0; i < rep->elements; i += 3) {
        const redisReply *id = rep->element[i], *due = rep->element[i + 1], *pl = rep->element[i + 2];
        if (id->type != REDIS_REPLY_STRING || due->type != REDIS_REPLY_STRING || pl->type != REDIS_REPLY_STRING) {
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: timers script gave a non-string",
                             r->where);
            goto out;
        }
        char num[64], *end = NULL;
        size_t nl = due->len < sizeof num - 1 ? due->len : sizeof num - 1;
        memcpy(num, due->str, nl);
        num[nl] = '\0';
        double d = strtod(num, &end);
        if (end == num || *end || d != floor(d) || d > (double)DUE_LIMIT || d < -(double)DUE_LIMIT) {
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: timer score '%s' is not a due",
                             r->where, num);
            goto out;
        }
        dashi_timer *t = &arr[n++];
        t->due = (dashi_time)d;
        if (!(t->id = malloc(id->len + 1)))
            goto nomem;
        memcpy(t->id, id->str, id->len);
        t->id[id->len] = '\0';
        if (pl->len) {
            if (!(t->payload = malloc(pl->len + 1)))
                goto nomem;
            memcpy(t->payload, pl->str, pl->len);
            t->payload[pl->len] = '\0';
            t->payload_len = pl->len;
        }
    }
    *out = arr;
    *n_out = n;
    arr = NULL;
    n = 0;
    goto out;
nomem:
    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory listing timers", r->where);
out:
    dashi_timers_free(arr, n);
    freeReplyObject(rep);
    pipe_guard_release(&guard);
    return err;
}

static dashi_err redis_timers_count(dashi_state *st, size_t *n, char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    pipe_guard guard;

    pipe_guard_take(&guard);
    *n = 0;
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    const char *argv[] = {"ZCARD", r->key_timers};
    size_t lens[] = {5, r->key_timers_len};
    if ((err = rs_call_ok(r, 2, argv, lens, &rep, "ZCARD", errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 0) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: ZCARD gave an unexpected reply", r->where);
        goto out;
    }
    *n = (size_t)rep->integer;
out:
    freeReplyObject(rep);
    pipe_guard_release(&guard);
    return err;
}

/* ---------------------------------------------------------------- scan and clear */

/* A SCAN MATCH pattern for keys starting with a, b (glob characters escaped). NULL on out of memory. */
static char *glob_prefix(const char *a, size_t a_len, const char *b, size_t b_len, size_t *len) {
    char *p = malloc(2 * (a_len + b_len) + 2);
    size_t n = 0;
    if (!p)
        return NULL;
    for (size_t part = 0; part < 2; part++) {
        const char *s = part ? b : a;
        size_t sl = part ? b_len : a_len;
        for (size_t i = 0; i < sl; i++) {
            if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == ']' || s[i] == '\\')
                p[n++] = '\\';
            p[n++] = s[i];
        }
    }
    p[n++] = '*';
    p[n] = '\0';
    *len = n;
    return p;
}

/* Handles one SCAN page (an array reply of keys); non-OK ends the scan with that error. */
typedef dashi_err (*scan_page_fn)(redis_state *r, void *opaque, const redisReply *keys, char *errstr,
                                  size_t errstr_size);

/* SCAN every key matching pattern (COUNT 1000 a page), handing each page to page(). */
static dashi_err rs_scan_all(redis_state *r, const char *pattern, size_t pattern_len, scan_page_fn page,
                             void *opaque, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
        size_t lens[] = {4, strlen(cursor), 5, pattern_len, 5, strlen(SCAN_COUNT)};
        if ((err = rs_call_ok(r, 6, argv, lens, &rep, "SCAN", errstr, errstr_size)) != DASHI_OK)
            goto out;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[0]->len >= sizeof cursor || rep->element[1]->type != REDIS_REPLY_ARRAY) {
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: SCAN gave an unexpected reply",
                             r->where);
            goto out;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        if ((err = page(r, opaque, rep->element[1], errstr, errstr_size)) != DASHI_OK)
            goto out;
        freeReplyObject(rep);
        rep = NULL;
    } while (strcmp(cursor, "0") != 0);
out:
    freeReplyObject(rep);
    return err;
}

typedef struct key_list {
    dashi_bytes *keys; /* owned, each data owned */
    size_t n, cap;
    size_t strip;      /* bytes of store prefix + namespace to drop */
} key_list;

static dashi_err collect_page(redis_state *r, void *opaque, const redisReply *keys, char *errstr,
                              size_t errstr_size) {
    key_list *kl = opaque;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len < kl->strip)
            continue;
        if (kl->n == kl->cap) {
            size_t cap = kl->cap ? kl->cap * 2 : 256;
            dashi_bytes *grown = realloc(kl->keys, cap * sizeof *grown);
            if (!grown)
                goto nomem;
            kl->keys = grown;
            kl->cap = cap;
        }
        size_t len = k->len - kl->strip;
        char *copy = malloc(len + 1);
        if (!copy)
            goto nomem;
        memcpy(copy, k->str + kl->strip, len);
        copy[len] = '\0';
        kl->keys[kl->n++] = (dashi_bytes){copy, len};
    }
    return DASHI_OK;
nomem:
    return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in scan", r->where);
}

static int bytes_cmp(const void *a, const void *b) {
    const dashi_bytes *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->data, y->data, n) : 0;
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static dashi_err redis_scan(dashi_state *st, const char *prefix, size_t prefix_len, dashi_scan_fn fn,
                            void *opaque, char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    key_list kl = {.strip = r->prefix_len + DATA_NS_LEN};
    char *ns = NULL, *pattern = NULL; /* owned */
    size_t pattern_len = 0, m = 0;
    pipe_guard guard;

    pipe_guard_take(&guard);
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (!(ns = malloc(kl.strip + 1)))
        goto nomem;
    memcpy(ns, r->prefix, r->prefix_len);
    memcpy(ns + r->prefix_len, DATA_NS, DATA_NS_LEN);
    if (!(pattern = glob_prefix(ns, kl.strip, prefix ? prefix : "", prefix ? prefix_len : 0, &pattern_len)))
        goto nomem;
    if ((err = rs_scan_all(r, pattern, pattern_len, collect_page, &kl, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (kl.n > 1)
        qsort(kl.keys, kl.n, sizeof *kl.keys, bytes_cmp);
    /* SCAN may return a key twice: keep one. */
    for (size_t i = 0; i < kl.n; i++) {
        if (m && bytes_cmp(&kl.keys[m - 1], &kl.keys[i]) == 0)
            free(kl.keys[i].data);
        else
            kl.keys[m++] = kl.keys[i];
    }
    kl.n = m;
    if (reserve_argv(r, MGET_CHUNK + 1) != 0)
        goto nomem;
    for (size_t base = 0; base < kl.n; base += MGET_CHUNK) {
        size_t cnt = kl.n - base < MGET_CHUNK ? kl.n - base : MGET_CHUNK, bytes = 0, pos = 0;
        for (size_t i = 0; i < cnt; i++)
            bytes += kl.strip + kl.keys[base + i].len;
        if (reserve_arena(r, bytes) != 0)
            goto nomem;
        r->argv[0] = "MGET";
        r->argvlen[0] = 4;
        for (size_t i = 0; i < cnt; i++) {
            r->argv[i + 1] = arena_data_key(r, &pos, kl.keys[base + i].data, kl.keys[base + i].len);
            r->argvlen[i + 1] = kl.strip + kl.keys[base + i].len;
        }
        if ((err = rs_call_ok(r, (int)cnt + 1, r->argv, r->argvlen, &rep, "MGET (scan)", errstr, errstr_size)))
            goto out;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != cnt) {
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: MGET gave an unexpected reply",
                             r->where);
            goto out;
        }
        for (size_t i = 0; i < cnt; i++) {
            const redisReply *v = rep->element[i];
            if (v->type != REDIS_REPLY_STRING) /* deleted since SCAN saw it */
                continue;
            if (fn(opaque, kl.keys[base + i].data, kl.keys[base + i].len, v->str, v->len))
                goto out;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    goto out;
nomem:
    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in scan", r->where);
out:
    freeReplyObject(rep);
    for (size_t i = 0; i < kl.n; i++)
        free(kl.keys[i].data);
    free(kl.keys);
    free(ns);
    free(pattern);
    pipe_guard_release(&guard);
    return err;
}

static dashi_err unlink_page(redis_state *r, void *opaque, const redisReply *keys, char *errstr,
                             size_t errstr_size) {
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    (void)opaque;
    if (keys->elements == 0)
        goto out;
    if (keys->elements > INT_MAX - 1 || reserve_argv(r, keys->elements + 1) != 0) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in clear", r->where);
        goto out;
    }
    r->argv[0] = "UNLINK";
    r->argvlen[0] = 6;
    for (size_t i = 0; i < keys->elements; i++) {
        r->argv[i + 1] = keys->element[i]->str ? keys->element[i]->str : "";
        r->argvlen[i + 1] = keys->element[i]->len;
    }
    err = rs_call_ok(r, (int)keys->elements + 1, r->argv, r->argvlen, &rep, "UNLINK", errstr, errstr_size);
out:
    freeReplyObject(rep);
    return err;
}

static dashi_err redis_clear(dashi_state *st, char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    char *pattern = NULL; /* owned */
    size_t pattern_len = 0;
    pipe_guard guard;

    pipe_guard_take(&guard);
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (!(pattern = glob_prefix(r->prefix, r->prefix_len, DATA_NS, DATA_NS_LEN, &pattern_len))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in clear", r->where);
        goto out;
    }
    if ((err = rs_scan_all(r, pattern, pattern_len, unlink_page, NULL, errstr, errstr_size)) != DASHI_OK)
        goto out;
    const char *argv[] = {"UNLINK", r->key_timers, r->key_timerp};
    size_t lens[] = {6, r->key_timers_len, r->key_timerp_len};
    err = rs_call_ok(r, 3, argv, lens, &rep, "UNLINK", errstr, errstr_size);
out:
    freeReplyObject(rep);
    free(pattern);
    pipe_guard_release(&guard);
    return err;
}

/* ---------------------------------------------------------------- life cycle */

static void redis_destroy(dashi_state *st) {
    redis_state *r = (redis_state *)st;
    if (!r)
        return;
    rs_drop(r);
    dashi_redis_url_free(&r->url);
    free(r->where);
    free(r->prefix);
    free(r->key_timers);
    free(r->key_timerp);
    free(r->argv);
    free(r->argvlen);
    free(r->arena);
    free(r);
}

static const struct dashi_state_ops redis_ops = {
    .name = "redis",
    .mget = redis_mget,
    .apply = redis_apply,
    .timers_due = redis_timers_due,
    .scan = redis_scan,
    .timers_count = redis_timers_count,
    .clear = redis_clear,
    .destroy = redis_destroy,
};

/* prefix followed by suffix, malloc'ed. */
static char *concat(const char *prefix, size_t prefix_len, const char *suffix, size_t *len) {
    size_t sl = strlen(suffix);
    char *s = malloc(prefix_len + sl + 1);
    if (!s)
        return NULL;
    memcpy(s, prefix, prefix_len);
    memcpy(s + prefix_len, suffix, sl + 1);
    *len = prefix_len + sl;
    return s;
}

void dashi_state_redis_set_observer(dashi_state *st, void (*fn)(void *opaque, double seconds), void *opaque) {
    if (!st || st->ops != &redis_ops)
        return;
    redis_state *r = (redis_state *)st;
    r->observe = fn;
    r->observe_opaque = opaque;
}

dashi_state *dashi_state_redis_new(const char *url, const char *prefix, char *errstr, size_t errstr_size) {
    redis_state *r = NULL;
    dashi_err err = DASHI_OK;
    pipe_guard guard;

    pipe_guard_take(&guard);
    if (!(r = calloc(1, sizeof *r))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis store: out of memory");
        goto out;
    }
    r->base.ops = &redis_ops;
    if ((err = dashi_redis_url_parse(url, &r->url, errstr, errstr_size)) != DASHI_OK)
        goto out;
    size_t where_len = r->url.path ? strlen(r->url.path) + 1 : strlen(r->url.host) + 16;
    if (!(r->where = malloc(where_len)))
        goto nomem;
    if (r->url.path)
        snprintf(r->where, where_len, "%s", r->url.path);
    else
        snprintf(r->where, where_len, "%s:%d", r->url.host, r->url.port);
    r->prefix_len = prefix ? strlen(prefix) : 0;
    if (!(r->prefix = strdup(prefix ? prefix : "")) ||
        !(r->key_timers = concat(r->prefix, r->prefix_len, "timers", &r->key_timers_len)) ||
        !(r->key_timerp = concat(r->prefix, r->prefix_len, "timerp", &r->key_timerp_len)))
        goto nomem;
    err = rs_connect(r, errstr, errstr_size);
    goto out;
nomem:
    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis store: out of memory");
out:
    if (err) {
        redis_destroy(r ? &r->base : NULL);
        r = NULL;
    }
    pipe_guard_release(&guard);
    return r ? &r->base : NULL;
}
