/* cmd_gen.c — `dashi gen`: write a seeded, realistic stream of input events (NDJSON).
 *
 * Used by the demo, the differential tests and bench/. Same options, same bytes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/generate.h"
#include "cli/commands.h"

static void help(FILE *f) {
    fprintf(f, "usage: dashi gen [--seed N] [--ambassadors N] [--customers N] [--start TIME] [--days N]\n"
               "                 [--shuffle] [--out FILE]\n\n"
               "Write a realistic June 2022 event stream (NDJSON) for demos, tests and benchmarks.\n"
               "Defaults: seed 1, 1000 ambassadors, 10000 customers, 2022-06-01T00:00:00+08:00, 30 days.\n");
}

static int parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > 100000000UL)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int dashi_cmd_gen(int argc, char **argv) {
    static const struct option opts[] = {
        {"seed", required_argument, 0, 's'},      {"ambassadors", required_argument, 0, 'a'},
        {"customers", required_argument, 0, 'c'}, {"start", required_argument, 0, 't'},
        {"days", required_argument, 0, 'd'},      {"shuffle", no_argument, 0, 'x'},
        {"out", required_argument, 0, 'o'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    dashi_gen_opts o;
    const char *out_path = "-";
    char errstr[256];
    int c;
    uint32_t seed32 = 1;
    dashi_gen_opts_default(&o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 's': bad = parse_u32(optarg, &seed32); o.seed = seed32; break;
        case 'a': bad = parse_u32(optarg, &o.ambassadors) || o.ambassadors == 0; break;
        case 'c': bad = parse_u32(optarg, &o.customers); break;
        case 'd': bad = parse_u32(optarg, &o.days) || o.days == 0; break;
        case 't': bad = dashi_time_parse(optarg, &o.start, errstr, sizeof(errstr)) != DASHI_OK; break;
        case 'x': o.sorted = 0; break;
        case 'o': out_path = optarg; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "dashi gen: bad option value '%s' (see dashi gen --help)\n", optarg ? optarg : "");
            return 2;
        }
    }
    FILE *out = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "dashi gen: cannot create %s: %m\n", out_path);
        return 1;
    }
    uint64_t n = 0;
    dashi_err err = dashi_generate(&o, out, &n, errstr, sizeof(errstr));
    int rc = err == DASHI_OK ? 0 : 1;
    if (err != DASHI_OK)
        fprintf(stderr, "dashi gen: %s\n", errstr);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "dashi gen: writing %s failed: %m\n", out_path);
        rc = 1;
    }
    if (rc == 0)
        fprintf(stderr, "dashi gen: %llu events\n", (unsigned long long)n);
    return rc;
}
