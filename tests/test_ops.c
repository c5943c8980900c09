/* test_ops.c — a real `dashi run` seen by an operator: /metrics, /healthz, /readyz while it runs, JSON logs without identity values.
 *
 * Starts its own redis-server and `dashi devcluster`, publishes a generated stream
 * plus records made to fail (raw bytes on an input topic, a refund of an unknown
 * order), runs `dashi run` with metrics.listen=127.0.0.1:0 and log.format=json,
 * finds the bound port in its log, and scrapes while it works. Then it checks
 * that every log line is a JSON object with ts/level/component/msg, and that no
 * identity value of the input (every "value" of an identity: phones, emails, ID
 * numbers — also lower-cased) appears anywhere in the log, in Redis (every key and
 * value, progress and outbox included) or in the output topics read back with
 * `dashi tail` (dead letters as their headers and size: their original bytes stay
 * in Kafka by design, EVENTS.md). Labelled integration.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/support/proc.h"
#include "tests/support/live.h"

#define UNTIL DASHI_TEST_LIVE_UNTIL

static void setup(void) {
    dashi_test_live_setup(2, NULL);
}

static void teardown(void) {
    dashi_test_live_teardown();
}

/* GET path on 127.0.0.1:port; the status (0 when nothing answers), body in *body. */
static int http_get(int port, const char *p, char **body) {
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", p);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(fd, buf + len, cap - len - 1)) > 0)
        if ((len += (size_t)k) + 1 == cap)
            buf = realloc(buf, cap *= 2);
    buf[len] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    char *b = strstr(buf, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

/* Sum of the samples of a metric name whose labels contain filter (may be ""). */
static double sum_of(const char *text, const char *name, const char *filter) {
    double sum = 0;
    size_t n = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, n) != 0 || (line[n] != '{' && line[n] != ' '))
            continue;
        const char *end = strchr(line, '\n');
        const char *sp = line + n;
        while (sp < end && *sp != ' ')
            sp = *sp == '"' ? strchr(sp + 1, '"') + 1 : sp + 1; /* label values have no raw quotes */
        char labels[512];
        snprintf(labels, sizeof(labels), "%.*s", (int)(sp - line), line);
        if (strstr(labels, filter))
            sum += strtod(sp + 1, NULL);
    }
    return sum;
}

/* Every identity "value" of the input file ({"kind":..., "value":...} objects, at any depth). */
static void collect(const json_t *j, json_t *into) {
    if (json_is_object(j)) {
        const json_t *k = json_object_get(j, "kind"), *v = json_object_get(j, "value");
        if (json_is_string(k) && json_is_string(v) && json_string_length(v) >= 5)
            json_array_append(into, (json_t *)v);
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)j, key, m) collect(m, into);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *m;
        json_array_foreach(j, i, m) collect(m, into);
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(ops, run_serves_metrics_and_logs_json_without_identities, .init = setup, .fini = teardown, .timeout = 300) {
    dashi_test_live_gen("events.ndjson", "21", "20", "200");
    /* an account with identity values of our own, and a refund the rules refuse */
    FILE *f = fopen(dashi_test_live_path("events.ndjson"), "a");
    cr_assert(f);
    fputs("{\"type\":\"AccountRegistered\",\"event_id\":\"ops-1\",\"occurred_at\":\"2022-06-09T10:00:00+08:00\","
          "\"uid\":\"ops-cust\",\"account_type\":\"PERSONAL\",\"method\":\"PHONE_CODE\",\"identities\":["
          "{\"kind\":\"PHONE\",\"value\":\"13912345678\"},{\"kind\":\"EMAIL\",\"value\":\"Leak.Check@Example.org\"},"
          "{\"kind\":\"ID_DOC\",\"value\":\"110101199003074258\"}]}\n",
          f);
    fputs("{\"type\":\"OrderRefunded\",\"event_id\":\"ops-2\",\"occurred_at\":\"2022-06-10T10:00:00+08:00\","
          "\"order_id\":\"no-such-order\",\"uid\":\"ops-cust\",\"kind\":\"REFUND\",\"amount\":100}\n",
          f);
    fclose(f);
    /* the same identity values as raw bytes that cannot be decoded */
    f = fopen(dashi_test_live_path("raw.txt"), "w");
    cr_assert(f);
    fputs("{\"uid\":\"ops-raw\",\"phone\":\"13912345678\",\"email\":\"Leak.Check@Example.org\"}\n", f);
    fclose(f);
    dashi_test_live_publish(dashi_test_live_path("events.ndjson"), NULL);
    const char *raw[] = {DASHI_BINARY, "publish", "--bootstrap", dashi_test_live_boot(),
                         "--in", dashi_test_live_path("raw.txt"), "--raw-topic",
                         "registration", NULL};
    cr_assert_eq(dashi_test_run(raw, NULL, dashi_test_live_path("publish-raw.log")), 0,
                 "dashi publish --raw-topic failed");

    const char *run[] = {"--set", "merge.wait_ms=100", "--set", "metrics.listen=127.0.0.1:0", "--set",
                         "log.format=json", "--set", "log.level=debug", "--verbose", "--exit-idle", "4000",
                         "--clock-until", UNTIL, NULL};
    pid_t pid = dashi_test_live_spawn_run("g-ops", NULL, NULL, run);
    cr_assert(pid > 0);

    int port = 0, status = 0, ready_seen = 0, health_seen = 0;
    char *last = NULL;
    int64_t t0 = now_ms();
    while (now_ms() - t0 < 240000) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        if (!port) {
            char *log = dashi_test_slurp(dashi_test_live_path("run.log"), NULL);
            const char *at = log ? strstr(log, "(port ") : NULL;
            if (at)
                port = atoi(at + 6);
            free(log);
        } else {
            char *body;
            if (http_get(port, "/metrics", &body) == 200) {
                free(last);
                last = body;
            } else {
                free(body);
            }
            ready_seen |= http_get(port, "/readyz", &body) == 200;
            free(body);
            health_seen |= http_get(port, "/healthz", &body) == 200;
            free(body);
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (pid > 0) {
        dashi_test_kill(pid, SIGKILL);
        cr_assert_fail("dashi run did not finish (see %s)", dashi_test_live_path("run.log"));
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dashi run failed (see %s)",
              dashi_test_live_path("run.log"));
    cr_assert_gt(port, 0, "no bound port in the log (see %s)", dashi_test_live_path("run.log"));
    cr_assert(last, "never scraped /metrics");
    cr_expect(health_seen, "/healthz never answered 200");
    cr_expect(ready_seen, "/readyz never answered 200 while the run worked");
    cr_expect_gt(sum_of(last, "dashi_events_in_total", ""), 400, "in:\n%s", last);
    cr_expect_gt(sum_of(last, "dashi_events_out_total", ""), 0);
    cr_expect_gt(sum_of(last, "dashi_decisions_total", "kind=\"commission\""), 0);
    cr_expect_eq(sum_of(last, "dashi_dead_letters_total", "reason=\"undecodable\""), 1, "%s", last);
    cr_expect_eq(sum_of(last, "dashi_dead_letters_total", "reason=\"rejected\""), 1, "%s", last);
    cr_expect_gt(sum_of(last, "dashi_redis_roundtrip_seconds_count", ""), 0);
    cr_expect_gt(sum_of(last, "dashi_step_seconds_count", ""), 0);
    cr_expect_eq(sum_of(last, "dashi_rules_version_info", "version=\"2022-06-01\""), 1, "%s", last);
    cr_expect_gt(sum_of(last, "dashi_stream_time_seconds", ""), 1.65e9);
    free(last);

    /* the log: JSON lines only, and no identity value in clear */
    char *log = dashi_test_slurp(dashi_test_live_path("run.log"), NULL);
    cr_assert(log);
    size_t lines = 0;
    for (char *line = log, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert(nl, "unterminated last line: %s", line);
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_expect(j && json_is_string(json_object_get(j, "ts")) && json_is_string(json_object_get(j, "level")) &&
                      json_is_string(json_object_get(j, "component")) && json_is_string(json_object_get(j, "msg")),
                  "not a JSON log line: %.*s", (int)(nl - line), line);
        json_decref(j);
        lines++;
    }
    cr_expect_gt(lines, 3);
    cr_expect(strstr(log, "dead letter"), "the dead letters are logged:\n%s", log);
    json_t *values = json_array();
    char *events = dashi_test_slurp(dashi_test_live_path("events.ndjson"), NULL);
    for (char *line = strtok(events, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        collect(j, values);
        json_decref(j);
    }
    free(events);
    cr_expect_gt(json_array_size(values), 200, "the stream carries identity values");
    /* the whole Redis state and every output, read back */
    char *state = dashi_test_live_dump_state("dashi:", NULL, true);
    dashi_test_live_tail(dashi_test_live_path("outputs.ndjson"), NULL, "3000");
    char *outputs = dashi_test_slurp(dashi_test_live_path("outputs.ndjson"), NULL);
    cr_assert(state && outputs);
    cr_expect_gt(strlen(state), 10000, "the state holds the run's records");
    cr_expect(strstr(outputs, "\"SamePersonDecision\"") && strstr(outputs, "\"DeadLetter\""),
              "the outputs were read back");
    const struct {
        const char *what, *text;
    } places[] = {{"the log", log}, {"Redis", state}, {"the outputs", outputs}};
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) {
        char lower[256];
        const char *s = json_string_value(v);
        snprintf(lower, sizeof(lower), "%s", s);
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        for (size_t k = 0; k < sizeof(places) / sizeof(places[0]); k++) {
            cr_expect_null(strstr(places[k].text, s), "identity value %s is in %s", s, places[k].what);
            cr_expect_null(strstr(places[k].text, lower), "identity value %s is in %s", lower, places[k].what);
        }
    }
    json_decref(values);
    free(outputs);
    free(state);
    free(log);
}
