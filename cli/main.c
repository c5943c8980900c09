/* main.c — the dashi program: one binary, one subcommand per job.
 *
 * Dispatch is a table of (name, function, summary) rows, so `dashi --help` and the
 * dispatcher can never disagree. Each command owns its options and its --help.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", dashi_cmd_run, "the live processor: Kafka in, Redis state, Kafka out"},
    {"replay", dashi_cmd_replay, "process JSON events offline (NDJSON in, outputs out)"},
    {"explain", dashi_cmd_explain, "why an order, customer or campaign promoter stands as it does, with rule IDs"},
    {"whatif", dashi_cmd_whatif, "replay the same events under two rules files and report the difference"},
    {"inspect", dashi_cmd_inspect, "show the stored state of a customer, person, ambassador, campaign or order"},
    {"scenario", dashi_cmd_scenario, "run scenario files and check their expectations"},
    {"rules", dashi_cmd_rules, "check a rules file, or show the rule set in force at a time"},
    {"schemas", dashi_cmd_schemas, "write or check the Avro schemas of every event"},
    {"config", dashi_cmd_config, "check a processor configuration, or print its reference"},
    {"gen", dashi_cmd_gen, "write a seeded, realistic stream of input events (NDJSON)"},
    {"devcluster", dashi_cmd_devcluster, "run librdkafka's mock Kafka cluster with dashi's topics"},
    {"publish", dashi_cmd_publish, "publish JSON events as Avro records on their topics"},
    {"tail", dashi_cmd_tail, "print output topics as JSON lines"},
    {"summary", dashi_cmd_summary, "summarize output events: commissions, campaigns, alerts"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: dashi COMMAND [OPTIONS]   (dashi COMMAND --help for a command's options)\n\n"
               "dashi — event-stream processor of the ambassador (referral) program.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dashi 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dashi: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
