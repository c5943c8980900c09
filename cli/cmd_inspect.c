/* cmd_inspect.c — `dashi inspect`: the stored state of a customer, person, ambassador, campaign or order, from Redis.
 *
 * Opens the state like `dashi replay --state` (a Redis URL and a key prefix),
 * loads the rules (for the campaigns whose keys it looks up) and prints the
 * records of one subject (app/inspect.c): readable times, attribute hashes cut to
 * 8 characters, never an identity value. Exit 0 when something is stored, 1 when
 * nothing is (or the store fails), 2 on a usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/inspect.h"
#include "app/replay.h"
#include "cli/commands.h"
#include "core/rules.h"
#include "core/state.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: dashi inspect --state URL [--prefix P] SUBJECT\n\n"
            "Show what the state holds about one subject, record by record (JSON, keys sorted,\n"
            "instants as CST times, identity hashes cut to 8 characters: no identity value is shown).\n\n"
            "  --state URL        redis://host:port[/db] or unix:///path.sock (the state of replay --state or run)\n"
            "  --prefix P         Redis key prefix (default dashi:)\n"
            "  --config FILE      rules file, for the campaigns (default: $DASHI_RULES or config/rules.json)\n"
            "SUBJECT, exactly one of:\n"
            "  --customer UID     account, association, campaign touches and entries, its orders\n"
            "  --person UID       the person of this account: every member account and shared attribute\n"
            "  --ambassador UID   ambassador record, own account, promoter records of every campaign\n"
            "  --campaign ID      a program (K2) or link campaign id (invite-2206): settlement and every\n"
            "                     promoter, one line each; with --promoter UID that promoter in full\n"
            "  --order ID         the order with its commission outcome, and how campaigns counted it\n");
}

int dashi_cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {
        {"state", required_argument, 0, 's'},    {"prefix", required_argument, 0, 'p'},
        {"config", required_argument, 0, 'c'},   {"rules", required_argument, 0, 'c'},
        {"customer", required_argument, 0, 'C'}, {"person", required_argument, 0, 'P'},
        {"ambassador", required_argument, 0, 'A'}, {"campaign", required_argument, 0, 'K'},
        {"promoter", required_argument, 0, 'R'}, {"order", required_argument, 0, 'O'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *state_spec = NULL, *prefix = "dashi:", *rules_path = NULL, *id = NULL, *promoter = NULL;
    int c, rc = 1, subjects = 0;
    dashi_inspect_what what = DASHI_INSPECT_CUSTOMER;
    char errstr[1024] = "";
    dashi_rules *rules = NULL;
    dashi_state *st = NULL;
    dashi_err err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': state_spec = optarg; break;
        case 'p': prefix = optarg; break;
        case 'c': rules_path = optarg; break;
        case 'C': what = DASHI_INSPECT_CUSTOMER; id = optarg; subjects++; break;
        case 'P': what = DASHI_INSPECT_PERSON; id = optarg; subjects++; break;
        case 'A': what = DASHI_INSPECT_AMBASSADOR; id = optarg; subjects++; break;
        case 'K': what = DASHI_INSPECT_CAMPAIGN; id = optarg; subjects++; break;
        case 'O': what = DASHI_INSPECT_ORDER; id = optarg; subjects++; break;
        case 'R': promoter = optarg; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (optind != argc || !state_spec || subjects != 1 || (promoter && what != DASHI_INSPECT_CAMPAIGN)) {
        help(stderr);
        return 2;
    }
    if (strcmp(state_spec, "memory") == 0) {
        fprintf(stderr, "dashi inspect: a memory state is empty: give the Redis state of a replay or run\n");
        return 2;
    }
    if (!rules_path)
        rules_path = dashi_default_rules_path();
    if (!(rules = dashi_rules_load(rules_path, errstr, sizeof errstr))) {
        fprintf(stderr, "dashi inspect: %s\n", errstr);
        goto out;
    }
    if (!(st = dashi_state_open(state_spec, prefix, errstr, sizeof errstr))) {
        fprintf(stderr, "dashi inspect: state: %s\n", errstr);
        goto out;
    }
    err = dashi_inspect(st, rules, what, id, promoter, stdout, errstr, sizeof errstr);
    if (err != DASHI_OK) {
        fprintf(stderr, "dashi inspect: %s\n", errstr);
        goto out;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "dashi inspect: write failed: %m\n");
        goto out;
    }
    rc = 0;
out:
    dashi_state_destroy(st);
    dashi_rules_destroy(rules);
    return rc;
}
