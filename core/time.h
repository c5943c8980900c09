/* time.h — instants as integer milliseconds, ISO-8601 text, and China Standard Time calendars.
 *
 * An instant is a dashi_time: milliseconds since 1970-01-01T00:00:00Z, signed 64-bit.
 * Nothing here reads a clock: the current time is always a parameter (core/ is
 * pure). Calendar rules of the program ("that day", "the month") are in CST, a
 * fixed UTC+08:00 without daylight saving, so day and month boundaries are plain
 * arithmetic on civil dates (Howard Hinnant's days-from-civil), not libc time zones.
 */
#ifndef DASHI_TIME_H
#define DASHI_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef int64_t dashi_time;

#define DASHI_TIME_NONE INT64_MIN /* an absent optional instant */
#define DASHI_MS_PER_SEC 1000LL
#define DASHI_MS_PER_MIN (60LL * DASHI_MS_PER_SEC)
#define DASHI_MS_PER_HOUR (60LL * DASHI_MS_PER_MIN)
#define DASHI_MS_PER_DAY (24LL * DASHI_MS_PER_HOUR)
#define DASHI_CST_OFFSET_MS (8LL * DASHI_MS_PER_HOUR)
#define DASHI_TIME_STRLEN 40 /* buffer size enough for any formatted instant */

/* Parse ISO-8601 "YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM|±HHMM|±HH)". An offset is
 * required (a bare local time is ambiguous). Fractions beyond milliseconds are
 * truncated. DASHI_ERR_PARSE with a message on anything else. */
dashi_err dashi_time_parse(const char *s, dashi_time *out, char *errstr, size_t errstr_size);

/* Format t in CST as "2022-06-07T10:00:00+08:00" (".123" before the offset when the
 * milliseconds are not zero) into buf of at least DASHI_TIME_STRLEN bytes. Returns buf. */
char *dashi_time_format(dashi_time t, char *buf);

/* Civil date in CST of t. */
void dashi_cst_civil(dashi_time t, int *year, int *month, int *day);

/* The instant of 00:00 CST of the given civil date (month may be out of 1..12:
 * it is normalized, so month 13 is January of the next year). */
dashi_time dashi_cst_from_civil(int year, int month, int day);

/* 00:00 CST of the day containing t, and of the next day. */
dashi_time dashi_cst_day_start(dashi_time t);
dashi_time dashi_cst_next_day(dashi_time t);

/* 00:00 CST on the first of the month containing t, and of the month n later (n may be negative). */
dashi_time dashi_cst_month_start(dashi_time t);
dashi_time dashi_cst_month_add(dashi_time t, int n);

/* "YYYY-MM" of the CST month containing t into buf (>= 8 bytes). Returns buf. */
char *dashi_cst_month_str(dashi_time t, char *buf);

#endif
