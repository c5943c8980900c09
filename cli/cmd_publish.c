/* cmd_publish.c — `dashi publish`: JSON events in → Avro records (Confluent wire format) on their topics.
 *
 * Each line is parsed and validated like replay input, encoded with the codec,
 * and produced to the event type's topic with the record key of EVENTS.md (the
 * uid), so the default partitioner co-partitions a customer's events across
 * topics. Bad lines are reported and not sent, unless --raw-topic sends every line's
 * bytes unchanged to one topic (to exercise the dead-letter path). With a schema
 * registry (schema_registry.url, or --schema-registry URL) each type's schema is
 * registered under its subject before its first record and records carry the
 * registry's ids; a registry that is away or refuses the schema stops the command.
 * --rate paces the records at a fixed offered rate (the benchmark's latency runs):
 * record i is produced at start + i / rate, with no linger, so its Kafka timestamp
 * is its publish time.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "consumers/codec.h"
#include "consumers/config.h"
#include "consumers/kafka.h"

typedef struct pub_stats {
    size_t delivered, failed;
} pub_stats;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    pub_stats *s = opaque;
    if (m->err) {
        s->failed++;
        fprintf(stderr, "dashi publish: delivery to %s failed: %s\n", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    } else {
        s->delivered++;
    }
}

static void help(FILE *f) {
    fprintf(f, "usage: dashi publish --bootstrap SERVERS [--config FILE] [--schema-registry URL] [--in FILE]\n"
               "                     [--raw-topic TOPIC] [--rate EVENTS_PER_S]\n\n"
               "Publish JSON input events (one per line, '-' = stdin) as Avro records on their topics,\n"
               "keyed by uid. --raw-topic sends each line's bytes unchanged to TOPIC (bad-input tests).\n"
               "--schema-registry URL (or schema_registry.url in the file) takes schema ids from a\n"
               "Confluent Schema Registry, registering dashi's schemas; default: the fixed ids 1..16.\n"
               "--rate sends at a fixed rate, without linger (latency benchmarks); default: as fast as possible.\n");
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* waits until record n of a paced run is due (start + n / rate), serving delivery reports */
static void pace(rd_kafka_t *rk, int64_t start_ns, size_t n, double rate) {
    int64_t due = start_ns + (int64_t)((double)n * 1e9 / rate);
    for (int64_t now = mono_ns(); now < due; now = mono_ns()) {
        int64_t wait = due - now;
        if (wait > 1000000) {
            rd_kafka_poll(rk, (int)(wait / 1000000));
        } else {
            struct timespec ts = {0, (long)wait};
            nanosleep(&ts, NULL);
        }
    }
}

int dashi_cmd_publish(int argc, char **argv) {
    static const struct option opts[] = {{"bootstrap", required_argument, 0, 'b'}, {"config", required_argument, 0, 'c'},
                                         {"in", required_argument, 0, 'i'},        {"raw-topic", required_argument, 0, 'r'},
                                         {"rate", required_argument, 0, 'R'},      {"schema-registry", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    const char *bootstrap = NULL, *cfg_path = NULL, *in_path = "-", *raw_topic = NULL, *registry = NULL;
    int c, rc = 1;
    char errstr[1024];
    dashi_config *cfg = NULL;
    dashi_codec *codec = NULL;
    rd_kafka_t *rk = NULL;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0, sent = 0, bad = 0;
    pub_stats stats = {0, 0};
    double rate = 0;
    int64_t start_ns = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 'c': cfg_path = optarg; break;
        case 'i': in_path = optarg; break;
        case 'r': raw_topic = optarg; break;
        case 'R':
            rate = strtod(optarg, NULL);
            if (rate <= 0) {
                fprintf(stderr, "dashi publish: --rate: a positive number of events per second, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 's': registry = optarg; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    cfg = cfg_path ? dashi_config_load(cfg_path, errstr, sizeof(errstr)) : dashi_config_new_default(errstr, sizeof(errstr));
    if (!cfg || (registry && dashi_config_set(cfg, "schema_registry.url", registry, errstr, sizeof(errstr))) ||
        !(codec = dashi_codec_new_for_config(cfg, 0, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi publish: %s\n", errstr);
        goto out;
    }
    dashi_config_set(cfg, "kafka.linger.ms", rate > 0 ? "0" : "20", NULL, 0);
    dashi_kafka_hooks hooks = {.dr_msg_cb = on_delivery, .opaque = &stats};
    if (!(rk = dashi_kafka_new(cfg, DASHI_KAFKA_PRODUCER, bootstrap, NULL, &hooks, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi publish: %s\n", errstr);
        goto out;
    }
    in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "r");
    if (!in) {
        fprintf(stderr, "dashi publish: cannot open %s: %m\n", in_path);
        goto out;
    }
    ssize_t len;
    start_ns = mono_ns();
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (raw_topic) {
            if (dashi_kafka_produce(rk, raw_topic, RD_KAFKA_PARTITION_UA, NULL, line, (size_t)len, NULL, NULL, errstr,
                                    sizeof(errstr)) != DASHI_OK)
                goto produce_failed;
            sent++;
            continue;
        }
        dashi_event ev;
        void *buf = NULL;
        size_t blen = 0;
        dashi_err eerr = DASHI_ERR_INVALID;
        memset(&ev, 0, sizeof(ev));
        if (dashi_event_parse(line, (size_t)len, &ev, errstr, sizeof(errstr)) != DASHI_OK ||
            !dashi_event_type_is_input(ev.type) ||
            (eerr = dashi_codec_encode(codec, &ev, &buf, &blen, errstr, sizeof(errstr))) != DASHI_OK) {
            if (eerr != DASHI_ERR_INVALID) { /* the line is fine: no schema id (the registry away or refusing) */
                dashi_event_clear(&ev);
                goto produce_failed;
            }
            fprintf(stderr, "dashi publish: %s:%zu: not sent: %s\n", in_path, lineno,
                    dashi_event_type_is_input(ev.type) ? errstr : "not an input event");
            bad++;
            dashi_event_clear(&ev);
            continue;
        }
        if (rate > 0)
            pace(rk, start_ns, sent, rate);
        dashi_err err = dashi_kafka_produce(rk, dashi_config_topic(cfg, ev.type), RD_KAFKA_PARTITION_UA,
                                            dashi_event_key(&ev), buf, blen, NULL, NULL, errstr, sizeof(errstr));
        free(buf);
        dashi_event_clear(&ev);
        if (err != DASHI_OK)
            goto produce_failed;
        sent++;
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 30000);
    fprintf(stderr, "dashi publish: %zu records sent, %zu delivered, %zu failed, %zu lines not sent\n", sent,
            stats.delivered, stats.failed, bad);
    rc = stats.failed || stats.delivered != sent ? 1 : 0;
    goto out;
produce_failed:
    fprintf(stderr, "dashi publish: %s:%zu: %s\n", in_path, lineno, errstr);
out:
    free(line);
    if (in && in != stdin)
        fclose(in);
    if (rk)
        rd_kafka_destroy(rk);
    dashi_codec_destroy(codec);
    dashi_config_destroy(cfg);
    return rc;
}
