/* whatif.c — two replays of the same events under two rule sets, folded into per-dimension rows of counts and sums, printed as text or HTML.
 *
 * Design. Folding happens while each side is replayed (dashi_whatif_add is the
 * engine's emit callback), so no output stream is kept: a commission is held as a
 * small JSON record under its commission_id, overwritten by each later event of
 * it, and only at finish are those records counted into the rule, tier, outcome,
 * reason and ambassador tables. Campaign events go straight into their table.
 * While folding a table is a JSON object key → [count A, count B, sum A, sum B]
 * (jansson's hash table); finish turns each into a sorted C array of rows. The
 * text report is fixed-width columns; the HTML page is written with fprintf: a
 * small stylesheet, summary figures, and per dimension an inline SVG chart (bars
 * of A and B side by side, or of the difference around a zero axis, scaled to the
 * largest value of the chart) followed by the table with its exact figures. Every
 * text placed in the page is HTML-escaped; the page loads nothing and runs no
 * script, so it renders the same offline.
 */
#include "app/whatif.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/engine.h"
#include "core/state.h"

struct dashi_whatif {
    dashi_whatif_side side[DASHI_WHATIF_SIDES];
    json_t *cm[DASHI_WHATIF_SIDES];       /* commission_id → latest {a,t,v,e,m,b,base,r} */
    json_t *fold[DASHI_WHATIF__TABLES];   /* key → [cA, cB, sA, sB] while folding */
    dashi_whatif_row *rows[DASHI_WHATIF__TABLES];
    size_t n_rows[DASHI_WHATIF__TABLES];
    bool finished;
    bool nomem;
};

static const char *const tier_order[] = {"DISCIPLE", "HALL_MASTER", "HELMSMAN", "HEAD", "(none)"};
static const char *const outcome_order[] = {"PENDING", "ADJUSTED", "CANCELLED", "CONFIRMED", "CLAWBACK", "REJECTED"};

dashi_whatif *dashi_whatif_new(char *errstr, size_t errstr_size) {
    dashi_whatif *w = calloc(1, sizeof *w);
    bool ok = w != NULL;
    for (int s = 0; ok && s < DASHI_WHATIF_SIDES; s++)
        ok = (w->cm[s] = json_object()) != NULL;
    for (int t = 0; ok && t < DASHI_WHATIF__TABLES; t++)
        ok = (w->fold[t] = json_object()) != NULL;
    if (!ok) {
        dashi_whatif_destroy(w);
        w = NULL;
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "whatif: out of memory");
    }
    return w;
}

void dashi_whatif_destroy(dashi_whatif *w) {
    if (!w)
        return;
    for (int s = 0; s < DASHI_WHATIF_SIDES; s++)
        json_decref(w->cm[s]);
    for (int t = 0; t < DASHI_WHATIF__TABLES; t++) {
        json_decref(w->fold[t]);
        for (size_t i = 0; i < w->n_rows[t]; i++)
            free(w->rows[t][i].key);
        free(w->rows[t]);
    }
    free(w);
}

/* ------------------------------------------------------------------ folding */

static void tally(dashi_whatif *w, dashi_whatif_table t, const char *key, int side, int64_t sum) {
    json_t *a = json_object_get(w->fold[t], key);
    if (!a) {
        a = json_pack("[IIII]", (json_int_t)0, (json_int_t)0, (json_int_t)0, (json_int_t)0);
        if (!a || json_object_set_new(w->fold[t], key, a) != 0) {
            w->nomem = true;
            return;
        }
    }
    json_array_set_new(a, (size_t)side, json_integer(json_integer_value(json_array_get(a, (size_t)side)) + 1));
    json_array_set_new(a, (size_t)side + 2,
                       json_integer(json_integer_value(json_array_get(a, (size_t)side + 2)) + (json_int_t)sum));
}

static const char *nz(const char *s) {
    return s ? s : "";
}

static dashi_err add_commission(dashi_whatif *w, int side, const dashi_commission_event *c) {
    json_t *r = json_array(), *rec;
    const char *tier = c->tier == DASHI_ENUM_NONE ? NULL : dashi_enum_name(DASHI_ENUM_TIER, c->tier);
    for (size_t i = 0; r && i < c->n_reasons; i++)
        json_array_append_new(r, json_string(c->reasons[i]));
    rec = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "a", nz(c->ambassador_uid), "t",
                    tier ? tier : "(none)", "v", nz(c->rule_version),
                    "e", nz(dashi_enum_name(DASHI_ENUM_COMMISSION_KIND, c->event)), "m", (json_int_t)c->amount,
                    "b", (json_int_t)c->bonus_amount, "base", (json_int_t)c->base_amount, "r", r);
    if (!rec || json_object_set_new(w->cm[side], nz(c->commission_id), rec) != 0)
        return DASHI_ERR_NOMEM;
    return DASHI_OK;
}

static void add_campaign(dashi_whatif *w, int side, const dashi_campaign_event *c) {
    char key[256];
    const char *kind = nz(dashi_enum_name(DASHI_ENUM_CAMPAIGN_KIND, c->kind));
    if (c->kind == DASHI_CAMP_PROGRESS)
        return;
    snprintf(key, sizeof key, "%s %s%s%s [%s]", nz(c->campaign_id), kind, c->ladder ? " " : "", nz(c->ladder),
             nz(dashi_enum_name(DASHI_ENUM_UNIT, c->unit)));
    /* SETTLED carries the final reward in reward_amount (its delta is 0) */
    tally(w, DASHI_WHATIF_CAMPAIGN, key, side, c->kind == DASHI_CAMP_SETTLED ? c->reward_amount : c->reward_delta);
}

dashi_err dashi_whatif_add(dashi_whatif *w, int side, const dashi_event *out) {
    dashi_err err = DASHI_OK;
    if (!w || side < 0 || side >= DASHI_WHATIF_SIDES || w->finished) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    if (dashi_event_type_is_input(out->type))
        goto out;
    w->side[side].outputs++;
    if (out->type == DASHI_EV_COMMISSION_EVENT)
        err = add_commission(w, side, &out->u.commission_event);
    else if (out->type == DASHI_EV_CAMPAIGN_EVENT)
        add_campaign(w, side, &out->u.campaign_event);
    if (err == DASHI_OK && w->nomem)
        err = DASHI_ERR_NOMEM;
out:
    return err;
}

/* ------------------------------------------------------------------ finishing */

static int rank_of(const char *const *order, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(order[i], key) == 0)
            return (int)i;
    return (int)n;
}

static int64_t abs64(int64_t v) {
    return v < 0 ? -v : v;
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const dashi_whatif_row *)a)->key, ((const dashi_whatif_row *)b)->key);
}

static int cmp_tier(const void *a, const void *b) {
    const dashi_whatif_row *x = a, *y = b;
    int rx = rank_of(tier_order, 5, x->key), ry = rank_of(tier_order, 5, y->key);
    return rx != ry ? rx - ry : strcmp(x->key, y->key);
}

static int cmp_outcome(const void *a, const void *b) {
    const dashi_whatif_row *x = a, *y = b;
    int rx = rank_of(outcome_order, 6, x->key), ry = rank_of(outcome_order, 6, y->key);
    return rx != ry ? rx - ry : strcmp(x->key, y->key);
}

static int cmp_diff(const void *a, const void *b) {
    const dashi_whatif_row *x = a, *y = b;
    int64_t dx = abs64(x->sum[1] - x->sum[0]), dy = abs64(y->sum[1] - y->sum[0]);
    int64_t cx = abs64(x->count[1] - x->count[0]), cy = abs64(y->count[1] - y->count[0]);
    if (dx != dy)
        return dx > dy ? -1 : 1;
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return strcmp(x->key, y->key);
}

dashi_err dashi_whatif_finish(dashi_whatif *w) {
    dashi_err err = DASHI_OK;
    if (!w || w->finished) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    for (int s = 0; s < DASHI_WHATIF_SIDES; s++) {
        const char *id;
        json_t *rec;
        json_object_foreach(w->cm[s], id, rec) {
            int64_t amount = json_integer_value(json_object_get(rec, "m"));
            const char *amb = json_string_value(json_object_get(rec, "a"));
            size_t i;
            json_t *r;
            w->side[s].commissions++;
            w->side[s].commission_total += amount;
            w->side[s].bonus_total += json_integer_value(json_object_get(rec, "b"));
            tally(w, DASHI_WHATIF_RULE, json_string_value(json_object_get(rec, "v")), s, amount);
            tally(w, DASHI_WHATIF_TIER, json_string_value(json_object_get(rec, "t")), s, amount);
            tally(w, DASHI_WHATIF_OUTCOME, json_string_value(json_object_get(rec, "e")), s, amount);
            json_array_foreach(json_object_get(rec, "r"), i, r)
                tally(w, DASHI_WHATIF_REASON, json_string_value(r), s,
                      json_integer_value(json_object_get(rec, "base")));
            if (amb && *amb)
                tally(w, DASHI_WHATIF_AMBASSADOR, amb, s, amount);
        }
    }
    if (w->nomem) {
        err = DASHI_ERR_NOMEM;
        goto out;
    }
    for (int t = 0; t < DASHI_WHATIF__TABLES; t++) {
        size_t n = json_object_size(w->fold[t]), k = 0;
        const char *key;
        json_t *a;
        if (!(w->rows[t] = calloc(n ? n : 1, sizeof(dashi_whatif_row)))) {
            err = DASHI_ERR_NOMEM;
            goto out;
        }
        json_object_foreach(w->fold[t], key, a) {
            dashi_whatif_row *row = &w->rows[t][k];
            if (!(row->key = strdup(key))) {
                err = DASHI_ERR_NOMEM;
                goto out;
            }
            for (int s = 0; s < DASHI_WHATIF_SIDES; s++) {
                row->count[s] = json_integer_value(json_array_get(a, (size_t)s));
                row->sum[s] = json_integer_value(json_array_get(a, (size_t)s + 2));
            }
            w->n_rows[t] = ++k;
        }
        qsort(w->rows[t], n, sizeof(dashi_whatif_row),
              t == DASHI_WHATIF_TIER         ? cmp_tier
              : t == DASHI_WHATIF_OUTCOME    ? cmp_outcome
              : t == DASHI_WHATIF_AMBASSADOR ? cmp_diff
                                             : cmp_key);
        json_decref(w->fold[t]);
        w->fold[t] = NULL;
    }
    for (int s = 0; s < DASHI_WHATIF_SIDES; s++) {
        json_decref(w->cm[s]);
        w->cm[s] = NULL;
    }
    w->finished = true;
out:
    return err;
}

const dashi_whatif_side *dashi_whatif_side_get(const dashi_whatif *w, int side) {
    return side >= 0 && side < DASHI_WHATIF_SIDES ? &w->side[side] : NULL;
}

size_t dashi_whatif_rows(const dashi_whatif *w, dashi_whatif_table t, const dashi_whatif_row **rows) {
    if ((unsigned)t >= DASHI_WHATIF__TABLES) {
        *rows = NULL;
        return 0;
    }
    *rows = w->rows[t];
    return w->n_rows[t];
}

const dashi_whatif_row *dashi_whatif_find(const dashi_whatif *w, dashi_whatif_table t, const char *key) {
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, t, &rows);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].key, key) == 0)
            return &rows[i];
    return NULL;
}

/* ------------------------------------------------------------------ running */

typedef struct side_emit {
    dashi_whatif *w;
    int side;
    dashi_err err;
} side_emit;

static int emit_fold(void *opaque, const dashi_event *ev) {
    side_emit *se = opaque;
    dashi_err err = dashi_whatif_add(se->w, se->side, ev);
    if (err != DASHI_OK && se->err == DASHI_OK)
        se->err = err;
    return err == DASHI_OK ? 0 : 1;
}

dashi_err dashi_whatif_run(dashi_whatif *w, const dashi_event_list *l, const dashi_rules *const rules[2],
                           const char *const labels[2], const dashi_keyring *keys, dashi_time until,
                           dashi_reject_fn reject, void *reject_opaque, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_state *st = NULL;
    dashi_engine *eng = NULL;
    for (int s = 0; s < DASHI_WHATIF_SIDES; s++) {
        side_emit se = {w, s, DASHI_OK};
        w->side[s].label = labels[s];
        w->side[s].rules_name = rules[s]->name;
        w->side[s].revision = rules[s]->revision;
        if (!(st = dashi_state_mem_new())) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "whatif: out of memory");
            goto out;
        }
        if (!(eng = dashi_engine_new(rules[s], keys, st, errstr, errstr_size))) {
            err = DASHI_ERR_NOMEM;
            goto out;
        }
        err = dashi_replay_run(eng, l, labels[s], until, emit_fold, &se, reject, reject_opaque, &w->side[s].stats,
                               errstr, errstr_size);
        if (err == DASHI_OK && se.err != DASHI_OK)
            err = dashi_errf(se.err, errstr, errstr_size, "whatif: folding the outputs of %s: %s", labels[s],
                             dashi_err_str(se.err));
        if (err != DASHI_OK)
            goto out;
        dashi_engine_destroy(eng);
        eng = NULL;
        dashi_state_destroy(st);
        st = NULL;
    }
    if ((err = dashi_whatif_finish(w)) != DASHI_OK)
        dashi_errf(err, errstr, errstr_size, "whatif: %s", dashi_err_str(err));
out:
    dashi_engine_destroy(eng);
    dashi_state_destroy(st);
    return err;
}

/* ------------------------------------------------------------------ text */

const char *dashi_whatif_yuan(char *buf, size_t size, int64_t fen, int plus) {
    uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    char digits[32], grouped[48];
    size_t n = (size_t)snprintf(digits, sizeof digits, "%llu", (unsigned long long)(a / 100)), k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[k++] = ',';
        grouped[k++] = digits[i];
    }
    grouped[k] = '\0';
    snprintf(buf, size, "%s%s.%02llu", fen < 0 ? "-" : plus && fen > 0 ? "+" : "", grouped,
             (unsigned long long)(a % 100));
    return buf;
}

/* An amount of a row: yuan, or yunqi for a YUNQI campaign row. */
static const char *amount(char *buf, size_t size, const char *key, int64_t v, int plus) {
    if (key && strstr(key, "[YUNQI]")) {
        snprintf(buf, size, plus && v > 0 ? "+%lld yq" : "%lld yq", (long long)v);
        return buf;
    }
    return dashi_whatif_yuan(buf, size, v, plus);
}

static bool row_differs(const dashi_whatif_row *r) {
    return r->count[0] != r->count[1] || r->sum[0] != r->sum[1];
}

static void print_table(const dashi_whatif *w, FILE *out, dashi_whatif_table t, const char *title, bool sums,
                        size_t top) {
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, t, &rows), shown = 0;
    char a[48], b[48], d[48];
    fprintf(out, "%s\n", title);
    if (sums)
        fprintf(out, "  %-40s %8s %8s %8s %16s %16s %16s\n", "", "count A", "count B", "B - A", "amount A", "amount B",
                "B - A");
    else
        fprintf(out, "  %-40s %8s %8s %8s\n", "", "count A", "count B", "B - A");
    for (size_t i = 0; i < n; i++) {
        const dashi_whatif_row *r = &rows[i];
        if (top) {
            if (!row_differs(r) || shown == top)
                continue;
        }
        shown++;
        fprintf(out, "  %-40s %8lld %8lld %+8lld", r->key, (long long)r->count[0], (long long)r->count[1],
                (long long)(r->count[1] - r->count[0]));
        if (sums)
            fprintf(out, " %16s %16s %16s", amount(a, sizeof a, r->key, r->sum[0], 0),
                    amount(b, sizeof b, r->key, r->sum[1], 0), amount(d, sizeof d, r->key, r->sum[1] - r->sum[0], 1));
        fputc('\n', out);
    }
    if (!shown)
        fprintf(out, "  %s\n", top ? "(no ambassador's figures differ)" : "(none)");
    fputc('\n', out);
}

void dashi_whatif_print(const dashi_whatif *w, FILE *out, size_t top) {
    const dashi_whatif_side *A = &w->side[0], *B = &w->side[1];
    char a[48], b[48], d[48], title[96];
    fprintf(out, "== dashi whatif: B - A ==\n");
    for (int s = 0; s < DASHI_WHATIF_SIDES; s++)
        fprintf(out, "  %c = %s (%s, revision %lld): %zu events applied, %zu refused, %zu outputs\n", 'A' + s,
                nz(w->side[s].label), nz(w->side[s].rules_name), (long long)w->side[s].revision,
                w->side[s].stats.events, w->side[s].stats.rejected, w->side[s].outputs);
    fprintf(out, "\nTotal commission (each commission at its latest event, RMB)\n");
    fprintf(out, "  %-40s %16s %16s %16s\n", "", "A", "B", "B - A");
    fprintf(out, "  %-40s %16s %16s %16s\n", "commission", dashi_whatif_yuan(a, sizeof a, A->commission_total, 0),
            dashi_whatif_yuan(b, sizeof b, B->commission_total, 0),
            dashi_whatif_yuan(d, sizeof d, B->commission_total - A->commission_total, 1));
    fprintf(out, "  %-40s %16zu %16zu %+16lld\n", "commissions (order outcomes)", A->commissions, B->commissions,
            (long long)B->commissions - (long long)A->commissions);
    fprintf(out, "  %-40s %13lld yq %13lld yq %+13lld yq\n\n", "first-order bonus (K1) on commissions",
            (long long)A->bonus_total, (long long)B->bonus_total, (long long)(B->bonus_total - A->bonus_total));
    print_table(w, out, DASHI_WHATIF_RULE, "By rule version (period of the rules file)", true, 0);
    print_table(w, out, DASHI_WHATIF_TIER, "By tier", true, 0);
    print_table(w, out, DASHI_WHATIF_OUTCOME, "By outcome (latest event of each commission)", true, 0);
    print_table(w, out, DASHI_WHATIF_REASON, "By reason code (commissions whose latest event carries it; base amount)",
                true, 0);
    print_table(w, out, DASHI_WHATIF_CAMPAIGN,
                "Campaign events: bonuses, draws, steps (PROGRESS left out; SETTLED: final reward)", true, 0);
    snprintf(title, sizeof title, "Top %zu ambassadors by absolute difference of commission", top ? top : 10);
    print_table(w, out, DASHI_WHATIF_AMBASSADOR, title, true, top ? top : 10);
}

/* ------------------------------------------------------------------ HTML */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

#define SVG_W 1000
#define SVG_LABEL 280 /* left column for labels */
#define SVG_VALUE 130 /* room for the value text at a bar's end */
#define SVG_ROW 26
#define SVG_TOP 30

/* One bar row of a chart: label, values of A and B (grouped) or the difference. */
typedef struct bar {
    const char *label;
    int64_t a, b;
} bar;

static int64_t max_abs(const bar *bars, size_t n, bool diff) {
    int64_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = diff ? abs64(bars[i].b - bars[i].a) : (abs64(bars[i].a) > abs64(bars[i].b) ? abs64(bars[i].a) : abs64(bars[i].b));
        if (v > m)
            m = v;
    }
    return m;
}

static void svg_label(FILE *f, double y, const char *label) {
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"lbl\">", SVG_LABEL - 8, y);
    esc(f, label);
    fputs("</text>\n", f);
}

/* Bars of the difference B - A around a zero axis (all >= 0: axis at the left). */
static void svg_diff(FILE *f, const char *title, const bar *bars, size_t n, const char *unit_key, bool counts) {
    int64_t m = max_abs(bars, n, true);
    bool neg = false, pos = false;
    for (size_t i = 0; i < n; i++) {
        neg |= bars[i].b < bars[i].a;
        pos |= bars[i].b > bars[i].a;
    }
    double plot = SVG_W - SVG_LABEL - 2.0 * SVG_VALUE;
    double zero = neg && pos ? SVG_LABEL + SVG_VALUE + plot / 2 : neg ? SVG_W - SVG_VALUE : SVG_LABEL + SVG_VALUE;
    double span = neg && pos ? plot / 2 : plot;
    int h = SVG_TOP + (int)(n ? n : 1) * SVG_ROW + 10;
    fprintf(f, "<figure><figcaption>");
    esc(f, title);
    fprintf(f, "</figcaption>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", SVG_W, h, SVG_W, h);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"axis\"/>\n", zero, SVG_TOP - 8, zero, h - 6);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"ax\">0</text>\n", zero, SVG_TOP - 12);
    if (n == 0)
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"lbl\">(no rows)</text>\n", SVG_LABEL - 8, SVG_TOP + 16);
    else if (m == 0)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"vr same\">no difference</text>\n", zero + 40, SVG_TOP + 16);
    for (size_t i = 0; i < n; i++) {
        int64_t d = bars[i].b - bars[i].a;
        double len = m ? span * (double)abs64(d) / (double)m : 0, y = SVG_TOP + (double)i * SVG_ROW;
        double x = d < 0 ? zero - len : zero;
        char v[48];
        svg_label(f, y + 16, bars[i].label);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" class=\"%s\"/>\n", x, y + 4,
                len < 1 && d ? 1.0 : len, SVG_ROW - 8, d < 0 ? "neg" : "pos");
        if (counts)
            snprintf(v, sizeof v, "%+lld", (long long)d);
        else
            amount(v, sizeof v, unit_key ? unit_key : bars[i].label, d, 1);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"%s\">%s</text>\n", d < 0 ? x - 6 : x + len + 6, y + 16,
                d < 0 ? "vl" : "vr", d ? v : "0");
    }
    fputs("</svg></figure>\n", f);
}

/* Bars of A and B side by side, from a zero axis at the left (negative values clipped to 0). */
static void svg_pair(FILE *f, const char *title, const bar *bars, size_t n) {
    int64_t m = max_abs(bars, n, false);
    double span = SVG_W - SVG_LABEL - SVG_VALUE - 10.0;
    int h = SVG_TOP + (int)(n ? n : 1) * (SVG_ROW + 12) + 10;
    fprintf(f, "<figure><figcaption>");
    esc(f, title);
    fprintf(f, " <span class=\"key\"><span class=\"sw a\"></span>A <span class=\"sw b\"></span>B</span>"
               "</figcaption>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            SVG_W, h, SVG_W, h);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", SVG_LABEL, SVG_TOP - 8, SVG_LABEL,
            h - 6);
    for (size_t i = 0; i < n; i++) {
        double y = SVG_TOP + (double)i * (SVG_ROW + 12);
        svg_label(f, y + 20, bars[i].label);
        for (int s = 0; s < 2; s++) {
            int64_t v = s ? bars[i].b : bars[i].a;
            double len = m && v > 0 ? span * (double)v / (double)m : 0, yy = y + 2 + s * 16;
            char t[48];
            fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"14\" class=\"%s\"/>\n", SVG_LABEL, yy, len,
                    s ? "b" : "a");
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"vr sm\">%s</text>\n", SVG_LABEL + len + 6, yy + 11,
                    dashi_whatif_yuan(t, sizeof t, v, 0));
        }
    }
    fputs("</svg></figure>\n", f);
}

static void html_table(FILE *f, const dashi_whatif_row *rows, size_t n, bool sums, const char *sum_title) {
    char a[48], b[48], d[48];
    fputs("<table><thead><tr><th></th><th>count A</th><th>count B</th><th>B − A</th>", f);
    if (sums)
        fprintf(f, "<th>%s A</th><th>%s B</th><th>B − A</th>", sum_title, sum_title);
    fputs("</tr></thead><tbody>\n", f);
    for (size_t i = 0; i < n; i++) {
        const dashi_whatif_row *r = &rows[i];
        int64_t dc = r->count[1] - r->count[0], ds = r->sum[1] - r->sum[0];
        fputs("<tr><td>", f);
        esc(f, r->key);
        fprintf(f, "</td><td>%lld</td><td>%lld</td><td class=\"%s\">%+lld</td>", (long long)r->count[0],
                (long long)r->count[1], dc < 0 ? "n" : dc > 0 ? "p" : "z", (long long)dc);
        if (sums)
            fprintf(f, "<td>%s</td><td>%s</td><td class=\"%s\">%s</td>", amount(a, sizeof a, r->key, r->sum[0], 0),
                    amount(b, sizeof b, r->key, r->sum[1], 0), ds < 0 ? "n" : ds > 0 ? "p" : "z",
                    amount(d, sizeof d, r->key, ds, 1));
        fputs("</tr>\n", f);
    }
    if (n == 0)
        fprintf(f, "<tr><td colspan=\"%d\">(none)</td></tr>\n", sums ? 7 : 4);
    fputs("</tbody></table>\n", f);
}

/* The rows of table t as bars (sum or count), at most max (0: all), only differing rows when only_diff. */
static bar *bars_of(const dashi_whatif *w, dashi_whatif_table t, bool counts, size_t max, bool only_diff,
                    const char *unit, size_t *n_out) {
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, t, &rows), k = 0;
    bar *bars = calloc(n ? n : 1, sizeof *bars);
    for (size_t i = 0; bars && i < n && (!max || k < max); i++) {
        if (only_diff && !row_differs(&rows[i]))
            continue;
        if (unit && !strstr(rows[i].key, unit))
            continue;
        bars[k].label = rows[i].key;
        bars[k].a = counts ? rows[i].count[0] : rows[i].sum[0];
        bars[k].b = counts ? rows[i].count[1] : rows[i].sum[1];
        k++;
    }
    *n_out = k;
    return bars;
}

static void section_dim(const dashi_whatif *w, FILE *f, dashi_whatif_table t, const char *heading, const char *title,
                        const char *text) {
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, t, &rows), nb;
    bar *bars = bars_of(w, t, false, 0, false, NULL, &nb);
    char cap[160];
    fprintf(f, "<section><h2>%s</h2><p>%s</p>\n", heading, text);
    if (bars) {
        snprintf(cap, sizeof cap, "Commission A and B by %s (RMB)", title);
        svg_pair(f, cap, bars, nb);
        snprintf(cap, sizeof cap, "Difference B − A by %s (RMB)", title);
        svg_diff(f, cap, bars, nb, "", false);
    }
    html_table(f, rows, n, true, "RMB");
    fputs("</section>\n", f);
    free(bars);
}

/* A chart of the difference B − A of a table's rows. */
typedef struct diff_chart {
    const char *title;
    bool counts;          /* numbers of commissions; else amounts */
    const char *unit;     /* only rows whose key holds it (see bars_of); NULL: every row */
    const char *unit_key; /* the unit of the amounts (see svg_diff) */
    bool unless_empty;    /* no chart at all when no row is left */
} diff_chart;

/* Chart c of table t: at most max rows (0: all), only the differing ones when only_diff. */
static void chart_diff(FILE *f, const dashi_whatif *w, dashi_whatif_table t, const diff_chart *c, size_t max,
                       bool only_diff) {
    size_t nb;
    bar *bars = bars_of(w, t, c->counts, max, only_diff, c->unit, &nb);
    if (bars && (nb || !c->unless_empty))
        svg_diff(f, c->title, bars, nb, c->unit_key, c->counts);
    free(bars);
}

/* A section of table t: heading and text, the n_charts charts of its difference, its table with sums. */
static void section_diff(const dashi_whatif *w, FILE *f, dashi_whatif_table t, const char *heading, const char *text,
                         const diff_chart *charts, size_t n_charts, const char *sum_title) {
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, t, &rows);
    fprintf(f, "<section><h2>%s</h2><p>%s</p>\n", heading, text);
    for (size_t i = 0; i < n_charts; i++)
        chart_diff(f, w, t, &charts[i], 0, false);
    html_table(f, rows, n, true, sum_title);
    fputs("</section>\n", f);
}

static const diff_chart outcome_charts[] = {
    {"Difference B − A of commission by outcome (RMB)", false, NULL, "", false},
    {"Difference B − A in the number of commissions by outcome", true, NULL, NULL, false},
};
static const diff_chart reason_charts[] = {
    {"Difference B − A in the number of commissions by reason code", true, NULL, NULL, false},
};
static const diff_chart campaign_charts[] = {
    {"Difference B − A of campaign rewards in RMB", false, "[CNY]", "", false},
    {"Difference B − A of campaign rewards in yunqi", false, "[YUNQI]", "[YUNQI]", true},
};

static const char *const css =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;margin:24px auto;"
    "max-width:1040px;color:#1d2433;background:#fff;padding:0 16px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 4px;border-bottom:2px solid #e3e7ef;"
    "padding-bottom:4px}p{margin:4px 0 10px;color:#4a5468}"
    ".sides{margin:8px 0 16px;padding:0;list-style:none}.sides li{margin:2px 0}"
    ".cards{display:flex;gap:14px;margin:16px 0}.card{flex:1;border:1px solid #dde3ee;border-radius:8px;"
    "padding:10px 14px;background:#f7f9fc}.card .t{font-size:13px;color:#5b667a}.card .v{font-size:22px;"
    "font-weight:600;font-variant-numeric:tabular-nums}"
    "figure{margin:10px 0}figcaption{font-weight:600;font-size:14px;margin-bottom:2px}"
    "svg text{font:12px system-ui,sans-serif;fill:#1d2433}svg .lbl{text-anchor:end}svg .vr{text-anchor:start}"
    "svg .vl{text-anchor:end}svg .ax{text-anchor:middle;fill:#6b7588}svg .sm{font-size:11px}svg .same{fill:#6b7588;font-style:italic}"
    "svg .axis{stroke:#8a94a8;stroke-width:1}.pos{fill:#2f7d4f}.neg{fill:#c0392b}rect.a{fill:#7b8fb5}"
    "rect.b{fill:#e08a2e}.key{font-weight:400;margin-left:12px;font-size:13px}.sw{display:inline-block;"
    "width:11px;height:11px;margin:0 4px 0 10px;vertical-align:-1px}.sw.a{background:#7b8fb5}"
    ".sw.b{background:#e08a2e}"
    "table{border-collapse:collapse;margin:8px 0 6px;font-variant-numeric:tabular-nums;width:100%}"
    "th,td{border-bottom:1px solid #e6e9f0;padding:3px 8px;text-align:right}th{background:#f1f4f9;"
    "font-weight:600}td:first-child,th:first-child{text-align:left}td.p{color:#2f7d4f}td.n{color:#c0392b}"
    "td.z{color:#9aa3b3}.p{color:#2f7d4f}.n{color:#c0392b}footer{margin-top:30px;font-size:12px;color:#7a8397}";

dashi_err dashi_whatif_html(const dashi_whatif *w, FILE *f, size_t top, char *errstr, size_t errstr_size) {
    const dashi_whatif_side *A = &w->side[0], *B = &w->side[1];
    const dashi_whatif_row *rows;
    char a[48], b[48], d[48], cap[160];
    int64_t diff = B->commission_total - A->commission_total;
    size_t n;
    if (!top)
        top = 10;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<title>dashi what-if: B − A</title>\n<style>%s</style>\n</head>\n<body>\n",
            css);
    fputs("<h1>What-if: the same events under two rule sets</h1>\n<ul class=\"sides\">\n", f);
    for (int s = 0; s < DASHI_WHATIF_SIDES; s++) {
        fprintf(f, "<li><b>%c</b> = <code>", 'A' + s);
        esc(f, w->side[s].label);
        fputs("</code> — ", f);
        esc(f, w->side[s].rules_name);
        fprintf(f, " (revision %lld): %zu events applied, %zu refused, %zu outputs</li>\n",
                (long long)w->side[s].revision, w->side[s].stats.events, w->side[s].stats.rejected,
                w->side[s].outputs);
    }
    fputs("</ul>\n<p>Every commission counts once, at its latest event. Differences are B − A. Amounts in RMB "
          "(fen / 100) unless marked yq (yunqi).</p>\n",
          f);
    fprintf(f,
            "<div class=\"cards\"><div class=\"card\"><div class=\"t\">Total commission A</div><div class=\"v\" "
            "id=\"total-a\">%s</div></div>\n<div class=\"card\"><div class=\"t\">Total commission B</div><div "
            "class=\"v\" id=\"total-b\">%s</div></div>\n<div class=\"card\"><div class=\"t\">Difference B − A</div>"
            "<div class=\"v %s\" id=\"total-diff\">%s</div></div>\n",
            dashi_whatif_yuan(a, sizeof a, A->commission_total, 0), dashi_whatif_yuan(b, sizeof b, B->commission_total, 0),
            diff < 0 ? "n" : diff > 0 ? "p" : "", dashi_whatif_yuan(d, sizeof d, diff, 1));
    fprintf(f, "<div class=\"card\"><div class=\"t\">Commissions A / B</div><div class=\"v\">%zu / %zu</div></div>"
               "</div>\n",
            A->commissions, B->commissions);

    section_dim(w, f, DASHI_WHATIF_TIER, "Tier", "tier", "The ambassador's tier on the commission (C6 rates are by tier).");
    section_dim(w, f, DASHI_WHATIF_RULE, "Rule version", "rule version",
                "The period of the rules file in force at the order (V1): its id is the commission's rule_version.");

    section_diff(w, f, DASHI_WHATIF_OUTCOME, "Outcome", "Commissions by their latest event.", outcome_charts,
                 sizeof outcome_charts / sizeof outcome_charts[0], "RMB");
    section_diff(w, f, DASHI_WHATIF_REASON, "Reason codes",
                 "Commissions whose latest event carries the code (C11 rejections and the notes of commissioned "
                 "orders); the amount is their base.",
                 reason_charts, sizeof reason_charts / sizeof reason_charts[0], "base RMB");
    section_diff(w, f, DASHI_WHATIF_CAMPAIGN, "Campaigns",
                 "Campaign events by campaign id, kind, ladder and unit: bonuses, draws, steps reached and lost, "
                 "settlements (PROGRESS left out). The amount is the reward change; for SETTLED the final reward.",
                 campaign_charts, sizeof campaign_charts / sizeof campaign_charts[0], "reward");

    fprintf(f, "<section><h2>Ambassadors</h2><p>The %zu ambassadors whose commission differs most (absolute "
               "difference of their commissions' amounts).</p>\n",
            top);
    snprintf(cap, sizeof cap, "Top %zu ambassadors: difference B − A of commission (RMB)", top);
    chart_diff(f, w, DASHI_WHATIF_AMBASSADOR, &(diff_chart){cap, false, NULL, "", false}, top, true);
    n = dashi_whatif_rows(w, DASHI_WHATIF_AMBASSADOR, &rows);
    {
        size_t k = 0;
        while (k < n && k < top && row_differs(&rows[k]))
            k++;
        html_table(f, rows, k, true, "RMB");
    }
    fputs("</section>\n<footer>Written by dashi whatif. Self-contained: no script, no external resource.</footer>\n"
          "</body>\n</html>\n",
          f);
    if (fflush(f) != 0 || ferror(f))
        return dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "whatif: writing the HTML page failed");
    return DASHI_OK;
}
