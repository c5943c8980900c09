/* cmd_tail.c — `dashi tail`: output topics (Avro) → JSON lines, for people and tests.
 *
 * Reads every output topic (or the ones named) from the beginning with a fresh,
 * throw-away consumer group, decodes each record with the codec and prints its
 * JSON form. Stops after --count records, or when nothing arrived for --idle-ms,
 * or on SIGINT. The dead-letter topic is printed as its headers and raw value.
 * With --meta each line is {"topic", "partition", "offset", "timestamp" (the
 * record's Kafka timestamp, ms), "value"}: the benchmark pairs input and output
 * records by their timestamps to measure publish-to-output latency.
 * With a schema registry (schema_registry.url, or --schema-registry URL) writer
 * schemas are fetched by the ids the records carry.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "consumers/codec.h"
#include "consumers/config.h"
#include "consumers/kafka.h"

static void help(FILE *f) {
    fprintf(f, "usage: dashi tail --bootstrap SERVERS [--config FILE] [--schema-registry URL] [--topic T]...\n"
               "                  [--count N] [--idle-ms MS] [--meta]\n\n"
               "Print the records of the output topics (default: all outputs and the dead-letter topic)\n"
               "as JSON lines, from the beginning. Stops after N records, after MS without records\n"
               "(default 3000; before the first record at least 30 s, for the group join), or on Ctrl-C.\n"
               "--schema-registry URL (or schema_registry.url in the file) fetches writer schemas by id\n"
               "from a Confluent Schema Registry; default: the fixed ids 1..16.\n"
               "--meta wraps each line with the record's topic, partition, offset and Kafka timestamp.\n");
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* prints one record's JSON form (borrowed), wrapped with its Kafka metadata when meta */
static void print_record(const rd_kafka_message_t *m, bool meta, const char *body) {
    if (!meta) {
        puts(body);
        return;
    }
    json_t *topic = json_string(rd_kafka_topic_name(m->rkt));
    char *t = topic ? json_dumps(topic, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    printf("{\"topic\":%s,\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"value\":%s}\n", t ? t : "null",
           (int)m->partition, (long long)m->offset, (long long)rd_kafka_message_timestamp(m, NULL), body);
    free(t);
    json_decref(topic);
}

static void print_dead_letter(const rd_kafka_message_t *m, bool meta) {
    json_t *j = json_object(), *h = json_object();
    rd_kafka_headers_t *hdrs = NULL;
    json_object_set_new(j, "type", json_string("DeadLetter"));
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            json_object_set_new(h, name, json_stringn_nocheck(val ? val : "", val ? size : 0));
    }
    json_object_set_new(j, "headers", h);
    json_object_set_new(j, "value_bytes", json_integer((json_int_t)m->len));
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s)
        print_record(m, meta, s);
    free(s);
    json_decref(j);
}

int dashi_cmd_tail(int argc, char **argv) {
    static const struct option opts[] = {{"bootstrap", required_argument, 0, 'b'}, {"config", required_argument, 0, 'c'},
                                         {"topic", required_argument, 0, 't'},     {"count", required_argument, 0, 'n'},
                                         {"idle-ms", required_argument, 0, 'i'},   {"meta", no_argument, 0, 'm'},
                                         {"schema-registry", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    const char *bootstrap = NULL, *cfg_path = NULL, *registry = NULL;
    const char *topics[DASHI_EV__COUNT + 1];
    size_t n_topics = 0;
    long count = -1, idle = 3000, seen = 0;
    bool meta = false;
    int c, rc = 1;
    char errstr[1024], group[64];
    dashi_config *cfg = NULL;
    dashi_codec *codec = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 'c': cfg_path = optarg; break;
        case 't':
            if (n_topics < DASHI_EV__COUNT)
                topics[n_topics++] = optarg;
            break;
        case 'n': count = atol(optarg); break;
        case 'i': idle = atol(optarg); break;
        case 'm': meta = true; break;
        case 's': registry = optarg; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    cfg = cfg_path ? dashi_config_load(cfg_path, errstr, sizeof(errstr)) : dashi_config_new_default(errstr, sizeof(errstr));
    if (!cfg || (registry && dashi_config_set(cfg, "schema_registry.url", registry, errstr, sizeof(errstr))) ||
        !(codec = dashi_codec_new_for_config(cfg, 0, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi tail: %s\n", errstr);
        goto out;
    }
    if (n_topics == 0) {
        for (int t = DASHI_EV__FIRST_OUTPUT; t < DASHI_EV__COUNT; t++)
            topics[n_topics++] = dashi_config_topic(cfg, (dashi_event_type)t);
        topics[n_topics++] = cfg->topic_dead_letter;
    }
    snprintf(group, sizeof(group), "dashi-tail-%ld-%lld", (long)getpid(), (long long)now_ms());
    dashi_config_set(cfg, "kafka.enable.partition.eof", "false", NULL, 0);
    if (!(rk = dashi_kafka_new(cfg, DASHI_KAFKA_CONSUMER, bootstrap, group, NULL, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi tail: %s\n", errstr);
        goto out;
    }
    sub = rd_kafka_topic_partition_list_new((int)n_topics);
    for (size_t i = 0; i < n_topics; i++)
        rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(rk, sub);
    if (kerr) {
        fprintf(stderr, "dashi tail: subscribe: %s\n", rd_kafka_err2str(kerr));
        goto out;
    }
    dashi_kafka_install_signals();
    int64_t last = now_ms();
    /* joining the group takes a few seconds: the idle limit starts with the first record
     * (before it, wait up to 30 s or the idle limit, whichever is longer) */
    while (!dashi_kafka_stop && (count < 0 || seen < count) &&
           now_ms() - last < (seen ? idle : (idle > 30000 ? idle : 30000))) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "dashi tail: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last = now_ms();
        seen++;
        if (strcmp(rd_kafka_topic_name(m->rkt), cfg->topic_dead_letter) == 0) {
            print_dead_letter(m, meta);
        } else {
            dashi_event ev;
            memset(&ev, 0, sizeof(ev));
            if (dashi_codec_decode(codec, m->payload, m->len, &ev, errstr, sizeof(errstr)) == DASHI_OK) {
                char *s = dashi_event_dump(&ev);
                if (s)
                    print_record(m, meta, s);
                free(s);
                dashi_event_clear(&ev);
            } else {
                fprintf(stderr, "dashi tail: %s[%d]@%lld: cannot decode: %s\n", rd_kafka_topic_name(m->rkt),
                        (int)m->partition, (long long)m->offset, errstr);
            }
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    rc = 0;
out:
    if (sub)
        rd_kafka_topic_partition_list_destroy(sub);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    dashi_codec_destroy(codec);
    dashi_config_destroy(cfg);
    return rc;
}
