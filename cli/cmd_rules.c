/* cmd_rules.c — `dashi rules`: check a rules file, or show the rule set and campaigns in force at a time.
 *
 * Both subcommands only load the file through dashi_rules_load (so `check` refuses
 * exactly what the processor would refuse, with the same "FILE: PATH: problem"
 * message) and print from the resolved values (dashi_ruleset_to_json,
 * dashi_campaign_to_json), never from the raw file: what `show` prints is what the
 * rules code will use, every inherited value filled in. The default file is the
 * program-wide one (dashi_default_rules_path: $DASHI_RULES, the source tree's
 * config/rules.json, ./config/rules.json). Exit status: 0 ok, 1 the file is bad,
 * 2 usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/replay.h"
#include "cli/commands.h"
#include "core/rules.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: dashi rules check [FILE]\n"
            "       dashi rules show [--config FILE] [--at TIME]\n\n"
            "The program's rules as data (config/rules.json; format: config/README.md).\n\n"
            "  check [FILE]       load and validate FILE (default: the rules file in use); prints\n"
            "                     \"FILE: ok (N periods, M campaigns)\" or the first error as\n"
            "                     \"FILE: PATH: problem\" and exits 1\n"
            "  show               print the resolved rules as JSON: with --at, the rule set in force at\n"
            "                     TIME (version, from, until, every value) and the campaigns whose window\n"
            "                     [starts_at, ends_at) contains TIME; without it, every rule set and campaign\n\n"
            "The default rules file is $DASHI_RULES, else the source tree's config/rules.json, else\n"
            "./config/rules.json. 'dashi rules check --help', 'dashi rules show --help' for more.\n");
}

static void help_check(FILE *f) {
    fprintf(f,
            "usage: dashi rules check [FILE]\n\n"
            "Load FILE (default: $DASHI_RULES, the source tree's config/rules.json, ./config/rules.json),\n"
            "resolve its periods and validate every rule set and campaign. Prints\n"
            "\"FILE: ok (N periods, M campaigns)\" and exits 0, or prints the first problem as\n"
            "\"FILE: PATH: problem\" (or \"FILE:LINE:COLUMN: ...\" for a JSON syntax error) and exits 1.\n");
}

static void help_show(FILE *f) {
    fprintf(f,
            "usage: dashi rules show [--config FILE] [--at TIME]\n\n"
            "Print the resolved rules as pretty JSON.\n\n"
            "  --config FILE   rules file (default: $DASHI_RULES, the source tree's config/rules.json,\n"
            "                  ./config/rules.json); --rules FILE is the same\n"
            "  --at TIME       ISO-8601 instant with offset, e.g. 2022-06-08T10:00:00+08:00: print the\n"
            "                  rule set in force then and the campaigns whose window contains TIME;\n"
            "                  without --at every rule set and every campaign is printed\n");
}

static int print_json(FILE *out, json_t *doc) {
    int rc = 1;
    char *text = NULL;
    if (!doc)
        goto out;
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    fprintf(out, "%s\n", text);
    rc = 0;
out:
    free(text);
    return rc;
}

static int cmd_check(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    char errstr[1024] = "";
    dashi_rules *rules = NULL;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            help_check(stdout);
            rc = 0;
            goto out;
        }
        help_check(stderr);
        rc = 2;
        goto out;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dashi rules check: one file at most\n");
        help_check(stderr);
        rc = 2;
        goto out;
    }
    path = optind < argc ? argv[optind] : dashi_default_rules_path();
    rules = dashi_rules_load(path, errstr, sizeof errstr);
    if (!rules) {
        fprintf(stderr, "%s\n", errstr);
        goto out;
    }
    printf("%s: ok (%zu period%s, %zu campaign%s)\n", path, rules->n_sets, rules->n_sets == 1 ? "" : "s",
           rules->n_campaigns, rules->n_campaigns == 1 ? "" : "s");
    rc = 0;
out:
    dashi_rules_destroy(rules);
    return rc;
}

/* The document `show` prints: the file's identity, then the set(s) and campaigns. */
static json_t *show_doc(const dashi_rules *rules, dashi_time at) {
    json_t *doc = json_object(), *sets = NULL, *camps = json_array(), *result = NULL;
    char buf[DASHI_TIME_STRLEN], buf2[DASHI_TIME_STRLEN];
    int ok = doc && camps;
    if (!ok)
        goto out;
    ok &= json_object_set_new(doc, "source", json_string(rules->source)) == 0;
    ok &= json_object_set_new(doc, "name", json_string(rules->name)) == 0;
    ok &= json_object_set_new(doc, "revision", json_integer(rules->revision)) == 0;
    if (at != DASHI_TIME_NONE) {
        ok &= json_object_set_new(doc, "at", json_string(dashi_time_format(at, buf))) == 0;
        if (at < rules->plausible_from || at >= rules->plausible_until)
            ok &= json_object_set_new(doc, "warning", json_string("outside the plausible range of the file")) == 0;
        ok &= json_object_set_new(doc, "ruleset", dashi_ruleset_to_json(dashi_rules_at(rules, at))) == 0;
    } else {
        ok &= json_object_set_new(doc, "plausible",
                                  json_pack("{s:s,s:s}", "from", dashi_time_format(rules->plausible_from, buf), "until",
                                            dashi_time_format(rules->plausible_until, buf2))) == 0;
        sets = json_array();
        for (size_t i = 0; sets && i < rules->n_sets; i++)
            ok &= json_array_append_new(sets, dashi_ruleset_to_json(&rules->sets[i])) == 0;
        ok &= json_object_set(doc, "rulesets", sets) == 0;
    }
    for (size_t i = 0; i < rules->n_campaigns; i++) {
        const dashi_campaign *cp = &rules->campaigns[i];
        if (at != DASHI_TIME_NONE && (at < cp->starts_at || at >= cp->ends_at))
            continue;
        ok &= json_array_append_new(camps, dashi_campaign_to_json(cp)) == 0;
    }
    ok &= json_object_set(doc, "campaigns", camps) == 0;
    if (!ok)
        goto out;
    result = doc;
    doc = NULL;
out:
    json_decref(sets);
    json_decref(camps);
    json_decref(doc);
    return result;
}

static int cmd_show(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"rules", required_argument, 0, 'c'},
                                         {"at", required_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL, *at_s = NULL;
    char errstr[1024] = "";
    dashi_rules *rules = NULL;
    dashi_time at = DASHI_TIME_NONE;
    json_t *doc = NULL;
    int c, rc = 2;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'a': at_s = optarg; break;
        case 'h':
            help_show(stdout);
            rc = 0;
            goto out;
        default:
            help_show(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dashi rules show: unexpected argument '%s'\n", argv[optind]);
        help_show(stderr);
        goto out;
    }
    if (at_s && dashi_time_parse(at_s, &at, errstr, sizeof errstr) != DASHI_OK) {
        fprintf(stderr, "dashi rules show: --at: %s\n", errstr);
        goto out;
    }
    if (!path)
        path = dashi_default_rules_path();
    rc = 1;
    rules = dashi_rules_load(path, errstr, sizeof errstr);
    if (!rules) {
        fprintf(stderr, "%s\n", errstr);
        goto out;
    }
    doc = show_doc(rules, at);
    if (print_json(stdout, doc) != 0) {
        fprintf(stderr, "dashi rules show: out of memory\n");
        goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    dashi_rules_destroy(rules);
    return rc;
}

int dashi_cmd_rules(int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub) {
        help(stderr);
        return 2;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        help(stdout);
        return 0;
    }
    if (strcmp(sub, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    fprintf(stderr, "dashi rules: unknown subcommand '%s'\n", sub);
    help(stderr);
    return 2;
}
