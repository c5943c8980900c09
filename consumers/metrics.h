/* metrics.h — a small metrics registry (counters, gauges, histograms with labels) rendered in the Prometheus text format.
 *
 * The registry knows nothing of dashi, sockets or clocks: a family is defined once
 * (name, type, help, label names, histogram buckets), updates name the series by
 * its label values, and dashi_metrics_render() writes the text exposition format
 * 0.0.4 (HELP/TYPE lines, escaped label values, histograms as cumulative
 * _bucket{le=...} series plus _sum and _count). Thread safety: one mutex per
 * registry guards every update and the render, so the processor thread updates
 * while the HTTP server thread renders (an update is a hash and a few compares
 * under an uncontended lock). Every function is NULL-safe on the registry and the
 * family, so code with metrics turned off passes NULL and calls the same lines.
 */
#ifndef DASHI_METRICS_H
#define DASHI_METRICS_H

#include <stddef.h>

#include "core/error.h"

typedef enum { DASHI_METRIC_COUNTER, DASHI_METRIC_GAUGE, DASHI_METRIC_HISTOGRAM } dashi_metric_type;

typedef struct dashi_metrics dashi_metrics;
typedef struct dashi_metric_family dashi_metric_family;

/* Series per family above which new label sets are dropped (their updates are
 * counted in dashi_metrics_dropped()): a guard against unbounded label values. */
#define DASHI_METRICS_MAX_SERIES 4096

dashi_metrics *dashi_metrics_new(char *errstr, size_t errstr_size);
void dashi_metrics_destroy(dashi_metrics *m); /* NULL-safe; families go with it */

/* Define a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels (NULL-terminated
 * array of names, may be NULL; copied) [a-zA-Z_][a-zA-Z0-9_]* and not "le";
 * buckets (histograms only; copied) strictly ascending finite upper bounds, +Inf
 * is implied. A family without labels has its one series from the start (0).
 * Returns the family (owned by m), or NULL with errstr (bad name, duplicate, OOM). */
dashi_metric_family *dashi_metrics_define(dashi_metrics *m, const char *name, dashi_metric_type type, const char *help,
                                          const char *const *labels /* copied */, const double *buckets /* copied */,
                                          size_t n_buckets, char *errstr, size_t errstr_size);

/* Updates. values: one string per label name (copied on first use; NULL counts as
 * ""); may be NULL for a family without labels. A call of the wrong kind for the
 * family (add on a histogram, ...) is ignored. */
void dashi_metrics_add(dashi_metric_family *f, const char *const *values, double delta); /* counter (delta >= 0) or gauge */
void dashi_metrics_set(dashi_metric_family *f, const char *const *values, double v);     /* gauge */
void dashi_metrics_observe(dashi_metric_family *f, const char *const *values, double v); /* histogram */
/* Forget every series of a labelled family (e.g. the lag of partitions no longer
 * assigned), or zero the one series of an unlabelled one. */
void dashi_metrics_reset(dashi_metric_family *f);

/* Current value of a counter or gauge series (NAN when it does not exist); for a
 * histogram its count. For tests and for the HTTP layer's own decisions. */
double dashi_metrics_value(dashi_metric_family *f, const char *const *values);

/* Updates dropped by the series guard so far. */
size_t dashi_metrics_dropped(dashi_metrics *m);

/* The whole registry as Prometheus text (version 0.0.4), families in definition
 * order, series in creation order. malloc'ed, NUL-terminated; *len (may be NULL)
 * gets its length. NULL on out of memory. */
char *dashi_metrics_render(dashi_metrics *m, size_t *len);

/* Helpers exposed for tests: the escaped forms of the format. out gets at most
 * size-1 bytes and a NUL; returns the full length the escape needs. */
size_t dashi_metrics_escape_label(const char *in, char *out, size_t size); /* \ " newline */
size_t dashi_metrics_format_value(double v, char *out, size_t size);       /* shortest exact, +Inf, -Inf, NaN */

#endif
