/* log.h — the process log: levels, a component tag, plain text or JSON lines, on stderr.
 *
 * One logger per process (like syslog): dashi_log_configure() sets the level and
 * format once at start-up (log.level, log.format), and every module writes with
 * dashi_log(level, component, fmt, ...). A line is formatted whole and written
 * with one fwrite, so lines from librdkafka's threads (routed here by
 * dashi_log_rdkafka) and the HTTP thread never interleave.
 *
 *   text: 2022-06-08T10:00:00.123Z warn pipeline: dead letter: order[3]@17: ...
 *   json: {"ts":"2022-06-08T10:00:00.123Z","level":"warn","component":"pipeline","msg":"dead letter: ..."}
 *
 * JSON strings are escaped by jansson. The logger writes only what callers give
 * it; callers never pass identity values (phone, email, ID numbers) in clear —
 * dashi holds only their keyed hashes past decoding, and messages name events,
 * orders and uids, never identity values (tests/test_ops.c greps a real run's log
 * for the clear values it fed).
 */
#ifndef DASHI_LOG_H
#define DASHI_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef enum { DASHI_LOG_ERROR, DASHI_LOG_WARN, DASHI_LOG_INFO, DASHI_LOG_DEBUG } dashi_log_level;

/* "error" | "warn" | "info" | "debug"; -1 when unknown. */
int dashi_log_level_from_name(const char *name);
const char *dashi_log_level_name(dashi_log_level level);

/* Set level and format ("text" | "json") from their names. DASHI_ERR_INVALID with
 * errstr on an unknown name (nothing changes then). Defaults: info, text. */
dashi_err dashi_log_configure(const char *level, const char *format, char *errstr, size_t errstr_size);
/* Where lines go (tests): NULL = stderr. The stream is borrowed. */
void dashi_log_set_stream(FILE *f);
/* Would a line of this level be written? */
bool dashi_log_enabled(dashi_log_level level);

void dashi_log(dashi_log_level level, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void dashi_logv(dashi_log_level level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* librdkafka's log callback (rd_kafka_conf_set_log_cb): syslog levels 0-3 error,
 * 4 warn, 5-6 info, 7 debug; component "kafka", the facility in the message. The
 * handle is typed void here so this header does not need librdkafka's. */
void dashi_log_rdkafka(const void *rk, int level, const char *fac, const char *buf);

#endif
