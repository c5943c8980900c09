/* cmd_replay.c — `dashi replay`: JSON events in any order → outputs in event-time order.
 *
 * Reads every line first (a file or stdin), so events may come in any order; bad
 * lines go to the rejects file (or stderr) with file, line and reason, and the
 * rest is processed. State is in memory by default, or in Redis (cleared first
 * unless --keep-state, so a replay is reproducible). A summary goes to stderr,
 * and on a terminal a progress line (app/progress.h) while events are applied.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/progress.h"
#include "app/replay.h"
#include "cli/commands.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"

typedef struct emit_ctx {
    FILE *out;
    size_t n;
} emit_ctx;

static int emit_line(void *opaque, const dashi_event *ev) {
    emit_ctx *c = opaque;
    char *s = dashi_event_dump(ev);
    if (!s)
        return 1;
    fputs(s, c->out);
    fputc('\n', c->out);
    free(s);
    c->n++;
    return 0;
}

/* A rejects file gets the original line after the reason (it is input data, to be
 * fixed and fed again); stderr is a log, and a log never carries the line, which
 * may hold clear identity values (RULES S7). */
static void reject_line(void *opaque, const char *source, size_t line, const char *reason, const char *text) {
    FILE *f = opaque;
    if (f == stderr)
        fprintf(f, "%s:%zu: %s\n", source, line, reason);
    else
        fprintf(f, "%s:%zu: %s\t%s\n", source, line, reason, text ? text : "");
}

static void progress_cb(void *opaque, size_t done, uint64_t bytes_done) {
    dashi_progress_update(opaque, done, bytes_done);
}

static void help(FILE *f) {
    fprintf(f,
            "usage: dashi replay --in FILE --out FILE [options]\n\n"
            "Process JSON events (one per line, any order) in occurred_at order (ties by event_id)\n"
            "and write the output events one per line. '-' means stdin / stdout.\n\n"
            "  --in FILE          input events (NDJSON)\n"
            "  --out FILE         output events (NDJSON)\n"
            "  --until TIME       after the last event, move the clock to TIME so timers fire\n"
            "  --config FILE      rules file (default: $DASHI_RULES or config/rules.json)\n"
            "  --rules FILE       same as --config\n"
            "  --state SPEC       memory (default) or redis://host:port[/db] or unix:///path.sock\n"
            "  --prefix P         Redis key prefix (default dashi:)\n"
            "  --keep-state       do not clear the Redis state first (continue a previous replay)\n"
            "  --batch N          events per engine batch (default %d): a batch costs a few Redis\n"
            "                     round trips in all; 1 applies events one at a time (same results)\n"
            "  --rejects FILE     refused lines with their reasons (default: reasons only, on stderr)\n"
            "  --quiet            no summary and no progress line on stderr (the progress line\n"
            "                     shows only when stderr is a terminal)\n",
            DASHI_REPLAY_BATCH);
}

int dashi_cmd_replay(int argc, char **argv) {
    static const struct option opts[] = {
        {"in", required_argument, 0, 'i'},       {"out", required_argument, 0, 'o'},
        {"until", required_argument, 0, 'u'},    {"config", required_argument, 0, 'c'},
        {"rules", required_argument, 0, 'c'},    {"state", required_argument, 0, 's'},
        {"prefix", required_argument, 0, 'p'},   {"keep-state", no_argument, 0, 'k'},
        {"rejects", required_argument, 0, 'r'},  {"quiet", no_argument, 0, 'q'},
        {"batch", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *in_path = NULL, *out_path = NULL, *until_s = NULL, *rules_path = NULL, *state_spec = "memory",
               *prefix = "dashi:", *rejects_path = NULL;
    int keep = 0, quiet = 0, c, rc = 1;
    size_t batch = DASHI_REPLAY_BATCH;
    char *end = NULL;
    char errstr[1024] = "";
    FILE *in = NULL, *out = NULL, *rej = stderr;
    dashi_rules *rules = NULL;
    dashi_keyring *keys = NULL;
    dashi_state *st = NULL;
    dashi_engine *eng = NULL;
    dashi_event_list list = {0};
    dashi_replay_stats stats = {0};
    dashi_time until = DASHI_TIME_NONE;
    dashi_progress *prog = NULL;
    uint64_t in_size = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'u': until_s = optarg; break;
        case 'c': rules_path = optarg; break;
        case 's': state_spec = optarg; break;
        case 'p': prefix = optarg; break;
        case 'k': keep = 1; break;
        case 'r': rejects_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'b':
            batch = (size_t)strtoull(optarg, &end, 10);
            if (!*optarg || *end || *optarg == '-' || batch == 0 || batch > 1000000) {
                fprintf(stderr, "dashi replay: --batch: a number of events from 1 to 1000000\n");
                return 2;
            }
            break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (!in_path || !out_path || optind != argc) {
        help(stderr);
        return 2;
    }
    if (until_s && dashi_time_parse(until_s, &until, errstr, sizeof(errstr)) != DASHI_OK) {
        fprintf(stderr, "dashi replay: --until: %s\n", errstr);
        return 2;
    }
    if (!rules_path)
        rules_path = dashi_default_rules_path();
    if (!(rules = dashi_rules_load(rules_path, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi replay: %s\n", errstr);
        goto out;
    }
    if (!(keys = dashi_keyring_load(getenv("DASHI_HMAC_KEY_REF"), errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi replay: HMAC key: %s\n", errstr);
        goto out;
    }
    in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "r");
    if (!in) {
        fprintf(stderr, "dashi replay: cannot open %s: %m\n", in_path);
        goto out;
    }
    struct stat sb;
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode))
        in_size = (uint64_t)sb.st_size;
    if (rejects_path && !(rej = fopen(rejects_path, "w"))) {
        rej = stderr;
        fprintf(stderr, "dashi replay: cannot create %s: %m\n", rejects_path);
        goto out;
    }
    if (dashi_replay_read(in, in_path, &list, &stats, reject_line, rej, errstr, sizeof(errstr)) != DASHI_OK) {
        fprintf(stderr, "dashi replay: %s\n", errstr);
        goto out;
    }
    dashi_replay_sort(&list);
    if (!(st = dashi_state_open(state_spec, prefix, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi replay: state %s: %s\n", state_spec, errstr);
        goto out;
    }
    if (!keep && st->ops->clear(st, errstr, sizeof(errstr)) != DASHI_OK) {
        fprintf(stderr, "dashi replay: cannot clear state: %s\n", errstr);
        goto out;
    }
    if (!(eng = dashi_engine_new(rules, keys, st, errstr, sizeof(errstr)))) {
        fprintf(stderr, "dashi replay: %s\n", errstr);
        goto out;
    }
    out = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "dashi replay: cannot create %s: %m\n", out_path);
        goto out;
    }
    emit_ctx ec = {out, 0};
    if (dashi_progress_wanted(stderr, quiet))
        prog = dashi_progress_new(stderr, in_size);
    if (dashi_replay_run_batch(eng, &list, in_path, until, batch, emit_line, &ec, reject_line, rej,
                               prog ? progress_cb : NULL, prog, &stats, errstr, sizeof(errstr)) != DASHI_OK) {
        dashi_progress_destroy(prog);
        prog = NULL;
        fprintf(stderr, "dashi replay: %s\n", errstr);
        goto out;
    }
    if (prog) {
        uint64_t all = 0;
        for (size_t i = 0; i < list.n; i++)
            all += list.sizes[i];
        /* refused lines never reach the list: the run covered the whole input */
        dashi_progress_finish(prog, list.n, in_size ? in_size : all);
    }
    if (fflush(out) != 0) {
        fprintf(stderr, "dashi replay: write to %s failed: %m\n", out_path);
        goto out;
    }
    if (!quiet)
        fprintf(stderr, "dashi replay: %zu lines, %zu events applied, %zu duplicates, %zu rejected, %zu outputs, %.3f s\n",
                stats.lines, stats.events, stats.duplicates, stats.rejected, ec.n, stats.seconds);
    if (!quiet && batch > 1) {
        dashi_engine_stats es;
        dashi_engine_stats_get(eng, &es);
        fprintf(stderr, "dashi replay: %" PRIu64 " batch commits, %" PRIu64 " reads guessed, %" PRIu64
                        " wrong, %" PRIu64 " steps run again\n",
                es.batches, es.guesses, es.wrong, es.reruns);
    }
    rc = 0;
out:
    if (out && out != stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "dashi replay: closing %s failed: %m\n", out_path);
        rc = 1;
    }
    if (in && in != stdin)
        fclose(in);
    if (rej && rej != stderr)
        fclose(rej);
    dashi_progress_destroy(prog);
    dashi_event_list_clear(&list);
    dashi_engine_destroy(eng);
    dashi_state_destroy(st);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
    return rc;
}
