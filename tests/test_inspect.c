/* test_inspect.c — `dashi inspect`: the stored records of each kind of subject, from a real Redis, readable and without identity values.
 *
 * Each test starts a private redis-server (tests/support/redis_server.h), replays
 * a seeded `dashi gen` stream into it with the dashi binary (`replay --state
 * unix://… --prefix t:`) and picks its subjects from that replay's outputs: a
 * confirmed commission (customer, order, ambassador), a SAME_PERSON decision
 * (person), a K2 promoter (campaign). It then checks what inspect prints for each:
 * the keys of the module headers, values that match the outputs, instants as CST
 * text, attribute ids cut to 8 hash characters, and none of the clear identity
 * values of the input. The binary is run too: same text as the library, exit codes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/generate.h"
#include "app/inspect.h"
#include "app/replay.h"
#include "core/rules.h"
#include "core/state.h"
#include "support/proc.h"
#include "support/redis_server.h"

static dashi_test_redis *srv;
static dashi_state *st;
static dashi_rules *rules;
static char dir[256], events[512], outputs[600];
static json_t *clear_values; /* every identity value of the input, as written */
/* subjects picked from the outputs */
static char cust[64], order_id[96], amb[64], cm_id[64], same_uid[64], k2_promoter[64];
static json_int_t cm_amount;

static void pick_subjects(void) {
    FILE *f = fopen(outputs, "r");
    char *line = NULL;
    size_t cap = 0;
    cr_assert(f);
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *type = json_string_value(json_object_get(o, "type"));
        cr_assert(type);
        if (!cust[0] && strcmp(type, "CommissionEvent") == 0 &&
            strcmp(json_string_value(json_object_get(o, "event")), "CONFIRMED") == 0) {
            snprintf(cust, sizeof cust, "%s", json_string_value(json_object_get(o, "customer_uid")));
            snprintf(order_id, sizeof order_id, "%s", json_string_value(json_object_get(o, "order_id")));
            snprintf(amb, sizeof amb, "%s", json_string_value(json_object_get(o, "ambassador_uid")));
            snprintf(cm_id, sizeof cm_id, "%s", json_string_value(json_object_get(o, "commission_id")));
            cm_amount = json_integer_value(json_object_get(o, "amount"));
        }
        if (!same_uid[0] && strcmp(type, "SamePersonDecision") == 0 &&
            strcmp(json_string_value(json_object_get(o, "status")), "SAME_PERSON") == 0)
            snprintf(same_uid, sizeof same_uid, "%s", json_string_value(json_object_get(o, "uid")));
        if (!k2_promoter[0] && strcmp(type, "CampaignEvent") == 0 &&
            strcmp(json_string_value(json_object_get(o, "kind")), "SETTLED") == 0 &&
            json_integer_value(json_object_get(o, "count")) > 0 && !json_object_get(o, "ladder") &&
            strcmp(json_string_value(json_object_get(o, "campaign_id")), "invite-2206") == 0)
            snprintf(k2_promoter, sizeof k2_promoter, "%s", json_string_value(json_object_get(o, "promoter_uid")));
        json_decref(o);
    }
    free(line);
    fclose(f);
    cr_assert(cust[0] && same_uid[0] && k2_promoter[0], "the stream lacks a subject: '%s' '%s' '%s'", cust, same_uid,
              k2_promoter);
}

static void collect_clear_values(void) {
    FILE *f = fopen(events, "r");
    char *line = NULL;
    size_t cap = 0;
    clear_values = json_object();
    cr_assert(f);
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        static const char *const lists[] = {"identities", "added", "removed"};
        for (size_t l = 0; l < 3; l++) {
            size_t i;
            json_t *id;
            json_array_foreach(json_object_get(o, lists[l]), i, id) {
                const char *v = json_string_value(json_object_get(id, "value"));
                if (v && strlen(v) >= 6)
                    json_object_set_new(clear_values, v, json_true());
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    cr_assert_gt(json_object_size(clear_values), 100u);
}

static void setup(void) {
    char err[512] = "";
    dashi_gen_opts o;
    uint64_t n = 0;
    FILE *f;
    srv = dashi_test_redis_start(err, sizeof err);
    cr_assert(srv, "redis-server: %s", err);
    cr_assert(dashi_test_tmpdir(dir, sizeof dir));
    snprintf(events, sizeof events, "%s/events.ndjson", dir);
    snprintf(outputs, sizeof outputs, "%s/out.ndjson", dir);
    dashi_gen_opts_default(&o);
    o.seed = 3;
    o.ambassadors = 40;
    o.customers = 500;
    cr_assert((f = fopen(events, "w")));
    cr_assert_eq(dashi_generate(&o, f, &n, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(fclose(f), 0);
    char errf[600];
    snprintf(errf, sizeof errf, "%s/replay.err", dir);
    const char *argv[] = {DASHI_BINARY, "replay", "--in", events, "--out", outputs, "--state",
                          dashi_test_redis_url(srv), "--prefix", "t:", "--until", "2022-09-30T00:00:00+08:00",
                          "--quiet", NULL};
    cr_assert_eq(dashi_test_run(argv, NULL, errf), 0, "replay into redis failed (%s)", errf);
    st = dashi_state_open(dashi_test_redis_url(srv), "t:", err, sizeof err);
    cr_assert(st, "%s", err);
    rules = dashi_rules_load(dashi_default_rules_path(), err, sizeof err);
    cr_assert(rules, "%s", err);
    pick_subjects();
    collect_clear_values();
}

static void teardown(void) {
    dashi_state_destroy(st);
    dashi_rules_destroy(rules);
    json_decref(clear_values);
    dashi_test_redis_stop(srv);
}

TestSuite(inspect, .init = setup, .fini = teardown, .timeout = 170);

/* What inspect prints (malloc'ed), asserting its verdict. */
static char *inspect(dashi_inspect_what what, const char *id, const char *promoter, dashi_err want) {
    char *buf = NULL, err[512] = "";
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f);
    dashi_err got = dashi_inspect(st, rules, what, id, promoter, f, err, sizeof err);
    fclose(f);
    cr_assert_eq(got, want, "inspect %s: %s (%s)\n%s", id, dashi_err_str(got), err, buf);
    return buf;
}

/* No clear identity value, and no attribute id longer than its cut form. */
static void assert_no_identity(const char *text) {
    const char *v;
    json_t *t;
    json_object_foreach(clear_values, v, t) cr_assert_null(strstr(text, v), "clear identity value %s printed", v);
    for (const char *p = text; *p; p++) {
        if (!strchr("PEID", *p) || (p > text && (p[-1] != '"' && p[-1] != ':')))
            continue;
        const char *dot = strchr(p, '.');
        if (!dot || dot - p > 4)
            continue;
        size_t n = strspn(dot + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
        cr_assert_leq(n, (size_t)DASHI_INSPECT_HASH_SHOWN, "a hash of %zu characters printed: %.60s", n, p);
    }
}

Test(inspect, customer_shows_identity_association_and_orders) {
    char *t = inspect(DASHI_INSPECT_CUSTOMER, cust, NULL, DASHI_OK);
    char want[256];
    snprintf(want, sizeof want, "-- acct:%s ", cust);
    cr_assert(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "-- asc:%s ", cust);
    cr_assert(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "-- ord:%s ", order_id);
    cr_assert(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "\"amb\": \"%s\"", amb);
    cr_assert(strstr(t, want), "%s", t);
    cr_assert(strstr(t, "\"state\": \"CONFIRMED\""), "%s", t);
    cr_assert(strstr(t, "+08:00\""), "instants as CST text: %s", t);
    cr_assert(strstr(t, "…\""), "attribute ids cut: %s", t);
    cr_assert(strstr(t, "not stored:"), "%s", t);
    assert_no_identity(t);
    free(t);
}

Test(inspect, person_shows_every_member_and_shared_attribute) {
    char *t = inspect(DASHI_INSPECT_PERSON, same_uid, NULL, DASHI_OK);
    size_t accts = 0, attrs = 0;
    for (const char *p = t; (p = strstr(p, "-- acct:")); p++)
        accts++;
    for (const char *p = t; (p = strstr(p, "-- attr:")); p++)
        attrs++;
    cr_assert(strstr(t, "person P-"), "%s", t);
    cr_assert_geq(accts, 2u, "a SAME_PERSON account's person has two accounts or more:\n%s", t);
    cr_assert_geq(attrs, 1u, "%s", t);
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", same_uid);
    cr_assert(strstr(t, want), "%s", t);
    assert_no_identity(t);
    free(t);
}

Test(inspect, ambassador_order_and_campaign) {
    char want[256];
    char *t = inspect(DASHI_INSPECT_AMBASSADOR, amb, NULL, DASHI_OK);
    snprintf(want, sizeof want, "-- amb:%s ", amb);
    cr_assert(strstr(t, want) && strstr(t, "\"enrolled_at\": \"20"), "%s", t);
    assert_no_identity(t);
    free(t);

    t = inspect(DASHI_INSPECT_ORDER, order_id, NULL, DASHI_OK);
    snprintf(want, sizeof want, "\"id\": \"%s\"", cm_id);
    cr_assert(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "\"amount\": %lld,", (long long)cm_amount);
    cr_assert(strstr(t, want), "the order's commission amount %lld: %s", (long long)cm_amount, t);
    assert_no_identity(t);
    free(t);

    t = inspect(DASHI_INSPECT_CAMPAIGN, "K2", NULL, DASHI_OK);
    cr_assert(strstr(t, "== campaign K2 ") && strstr(t, "-- cp:K2:st ") && strstr(t, "promoters ("), "%s", t);
    snprintf(want, sizeof want, "  %s ", k2_promoter);
    cr_assert(strstr(t, want), "%s", t);
    free(t);

    t = inspect(DASHI_INSPECT_CAMPAIGN, "invite-2206", k2_promoter, DASHI_OK);
    snprintf(want, sizeof want, "-- cp:K2:p:%s ", k2_promoter);
    cr_assert(strstr(t, want), "%s", t);
    cr_assert(strstr(t, "== campaign K1 ") && strstr(t, "== campaign K5 "), "every program of the link id: %s", t);
    cr_assert(strstr(t, "-- cp:K2:u:"), "the promoter's entries: %s", t);
    assert_no_identity(t);
    free(t);
}

Test(inspect, unknown_subjects_are_not_found) {
    free(inspect(DASHI_INSPECT_CUSTOMER, "no-such-uid", NULL, DASHI_ERR_NOT_FOUND));
    free(inspect(DASHI_INSPECT_PERSON, "no-such-uid", NULL, DASHI_ERR_NOT_FOUND));
    free(inspect(DASHI_INSPECT_ORDER, "no-such-order", NULL, DASHI_ERR_NOT_FOUND));
    free(inspect(DASHI_INSPECT_CAMPAIGN, "K99", NULL, DASHI_ERR_NOT_FOUND));
}

Test(inspect, command_prints_the_same_and_exits_by_outcome) {
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/inspect.txt", dir);
    snprintf(err, sizeof err, "%s/inspect.err", dir);
    const char *url = dashi_test_redis_url(srv);
    const char *argv[] = {DASHI_BINARY, "inspect", "--state", url, "--prefix", "t:", "--order", order_id, NULL};
    cr_assert_eq(dashi_test_run(argv, out, err), 0);
    char *cli = dashi_test_slurp(out, NULL), *lib = inspect(DASHI_INSPECT_ORDER, order_id, NULL, DASHI_OK);
    cr_assert(cli && strcmp(cli, lib) == 0, "binary:\n%s\nlibrary:\n%s", cli, lib);
    free(cli);
    free(lib);
    const char *missing[] = {DASHI_BINARY, "inspect", "--state", url, "--prefix", "t:", "--order", "nope", NULL};
    cr_assert_eq(dashi_test_run(missing, out, err), 1);
    const char *two[] = {DASHI_BINARY, "inspect", "--state", url, "--order", "a", "--customer", "b", NULL};
    cr_assert_eq(dashi_test_run(two, out, err), 2);
    const char *stray[] = {DASHI_BINARY, "inspect", "--state", url, "--order", "a", "--promoter", "b", NULL};
    cr_assert_eq(dashi_test_run(stray, out, err), 2);
}

Test(inspect_readable, cuts_hashes_and_writes_instants) {
    json_t *rec = json_loads("{\"e\": {\"P1.sb_UBPRQx1M9hpe3Juuj277el4vLXXdsi7oVWPa4jhE\": [5415203350, 1]},"
                             " \"a\": \"Eh.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\", \"t\": 1654000000000,"
                             " \"paid\": 82590, \"uid\": \"P1.short\", \"l\": [{\"at\": 1656353964413}]}",
                             0, NULL);
    cr_assert(rec);
    json_t *r = dashi_inspect_readable(rec);
    char *s = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(s, "{\"a\":\"Eh.abcdefgh…\",\"e\":{\"P1.sb_UBPRQ…\":[5415203350,1]},"
                        "\"l\":[{\"at\":\"2022-06-28T02:19:24.413+08:00\"}],\"paid\":82590,"
                        "\"t\":\"2022-05-31T20:26:40+08:00\",\"uid\":\"P1.short\"}");
    free(s);
    json_decref(r);
    json_decref(rec);
    cr_assert(dashi_inspect_is_attr_id("I12.I0nLbnTlEX5aUf8gII8g8hSxyR0qu_MT_CaMBjKyC9g"));
    cr_assert_not(dashi_inspect_is_attr_id("X1.I0nLbnTlEX5aUf8gII8g8hSxyR0qu_MT_CaMBjKyC9g"));
    cr_assert_not(dashi_inspect_is_attr_id("P.I0nLbnTlEX5aUf8gII8g8hSxyR0qu_MT_CaMBjKyC9g"));
    cr_assert_not(dashi_inspect_is_attr_id("P1.has space in it and is long enough"));
    cr_assert_not(dashi_inspect_is_attr_id("P-cust000010"));
    cr_assert_not(dashi_inspect_is_attr_id(""));
    cr_assert_not(dashi_inspect_is_attr_id(NULL));
}

Test(inspect_memory, a_value_that_is_not_json_is_shown_by_its_length_and_absent_keys_are_listed) {
    dashi_state *mem = dashi_state_mem_new();
    dashi_writeset ws;
    const dashi_writeset *sets[1] = {&ws};
    dashi_err result = DASHI_OK;
    char err[512] = "", *buf = NULL;
    size_t len = 0;
    dashi_rules *r = dashi_rules_load(dashi_default_rules_path(), err, sizeof err);
    cr_assert(mem);
    cr_assert(r, "%s", err);
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_writeset_add(&ws, DASHI_WS_PUT, "ord:x1", 6, "not json {", 10, 0), DASHI_OK);
    cr_assert_eq(mem->ops->apply(mem, 1, sets, &result, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(result, DASHI_OK);
    dashi_writeset_clear(&ws);
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f);
    cr_assert_eq(dashi_inspect(mem, r, DASHI_INSPECT_ORDER, "x1", NULL, f, err, sizeof err), DASHI_OK, "%s", err);
    fclose(f);
    cr_assert_str_eq(buf, "== order x1 ==\n"
                          "-- ord:x1   (commission: the order, its items and its one commission outcome \"cm\")\n"
                          "{\n  \"(not JSON: bytes)\": \"\",\n  \"length\": 10\n}\n"
                          "not stored: cp:ord:x1\n");
    free(buf);
    dashi_rules_destroy(r);
    dashi_state_destroy(mem);
}
