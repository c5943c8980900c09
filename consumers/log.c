/* log.c — the process logger: level filter, text or JSON line, one write per line.
 *
 * Level and format are atomics read on every call, so configure() may run while
 * librdkafka's threads log. A line is built in a stack buffer (long messages are
 * cut at 4 KiB with "..." rather than allocated) and written with one fwrite
 * under the stream's own lock. JSON lines are built by jansson (json_dumps of
 * {"ts","level","component","msg"}), so any byte of a message is escaped; text
 * that is not UTF-8 has its bad bytes replaced by '?' first (jansson refuses it).
 */
#include "consumers/log.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define LINE_MAX_LEN 4096

static atomic_int cur_level = DASHI_LOG_INFO;
static atomic_int cur_json = 0;
static FILE *_Atomic cur_stream = NULL;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int dashi_log_level_from_name(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *dashi_log_level_name(dashi_log_level level) {
    return level >= DASHI_LOG_ERROR && level <= DASHI_LOG_DEBUG ? level_names[level] : "info";
}

dashi_err dashi_log_configure(const char *level, const char *format, char *errstr, size_t errstr_size) {
    int lv = level ? dashi_log_level_from_name(level) : atomic_load(&cur_level);
    if (lv < 0)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "log.level: '%s' is not error, warn, info or debug",
                          level);
    if (format && strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "log.format: '%s' is not text or json", format);
    atomic_store(&cur_level, lv);
    if (format)
        atomic_store(&cur_json, strcmp(format, "json") == 0);
    return DASHI_OK;
}

void dashi_log_set_stream(FILE *f) {
    atomic_store(&cur_stream, f);
}

bool dashi_log_enabled(dashi_log_level level) {
    return (int)level <= atomic_load(&cur_level);
}

/* Replace bytes that are not UTF-8 by '?' in place (jansson accepts only UTF-8). */
static void utf8_fix(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        size_t k = 1;
        for (; n && k < n; k++)
            if ((p[k] & 0xC0) != 0x80)
                break;
        if (n == 0 || k < n) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void timestamp(char *out, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

void dashi_logv(dashi_log_level level, const char *component, const char *fmt, va_list ap) {
    if (!dashi_log_enabled(level))
        return;
    char msg[LINE_MAX_LEN], ts[40], line[LINE_MAX_LEN + 256];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n >= (int)sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    while (n > 0 && strlen(msg) > 0 && msg[strlen(msg) - 1] == '\n')
        msg[strlen(msg) - 1] = '\0';
    timestamp(ts, sizeof(ts));
    const char *lv = dashi_log_level_name(level), *comp = component ? component : "dashi";
    FILE *out = atomic_load(&cur_stream);
    if (!out)
        out = stderr;
    if (atomic_load(&cur_json)) {
        utf8_fix(msg);
        json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "ts", ts, "level", lv, "component", comp, "msg", msg);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text) {
            size_t len = strlen(text);
            text[len] = '\n'; /* json_dumps' NUL becomes the newline: one write */
            fwrite(text, 1, len + 1, out);
        }
        free(text);
        json_decref(j);
    } else {
        int len = snprintf(line, sizeof(line), "%s %s %s: %s\n", ts, lv, comp, msg);
        if (len >= (int)sizeof(line)) {
            len = (int)sizeof(line) - 1;
            line[len - 1] = '\n';
        }
        if (len > 0)
            fwrite(line, 1, (size_t)len, out);
    }
    fflush(out);
}

void dashi_log(dashi_log_level level, const char *component, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dashi_logv(level, component, fmt, ap);
    va_end(ap);
}

void dashi_log_rdkafka(const void *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    dashi_log_level lv = level <= 3 ? DASHI_LOG_ERROR : level == 4 ? DASHI_LOG_WARN : level <= 6 ? DASHI_LOG_INFO
                                                                                                   : DASHI_LOG_DEBUG;
    dashi_log(lv, "kafka", "%s: %s", fac ? fac : "", buf ? buf : "");
}
