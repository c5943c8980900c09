/* test_badinput.c — the bad-input corpus through `dashi run` and `dashi replay`: every bad record refused with its reason, nothing else changed.
 *
 * tests/data/badinput/MANIFEST lists each corpus file with its input topic and the
 * reason `dashi run` (and `dashi replay`, for the JSON files) must give. One test
 * starts its own redis-server and `dashi devcluster`, publishes a `dashi gen`
 * stream plus good.ndjson (the good events the corpus refers to) as Avro, with
 * every corpus record produced raw in between, runs `dashi run`, and checks:
 *  - every corpus record is in the dead-letter topic exactly once, found by its
 *    source.topic/source.partition/source.offset headers, with its original size
 *    and the manifest's reason; no good event is there;
 *  - the other outputs equal `dashi replay` of the good events alone;
 *  - the Redis state (progress, fencing and outbox keys aside) equals that of a
 *    replay of the good events alone.
 * A second test replays the good events with every JSON corpus line mixed in: each
 * is rejected as "file:line: reason", and outputs and state equal the good-only ones.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consumers/codec.h"
#include "consumers/config.h"
#include "consumers/kafka.h"
#include "core/state.h"
#include "tests/support/live.h"
#include "tests/support/proc.h"

#define UNTIL DASHI_TEST_LIVE_UNTIL
#define CORPUS DASHI_SOURCE_DIR "/tests/data/badinput"
#define MAX_ENTRIES 128
#define MAX_MESSAGE_BYTES 8192 /* the run's max_message_bytes: w19 is larger, every good event smaller */

static void setup(void) {
    dashi_test_live_setup(0, NULL);
}

static void setup_kafka(void) {
    dashi_test_live_setup(4, NULL);
}

static void teardown(void) {
    dashi_test_live_teardown();
}

/* ---- the manifest ---- */

typedef struct entry {
    char file[96], topic[32], run_reason[200], replay_reason[200];
    void *bytes; /* what is published: FILE.avro when it exists, else FILE */
    size_t len;
    int32_t partition; /* from the delivery report */
    int64_t offset;
    int delivered, dead_letters;
} entry;

static entry entries[MAX_ENTRIES];
static size_t n_entries;

static void load_manifest(void) {
    char *text = dashi_test_slurp(CORPUS "/MANIFEST", NULL);
    cr_assert(text, "cannot read the MANIFEST");
    n_entries = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0])
            continue;
        cr_assert(n_entries < MAX_ENTRIES);
        entry *e = &entries[n_entries++];
        memset(e, 0, sizeof(*e));
        char *f[4] = {NULL};
        char *save = NULL, *tok = strtok_r(line, "\t", &save);
        for (int i = 0; i < 4 && tok; i++, tok = strtok_r(NULL, "\t", &save))
            f[i] = tok;
        cr_assert(f[3], "MANIFEST line for %s has not 4 columns", f[0] ? f[0] : "?");
        snprintf(e->file, sizeof(e->file), "%s", f[0]);
        snprintf(e->topic, sizeof(e->topic), "%s", f[1]);
        snprintf(e->run_reason, sizeof(e->run_reason), "%s", f[2]);
        snprintf(e->replay_reason, sizeof(e->replay_reason), "%s", strcmp(f[3], "=") == 0 ? f[2] : f[3]);
        char p[512];
        snprintf(p, sizeof(p), "%s/%s.avro", CORPUS, e->file);
        if (!(e->bytes = dashi_test_slurp(p, &e->len))) {
            snprintf(p, sizeof(p), "%s/%s", CORPUS, e->file);
            e->bytes = dashi_test_slurp(p, &e->len);
        }
        cr_assert(e->bytes, "cannot read corpus file %s", p);
    }
    free(text);
    cr_assert(n_entries >= 30, "the corpus has only %zu records", n_entries);
}

/* ---- commands ---- */

static void gen_good(void) {
    dashi_test_live_gen("good.ndjson", "21", "20", "200");
    char *extra = dashi_test_slurp(CORPUS "/good.ndjson", NULL);
    cr_assert(extra);
    FILE *f = fopen(dashi_test_live_path("good.ndjson"), "a");
    cr_assert(f);
    fputs(extra, f);
    fclose(f);
    free(extra);
}

/* Every key and value under prefix except progress/fencing/outbox, as "key\tvalue\n" lines (also in <prefix>state). */
static char *dump_state(const char *prefix) {
    char name[64];
    snprintf(name, sizeof(name), "%sstate", prefix);
    return dashi_test_live_dump_state(prefix, dashi_test_live_path(name), false);
}

static void assert_same_state(const char *live_prefix, const char *ref_prefix, const char *what) {
    char *a = dump_state(live_prefix), *b = dump_state(ref_prefix);
    cr_expect(strlen(b) > 1000, "reference state is nearly empty");
    cr_expect(strstr(b, "ord:bi-order-1"), "the good order the corpus refers to is not in the reference state");
    cr_expect(strcmp(a, b) == 0, "%s: Redis state differs from the good events' alone (%zu vs %zu bytes)", what,
              strlen(a), strlen(b));
    free(a);
    free(b);
}

/* ---- publishing ---- */

typedef struct pub_state {
    size_t delivered, failed;
} pub_state;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    pub_state *ps = opaque;
    entry *e = m->_private;
    if (m->err) {
        ps->failed++;
        return;
    }
    ps->delivered++;
    if (e) {
        e->delivered = 1;
        e->partition = m->partition;
        e->offset = m->offset;
    }
}

typedef struct good_event {
    dashi_time t;
    const char *id;
    char *line;
} good_event;

static int good_cmp(const void *a, const void *b) {
    const good_event *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void produce_entry(rd_kafka_t *rk, entry *e) {
    char err[512];
    cr_assert_eq(dashi_kafka_produce(rk, e->topic, RD_KAFKA_PARTITION_UA, e->file, e->bytes, e->len, NULL, e, err,
                                     sizeof(err)),
                 DASHI_OK, "%s: %s", e->file, err);
}

/* The good events as Avro on their topics in time order (a live stream), the corpus
 * records raw in between: a record that decodes to an input event goes where its
 * occurred_at puts it (so the records refused by the rules come after the good
 * events they refer to, and no partition is held back by a late record), the
 * others spread evenly. */
static void publish_interleaved(void) {
    char err[1024];
    pub_state ps = {0, 0};
    dashi_config *cfg = dashi_config_new_default(err, sizeof(err));
    cr_assert(cfg, "%s", err);
    dashi_codec *codec = dashi_codec_new(err, sizeof(err));
    cr_assert(codec, "%s", err);
    dashi_kafka_hooks hooks = {.dr_msg_cb = on_delivery, .opaque = &ps};
    rd_kafka_t *rk = dashi_kafka_new(cfg, DASHI_KAFKA_PRODUCER, dashi_test_live_boot(), NULL, &hooks, err, sizeof(err));
    cr_assert(rk, "%s", err);

    char *buf_all = dashi_test_slurp(dashi_test_live_path("good.ndjson"), NULL);
    cr_assert(buf_all);
    size_t n_good = 0, cap = 0;
    good_event *good = NULL;
    dashi_event *evs = NULL;
    for (char *line = strtok(buf_all, "\n"); line; line = strtok(NULL, "\n")) {
        if (n_good == cap) {
            cap = cap ? cap * 2 : 1024;
            good = realloc(good, cap * sizeof(*good));
            evs = realloc(evs, cap * sizeof(*evs));
        }
        cr_assert_eq(dashi_event_parse(line, strlen(line), &evs[n_good], err, sizeof(err)), DASHI_OK, "good event: %s",
                     err);
        good[n_good].line = line;
        n_good++;
    }
    for (size_t i = 0; i < n_good; i++) { /* evs no longer moves */
        good[i].t = dashi_event_time(&evs[i]);
        good[i].id = dashi_event_id(&evs[i]);
    }
    qsort(good, n_good, sizeof(*good), good_cmp);
    dashi_time at[MAX_ENTRIES];
    size_t n_untimed = 0;
    for (size_t i = 0; i < n_entries; i++) {
        dashi_event ev;
        at[i] = DASHI_TIME_NONE;
        if (dashi_codec_decode(codec, entries[i].bytes, entries[i].len, &ev, err, sizeof(err)) == DASHI_OK) {
            if (dashi_event_type_is_input(ev.type))
                at[i] = dashi_event_time(&ev);
            dashi_event_clear(&ev);
        }
        n_untimed += at[i] == DASHI_TIME_NONE;
    }
    size_t every = n_good / (n_untimed + 1), next = 0, biggest = 0;
    cr_assert(every >= 1);
    for (size_t g = 0; g <= n_good; g++) {
        for (size_t i = 0; i < n_entries; i++) /* timed records due before this good event */
            if (at[i] != DASHI_TIME_NONE && !entries[i].dead_letters && (g == n_good || at[i] < good[g].t)) {
                entries[i].dead_letters = -1; /* produced (reset below) */
                produce_entry(rk, &entries[i]);
            }
        if (g == n_good)
            break;
        dashi_event ev;
        void *buf = NULL;
        size_t len = 0;
        cr_assert_eq(dashi_event_parse(good[g].line, strlen(good[g].line), &ev, err, sizeof(err)), DASHI_OK, "%s", err);
        cr_assert_eq(dashi_codec_encode(codec, &ev, &buf, &len, err, sizeof(err)), DASHI_OK, "%s", err);
        biggest = len > biggest ? len : biggest;
        cr_assert_eq(dashi_kafka_produce(rk, dashi_config_topic(cfg, ev.type), RD_KAFKA_PARTITION_UA,
                                         dashi_event_key(&ev), buf, len, NULL, NULL, err, sizeof(err)),
                     DASHI_OK, "%s", err);
        free(buf);
        dashi_event_clear(&ev);
        if ((g + 1) % every == 0) { /* the next untimed record */
            while (next < n_entries && at[next] != DASHI_TIME_NONE)
                next++;
            if (next < n_entries)
                produce_entry(rk, &entries[next++]);
        }
        rd_kafka_poll(rk, 0);
    }
    for (; next < n_entries; next++)
        if (at[next] == DASHI_TIME_NONE)
            produce_entry(rk, &entries[next]);
    rd_kafka_flush(rk, 30000);
    cr_assert_eq(ps.failed, 0, "%zu records were not delivered", ps.failed);
    cr_assert_eq(ps.delivered, n_good + n_entries);
    cr_assert(biggest < MAX_MESSAGE_BYTES, "a good event of %zu bytes is above the run's max_message_bytes", biggest);
    for (size_t i = 0; i < n_entries; i++) {
        cr_assert(entries[i].delivered, "%s was not delivered", entries[i].file);
        entries[i].dead_letters = 0;
    }
    rd_kafka_destroy(rk);
    for (size_t i = 0; i < n_good; i++)
        dashi_event_clear(&evs[i]);
    free(evs);
    free(good);
    dashi_codec_destroy(codec);
    dashi_config_destroy(cfg);
    free(buf_all);
}

static pid_t start_run(const char *prefix) {
    char maxb[64];
    snprintf(maxb, sizeof(maxb), "max_message_bytes=%d", MAX_MESSAGE_BYTES);
    const char *args[] = {"--set", "merge.wait_ms=100", "--set", maxb, "--exit-idle", "2500", "--clock-until", UNTIL,
                          NULL};
    return dashi_test_live_spawn_run("g-bad", prefix, NULL, args);
}

static const char *header(json_t *dl, const char *name) {
    const char *v = json_string_value(json_object_get(json_object_get(dl, "headers"), name));
    return v ? v : "";
}

Test(badinput, every_bad_record_is_a_dead_letter_with_its_reason_and_changes_nothing, .init = setup_kafka,
     .fini = teardown, .timeout = 400) {
    load_manifest();
    gen_good();
    publish_interleaved();
    pid_t run = start_run("live:");
    cr_assert_eq(dashi_test_wait(run), 0, "dashi run failed (see %s)", dashi_test_live_path("run.log"));

    /* every corpus record, once, by its source coordinates, with its reason and size */
    dashi_test_live_tail(dashi_test_live_path("dlq.ndjson"), "dead-letter", "3000");
    char *text = dashi_test_slurp(dashi_test_live_path("dlq.ndjson"), NULL);
    cr_assert(text);
    size_t n_dl = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *dl = json_loads(line, 0, NULL);
        cr_assert(dl, "dead letter line is not JSON: %.200s", line);
        n_dl++;
        const char *topic = header(dl, "source.topic"), *reason = header(dl, "reason");
        long part = atol(header(dl, "source.partition"));
        long long off = atoll(header(dl, "source.offset"));
        entry *e = NULL;
        for (size_t i = 0; i < n_entries && !e; i++)
            if (strcmp(entries[i].topic, topic) == 0 && entries[i].partition == part && entries[i].offset == off)
                e = &entries[i];
        cr_expect(e, "a dead letter that is no corpus record (a good event refused?): %.400s", line);
        if (e) {
            e->dead_letters++;
            cr_expect(strstr(reason, e->run_reason), "%s: reason '%s' lacks '%s'", e->file, reason, e->run_reason);
            cr_expect_eq(json_integer_value(json_object_get(dl, "value_bytes")), (json_int_t)e->len,
                         "%s: the dead letter does not carry the original bytes", e->file);
        }
        json_decref(dl);
    }
    free(text);
    for (size_t i = 0; i < n_entries; i++)
        cr_expect_eq(entries[i].dead_letters, 1, "%s (%s[%d]@%lld): %d dead letters, expected 1 (%s)",
                     entries[i].file, entries[i].topic, (int)entries[i].partition, (long long)entries[i].offset,
                     entries[i].dead_letters, entries[i].run_reason);
    cr_expect_eq(n_dl, n_entries, "%zu dead letters for %zu corpus records", n_dl, n_entries);

    /* the good events' outputs: what replay gives for the good events alone */
    dashi_test_live_tail(dashi_test_live_path("live.ndjson"), NULL, "3000");
    dashi_test_live_replay(dashi_test_live_path("good.ndjson"), dashi_test_live_path("expected.ndjson"), NULL, NULL,
                           dashi_test_live_path("rejects-good.txt"));
    size_t rej_len = 0;
    char *rej = dashi_test_slurp(dashi_test_live_path("rejects-good.txt"), &rej_len);
    cr_expect(rej && rej_len == 0, "replay refused good events:\n%.500s", rej ? rej : "");
    free(rej);
    dashi_test_live_assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("live.ndjson"),
                                    "\"type\":\"DeadLetter\"", "actual");

    /* the state: the same as a replay of the good events alone on Redis */
    dashi_test_live_replay(dashi_test_live_path("good.ndjson"), dashi_test_live_path("expected2.ndjson"),
                           dashi_test_live_redis_url(), "ref:", dashi_test_live_path("rejects-good2.txt"));
    assert_same_state("live:", "ref:", "dashi run");
    for (size_t i = 0; i < n_entries; i++)
        free(entries[i].bytes);
}

Test(badinput, replay_rejects_every_json_record_with_its_reason_and_changes_nothing, .init = setup, .fini = teardown,
     .timeout = 300) {
    load_manifest();
    gen_good();
    /* the good events, then every JSON corpus line a replay must refuse */
    char *good = dashi_test_slurp(dashi_test_live_path("good.ndjson"), NULL);
    cr_assert(good);
    size_t first = 1;
    for (char *s = good; *s; s++)
        first += *s == '\n';
    FILE *f = fopen(dashi_test_live_path("mixed.ndjson"), "w");
    cr_assert(f);
    fputs(good, f);
    free(good);
    size_t line_of[MAX_ENTRIES] = {0}, n_json = 0;
    for (size_t i = 0; i < n_entries; i++) {
        if (strcmp(entries[i].replay_reason, "-") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", CORPUS, entries[i].file);
        size_t len = 0;
        char *text = dashi_test_slurp(p, &len);
        cr_assert(text && len > 0 && text[len - 1] == '\n' && memchr(text, '\n', len) == text + len - 1,
                  "%s must be one line", entries[i].file);
        fwrite(text, 1, len, f);
        free(text);
        line_of[i] = first + n_json++;
    }
    fclose(f);
    cr_assert(n_json >= 30, "only %zu JSON corpus records", n_json);

    dashi_test_live_replay(dashi_test_live_path("good.ndjson"), dashi_test_live_path("expected.ndjson"),
                           dashi_test_live_redis_url(), "ref:", dashi_test_live_path("rejects-good.txt"));
    dashi_test_live_replay(dashi_test_live_path("mixed.ndjson"), dashi_test_live_path("mixed-out.ndjson"),
                           dashi_test_live_redis_url(), "mix:", dashi_test_live_path("rejects.txt"));

    /* each JSON record: "file:line: reason", in the order of the lines */
    char *rej = dashi_test_slurp(dashi_test_live_path("rejects.txt"), NULL);
    cr_assert(rej);
    size_t n_rej = 0;
    for (char *s = rej; *s; s++)
        n_rej += *s == '\n';
    cr_expect_eq(n_rej, n_json, "%zu rejects for %zu bad JSON records:\n%.2000s", n_rej, n_json, rej);
    for (size_t i = 0; i < n_entries; i++) {
        if (!line_of[i])
            continue;
        char want[700];
        snprintf(want, sizeof(want), "%s:%zu: ", dashi_test_live_path("mixed.ndjson"), line_of[i]);
        char *at = strstr(rej, want);
        cr_expect(at, "%s (line %zu) was not rejected", entries[i].file, line_of[i]);
        if (!at)
            continue;
        char *end = strchr(at, '\n');
        size_t n = end ? (size_t)(end - at) : strlen(at);
        char *one = strndup(at, n);
        char *tab = strchr(one + strlen(want), '\t');
        if (tab)
            *tab = '\0'; /* the reason, without the original line after it */
        cr_expect(strstr(one + strlen(want), entries[i].replay_reason), "%s: reject '%.300s' lacks '%s'",
                  entries[i].file, one, entries[i].replay_reason);
        free(one);
    }
    free(rej);
    /* and nothing changed: the same outputs and the same state as the good events alone */
    dashi_test_live_assert_same_set(dashi_test_live_path("expected.ndjson"), dashi_test_live_path("mixed-out.ndjson"),
                                    "\"type\":\"DeadLetter\"", "actual");
    assert_same_state("mix:", "ref:", "dashi replay");
    for (size_t i = 0; i < n_entries; i++)
        free(entries[i].bytes);
}
