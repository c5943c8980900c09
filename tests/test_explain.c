/* test_explain.c — `dashi explain`: the text names the right facts, rule IDs and reason codes, from memory and from Redis.
 *
 * Each test replays scenario events (the files of tests/scenarios, through
 * dashi_explain_replay, as `dashi explain --in` does) and asserts that the
 * explanation of an order, a customer or a campaign promoter contains what the
 * scenario is about: the ambassador, the rate, the rule IDs, the reason codes, the
 * K2 step reached and why an excluded user is excluded. One test runs every
 * scenario and checks that each rejection or cancellation it expects is explained
 * with its reason code; one checks that no clear identity value is printed; one
 * that explaining a Redis state gives the same text as the in-memory state; one
 * runs the dashi binary.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/explain.h"
#include "app/replay.h"
#include "core/engine.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "support/proc.h"
#include "support/redis_server.h"

#define SCN_DIR DASHI_SOURCE_DIR "/tests/scenarios"

/* A scenario loaded: its rules, its events as NDJSON text, its until. */
typedef struct scn {
    json_t *doc;
    dashi_rules *rules;
    char *ndjson;
    size_t ndjson_len;
    dashi_time until;
} scn;

static void scn_free(scn *s) {
    json_decref(s->doc);
    dashi_rules_destroy(s->rules);
    free(s->ndjson);
    memset(s, 0, sizeof *s);
}

static void scn_load(const char *file, scn *s) {
    char path[1024], err[512] = "", rules_path[2048];
    FILE *mem;
    size_t i;
    json_t *ev;
    const char *cfg, *until;
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "%s/%s", SCN_DIR, file);
    s->doc = json_load_file(path, 0, NULL);
    cr_assert(s->doc, "cannot read %s", path);
    cfg = json_string_value(json_object_get(s->doc, "config"));
    if (cfg)
        snprintf(rules_path, sizeof rules_path, "%s/%s", SCN_DIR, cfg);
    else
        snprintf(rules_path, sizeof rules_path, "%s", dashi_default_rules_path());
    s->rules = dashi_rules_load(rules_path, err, sizeof err);
    cr_assert(s->rules, "rules %s: %s", rules_path, err);
    mem = open_memstream(&s->ndjson, &s->ndjson_len);
    cr_assert(mem);
    json_array_foreach(json_object_get(s->doc, "events"), i, ev) {
        char *line = json_dumps(ev, JSON_COMPACT);
        fprintf(mem, "%s\n", line);
        free(line);
    }
    fclose(mem);
    s->until = DASHI_TIME_NONE;
    until = json_string_value(json_object_get(s->doc, "until"));
    if (until)
        cr_assert_eq(dashi_time_parse(until, &s->until, err, sizeof err), DASHI_OK, "%s", err);
}

/* Replay the scenario into a fresh memory state, as `dashi explain --in` does. */
static dashi_state *scn_replay(const scn *s) {
    char err[512] = "";
    dashi_keyring *keys = dashi_keyring_load(NULL, err, sizeof err);
    FILE *in = fmemopen(s->ndjson, s->ndjson_len, "r");
    dashi_state *st = NULL;
    size_t n_events = 0, n_rejected = 0;
    cr_assert(keys, "%s", err);
    cr_assert(in);
    cr_assert_eq(dashi_explain_replay(in, "scenario", s->rules, keys, s->until, NULL, &st, &n_events, &n_rejected, err,
                                      sizeof err),
                 DASHI_OK, "%s", err);
    cr_assert(st);
    cr_assert_gt(n_events, 0);
    fclose(in);
    dashi_keyring_destroy(keys);
    return st;
}

typedef enum { Q_ORDER, Q_CUSTOMER, Q_CAMPAIGN } query;

/* The explanation's text (malloc'ed); *err_out gets the return code. */
static char *explain(dashi_state *st, const dashi_rules *rules, query q, const char *id, const char *promoter,
                     dashi_err *err_out) {
    char *text = NULL, err[512] = "";
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    dashi_err e;
    cr_assert(out);
    if (q == Q_ORDER)
        e = dashi_explain_order(st, rules, id, out, err, sizeof err);
    else if (q == Q_CUSTOMER)
        e = dashi_explain_customer(st, rules, id, out, err, sizeof err);
    else
        e = dashi_explain_campaign(st, rules, id, promoter, out, err, sizeof err);
    fclose(out);
    if (err_out)
        *err_out = e;
    else
        cr_assert_eq(e, DASHI_OK, "explain %s: %s", id, err);
    return text;
}

/* Replay a scenario and explain one thing in it. */
static char *explain_scenario(const char *file, query q, const char *id, const char *promoter) {
    scn s;
    dashi_state *st;
    char *text;
    scn_load(file, &s);
    st = scn_replay(&s);
    text = explain(st, s.rules, q, id, promoter, NULL);
    dashi_state_destroy(st);
    scn_free(&s);
    return text;
}

static bool str_is(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

#define assert_has(text, needle) cr_assert(strstr((text), (needle)), "missing \"%s\" in:\n%s", (needle), (text))
#define assert_lacks(text, needle) cr_assert(!strstr((text), (needle)), "unexpected \"%s\" in:\n%s", (needle), (text))

/* The line of text that contains needle (static buffer), for facts that must be on one line. */
static const char *line_with(const char *text, const char *needle) {
    static char line[4096];
    const char *hit = strstr(text, needle), *start, *end;
    line[0] = '\0';
    if (!hit)
        return line;
    for (start = hit; start > text && start[-1] != '\n'; start--)
        ;
    end = strchr(hit, '\n');
    snprintf(line, sizeof line, "%.*s", (int)(end ? end - start : (long)strlen(start)), start);
    return line;
}

Test(explain, commissioned_order_names_ambassador_rate_and_rules) {
    char *t = explain_scenario("a1-registration-association.json", Q_ORDER, "o1", NULL);
    assert_has(t, "order o1: CONFIRMED, commission 260.00 RMB to ambassador amb1");
    assert_has(line_with(t, "[A1]"), "ambassador amb1");
    assert_has(line_with(t, "[A1]"), "registered through the link");
    assert_has(line_with(t, "[A3]"), "protected until");
    assert_has(line_with(t, "[C6,V1]"), "2600 bp");
    assert_has(line_with(t, "[C6,V1]"), "PURE_NEW");
    assert_has(line_with(t, "[C6,V1]"), "DISCIPLE");
    assert_has(line_with(t, "[C6,V1]"), "2022-06-01");
    assert_has(line_with(t, "[C1]"), "the first purchase");
    assert_has(t, "[C9]");
    assert_has(line_with(t, "confirmed at"), "[C8]");
    assert_has(t, "[C10]");
    assert_has(line_with(t, "CONFIRMED: 260.00 RMB to amb1"), "[C11]");
    assert_has(t, "person P-cust1");
    free(t);
}

Test(explain, expired_association_is_rejected_with_a2) {
    char *t = explain_scenario("a2-association-expired.json", Q_ORDER, "o1", NULL);
    assert_has(t, "order o1: REJECTED: ASSOCIATION_EXPIRED");
    assert_has(line_with(t, "had expired"), "[A2]");
    assert_has(line_with(t, "reason ASSOCIATION_EXPIRED"), "[A2]");
    assert_lacks(t, "commission =");
    free(t);
}

Test(explain, repurchase_outside_the_cart_is_not_first_purchase) {
    scn s;
    dashi_state *st;
    char *t;
    scn_load("c1-cart-three-orders.json", &s);
    st = scn_replay(&s);
    t = explain(st, s.rules, Q_ORDER, "o4", NULL, NULL);
    assert_has(t, "REJECTED: NOT_FIRST_PURCHASE");
    assert_has(line_with(t, "reason NOT_FIRST_PURCHASE"), "[C1,C11]");
    assert_has(line_with(t, "not the first purchase"), "first paid with order o1");
    assert_has(line_with(t, "new when associated"), "[C1,C11]");
    assert_has(line_with(t, "new when associated"), ": NOT_FIRST_PURCHASE");
    free(t);
    t = explain(st, s.rules, Q_ORDER, "o3", NULL, NULL);
    assert_has(line_with(t, "same cart"), "[C1]");
    assert_has(t, "PENDING, commission 78.00 RMB");
    assert_has(line_with(t, "commission = "), "300.01 RMB x 2600 bp");
    free(t);
    t = explain(st, s.rules, Q_CUSTOMER, "cust1", NULL, NULL);
    assert_has(t, "customer cust1, person P-cust1");
    assert_has(line_with(t, "o1 "), "PENDING 260.00 RMB to amb1");
    assert_has(line_with(t, "o4 "), "REJECTED: NOT_FIRST_PURCHASE");
    assert_has(line_with(t, "[A1]"), "ambassador amb1");
    free(t);
    dashi_state_destroy(st);
    scn_free(&s);
}

Test(explain, k2_step_reached_and_counted_users) {
    char *t = explain_scenario("k2-three-first-purchases.json", Q_CAMPAIGN, "K2", "amb1");
    assert_has(t, "campaign K2");
    assert_has(line_with(t, "counted ->"), "[K2]");
    assert_has(line_with(t, "counted ->"), "3 counted -> step 1 of 9 reached (3 users -> 6000 yunqi)");
    assert_has(line_with(t, "next step"), "5 users -> 10000 yunqi");
    assert_has(line_with(t, "cust1 (person"), "counted since");
    assert_has(line_with(t, "cust2 (person"), "counted since");
    assert_has(line_with(t, "cust3 (person"), "counted since");
    free(t);
}

Test(explain, k2_full_refund_excludes_the_user_and_loses_the_step) {
    char *t = explain_scenario("k2-refund-tier-lost.json", Q_CAMPAIGN, "invite-2206", "amb1");
    const char *k2 = strstr(t, "campaign K2");
    cr_assert(k2, "%s", t);
    assert_has(k2, "SETTLED");
    assert_has(line_with(k2, "counted ->"), "2 counted -> no step reached (the first needs 3)");
    assert_has(line_with(k2, "cust2: counted no more"), "refunded in full within the refund window");
    assert_has(line_with(k2, "cust2: counted no more"), "[K2,C7]");
    assert_has(line_with(k2, "cust3 (person"), "counted since"); /* a partial refund changes nothing */
    free(t);
}

Test(explain, one_person_counts_once) {
    char *t = explain_scenario("k2-same-person-counted-once.json", Q_CAMPAIGN, "K2", "amb1");
    assert_has(line_with(t, "counted ->"), "2 counted");
    assert_has(line_with(t, "cust1b:"), "made by its other account cust1");
    free(t);
}

Test(explain, k2_same_person_found_later_drops_the_entry) {
    char *t = explain_scenario("k2-same-person-found-later.json", Q_CAMPAIGN, "K2", "amb1");
    assert_has(line_with(t, "counted ->"), "2 counted");
    assert_has(line_with(t, "cust3: counted no more (dropped); why (inferred): "), "[S4,C1] a same-person finding");
    free(t);
}

Test(explain, k4_verification_ladder_explains_the_purchase_ratio) {
    char *t = explain_scenario("k4-page-example-under-30.json", Q_CAMPAIGN, "K4", "amb1");
    assert_has(t, "PERSONAL: 10 counted -> no step reached");
    assert_has(t, "ceil(10 x 2000 bp (20.00%)) = 2");
    free(t);
}

Test(explain, unknown_things_are_not_found) {
    scn s;
    dashi_state *st;
    dashi_err e;
    char *t;
    scn_load("a1-registration-association.json", &s);
    st = scn_replay(&s);
    t = explain(st, s.rules, Q_ORDER, "no-such-order", NULL, &e);
    cr_assert_eq(e, DASHI_ERR_NOT_FOUND);
    free(t);
    t = explain(st, s.rules, Q_CUSTOMER, "no-such-user", NULL, &e);
    cr_assert_eq(e, DASHI_ERR_NOT_FOUND);
    free(t);
    t = explain(st, s.rules, Q_CAMPAIGN, "K99", "amb1", &e);
    cr_assert_eq(e, DASHI_ERR_NOT_FOUND);
    free(t);
    dashi_state_destroy(st);
    scn_free(&s);
}

/* Every identity value of the scenario's events, as given and lowercased. */
static void assert_no_identity_value(const json_t *doc, const char *text) {
    size_t i, k;
    const json_t *ev, *id;
    json_array_foreach(json_object_get(doc, "events"), i, ev) {
        json_array_foreach(json_object_get(ev, "identities"), k, id) {
            const char *v = json_string_value(json_object_get(id, "value"));
            char low[256];
            size_t n;
            if (!v || strlen(v) < 6)
                continue;
            for (n = 0; v[n] && n + 1 < sizeof low; n++)
                low[n] = (char)(v[n] >= 'A' && v[n] <= 'Z' ? v[n] - 'A' + 'a' : v[n]);
            low[n] = '\0';
            assert_lacks(text, v);
            assert_lacks(text, low);
        }
    }
}

Test(explain, never_prints_clear_identity_values) {
    const char *files[] = {"s7-no-clear-identity-in-outputs.json", "s1-shared-phone-transitive.json",
                           "s3-self-referral.json"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        scn s;
        dashi_state *st;
        size_t i;
        const json_t *ev;
        scn_load(files[f], &s);
        st = scn_replay(&s);
        json_array_foreach(json_object_get(s.doc, "events"), i, ev) {
            const char *uid = json_string_value(json_object_get(ev, "uid"));
            const char *order = json_string_value(json_object_get(ev, "order_id"));
            char *t;
            dashi_err e;
            if (uid) {
                t = explain(st, s.rules, Q_CUSTOMER, uid, NULL, &e);
                cr_assert_eq(e, DASHI_OK);
                assert_has(t, "identity: ");
                assert_no_identity_value(s.doc, t);
                free(t);
            }
            if (order && (t = explain(st, s.rules, Q_ORDER, order, NULL, &e))) {
                assert_no_identity_value(s.doc, t);
                free(t);
            }
        }
        dashi_state_destroy(st);
        scn_free(&s);
    }
}

/* Every rejection or cancellation a scenario expects is explained with its reason codes. */
Test(explain, every_expected_rejection_is_explained_with_its_reasons) {
    DIR *d = opendir(SCN_DIR);
    struct dirent *de;
    size_t checked = 0;
    cr_assert(d);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name), i;
        const json_t *exp;
        dashi_state *st = NULL;
        scn s;
        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        scn_load(de->d_name, &s);
        json_array_foreach(json_object_get(s.doc, "expect"), i, exp) {
            const char *ev = json_string_value(json_object_get(exp, "event"));
            const char *order = json_string_value(json_object_get(exp, "order_id"));
            const json_t *reasons = json_object_get(exp, "reasons"), *r;
            size_t k;
            char *t;
            if (!str_is(json_string_value(json_object_get(exp, "type")), "CommissionEvent") || !order || !ev ||
                (strcmp(ev, "REJECTED") != 0 && strcmp(ev, "CANCELLED") != 0))
                continue;
            if (!st)
                st = scn_replay(&s);
            t = explain(st, s.rules, Q_ORDER, order, NULL, NULL);
            cr_assert(strstr(line_with(t, "order "), ev), "%s: order %s is not %s:\n%s", de->d_name, order, ev, t);
            json_array_foreach(reasons, k, r) {
                char needle[128];
                snprintf(needle, sizeof needle, "reason %s: ", json_string_value(r));
                cr_assert(strstr(t, needle), "%s: order %s lacks \"%s\":\n%s", de->d_name, order, needle, t);
                cr_assert(line_with(t, needle)[2] == '[', "%s: no rule IDs on the line of %s", de->d_name, needle);
            }
            free(t);
            checked++;
        }
        dashi_state_destroy(st);
        scn_free(&s);
    }
    closedir(d);
    cr_assert_gt(checked, 20, "only %zu rejections checked", checked);
}

Test(explain, redis_state_explains_like_memory) {
    char err[512] = "";
    dashi_test_redis *srv = dashi_test_redis_start(err, sizeof err);
    const char *files[] = {"a1-registration-association.json", "k2-refund-tier-lost.json"};
    cr_assert(srv, "redis-server: %s", err);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        scn s;
        dashi_state *mem, *red;
        dashi_keyring *keys = dashi_keyring_load(NULL, err, sizeof err);
        dashi_event_list list = {0};
        dashi_replay_stats stats = {0};
        dashi_engine *eng;
        FILE *in;
        char *a, *b;
        scn_load(files[f], &s);
        mem = scn_replay(&s);
        /* what `dashi replay --state` leaves, under the prefix it uses by default */
        red = dashi_state_open(dashi_test_redis_url(srv), "dashi:", err, sizeof err);
        cr_assert(red, "%s", err);
        cr_assert_eq(red->ops->clear(red, err, sizeof err), DASHI_OK, "%s", err);
        in = fmemopen(s.ndjson, s.ndjson_len, "r");
        cr_assert_eq(dashi_replay_read(in, "scenario", &list, &stats, NULL, NULL, err, sizeof err), DASHI_OK);
        fclose(in);
        dashi_replay_sort(&list);
        eng = dashi_engine_new(s.rules, keys, red, err, sizeof err);
        cr_assert(eng, "%s", err);
        cr_assert_eq(dashi_replay_run(eng, &list, "scenario", s.until, NULL, NULL, NULL, NULL, &stats, err, sizeof err),
                     DASHI_OK, "%s", err);
        dashi_engine_destroy(eng);
        dashi_event_list_clear(&list);
        /* the same explanations */
        a = explain(mem, s.rules, Q_ORDER, f == 0 ? "o1" : "o2", NULL, NULL);
        b = explain(red, s.rules, Q_ORDER, f == 0 ? "o1" : "o2", NULL, NULL);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
        a = explain(mem, s.rules, Q_CAMPAIGN, "invite-2206", "amb1", NULL);
        b = explain(red, s.rules, Q_CAMPAIGN, "invite-2206", "amb1", NULL);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
        a = explain(mem, s.rules, Q_CUSTOMER, "cust1", NULL, NULL);
        b = explain(red, s.rules, Q_CUSTOMER, "cust1", NULL, NULL);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
        dashi_state_destroy(red);
        dashi_state_destroy(mem);
        dashi_keyring_destroy(keys);
        scn_free(&s);
    }
    dashi_test_redis_stop(srv);
}

Test(explain, command_line) {
    char dir[512], events[640], out[640], errf[640];
    scn s;
    FILE *f;
    char *text;
    cr_assert(dashi_test_tmpdir(dir, sizeof dir));
    snprintf(events, sizeof events, "%s/events.ndjson", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    scn_load("a2-association-expired.json", &s);
    cr_assert((f = fopen(events, "w")));
    fwrite(s.ndjson, 1, s.ndjson_len, f);
    fclose(f);
    {
        const char *argv[] = {DASHI_BINARY, "explain", "--in", events, "--until", "2022-07-06T00:00:00+08:00",
                              "--order", "o1", "--customer", "cust1", NULL};
        cr_assert_eq(dashi_test_run(argv, out, errf), 0);
        text = dashi_test_slurp(out, NULL);
        cr_assert(text);
        assert_has(text, "order o1: REJECTED: ASSOCIATION_EXPIRED");
        assert_has(text, "customer cust1");
        free(text);
    }
    {
        const char *argv[] = {DASHI_BINARY, "explain", "--in", events, "--order", "nope", NULL};
        cr_assert_eq(dashi_test_run(argv, out, errf), 1);
        text = dashi_test_slurp(errf, NULL);
        assert_has(text, "no order nope");
        free(text);
    }
    {
        const char *argv[] = {DASHI_BINARY, "explain", "--order", "o1", NULL}; /* no state */
        cr_assert_eq(dashi_test_run(argv, out, errf), 2);
    }
    {
        const char *argv[] = {DASHI_BINARY, "explain", "--in", events, "--campaign", "K2", NULL}; /* no promoter */
        cr_assert_eq(dashi_test_run(argv, out, errf), 2);
    }
    {
        const char *argv[] = {DASHI_BINARY, "explain", "--help", NULL};
        cr_assert_eq(dashi_test_run(argv, out, errf), 0);
        text = dashi_test_slurp(out, NULL);
        assert_has(text, "--promoter");
        free(text);
    }
    scn_free(&s);
}
