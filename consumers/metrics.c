/* metrics.c — the metrics registry and its Prometheus text rendering.
 *
 * A family keeps its series in an array in creation order (the render order); a
 * series is found by an FNV-1a hash of its label values, then compared value by
 * value. Families here have at most a few hundred series, so a linear scan over
 * hashes costs less than keeping an index. Counter, gauge and histogram values
 * are doubles (as in the format); histogram buckets hold per-bucket counts and
 * are made cumulative when rendered. One mutex (see metrics.h) guards it all.
 *
 * Numbers are written in the shortest form that reads back to the same double
 * ("%.15g", else "%.17g"), and infinities and NaN as the format spells them.
 */
#include "consumers/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    char **values;       /* owned, n_labels strings */
    uint64_t hash;
    double value;        /* counter, gauge */
    uint64_t *buckets;   /* owned, histogram: n_buckets + 1 (the last is +Inf), not cumulative */
    double sum;
    uint64_t count;
} series;

struct dashi_metric_family {
    dashi_metrics *m;    /* borrowed: the registry it belongs to */
    char *name, *help;   /* owned */
    dashi_metric_type type;
    char **labels;       /* owned */
    size_t n_labels;
    double *bounds;      /* owned, histogram upper bounds */
    size_t n_buckets;
    series *s;           /* owned */
    size_t n, cap;
};

struct dashi_metrics {
    pthread_mutex_t mu;
    dashi_metric_family **f; /* owned */
    size_t n, cap;
    size_t dropped;
};

dashi_metrics *dashi_metrics_new(char *errstr, size_t errstr_size) {
    dashi_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void series_free(const dashi_metric_family *f, series *s) {
    for (size_t i = 0; i < f->n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
}

static void family_free(dashi_metric_family *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        series_free(f, &f->s[i]);
    free(f->s);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void dashi_metrics_destroy(dashi_metrics *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->f[i]);
    free(m->f);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int name_ok(const char *s, int colon) {
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static uint64_t hash_values(size_t n, const char *const *values) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = values && values[i] ? values[i] : "";
        for (; *v; v++)
            h = (h ^ (unsigned char)*v) * 1099511628211ULL;
        h = (h ^ 0xffu) * 1099511628211ULL;
    }
    return h;
}

/* The series of values, created when absent; NULL on OOM or past the guard. Lock held. */
static series *find_series(dashi_metric_family *f, const char *const *values, int create) {
    uint64_t h = hash_values(f->n_labels, values);
    for (size_t i = 0; i < f->n; i++) {
        series *s = &f->s[i];
        if (s->hash != h)
            continue;
        size_t k;
        for (k = 0; k < f->n_labels; k++)
            if (strcmp(s->values[k], values && values[k] ? values[k] : "") != 0)
                break;
        if (k == f->n_labels)
            return s;
    }
    if (!create)
        return NULL;
    if (f->n >= DASHI_METRICS_MAX_SERIES) {
        f->m->dropped++;
        return NULL;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        series *ns = realloc(f->s, cap * sizeof(*ns));
        if (!ns)
            return NULL;
        f->s = ns;
        f->cap = cap;
    }
    series s;
    memset(&s, 0, sizeof(s));
    s.hash = h;
    s.values = calloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
    if (f->type == DASHI_METRIC_HISTOGRAM)
        s.buckets = calloc(f->n_buckets + 1, sizeof(uint64_t));
    int bad = !s.values || (f->type == DASHI_METRIC_HISTOGRAM && !s.buckets);
    for (size_t k = 0; k < f->n_labels && !bad; k++)
        bad = !(s.values[k] = strdup(values && values[k] ? values[k] : ""));
    if (bad) {
        series_free(f, &s);
        return NULL;
    }
    f->s[f->n++] = s;
    return &f->s[f->n - 1];
}

dashi_metric_family *dashi_metrics_define(dashi_metrics *m, const char *name, dashi_metric_type type, const char *help,
                                          const char *const *labels, const double *buckets, size_t n_buckets,
                                          char *errstr, size_t errstr_size) {
    dashi_metric_family *f = NULL;
    if (!m) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "no registry");
        return NULL;
    }
    if (!name_ok(name, 1)) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "metric name '%s' is not valid", name ? name : "(null)");
        return NULL;
    }
    size_t n_labels = 0;
    for (; labels && labels[n_labels]; n_labels++)
        if (!name_ok(labels[n_labels], 0) || strcmp(labels[n_labels], "le") == 0 ||
            strncmp(labels[n_labels], "__", 2) == 0) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: label name '%s' is not valid", name,
                       labels[n_labels]);
            return NULL;
        }
    if (type == DASHI_METRIC_HISTOGRAM) {
        for (size_t i = 0; i < n_buckets; i++)
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
                dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: buckets must be finite and strictly ascending",
                           name);
                return NULL;
            }
    } else {
        n_buckets = 0;
    }
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->f[i]->name, name) == 0) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "metric %s defined twice", name);
            goto fail;
        }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        dashi_metric_family **nf = realloc(m->f, cap * sizeof(*nf));
        if (!nf)
            goto oom;
        m->f = nf;
        m->cap = cap;
    }
    if (!(f = calloc(1, sizeof(*f))))
        goto oom;
    f->m = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->labels = calloc(n_labels ? n_labels : 1, sizeof(char *));
    f->n_labels = n_labels;
    f->bounds = calloc(n_buckets ? n_buckets : 1, sizeof(double));
    f->n_buckets = n_buckets;
    if (!f->name || !f->help || !f->labels || !f->bounds)
        goto oom;
    for (size_t i = 0; i < n_labels; i++)
        if (!(f->labels[i] = strdup(labels[i])))
            goto oom;
    if (n_buckets)
        memcpy(f->bounds, buckets, n_buckets * sizeof(double));
    if (n_labels == 0 && !find_series(f, NULL, 1))
        goto oom;
    m->f[m->n++] = f;
    pthread_mutex_unlock(&m->mu);
    return f;
oom:
    dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
fail:
    pthread_mutex_unlock(&m->mu);
    family_free(f);
    return NULL;
}

void dashi_metrics_add(dashi_metric_family *f, const char *const *values, double delta) {
    if (!f || f->type == DASHI_METRIC_HISTOGRAM || (f->type == DASHI_METRIC_COUNTER && !(delta >= 0)))
        return;
    pthread_mutex_lock(&f->m->mu);
    series *s = find_series(f, values, 1);
    if (s)
        s->value += delta;
    pthread_mutex_unlock(&f->m->mu);
}

void dashi_metrics_set(dashi_metric_family *f, const char *const *values, double v) {
    if (!f || f->type != DASHI_METRIC_GAUGE)
        return;
    pthread_mutex_lock(&f->m->mu);
    series *s = find_series(f, values, 1);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&f->m->mu);
}

void dashi_metrics_observe(dashi_metric_family *f, const char *const *values, double v) {
    if (!f || f->type != DASHI_METRIC_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&f->m->mu);
    series *s = find_series(f, values, 1);
    if (s) {
        size_t b = 0;
        while (b < f->n_buckets && v > f->bounds[b]) /* le: upper bounds are inclusive */
            b++;
        s->buckets[b]++;
        s->sum += v;
        s->count++;
    }
    pthread_mutex_unlock(&f->m->mu);
}

void dashi_metrics_reset(dashi_metric_family *f) {
    if (!f)
        return;
    pthread_mutex_lock(&f->m->mu);
    if (f->n_labels == 0) {
        series *s = &f->s[0];
        s->value = s->sum = 0;
        s->count = 0;
        if (s->buckets)
            memset(s->buckets, 0, (f->n_buckets + 1) * sizeof(uint64_t));
    } else {
        for (size_t i = 0; i < f->n; i++)
            series_free(f, &f->s[i]);
        f->n = 0;
    }
    pthread_mutex_unlock(&f->m->mu);
}

double dashi_metrics_value(dashi_metric_family *f, const char *const *values) {
    if (!f)
        return NAN;
    pthread_mutex_lock(&f->m->mu);
    series *s = find_series(f, values, 0);
    double v = !s ? NAN : f->type == DASHI_METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->m->mu);
    return v;
}

size_t dashi_metrics_dropped(dashi_metrics *m) {
    if (!m)
        return 0;
    pthread_mutex_lock(&m->mu);
    size_t n = m->dropped;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---------------------------------------------------------------- rendering */

size_t dashi_metrics_escape_label(const char *in, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = in ? in : ""; *p; p++) {
        char esc = *p == '\\' ? '\\' : *p == '"' ? '"' : *p == '\n' ? 'n' : 0;
        char pair[2] = {'\\', esc};
        const char *src = esc ? pair : p;
        for (size_t k = 0; k < (esc ? 2u : 1u); k++, n++)
            if (size && n < size - 1)
                out[n] = src[k];
    }
    if (size)
        out[n < size - 1 ? n : size - 1] = '\0';
    return n;
}

size_t dashi_metrics_format_value(double v, char *out, size_t size) {
    int n;
    if (isnan(v))
        n = snprintf(out, size, "NaN");
    else if (isinf(v))
        n = snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    else {
        char buf[40];
        snprintf(buf, sizeof(buf), "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof(buf), "%.17g", v);
        n = snprintf(out, size, "%s", buf);
    }
    return n < 0 ? 0 : (size_t)n;
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) {
    put(b, s, strlen(s));
}

static void put_escaped(buf *b, const char *s, int help) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            puts_(b, "\\\\");
        else if (*p == '\n')
            puts_(b, "\\n");
        else if (*p == '"' && !help)
            puts_(b, "\\\"");
        else
            put(b, p, 1);
    }
}

static void put_value(buf *b, double v) {
    char num[48];
    dashi_metrics_format_value(v, num, sizeof(num));
    puts_(b, num);
}

/* name{labels[,le="x"]} value\n */
static void put_sample(buf *b, const dashi_metric_family *f, const series *s, const char *suffix, const char *le,
                       double v) {
    puts_(b, f->name);
    puts_(b, suffix);
    if (f->n_labels || le) {
        puts_(b, "{");
        for (size_t k = 0; k < f->n_labels; k++) {
            if (k)
                puts_(b, ",");
            puts_(b, f->labels[k]);
            puts_(b, "=\"");
            put_escaped(b, s->values[k], 0);
            puts_(b, "\"");
        }
        if (le) {
            puts_(b, f->n_labels ? ",le=\"" : "le=\"");
            puts_(b, le);
            puts_(b, "\"");
        }
        puts_(b, "}");
    }
    puts_(b, " ");
    put_value(b, v);
    puts_(b, "\n");
}

char *dashi_metrics_render(dashi_metrics *m, size_t *len) {
    static const char *type_names[] = {"counter", "gauge", "histogram"};
    buf b = {0};
    puts_(&b, ""); /* an empty registry renders as "" */
    if (m)
        pthread_mutex_lock(&m->mu);
    for (size_t i = 0; m && i < m->n; i++) {
        const dashi_metric_family *f = m->f[i];
        puts_(&b, "# HELP ");
        puts_(&b, f->name);
        puts_(&b, " ");
        put_escaped(&b, f->help, 1);
        puts_(&b, "\n# TYPE ");
        puts_(&b, f->name);
        puts_(&b, " ");
        puts_(&b, type_names[f->type]);
        puts_(&b, "\n");
        for (size_t j = 0; j < f->n; j++) {
            const series *s = &f->s[j];
            if (f->type != DASHI_METRIC_HISTOGRAM) {
                put_sample(&b, f, s, "", NULL, s->value);
                continue;
            }
            uint64_t cum = 0;
            char le[48];
            for (size_t k = 0; k <= f->n_buckets; k++) {
                cum += s->buckets[k];
                if (k < f->n_buckets)
                    dashi_metrics_format_value(f->bounds[k], le, sizeof(le));
                else
                    snprintf(le, sizeof(le), "+Inf");
                put_sample(&b, f, s, "_bucket", le, (double)cum);
            }
            put_sample(&b, f, s, "_sum", NULL, s->sum);
            put_sample(&b, f, s, "_count", NULL, (double)s->count);
        }
    }
    if (m)
        pthread_mutex_unlock(&m->mu);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
