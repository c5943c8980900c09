/* progress.h — a one-line progress display on a terminal: count, rate, share done and ETA.
 *
 * Long offline runs (`dashi replay`) show on stderr where they are, refreshed at
 * most every DASHI_PROGRESS_INTERVAL_MS, and nothing at all when stderr is not a
 * terminal or the user asked for quiet (dashi_progress_wanted). The text of the
 * line comes from one pure function, dashi_progress_format (counts, bytes and
 * elapsed seconds in, text out: no clock, no I/O), so it is unit-tested on its
 * own; the display object only reads the monotonic clock, decides when to redraw
 * and writes "\r<line>\033[K" (carriage return, text, erase to end of line). The
 * ETA is the time the remaining bytes of the input take at the byte rate seen so
 * far; without a known input size (stdin) there is no share and no ETA.
 */
#ifndef DASHI_PROGRESS_H
#define DASHI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DASHI_PROGRESS_INTERVAL_MS 100 /* at most ~10 redraws a second */
#define DASHI_PROGRESS_BAR 20          /* cells of the bar */

/* The progress line, e.g.
 *   "[#########           ]  45.0%  12,345 events  17,890 events/s  ETA 0:12"
 * count: items done (events); bytes_done / bytes_total: input consumed and its
 * size (bytes_total 0: unknown — no bar share, no ETA, "ETA --"); elapsed: seconds
 * since the start (<= 0: rate shown as "-"). Writes at most size bytes with a NUL
 * (buf may be NULL when size is 0); returns the length the full line has, like
 * snprintf. Bytes beyond the total count as the total. */
size_t dashi_progress_format(char *buf, size_t size, uint64_t count, uint64_t bytes_done, uint64_t bytes_total,
                             double elapsed);

/* Should a progress line be drawn on f? Not when quiet, and only on a terminal. */
bool dashi_progress_wanted(FILE *f, bool quiet);

typedef struct dashi_progress dashi_progress;

/* A display on out (borrowed; normally stderr) for an input of bytes_total bytes (0:
 * unknown). Starts the clock. NULL on out of memory. */
dashi_progress *dashi_progress_new(FILE *out, uint64_t bytes_total);
/* Redraw when DASHI_PROGRESS_INTERVAL_MS have passed since the last redraw. NULL-safe. */
void dashi_progress_update(dashi_progress *p, uint64_t count, uint64_t bytes_done);
/* Draw the final line and end it with a newline. NULL-safe. */
void dashi_progress_finish(dashi_progress *p, uint64_t count, uint64_t bytes_done);
/* Free p (after finish, or to drop it; a line left drawn is ended first). NULL-safe. */
void dashi_progress_destroy(dashi_progress *p);

#endif
