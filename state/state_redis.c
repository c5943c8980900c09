/* state_redis.c — the Redis state store: write sets as one atomic Lua script each, pipelined; timers in a sorted set.
 *
 * Key layout under the store prefix P (e.g. "dashi:"; docs/STATE_LAYOUT.md has the
 * memory each family takes):
 *   P "h:" F B   hash     a bucket: the data keys F X of family F whose bucket is B,
 *                         as fields X → value. F is a key's text up to its first ':'
 *                         when that is within its first 16 bytes ("acct:", "attr:",
 *                         "ev:", "cp:"…), B is FNV-1a-32 of the whole key mod 16,384 as
 *                         4 hex digits. Buckets stay listpacks (a few bytes per field
 *                         instead of ~60 per top-level key) while they hold at most
 *                         hash-max-listpack-entries (128) fields of at most
 *                         hash-max-listpack-value bytes; at connect the store raises
 *                         the latter to 256 when the server lets it (CONFIG SET; never
 *                         lowered; without +config the server's value is used). Fields
 *                         and values are digest-packed (below).
 *   P "k:" key   string   a data key without a family, of the pipeline's families
 *                         "ob:", "off:", "ep:", "wm:" (few, scanned by prefix on
 *                         every assignment, or rewritten many times a second), or a bucketed key whose packed field or value is
 *                         too large for its bucket to stay a listpack (then its value is
 *                         stored packed). A key is in one place only: a put to one
 *                         deletes the other. (The "k:" namespace keeps every possible
 *                         key, even one named "timers", apart from the store's own keys.)
 *   P "timers"   zset     timer ids, score = due in ms (exact: dues are limited to
 *                         ±2^53); equal scores sort by member bytes, which is the
 *                         contract's (due, id) order
 *   P "timerp"   hash     timer id → payload
 * scan() and clear() touch only these, so several stores with different prefixes
 * (that are not prefixes of one another) share one database. A store written by the
 * layout before buckets still reads (a key not in its bucket is looked up as a plain
 * key, and unpacking leaves text without 0xFE/0xFF bytes, i.e. all JSON, as it is),
 * but a CHECK_EQ on such a key compares the packed value with the old text: rebuild
 * such a store with a replay rather than running on it.
 *
 * Digest packing: a maximal run of exactly 43 base64url characters whose last one
 * carries no stray bits (a 256-bit HMAC or digest, as attribute ids hold) is stored as
 * 0xFE and its 32 bytes; a literal 0xFE or 0xFF byte as 0xFF and that byte. It is
 * injective, so CHECK_EQ compares packed forms; a scan unpacks and sorts logical keys.
 * The bucket number and the family are part of the stored layout: never change them.
 *
 * Reads: mget() is one MGET when no key is bucketed, else a read-only script (HGET
 * the bucket, then GET the plain key) so all values come from one instant. scan()
 * SCANs the plain keys with the prefix and the buckets of the prefix's family (every
 * bucket when the prefix is shorter than a family), HGETALLs those (pipelined per
 * SCAN page), keeps the logical keys with the prefix, sorts, and MGETs the plain ones.
 *
 * apply() runs one Lua script per write set, with EVALSHA: KEYS are the two timer
 * keys then per PUT/DEL/CHECK op its plain key, preceded by its bucket when it has
 * one (every key the script touches is declared, as Redis asks), ARGV[1] is a string of one kind byte per op and the
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATA_NS "k:"
#define DATA_NS_LEN 2
#define DUE_LIMIT (1LL << 53)
#define SCAN_COUNT "1000"
#define MGET_CHUNK 1000
#define BUCKET_NS "h:"
#define BUCKET_NS_LEN 2
#define BUCKET_BITS 14         /* 16,384 buckets per family: ~61 fields each at 1M keys */
#define BUCKET_HEX 4           /* hex digits of a bucket number */
#define FAMILY_MAX 16          /* a family is a key's text up to a ':' within its first 16 bytes */
#define LISTPACK_WANT 256      /* hash-max-listpack-value dashi asks for at connect */
#define LISTPACK_DEFAULT 64    /* Redis 7's default, assumed when CONFIG GET is refused */
#define CHAIN_MAX_OPS 100000   /* ops of one chain script call; a longer chain goes as several calls */

/* KEYS[1] timers zset, KEYS[2] payload hash, then per data op either one plain key
 * (P/D/A/E) or a bucket hash and the plain key (p/q/d/a/e, ARGV field first).
 * ARGV[1] kinds: P put(val) D del A check-absent E check-eq(val) on a plain key;
 * p put-in-bucket(field, val) q put-plain(field, val) d del(field) a check-absent(field)
 * e check-eq(field, val) on a bucketed key (it lives in the bucket or, when large, in
 * the plain key: a put in one place deletes the other);
 * T timer-add(id, due, payload) X timer-del(id) C timer-check(id, due, payload).
 * One write set is the ops of a kinds string whose KEYS start at k and ARGV at a:
 * verify() is the first pass (1 and where the next set starts, 0 on a failed check,
 * or an error reply; a timer check against timer keys of the wrong type fails here,
 * before any write), write() the second. Both scripts below are built from them. */
#define LUA_SET_FUNCTIONS \
    "local function verify(kinds, k, a)\n" \
    "  local timers = false\n" \
    "  for i = 1, #kinds do\n" \
    "    local c = string.byte(kinds, i)\n" \
    "    if c == 80 then k = k + 1; a = a + 1\n" \
    "    elseif c == 68 then k = k + 1\n" \
    "    elseif c == 65 then\n" \
    "      if redis.call('EXISTS', KEYS[k]) == 1 then return 0 end\n" \
    "      k = k + 1\n" \
    "    elseif c == 69 then\n" \
    "      if redis.call('GET', KEYS[k]) ~= ARGV[a] then return 0 end\n" \
    "      k = k + 1; a = a + 1\n" \
    "    elseif c == 112 or c == 113 or c == 100 then\n" \
    "      local t = redis.call('TYPE', KEYS[k]).ok\n" \
    "      if t ~= 'hash' and t ~= 'none' then return redis.error_reply('dashi: a bucket key holds the wrong type') end\n" \
    "      k = k + 2; a = a + (c == 100 and 1 or 2)\n" \
    "    elseif c == 97 then\n" \
    "      if redis.call('HEXISTS', KEYS[k], ARGV[a]) == 1 or redis.call('EXISTS', KEYS[k + 1]) == 1 then return 0 end\n" \
    "      k = k + 2; a = a + 1\n" \
    "    elseif c == 101 then\n" \
    "      local v = redis.call('HGET', KEYS[k], ARGV[a])\n" \
    "      if not v then v = redis.call('GET', KEYS[k + 1]) end\n" \
    "      if v ~= ARGV[a + 1] then return 0 end\n" \
    "      k = k + 2; a = a + 2\n" \
    "    elseif c == 84 then\n" \
    "      if tonumber(ARGV[a + 1]) == nil then return redis.error_reply('dashi: timer due is not a number') end\n" \
    "      a = a + 3; timers = true\n" \
    "    elseif c == 88 then a = a + 1; timers = true\n" \
    "    elseif c == 67 then\n" \
    "      local s = redis.call('ZSCORE', KEYS[1], ARGV[a])\n" \
    "      if not s or tonumber(s) ~= tonumber(ARGV[a + 1]) then return 0 end\n" \
    "      if (redis.call('HGET', KEYS[2], ARGV[a]) or '') ~= ARGV[a + 2] then return 0 end\n" \
    "      a = a + 3\n" \
    "    else return redis.error_reply('dashi: unknown write-set op kind') end\n" \
    "  end\n" \
    "  if timers then\n" \
    "    local t1 = redis.call('TYPE', KEYS[1]).ok\n" \
    "    local t2 = redis.call('TYPE', KEYS[2]).ok\n" \
    "    if (t1 ~= 'zset' and t1 ~= 'none') or (t2 ~= 'hash' and t2 ~= 'none') then\n" \
    "      return redis.error_reply('dashi: timer keys hold the wrong type')\n" \
    "    end\n" \
    "  end\n" \
    "  return 1, k, a\n" \
    "end\n" \
    "local function write(kinds, k, a)\n" \
    "  for i = 1, #kinds do\n" \
    "    local c = string.byte(kinds, i)\n" \
    "    if c == 80 then redis.call('SET', KEYS[k], ARGV[a]); k = k + 1; a = a + 1\n" \
    "    elseif c == 68 then redis.call('DEL', KEYS[k]); k = k + 1\n" \
    "    elseif c == 65 then k = k + 1\n" \
    "    elseif c == 69 then k = k + 1; a = a + 1\n" \
    "    elseif c == 112 then\n" \
    "      redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1]); redis.call('DEL', KEYS[k + 1]); k = k + 2; a = a + 2\n" \
    "    elseif c == 113 then\n" \
    "      redis.call('SET', KEYS[k + 1], ARGV[a + 1]); redis.call('HDEL', KEYS[k], ARGV[a]); k = k + 2; a = a + 2\n" \
    "    elseif c == 100 then\n" \
    "      redis.call('HDEL', KEYS[k], ARGV[a]); redis.call('DEL', KEYS[k + 1]); k = k + 2; a = a + 1\n" \
    "    elseif c == 97 then k = k + 2; a = a + 1\n" \
    "    elseif c == 101 then k = k + 2; a = a + 2\n" \
    "    elseif c == 84 then\n" \
    "      redis.call('ZADD', KEYS[1], ARGV[a + 1], ARGV[a])\n" \
    "      redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 2])\n" \
    "      a = a + 3\n" \
    "    elseif c == 67 then a = a + 3\n" \
    "    else\n" \
    "      redis.call('ZREM', KEYS[1], ARGV[a])\n" \
    "      redis.call('HDEL', KEYS[2], ARGV[a])\n" \
    "      a = a + 1\n" \
    "    end\n" \
    "  end\n" \
    "end\n"

/* One write set: ARGV[1] its kinds. Returns 1 applied, 0 conflict. */
static const char apply_script[] =
    "#!lua\n"
    LUA_SET_FUNCTIONS
    "local ok, k, a = verify(ARGV[1], 3, 2)\n"
    "if ok ~= 1 then return ok end\n"
    "if k ~= #KEYS + 1 or a ~= #ARGV + 1 then return redis.error_reply('dashi: malformed write set') end\n"
    "write(ARGV[1], 3, 2)\n"
    "return 1\n";

/* A chain of write sets (apply_chain): ARGV[1] is the kinds of every set, each
 * followed by '|'; their KEYS and ARGV follow one another. Set i is applied only
 * when every set before it was: the script stops at the first that fails a check.
 * The whole chain is one atomic script run, so no other client's command lands
 * between two of its sets. The arity of the whole chain is checked before any
 * write. Returns {sets applied, 1} when all were, {applied, 0} when the next one
 * failed a check, {applied, message} when it was refused (it wrote nothing). */
static const char chain_script[] =
    "#!lua\n"
    LUA_SET_FUNCTIONS
    "local chain, k, a, pos = ARGV[1], 3, 2, 1\n"
    "while pos <= #chain do\n"
    "  local e = string.find(chain, '|', pos, true)\n"
    "  if not e then return redis.error_reply('dashi: malformed chain') end\n"
    "  for i = pos, e - 1 do\n"
    "    local c = string.byte(chain, i)\n"
    "    if c == 80 or c == 69 then k = k + 1; a = a + 1\n"
    "    elseif c == 68 or c == 65 then k = k + 1\n"
    "    elseif c == 112 or c == 113 or c == 101 then k = k + 2; a = a + 2\n"
    "    elseif c == 100 or c == 97 then k = k + 2; a = a + 1\n"
    "    elseif c == 84 or c == 67 then a = a + 3\n"
    "    elseif c == 88 then a = a + 1\n"
    "    else return redis.error_reply('dashi: unknown write-set op kind') end\n"
    "  end\n"
    "  pos = e + 1\n"
    "end\n"
    "if k ~= #KEYS + 1 or a ~= #ARGV + 1 then return redis.error_reply('dashi: malformed write set') end\n"
    "local applied\n"
    "k, a, pos, applied = 3, 2, 1, 0\n"
    "while pos <= #chain do\n"
    "  local e = string.find(chain, '|', pos, true)\n"
    "  local kinds = string.sub(chain, pos, e - 1)\n"
    "  local ok, k2, a2 = verify(kinds, k, a)\n"
    "  if ok ~= 1 then\n"
    "    if type(ok) == 'table' then return {applied, ok.err} end\n"
    "    return {applied, 0}\n"
    "  end\n"
    "  write(kinds, k, a)\n"
    "  k, a, pos, applied = k2, a2, e + 1, applied + 1\n"
    "end\n"
    "return {applied, 1}\n";

/* ARGV[1] one mode byte per key: 'b' (KEYS: bucket, plain key; ARGV: field) or 'k'
 * (KEYS: plain key). Returns one value (or nil) per key, from one instant. */
static const char get_script[] =
    "#!lua flags=no-writes\n"
    "local modes, out, k, a = ARGV[1], {}, 1, 2\n"
    "for i = 1, #modes do\n"
    "  if string.byte(modes, i) == 98 then\n"
    "    local v = redis.call('HGET', KEYS[k], ARGV[a])\n"
    "    if not v then v = redis.call('GET', KEYS[k + 1]) end\n"
    "    out[i] = v; k = k + 2; a = a + 1\n"
    "  else\n"
    "    out[i] = redis.call('GET', KEYS[k]); k = k + 1\n"
    "  end\n"
    "end\n"
    "return out\n";

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
    char apply_sha[41], chain_sha[41], due_sha[41], get_sha[41];
    size_t lp_value;       /* largest field or value put in a bucket (the server's hash-max-listpack-value) */
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

/* ---------------------------------------------------------------- key placement */

static const char *const plain_families[] = {"ob:", "off:", "ep:", "wm:"};

/* The length of key's family ("acct:u1" → 5) when key is stored in a bucket, else 0:
 * keys without a ':' in their first FAMILY_MAX bytes, and the pipeline's families
 * (outbox, offsets, epochs, merge summaries: few, iterated by prefix on every assignment
 * or rewritten many times a second), are plain. */
static size_t key_family(const char *key, size_t len) {
    const char *colon = len ? memchr(key, ':', len < FAMILY_MAX ? len : FAMILY_MAX) : NULL;
    if (!colon)
        return 0;
    size_t flen = (size_t)(colon - key) + 1;
    for (size_t i = 0; i < sizeof plain_families / sizeof *plain_families; i++)
        if (strlen(plain_families[i]) == flen && memcmp(plain_families[i], key, flen) == 0)
            return 0;
    return flen;
}

/* 32-bit FNV-1a of the whole key, cut to BUCKET_BITS: part of the stored layout, never change it. */
static unsigned key_bucket(const char *key, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return (unsigned)(h & ((1u << BUCKET_BITS) - 1));
}

/* Room a bucket key of a family of flen bytes takes. */
static size_t bucket_key_len(const redis_state *r, size_t flen) {
    return r->prefix_len + BUCKET_NS_LEN + flen + BUCKET_HEX;
}

/* Write prefix "h:" family hex(bucket) at *pos in the arena (room reserved), returning its start. */
static const char *arena_bucket_key(redis_state *r, size_t *pos, const char *key, size_t key_len, size_t flen) {
    static const char hex[] = "0123456789abcdef";
    char *p = r->arena + *pos;
    unsigned b = key_bucket(key, key_len);
    memcpy(p, r->prefix, r->prefix_len);
    memcpy(p + r->prefix_len, BUCKET_NS, BUCKET_NS_LEN);
    memcpy(p + r->prefix_len + BUCKET_NS_LEN, key, flen);
    char *h = p + r->prefix_len + BUCKET_NS_LEN + flen;
    for (int i = BUCKET_HEX - 1; i >= 0; i--, b >>= 4)
        h[i] = hex[b & 15];
    *pos += bucket_key_len(r, flen);
    return p;
}

/* ---------------------------------------------------------------- digest packing
 *
 * Fields and values of bucketed keys are stored packed: a maximal run of exactly 43
 * base64url characters whose last one carries no stray bits (a 256-bit digest, as
 * the identity module's attribute ids hold) becomes PACK_RUN and its 32 bytes, and a
 * literal PACK_RUN or PACK_ESC byte becomes PACK_ESC and that byte; all else is
 * copied. Unpacking inverts it for any input, so packing is injective and equal
 * texts stay equal (CHECK_EQ compares packed forms). 43 → 33 bytes per digest. */

#define PACK_RUN 0xFE
#define PACK_ESC 0xFF
#define DIGEST_CHARS 43
#define DIGEST_BYTES 32

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Room packing or unpacking n bytes may need. */
static size_t pack_room(size_t n) {
    return 2 * n + DIGEST_CHARS;
}

/* Pack in[0..n) into out (pack_room(n) bytes); returns the packed length. */
static size_t digest_pack(const char *in, size_t n, char *out) {
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < n) {
        if (b64url_value(s[i]) >= 0) {
            size_t j = i;
            while (j < n && b64url_value(s[j]) >= 0)
                j++;
            if (j - i == DIGEST_CHARS && (b64url_value(s[j - 1]) & 3) == 0) {
                uint32_t acc = 0;
                int bits = 0;
                out[o++] = (char)PACK_RUN;
                for (size_t k = i; k < j; k++) {
                    acc = (acc << 6) | (uint32_t)b64url_value(s[k]);
                    bits += 6;
                    if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char)((acc >> bits) & 0xff);
                    }
                }
            } else {
                memcpy(out + o, s + i, j - i);
                o += j - i;
            }
            i = j;
        } else {
            if (s[i] == PACK_RUN || s[i] == PACK_ESC)
                out[o++] = (char)PACK_ESC;
            out[o++] = (char)s[i++];
        }
    }
    return o;
}

/* Unpack in[0..n) into out (pack_room(n) bytes); returns the length. */
static size_t digest_unpack(const char *in, size_t n, char *out) {
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] == PACK_ESC && i + 1 < n) {
            out[o++] = (char)s[i + 1];
            i += 2;
        } else if (s[i] == PACK_RUN && n - i > DIGEST_BYTES) {
            uint32_t acc = 0;
            int bits = 0;
            for (size_t k = i + 1; k <= i + DIGEST_BYTES; k++) {
                acc = (acc << 8) | s[k];
                bits += 8;
                while (bits >= 6) {
                    bits -= 6;
                    out[o++] = b64url[(acc >> bits) & 63];
                }
            }
            out[o++] = b64url[(acc << (6 - bits)) & 63]; /* the last 4 bits, 2 zero bits below */
            i += 1 + DIGEST_BYTES;
        } else {
            out[o++] = (char)s[i++]; /* only in text dashi did not pack */
        }
    }
    return o;
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
        err = rs_load_script(r, chain_script, r->chain_sha, errstr, errstr_size);
    if (!err)
        err = rs_load_script(r, due_script, r->due_sha, errstr, errstr_size);
    if (!err)
        err = rs_load_script(r, get_script, r->get_sha, errstr, errstr_size);
    return err;
}

/* The server's hash-max-listpack-value as a number, 0 when unknown (CONFIG refused). */
static dashi_err rs_config_lp_value(redis_state *r, size_t *out, char *errstr, size_t errstr_size) {
    const char *argv[] = {"CONFIG", "GET", "hash-max-listpack-value"};
    size_t lens[] = {6, 3, 23};
    redisReply *rep = NULL;
    dashi_err err = rs_call(r, 3, argv, lens, &rep, "CONFIG GET", errstr, errstr_size);
    *out = 0;
    if (!err && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING) {
        char num[24];
        size_t n = rep->element[1]->len < sizeof num - 1 ? rep->element[1]->len : sizeof num - 1;
        memcpy(num, rep->element[1]->str, n);
        num[n] = '\0';
        *out = (size_t)strtoull(num, NULL, 10);
    }
    freeReplyObject(rep);
    return err;
}

/* Bucketed keys need fields and values of up to hash-max-listpack-value bytes for a
 * bucket to stay a listpack. Raise it to LISTPACK_WANT when the server has less and
 * lets us (an ACL user without +config cannot: then the server's value is used, or
 * Redis's default when it cannot even be read). Never lowered; correctness never
 * depends on it, only memory: a larger value makes its bucket a hashtable. */
static dashi_err rs_listpack_limit(redis_state *r, char *errstr, size_t errstr_size) {
    size_t have = 0;
    dashi_err err = rs_config_lp_value(r, &have, errstr, errstr_size);
    if (!err && have && have < LISTPACK_WANT) {
        char want[16];
        int wl = snprintf(want, sizeof want, "%d", LISTPACK_WANT);
        const char *argv[] = {"CONFIG", "SET", "hash-max-listpack-value", want};
        size_t lens[] = {6, 3, 23, (size_t)wl};
        redisReply *rep = NULL;
        if ((err = rs_call(r, 4, argv, lens, &rep, "CONFIG SET", errstr, errstr_size)) == DASHI_OK &&
            rep->type != REDIS_REPLY_ERROR)
            err = rs_config_lp_value(r, &have, errstr, errstr_size);
        freeReplyObject(rep);
    }
    r->lp_value = have ? (have < LISTPACK_WANT ? have : LISTPACK_WANT) : LISTPACK_DEFAULT;
    return err;
}

/* (Re)connect: connect, AUTH, SELECT, SCRIPT LOAD, the listpack limit. On failure r->ctx stays NULL. */
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
    if ((err = rs_load_scripts(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    err = rs_listpack_limit(r, errstr, errstr_size);
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

static int is_noscript(const redisReply *rep) {
    return rep->type == REDIS_REPLY_ERROR && rep->len >= 8 && memcmp(rep->str, "NOSCRIPT", 8) == 0;
}

static dashi_err redis_mget(dashi_state *st, size_t n, const dashi_bytes *keys, dashi_bytes *vals,
                            char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    pipe_guard guard;
    size_t bytes = 0, pos = 0, bucketed = 0;

    pipe_guard_take(&guard);
    for (size_t i = 0; i < n; i++) {
        vals[i] = (dashi_bytes){NULL, 0};
        bytes += r->prefix_len + DATA_NS_LEN + keys[i].len;
        size_t flen = key_family(keys[i].data, keys[i].len);
        if (flen) {
            bucketed++;
            bytes += bucket_key_len(r, flen) + pack_room(keys[i].len - flen);
        }
    }
    if (n == 0)
        goto out;
    /* argv: EVALSHA sha numkeys, keys (2 per bucketed), modes, fields; or MGET keys */
    size_t argc = bucketed ? 3 + n + bucketed + 1 + bucketed : n + 1;
    if (argc > INT_MAX || reserve_argv(r, argc) != 0 || reserve_arena(r, bytes + n + 24) != 0) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in mget", r->where);
        goto out;
    }
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (!bucketed) {
        r->argv[0] = "MGET";
        r->argvlen[0] = 4;
        for (size_t i = 0; i < n; i++) {
            r->argv[i + 1] = arena_data_key(r, &pos, keys[i].data, keys[i].len);
            r->argvlen[i + 1] = r->prefix_len + DATA_NS_LEN + keys[i].len;
        }
        err = rs_call_ok(r, (int)n + 1, r->argv, r->argvlen, &rep, "MGET", errstr, errstr_size);
    } else {
        char *modes = r->arena + pos;
        pos += n;
        char *numkeys = r->arena + pos;
        int numkeys_len = snprintf(numkeys, 24, "%zu", n + bucketed);
        pos += (size_t)numkeys_len + 1;
        size_t key_at = 3, arg_at = 3 + n + bucketed + 1;
        r->argv[0] = "EVALSHA";
        r->argvlen[0] = 7;
        r->argv[2] = numkeys;
        r->argvlen[2] = (size_t)numkeys_len;
        r->argv[key_at + n + bucketed] = modes;
        r->argvlen[key_at + n + bucketed] = n;
        for (size_t i = 0; i < n; i++) {
            size_t flen = key_family(keys[i].data, keys[i].len);
            modes[i] = flen ? 'b' : 'k';
            if (flen) {
                r->argvlen[key_at] = bucket_key_len(r, flen);
                r->argv[key_at++] = arena_bucket_key(r, &pos, keys[i].data, keys[i].len, flen);
                r->argv[arg_at] = r->arena + pos;
                r->argvlen[arg_at++] = digest_pack(keys[i].data + flen, keys[i].len - flen, r->arena + pos);
                pos += r->argvlen[arg_at - 1];
            }
            r->argvlen[key_at] = r->prefix_len + DATA_NS_LEN + keys[i].len;
            r->argv[key_at++] = arena_data_key(r, &pos, keys[i].data, keys[i].len);
        }
        for (int round = 0; round < 2; round++) {
            r->argv[1] = r->get_sha; /* (re)loading the scripts keeps the arena and argv */
            r->argvlen[1] = 40;
            if ((err = rs_call(r, (int)argc, r->argv, r->argvlen, &rep, "mget", errstr, errstr_size)) != DASHI_OK)
                goto out;
            if (!is_noscript(rep) || round == 1)
                break;
            freeReplyObject(rep);
            rep = NULL;
            if ((err = rs_load_scripts(r, errstr, errstr_size)) != DASHI_OK)
                goto out;
        }
        if (rep->type == REDIS_REPLY_ERROR)
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: mget failed: %.*s", r->where,
                             (int)rep->len, rep->str);
    }
    if (err)
        goto out;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: MGET gave an unexpected reply", r->where);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        int packed = key_family(keys[i].data, keys[i].len) != 0;
        char *copy = malloc((packed ? pack_room(e->len) : e->len) + 1);
        if (!copy) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in mget", r->where);
            goto out;
        }
        size_t len = e->len;
        if (packed)
            len = digest_unpack(e->str, e->len, copy);
        else
            memcpy(copy, e->str, e->len);
        copy[len] = '\0';
        vals[i] = (dashi_bytes){copy, len};
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

/* Build in r->argv the EVALSHA of script sha over sets[0..n): the apply script
 * for one set, or the chain script (chain: each set's kinds followed by '|').
 * *argc_out is set. 0, or -1 out of memory. */
static int build_sets(redis_state *r, const char *sha, size_t n, const dashi_writeset *const *sets, bool chain,
                      size_t *argc_out) {
    static const char kind_byte[] = {
        [DASHI_WS_PUT] = 'P', [DASHI_WS_DEL] = 'D', [DASHI_WS_CHECK_ABSENT] = 'A',
        [DASHI_WS_CHECK_EQ] = 'E', [DASHI_WS_TIMER_ADD] = 'T', [DASHI_WS_TIMER_DEL] = 'X',
        [DASHI_WS_TIMER_CHECK] = 'C',
    };
    static const char bucket_kind_byte[] = {
        [DASHI_WS_PUT] = 'p', [DASHI_WS_DEL] = 'd', [DASHI_WS_CHECK_ABSENT] = 'a', [DASHI_WS_CHECK_EQ] = 'e',
    };
    size_t nkeys = 0, nargs = 0, nkinds = 0, bytes = 24; /* numkeys */
    for (size_t s = 0; s < n; s++) {
        const dashi_writeset *ws = sets[s];
        nkinds += ws->n + (chain ? 1 : 0);
        for (size_t i = 0; i < ws->n; i++) {
            const dashi_ws_op *op = &ws->ops[i];
            size_t flen = 0;
            switch (op->kind) {
            case DASHI_WS_PUT: case DASHI_WS_CHECK_EQ: case DASHI_WS_DEL: case DASHI_WS_CHECK_ABSENT:
                nkeys++;
                nargs += op->kind == DASHI_WS_PUT || op->kind == DASHI_WS_CHECK_EQ;
                bytes += r->prefix_len + DATA_NS_LEN + op->key_len;
                if ((flen = key_family(op->key, op->key_len)) != 0) {
                    nkeys++; nargs++; /* the bucket, the field; field and value packed */
                    bytes += bucket_key_len(r, flen) + pack_room(op->key_len - flen) + pack_room(op->val_len);
                }
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
    }
    bytes += nkinds;
    size_t argc = 3 + 2 + nkeys + 1 + nargs;
    if (argc > INT_MAX || reserve_argv(r, argc) != 0 || reserve_arena(r, bytes) != 0)
        return -1;

    size_t pos = 0, key_at = 5, arg_at = 5 + nkeys + 1, kind_at = 0;
    char *kinds = r->arena;
    pos += nkinds;
    char *numkeys = r->arena + pos;
    int numkeys_len = snprintf(numkeys, 24, "%zu", 2 + nkeys);
    pos += (size_t)numkeys_len + 1;
    r->argv[0] = "EVALSHA";           r->argvlen[0] = 7;
    r->argv[1] = sha;                 r->argvlen[1] = 40;
    r->argv[2] = numkeys;             r->argvlen[2] = (size_t)numkeys_len;
    r->argv[3] = r->key_timers;       r->argvlen[3] = r->key_timers_len;
    r->argv[4] = r->key_timerp;       r->argvlen[4] = r->key_timerp_len;
    r->argv[5 + nkeys] = kinds;       r->argvlen[5 + nkeys] = nkinds;
    for (size_t s = 0; s < n; s++) {
        const dashi_writeset *ws = sets[s];
        for (size_t i = 0; i < ws->n; i++) {
            const dashi_ws_op *op = &ws->ops[i];
            char *kind = &kinds[kind_at++];
            *kind = kind_byte[op->kind];
            switch (op->kind) {
            case DASHI_WS_PUT: case DASHI_WS_CHECK_EQ: case DASHI_WS_DEL: case DASHI_WS_CHECK_ABSENT: {
                size_t flen = key_family(op->key, op->key_len), field_len = 0;
                if (flen) {
                    *kind = bucket_kind_byte[op->kind];
                    r->argvlen[key_at] = bucket_key_len(r, flen);
                    r->argv[key_at++] = arena_bucket_key(r, &pos, op->key, op->key_len, flen);
                    r->argv[arg_at] = r->arena + pos;
                    field_len = r->argvlen[arg_at++] = digest_pack(op->key + flen, op->key_len - flen, r->arena + pos);
                    pos += field_len;
                }
                r->argvlen[key_at] = r->prefix_len + DATA_NS_LEN + op->key_len;
                r->argv[key_at++] = arena_data_key(r, &pos, op->key, op->key_len);
                if (op->kind == DASHI_WS_PUT || op->kind == DASHI_WS_CHECK_EQ) {
                    r->argv[arg_at] = op->val ? op->val : "";
                    r->argvlen[arg_at] = op->val_len;
                    if (flen) {
                        r->argv[arg_at] = r->arena + pos;
                        r->argvlen[arg_at] = op->val_len ? digest_pack(op->val, op->val_len, r->arena + pos) : 0;
                        pos += r->argvlen[arg_at];
                        if (op->kind == DASHI_WS_PUT && (r->argvlen[arg_at] > r->lp_value || field_len > r->lp_value))
                            *kind = 'q'; /* too large for a listpack: a plain key of its own */
                    }
                    arg_at++;
                }
                break;
            }
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
        if (chain)
            kinds[kind_at++] = '|';
    }
    *argc_out = argc;
    return 0;
}

/* Append EVALSHA for ws to the pipeline. 0, or -1 out of memory. */
static int append_set(redis_state *r, const dashi_writeset *ws) {
    size_t argc = 0;
    if (build_sets(r, r->apply_sha, 1, &ws, false, &argc) != 0)
        return -1;
    return redisAppendCommandArgv(r->ctx, (int)argc, r->argv, r->argvlen) == REDIS_OK ? 0 : -1;
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

/* The chain script over sets[0..n) (all non-empty), reloading once on NOSCRIPT:
 * *applied = how many it applied; *status DASHI_OK (all), DASHI_ERR_CONFLICT (set
 * *applied failed a check) or DASHI_ERR_BACKEND (refused, errstr says why). The
 * return value is non-OK only when the call itself failed (nothing known applied). */
static dashi_err rs_chain_call(redis_state *r, size_t n, const dashi_writeset *const *sets, size_t *applied,
                               dashi_err *status, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    redisReply *rep = NULL;
    size_t argc = 0;
    *applied = 0;
    *status = DASHI_ERR_BACKEND;
    if (build_sets(r, r->chain_sha, n, sets, true, &argc) != 0) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory building a chain", r->where);
        goto out;
    }
    for (int round = 0; round < 2; round++) {
        r->argv[1] = r->chain_sha; /* (re)loading the scripts keeps the arena and argv */
        if ((err = rs_call(r, (int)argc, r->argv, r->argvlen, &rep, "apply_chain", errstr, errstr_size)) != DASHI_OK)
            goto out;
        if (!is_noscript(rep) || round == 1)
            break;
        freeReplyObject(rep);
        rep = NULL;
        if ((err = rs_load_scripts(r, errstr, errstr_size)) != DASHI_OK)
            goto out;
    }
    if (rep->type == REDIS_REPLY_ERROR) { /* refused before any write */
        dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: write set chain failed: %.*s", r->where,
                   (int)rep->len, rep->str);
        goto out;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[0]->integer < 0 || (unsigned long long)rep->element[0]->integer > n) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: chain script gave an unexpected reply",
                         r->where);
        goto out;
    }
    *applied = (size_t)rep->element[0]->integer;
    const redisReply *st = rep->element[1];
    if (st->type == REDIS_REPLY_INTEGER && st->integer == 1 && *applied == n)
        *status = DASHI_OK;
    else if (st->type == REDIS_REPLY_INTEGER && st->integer == 0 && *applied < n)
        *status = DASHI_ERR_CONFLICT;
    else
        dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: write set %zu of a chain failed: %.*s",
                   r->where, *applied, st->type == REDIS_REPLY_STRING ? (int)st->len : 0,
                   st->type == REDIS_REPLY_STRING ? st->str : "");
out:
    freeReplyObject(rep);
    return err;
}

static dashi_err redis_apply_chain(dashi_state *st, size_t n, const dashi_writeset *const *sets, dashi_err *results,
                                   size_t *n_applied, char *errstr, size_t errstr_size) {
    redis_state *r = (redis_state *)st;
    dashi_err err = DASHI_OK;
    const dashi_writeset **part = NULL; /* owned array; borrows the sets of one call */
    size_t *at = NULL;                  /* owned: their indices in sets[] */
    size_t done = 0;                    /* sets[0..done) are applied */
    pipe_guard guard;

    pipe_guard_take(&guard);
    *n_applied = 0;
    for (size_t i = 0; i < n; i++) {
        results[i] = DASHI_ERR_CONFLICT; /* not applied, until known otherwise */
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
    if (n && (!(part = malloc(n * sizeof *part)) || !(at = malloc(n * sizeof *at)))) {
        for (size_t i = 0; i < n; i++)
            results[i] = DASHI_ERR_NOMEM;
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in apply_chain", r->where);
        goto out;
    }
    while (done < n) {
        size_t k = 0, ops = 0, end = done, applied = 0;
        dashi_err status = DASHI_OK;
        while (end < n && (k == 0 || ops + (sets[end] ? sets[end]->n : 0) <= CHAIN_MAX_OPS)) {
            if (sets[end] && sets[end]->n) {
                part[k] = sets[end];
                at[k++] = end;
                ops += sets[end]->n;
            }
            end++;
        }
        if (k && (err = rs_ready(r, errstr, errstr_size)) == DASHI_OK)
            err = rs_chain_call(r, k, part, &applied, &status, errstr, errstr_size);
        if (err) {
            for (size_t i = done; i < n; i++)
                results[i] = err == DASHI_ERR_NOMEM ? DASHI_ERR_NOMEM : err == DASHI_ERR_TRANSPORT ? DASHI_ERR_TRANSPORT
                                                                                                : DASHI_ERR_BACKEND;
            goto out;
        }
        size_t stop = applied < k ? at[applied] : end; /* sets before it are applied (empty ones too) */
        for (; done < stop; done++)
            results[done] = DASHI_OK;
        if (applied < k) {
            results[done] = status;
            if (status != DASHI_ERR_CONFLICT)
                err = status;
            goto out;
        }
    }
out:
    *n_applied = done;
    free(part);
    free(at);
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

/* What a scan collects: logical keys, with their value when it came from a bucket
 * (HGETALL), or to be read (MGET) when it is a plain key. */
typedef struct scan_item {
    dashi_bytes key;   /* owned */
    char *val;         /* owned; NULL: a plain key, not read yet */
    size_t val_len;
} scan_item;

typedef struct key_list {
    scan_item *items;  /* owned */
    size_t n, cap;
    const char *prefix; /* borrowed: the logical prefix asked for */
    size_t prefix_len;
} key_list;

/* Append a copy of a + b (the logical key) and, when val is given, of val. -1 out of memory. */
static int kl_push(key_list *kl, const char *a, size_t a_len, const char *b, size_t b_len, const char *val,
                   size_t val_len) {
    if (kl->n == kl->cap) {
        size_t cap = kl->cap ? kl->cap * 2 : 256;
        scan_item *grown = realloc(kl->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        kl->items = grown;
        kl->cap = cap;
    }
    char *key = malloc(a_len + b_len + 1), *v = val ? malloc(val_len + 1) : NULL;
    if (!key || (val && !v)) {
        free(key);
        free(v);
        return -1;
    }
    if (a_len)
        memcpy(key, a, a_len);
    if (b_len)
        memcpy(key + a_len, b, b_len);
    key[a_len + b_len] = '\0';
    if (v) {
        if (val_len)
            memcpy(v, val, val_len);
        v[val_len] = '\0';
    }
    kl->items[kl->n++] = (scan_item){{key, a_len + b_len}, v, val_len};
    return 0;
}

/* A page of plain keys (prefix "k:" key). */
static dashi_err collect_page(redis_state *r, void *opaque, const redisReply *keys, char *errstr,
                              size_t errstr_size) {
    key_list *kl = opaque;
    size_t strip = r->prefix_len + DATA_NS_LEN;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len < strip)
            continue;
        if (kl_push(kl, k->str + strip, k->len - strip, NULL, 0, NULL, 0) != 0)
            return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in scan", r->where);
    }
    return DASHI_OK;
}

/* A page of bucket keys: HGETALL each (one pipeline), keep the fields whose logical
 * key (family + field) starts with the prefix asked for. */
static dashi_err bucket_page(redis_state *r, void *opaque, const redisReply *keys, char *errstr,
                             size_t errstr_size) {
    key_list *kl = opaque;
    dashi_err err = DASHI_OK;
    size_t strip = r->prefix_len + BUCKET_NS_LEN, sent = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        const char *argv[] = {"HGETALL", k->str ? k->str : ""};
        size_t lens[] = {7, k->len};
        if (redisAppendCommandArgv(r->ctx, 2, argv, lens) != REDIS_OK) {
            rs_drop(r); /* nothing read yet: drop the half-built pipeline */
            return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in scan", r->where);
        }
        sent++;
    }
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        redisReply *rep = NULL;
        if (redisGetReply(r->ctx, (void **)&rep) != REDIS_OK || !rep)
            return rs_lost(r, "scan (HGETALL)", errstr, errstr_size);
        sent--;
        if (rep->type == REDIS_REPLY_ERROR && !err)
            err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: HGETALL (scan) failed: %.*s",
                             r->where, (int)rep->len, rep->str);
        if (!err && rep->type == REDIS_REPLY_ARRAY && k->type == REDIS_REPLY_STRING &&
            k->len >= strip + BUCKET_HEX) {
            const char *family = k->str + strip;
            size_t flen = k->len - strip - BUCKET_HEX;
            for (size_t j = 0; j + 1 < rep->elements; j += 2) {
                const redisReply *f = rep->element[j], *v = rep->element[j + 1];
                if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                    continue;
                if (reserve_arena(r, pack_room(f->len) + pack_room(v->len)) != 0) {
                    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in scan", r->where);
                    break;
                }
                char *field = r->arena, *val = r->arena + pack_room(f->len);
                size_t field_len = digest_unpack(f->str, f->len, field), val_len = digest_unpack(v->str, v->len, val);
                /* logical key = family + field: does it start with the prefix? */
                size_t pl = kl->prefix_len, in_f = pl < flen ? pl : flen;
                if (memcmp(kl->prefix, family, in_f) != 0 ||
                    (pl > flen && (field_len < pl - flen || memcmp(kl->prefix + flen, field, pl - flen) != 0)))
                    continue;
                if (kl_push(kl, family, flen, field, field_len, val, val_len) != 0) {
                    err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "redis %s: out of memory in scan", r->where);
                    break;
                }
            }
        }
        freeReplyObject(rep);
    }
    (void)sent;
    return err;
}

static int item_cmp(const void *a, const void *b) {
    const dashi_bytes *x = &((const scan_item *)a)->key, *y = &((const scan_item *)b)->key;
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
    key_list kl = {.prefix = prefix ? prefix : "", .prefix_len = prefix ? prefix_len : 0};
    char *ns = NULL, *pattern = NULL, *unpacked = NULL; /* owned */
    size_t pattern_len = 0, m = 0, ns_len = r->prefix_len + DATA_NS_LEN;
    pipe_guard guard;

    pipe_guard_take(&guard);
    if ((err = rs_ready(r, errstr, errstr_size)) != DASHI_OK)
        goto out;
    /* plain keys: SCAN prefix "k:" prefix* */
    if (!(ns = malloc(r->prefix_len + FAMILY_MAX + BUCKET_NS_LEN + DATA_NS_LEN + 1)))
        goto nomem;
    memcpy(ns, r->prefix, r->prefix_len);
    memcpy(ns + r->prefix_len, DATA_NS, DATA_NS_LEN);
    if (!(pattern = glob_prefix(ns, ns_len, kl.prefix, kl.prefix_len, &pattern_len)))
        goto nomem;
    if ((err = rs_scan_all(r, pattern, pattern_len, collect_page, &kl, errstr, errstr_size)) != DASHI_OK)
        goto out;
    /* buckets: of the prefix's family when it names one; of every family when the
     * prefix is shorter than a family can be; none when its keys are all plain */
    size_t flen = key_family(kl.prefix, kl.prefix_len);
    int colon = kl.prefix_len && memchr(kl.prefix, ':', kl.prefix_len < FAMILY_MAX ? kl.prefix_len : FAMILY_MAX);
    if (flen || (!colon && kl.prefix_len < FAMILY_MAX)) {
        memcpy(ns + r->prefix_len, BUCKET_NS, BUCKET_NS_LEN);
        if (flen)
            memcpy(ns + r->prefix_len + BUCKET_NS_LEN, kl.prefix, flen);
        free(pattern);
        if (!(pattern = glob_prefix(ns, r->prefix_len + BUCKET_NS_LEN + flen, "", 0, &pattern_len)))
            goto nomem;
        if ((err = rs_scan_all(r, pattern, pattern_len, bucket_page, &kl, errstr, errstr_size)) != DASHI_OK)
            goto out;
    }
    if (kl.n > 1)
        qsort(kl.items, kl.n, sizeof *kl.items, item_cmp);
    /* SCAN may return a key twice, and a key moving between its bucket and a plain
     * key meanwhile may be seen in both: keep one, the one with a value. */
    for (size_t i = 0; i < kl.n; i++) {
        if (m && item_cmp(&kl.items[m - 1], &kl.items[i]) == 0) {
            scan_item *keep = &kl.items[m - 1], *drop = &kl.items[i];
            if (!keep->val && drop->val) {
                scan_item t = *keep;
                *keep = *drop;
                *drop = t;
            }
            free(drop->key.data);
            free(drop->val);
        } else {
            kl.items[m++] = kl.items[i];
        }
    }
    kl.n = m;
    if (reserve_argv(r, MGET_CHUNK + 1) != 0)
        goto nomem;
    for (size_t base = 0; base < kl.n; base += MGET_CHUNK) {
        size_t cnt = kl.n - base < MGET_CHUNK ? kl.n - base : MGET_CHUNK, bytes = 0, pos = 0, nread = 0;
        for (size_t i = 0; i < cnt; i++)
            if (!kl.items[base + i].val)
                bytes += ns_len + kl.items[base + i].key.len;
        if (reserve_arena(r, bytes) != 0)
            goto nomem;
        r->argv[0] = "MGET";
        r->argvlen[0] = 4;
        for (size_t i = 0; i < cnt; i++) {
            const scan_item *it = &kl.items[base + i];
            if (it->val)
                continue;
            nread++;
            r->argv[nread] = arena_data_key(r, &pos, it->key.data, it->key.len);
            r->argvlen[nread] = ns_len + it->key.len;
        }
        if (nread) {
            if ((err = rs_call_ok(r, (int)nread + 1, r->argv, r->argvlen, &rep, "MGET (scan)", errstr, errstr_size)))
                goto out;
            if (rep->type != REDIS_REPLY_ARRAY || rep->elements != nread) {
                err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "redis %s: MGET gave an unexpected reply",
                                 r->where);
                goto out;
            }
        }
        for (size_t i = 0, j = 0; i < cnt; i++) {
            const scan_item *it = &kl.items[base + i];
            const char *val = it->val;
            size_t val_len = it->val_len;
            if (!val) {
                const redisReply *v = rep->element[j++];
                if (v->type != REDIS_REPLY_STRING) /* deleted since SCAN saw it */
                    continue;
                val = v->str;
                val_len = v->len;
                if (key_family(it->key.data, it->key.len)) { /* a large value of a bucketed key: packed */
                    free(unpacked);
                    if (!(unpacked = malloc(pack_room(v->len) + 1)))
                        goto nomem;
                    val_len = digest_unpack(v->str, v->len, unpacked);
                    unpacked[val_len] = '\0';
                    val = unpacked;
                }
            }
            if (fn(opaque, it->key.data, it->key.len, val, val_len))
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
    for (size_t i = 0; i < kl.n; i++) {
        free(kl.items[i].key.data);
        free(kl.items[i].val);
    }
    free(kl.items);
    free(ns);
    free(pattern);
    free(unpacked);
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
    free(pattern);
    if (!(pattern = glob_prefix(r->prefix, r->prefix_len, BUCKET_NS, BUCKET_NS_LEN, &pattern_len))) {
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
    .apply_chain = redis_apply_chain,
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
