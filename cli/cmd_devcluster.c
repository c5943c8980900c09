/* cmd_devcluster.c — `dashi devcluster`: librdkafka's mock Kafka cluster with dashi's topics, until stopped.
 *
 * The mock cluster (rdkafka_mock.h) speaks the real Kafka protocol on loopback
 * TCP ports it picks itself, so this prints the bootstrap string (and writes it to
 * --bootstrap-file) for the other commands. The mock has no CreateTopics: every
 * input, output and dead-letter topic of the configuration is created here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli/commands.h"
#include "consumers/config.h"
#include "consumers/kafka.h"

static void help(FILE *f) {
    fprintf(f, "usage: dashi devcluster [--config FILE] [--brokers N] [--partitions N] [--bootstrap-file PATH]\n\n"
               "Start librdkafka's mock Kafka cluster on loopback, create dashi's topics, print the\n"
               "bootstrap servers and run until SIGINT/SIGTERM. For development, demos and tests only:\n"
               "the mock keeps data in memory and its transactions only acknowledge.\n");
}

int dashi_cmd_devcluster(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"brokers", required_argument, 0, 'b'},
                                         {"partitions", required_argument, 0, 'p'},
                                         {"bootstrap-file", required_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cfg_path = NULL, *bfile = NULL;
    int brokers = 1, partitions = 4, c, rc = 1;
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
    while (!dashi_kafka_stop)
        rd_kafka_poll(rk, 200);
    rc = 0;
out:
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    dashi_config_destroy(cfg);
    return rc;
}
