/* test_whatif.c — `dashi whatif`: two replays of one stream under two rules files, and their difference.
 *
 * The events are a small seeded stream of `dashi gen` (app/generate.c). The
 * expected figures never come from app/whatif.c itself: each test runs the dashi
 * binary's `replay` under each rules file and folds the output lines here (each
 * commission at its latest line), then compares. Checked: identical rules files
 * give zero differences everywhere; raising one tier rate (tests/data/rules/
 * whatif-disciple-30.json: PURE_NEW DISCIPLE 26% → 30% from 2022-06-01) changes the
 * total by exactly the difference of the two replays' totals, all of it in the
 * DISCIPLE tier; reason-code counts equal those of the outputs; the command's text
 * and HTML page carry the totals; and headless Chromium renders the page to a
 * non-empty PNG of the window's size (a missing chromium fails the test).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app/generate.h"
#include "app/replay.h"
#include "app/whatif.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "support/proc.h"

#define RULES_A DASHI_SOURCE_DIR "/config/rules.json"
#define RULES_B DASHI_SOURCE_DIR "/tests/data/rules/whatif-disciple-30.json"
#define UNTIL "2022-09-30T00:00:00+08:00"
#define CHROMIUM "/usr/bin/chromium"

static char dir[256], events[512];

static void setup(void) {
    dashi_gen_opts o;
    char err[256] = "";
    uint64_t n = 0;
    FILE *f;
    cr_assert(dashi_test_tmpdir(dir, sizeof dir), "no temp dir");
    snprintf(events, sizeof events, "%s/events.ndjson", dir);
    dashi_gen_opts_default(&o);
    o.seed = 7;
    o.ambassadors = 40;
    o.customers = 500;
    cr_assert((f = fopen(events, "w")));
    cr_assert_eq(dashi_generate(&o, f, &n, err, sizeof err), DASHI_OK, "gen: %s", err);
    cr_assert_eq(fclose(f), 0);
    cr_assert_gt(n, 1000u);
}

/* rules given to dashi_whatif_run stay borrowed by the report (its sides point at
 * their names): they are freed when the test ends */
static dashi_rules *kept[8];
static size_t n_kept;

static void teardown(void) {
    for (size_t i = 0; i < n_kept; i++)
        dashi_rules_destroy(kept[i]);
    n_kept = 0;
}

TestSuite(whatif, .init = setup, .fini = teardown, .timeout = 170);

/* ---- the report under test, through the library ---- */

static dashi_whatif *run_whatif(const char *a, const char *b) {
    char err[512] = "";
    dashi_rules *ra = dashi_rules_load(a, err, sizeof err), *rb;
    cr_assert(ra, "%s", err);
    rb = dashi_rules_load(b, err, sizeof err);
    cr_assert(rb, "%s", err);
    dashi_keyring *keys = dashi_keyring_load(NULL, err, sizeof err);
    cr_assert(keys, "%s", err);
    dashi_event_list l = {0};
    dashi_replay_stats st = {0};
    dashi_time until;
    FILE *f = fopen(events, "r");
    cr_assert(f);
    cr_assert_eq(dashi_replay_read(f, events, &l, &st, NULL, NULL, err, sizeof err), DASHI_OK, "%s", err);
    fclose(f);
    cr_assert_eq(st.rejected, 0u);
    dashi_replay_sort(&l);
    cr_assert_eq(dashi_time_parse(UNTIL, &until, err, sizeof err), DASHI_OK);
    dashi_whatif *w = dashi_whatif_new(err, sizeof err);
    cr_assert(w);
    cr_assert_eq(dashi_whatif_run(w, &l, (const dashi_rules *const[2]){ra, rb}, (const char *const[2]){a, b}, keys,
                                  until, NULL, NULL, err, sizeof err),
                 DASHI_OK, "%s", err);
    dashi_event_list_clear(&l);
    dashi_keyring_destroy(keys);
    cr_assert_lt(n_kept + 2, sizeof kept / sizeof kept[0]);
    kept[n_kept++] = ra;
    kept[n_kept++] = rb;
    return w;
}

/* ---- the expected figures: the binary's replay outputs, folded here ---- */

typedef struct folded {
    json_int_t total;            /* sum of amounts at each commission's latest line */
    size_t commissions;
    json_t *tier;                /* tier ("(none)") → amount sum */
    json_t *reason;              /* code → count */
} folded;

static void fold_replay(const char *rules, const char *name, folded *out) {
    char outputs[600], errs[600], line_err[JSON_ERROR_TEXT_LENGTH];
    snprintf(outputs, sizeof outputs, "%s/%s.out.ndjson", dir, name);
    snprintf(errs, sizeof errs, "%s/%s.err", dir, name);
    const char *argv[] = {DASHI_BINARY, "replay", "--in", events, "--out", outputs, "--rules", rules,
                          "--until", UNTIL, "--quiet", NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, errs), 0, "dashi replay failed (see %s)", errs);
    FILE *f = fopen(outputs, "r");
    cr_assert(f);
    json_t *latest = json_object();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        snprintf(line_err, sizeof line_err, "%s", je.text);
        cr_assert(o, "bad output line: %s", line_err);
        if (strcmp(json_string_value(json_object_get(o, "type")), "CommissionEvent") == 0)
            json_object_set(latest, json_string_value(json_object_get(o, "commission_id")), o);
        json_decref(o);
    }
    free(line);
    fclose(f);
    memset(out, 0, sizeof *out);
    out->tier = json_object();
    out->reason = json_object();
    const char *id;
    json_t *o;
    json_object_foreach(latest, id, o) {
        json_int_t amount = json_integer_value(json_object_get(o, "amount"));
        const char *tier = json_string_value(json_object_get(o, "tier"));
        size_t i;
        json_t *r;
        out->total += amount;
        out->commissions++;
        tier = tier ? tier : "(none)";
        json_object_set_new(out->tier, tier,
                            json_integer(json_integer_value(json_object_get(out->tier, tier)) + amount));
        json_array_foreach(json_object_get(o, "reasons"), i, r) {
            const char *code = json_string_value(r);
            json_object_set_new(out->reason, code,
                                json_integer(json_integer_value(json_object_get(out->reason, code)) + 1));
        }
    }
    json_decref(latest);
}

static void folded_free(folded *f) {
    json_decref(f->tier);
    json_decref(f->reason);
}

/* ---- tests ---- */

Test(whatif, identical_rules_give_zero_differences) {
    dashi_whatif *w = run_whatif(RULES_A, RULES_A);
    const dashi_whatif_side *A = dashi_whatif_side_get(w, 0), *B = dashi_whatif_side_get(w, 1);
    size_t rows_seen = 0;
    cr_assert_gt(A->commissions, 50u, "the stream must produce commissions");
    cr_assert_gt(A->commission_total, 0);
    cr_assert_eq(A->commission_total, B->commission_total);
    cr_assert_eq(A->commissions, B->commissions);
    cr_assert_eq(A->bonus_total, B->bonus_total);
    cr_assert_eq(A->outputs, B->outputs);
    for (int t = 0; t < DASHI_WHATIF__TABLES; t++) {
        const dashi_whatif_row *rows;
        size_t n = dashi_whatif_rows(w, (dashi_whatif_table)t, &rows);
        if (t != DASHI_WHATIF_CAMPAIGN)
            cr_assert_gt(n, 0u, "table %d is empty", t);
        for (size_t i = 0; i < n; i++, rows_seen++) {
            cr_assert_eq(rows[i].count[0], rows[i].count[1], "table %d row %s: counts differ", t, rows[i].key);
            cr_assert_eq(rows[i].sum[0], rows[i].sum[1], "table %d row %s: sums differ", t, rows[i].key);
        }
    }
    cr_assert_gt(rows_seen, 20u);
    /* the terminal report says so too: no ambassador differs */
    char path[600];
    snprintf(path, sizeof path, "%s/same.txt", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    dashi_whatif_print(w, f, 5);
    fclose(f);
    char *text = dashi_test_slurp(path, NULL);
    cr_assert(text && strstr(text, "(no ambassador's figures differ)"), "%s", text ? text : "");
    free(text);
    dashi_whatif_destroy(w);
}

Test(whatif, raised_tier_rate_difference_equals_the_replays_difference) {
    folded a, b;
    char buf[48];
    fold_replay(RULES_A, "a", &a);
    fold_replay(RULES_B, "b", &b);
    dashi_whatif *w = run_whatif(RULES_A, RULES_B);
    const dashi_whatif_side *A = dashi_whatif_side_get(w, 0), *B = dashi_whatif_side_get(w, 1);
    json_int_t expect = b.total - a.total;
    cr_assert_gt(expect, 0, "raising the DISCIPLE rate must raise the total (%lld)", (long long)expect);
    cr_assert_eq(A->commission_total, a.total, "A: whatif %lld, replay %lld", (long long)A->commission_total,
                 (long long)a.total);
    cr_assert_eq(B->commission_total, b.total, "B: whatif %lld, replay %lld", (long long)B->commission_total,
                 (long long)b.total);
    cr_assert_eq(B->commission_total - A->commission_total, expect);
    cr_assert_eq(A->commissions, a.commissions);
    cr_assert_eq(B->commissions, b.commissions);
    /* per tier: every tier's difference is the replays' difference, and all of it is DISCIPLE */
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, DASHI_WHATIF_TIER, &rows);
    cr_assert_eq(n, json_object_size(a.tier));
    for (size_t i = 0; i < n; i++) {
        json_int_t ea = json_integer_value(json_object_get(a.tier, rows[i].key));
        json_int_t eb = json_integer_value(json_object_get(b.tier, rows[i].key));
        cr_assert_eq(rows[i].sum[0], ea, "tier %s A", rows[i].key);
        cr_assert_eq(rows[i].sum[1], eb, "tier %s B", rows[i].key);
        if (strcmp(rows[i].key, "DISCIPLE") == 0)
            cr_assert_eq(rows[i].sum[1] - rows[i].sum[0], expect);
        else
            cr_assert_eq(rows[i].sum[1], rows[i].sum[0], "tier %s changed", rows[i].key);
    }
    /* the ambassadors' differences add up to the total's (every commissioned order has an ambassador) */
    json_int_t amb = 0;
    n = dashi_whatif_rows(w, DASHI_WHATIF_AMBASSADOR, &rows);
    for (size_t i = 0; i < n; i++)
        amb += rows[i].sum[1] - rows[i].sum[0];
    cr_assert_eq(amb, expect);
    cr_assert_geq(rows[0].sum[1] - rows[0].sum[0], rows[n - 1].sum[1] - rows[n - 1].sum[0], "sorted by difference");
    /* the rule version table: only the 2022-06-01 period changed */
    const dashi_whatif_row *r = dashi_whatif_find(w, DASHI_WHATIF_RULE, "2022-06-01");
    cr_assert(r);
    cr_assert_eq(r->sum[1] - r->sum[0], expect);
    /* the text report shows the difference in yuan with 2 decimals */
    char path[600];
    snprintf(path, sizeof path, "%s/diff.txt", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    dashi_whatif_print(w, f, 3);
    fclose(f);
    char *text = dashi_test_slurp(path, NULL);
    dashi_whatif_yuan(buf, sizeof buf, expect, 1);
    cr_assert(text && strstr(text, buf), "report lacks %s:\n%s", buf, text ? text : "");
    free(text);
    folded_free(&a);
    folded_free(&b);
    dashi_whatif_destroy(w);
}

Test(whatif, reason_counts_equal_the_outputs) {
    folded a, b;
    fold_replay(RULES_A, "a", &a);
    fold_replay(RULES_B, "b", &b);
    dashi_whatif *w = run_whatif(RULES_A, RULES_B);
    const dashi_whatif_row *rows;
    size_t n = dashi_whatif_rows(w, DASHI_WHATIF_REASON, &rows);
    cr_assert_geq(n, 3u, "the stream must produce several reason codes");
    cr_assert_eq(n, json_object_size(a.reason));
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(rows[i].count[0], json_integer_value(json_object_get(a.reason, rows[i].key)), "A %s",
                     rows[i].key);
        cr_assert_eq(rows[i].count[1], json_integer_value(json_object_get(b.reason, rows[i].key)), "B %s",
                     rows[i].key);
    }
    cr_assert(dashi_whatif_find(w, DASHI_WHATIF_REASON, "NOT_ASSOCIATED") ||
              dashi_whatif_find(w, DASHI_WHATIF_REASON, "ASSOCIATION_EXPIRED"));
    cr_assert_null(dashi_whatif_find(w, DASHI_WHATIF_REASON, "NO_SUCH_CODE"));
    folded_free(&a);
    folded_free(&b);
    dashi_whatif_destroy(w);
}

Test(whatif, fold_api_refuses_misuse) {
    char err[128];
    dashi_whatif *w = dashi_whatif_new(err, sizeof err);
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_COMMISSION_EVENT);
    cr_assert_eq(dashi_whatif_add(w, 2, &ev), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_whatif_add(w, -1, &ev), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_whatif_finish(w), DASHI_OK);
    cr_assert_eq(dashi_whatif_add(w, 0, &ev), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_whatif_finish(w), DASHI_ERR_INVALID);
    dashi_event_clear(&ev);
    dashi_whatif_destroy(w);
    dashi_whatif_destroy(NULL);
}

Test(whatif, yuan_formatting) {
    char b[48];
    cr_assert_str_eq(dashi_whatif_yuan(b, sizeof b, 0, 0), "0.00");
    cr_assert_str_eq(dashi_whatif_yuan(b, sizeof b, 0, 1), "0.00");
    cr_assert_str_eq(dashi_whatif_yuan(b, sizeof b, -5, 1), "-0.05");
    cr_assert_str_eq(dashi_whatif_yuan(b, sizeof b, 123456789, 0), "1,234,567.89");
    cr_assert_str_eq(dashi_whatif_yuan(b, sizeof b, 100000, 1), "+1,000.00");
    cr_assert_str_eq(dashi_whatif_yuan(b, sizeof b, -99999, 0), "-999.99");
}

static size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(whatif, command_writes_text_and_a_self_contained_page_chromium_renders) {
    char html[600], out[600], err[600], png[600], profile[600], url[700], a[48], b[48], d[48];
    snprintf(html, sizeof html, "%s/report.html", dir);
    snprintf(out, sizeof out, "%s/whatif.txt", dir);
    snprintf(err, sizeof err, "%s/whatif.err", dir);
    const char *argv[] = {DASHI_BINARY, "whatif", "--in", events, "--rules", RULES_A, "--rules", RULES_B,
                          "--until", UNTIL, "--top", "7", "--html", html, NULL};
    cr_assert_eq(dashi_test_run(argv, out, err), 0, "dashi whatif failed (see %s)", err);
    dashi_whatif *w = run_whatif(RULES_A, RULES_B);
    const dashi_whatif_side *A = dashi_whatif_side_get(w, 0), *B = dashi_whatif_side_get(w, 1);
    dashi_whatif_yuan(a, sizeof a, A->commission_total, 0);
    dashi_whatif_yuan(b, sizeof b, B->commission_total, 0);
    dashi_whatif_yuan(d, sizeof d, B->commission_total - A->commission_total, 1);

    char *text = dashi_test_slurp(out, NULL);
    cr_assert(text);
    cr_assert(strstr(text, a) && strstr(text, b) && strstr(text, d), "totals %s %s %s missing:\n%s", a, b, d, text);
    cr_assert(strstr(text, "Top 7 ambassadors"));
    free(text);

    char *page = dashi_test_slurp(html, NULL);
    cr_assert(page);
    cr_assert_eq(strncmp(page, "<!DOCTYPE html>", 15), 0);
    cr_assert(strstr(page, "</html>\n"));
    cr_assert_geq(count_of(page, "<svg "), 6u);
    cr_assert_eq(count_of(page, "<svg "), count_of(page, "</svg>"));
    cr_assert_eq(count_of(page, "<table>"), count_of(page, "</table>"));
    cr_assert_eq(count_of(page, "<section>"), count_of(page, "</section>"));
    cr_assert_eq(count_of(page, "<tr>"), count_of(page, "</tr>"));
    cr_assert_geq(count_of(page, "<rect "), 10u);
    char needle[128];
    snprintf(needle, sizeof needle, "id=\"total-a\">%s<", a);
    cr_assert(strstr(page, needle), "%s", needle);
    snprintf(needle, sizeof needle, "id=\"total-b\">%s<", b);
    cr_assert(strstr(page, needle), "%s", needle);
    snprintf(needle, sizeof needle, "id=\"total-diff\">%s<", d);
    cr_assert(strstr(page, needle), "%s", needle);
    cr_assert(strstr(page, "DISCIPLE") && strstr(page, "NOT_ASSOCIATED"));
    /* self-contained: no script, nothing fetched */
    cr_assert_null(strstr(page, "<script"));
    cr_assert_null(strstr(page, "http:"));
    cr_assert_null(strstr(page, "https:"));
    cr_assert_null(strstr(page, "src="));
    cr_assert_null(strstr(page, "<link"));
    free(page);
    dashi_whatif_destroy(w);

    /* headless Chromium renders it: never skipped */
    cr_assert_eq(access(CHROMIUM, X_OK), 0,
                 CHROMIUM " is missing: install Debian's chromium package (scripts/setup.sh) — the HTML render test "
                          "cannot run without it");
    snprintf(png, sizeof png, "%s/report.png", dir);
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium", dir);
    snprintf(url, sizeof url, "file://%s", html);
    char shot[700];
    snprintf(shot, sizeof shot, "--screenshot=%s", png);
    snprintf(err, sizeof err, "%s/chromium.log", dir);
    const char *cargv[] = {"/usr/bin/timeout", "120", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           profile, shot, "--window-size=1200,1600", url, NULL};
    int rc = dashi_test_run(cargv, NULL, err);
    cr_assert_eq(rc, 0, "chromium exited with %d (log: %s)", rc, err);
    size_t len = 0;
    unsigned char *img = (unsigned char *)dashi_test_slurp(png, &len);
    cr_assert(img, "chromium wrote no %s (log: %s)", png, err);
    cr_assert_gt(len, 20000u, "the screenshot is too small to show the page (%zu bytes)", len);
    cr_assert_eq(memcmp(img, "\x89PNG\r\n\x1a\n", 8), 0, "not a PNG");
    /* IHDR: big-endian width and height at bytes 16..23 */
    unsigned wdt = (unsigned)img[16] << 24 | (unsigned)img[17] << 16 | (unsigned)img[18] << 8 | img[19];
    unsigned hgt = (unsigned)img[20] << 24 | (unsigned)img[21] << 16 | (unsigned)img[22] << 8 | img[23];
    cr_assert_eq(wdt, 1200u);
    cr_assert_eq(hgt, 1600u);
    free(img);
}
