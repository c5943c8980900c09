/* cmd_run.c — `dashi run --config FILE`: the live processor.
 *
 * Loads the configuration (kafka.* checked by librdkafka before anything starts),
 * then runs the pipeline until SIGTERM/SIGINT (graceful: flush and close within
 * shutdown.deadline_ms) or a second signal (immediate: everything applied is
 * already in Redis with its outbox, so nothing is lost). Logging (log.level,
 * log.format) is set up first; /metrics, /healthz and /readyz are served for the
 * whole run when metrics.listen is set (docs/OPERATIONS.md).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "consumers/kafka.h"
#include "consumers/log.h"
#include "consumers/pipeline.h"
#include "consumers/telemetry.h"

/* The command's own last words: plain "dashi run: ..." lines, or through the
 * process log when it writes JSON (so a log collector sees JSON only). */
static void say(const dashi_config *cfg, dashi_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const dashi_config *cfg, dashi_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (cfg->log_format && strcmp(cfg->log_format, "json") == 0) {
        dashi_logv(level, "run", fmt, ap);
    } else {
        fprintf(stderr, "dashi run: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}

static void help(FILE *f) {
    fprintf(f, "usage: dashi run [--config FILE] [--bootstrap SERVERS] [--set KEY=VALUE]... [--exit-idle MS]\n"
               "                 [--clock-until TIME] [--verbose]\n\n"
               "Consume the input topics, apply the rules on Redis state, produce the outputs.\n"
               "  --config FILE       processor configuration (docs/CONFIG.md); default: built-in defaults\n"
               "  --bootstrap S       Kafka bootstrap servers (overrides kafka.bootstrap.servers)\n"
               "  --set KEY=VALUE     override one setting of the file\n"
               "  --exit-idle MS      stop after MS with nothing to do (demos and tests)\n"
               "  --clock-until TIME  idle stream-time advance stops at TIME (reproducible runs)\n"
               "  --verbose           log assignments and outbox re-sends\n");
}

int dashi_cmd_run(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},  {"bootstrap", required_argument, 0, 'b'},
                                         {"set", required_argument, 0, 's'},     {"exit-idle", required_argument, 0, 'x'},
                                         {"clock-until", required_argument, 0, 'u'}, {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *cfg_path = NULL;
    char errstr[1024];
    char *sets[64];
    int n_sets = 0, c, rc = 1;
    dashi_pipeline_opts po;
    dashi_pipeline_stats stats;
    dashi_telemetry *tel = NULL;
    memset(&po, 0, sizeof(po));
    memset(&stats, 0, sizeof(stats));
    po.clock_until = DASHI_TIME_NONE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'b': po.bootstrap = optarg; break;
        case 's':
            if (n_sets < 64)
                sets[n_sets++] = optarg;
            break;
        case 'x': po.exit_idle_ms = atoll(optarg); break;
        case 'u':
            if (dashi_time_parse(optarg, &po.clock_until, errstr, sizeof(errstr)) != DASHI_OK) {
                fprintf(stderr, "dashi run: --clock-until: %s\n", errstr);
                return 2;
            }
            break;
        case 'v': po.verbose = 1; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    dashi_config *cfg = cfg_path ? dashi_config_load(cfg_path, errstr, sizeof(errstr))
                                 : dashi_config_new_default(errstr, sizeof(errstr));
    if (!cfg) {
        fprintf(stderr, "dashi run: %s\n", errstr);
        return 1;
    }
    for (int i = 0; i < n_sets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            fprintf(stderr, "dashi run: --set %s: expected KEY=VALUE\n", sets[i]);
            goto out;
        }
        *eq = '\0';
        if (dashi_config_set(cfg, sets[i], eq + 1, errstr, sizeof(errstr)) != DASHI_OK) {
            fprintf(stderr, "dashi run: --set: %s\n", errstr);
            goto out;
        }
    }
    po.cfg = cfg;
    if (dashi_log_configure(cfg->log_level, cfg->log_format, errstr, sizeof(errstr)) != DASHI_OK ||
        !(tel = dashi_telemetry_new(cfg, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi run: %s\n", errstr);
        goto out;
    }
    po.tel = tel;
    dashi_kafka_install_signals();
    if (dashi_pipeline_run(&po, &stats, errstr, sizeof(errstr)) != DASHI_OK) {
        say(cfg, DASHI_LOG_ERROR, "%s", errstr);
        goto out;
    }
    say(cfg, DASHI_LOG_INFO,
            "stopped: %llu consumed, %llu applied, %llu duplicates, %llu dead letters, "
            "%llu outputs produced (%llu acknowledged, %llu re-sent), %llu fetch pauses in %.1f s\n",
            (unsigned long long)stats.consumed, (unsigned long long)stats.applied, (unsigned long long)stats.duplicates,
            (unsigned long long)stats.dead_letters, (unsigned long long)stats.outputs_produced,
            (unsigned long long)stats.outputs_acked, (unsigned long long)stats.resent, (unsigned long long)stats.pauses,
            stats.seconds);
    rc = 0;
out:
    dashi_telemetry_destroy(tel);
    dashi_config_destroy(cfg);
    return rc;
}
