/* test_log.c — the process log: level filter, text and JSON lines (escaping by jansson), librdkafka's levels.
 *
 * Each test sends the log to a temporary file (dashi_log_set_stream) and reads it
 * back; JSON lines are parsed with jansson, so escaping is checked by a parser,
 * not by comparing strings.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumers/log.h"

static FILE *f;

static void setup(void) {
    f = tmpfile();
    cr_assert(f);
    dashi_log_set_stream(f);
    cr_assert_eq(dashi_log_configure("info", "text", NULL, 0), DASHI_OK);
}

static void teardown(void) {
    dashi_log_set_stream(NULL);
    fclose(f);
}

/* Everything logged so far (malloc'ed). */
static char *contents(void) {
    fflush(f);
    long n = ftell(f);
    char *s = malloc((size_t)n + 1);
    rewind(f);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    return s;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, text_lines_have_time_level_component) {
    dashi_log(DASHI_LOG_WARN, "pipeline", "dead letter: %s[%d]@%d: %s", "order", 3, 17, "bad magic byte");
    char *s = contents();
    /* 2026-11-28T14:00:00.123Z warn pipeline: dead letter: order[3]@17: bad magic byte */
    cr_assert_eq(strlen(s) > 25 && s[4] == '-' && s[10] == 'T' && s[23] == 'Z', 1, "%s", s);
    cr_assert_str_eq(s + 25, "warn pipeline: dead letter: order[3]@17: bad magic byte\n");
    free(s);
}

Test(log, levels_filter) {
    dashi_log(DASHI_LOG_DEBUG, "pipeline", "hidden at info");
    dashi_log(DASHI_LOG_INFO, "pipeline", "shown");
    cr_assert_eq(dashi_log_configure("error", NULL, NULL, 0), DASHI_OK);
    dashi_log(DASHI_LOG_WARN, "pipeline", "hidden at error");
    dashi_log(DASHI_LOG_ERROR, "pipeline", "shown too");
    cr_assert(dashi_log_enabled(DASHI_LOG_ERROR));
    cr_assert_not(dashi_log_enabled(DASHI_LOG_WARN));
    cr_assert_eq(dashi_log_configure("debug", NULL, NULL, 0), DASHI_OK);
    dashi_log(DASHI_LOG_DEBUG, "redis", "debug now");
    char *s = contents();
    cr_assert_eq(count_lines(s), 3, "%s", s);
    cr_assert_null(strstr(s, "hidden"), "%s", s);
    cr_assert(strstr(s, "debug redis: debug now"), "%s", s);
    free(s);
}

Test(log, bad_configuration_is_refused_and_changes_nothing) {
    char err[256];
    cr_assert_eq(dashi_log_configure("loud", "json", err, sizeof(err)), DASHI_ERR_INVALID);
    cr_assert(strstr(err, "log.level"), "%s", err);
    cr_assert_eq(dashi_log_configure("debug", "yaml", err, sizeof(err)), DASHI_ERR_INVALID);
    cr_assert(strstr(err, "log.format"), "%s", err);
    cr_assert_not(dashi_log_enabled(DASHI_LOG_DEBUG));
    dashi_log(DASHI_LOG_INFO, "x", "still text");
    char *s = contents();
    cr_assert(s[0] != '{', "%s", s);
    free(s);
    cr_assert_eq(dashi_log_level_from_name("warn"), DASHI_LOG_WARN);
    cr_assert_eq(dashi_log_level_from_name("WARN"), -1);
}

Test(log, json_lines_parse_and_escape) {
    cr_assert_eq(dashi_log_configure("info", "json", NULL, 0), DASHI_OK);
    const char *nasty = "quote \" backslash \\ newline \n tab \t ctl \x01 utf8 \xe5\xa4\xa7\xe4\xbd\xbf bad \xff\xfe end";
    dashi_log(DASHI_LOG_ERROR, "redis", "%s", nasty);
    dashi_log(DASHI_LOG_INFO, "kafka", "second line\n"); /* a trailing newline is not doubled */
    char *s = contents();
    cr_assert_eq(count_lines(s), 2, "%s", s);
    char *nl = strchr(s, '\n');
    json_error_t jerr;
    json_t *j = json_loadb(s, (size_t)(nl - s), 0, &jerr);
    cr_assert(j, "line 1 is not JSON: %s: %s", jerr.text, s);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
    cr_assert_str_eq(json_string_value(json_object_get(j, "component")), "redis");
    cr_assert(json_string_value(json_object_get(j, "ts")));
    const char *msg = json_string_value(json_object_get(j, "msg"));
    cr_assert_str_eq(msg, "quote \" backslash \\ newline \n tab \t ctl \x01 utf8 \xe5\xa4\xa7\xe4\xbd\xbf bad ?? end");
    json_decref(j);
    j = json_loads(nl + 1, 0, &jerr);
    cr_assert(j, "line 2 is not JSON: %s", jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "second line");
    cr_assert_str_eq(json_string_value(json_object_get(j, "component")), "kafka");
    json_decref(j);
    free(s);
}

Test(log, long_messages_are_cut_not_lost) {
    char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dashi_log(DASHI_LOG_INFO, "pipeline", "%s", big);
    char *s = contents();
    cr_assert_eq(count_lines(s), 1);
    cr_assert(strstr(s, "xxx...\n"), "a cut line ends with ...");
    cr_assert_lt(strlen(s), 5000);
    free(s);
}

Test(log, librdkafka_levels_map_to_ours) {
    cr_assert_eq(dashi_log_configure("debug", "json", NULL, 0), DASHI_OK);
    struct {
        int syslog;
        const char *level;
    } cases[] = {{0, "error"}, {3, "error"}, {4, "warn"}, {5, "info"}, {6, "info"}, {7, "debug"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        dashi_log_rdkafka(NULL, cases[i].syslog, "FAIL", "127.0.0.1:9092/1: Connect refused");
    char *s = contents(), *line = s;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *nl = strchr(line, '\n');
        cr_assert(nl);
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert(j);
        cr_expect_str_eq(json_string_value(json_object_get(j, "level")), cases[i].level, "syslog %d", cases[i].syslog);
        cr_expect_str_eq(json_string_value(json_object_get(j, "component")), "kafka");
        cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), "FAIL: 127.0.0.1:9092/1: Connect refused");
        json_decref(j);
        line = nl + 1;
    }
    free(s);
}
