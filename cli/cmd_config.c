/* cmd_config.c — `dashi config check FILE` and `dashi config docs`: the configuration table at work.
 *
 * check loads the file like `dashi run` does, including handing every kafka.*
 * property to librdkafka's configuration (without connecting anywhere); docs prints the
 * generated reference (docs/CONFIG.md is this output).
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "consumers/config.h"
#include "consumers/kafka.h"

int dashi_cmd_config(int argc, char **argv) {
    char errstr[1024];
    if (argc == 2 && strcmp(argv[1], "docs") == 0) {
        dashi_config_write_docs(stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "check") == 0) {
        dashi_config *cfg = dashi_config_load(argv[2], errstr, sizeof(errstr));
        if (!cfg) {
            fprintf(stderr, "%s\n", errstr);
            return 1;
        }
        int rc = 0;
        for (int role = 0; role < 2 && rc == 0; role++) {
            rd_kafka_conf_t *conf = dashi_kafka_conf_new(cfg, (dashi_kafka_role)role, NULL, NULL, NULL, errstr, sizeof(errstr));
            if (!conf) {
                fprintf(stderr, "%s: %s\n", argv[2], errstr);
                rc = 1;
            } else {
                rd_kafka_conf_destroy(conf);
            }
        }
        if (rc == 0)
            printf("%s: ok (%zu kafka.* properties)\n", argv[2], cfg->n_kafka);
        dashi_config_destroy(cfg);
        return rc;
    }
    fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
            "usage: dashi config check FILE    validate a processor configuration (kafka.* included)\n"
            "       dashi config docs          print the configuration reference (Markdown)\n");
    return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
