/* progress.c — the progress line of long runs: a pure formatter and a rate-limited terminal display.
 *
 * Design. dashi_progress_format builds the whole line from its arguments alone
 * (thousands separators, a bar of DASHI_PROGRESS_BAR cells, the share done to a
 * tenth of a percent, the event rate, the ETA as M:SS or H:MM:SS), so its tests
 * need no terminal and no clock. The display reads CLOCK_MONOTONIC, redraws when
 * the interval has passed, and keeps the line on one row with a carriage return
 * and an erase-to-end-of-line; finish draws the last state and a newline, so the
 * final figures stay on screen. The line never carries event content.
 */
#include "app/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct dashi_progress {
    FILE *out;           /* borrowed */
    uint64_t bytes_total;
    double t0, last;     /* start and last redraw, monotonic seconds */
    bool drawn;          /* a line is on screen without its newline */
};

/* "12,345,678" of v into buf (at least 27 bytes). */
static void thousands(char *buf, size_t size, uint64_t v) {
    char digits[24];
    size_t n = (size_t)snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), k = 0;
    for (size_t i = 0; i < n && k + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && k + 2 < size)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
}

/* "0:07", "12:34" or "1:02:03" of a number of seconds. */
static void duration(char *buf, size_t size, double seconds) {
    unsigned long long s = seconds > 0 ? (unsigned long long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buf, size, "%llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%llu:%02llu", s / 60, s % 60);
}

size_t dashi_progress_format(char *buf, size_t size, uint64_t count, uint64_t bytes_done, uint64_t bytes_total,
                             double elapsed) {
    char bar[DASHI_PROGRESS_BAR + 1], share[16] = "", cnt[32], rate[40], eta[32];
    double frac = 0;
    int n;
    if (bytes_total > 0) {
        if (bytes_done > bytes_total)
            bytes_done = bytes_total;
        frac = (double)bytes_done / (double)bytes_total;
    }
    size_t full = (size_t)(frac * DASHI_PROGRESS_BAR);
    for (size_t i = 0; i < DASHI_PROGRESS_BAR; i++)
        bar[i] = i < full ? '#' : ' ';
    bar[DASHI_PROGRESS_BAR] = '\0';
    if (bytes_total > 0)
        snprintf(share, sizeof share, "%5.1f%%  ", frac * 100.0);
    thousands(cnt, sizeof cnt, count);
    if (elapsed > 0) {
        char r[28];
        thousands(r, sizeof r, (uint64_t)((double)count / elapsed + 0.5));
        snprintf(rate, sizeof rate, "%s events/s", r);
    } else {
        snprintf(rate, sizeof rate, "- events/s");
    }
    if (bytes_total > 0 && bytes_done >= bytes_total) {
        snprintf(eta, sizeof eta, "done in ");
        duration(eta + strlen(eta), sizeof eta - strlen(eta), elapsed);
    } else if (bytes_total > 0 && bytes_done > 0 && elapsed > 0) {
        snprintf(eta, sizeof eta, "ETA ");
        duration(eta + 4, sizeof eta - 4,
                 elapsed * (double)(bytes_total - bytes_done) / (double)bytes_done);
    } else {
        snprintf(eta, sizeof eta, "ETA --");
    }
    if (bytes_total > 0)
        n = snprintf(buf, size, "[%s] %s%s events  %s  %s", bar, share, cnt, rate, eta);
    else
        n = snprintf(buf, size, "%s events  %s  %s", cnt, rate, eta);
    return n < 0 ? 0 : (size_t)n;
}

bool dashi_progress_wanted(FILE *f, bool quiet) {
    return !quiet && f && isatty(fileno(f));
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

dashi_progress *dashi_progress_new(FILE *out, uint64_t bytes_total) {
    dashi_progress *p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    p->out = out;
    p->bytes_total = bytes_total;
    p->t0 = now_s();
    p->last = p->t0;
out:
    return p;
}

static void draw(dashi_progress *p, uint64_t count, uint64_t bytes_done, double t) {
    char line[256];
    dashi_progress_format(line, sizeof line, count, bytes_done, p->bytes_total, t - p->t0);
    fprintf(p->out, "\r%s\033[K", line);
    fflush(p->out);
    p->drawn = true;
    p->last = t;
}

void dashi_progress_update(dashi_progress *p, uint64_t count, uint64_t bytes_done) {
    double t;
    if (!p)
        return;
    t = now_s();
    if ((t - p->last) * 1000.0 >= DASHI_PROGRESS_INTERVAL_MS)
        draw(p, count, bytes_done, t);
}

void dashi_progress_finish(dashi_progress *p, uint64_t count, uint64_t bytes_done) {
    if (!p)
        return;
    draw(p, count, bytes_done, now_s());
    fputc('\n', p->out);
    fflush(p->out);
    p->drawn = false;
}

void dashi_progress_destroy(dashi_progress *p) {
    if (!p)
        return;
    if (p->drawn) {
        fputc('\n', p->out);
        fflush(p->out);
    }
    free(p);
}
