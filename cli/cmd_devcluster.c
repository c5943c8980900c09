/* cmd_devcluster.c — `dashi devcluster`: librdkafka's mock Kafka cluster with dashi's topics, until stopped.
 *
 * The mock cluster (rdkafka_mock.h) speaks the real Kafka protocol on loopback
 * TCP ports it picks itself, so this prints the bootstrap string (and writes it to
 * --bootstrap-file) for the other commands. The mock has no CreateTopics: every
 * input, output and dead-letter topic of the configuration is created here.
 *
 * Fault injection. With --control the command reads one command a line on stdin
 * and answers each on stdout with one line, "ok [value]" or "error <why>", so a
 * test (or a person at a terminal) can take brokers down and up, slow them, make
 * requests fail and move partition leaders while clients run (`help` prints its
 * list as "# " lines before its "ok"). The commands map one to one onto
 * rdkafka_mock.h (librdkafka 2.0.2). End of stdin ends the control channel, not
 * the cluster.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli/commands.h"
#include "consumers/config.h"
#include "consumers/kafka.h"

static void help(FILE *f) {
    fprintf(f, "usage: dashi devcluster [--config FILE] [--brokers N] [--partitions N] [--bootstrap-file PATH]\n"
               "                        [--control]\n\n"
               "Start librdkafka's mock Kafka cluster on loopback, create dashi's topics, print the\n"
               "bootstrap servers and run until SIGINT/SIGTERM. For development, demos and tests only:\n"
               "the mock keeps data in memory and its transactions only acknowledge.\n"
               "  --control   read fault-injection commands on stdin, one a line, and answer each on\n"
               "              stdout with 'ok [value]' or 'error <why>'; 'help' lists the commands\n");
}

static const char control_help[] =
    "broker N down|up                  disconnect broker N (-1: all) and refuse connections / accept again\n"
    "rtt N MS                          delay every response of broker N (-1: all) by MS ms (0: none)\n"
    "errors API COUNT ERR              the next COUNT requests of API on any broker fail with ERR\n"
    "broker-errors N API COUNT ERR [MS]  the same on broker N only, each answered after MS ms\n"
    "pending N API                     errors still queued on broker N for API (answer: ok COUNT)\n"
    "clear API                         drop the cluster-wide errors queued for API\n"
    "leader TOPIC|* PART|* N           make broker N the leader of the partition(s)\n"
    "coordinator GROUP N               make broker N the coordinator of consumer group GROUP\n"
    "API: a protocol name (Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,\n"
    "FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, InitProducerId) or number;\n"
    "ERR: a Kafka error name without RD_KAFKA_RESP_ERR_ (NOT_LEADER_FOR_PARTITION,\n"
    "REQUEST_TIMED_OUT, _TRANSPORT = disconnect, ...) or number\n";

/* ---- the control channel ---- */

static const struct {
    const char *name;
    int16_t key;
} api_names[] = {
    {"Produce", 0},         {"Fetch", 1},     {"ListOffsets", 2}, {"Metadata", 3},    {"OffsetCommit", 8},
    {"OffsetFetch", 9},     {"FindCoordinator", 10}, {"JoinGroup", 11}, {"Heartbeat", 12}, {"LeaveGroup", 13},
    {"SyncGroup", 14},      {"ApiVersions", 18}, {"InitProducerId", 22}, {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},   {"TxnOffsetCommit", 28},
};

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *s == '\0' || *end != '\0' || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_api(const char *s, int16_t *key) {
    long v;
    for (size_t i = 0; s && i < sizeof(api_names) / sizeof(api_names[0]); i++)
        if (strcasecmp(s, api_names[i].name) == 0) {
            *key = api_names[i].key;
            return 0;
        }
    if (parse_int(s, 0, 1000, &v) < 0)
        return -1;
    *key = (int16_t)v;
    return 0;
}

static int parse_kerr(const char *s, rd_kafka_resp_err_t *err) {
    const struct rd_kafka_err_desc *descs;
    size_t n;
    long v;
    if (!s)
        return -1;
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
        s += 18;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
            *err = descs[i].code;
            return 0;
        }
    if (parse_int(s, -200, 1000, &v) < 0)
        return -1;
    *err = (rd_kafka_resp_err_t)v;
    return 0;
}

/* Run one command line; the answer (without newline) goes to out. */
static void control_command(rd_kafka_mock_cluster_t *mc, const dashi_config *cfg, int partitions, char *line, char *out,
                            size_t out_size) {
    char *argv[8] = {0};
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save); tok && argc < 8;
         tok = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = tok;
    long n = 0, v = 0, cnt = 0, part = 0;
    int16_t api = 0;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR, res = RD_KAFKA_RESP_ERR_NO_ERROR;
    snprintf(out, out_size, "ok");
    if (argc == 0)
        return;
    if (strcmp(argv[0], "help") == 0) {
        /* the list as comment lines, then the one answer line */
        for (const char *l = control_help; *l; l = strchr(l, '\n') + 1)
            printf("# %.*s\n", (int)(strchr(l, '\n') - l), l);
    } else if (strcmp(argv[0], "broker") == 0 && argc == 3 && parse_int(argv[1], -1, 1000, &n) == 0 &&
               (strcmp(argv[2], "down") == 0 || strcmp(argv[2], "up") == 0)) {
        res = strcmp(argv[2], "down") == 0 ? rd_kafka_mock_broker_set_down(mc, (int32_t)n)
                                           : rd_kafka_mock_broker_set_up(mc, (int32_t)n);
    } else if (strcmp(argv[0], "rtt") == 0 && argc == 3 && parse_int(argv[1], -1, 1000, &n) == 0 &&
               parse_int(argv[2], 0, 600000, &v) == 0) {
        res = rd_kafka_mock_broker_set_rtt(mc, (int32_t)n, (int)v);
    } else if (strcmp(argv[0], "errors") == 0 && argc == 4 && parse_api(argv[1], &api) == 0 &&
               parse_int(argv[2], 1, 100000, &cnt) == 0 && parse_kerr(argv[3], &kerr) == 0) {
        rd_kafka_resp_err_t *errs = malloc((size_t)cnt * sizeof(*errs));
        if (!errs) {
            snprintf(out, out_size, "error out of memory");
            return;
        }
        for (long i = 0; i < cnt; i++)
            errs[i] = kerr;
        rd_kafka_mock_push_request_errors_array(mc, api, (size_t)cnt, errs);
        free(errs);
    } else if (strcmp(argv[0], "broker-errors") == 0 && (argc == 5 || argc == 6) &&
               parse_int(argv[1], 0, 1000, &n) == 0 && parse_api(argv[2], &api) == 0 &&
               parse_int(argv[3], 1, 100000, &cnt) == 0 && parse_kerr(argv[4], &kerr) == 0 &&
               (argc == 5 || parse_int(argv[5], 0, 600000, &v) == 0)) {
        for (long i = 0; i < cnt && !res; i++)
            res = rd_kafka_mock_broker_push_request_error_rtts(mc, (int32_t)n, api, 1, kerr, (int)v);
    } else if (strcmp(argv[0], "pending") == 0 && argc == 3 && parse_int(argv[1], 0, 1000, &n) == 0 &&
               parse_api(argv[2], &api) == 0) {
        size_t left = 0;
        res = rd_kafka_mock_broker_error_stack_cnt(mc, (int32_t)n, api, &left);
        snprintf(out, out_size, "ok %zu", left);
    } else if (strcmp(argv[0], "clear") == 0 && argc == 2 && parse_api(argv[1], &api) == 0) {
        rd_kafka_mock_clear_request_errors(mc, api);
    } else if (strcmp(argv[0], "leader") == 0 && argc == 4 && parse_int(argv[3], 0, 1000, &n) == 0 &&
               (strcmp(argv[2], "*") == 0 || parse_int(argv[2], 0, partitions - 1, &part) == 0)) {
        const char *names[DASHI_EV__COUNT + 1];
        size_t nn = 0;
        if (strcmp(argv[1], "*") == 0) {
            for (int t = 0; t < DASHI_EV__COUNT; t++) {
                const char *name = dashi_config_topic(cfg, (dashi_event_type)t);
                bool seen = false;
                for (size_t k = 0; k < nn; k++)
                    seen |= strcmp(names[k], name) == 0;
                if (!seen)
                    names[nn++] = name;
            }
            names[nn++] = cfg->topic_dead_letter;
        } else {
            names[nn++] = argv[1];
        }
        for (size_t k = 0; k < nn && !res; k++)
            for (long p = strcmp(argv[2], "*") == 0 ? 0 : part; p <= (strcmp(argv[2], "*") == 0 ? partitions - 1 : part) && !res; p++)
                res = rd_kafka_mock_partition_set_leader(mc, names[k], (int32_t)p, (int32_t)n);
    } else if (strcmp(argv[0], "coordinator") == 0 && argc == 3 && parse_int(argv[2], 0, 1000, &n) == 0) {
        res = rd_kafka_mock_coordinator_set(mc, "group", argv[1], (int32_t)n);
    } else {
        snprintf(out, out_size, "error unknown command or bad arguments (try help): %s", argv[0]);
        return;
    }
    if (res)
        snprintf(out, out_size, "error %s", rd_kafka_err2str(res));
}

/* Read what stdin has (non-blocking after poll) and answer every complete line. */
static int control_read(rd_kafka_mock_cluster_t *mc, const dashi_config *cfg, int partitions, char *buf, size_t *len,
                        size_t size) {
    ssize_t got = read(0, buf + *len, size - 1 - *len);
    if (got <= 0)
        return got == 0 || (errno != EINTR && errno != EAGAIN) ? -1 : 0;
    *len += (size_t)got;
    buf[*len] = '\0';
    char *nl;
    while ((nl = strchr(buf, '\n'))) {
        *nl = '\0';
        char answer[2048];
        control_command(mc, cfg, partitions, buf, answer, sizeof(answer));
        printf("%s\n", answer);
        fflush(stdout);
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, *len - used + 1);
        *len -= used;
    }
    if (*len == size - 1) { /* a line longer than the buffer: refuse it */
        printf("error line too long\n");
        fflush(stdout);
        *len = 0;
    }
    return 0;
}

int dashi_cmd_devcluster(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"brokers", required_argument, 0, 'b'},
                                         {"partitions", required_argument, 0, 'p'},
                                         {"bootstrap-file", required_argument, 0, 'f'},
                                         {"control", no_argument, 0, 'C'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cfg_path = NULL, *bfile = NULL;
    int brokers = 1, partitions = 4, c, rc = 1;
    bool control = false;
    char errstr[512];
    dashi_config *cfg = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'b': brokers = atoi(optarg); break;
        case 'p': partitions = atoi(optarg); break;
        case 'f': bfile = optarg; break;
        case 'C': control = true; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (brokers < 1 || brokers > 9 || partitions < 1 || partitions > 256) {
        fprintf(stderr, "dashi devcluster: --brokers 1..9, --partitions 1..256\n");
        return 2;
    }
    cfg = cfg_path ? dashi_config_load(cfg_path, errstr, sizeof(errstr)) : dashi_config_new_default(errstr, sizeof(errstr));
    if (!cfg) {
        fprintf(stderr, "dashi devcluster: %s\n", errstr);
        goto out;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "dashi devcluster: %s\n", errstr);
        goto out;
    }
    if (!(mc = rd_kafka_mock_cluster_new(rk, brokers))) {
        fprintf(stderr, "dashi devcluster: cannot start the mock cluster\n");
        goto out;
    }
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        const char *name = dashi_config_topic(cfg, (dashi_event_type)t);
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, partitions, 1);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "dashi devcluster: create topic %s: %s\n", name, rd_kafka_err2str(err));
            goto out;
        }
    }
    rd_kafka_mock_topic_create(mc, cfg->topic_dead_letter, partitions, 1);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    if (bfile) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", bfile);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", bootstrap) < 0 || fclose(f) != 0 || rename(tmp, bfile) != 0) {
            fprintf(stderr, "dashi devcluster: cannot write %s: %m\n", bfile);
            goto out;
        }
    }
    printf("%s\n", bootstrap);
    fflush(stdout);
    fprintf(stderr, "dashi devcluster: mock cluster with %d broker(s), topics with %d partition(s); stop with Ctrl-C\n",
            brokers, partitions);
    dashi_kafka_install_signals();
    char line[4096];
    size_t len = 0;
    while (!dashi_kafka_stop) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (control && poll(&pfd, 1, 200) > 0) {
            if (control_read(mc, cfg, partitions, line, &len, sizeof(line)) < 0)
                control = false; /* end of stdin: the cluster stays up */
        } else if (!control) {
            rd_kafka_poll(rk, 200);
        }
        rd_kafka_poll(rk, 0);
    }
    rc = 0;
out:
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    dashi_config_destroy(cfg);
    return rc;
}
