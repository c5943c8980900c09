/* cmd_summary.c — `dashi summary`: a readable account of an output stream (NDJSON).
 *
 * Reads output events (from `dashi tail` or `dashi replay`) and prints what a
 * program manager asks first: commissions by outcome and tier with their
 * amounts (each commission counted once, at its latest event), rejections by
 * reason, campaign steps reached, draws and bonuses, same-person decisions, and
 * fraud alerts by kind. Duplicate deliveries (same id and event) count once.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "core/event.h"

/* A small counter map: name → (count, sum). */
typedef struct tally {
    json_t *m; /* object name → [count, sum] */
} tally;

static void tally_add(tally *t, const char *name, json_int_t sum) {
    json_t *a = json_object_get(t->m, name);
    if (!a) {
        a = json_pack("[I,I]", (json_int_t)0, (json_int_t)0);
        json_object_set_new(t->m, name, a);
    }
    json_array_set_new(a, 0, json_integer(json_integer_value(json_array_get(a, 0)) + 1));
    json_array_set_new(a, 1, json_integer(json_integer_value(json_array_get(a, 1)) + sum));
}

static int by_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Rows sorted by name. unit: "RMB" prints sums as fen / 100, "yunqi" as they are,
 * NULL prints counts only; a name ending in " [YUNQI]" or " [CNY]" picks its own unit. */
static void tally_print(const tally *t, const char *title, const char *unit) {
    size_t n = json_object_size(t->m), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *key;
    json_t *a;
    json_object_foreach(t->m, key, a) keys[k++] = key;
    qsort(keys, n, sizeof(*keys), by_key);
    printf("%s\n", title);
    if (n == 0)
        printf("  (none)\n");
    for (k = 0; k < n; k++) {
        a = json_object_get(t->m, keys[k]);
        json_int_t cnt = json_integer_value(json_array_get(a, 0)), sum = json_integer_value(json_array_get(a, 1));
        const char *u = unit;
        if (unit && strstr(keys[k], "[YUNQI]"))
            u = "yunqi";
        else if (unit && strstr(keys[k], "[CNY]"))
            u = "RMB";
        if (!u)
            printf("  %-52s %8lld\n", keys[k], (long long)cnt);
        else if (strcmp(u, "yunqi") == 0)
            printf("  %-52s %8lld   %14lld yunqi\n", keys[k], (long long)cnt, (long long)sum);
        else
            printf("  %-52s %8lld   %14.2f RMB\n", keys[k], (long long)cnt, (double)sum / 100.0);
    }
    free(keys);
}

static const char *str(const json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int dashi_cmd_summary(int argc, char **argv) {
    static const struct option opts[] = {{"in", required_argument, 0, 'i'}, {"events", required_argument, 0, 'e'},
                                         {"seconds", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *in_path = "-";
    double seconds = 0;
    long long events = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in_path = optarg; break;
        case 'e': events = atoll(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'h':
            printf("usage: dashi summary [--in OUTPUTS.ndjson] [--events N --seconds S]\n\n"
                   "Summarize output events: commissions by outcome and tier, rejections by reason,\n"
                   "campaign steps, same-person decisions, fraud alerts; with --events/--seconds, the rate.\n");
            return 0;
        default: return 2;
        }
    }
    FILE *in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "r");
    if (!in) {
        fprintf(stderr, "dashi summary: cannot open %s: %m\n", in_path);
        return 1;
    }
    json_t *latest = json_object(), *seen = json_object();
    tally by_outcome = {json_object()}, rejected = {json_object()}, campaign = {json_object()},
          decisions = {json_object()}, alerts = {json_object()}, tiers = {json_object()};
    char *line = NULL;
    size_t cap = 0, n_out = 0, bad = 0, dup = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) {
            bad++;
            json_decref(o);
            continue;
        }
        n_out++;
        const char *type = str(o, "type");
        char dkey[512];
        snprintf(dkey, sizeof(dkey), "%s|%s|%s|%s|%s|%s", type, str(o, "commission_id"), str(o, "event"),
                 str(o, "campaign_event_id"), str(o, "decision_id"), str(o, "alert_id"));
        if (strcmp(type, "TierAssigned") == 0)
            snprintf(dkey, sizeof(dkey), "T|%s|%s", str(o, "ambassador_uid"), str(o, "month"));
        if (json_object_get(seen, dkey)) {
            dup++;
            json_decref(o);
            continue;
        }
        json_object_set_new(seen, dkey, json_true());
        if (strcmp(type, "CommissionEvent") == 0) {
            json_object_set(latest, str(o, "commission_id"), o);
        } else if (strcmp(type, "CampaignEvent") == 0) {
            char k[200];
            const char *kind = str(o, "kind");
            if (strcmp(kind, "PROGRESS") != 0) {
                snprintf(k, sizeof(k), "%s %s%s%s [%s]", str(o, "campaign_id"), kind, *str(o, "ladder") ? " " : "",
                         str(o, "ladder"), str(o, "unit"));
                /* SETTLED carries the final reward in reward_amount (its delta is 0) */
                tally_add(&campaign, k, json_integer_value(json_object_get(
                                            o, strcmp(kind, "SETTLED") == 0 ? "reward_amount" : "reward_delta")));
            }
        } else if (strcmp(type, "SamePersonDecision") == 0) {
            char k[100];
            snprintf(k, sizeof(k), "%s%s", str(o, "status"), json_is_true(json_object_get(o, "final")) ? " (final)" : " (provisional)");
            tally_add(&decisions, k, 0);
        } else if (strcmp(type, "FraudAlert") == 0) {
            char k[100];
            snprintf(k, sizeof(k), "%s (%s)", str(o, "kind"), str(o, "severity"));
            tally_add(&alerts, k, 0);
        } else if (strcmp(type, "TierAssigned") == 0) {
            tally_add(&tiers, str(o, "tier"), 0);
        }
        json_decref(o);
    }
    free(line);
    if (in != stdin)
        fclose(in);
    const char *id;
    json_t *o;
    json_int_t total_live = 0;
    json_object_foreach(latest, id, o) {
        char k[120];
        const char *ev = str(o, "event");
        snprintf(k, sizeof(k), "%-10s %s", ev, *str(o, "tier") ? str(o, "tier") : "-");
        tally_add(&by_outcome, k, json_integer_value(json_object_get(o, "amount")));
        if (strcmp(ev, "REJECTED") == 0) {
            size_t i;
            json_t *r;
            json_array_foreach(json_object_get(o, "reasons"), i, r) tally_add(&rejected, json_string_value(r), 0);
        } else {
            total_live += json_integer_value(json_object_get(o, "amount"));
        }
    }
    printf("== dashi summary: %zu output events (%zu duplicate deliveries dropped, %zu unreadable lines) ==\n\n",
           n_out, dup, bad);
    tally_print(&by_outcome, "Commissions by latest outcome and tier                       count   current amount", "RMB");
    printf("  %-52s %8s   %14.2f RMB\n\n", "total commission (pending + confirmed + adjusted)", "", (double)total_live / 100.0);
    tally_print(&rejected, "Rejected orders by reason code                               count", NULL);
    printf("\n");
    tally_print(&campaign, "Campaign events (PROGRESS left out)            count  reward change (SETTLED: final)", "RMB");
    printf("\n");
    tally_print(&tiers, "Tier assignments (enrolment and month starts)                count", NULL);
    printf("\n");
    tally_print(&decisions, "Same-person decisions                                        count", NULL);
    printf("\n");
    tally_print(&alerts, "Fraud alerts by kind                                         count", NULL);
    if (events > 0 && seconds > 0)
        printf("\nThroughput: %lld input events in %.1f s = %.0f events/s\n", events, seconds, (double)events / seconds);
    json_decref(latest);
    json_decref(seen);
    json_decref(by_outcome.m);
    json_decref(rejected.m);
    json_decref(campaign.m);
    json_decref(decisions.m);
    json_decref(alerts.m);
    json_decref(tiers.m);
    return 0;
}
