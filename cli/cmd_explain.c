/* cmd_explain.c — `dashi explain`: why an order, a customer or a campaign promoter stands as it does, in plain words with rule IDs.
 *
 * The state to explain comes from one of two places: --in replays an NDJSON file
 * into memory first (like `dashi replay`, with --until and --config), or --state
 * reads the Redis state an earlier `dashi replay --state` or `dashi run` left, under
 * the same --prefix. Then each --order, --customer, or --campaign with --promoter
 * is explained in turn (app/explain.c). Refused input lines go to stderr with their
 * line and reason only, never their text, as it may hold clear identity values.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/explain.h"
#include "app/replay.h"
#include "cli/commands.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"

#define MAX_QUERIES 64

static void help(FILE *f) {
    fprintf(f,
            "usage: dashi explain (--in FILE [--until TIME] | --state SPEC [--prefix P]) [--config FILE]\n"
            "                     (--order ID | --customer UID | --campaign ID --promoter UID)...\n\n"
            "Explain in plain words, with the rule IDs of RULES.md, the decisions held in the state:\n"
            "  --order ID         the order's association, person, first purchase, base, rate, cap,\n"
            "                     review, instalments, refunds and its outcome with reason codes\n"
            "  --customer UID     the customer's person, association, orders and campaign entries\n"
            "  --campaign ID      with --promoter UID: counted users, the step reached per ladder and\n"
            "  --promoter UID     why each user reached through the link is not counted (K rules);\n"
            "                     ID is a program id (K2) or a link campaign id (invite-2206)\n"
            "--order and --customer may be repeated.\n\n"
            "Where the state comes from:\n"
            "  --in FILE          replay these events (NDJSON, any order; '-' stdin) into memory first\n"
            "  --until TIME       with --in: move the clock to TIME after the last event (timers fire)\n"
            "  --state SPEC       or read the state of `dashi replay --state` / `dashi run`:\n"
            "                     redis://host:port[/db] or unix:///path.sock\n"
            "  --prefix P         Redis key prefix the writer used (default dashi:)\n"
            "  --config FILE      rules file (default: $DASHI_RULES or config/rules.json); --rules too\n"
            "  --quiet            no summary of the replay on stderr\n\n"
            "Identity values are never printed: only their kinds and 8-character hash prefixes.\n"
            "Exit status: 0 explained, 1 not found or failure, 2 usage error.\n");
}

int dashi_cmd_explain(int argc, char **argv) {
    static const struct option opts[] = {
        {"in", required_argument, 0, 'i'},       {"until", required_argument, 0, 'u'},
        {"state", required_argument, 0, 's'},    {"prefix", required_argument, 0, 'p'},
        {"config", required_argument, 0, 'c'},   {"rules", required_argument, 0, 'c'},
        {"order", required_argument, 0, 'o'},    {"customer", required_argument, 0, 'C'},
        {"campaign", required_argument, 0, 'k'}, {"promoter", required_argument, 0, 'P'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *in_path = NULL, *until_s = NULL, *state_spec = NULL, *prefix = "dashi:", *rules_path = NULL;
    const char *campaign = NULL, *promoter = NULL, *orders[MAX_QUERIES], *customers[MAX_QUERIES];
    size_t n_orders = 0, n_customers = 0, n_events = 0, n_rejected = 0, done = 0;
    int c, rc = 1, quiet = 0;
    char errstr[1024] = "";
    FILE *in = NULL;
    dashi_rules *rules = NULL;
    dashi_keyring *keys = NULL;
    dashi_state *st = NULL;
    dashi_time until = DASHI_TIME_NONE;
    dashi_err err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in_path = optarg; break;
        case 'u': until_s = optarg; break;
        case 's': state_spec = optarg; break;
        case 'p': prefix = optarg; break;
        case 'c': rules_path = optarg; break;
        case 'k':
        case 'P':
            if (c == 'k' ? campaign != NULL : promoter != NULL) {
                fprintf(stderr, "dashi explain: one --campaign and one --promoter at a time\n");
                return 2;
            }
            *(c == 'k' ? &campaign : &promoter) = optarg;
            break;
        case 'q': quiet = 1; break;
        case 'o':
            if (n_orders == MAX_QUERIES) {
                fprintf(stderr, "dashi explain: at most %d --order\n", MAX_QUERIES);
                return 2;
            }
            orders[n_orders++] = optarg;
            break;
        case 'C':
            if (n_customers == MAX_QUERIES) {
                fprintf(stderr, "dashi explain: at most %d --customer\n", MAX_QUERIES);
                return 2;
            }
            customers[n_customers++] = optarg;
            break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (optind != argc || !in_path == !state_spec || (!campaign != !promoter) ||
        (n_orders + n_customers == 0 && !campaign) || (until_s && !in_path)) {
        help(stderr);
        return 2;
    }
    if (state_spec && strcmp(state_spec, "memory") == 0) {
        fprintf(stderr, "dashi explain: a memory state starts empty: use --in FILE to replay events first\n");
        return 2;
    }
    if (until_s && dashi_time_parse(until_s, &until, errstr, sizeof errstr) != DASHI_OK) {
        fprintf(stderr, "dashi explain: --until: %s\n", errstr);
        return 2;
    }
    if (!rules_path)
        rules_path = dashi_default_rules_path();
    if (!(rules = dashi_rules_load(rules_path, errstr, sizeof errstr))) {
        fprintf(stderr, "dashi explain: %s\n", errstr);
        goto out;
    }
    if (in_path) {
        if (!(keys = dashi_keyring_load(getenv("DASHI_HMAC_KEY_REF"), errstr, sizeof errstr))) {
            fprintf(stderr, "dashi explain: HMAC key: %s\n", errstr);
            goto out;
        }
        if (!(in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "r"))) {
            fprintf(stderr, "dashi explain: cannot open %s: %m\n", in_path);
            goto out;
        }
        if (dashi_explain_replay(in, in_path, rules, keys, until, stderr, &st, &n_events, &n_rejected, errstr,
                                 sizeof errstr) != DASHI_OK) {
            fprintf(stderr, "dashi explain: %s\n", errstr);
            goto out;
        }
        if (!quiet)
            fprintf(stderr, "dashi explain: replayed %zu events of %s (%zu refused)%s%s into memory\n", n_events,
                    in_path, n_rejected, until_s ? ", clock moved to " : "", until_s ? until_s : "");
    } else if (!(st = dashi_state_open(state_spec, prefix, errstr, sizeof errstr))) {
        fprintf(stderr, "dashi explain: state %s: %s\n", state_spec, errstr);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n_orders; i++, done++) {
        if (done)
            fputc('\n', stdout);
        if ((err = dashi_explain_order(st, rules, orders[i], stdout, errstr, sizeof errstr)) != DASHI_OK) {
            fprintf(stderr, "dashi explain: order %s: %s\n", orders[i], errstr);
            rc = 1;
        }
    }
    for (size_t i = 0; i < n_customers; i++, done++) {
        if (done)
            fputc('\n', stdout);
        if ((err = dashi_explain_customer(st, rules, customers[i], stdout, errstr, sizeof errstr)) != DASHI_OK) {
            fprintf(stderr, "dashi explain: customer %s: %s\n", customers[i], errstr);
            rc = 1;
        }
    }
    if (campaign) {
        if (done)
            fputc('\n', stdout);
        if ((err = dashi_explain_campaign(st, rules, campaign, promoter, stdout, errstr, sizeof errstr)) != DASHI_OK) {
            fprintf(stderr, "dashi explain: campaign %s: %s\n", campaign, errstr);
            rc = 1;
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "dashi explain: write failed: %m\n");
        rc = 1;
    }
out:
    if (in && in != stdin)
        fclose(in);
    dashi_state_destroy(st);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
    return rc;
}
