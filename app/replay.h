/* replay.h — offline processing of JSON events: read, order by event time, run the engine, write outputs.
 *
 * `dashi replay` and `dashi scenario` (and the tests) share this: events are read
 * whole, bad lines are reported and left out, the rest is sorted by (occurred_at,
 * event_id) — the order ARCHITECTURE.md's determinism guarantee is defined by —
 * and run through one engine, in batches (dashi_engine_process_batch: a few
 * round trips per batch rather than several per event, the same results);
 * --until finally moves the clock so timers up to it fire.
 */
#ifndef DASHI_REPLAY_H
#define DASHI_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/engine.h"
#include "core/event.h"

typedef struct dashi_replay_stats {
    size_t lines, events, rejected, duplicates, outputs;
    double seconds;
} dashi_replay_stats;

/* Called for every input refused: where (source name and 1-based line, 0 when not
 * from a file), why, and the original text when there is one. */
typedef void (*dashi_reject_fn)(void *opaque, const char *source, size_t line, const char *reason,
                                const char *text);

/* A growable list of parsed input events with their source lines. */
typedef struct dashi_event_list {
    dashi_event *events;  /* owned */
    size_t *lines;        /* owned: line number of each event */
    size_t *sizes;        /* owned: bytes of each event's line with its newline (0: not read from a file) */
    size_t n, cap;
} dashi_event_list;

void dashi_event_list_clear(dashi_event_list *l); /* frees the events; NULL-safe */
/* Append ev (takes its contents: the caller must not clear it after success) with
 * its line number. 0, or -1 on out of memory (ev untouched). */
int dashi_event_list_push(dashi_event_list *l, dashi_event *ev, size_t line);

/* Read NDJSON from f (name for messages). Valid input events are appended to l;
 * the others go to reject (line, reason, text). Empty lines are skipped. */
dashi_err dashi_replay_read(FILE *f, const char *name, dashi_event_list *l, dashi_replay_stats *stats,
                            dashi_reject_fn reject, void *opaque, char *errstr, size_t errstr_size);

/* Sort l by (occurred_at, event_id) — stable, so equal keys keep file order. */
void dashi_replay_sort(dashi_event_list *l);

/* Run the sorted events through e, then advance to until (DASHI_TIME_NONE: no
 * advance). Events the engine refuses as bad input go to reject; duplicates are
 * counted. Back-end errors are retried a few times, then returned. */
dashi_err dashi_replay_run(dashi_engine *e, const dashi_event_list *l, const char *name, dashi_time until,
                           dashi_emit_fn emit, void *emit_opaque, dashi_reject_fn reject, void *reject_opaque,
                           dashi_replay_stats *stats, char *errstr, size_t errstr_size);

/* Progress of a run: events done so far (applied, duplicate or refused) of the
 * list, and the input bytes they came from (the sum of their sizes). */
typedef void (*dashi_replay_progress_fn)(void *opaque, size_t done, uint64_t bytes_done);

/* dashi_replay_run with a progress callback, called after every event and once
 * more after the final advance (progress may be NULL). */
dashi_err dashi_replay_run_progress(dashi_engine *e, const dashi_event_list *l, const char *name, dashi_time until,
                                    dashi_emit_fn emit, void *emit_opaque, dashi_reject_fn reject,
                                    void *reject_opaque, dashi_replay_progress_fn progress, void *progress_opaque,
                                    dashi_replay_stats *stats, char *errstr, size_t errstr_size);

/* Events per dashi_engine_process_batch() call of dashi_replay_run(_progress). */
#define DASHI_REPLAY_BATCH 256

/* dashi_replay_run_progress with batch events per dashi_engine_process_batch()
 * call (dashi_replay_run(_progress) use DASHI_REPLAY_BATCH); batch 0 or 1 runs
 * one dashi_engine_process() per event instead (the one-at-a-time path, which
 * gives the same outputs and state). */
dashi_err dashi_replay_run_batch(dashi_engine *e, const dashi_event_list *l, const char *name, dashi_time until,
                                 size_t batch, dashi_emit_fn emit, void *emit_opaque, dashi_reject_fn reject,
                                 void *reject_opaque, dashi_replay_progress_fn progress, void *progress_opaque,
                                 dashi_replay_stats *stats, char *errstr, size_t errstr_size);

/* The default rules file: $DASHI_RULES, else <source dir>/config/rules.json when it
 * exists, else ./config/rules.json. */
const char *dashi_default_rules_path(void);

#endif
