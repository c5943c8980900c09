/* test_time.c — ISO-8601 parsing/formatting and the CST calendar (core/time.c).
 *
 * Expected instants are computed independently: the Unix time of each literal was
 * taken from `date -d ... +%s` when the test was written.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/time.h"

static dashi_time T(const char *s) {
    dashi_time t = 0;
    char err[128];
    cr_assert_eq(dashi_time_parse(s, &t, err, sizeof(err)), DASHI_OK, "%s: %s", s, err);
    return t;
}

Test(time, parses_offsets_and_fractions) {
    /* date -d 2022-06-07T10:00:00+08:00 +%s → 1654567200 */
    cr_assert_eq(T("2022-06-07T10:00:00+08:00"), 1654567200000LL);
    cr_assert_eq(T("2022-06-07T02:00:00Z"), 1654567200000LL);
    cr_assert_eq(T("2022-06-07T02:00:00+00:00"), 1654567200000LL);
    cr_assert_eq(T("2022-06-06T21:00:00-0500"), 1654567200000LL);
    cr_assert_eq(T("2022-06-07T10:00+08"), 1654567200000LL);
    cr_assert_eq(T("2022-06-07T10:00:00.123+08:00"), 1654567200123LL);
    cr_assert_eq(T("2022-06-07T10:00:00.123456+08:00"), 1654567200123LL);
    cr_assert_eq(T("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(T("1969-12-31T23:59:59Z"), -1000);
    cr_assert_eq(T("2024-02-29T00:00:00Z"), 1709164800000LL);
}

Test(time, rejects_bad_text) {
    const char *bad[] = {"", "2022-06-07", "2022-06-07T10:00:00", "2022-13-01T00:00:00Z", "2022-02-29T00:00:00Z",
                         "2022-06-07T24:00:00Z", "2022-06-07T10:00:00+8", "2022-06-07T10:00:00Zjunk",
                         "2022-06-07T10:60:00Z", "x022-06-07T10:00:00Z", "2022-06-07T10:00:00.+08:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dashi_time t;
        char err[128] = "";
        cr_assert_neq(dashi_time_parse(bad[i], &t, err, sizeof(err)), DASHI_OK, "accepted '%s'", bad[i]);
        cr_assert(strlen(err) > 0, "no message for '%s'", bad[i]);
    }
    dashi_time t;
    cr_assert_neq(dashi_time_parse(NULL, &t, NULL, 0), DASHI_OK);
}

Test(time, formats_in_cst) {
    char buf[DASHI_TIME_STRLEN];
    cr_assert_str_eq(dashi_time_format(1654567200000LL, buf), "2022-06-07T10:00:00+08:00");
    cr_assert_str_eq(dashi_time_format(1654567200123LL, buf), "2022-06-07T10:00:00.123+08:00");
    cr_assert_str_eq(dashi_time_format(-1000, buf), "1970-01-01T07:59:59+08:00");
    /* round trip over a range of instants, including odd milliseconds */
    for (dashi_time t = -86400000LL * 400; t < 86400000LL * 20000; t += 86400000LL * 7 + 3601007) {
        dashi_time back;
        cr_assert_eq(dashi_time_parse(dashi_time_format(t, buf), &back, NULL, 0), DASHI_OK);
        cr_assert_eq(back, t, "%s", buf);
    }
}

Test(time, formats_years_outside_four_digits_as_printf_does) {
    char buf[DASHI_TIME_STRLEN];
    dashi_time last = T("9999-12-31T23:59:59.999+08:00"), first = T("0000-01-01T00:00:00+08:00");
    cr_assert_str_eq(dashi_time_format(last, buf), "9999-12-31T23:59:59.999+08:00");
    cr_assert_str_eq(dashi_time_format(last + 1, buf), "10000-01-01T00:00:00+08:00");
    cr_assert_str_eq(dashi_time_format(first, buf), "0000-01-01T00:00:00+08:00");
    cr_assert_str_eq(dashi_time_format(first - 1001, buf), "-001-12-31T23:59:58.999+08:00");
}

Test(time, cst_day_boundaries) {
    /* 2022-06-07 23:59:59 CST is still June 7; 00:00:00 is June 8 */
    dashi_time before = T("2022-06-07T23:59:59+08:00"), at = T("2022-06-08T00:00:00+08:00");
    cr_assert_eq(dashi_cst_day_start(before), T("2022-06-07T00:00:00+08:00"));
    cr_assert_eq(dashi_cst_next_day(before), at);
    cr_assert_eq(dashi_cst_day_start(at), at);
    cr_assert_eq(dashi_cst_next_day(at), T("2022-06-09T00:00:00+08:00"));
    /* 16:00 UTC is already the next CST day */
    cr_assert_eq(dashi_cst_day_start(T("2022-06-07T16:00:00Z")), at);
    cr_assert_eq(dashi_cst_day_start(T("2022-06-07T15:59:59.999Z")), T("2022-06-07T00:00:00+08:00"));
}

Test(time, cst_months) {
    char buf[8];
    dashi_time t = T("2022-06-30T23:59:59+08:00");
    cr_assert_eq(dashi_cst_month_start(t), T("2022-06-01T00:00:00+08:00"));
    cr_assert_eq(dashi_cst_month_add(t, 1), T("2022-07-01T00:00:00+08:00"));
    cr_assert_eq(dashi_cst_month_add(t, -3), T("2022-03-01T00:00:00+08:00"));
    cr_assert_eq(dashi_cst_month_add(T("2022-12-15T00:00:00+08:00"), 1), T("2023-01-01T00:00:00+08:00"));
    cr_assert_eq(dashi_cst_month_add(T("2022-01-15T00:00:00+08:00"), -1), T("2021-12-01T00:00:00+08:00"));
    cr_assert_str_eq(dashi_cst_month_str(T("2022-06-30T16:00:00Z"), buf), "2022-07");
    cr_assert_str_eq(dashi_cst_month_str(T("2022-06-30T15:59:59Z"), buf), "2022-06");
    int y, m, d;
    dashi_cst_civil(T("2024-02-29T12:00:00+08:00"), &y, &m, &d);
    cr_assert(y == 2024 && m == 2 && d == 29);
    cr_assert_eq(dashi_cst_from_civil(2022, 13, 1), T("2023-01-01T00:00:00+08:00"));
    cr_assert_eq(dashi_cst_from_civil(2022, 0, 1), T("2021-12-01T00:00:00+08:00"));
}
