/* time.c — ISO-8601 parsing and formatting, CST civil calendar arithmetic.
 *
 * days_from_civil / civil_from_days are the proleptic Gregorian conversions of
 * Howard Hinnant's "chrono-compatible low-level date algorithms": exact for every
 * year representable here and free of libc time-zone state, so the same input
 * gives the same instant on every machine.
 */
#include "core/time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    const int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int days_in_month(int y, int m) {
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Read exactly n digits at *p into *out; advance *p. */
static int read_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

dashi_err dashi_time_parse(const char *s, dashi_time *out, char *errstr, size_t errstr_size) {
    const char *p = s;
    int Y, M, D, h, mi, sec = 0, ms = 0;
    int64_t off_ms = 0;

    if (!s)
        return dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "timestamp missing");
    if (read_digits(&p, 4, &Y) || *p++ != '-' || read_digits(&p, 2, &M) || *p++ != '-' ||
        read_digits(&p, 2, &D))
        goto bad;
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi))
        goto bad;
    if (*p == ':') {
        p++;
        if (read_digits(&p, 2, &sec))
            goto bad;
        if (*p == '.' || *p == ',') {
            p++;
            int ndig = 0;
            if (!isdigit((unsigned char)*p))
                goto bad;
            while (isdigit((unsigned char)*p)) {
                if (ndig < 3)
                    ms = ms * 10 + (*p - '0');
                ndig++;
                p++;
            }
            for (; ndig < 3; ndig++)
                ms *= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (read_digits(&p, 2, &oh))
            goto bad;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p) && read_digits(&p, 2, &om))
            goto bad;
        if (oh > 23 || om > 59)
            goto bad;
        off_ms = sign * ((int64_t)oh * DASHI_MS_PER_HOUR + (int64_t)om * DASHI_MS_PER_MIN);
    } else {
        return dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size,
                          "timestamp '%.40s' has no offset (Z or +08:00)", s);
    }
    if (*p != '\0')
        goto bad;
    if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || sec > 60)
        goto bad;
    *out = days_from_civil(Y, M, D) * DASHI_MS_PER_DAY + h * DASHI_MS_PER_HOUR +
           mi * DASHI_MS_PER_MIN + sec * DASHI_MS_PER_SEC + ms - off_ms;
    return DASHI_OK;
bad:
    return dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size,
                      "'%.40s' is not an ISO-8601 timestamp with offset", s);
}

void dashi_cst_civil(dashi_time t, int *year, int *month, int *day) {
    civil_from_days(floor_div(t + DASHI_CST_OFFSET_MS, DASHI_MS_PER_DAY), year, month, day);
}

/* Write v (0 <= v < 10^width) as exactly width decimal digits; returns the end. */
static char *put_digits(char *p, int v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

char *dashi_time_format(dashi_time t, char *buf) {
    int y, m, d;
    int64_t local = t + DASHI_CST_OFFSET_MS;
    int64_t days = floor_div(local, DASHI_MS_PER_DAY);
    int64_t rem = local - days * DASHI_MS_PER_DAY;
    civil_from_days(days, &y, &m, &d);
    int hh = (int)(rem / DASHI_MS_PER_HOUR), mi = (int)(rem / DASHI_MS_PER_MIN % 60),
        ss = (int)(rem / DASHI_MS_PER_SEC % 60), ms = (int)(rem % 1000);
    if (y < 0 || y > 9999) { /* the digits below are for four-digit years; printf writes the others */
        if (ms)
            snprintf(buf, DASHI_TIME_STRLEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+08:00", y, m, d, hh, mi,
                     ss, ms);
        else
            snprintf(buf, DASHI_TIME_STRLEN, "%04d-%02d-%02dT%02d:%02d:%02d+08:00", y, m, d, hh, mi, ss);
        return buf;
    }
    /* what the printf above writes, digit by digit (it was most of the cost of writing an event) */
    char *p = buf;
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, hh, 2);
    *p++ = ':';
    p = put_digits(p, mi, 2);
    *p++ = ':';
    p = put_digits(p, ss, 2);
    if (ms) {
        *p++ = '.';
        p = put_digits(p, ms, 3);
    }
    memcpy(p, "+08:00", 7);
    return buf;
}

dashi_time dashi_cst_from_civil(int year, int month, int day) {
    int64_t y = year + (int64_t)floor_div(month - 1, 12);
    int64_t m = month - 1 - floor_div(month - 1, 12) * 12 + 1;
    return days_from_civil(y, m, 1) * DASHI_MS_PER_DAY + (int64_t)(day - 1) * DASHI_MS_PER_DAY -
           DASHI_CST_OFFSET_MS;
}

dashi_time dashi_cst_day_start(dashi_time t) {
    return floor_div(t + DASHI_CST_OFFSET_MS, DASHI_MS_PER_DAY) * DASHI_MS_PER_DAY -
           DASHI_CST_OFFSET_MS;
}

dashi_time dashi_cst_next_day(dashi_time t) {
    return dashi_cst_day_start(t) + DASHI_MS_PER_DAY;
}

dashi_time dashi_cst_month_start(dashi_time t) {
    int y, m, d;
    dashi_cst_civil(t, &y, &m, &d);
    return dashi_cst_from_civil(y, m, 1);
}

dashi_time dashi_cst_month_add(dashi_time t, int n) {
    int y, m, d;
    dashi_cst_civil(t, &y, &m, &d);
    return dashi_cst_from_civil(y, m + n, 1);
}

char *dashi_cst_month_str(dashi_time t, char *buf) {
    int y, m, d;
    dashi_cst_civil(t, &y, &m, &d);
    char *p = put_digits(buf, (y % 10000 + 10000) % 10000, 4); /* what "%04u-%02u" writes of them */
    *p++ = '-';
    p = put_digits(p, m % 100, 2);
    *p = '\0';
    return buf;
}
