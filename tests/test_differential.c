/* test_differential.c — memory and Redis state give the same outputs and the same final state (issue 4).
 *
 * The main test generates a seeded stream of more than 100,000 events with `dashi
 * gen` and replays it twice in this process through app/replay.h: once on
 * dashi_state_mem_new(), once on a private redis-server (tests/support/
 * redis_server.c). Each run writes its outputs as NDJSON to a file; the two files
 * must be byte-identical. Then both stores are read whole with the state API's
 * scan over every key (prefix "") and compared key by key and byte for byte, and
 * their timer queues (id, due, payload) likewise. A differential test is only as
 * good as what the stream exercises, so it also asserts the outputs are not
 * trivial: every output type occurs, and so do PENDING, CONFIRMED, REJECTED and
 * CANCELLED commission events.
 *
 * Batches (dashi_engine_process_batch, which replay uses) against one event at a
 * time: a smaller stream with redeliveries and reused ids added, replayed one at a
 * time on memory and in batches of several sizes on memory and Redis (and one at
 * a time on Redis): the same outputs, counts and final state.
 *
 * The smaller tests pin the two hand-written JSON writers against jansson, which
 * they replace on the hot path (see core/view.c and core/event.c): records written
 * by the view must be what json_dumps(JSON_COMPACT | JSON_SORT_KEYS) writes, output
 * text what json_dumps of dashi_event_to_json() writes, for every event of a
 * generated stream and for crafted hard cases. And the view's record cache must
 * never answer differently from the store: after a write behind its back, after a
 * dropped step, and when a handler shares a subtree between two records.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/replay.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"
#include "core/view.h"
#include "tests/support/live.h"
#include "tests/support/proc.h"

#define UNTIL DASHI_TEST_LIVE_UNTIL
#define MIN_EVENTS 100000
#define TIMERS_ALL ((dashi_time)1 << 52) /* later than any timer of the stream */

static void setup(void) {
    dashi_test_live_setup(0, NULL);
}

static void teardown(void) {
    dashi_test_live_teardown();
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `dashi gen` into dir/name; returns the events read back, sorted for replay. */
static void gen(const char *name, const char *seed, const char *ambassadors, const char *customers,
                dashi_event_list *l) {
    dashi_replay_stats stats = {0};
    char err[512] = "";
    FILE *f;

    dashi_test_live_gen(name, seed, ambassadors, customers);
    cr_assert(f = fopen(dashi_test_live_path(name), "r"), "cannot open %s", dashi_test_live_path(name));
    cr_assert_eq(dashi_replay_read(f, name, l, &stats, NULL, NULL, err, sizeof(err)), DASHI_OK, "%s", err);
    fclose(f);
    cr_assert_eq(stats.rejected, 0, "the generator wrote %zu lines replay refuses", stats.rejected);
    dashi_replay_sort(l);
}

/* ---------------------------------------------------------------- one replay */

typedef struct run_out {
    FILE *f;
    size_t n, by_type[DASHI_EV__COUNT], by_commission[DASHI_CE_REJECTED + 1];
} run_out;

static int emit_line(void *opaque, const dashi_event *ev) {
    run_out *o = opaque;
    char *s = dashi_event_dump(ev);
    if (!s)
        return 1;
    fputs(s, o->f);
    fputc('\n', o->f);
    free(s);
    o->n++;
    o->by_type[ev->type]++;
    if (ev->type == DASHI_EV_COMMISSION_EVENT && ev->u.commission_event.event >= 0 &&
        ev->u.commission_event.event <= DASHI_CE_REJECTED)
        o->by_commission[ev->u.commission_event.event]++;
    return 0;
}

/* Replay l on st (cleared first) with outputs to dir/out_name; the run's figures in *o. */
static void replay(dashi_state *st, const dashi_event_list *l, const char *out_name, run_out *o) {
    char err[1024] = "";
    dashi_rules *rules = dashi_rules_load(dashi_default_rules_path(), err, sizeof(err));
    dashi_keyring *keys = dashi_keyring_load("dev", err, sizeof(err));
    dashi_engine *eng = NULL;
    dashi_replay_stats stats = {0};
    dashi_time until;
    double t0 = now_s();

    cr_assert(rules && keys, "rules or key ring: %s", err);
    cr_assert_eq(dashi_time_parse(UNTIL, &until, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(st->ops->clear(st, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert(eng = dashi_engine_new(rules, keys, st, err, sizeof(err)), "%s", err);
    memset(o, 0, sizeof(*o));
    cr_assert(o->f = fopen(dashi_test_live_path(out_name), "w"), "cannot create %s", dashi_test_live_path(out_name));
    cr_assert_eq(dashi_replay_run(eng, l, "events", until, emit_line, o, NULL, NULL, &stats, err, sizeof(err)),
                 DASHI_OK, "%s replay: %s", st->ops->name, err);
    cr_assert_eq(fclose(o->f), 0);
    o->f = NULL;
    cr_assert_eq(stats.events, l->n, "%s: %zu of %zu events applied (%zu rejected, %zu duplicates)", st->ops->name,
                 stats.events, l->n, stats.rejected, stats.duplicates);
    fprintf(stderr, "differential: %s replay of %zu events: %zu outputs in %.1f s\n", st->ops->name, l->n, o->n,
            now_s() - t0);
    dashi_engine_destroy(eng);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
}

/* ---------------------------------------------------------------- state snapshots */

typedef struct kv {
    char *key, *val; /* owned */
    size_t key_len, val_len;
} kv;

typedef struct snapshot {
    kv *rows; /* owned, in scan (ascending key) order */
    size_t n, cap;
    dashi_timer *timers; /* owned */
    size_t n_timers;
} snapshot;

static char *copy(const char *p, size_t n) {
    char *c = malloc(n + 1);
    cr_assert(c, "out of memory");
    memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

static int collect(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    snapshot *s = opaque;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        cr_assert(s->rows = realloc(s->rows, s->cap * sizeof(*s->rows)), "out of memory");
    }
    s->rows[s->n++] = (kv){copy(key, key_len), copy(val, val_len), key_len, val_len};
    return 0;
}

/* Every key (prefix "") and every timer of st. */
static void snapshot_take(dashi_state *st, snapshot *s) {
    char err[512] = "";
    size_t n = 0;
    memset(s, 0, sizeof(*s));
    cr_assert_eq(st->ops->scan(st, "", 0, collect, s, err, sizeof(err)), DASHI_OK, "%s scan: %s", st->ops->name, err);
    cr_assert_eq(st->ops->timers_count(st, &n, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(st->ops->timers_due(st, TIMERS_ALL, n + 1, &s->timers, &s->n_timers, err, sizeof(err)), DASHI_OK,
                 "%s timers: %s", st->ops->name, err);
    cr_assert_eq(s->n_timers, n, "%s: %zu timers counted, %zu listed", st->ops->name, n, s->n_timers);
}

static void snapshot_free(snapshot *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].key);
        free(s->rows[i].val);
    }
    free(s->rows);
    dashi_timers_free(s->timers, s->n_timers);
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* The first difference, as a message naming the key; "" when a and b are equal. */
static void snapshot_diff(const snapshot *a, const snapshot *b, char *msg, size_t size) {
    size_t i = 0, j = 0;
    msg[0] = '\0';
    while (i < a->n && j < b->n) {
        const kv *x = &a->rows[i], *y = &b->rows[j];
        int c = bytes_cmp(x->key, x->key_len, y->key, y->key_len);
        if (c < 0) {
            snprintf(msg, size, "key %.200s only in memory", x->key);
            return;
        }
        if (c > 0) {
            snprintf(msg, size, "key %.200s only in redis", y->key);
            return;
        }
        if (bytes_cmp(x->val, x->val_len, y->val, y->val_len) != 0) {
            snprintf(msg, size, "key %.200s: memory %.300s, redis %.300s", x->key, x->val, y->val);
            return;
        }
        i++;
        j++;
    }
    if (i < a->n || j < b->n) {
        snprintf(msg, size, "key %.200s only in %s", i < a->n ? a->rows[i].key : b->rows[j].key,
                 i < a->n ? "memory" : "redis");
        return;
    }
    for (size_t k = 0; k < a->n_timers && k < b->n_timers; k++) {
        const dashi_timer *x = &a->timers[k], *y = &b->timers[k];
        if (strcmp(x->id, y->id) != 0 || x->due != y->due ||
            bytes_cmp(x->payload ? x->payload : "", x->payload_len, y->payload ? y->payload : "", y->payload_len)) {
            snprintf(msg, size, "timer %zu: memory %.200s at %lld, redis %.200s at %lld", k, x->id,
                     (long long)x->due, y->id, (long long)y->due);
            return;
        }
    }
    if (a->n_timers != b->n_timers)
        snprintf(msg, size, "%zu timers in memory, %zu in redis", a->n_timers, b->n_timers);
}

/* ---------------------------------------------------------------- the differential test */

Test(differential, memory_and_redis_replays_are_identical, .init = setup, .fini = teardown, .timeout = 900) {
    dashi_event_list l = {0};
    dashi_state *mem = dashi_state_mem_new(), *red = NULL;
    run_out om, orr;
    snapshot sm, sr;
    char err[1024] = "", diff[1024];
    size_t len_m = 0, len_r = 0;
    char *text_m, *text_r;
    double t0 = now_s();

    /* 3,300 ambassadors and 33,000 customers: 100,366 events with seed 1 */
    gen("events.ndjson", "1", "3300", "33000", &l);
    cr_assert_geq(l.n, MIN_EVENTS, "only %zu events", l.n);
    cr_assert(mem, "out of memory");
    cr_assert(red = dashi_state_open(dashi_test_live_redis_url(), "d:", err, sizeof(err)), "redis: %s", err);

    replay(mem, &l, "out-memory.ndjson", &om);
    replay(red, &l, "out-redis.ndjson", &orr);

    /* the outputs: byte-identical files */
    cr_assert(text_m = dashi_test_slurp(dashi_test_live_path("out-memory.ndjson"), &len_m));
    cr_assert(text_r = dashi_test_slurp(dashi_test_live_path("out-redis.ndjson"), &len_r));
    cr_assert_eq(om.n, orr.n, "%zu outputs in memory, %zu on redis", om.n, orr.n);
    if (len_m != len_r || memcmp(text_m, text_r, len_m) != 0) {
        size_t at = 0, line = 1;
        while (at < len_m && at < len_r && text_m[at] == text_r[at])
            line += text_m[at++] == '\n';
        cr_assert_fail("outputs differ at line %zu (byte %zu)", line, at);
    }

    /* not a trivial stream: every output type, and the commission outcomes that matter */
    for (int t = DASHI_EV__FIRST_OUTPUT; t < DASHI_EV__COUNT; t++)
        cr_expect_gt(om.by_type[t], 0, "no %s output", dashi_event_type_name((dashi_event_type)t));
    cr_expect_gt(om.by_commission[DASHI_CE_PENDING], 0, "no PENDING commission");
    cr_expect_gt(om.by_commission[DASHI_CE_CONFIRMED], 0, "no CONFIRMED commission");
    cr_expect_gt(om.by_commission[DASHI_CE_REJECTED], 0, "no REJECTED commission");
    cr_expect_gt(om.by_commission[DASHI_CE_CANCELLED], 0, "no CANCELLED commission");

    /* the final states: every key and every timer */
    snapshot_take(mem, &sm);
    snapshot_take(red, &sr);
    cr_assert_gt(sm.n, l.n, "only %zu keys in the memory store", sm.n);
    cr_assert_gt(sm.n_timers, 0, "no timers left: the stream ends before its timers");
    snapshot_diff(&sm, &sr, diff, sizeof(diff));
    cr_assert_str_empty(diff, "final states differ: %s", diff);
    fprintf(stderr, "differential: %zu events, %zu outputs, %zu keys, %zu timers identical (%.1f s in all)\n", l.n,
            om.n, sm.n, sm.n_timers, now_s() - t0);

    snapshot_free(&sm);
    snapshot_free(&sr);
    free(text_m);
    free(text_r);
    dashi_state_destroy(red);
    dashi_state_destroy(mem);
    dashi_event_list_clear(&l);
}

/* ---------------------------------------------------------------- batches = one at a time */

/* Replay l on st (cleared) with batch events per engine call (1: one at a time);
 * the outputs as one text (malloc'ed) and the final state in *snap. */
static char *replay_batch(dashi_state *st, const dashi_event_list *l, size_t batch, snapshot *snap,
                          dashi_replay_stats *stats) {
    char err[1024] = "", *text = NULL;
    size_t len = 0;
    dashi_rules *rules = dashi_rules_load(dashi_default_rules_path(), err, sizeof(err));
    dashi_keyring *keys = dashi_keyring_load("dev", err, sizeof(err));
    dashi_engine *eng = NULL;
    dashi_time until;
    run_out o;
    double t0 = now_s();

    cr_assert(rules && keys, "rules or key ring: %s", err);
    cr_assert_eq(dashi_time_parse(UNTIL, &until, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(st->ops->clear(st, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert(eng = dashi_engine_new(rules, keys, st, err, sizeof(err)), "%s", err);
    memset(&o, 0, sizeof(o));
    memset(stats, 0, sizeof(*stats));
    cr_assert(o.f = open_memstream(&text, &len));
    cr_assert_eq(dashi_replay_run_batch(eng, l, "events", until, batch, emit_line, &o, NULL, NULL, NULL, NULL, stats,
                                        err, sizeof(err)),
                 DASHI_OK, "%s, batch %zu: %s", st->ops->name, batch, err);
    cr_assert_eq(fclose(o.f), 0);
    snapshot_take(st, snap);
    fprintf(stderr, "differential: %s, batch %zu: %zu events, %zu outputs in %.1f s\n", st->ops->name, batch, l->n,
            o.n, now_s() - t0);
    dashi_engine_destroy(eng);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
    return text;
}

Test(differential, batches_and_one_at_a_time_are_identical, .init = setup, .fini = teardown, .timeout = 600) {
    dashi_event_list l = {0};
    dashi_state *mem = dashi_state_mem_new(), *red = NULL;
    char err[1024] = "", diff[1024];
    snapshot ref_snap;
    dashi_replay_stats ref_stats;

    gen("batch.ndjson", "5", "200", "2000", &l);
    /* redeliveries (inside a batch: the copy sorts right after its original) and ids
     * reused by other content (1 ms later), so batches meet duplicates and refusals */
    size_t n0 = l.n;
    for (size_t i = 0; i < n0; i += 37) {
        dashi_event dup;
        memset(&dup, 0, sizeof(dup));
        cr_assert_eq(dashi_event_copy(&dup, &l.events[i]), DASHI_OK);
        if (i % 74 == 0 && dup.type == DASHI_EV_ORDER_PAID)
            dup.u.order_paid.occurred_at += 1;
        cr_assert_eq(dashi_event_list_push(&l, &dup, l.lines[i]), 0);
    }
    dashi_replay_sort(&l);
    cr_assert(mem, "out of memory");
    cr_assert(red = dashi_state_open(dashi_test_live_redis_url(), "b:", err, sizeof(err)), "redis: %s", err);

    char *ref = replay_batch(mem, &l, 1, &ref_snap, &ref_stats);
    cr_assert_gt(ref_stats.duplicates, 0, "no duplicate: the test shows less");
    cr_assert_gt(ref_stats.rejected, 0, "no refused event: the test shows less");
    struct {
        dashi_state *st;
        size_t batch;
    } runs[] = {{mem, 256}, {mem, 7}, {red, 256}, {red, 1}, {red, 33}};
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        snapshot snap;
        dashi_replay_stats stats;
        char *text = replay_batch(runs[r].st, &l, runs[r].batch, &snap, &stats);
        cr_expect_eq(stats.events, ref_stats.events, "%s batch %zu", runs[r].st->ops->name, runs[r].batch);
        cr_expect_eq(stats.duplicates, ref_stats.duplicates, "%s batch %zu", runs[r].st->ops->name, runs[r].batch);
        cr_expect_eq(stats.rejected, ref_stats.rejected, "%s batch %zu", runs[r].st->ops->name, runs[r].batch);
        cr_expect_str_eq(text, ref, "%s, batch %zu: outputs differ from one at a time", runs[r].st->ops->name,
                         runs[r].batch);
        snapshot_diff(&ref_snap, &snap, diff, sizeof(diff));
        cr_expect_str_empty(diff, "%s, batch %zu: final states differ (memory = one at a time): %s",
                            runs[r].st->ops->name, runs[r].batch, diff);
        snapshot_free(&snap);
        free(text);
    }
    snapshot_free(&ref_snap);
    free(ref);
    dashi_state_destroy(red);
    dashi_state_destroy(mem);
    dashi_event_list_clear(&l);
}

/* ---------------------------------------------------------------- output text = jansson's */

static void expect_dump_as_jansson(const dashi_event *ev) {
    json_t *j = dashi_event_to_json(ev);
    char *want = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL, *got = dashi_event_dump(ev);
    if (!want || !got)
        cr_expect(!want && !got, "%s: jansson %s, dashi_event_dump %s", dashi_event_type_name(ev->type),
                  want ? want : "(fails)", got ? got : "(fails)");
    else
        cr_expect_str_eq(got, want);
    json_decref(j);
    free(want);
    free(got);
}

static int check_output(void *opaque, const dashi_event *ev) {
    (*(size_t *)opaque)++;
    expect_dump_as_jansson(ev);
    return 0;
}

Test(differential, event_text_is_jansson_text, .init = setup, .fini = teardown, .timeout = 120) {
    dashi_event_list l = {0};
    dashi_state *st = dashi_state_mem_new();
    dashi_replay_stats stats = {0};
    dashi_rules *rules = NULL;
    dashi_keyring *keys = NULL;
    dashi_engine *eng = NULL;
    dashi_time until;
    size_t outputs = 0;
    char err[1024] = "";

    gen("small.ndjson", "3", "150", "1500", &l);
    for (size_t i = 0; i < l.n; i++)
        expect_dump_as_jansson(&l.events[i]);
    cr_assert(rules = dashi_rules_load(dashi_default_rules_path(), err, sizeof(err)), "%s", err);
    cr_assert(keys = dashi_keyring_load("dev", err, sizeof(err)), "%s", err);
    cr_assert(eng = dashi_engine_new(rules, keys, st, err, sizeof(err)), "%s", err);
    cr_assert_eq(dashi_time_parse(UNTIL, &until, err, sizeof(err)), DASHI_OK);
    cr_assert_eq(dashi_replay_run(eng, &l, "small", until, check_output, &outputs, NULL, NULL, &stats, err,
                                  sizeof(err)),
                 DASHI_OK, "%s", err);
    cr_assert_gt(outputs, 100);

    /* hard cases: escapes, non-ASCII, invalid UTF-8, a repeated map key, odd numbers */
    static const char *const strings[] = {
        "e\"1\\\n\t\x01\x1f", "u\xe4\xb8\xad\xe6\x96\x87\xf0\x9f\x98\x80/\x7f", "", "\b\f\r",
    };
    for (size_t i = 0; i < l.n; i++) {
        dashi_event *e = &l.events[i];
        if (e->type != DASHI_EV_ACCOUNT_REGISTERED)
            continue;
        for (size_t k = 0; k < sizeof(strings) / sizeof(strings[0]); k++) {
            free(e->u.account_registered.uid);
            e->u.account_registered.uid = strdup(strings[k]);
            expect_dump_as_jansson(e);
        }
        break;
    }
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_FRAUD_ALERT);
    dashi_fraud_alert *fa = &ev.u.fraud_alert;
    fa->alert_id = strdup("fa-\b\f\r");
    fa->occurred_at = 0;
    cr_assert_eq(dashi_kv_push(&fa->evidence, &fa->n_evidence, "k", "first"), 0);
    cr_assert_eq(dashi_kv_push(&fa->evidence, &fa->n_evidence, "other", "x\x01y"), 0);
    cr_assert_eq(dashi_kv_push(&fa->evidence, &fa->n_evidence, "k", "last"), 0);
    expect_dump_as_jansson(&ev);
    fa->occurred_at = (dashi_time)1 << 60; /* out of the formattable range: a number */
    expect_dump_as_jansson(&ev);
    free(fa->evidence[1].value);
    fa->evidence[1].value = strdup("cut \xe4\xb8"); /* a CJK character cut in half: both refuse */
    expect_dump_as_jansson(&ev);
    dashi_event_clear(&ev);

    dashi_engine_destroy(eng);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
    dashi_state_destroy(st);
    dashi_event_list_clear(&l);
}

/* ---------------------------------------------------------------- records = jansson's, cache = store */

/* One committed step of v: the write set applied to st; returns the PUT value of key (malloc'ed) or NULL. */
static char *commit(dashi_view *v, dashi_state *st, const char *key) {
    dashi_writeset ws;
    dashi_err res = DASHI_OK;
    char err[256] = "", *val = NULL;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_view_writeset(v, &ws), DASHI_OK);
    for (size_t i = 0; i < ws.n; i++)
        if (key && ws.ops[i].kind == DASHI_WS_PUT && strcmp(ws.ops[i].key, key) == 0)
            val = copy(ws.ops[i].val, ws.ops[i].val_len);
    const dashi_writeset *sets[1] = {&ws};
    cr_assert_eq(st->ops->apply(st, 1, sets, &res, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_assert_eq(res, DASHI_OK);
    dashi_writeset_clear(&ws);
    dashi_view_committed(v);
    dashi_view_reset(v);
    return val;
}

static char *stored(dashi_state *st, const char *key) {
    dashi_bytes k = {(char *)key, strlen(key)}, v = {NULL, 0};
    cr_assert_eq(st->ops->mget(st, 1, &k, &v, NULL, 0), DASHI_OK);
    return v.data;
}

/* The record as read in a fresh step, in iteration order (a parse keeps text order). */
static char *read_back(dashi_view *v, const char *key) {
    dashi_view_reset(v);
    const json_t *j = dashi_view_get(v, key);
    return j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
}

Test(differential, view_records_are_jansson_text) {
    static const char *const trees[] = {
        "{\"z\":1,\"a\":{\"y\":[3,{\"q\":null,\"b\":true}],\"x\":false},\"ab\":\"\\u0001\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0019\","
        "\"a\\u00e9\":\"\\u4e2d\\ud83d\\ude00\\u007f\",\"\":[],\"e\":{}}",
        "{\"r\":[1.5,-0.0,3.0,1e300,2.5e-310,0.1,123456789.123456789],\"i\":[9223372036854775807,"
        "-9223372036854775808,0,-1]}",
        "[\"top-level array\",{\"b\":1,\"a\":2}]",
    };
    dashi_state *st = dashi_state_mem_new();
    dashi_view *v = dashi_view_new(st);
    char key[32], *s_nul;

    for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
        json_error_t jerr;
        json_t *j = json_loads(trees[i], JSON_ALLOW_NUL, &jerr);
        cr_assert(j, "tree %zu: %s", i, jerr.text);
        /* insert the members again in reverse order, so the tree is not in dump order */
        if (json_is_object(j)) {
            json_t *rev = json_object();
            const char *names[16];
            size_t n = 0;
            const char *k;
            json_t *val;
            json_object_foreach(j, k, val) names[n++] = k;
            while (n--)
                json_object_set(rev, names[n], json_object_get(j, names[n]));
            json_decref(j);
            j = json_deep_copy(rev); /* a tree of its own: no node shared */
            json_decref(rev);
        }
        char *want = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        snprintf(key, sizeof(key), "t:%zu", i);
        dashi_view_reset(v);
        dashi_view_put(v, key, j);
        char *got = commit(v, st, key), *in_store = stored(st, key), *back = read_back(v, key);
        cr_expect_str_eq(got, want, "tree %zu", i);
        cr_expect_str_eq(in_store, want, "tree %zu", i);
        /* the cached tree iterates like a parse of the stored text */
        json_t *parsed = json_loads(want, JSON_ALLOW_NUL, &jerr);
        char *parsed_text = json_dumps(parsed, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        cr_expect_str_eq(back, parsed_text, "tree %zu read back", i);
        json_decref(parsed);
        free(parsed_text);
        free(want);
        free(got);
        free(in_store);
        free(back);
    }
    /* a NUL inside a string is written as jansson writes it, and reads back as a
     * record that does not parse (as before: the view never allowed NUL) */
    dashi_view_reset(v);
    dashi_view_put(v, "nul", json_pack("{s:s%}", "s", "a\0b", (size_t)3));
    s_nul = commit(v, st, "nul");
    cr_expect_str_eq(s_nul, "{\"s\":\"a\\u0000b\"}");
    free(s_nul);
    dashi_view_reset(v);
    cr_expect_null(dashi_view_get(v, "nul"));
    cr_expect_neq(dashi_view_error(v, NULL), DASHI_OK);
    /* a string that is not UTF-8 is refused, as json_dumps refuses it */
    dashi_view_reset(v);
    dashi_view_put(v, "bad", json_pack("{s:o}", "s", json_stringn_nocheck("\xe4\xb8", 2)));
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    cr_expect_neq(dashi_view_writeset(v, &ws), DASHI_OK);
    dashi_writeset_clear(&ws);
    dashi_view_reset(v);
    dashi_view_destroy(v);
    dashi_state_destroy(st);
}

Test(differential, view_cache_never_differs_from_the_store) {
    dashi_state *st = dashi_state_mem_new();
    dashi_view *v = dashi_view_new(st);
    json_t *shared;
    char *s;

    /* a write behind the view's back is seen in the next step */
    dashi_view_reset(v);
    json_object_set_new(dashi_view_edit(v, "a"), "n", json_integer(1));
    free(commit(v, st, NULL));
    cr_assert_eq(json_integer_value(json_object_get(dashi_view_get(v, "a"), "n")), 1);
    dashi_view_reset(v);
    dashi_writeset ws;
    dashi_err res;
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, "a", 1, "{\"n\":2}", 7, 0), DASHI_OK);
    const dashi_writeset *sets[1] = {&ws};
    cr_assert_eq(st->ops->apply(st, 1, sets, &res, NULL, 0), DASHI_OK);
    dashi_writeset_clear(&ws);
    cr_assert_eq(json_integer_value(json_object_get(dashi_view_get(v, "a"), "n")), 2);

    /* a dropped step (reset without commit) leaves nothing behind */
    dashi_view_reset(v);
    json_object_set_new(dashi_view_edit(v, "a"), "n", json_integer(3));
    dashi_view_reset(v);
    cr_assert_eq(json_integer_value(json_object_get(dashi_view_get(v, "a"), "n")), 2);

    /* a subtree shared by two records, then edited through one of them */
    dashi_view_reset(v);
    shared = json_pack("{s:i}", "x", 1);
    json_object_set(dashi_view_edit(v, "b"), "s", shared);
    json_object_set(dashi_view_edit(v, "c"), "s", shared);
    json_decref(shared);
    free(commit(v, st, NULL));
    json_object_set_new(json_object_get(dashi_view_edit(v, "b"), "s"), "x", json_integer(2));
    free(commit(v, st, NULL));
    s = read_back(v, "c");
    cr_expect_str_eq(s, "{\"s\":{\"x\":1}}");
    free(s);
    s = stored(st, "c");
    cr_expect_str_eq(s, "{\"s\":{\"x\":1}}");
    free(s);
    s = read_back(v, "b");
    cr_expect_str_eq(s, "{\"s\":{\"x\":2}}");
    free(s);

    /* an edit that changes nothing writes nothing; a delete of an absent record neither */
    dashi_view_reset(v);
    dashi_view_edit(v, "a");
    dashi_view_del(v, "never");
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_view_writeset(v, &ws), DASHI_OK);
    cr_expect_eq(ws.n, 0, "%zu ops for no change", ws.n);
    dashi_writeset_clear(&ws);
    dashi_view_reset(v);

    dashi_view_destroy(v);
    dashi_state_destroy(st);
}
