/* live.c — the shared fixture and helpers of the live integration tests (see live.h).
 *
 * One process-wide context (Criterion runs each test in its own process): the
 * redis-server, the devcluster pid, the temp dir, the bootstrap string and the
 * "redis.url=..." setting. The commands are argv arrays run with
 * tests/support/proc.c; comparisons and dumps assert with Criterion so a failure
 * names what was compared.
 */
#include "tests/support/live.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/state.h"
#include "tests/support/proc.h"

static struct {
    dashi_test_redis *srv; /* owned */
    pid_t dc;              /* devcluster, or -1 */
    char dir[256], boot[512], redis_url_set[512];
} live = {NULL, -1, "", "", ""};

static void start_redis(const char *const *redis_args) {
    char err[512];
    live.srv = redis_args ? dashi_test_redis_start_with(redis_args, err, sizeof(err))
                          : dashi_test_redis_start(err, sizeof(err));
    cr_assert(live.srv, "redis-server: %s", err);
    snprintf(live.redis_url_set, sizeof(live.redis_url_set), "redis.url=%s", dashi_test_redis_url(live.srv));
}

void dashi_test_live_setup(int partitions, const char *const *redis_args) {
    live.dc = -1;
    start_redis(redis_args);
    cr_assert(dashi_test_tmpdir(live.dir, sizeof(live.dir)), "mkdtemp");
    if (partitions > 0)
        dashi_test_live_start_devcluster(partitions);
}

void dashi_test_live_replace_redis(const char *const *redis_args) {
    dashi_test_redis_stop(live.srv);
    live.srv = NULL;
    start_redis(redis_args);
}

void dashi_test_live_start_devcluster(int partitions) {
    live.dc = dashi_test_devcluster(DASHI_BINARY, live.dir, partitions, live.boot, sizeof(live.boot));
    cr_assert(live.dc > 0, "dashi devcluster did not start (see %s/devcluster.log)", live.dir);
}

void dashi_test_live_set_boot(const char *bootstrap) {
    snprintf(live.boot, sizeof(live.boot), "%s", bootstrap);
}

void dashi_test_live_teardown(void) {
    if (live.dc > 0)
        dashi_test_kill(live.dc, SIGTERM);
    live.dc = -1;
    dashi_test_redis_stop(live.srv);
    live.srv = NULL;
    if (!live.dir[0])
        return;
    if (!getenv("DASHI_TEST_KEEP") && !getenv("DASHI_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", live.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", live.dir);
    } else {
        fprintf(stderr, "kept %s\n", live.dir);
    }
}

const char *dashi_test_live_dir(void) {
    return live.dir;
}

const char *dashi_test_live_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", live.dir, name);
    return buf[k];
}

const char *dashi_test_live_boot(void) {
    return live.boot;
}

dashi_test_redis *dashi_test_live_redis(void) {
    return live.srv;
}

const char *dashi_test_live_redis_url(void) {
    return dashi_test_redis_url(live.srv);
}

const char *dashi_test_live_redis_set(void) {
    return live.redis_url_set;
}

/* ---- commands ---- */

void dashi_test_live_gen(const char *out, const char *seed, const char *ambassadors, const char *customers) {
    const char *argv[] = {DASHI_BINARY, "gen", "--seed", seed, "--ambassadors", ambassadors,
                          "--customers", customers, "--out", dashi_test_live_path(out), NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, dashi_test_live_path("gen.log")), 0, "dashi gen failed (see %s)",
                 dashi_test_live_path("gen.log"));
}

void dashi_test_live_publish(const char *file, const char *raw_topic) {
    const char *log = dashi_test_live_path("publish.log");
    const char *argv[] = {DASHI_BINARY, "publish", "--bootstrap", live.boot, "--in", file,
                          raw_topic ? "--raw-topic" : NULL, raw_topic, NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, log), 0, "dashi publish failed (see %s)", log);
}

void dashi_test_live_tail(const char *out, const char *topic, const char *idle_ms) {
    const char *log = dashi_test_live_path("tail.log");
    const char *argv[] = {DASHI_BINARY, "tail", "--bootstrap", live.boot, "--idle-ms", idle_ms,
                          topic ? "--topic" : NULL, topic, NULL};
    cr_assert_eq(dashi_test_run(argv, out, log), 0, "dashi tail failed (see %s)", log);
}

void dashi_test_live_replay(const char *in, const char *out, const char *state, const char *prefix,
                            const char *rejects) {
    const char *log = dashi_test_live_path("replay.log");
    const char *argv[] = {DASHI_BINARY, "replay", "--in", in, "--out", out, "--until", DASHI_TEST_LIVE_UNTIL,
                          "--quiet", "--state", state ? state : "memory", "--prefix", prefix ? prefix : "dashi:",
                          rejects ? "--rejects" : NULL, rejects, NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, log), 0, "dashi replay --state %s failed (see %s)",
                 state ? state : "memory", log);
}

pid_t dashi_test_live_spawn_run(const char *group, const char *prefix, const char *log, const char *const *extra) {
    char g[128], pfx[128], rules[512];
    snprintf(g, sizeof(g), "group.id=%s", group);
    snprintf(pfx, sizeof(pfx), "redis.prefix=%s", prefix ? prefix : "");
    snprintf(rules, sizeof(rules), "rules.file=%s/config/rules.json", DASHI_SOURCE_DIR);
    enum { MAX_ARGS = 80 };
    const char *argv[MAX_ARGS + 1];
    size_t n = 0;
    const char *base[] = {DASHI_BINARY, "run", "--bootstrap", live.boot, "--set", live.redis_url_set, "--set", g};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[n++] = base[i];
    if (prefix) {
        argv[n++] = "--set";
        argv[n++] = pfx;
    }
    argv[n++] = "--set";
    argv[n++] = rules;
    argv[n++] = "--set";
    argv[n++] = "hmac.key=dev";
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert_lt(n, (size_t)MAX_ARGS, "dashi_test_live_spawn_run: too many extra arguments");
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    return dashi_test_spawn(argv, NULL, log ? log : dashi_test_live_path("run.log"));
}

/* ---- output sets ---- */

static int cmpstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

dashi_test_live_lines dashi_test_live_read_set(const char *file, const char *skip) {
    dashi_test_live_lines l = {0};
    l.buf = dashi_test_slurp(file, NULL);
    cr_assert(l.buf, "cannot read %s", file);
    size_t cap = 1024;
    l.v = malloc(cap * sizeof(char *));
    cr_assert(l.v);
    for (char *s = strtok(l.buf, "\n"); s; s = strtok(NULL, "\n")) {
        if (skip && strstr(s, skip))
            continue;
        if (l.n == cap) {
            l.v = realloc(l.v, (cap *= 2) * sizeof(char *));
            cr_assert(l.v);
        }
        l.v[l.n++] = s;
    }
    l.total = l.n;
    qsort(l.v, l.n, sizeof(char *), cmpstr);
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++)
        if (k == 0 || strcmp(l.v[k - 1], l.v[i]) != 0)
            l.v[k++] = l.v[i];
    l.n = k;
    return l;
}

void dashi_test_live_lines_free(dashi_test_live_lines *l) {
    if (!l)
        return;
    free(l->v);
    free(l->buf);
    l->v = NULL;
    l->buf = NULL;
    l->n = l->total = 0;
}

dashi_test_live_diff dashi_test_live_diff_sets(const dashi_test_live_lines *expected,
                                               const dashi_test_live_lines *actual) {
    dashi_test_live_diff d = {0, 0, NULL, NULL};
    size_t i = 0, j = 0;
    while (i < expected->n || j < actual->n) {
        int c = i == expected->n ? 1 : j == actual->n ? -1 : strcmp(expected->v[i], actual->v[j]);
        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            d.first_missing = d.first_missing ? d.first_missing : expected->v[i];
            d.missing++, i++;
        } else {
            d.first_extra = d.first_extra ? d.first_extra : actual->v[j];
            d.extra++, j++;
        }
    }
    return d;
}

void dashi_test_live_assert_same_set(const char *expected_file, const char *actual_file, const char *skip_actual,
                                     const char *actual_what) {
    dashi_test_live_lines e = dashi_test_live_read_set(expected_file, NULL);
    dashi_test_live_lines a = dashi_test_live_read_set(actual_file, skip_actual);
    dashi_test_live_diff d = dashi_test_live_diff_sets(&e, &a);
    cr_expect(e.n > 100, "the reference has only %zu outputs: the stream is too small to show anything", e.n);
    cr_expect(d.missing == 0 && d.extra == 0,
              "%zu expected outputs, %zu %s: %zu missing (first: %.300s), %zu extra (first: %.300s)", e.n, a.n,
              actual_what, d.missing, d.first_missing ? d.first_missing : "-", d.extra,
              d.first_extra ? d.first_extra : "-");
    dashi_test_live_lines_free(&e);
    dashi_test_live_lines_free(&a);
}

/* ---- Redis state ---- */

typedef struct dump_ctx {
    FILE *f;
    bool all_keys;
} dump_ctx;

static int dump_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    dump_ctx *d = opaque;
    if (!d->all_keys && ((key_len >= 4 && memcmp(key, "off:", 4) == 0) ||
                         (key_len >= 3 && memcmp(key, "ep:", 3) == 0) || (key_len >= 3 && memcmp(key, "ob:", 3) == 0) ||
                         (key_len >= 3 && memcmp(key, "wm:", 3) == 0)))
        return 0;
    fwrite(key, 1, key_len, d->f);
    fputc('\t', d->f);
    fwrite(val, 1, val_len, d->f);
    fputc('\n', d->f);
    return 0;
}

char *dashi_test_live_dump_state(const char *prefix, const char *file, bool all_keys) {
    char err[512], *buf = NULL;
    size_t len = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(live.srv), prefix, err, sizeof(err));
    cr_assert(st, "%s", err);
    dump_ctx d = {open_memstream(&buf, &len), all_keys};
    cr_assert(d.f);
    cr_assert_eq(st->ops->scan(st, "", 0, dump_one, &d, err, sizeof(err)), DASHI_OK, "%s", err);
    fclose(d.f);
    dashi_state_destroy(st);
    cr_assert(buf);
    if (file) {
        FILE *f = fopen(file, "w");
        cr_assert(f, "cannot write %s", file);
        cr_assert_eq(fwrite(buf, 1, len, f), len, "cannot write %s", file);
        fclose(f);
    }
    return buf;
}

static int count_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    (void)key, (void)key_len, (void)val, (void)val_len;
    (*(size_t *)opaque)++;
    return 0;
}

size_t dashi_test_live_count_keys(const char *store, const char *key_prefix) {
    char err[512];
    size_t n = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(live.srv), store, err, sizeof(err));
    cr_assert(st, "%s", err);
    cr_assert_eq(st->ops->scan(st, key_prefix, strlen(key_prefix), count_one, &n, err, sizeof(err)), DASHI_OK, "%s",
                 err);
    dashi_state_destroy(st);
    return n;
}

size_t dashi_test_live_count_keys_or_0(const char *store, const char *key_prefix) {
    char err[512];
    size_t n = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(live.srv), store, err, sizeof(err));
    if (!st)
        return 0;
    if (st->ops->scan(st, key_prefix, strlen(key_prefix), count_one, &n, err, sizeof(err)) != DASHI_OK)
        n = 0;
    dashi_state_destroy(st);
    return n;
}

size_t dashi_test_live_count_timers(const char *store) {
    char err[512];
    size_t n = 0;
    dashi_state *st = dashi_state_open(dashi_test_redis_url(live.srv), store, err, sizeof(err));
    cr_assert(st, "%s", err);
    cr_assert_eq(st->ops->timers_count(st, &n, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_state_destroy(st);
    return n;
}

/* ---- files and waiting ---- */

size_t dashi_test_live_count_lines(const char *file) {
    char *buf = dashi_test_slurp(file, NULL);
    size_t n = 0;
    for (char *s = buf; s && *s; s++)
        n += *s == '\n';
    free(buf);
    return n;
}

bool dashi_test_live_file_has(const char *file, const char *text) {
    char *t = dashi_test_slurp(file, NULL);
    bool found = t && strstr(t, text);
    free(t);
    return found;
}

bool dashi_test_live_wait_file(const char *file, const char *text, int ms) {
    for (int waited = 0; waited < ms; waited += 200) {
        if (dashi_test_live_file_has(file, text))
            return true;
        dashi_test_live_sleep_ms(200);
    }
    return false;
}

void dashi_test_live_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
