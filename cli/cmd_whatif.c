/* cmd_whatif.c — `dashi whatif`: the same events under two rules files, and what the second would change (RULES V2).
 *
 * Reads the events once (bad lines are reported on stderr, or to --rejects, and
 * left out, as in `dashi replay`), replays them in memory under each rules file
 * (app/whatif.c) and prints the difference B − A as tables on stdout: totals, per
 * rule version, tier, outcome, reason code, campaign, and the --top ambassadors
 * whose commission changes most. --html also writes the report as one
 * self-contained page with bar charts.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/replay.h"
#include "app/whatif.h"
#include "cli/commands.h"
#include "core/hashing.h"
#include "core/rules.h"

static void reject_line(void *opaque, const char *source, size_t line, const char *reason, const char *text) {
    FILE *f = opaque;
    if (f == stderr) /* a log never carries the line: it may hold clear identity values (S7) */
        fprintf(f, "%s:%zu: %s\n", source, line, reason);
    else
        fprintf(f, "%s:%zu: %s\t%s\n", source, line, reason, text ? text : "");
}

static void help(FILE *f) {
    fprintf(f,
            "usage: dashi whatif --in EVENTS --rules A.json --rules B.json [options]\n\n"
            "Replay the same events (NDJSON, any order) in memory under two rules files and report\n"
            "the difference B - A: total commission, and per rule version, tier, outcome, reason code,\n"
            "campaign and ambassador the counts and amounts (RMB with 2 decimals; yunqi marked yq).\n\n"
            "  --in FILE          input events (NDJSON; '-' for stdin)\n"
            "  --rules FILE       a rules file; give it twice: first A, then B\n"
            "  --until TIME       after the last event, move the clock to TIME so timers fire\n"
            "  --top N            ambassadors shown, largest absolute difference first (default 10)\n"
            "  --html FILE        also write the report as a self-contained HTML page with charts\n"
            "  --rejects FILE     refused lines with their reasons (default: reasons only, on stderr)\n"
            "  --quiet            no progress notes on stderr\n");
}

int dashi_cmd_whatif(int argc, char **argv) {
    static const struct option opts[] = {
        {"in", required_argument, 0, 'i'},     {"rules", required_argument, 0, 'r'},
        {"until", required_argument, 0, 'u'},  {"top", required_argument, 0, 't'},
        {"html", required_argument, 0, 'H'},   {"rejects", required_argument, 0, 'R'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *in_path = NULL, *rules_path[2] = {NULL, NULL}, *until_s = NULL, *html_path = NULL,
               *rejects_path = NULL;
    int n_rules = 0, quiet = 0, c, rc = 1;
    long top = 10;
    char errstr[1024] = "", *end;
    FILE *in = NULL, *rej = stderr, *html = NULL;
    dashi_rules *rules[2] = {NULL, NULL};
    dashi_keyring *keys = NULL;
    dashi_event_list list = {0};
    dashi_replay_stats stats = {0};
    dashi_whatif *w = NULL;
    dashi_time until = DASHI_TIME_NONE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in_path = optarg; break;
        case 'r':
            if (n_rules == 2) {
                fprintf(stderr, "dashi whatif: --rules is given exactly twice (A, then B)\n");
                return 2;
            }
            rules_path[n_rules++] = optarg;
            break;
        case 'u': until_s = optarg; break;
        case 't':
            top = strtol(optarg, &end, 10);
            if (*end || top < 1 || top > 100000) {
                fprintf(stderr, "dashi whatif: --top: expected a number 1..100000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'H': html_path = optarg; break;
        case 'R': rejects_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (!in_path || n_rules != 2 || optind != argc) {
        help(stderr);
        return 2;
    }
    if (until_s && dashi_time_parse(until_s, &until, errstr, sizeof errstr) != DASHI_OK) {
        fprintf(stderr, "dashi whatif: --until: %s\n", errstr);
        return 2;
    }
    for (int s = 0; s < 2; s++)
        if (!(rules[s] = dashi_rules_load(rules_path[s], errstr, sizeof errstr))) {
            fprintf(stderr, "dashi whatif: %s\n", errstr);
            goto out;
        }
    if (!(keys = dashi_keyring_load(getenv("DASHI_HMAC_KEY_REF"), errstr, sizeof errstr))) {
        fprintf(stderr, "dashi whatif: HMAC key: %s\n", errstr);
        goto out;
    }
    if (!(in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "r"))) {
        fprintf(stderr, "dashi whatif: cannot open %s: %m\n", in_path);
        goto out;
    }
    if (rejects_path && !(rej = fopen(rejects_path, "w"))) {
        rej = stderr;
        fprintf(stderr, "dashi whatif: cannot create %s: %m\n", rejects_path);
        goto out;
    }
    if (html_path && !(html = fopen(html_path, "w"))) {
        fprintf(stderr, "dashi whatif: cannot create %s: %m\n", html_path);
        goto out;
    }
    if (dashi_replay_read(in, in_path, &list, &stats, reject_line, rej, errstr, sizeof errstr) != DASHI_OK) {
        fprintf(stderr, "dashi whatif: %s\n", errstr);
        goto out;
    }
    dashi_replay_sort(&list);
    if (!quiet)
        fprintf(stderr, "dashi whatif: %zu events read (%zu lines refused); replaying under A and B\n", list.n,
                stats.rejected);
    if (!(w = dashi_whatif_new(errstr, sizeof errstr)) ||
        dashi_whatif_run(w, &list, (const dashi_rules *const[2]){rules[0], rules[1]},
                         (const char *const[2]){rules_path[0], rules_path[1]}, keys, until, reject_line, rej, errstr,
                         sizeof errstr) != DASHI_OK) {
        fprintf(stderr, "dashi whatif: %s\n", errstr);
        goto out;
    }
    dashi_whatif_print(w, stdout, (size_t)top);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "dashi whatif: write failed: %m\n");
        goto out;
    }
    if (html) {
        if (dashi_whatif_html(w, html, (size_t)top, errstr, sizeof errstr) != DASHI_OK) {
            fprintf(stderr, "dashi whatif: %s: %s\n", html_path, errstr);
            goto out;
        }
        if (!quiet)
            fprintf(stderr, "dashi whatif: wrote %s\n", html_path);
    }
    rc = 0;
out:
    if (html && fclose(html) != 0 && rc == 0) {
        fprintf(stderr, "dashi whatif: closing %s failed: %m\n", html_path);
        rc = 1;
    }
    if (in && in != stdin)
        fclose(in);
    if (rej && rej != stderr)
        fclose(rej);
    dashi_whatif_destroy(w);
    dashi_event_list_clear(&list);
    dashi_keyring_destroy(keys);
    for (int s = 0; s < 2; s++)
        dashi_rules_destroy(rules[s]);
    return rc;
}
