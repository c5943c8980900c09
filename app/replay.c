/* replay.c — NDJSON in, engine, outputs out: the offline path shared by replay, scenario and tests.
 *
 * Lines are read with getline (any length), parsed and validated by the event
 * model; a bad line never stops the run. Sorting uses a stable merge of indices so
 * events with equal (occurred_at, event_id) keep their file order and the result is
 * the same on every platform. Events go to the engine in batches
 * (dashi_engine_process_batch). Retriable back-end errors (a Redis restart) are
 * retried with a short backoff from the event they stopped at, because an event
 * that is not applied is lost.
 */
#include "app/replay.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRIES 20

void dashi_event_list_clear(dashi_event_list *l) {
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        dashi_event_clear(&l->events[i]);
    free(l->events);
    free(l->lines);
    free(l->sizes);
    memset(l, 0, sizeof(*l));
}

int dashi_event_list_push(dashi_event_list *l, dashi_event *ev, size_t line) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        dashi_event *ne = realloc(l->events, cap * sizeof(*ne));
        if (!ne)
            return -1;
        l->events = ne;
        size_t *nl = realloc(l->lines, cap * sizeof(*nl));
        if (!nl)
            return -1;
        l->lines = nl;
        size_t *ns = realloc(l->sizes, cap * sizeof(*ns));
        if (!ns)
            return -1;
        l->sizes = ns;
        l->cap = cap;
    }
    l->events[l->n] = *ev;
    l->lines[l->n] = line;
    l->sizes[l->n] = 0;
    l->n++;
    return 0;
}

dashi_err dashi_replay_read(FILE *f, const char *name, dashi_event_list *l, dashi_replay_stats *stats,
                            dashi_reject_fn reject, void *opaque, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        size_t raw = (size_t)len;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        size_t skip = strspn(line, " \t");
        if ((size_t)len == skip)
            continue;
        stats->lines++;
        dashi_event ev;
        char why[512] = "";
        memset(&ev, 0, sizeof(ev));
        if (dashi_event_parse(line, (size_t)len, &ev, why, sizeof(why)) != DASHI_OK) {
            stats->rejected++;
            if (reject)
                reject(opaque, name, lineno, why, line);
            continue;
        }
        if (!dashi_event_type_is_input(ev.type)) {
            stats->rejected++;
            if (reject) {
                snprintf(why, sizeof(why), "type: %s is an output event, not an input",
                         dashi_event_type_name(ev.type));
                reject(opaque, name, lineno, why, line);
            }
            dashi_event_clear(&ev);
            continue;
        }
        if (dashi_event_list_push(l, &ev, lineno) < 0) {
            dashi_event_clear(&ev);
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "%s: out of memory at line %zu", name, lineno);
            goto out;
        }
        l->sizes[l->n - 1] = raw;
    }
    if (ferror(f))
        err = dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "%s: read error after line %zu", name, lineno);
out:
    free(line);
    return err;
}

static int event_cmp(const dashi_event *a, const dashi_event *b) {
    dashi_time ta = dashi_event_time(a), tb = dashi_event_time(b);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return strcmp(dashi_event_id(a), dashi_event_id(b));
}

void dashi_replay_sort(dashi_event_list *l) {
    if (l->n < 2)
        return;
    /* bottom-up merge sort of (event, line) pairs: stable and O(n log n) */
    dashi_event *tmp = malloc(l->n * sizeof(*tmp));
    size_t *tmpl = malloc(l->n * sizeof(*tmpl));
    size_t *tmps = malloc(l->n * sizeof(*tmps));
    if (!tmp || !tmpl || !tmps) {
        free(tmp);
        free(tmpl);
        free(tmps);
        /* fall back to a stable insertion sort: slow but correct */
        for (size_t i = 1; i < l->n; i++)
            for (size_t j = i; j > 0 && event_cmp(&l->events[j - 1], &l->events[j]) > 0; j--) {
                dashi_event e = l->events[j];
                l->events[j] = l->events[j - 1];
                l->events[j - 1] = e;
                size_t x = l->lines[j];
                l->lines[j] = l->lines[j - 1];
                l->lines[j - 1] = x;
                x = l->sizes[j];
                l->sizes[j] = l->sizes[j - 1];
                l->sizes[j - 1] = x;
            }
        return;
    }
    for (size_t width = 1; width < l->n; width *= 2) {
        for (size_t lo = 0; lo < l->n; lo += 2 * width) {
            size_t mid = lo + width < l->n ? lo + width : l->n;
            size_t hi = lo + 2 * width < l->n ? lo + 2 * width : l->n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (event_cmp(&l->events[j], &l->events[i]) < 0) {
                    tmp[k] = l->events[j];
                    tmps[k] = l->sizes[j];
                    tmpl[k++] = l->lines[j++];
                } else {
                    tmp[k] = l->events[i];
                    tmps[k] = l->sizes[i];
                    tmpl[k++] = l->lines[i++];
                }
            }
            while (i < mid) {
                tmp[k] = l->events[i];
                tmps[k] = l->sizes[i];
                tmpl[k++] = l->lines[i++];
            }
            while (j < hi) {
                tmp[k] = l->events[j];
                tmps[k] = l->sizes[j];
                tmpl[k++] = l->lines[j++];
            }
        }
        memcpy(l->events, tmp, l->n * sizeof(*tmp));
        memcpy(l->lines, tmpl, l->n * sizeof(*tmpl));
        memcpy(l->sizes, tmps, l->n * sizeof(*tmps));
    }
    free(tmp);
    free(tmpl);
    free(tmps);
}

static void backoff(int attempt) {
    struct timespec ts = {0, (long)(attempt < 10 ? attempt + 1 : 10) * 50 * 1000000L};
    nanosleep(&ts, NULL);
}

dashi_err dashi_replay_run(dashi_engine *e, const dashi_event_list *l, const char *name, dashi_time until,
                           dashi_emit_fn emit, void *emit_opaque, dashi_reject_fn reject, void *reject_opaque,
                           dashi_replay_stats *stats, char *errstr, size_t errstr_size) {
    return dashi_replay_run_batch(e, l, name, until, DASHI_REPLAY_BATCH, emit, emit_opaque, reject, reject_opaque, NULL,
                                  NULL, stats, errstr, errstr_size);
}

dashi_err dashi_replay_run_progress(dashi_engine *e, const dashi_event_list *l, const char *name, dashi_time until,
                                    dashi_emit_fn emit, void *emit_opaque, dashi_reject_fn reject,
                                    void *reject_opaque, dashi_replay_progress_fn progress, void *progress_opaque,
                                    dashi_replay_stats *stats, char *errstr, size_t errstr_size) {
    return dashi_replay_run_batch(e, l, name, until, DASHI_REPLAY_BATCH, emit, emit_opaque, reject, reject_opaque,
                                  progress, progress_opaque, stats, errstr, errstr_size);
}

/* Apply l's events [i, i + n): one batch, or (batch <= 1, n == 1) one event. *done
 * is how many reached their outcome (results[0..*done)); the error that stopped
 * the rest is returned with its message in why. */
static dashi_err run_some(dashi_engine *e, const dashi_event *const *evs, const dashi_event_list *l, size_t i,
                          size_t n, size_t batch, dashi_emit_fn emit, void *emit_opaque, dashi_batch_result *results,
                          size_t *done, char *why, size_t why_size) {
    dashi_err err;
    why[0] = '\0';
    if (batch > 1) {
        dashi_batch_opts opts = {.emit = emit, .emit_opaque = emit_opaque, .until = DASHI_TIME_NONE};
        return dashi_engine_process_batch(e, evs + i, n, &opts, results, done, why, why_size);
    }
    results[0].why[0] = '\0';
    err = results[0].err = dashi_engine_process(e, &l->events[i], emit, emit_opaque, results[0].why,
                                                sizeof(results[0].why));
    *done = 0;
    if (err == DASHI_OK || err == DASHI_ERR_DUPLICATE || err == DASHI_ERR_INVALID) {
        *done = 1;
        err = DASHI_OK;
    } else {
        snprintf(why, why_size, "%s", results[0].why);
    }
    return err;
}

dashi_err dashi_replay_run_batch(dashi_engine *e, const dashi_event_list *l, const char *name, dashi_time until,
                                 size_t batch, dashi_emit_fn emit, void *emit_opaque, dashi_reject_fn reject,
                                 void *reject_opaque, dashi_replay_progress_fn progress, void *progress_opaque,
                                 dashi_replay_stats *stats, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    uint64_t bytes_done = 0;
    struct timespec t0, t1;
    const dashi_event **evs = NULL;     /* owned array; borrows l's events */
    dashi_batch_result *results = NULL; /* owned */
    size_t i = 0, per_call = batch > 1 ? batch : 1;
    int attempt = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!(results = malloc(per_call * sizeof(*results))) || (l->n && !(evs = malloc(l->n * sizeof(*evs))))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "%s: out of memory", name);
        goto out;
    }
    for (size_t k = 0; k < l->n; k++)
        evs[k] = &l->events[k];
    while (i < l->n) {
        char why[512];
        size_t n = l->n - i < per_call ? l->n - i : per_call, done = 0;
        err = run_some(e, evs, l, i, n, batch, emit, emit_opaque, results, &done, why, sizeof(why));
        if (done)
            attempt = 0;
        for (size_t k = 0; k < done; k++, i++) {
            const dashi_batch_result *r = &results[k];
            if (r->err == DASHI_OK) {
                stats->events++;
            } else if (r->err == DASHI_ERR_DUPLICATE) {
                stats->duplicates++;
            } else if (reject) { /* DASHI_ERR_INVALID */
                char *text = dashi_event_dump(&l->events[i]);
                reject(reject_opaque, name, l->lines[i], r->why, text ? text : "");
                free(text);
            }
            stats->rejected += r->err == DASHI_ERR_INVALID;
            if (progress) {
                bytes_done += l->sizes ? l->sizes[i] : 0;
                progress(progress_opaque, i + 1, bytes_done);
            }
        }
        if (err == DASHI_OK)
            continue;
        /* stopped at event i: a retriable error (a Redis restart) is retried, because an
         * event that is not applied is lost */
        if (dashi_err_retriable(err) && ++attempt < RETRIES) {
            backoff(attempt);
            continue;
        }
        err = dashi_errf(err, errstr, errstr_size, "%s:%zu: %s", name, l->lines[i], why);
        goto out;
    }
    if (until != DASHI_TIME_NONE) {
        attempt = 0;
        do {
            if (batch > 1) {
                dashi_batch_opts opts = {.emit = emit, .emit_opaque = emit_opaque, .until = until};
                size_t done = 0;
                err = dashi_engine_process_batch(e, NULL, 0, &opts, NULL, &done, errstr, errstr_size);
            } else {
                err = dashi_engine_advance(e, until, emit, emit_opaque, errstr, errstr_size);
            }
        } while (dashi_err_retriable(err) && ++attempt < RETRIES && (backoff(attempt), 1));
    }
    if (progress && err == DASHI_OK)
        progress(progress_opaque, l->n, bytes_done);
out:
    free(evs);
    free(results);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->seconds += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return err;
}

const char *dashi_default_rules_path(void) {
    const char *env = getenv("DASHI_RULES");
    if (env && *env)
        return env;
    if (access(DASHI_SOURCE_DIR "/config/rules.json", R_OK) == 0)
        return DASHI_SOURCE_DIR "/config/rules.json";
    return "config/rules.json";
}
