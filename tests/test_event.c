/* test_event.c — the JSON form of EVENTS.md: parsing, validation messages, round trips, life cycle.
 *
 * tests/data/events/all-types.ndjson holds one realistic event of each of the 16
 * types (optional fields present, absent and null; offsets other than +08:00). Every
 * line must parse and write back to the same JSON once its timestamps are written in
 * +08:00 and its nulls dropped. The validation tests take one valid line, break one
 * thing with a jansson edit, and check the error code and the exact field path.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/generate.h"
#include "core/event.h"

#define SAMPLES DASHI_SOURCE_DIR "/tests/data/events/all-types.ndjson"

/* ---- helpers ---- */

static json_t *load_samples(void) {
    json_error_t jerr;
    FILE *f = fopen(SAMPLES, "r");
    json_t *arr = json_array();
    char line[8192];
    cr_assert_not_null(f, "cannot open %s", SAMPLES);
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '\n' || line[0] == '\0')
            continue;
        json_t *obj = json_loads(line, 0, &jerr);
        cr_assert_not_null(obj, "bad sample line: %s", jerr.text);
        json_array_append_new(arr, obj);
    }
    fclose(f);
    return arr;
}

/* The sample of the given type (borrowed from samples). */
static json_t *sample_of(json_t *samples, const char *type) {
    size_t i;
    json_t *obj;
    json_array_foreach(samples, i, obj) {
        if (strcmp(json_string_value(json_object_get(obj, "type")), type) == 0)
            return obj;
    }
    cr_assert_fail("no sample of type %s", type);
    return NULL;
}

static int is_time_field(const char *key) {
    static const char *const names[] = {"occurred_at", "decided_at", "review_ends_at", "expires_at",
                                        "due_at"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(key, names[i]) == 0)
            return 1;
    return 0;
}

/* A copy of v as the writer writes it: nulls dropped, instants in +08:00. */
static json_t *normalize(json_t *v) {
    if (json_is_object(v)) {
        json_t *out = json_object(), *val;
        const char *key;
        json_object_foreach(v, key, val) {
            if (json_is_null(val))
                continue;
            if (is_time_field(key) && json_is_string(val)) {
                dashi_time t;
                char buf[DASHI_TIME_STRLEN];
                cr_assert_eq(dashi_time_parse(json_string_value(val), &t, NULL, 0), DASHI_OK);
                json_object_set_new(out, key, json_string(dashi_time_format(t, buf)));
            } else {
                json_object_set_new(out, key, normalize(val));
            }
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array(), *val;
        size_t i;
        json_array_foreach(v, i, val) json_array_append_new(out, normalize(val));
        return out;
    }
    return json_deep_copy(v);
}

/* Parse obj; on failure fail the test with the message. */
static void parse_ok(const json_t *obj, dashi_event *ev) {
    char err[512] = "";
    dashi_err rc = dashi_event_from_json(obj, ev, err, sizeof(err));
    cr_assert_eq(rc, DASHI_OK, "parse failed: %s", err);
}

/* Expect obj to fail with code and a message containing want. */
static void expect_error(json_t *obj, dashi_err code, const char *want) {
    char err[512] = "";
    dashi_event ev;
    dashi_err rc = dashi_event_from_json(obj, &ev, err, sizeof(err));
    cr_expect_eq(rc, code, "expected %s, got %s (%s) for [%s]", dashi_err_str(code),
                 dashi_err_str(rc), err, want);
    cr_expect(strstr(err, want) != NULL, "message '%s' does not contain '%s'", err, want);
    /* out is left cleared */
    dashi_event zero;
    memset(&zero, 0, sizeof(zero));
    cr_expect(memcmp(&ev, &zero, sizeof(ev)) == 0, "out not cleared after error");
    json_decref(obj);
}

/* A copy of the sample of type with a jansson path edit applied by the caller. */
static json_t *broken(const char *type) {
    json_t *samples = load_samples();
    json_t *copy = json_deep_copy(sample_of(samples, type));
    json_decref(samples);
    return copy;
}

static json_t *item(json_t *obj, size_t i) {
    return json_array_get(json_object_get(obj, "items"), i);
}

/* ---- parsing every type ---- */

Test(event, all_types_parse_and_cover_every_type) {
    json_t *samples = load_samples(), *obj;
    int seen[DASHI_EV__COUNT] = {0};
    size_t i;

    cr_assert_eq(json_array_size(samples), DASHI_EV__COUNT);
    json_array_foreach(samples, i, obj) {
        dashi_event ev;
        parse_ok(obj, &ev);
        cr_expect_str_eq(dashi_event_type_name(ev.type),
                         json_string_value(json_object_get(obj, "type")));
        seen[ev.type]++;
        cr_expect_neq(dashi_event_time(&ev), DASHI_TIME_NONE);
        cr_expect_str_neq(dashi_event_key(&ev), "");
        dashi_event_clear(&ev);
    }
    for (int t = 0; t < DASHI_EV__COUNT; t++)
        cr_expect_eq(seen[t], 1, "type %s seen %d times", dashi_event_type_name(t), seen[t]);
    json_decref(samples);
}

Test(event, account_registered_fields) {
    json_t *samples = load_samples();
    dashi_event ev;
    parse_ok(sample_of(samples, "AccountRegistered"), &ev);
    const dashi_account_registered *a = &ev.u.account_registered;
    cr_expect_eq(ev.type, DASHI_EV_ACCOUNT_REGISTERED);
    cr_expect_str_eq(a->event_id, "reg-20220608-0001");
    cr_expect_str_eq(a->uid, "cust1");
    cr_expect_eq(a->account_type, DASHI_ACCOUNT_PERSONAL);
    cr_expect_eq(a->method, DASHI_METHOD_PHONE_CODE);
    cr_assert_eq(a->n_identities, 2);
    cr_expect_eq(a->identities[0].kind, DASHI_ID_PHONE);
    cr_expect_str_eq(a->identities[0].value, "13800000001");
    cr_expect_eq(a->identities[0].hashed, false);
    cr_expect_eq(a->identities[1].kind, DASHI_ID_DEVICE);
    cr_expect_eq(a->identities[1].hashed, true);
    cr_assert_not_null(a->referral);
    cr_expect_str_eq(a->referral->ambassador_uid, "amb1");
    cr_expect_str_eq(a->referral->link_id, "lnk-amb1-invite");
    cr_expect_str_eq(a->referral->campaign_id, "invite-2206");
    /* 2022-06-08T10:00:00+08:00 == 2022-06-08T02:00:00Z */
    cr_expect_eq(a->occurred_at, 1654653600000LL);
    cr_expect_str_eq(dashi_event_id(&ev), "reg-20220608-0001");
    cr_expect_str_eq(dashi_event_key(&ev), "cust1");
    cr_expect_str_eq(dashi_event_topic(ev.type), "registration");
    dashi_event_clear(&ev);
    json_decref(samples);
}

Test(event, optional_absent_null_and_offsets) {
    json_t *samples = load_samples();
    dashi_event ev;

    /* null campaign_id, Z offset with milliseconds */
    parse_ok(sample_of(samples, "LinkVisited"), &ev);
    cr_expect_null(ev.u.link_visited.campaign_id);
    cr_expect_eq(ev.u.link_visited.logged_in, true);
    cr_expect_eq(ev.u.link_visited.occurred_at, 1654653570250LL);
    dashi_event_clear(&ev);

    /* optional fields absent in a CampaignEvent */
    parse_ok(sample_of(samples, "CampaignEvent"), &ev);
    const dashi_campaign_event *c = &ev.u.campaign_event;
    cr_expect_null(c->ladder);
    cr_expect_eq(c->tier_threshold, DASHI_INT_NONE);
    cr_expect_eq(c->rank, DASHI_INT_NONE);
    cr_expect_str_eq(c->customer_uid, "cust1");
    cr_expect_neq(c->expires_at, DASHI_TIME_NONE);
    cr_expect_eq(c->kind, DASHI_CAMP_DRAW_GRANTED);
    cr_expect_eq(c->unit, DASHI_UNIT_CNY);
    dashi_event_clear(&ev);

    /* RiskAction without campaign_id; OrderPaid without campaign_id but with cart_id */
    parse_ok(sample_of(samples, "RiskAction"), &ev);
    cr_expect_null(ev.u.risk_action.campaign_id);
    cr_expect_str_eq(ev.u.risk_action.order_id, "o1");
    cr_expect_str_eq(dashi_event_key(&ev), "amb1");
    dashi_event_clear(&ev);

    parse_ok(sample_of(samples, "OrderPaid"), &ev);
    const dashi_order_paid *o = &ev.u.order_paid;
    cr_expect_null(o->campaign_id);
    cr_expect_str_eq(o->cart_id, "cart-77");
    cr_assert_eq(o->n_items, 2);
    cr_expect_eq(o->items[0].list_amount, 120000);
    cr_expect_eq(o->items[0].discount_amount, 20000);
    cr_expect_eq(o->items[0].paid_amount, 100000);
    cr_expect_str_eq(o->items[1].category, "domain");
    dashi_event_clear(&ev);

    /* -05:00 offset */
    parse_ok(sample_of(samples, "AccountFlagged"), &ev);
    cr_expect_eq(ev.u.account_flagged.occurred_at, 1654146000000LL);
    cr_expect_eq(ev.u.account_flagged.flag, DASHI_FLAG_ENTERPRISE_CERTIFIED);
    dashi_event_clear(&ev);
    json_decref(samples);
}

Test(event, output_fields) {
    json_t *samples = load_samples();
    dashi_event ev;

    parse_ok(sample_of(samples, "CommissionEvent"), &ev);
    const dashi_commission_event *c = &ev.u.commission_event;
    cr_expect_eq(c->event, DASHI_CE_PENDING);
    cr_expect_eq(c->customer_kind, DASHI_CUST_PURE_NEW);
    cr_expect_eq(c->tier, DASHI_TIER_DISCIPLE);
    cr_expect_eq(c->rate_bp, 2600);
    cr_expect_eq(c->amount, 26000);
    cr_expect_eq(c->bonus_amount, 24000);
    cr_assert_eq(c->n_installments, 1);
    cr_expect_eq(c->installments[0].seq, 1);
    cr_expect_eq(c->installments[0].amount, 26000);
    cr_expect_eq(c->n_reasons, 0);
    cr_expect_str_eq(dashi_event_id(&ev), "c-o1-amb1");
    cr_expect_str_eq(dashi_event_key(&ev), "amb1");
    dashi_event_clear(&ev);

    parse_ok(sample_of(samples, "SamePersonDecision"), &ev);
    cr_assert_eq(ev.u.same_person_decision.n_matched_on, 2);
    cr_expect_eq(ev.u.same_person_decision.matched_on[0], DASHI_ID_PHONE);
    cr_expect_eq(ev.u.same_person_decision.matched_on[1], DASHI_ID_ID_DOC);
    cr_expect_eq(ev.u.same_person_decision.final, true);
    cr_expect_str_eq(dashi_event_id(&ev), "spd-cust1-1");
    cr_expect_eq(dashi_event_time(&ev), ev.u.same_person_decision.decided_at);
    dashi_event_clear(&ev);

    parse_ok(sample_of(samples, "FraudAlert"), &ev);
    const dashi_fraud_alert *f = &ev.u.fraud_alert;
    cr_assert_eq(f->n_evidence, 2);
    cr_expect_str_eq(f->evidence[0].key, "matched_on");
    cr_expect_str_eq(f->evidence[0].value, "PHONE");
    cr_expect_str_eq(f->evidence[1].key, "order_paid");
    cr_expect_str_eq(dashi_event_key(&ev), "cust1"); /* first subject */
    cr_expect_str_eq(dashi_event_id(&ev), "fa-self-o1");
    cr_expect_str_eq(dashi_event_topic(ev.type), "fraud-alert");
    dashi_event_clear(&ev);

    parse_ok(sample_of(samples, "TierAssigned"), &ev);
    cr_expect_str_eq(dashi_event_id(&ev), "");
    cr_expect_str_eq(dashi_event_key(&ev), "amb1");
    cr_expect_eq(dashi_event_time(&ev), dashi_cst_from_civil(2022, 7, 1));
    cr_expect_eq(ev.u.tier_assigned.tier, DASHI_TIER_HALL_MASTER);
    dashi_event_clear(&ev);

    parse_ok(sample_of(samples, "CampaignEvent"), &ev);
    cr_expect_str_eq(dashi_event_id(&ev), "ce-invite-2206-amb1-3");
    cr_expect_str_eq(dashi_event_key(&ev), "amb1");
    dashi_event_clear(&ev);
    json_decref(samples);
}

/* ---- round trips ---- */

Test(event, json_struct_json_identity) {
    json_t *samples = load_samples(), *obj;
    size_t i;
    json_array_foreach(samples, i, obj) {
        dashi_event ev;
        parse_ok(obj, &ev);
        json_t *out = dashi_event_to_json(&ev);
        json_t *want = normalize(obj);
        cr_assert_not_null(out);
        char *a = json_dumps(out, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);
        cr_expect(json_equal(out, want), "line %zu:\n got  %s\n want %s", i + 1, a, b);
        /* "type" first */
        cr_expect_str_eq(json_object_iter_key(json_object_iter(out)), "type");
        free(a);
        free(b);
        json_decref(out);
        json_decref(want);
        dashi_event_clear(&ev);
    }
    json_decref(samples);
}

Test(event, dump_parse_dump_is_stable) {
    json_t *samples = load_samples(), *obj;
    size_t i;
    json_array_foreach(samples, i, obj) {
        dashi_event ev, again;
        char err[256];
        parse_ok(obj, &ev);
        char *text = dashi_event_dump(&ev);
        cr_assert_not_null(text);
        cr_expect_null(strchr(text, '\n'), "dump is one line");
        cr_assert_eq(dashi_event_parse(text, strlen(text), &again, err, sizeof(err)), DASHI_OK, "%s",
                     err);
        char *text2 = dashi_event_dump(&again);
        cr_expect_str_eq(text, text2);
        free(text);
        free(text2);
        dashi_event_clear(&ev);
        dashi_event_clear(&again);
    }
    json_decref(samples);
}

Test(event, output_field_order_follows_events_md) {
    json_t *samples = load_samples();
    dashi_event ev;
    parse_ok(sample_of(samples, "OrderPaid"), &ev);
    char *text = dashi_event_dump(&ev);
    cr_expect(strncmp(text, "{\"type\":\"OrderPaid\",\"event_id\":\"ord-20220609-0009\",\"occurred_at\":"
                            "\"2022-06-09T11:00:00+08:00\",\"order_id\":\"o1\",\"uid\":\"cust1\","
                            "\"cart_id\":\"cart-77\",\"order_type\":\"NEW\",\"billing\":\"PREPAID\","
                            "\"items\":[",
                      strlen("{\"type\":\"OrderPaid\",\"event_id\":\"ord-20220609-0009\",\"occurred_at\":"
                             "\"2022-06-09T11:00:00+08:00\",\"order_id\":\"o1\",\"uid\":\"cust1\","
                             "\"cart_id\":\"cart-77\",\"order_type\":\"NEW\",\"billing\":\"PREPAID\","
                             "\"items\":[")) == 0,
              "%s", text);
    free(text);
    dashi_event_clear(&ev);
    json_decref(samples);
}

Test(event, arrays_always_written_absent_optionals_omitted) {
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_COMMISSION_EVENT);
    dashi_commission_event *c = &ev.u.commission_event;
    c->commission_id = dashi_strdup("c1");
    c->event = DASHI_CE_REJECTED;
    c->occurred_at = dashi_cst_from_civil(2022, 6, 9);
    c->ambassador_uid = dashi_strdup("amb1");
    c->customer_uid = dashi_strdup("cust1");
    c->person_id = dashi_strdup("p1");
    c->order_id = dashi_strdup("o1");
    c->rule_version = dashi_strdup("v");
    c->caused_by = dashi_strdup("e3");
    cr_assert_eq(dashi_strv_push(&c->reasons, &c->n_reasons, "NOT_ASSOCIATED"), 0);
    json_t *out = dashi_event_to_json(&ev);
    cr_expect(json_is_array(json_object_get(out, "installments")));
    cr_expect_eq(json_array_size(json_object_get(out, "installments")), 0);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(out, "reasons"), 0)),
                     "NOT_ASSOCIATED");
    cr_expect_null(json_object_get(out, "tier"));
    cr_expect_null(json_object_get(out, "customer_kind"));
    cr_expect_null(json_object_get(out, "rate_bp"));
    cr_expect_null(json_object_get(out, "review_ends_at"));
    cr_expect_eq(json_integer_value(json_object_get(out, "amount")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(out, "occurred_at")),
                     "2022-06-09T00:00:00+08:00");
    /* the reader accepts what the writer wrote */
    char err[256] = "";
    dashi_event back;
    cr_expect_eq(dashi_event_from_json(out, &back, err, sizeof(err)), DASHI_OK, "%s", err);
    dashi_event_clear(&back);
    json_decref(out);
    dashi_event_clear(&ev);
}

/* ---- validation: each case breaks one thing ---- */

Test(event, missing_required_fields) {
    json_t *o;

    o = broken("OrderPaid");
    json_object_del(o, "uid");
    expect_error(o, DASHI_ERR_INVALID, "uid: missing required field");

    o = broken("OrderPaid");
    json_object_set_new(o, "order_id", json_null()); /* null is absent */
    expect_error(o, DASHI_ERR_INVALID, "order_id: missing required field");

    o = broken("OrderPaid");
    json_object_del(item(o, 1), "paid_amount");
    expect_error(o, DASHI_ERR_INVALID, "items[1].paid_amount: missing required field");

    o = broken("OrderPaid");
    json_object_del(o, "items");
    expect_error(o, DASHI_ERR_INVALID, "items: missing required field");

    o = broken("AccountRegistered");
    json_object_del(json_object_get(o, "referral"), "link_id");
    expect_error(o, DASHI_ERR_INVALID, "referral.link_id: missing required field");

    o = broken("AccountRegistered");
    json_object_del(json_array_get(json_object_get(o, "identities"), 1), "kind");
    expect_error(o, DASHI_ERR_INVALID, "identities[1].kind: missing required field");

    o = broken("CommissionEvent");
    json_object_del(json_array_get(json_object_get(o, "installments"), 0), "due_at");
    expect_error(o, DASHI_ERR_INVALID, "installments[0].due_at: missing required field");

    o = broken("LinkVisited");
    json_object_del(o, "logged_in");
    expect_error(o, DASHI_ERR_INVALID, "logged_in: missing required field");

    o = broken("TierAssigned");
    json_object_del(o, "tier");
    expect_error(o, DASHI_ERR_INVALID, "tier: missing required field");
}

Test(event, wrong_types) {
    json_t *o;

    o = broken("OrderPaid");
    json_object_set_new(o, "uid", json_integer(42));
    expect_error(o, DASHI_ERR_INVALID, "uid: wrong type: expected string, got integer");

    o = broken("OrderPaid");
    json_object_set_new(o, "items", json_object());
    expect_error(o, DASHI_ERR_INVALID, "items: wrong type: expected array, got object");

    o = broken("OrderPaid");
    json_array_set_new(json_object_get(o, "items"), 1, json_string("i2"));
    expect_error(o, DASHI_ERR_INVALID, "items[1]: wrong type: expected object, got string");

    o = broken("OrderPaid");
    json_object_set_new(item(o, 0), "list_amount", json_string("120000"));
    expect_error(o, DASHI_ERR_INVALID, "items[0].list_amount: wrong type: expected integer, got string");

    o = broken("LinkVisited");
    json_object_set_new(o, "logged_in", json_string("yes"));
    expect_error(o, DASHI_ERR_INVALID, "logged_in: wrong type: expected boolean, got string");

    o = broken("AccountRegistered");
    json_object_set_new(o, "referral", json_string("amb1"));
    expect_error(o, DASHI_ERR_INVALID, "referral: wrong type: expected object, got string");

    o = broken("AccountRegistered");
    json_object_set_new(o, "occurred_at", json_integer(1654653600000LL));
    expect_error(o, DASHI_ERR_INVALID, "occurred_at: wrong type: expected ISO-8601 timestamp string");

    o = broken("CommissionEvent");
    json_array_append_new(json_object_get(o, "reasons"), json_integer(3));
    expect_error(o, DASHI_ERR_INVALID, "reasons[0]: wrong type: expected string, got integer");

    o = broken("FraudAlert");
    json_object_set_new(json_object_get(o, "evidence"), "order_paid", json_integer(100000));
    expect_error(o, DASHI_ERR_INVALID, "evidence.order_paid: wrong type: expected string, got integer");

    o = broken("AccountRegistered");
    json_object_set_new(json_array_get(json_object_get(o, "identities"), 0), "hashed", json_integer(0));
    expect_error(o, DASHI_ERR_INVALID, "identities[0].hashed: wrong type: expected boolean, got integer");
}

Test(event, unknown_enum_symbols) {
    json_t *o;

    o = broken("AccountRegistered");
    json_object_set_new(o, "account_type", json_string("CORP"));
    expect_error(o, DASHI_ERR_INVALID,
                 "account_type: unknown enum symbol 'CORP' (expected PERSONAL|ENTERPRISE)");

    o = broken("AccountRegistered");
    json_object_set_new(json_array_get(json_object_get(o, "identities"), 0), "kind",
                        json_string("FAX"));
    expect_error(o, DASHI_ERR_INVALID, "identities[0].kind: unknown enum symbol 'FAX'");

    o = broken("SamePersonDecision");
    json_array_set_new(json_object_get(o, "matched_on"), 1, json_string("phone"));
    expect_error(o, DASHI_ERR_INVALID, "matched_on[1]: unknown enum symbol 'phone'");

    o = broken("CommissionEvent");
    json_object_set_new(o, "tier", json_string("GRANDMASTER"));
    expect_error(o, DASHI_ERR_INVALID, "tier: unknown enum symbol 'GRANDMASTER'");

    o = broken("OrderPaid");
    json_object_set_new(o, "billing", json_string("prepaid"));
    expect_error(o, DASHI_ERR_INVALID, "billing: unknown enum symbol 'prepaid' (expected PREPAID|POSTPAID)");
}

Test(event, amounts) {
    json_t *o;

    o = broken("OrderPaid");
    json_object_set_new(item(o, 0), "list_amount", json_integer(-5));
    expect_error(o, DASHI_ERR_INVALID, "items[0].list_amount: negative amount -5");

    o = broken("OrderPaid");
    json_object_set_new(item(o, 1), "discount_amount", json_integer(-1));
    expect_error(o, DASHI_ERR_INVALID, "items[1].discount_amount: negative amount -1");

    o = broken("OrderPaid");
    json_object_set_new(item(o, 0), "list_amount", json_integer(1000));
    json_object_set_new(item(o, 0), "discount_amount", json_integer(0));
    json_object_set_new(item(o, 0), "paid_amount", json_integer(900));
    expect_error(o, DASHI_ERR_INVALID,
                 "items[0].paid_amount: must equal list_amount - discount_amount (900 != 1000 - 0)");

    /* discount larger than list: paid would be negative */
    o = broken("OrderPaid");
    json_object_set_new(item(o, 1), "discount_amount", json_integer(7000));
    json_object_set_new(item(o, 1), "paid_amount", json_integer(0));
    expect_error(o, DASHI_ERR_INVALID,
                 "items[1].paid_amount: must equal list_amount - discount_amount (0 != 6900 - 7000)");

    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_integer(0));
    expect_error(o, DASHI_ERR_INVALID, "amount: must be > 0 (got 0)");

    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_integer(-300));
    expect_error(o, DASHI_ERR_INVALID, "amount: must be > 0 (got -300)");

    o = broken("CommissionEvent");
    json_object_set_new(o, "base_amount", json_integer(-1));
    expect_error(o, DASHI_ERR_INVALID, "base_amount: negative amount -1");

    /* delta may be negative (a clawback) */
    o = broken("CommissionEvent");
    json_object_set_new(o, "delta", json_integer(-26000));
    dashi_event ev;
    parse_ok(o, &ev);
    cr_expect_eq(ev.u.commission_event.delta, -26000);
    dashi_event_clear(&ev);
    json_decref(o);

    /* a free item is fine */
    o = broken("OrderPaid");
    json_object_set_new(item(o, 1), "discount_amount", json_integer(6900));
    json_object_set_new(item(o, 1), "paid_amount", json_integer(0));
    parse_ok(o, &ev);
    dashi_event_clear(&ev);
    json_decref(o);
}

Test(event, integers_reals_and_overflow) {
    json_t *o;
    dashi_event ev;
    char err[256] = "";

    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_real(12.5));
    expect_error(o, DASHI_ERR_INVALID, "amount: must be an integer (got 12.5)");

    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_real(1e19));
    expect_error(o, DASHI_ERR_INVALID, "amount: integer 1e+19 out of int64 range");

    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_integer(INT64_MIN));
    expect_error(o, DASHI_ERR_INVALID, "amount: integer -9223372036854775808 out of range");

    /* an integral real is an integer */
    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_real(30000.0));
    parse_ok(o, &ev);
    cr_expect_eq(ev.u.order_refunded.amount, 30000);
    dashi_event_clear(&ev);
    json_decref(o);

    /* beyond int64 in the text: jansson refuses it */
    const char *big = "{\"type\":\"OrderRefunded\",\"event_id\":\"r\",\"occurred_at\":\"2022-06-12T16:45:00+08:00\","
                      "\"order_id\":\"o1\",\"uid\":\"c\",\"kind\":\"REFUND\",\"amount\":9223372036854775808}";
    cr_expect_eq(dashi_event_parse(big, strlen(big), &ev, err, sizeof(err)), DASHI_ERR_PARSE);
    cr_expect(strstr(err, "not JSON") && strstr(err, "too big"), "%s", err);

    /* the largest int64 is read as an integer, then refused by the amount limit */
    const char *max = "{\"type\":\"OrderRefunded\",\"event_id\":\"r\",\"occurred_at\":\"2022-06-12T16:45:00+08:00\","
                      "\"order_id\":\"o1\",\"uid\":\"c\",\"kind\":\"REFUND\",\"amount\":9223372036854775807}";
    cr_expect_eq(dashi_event_parse(max, strlen(max), &ev, err, sizeof(err)), DASHI_ERR_INVALID, "%s", err);
    cr_expect(strstr(err, "amount: amount 9223372036854775807 fen exceeds the limit of 1000000000000 fen"), "%s", err);
}

/* ---- limits (event.h DASHI_MAX_*) ---- */

static json_t *str_of(size_t n, char c) {
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

Test(event, string_length_limits) {
    json_t *o;
    dashi_event ev;

    /* ids: DASHI_MAX_ID_LEN bytes pass, one more is refused with the field's path */
    o = broken("OrderPaid");
    json_object_set_new(o, "uid", str_of(DASHI_MAX_ID_LEN, 'u'));
    parse_ok(o, &ev);
    cr_expect_eq(strlen(ev.u.order_paid.uid), DASHI_MAX_ID_LEN);
    dashi_event_clear(&ev);
    json_decref(o);
    o = broken("OrderPaid");
    json_object_set_new(o, "uid", str_of(DASHI_MAX_ID_LEN + 1, 'u'));
    expect_error(o, DASHI_ERR_INVALID, "uid: string of 129 bytes is longer than the limit of 128");

    const char *id_fields[][2] = {{"OrderPaid", "event_id"},      {"OrderPaid", "order_id"},
                                  {"OrderPaid", "cart_id"},       {"OrderPaid", "campaign_id"},
                                  {"LinkVisited", "ambassador_uid"}, {"LinkVisited", "link_id"},
                                  {"OrderRefunded", "item_id"},   {"RiskAction", "ambassador_uid"},
                                  {"CampaignEnrolled", "campaign_id"}};
    for (size_t i = 0; i < sizeof(id_fields) / sizeof(id_fields[0]); i++) {
        char want[128];
        o = broken(id_fields[i][0]);
        json_object_set_new(o, id_fields[i][1], str_of(500, 'x'));
        snprintf(want, sizeof(want), "%s: string of 500 bytes is longer than the limit of 128", id_fields[i][1]);
        expect_error(o, DASHI_ERR_INVALID, want);
    }
    /* nested: an item's id, category and product code */
    const char *item_fields[] = {"item_id", "product_code", "category"};
    for (size_t i = 0; i < 3; i++) {
        char want[128];
        o = broken("OrderPaid");
        json_object_set_new(item(o, 1), item_fields[i], str_of(129, 'c'));
        snprintf(want, sizeof(want), "items[1].%s: string of 129 bytes", item_fields[i]);
        expect_error(o, DASHI_ERR_INVALID, want);
    }
    /* identity values: DASHI_MAX_VALUE_LEN */
    o = broken("AccountRegistered");
    json_object_set_new(json_array_get(json_object_get(o, "identities"), 0), "value", str_of(DASHI_MAX_VALUE_LEN, '1'));
    parse_ok(o, &ev);
    dashi_event_clear(&ev);
    json_decref(o);
    o = broken("AccountRegistered");
    json_object_set_new(json_array_get(json_object_get(o, "identities"), 0), "value", str_of(DASHI_MAX_VALUE_LEN + 1, '1'));
    expect_error(o, DASHI_ERR_INVALID, "identities[0].value: string of 257 bytes is longer than the limit of 256");
    /* free text: DASHI_MAX_TEXT_LEN */
    o = broken("RiskAction");
    json_object_set_new(o, "reason", str_of(DASHI_MAX_TEXT_LEN, 'r'));
    parse_ok(o, &ev);
    dashi_event_clear(&ev);
    json_decref(o);
    o = broken("RiskAction");
    json_object_set_new(o, "reason", str_of(DASHI_MAX_TEXT_LEN + 1, 'r'));
    expect_error(o, DASHI_ERR_INVALID, "reason: string of 1025 bytes is longer than the limit of 1024");
    /* outputs: texts, map keys and values */
    o = broken("CommissionEvent");
    json_object_set_new(o, "caused_by", str_of(DASHI_MAX_TEXT_LEN + 1, 'c'));
    expect_error(o, DASHI_ERR_INVALID, "caused_by: string of 1025 bytes");
    o = broken("FraudAlert");
    json_object_set_new(json_object_get(o, "evidence"), "k", str_of(DASHI_MAX_TEXT_LEN + 1, 'v'));
    expect_error(o, DASHI_ERR_INVALID, "evidence.k: string of 1025 bytes");
}

Test(event, array_size_limits) {
    json_t *o, *arr;
    dashi_event ev;

    /* items per order: DASHI_MAX_ITEMS pass (each a free item), one more is refused */
    o = broken("OrderPaid");
    arr = json_object_get(o, "items");
    json_t *free_item = json_deep_copy(json_array_get(arr, 1));
    json_object_set_new(free_item, "discount_amount", json_integer(6900));
    json_object_set_new(free_item, "paid_amount", json_integer(0));
    json_array_clear(arr);
    for (int i = 0; i < DASHI_MAX_ITEMS; i++)
        json_array_append(arr, free_item);
    parse_ok(o, &ev);
    cr_expect_eq(ev.u.order_paid.n_items, DASHI_MAX_ITEMS);
    dashi_event_clear(&ev);
    json_array_append(arr, free_item);
    json_decref(free_item);
    expect_error(o, DASHI_ERR_INVALID, "items: 257 elements, more than the limit of 256");

    /* identities per array: DASHI_MAX_IDENTITIES */
    const char *id_arrays[][2] = {{"AccountRegistered", "identities"}, {"RealNameVerified", "identities"},
                                  {"IdentityChanged", "added"}, {"IdentityChanged", "removed"}};
    for (size_t k = 0; k < 4; k++) {
        char want[128];
        o = broken(id_arrays[k][0]);
        arr = json_object_get(o, id_arrays[k][1]);
        json_t *one = json_pack("{s:s,s:s}", "kind", "DEVICE", "value", "dev-1");
        json_array_clear(arr);
        for (int i = 0; i <= DASHI_MAX_IDENTITIES; i++)
            json_array_append(arr, one);
        json_decref(one);
        snprintf(want, sizeof(want), "%s: 33 elements, more than the limit of 32", id_arrays[k][1]);
        expect_error(o, DASHI_ERR_INVALID, want);
    }

    /* output arrays: DASHI_MAX_ARRAY_LEN */
    o = broken("FraudAlert");
    arr = json_object_get(o, "subject_uids");
    for (int i = (int)json_array_size(arr); i <= DASHI_MAX_ARRAY_LEN; i++)
        json_array_append_new(arr, json_string("u"));
    expect_error(o, DASHI_ERR_INVALID, "subject_uids: 4097 elements, more than the limit of 4096");
}

Test(event, amount_limits) {
    json_t *o;
    dashi_event ev;

    /* one amount: at most DASHI_MAX_AMOUNT fen */
    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_integer(DASHI_MAX_AMOUNT));
    parse_ok(o, &ev);
    dashi_event_clear(&ev);
    json_decref(o);
    o = broken("OrderRefunded");
    json_object_set_new(o, "amount", json_integer(DASHI_MAX_AMOUNT + 1));
    expect_error(o, DASHI_ERR_INVALID, "amount: amount 1000000000001 fen exceeds the limit of 1000000000000 fen");
    o = broken("OrderPaid");
    json_object_set_new(item(o, 0), "list_amount", json_integer(INT64_MAX));
    expect_error(o, DASHI_ERR_INVALID, "items[0].list_amount: amount 9223372036854775807 fen exceeds the limit");
    o = broken("OrderPaid");
    json_object_set_new(item(o, 0), "discount_amount", json_integer(DASHI_MAX_AMOUNT + 1));
    expect_error(o, DASHI_ERR_INVALID, "items[0].discount_amount: amount 1000000000001 fen exceeds");

    /* the order's total: every item within the limit, the sum above it */
    o = broken("OrderPaid");
    for (size_t i = 0; i < 2; i++) {
        json_object_set_new(item(o, i), "list_amount", json_integer(DASHI_MAX_AMOUNT / 2 + 1));
        json_object_set_new(item(o, i), "discount_amount", json_integer(0));
        json_object_set_new(item(o, i), "paid_amount", json_integer(DASHI_MAX_AMOUNT / 2 + 1));
    }
    expect_error(o, DASHI_ERR_INVALID, "items: order total 1000000000002 fen exceeds the limit of 1000000000000 fen");
    /* exactly the limit passes */
    o = broken("OrderPaid");
    for (size_t i = 0; i < 2; i++) {
        json_object_set_new(item(o, i), "list_amount", json_integer(DASHI_MAX_AMOUNT / 2));
        json_object_set_new(item(o, i), "discount_amount", json_integer(0));
        json_object_set_new(item(o, i), "paid_amount", json_integer(DASHI_MAX_AMOUNT / 2));
    }
    parse_ok(o, &ev);
    dashi_event_clear(&ev);
    json_decref(o);

    /* output amounts are the processor's own: no fen limit (a yunqi basis may be larger) */
    o = broken("TierAssigned");
    json_object_set_new(o, "basis", json_integer(DASHI_MAX_AMOUNT * 10));
    parse_ok(o, &ev);
    dashi_event_clear(&ev);
    json_decref(o);
}

Test(event, message_size_limit) {
    dashi_event ev;
    char err[256] = "";
    /* a line longer than DASHI_MAX_EVENT_BYTES is refused before jansson reads it */
    size_t n = DASHI_MAX_EVENT_BYTES + 1;
    char *text = malloc(n);
    memset(text, ' ', n);
    text[0] = '{';
    text[n - 1] = '}';
    cr_expect_eq(dashi_event_parse(text, n, &ev, err, sizeof(err)), DASHI_ERR_INVALID);
    cr_expect(strstr(err, "event: 1048577 bytes, more than the limit of 1048576"), "%s", err);
    /* one byte less is read (and fails for what it is: an object without a type) */
    cr_expect_eq(dashi_event_parse(text, n - 1, &ev, err, sizeof(err)), DASHI_ERR_PARSE, "%s", err);
    free(text);
}

Test(event, timestamps) {
    json_t *o;

    o = broken("OrderPaid");
    json_object_set_new(o, "occurred_at", json_string("2022-06-09T11:00:00"));
    expect_error(o, DASHI_ERR_INVALID, "occurred_at: timestamp '2022-06-09T11:00:00' has no offset");

    o = broken("OrderPaid");
    json_object_set_new(o, "occurred_at", json_string("yesterday"));
    expect_error(o, DASHI_ERR_INVALID, "occurred_at: 'yesterday' is not an ISO-8601 timestamp");

    o = broken("CommissionEvent");
    json_object_set_new(json_array_get(json_object_get(o, "installments"), 0), "due_at",
                        json_string("2022-07-09 11:00"));
    expect_error(o, DASHI_ERR_INVALID, "installments[0].due_at: timestamp '2022-07-09 11:00' has no offset");

    o = broken("SamePersonDecision");
    json_object_set_new(o, "decided_at", json_string("2022-02-30T00:00:00+08:00"));
    expect_error(o, DASHI_ERR_INVALID, "decided_at: '2022-02-30T00:00:00+08:00' is not an ISO-8601");

    o = broken("CampaignEvent");
    json_object_set_new(o, "expires_at", json_string("0000-01-01T00:00:00+08:00"));
    expect_error(o, DASHI_ERR_INVALID, "expires_at: instant");

    o = broken("TierAssigned");
    json_object_set_new(o, "month", json_string("2022-13"));
    expect_error(o, DASHI_ERR_INVALID, "month: must be YYYY-MM (got '2022-13')");

    o = broken("TierAssigned");
    json_object_set_new(o, "month", json_string("2022-7"));
    expect_error(o, DASHI_ERR_INVALID, "month: must be YYYY-MM");
}

Test(event, empty_ids) {
    json_t *o;

    o = broken("OrderPaid");
    json_object_set_new(o, "event_id", json_string(""));
    expect_error(o, DASHI_ERR_INVALID, "event_id: must not be empty");

    o = broken("AmbassadorEnrolled");
    json_object_set_new(o, "uid", json_string(""));
    expect_error(o, DASHI_ERR_INVALID, "uid: must not be empty");

    o = broken("RiskAction");
    json_object_set_new(o, "ambassador_uid", json_string(""));
    expect_error(o, DASHI_ERR_INVALID, "ambassador_uid: must not be empty");

    o = broken("AccountRegistered");
    json_object_set_new(json_object_get(o, "referral"), "ambassador_uid", json_string(""));
    expect_error(o, DASHI_ERR_INVALID, "referral.ambassador_uid: must not be empty");

    o = broken("FraudAlert");
    json_array_set_new(json_object_get(o, "subject_uids"), 1, json_string(""));
    expect_error(o, DASHI_ERR_INVALID, "subject_uids[1]: must not be empty");

    o = broken("OrderPaid");
    json_object_set_new(item(o, 1), "item_id", json_string(""));
    expect_error(o, DASHI_ERR_INVALID, "items[1].item_id: must not be empty");
}

Test(event, type_and_shape) {
    char err[256] = "";
    dashi_event ev;
    json_t *o;

    o = broken("OrderPaid");
    json_object_del(o, "type");
    expect_error(o, DASHI_ERR_INVALID, "type: missing required field");

    o = broken("OrderPaid");
    json_object_set_new(o, "type", json_string("OrderShipped"));
    expect_error(o, DASHI_ERR_INVALID, "type: unknown event type 'OrderShipped'");

    o = broken("OrderPaid");
    json_object_set_new(o, "type", json_integer(9));
    expect_error(o, DASHI_ERR_INVALID, "type: wrong type: expected string, got integer");

    expect_error(json_array(), DASHI_ERR_INVALID, "expected a JSON object, got array");

    cr_expect_eq(dashi_event_parse("{\"type\": ", 9, &ev, err, sizeof(err)), DASHI_ERR_PARSE);
    cr_expect(strstr(err, "not JSON") != NULL, "%s", err);

    const char *dup = "{\"type\":\"AmbassadorEnrolled\",\"event_id\":\"e1\",\"event_id\":\"e2\","
                      "\"occurred_at\":\"2022-06-01T09:00:00+08:00\",\"uid\":\"amb1\"}";
    cr_expect_eq(dashi_event_parse(dup, strlen(dup), &ev, err, sizeof(err)), DASHI_ERR_PARSE);
    cr_expect(strstr(err, "duplicate") != NULL, "%s", err);

    /* a trailing newline (NDJSON) is fine; the length bounds the text */
    const char *line = "{\"type\":\"AmbassadorEnrolled\",\"event_id\":\"e1\","
                       "\"occurred_at\":\"2022-06-01T09:00:00+08:00\",\"uid\":\"amb1\"}\nGARBAGE";
    cr_expect_eq(dashi_event_parse(line, strlen(line) - 7, &ev, err, sizeof(err)), DASHI_OK, "%s", err);
    cr_expect_str_eq(ev.u.ambassador_enrolled.uid, "amb1");
    dashi_event_clear(&ev);

    /* errstr may be NULL */
    cr_expect_eq(dashi_event_parse("[]", 2, &ev, NULL, 0), DASHI_ERR_INVALID);
}

Test(event, unknown_fields_ignored_and_defaults) {
    json_t *o = broken("AccountRegistered");
    dashi_event ev;

    json_object_set_new(o, "x_trace", json_pack("{s:[i,i]}", "spans", 1, 2));
    json_object_set_new(json_object_get(o, "referral"), "utm_source", json_string("wechat"));
    json_object_del(json_array_get(json_object_get(o, "identities"), 1), "hashed");
    json_object_set_new(json_object_get(o, "referral"), "campaign_id", json_null());
    parse_ok(o, &ev);
    cr_expect_eq(ev.u.account_registered.identities[1].hashed, false);
    cr_expect_null(ev.u.account_registered.referral->campaign_id);
    json_t *out = dashi_event_to_json(&ev);
    cr_expect_null(json_object_get(out, "x_trace"));
    cr_expect_null(json_object_get(json_object_get(out, "referral"), "utm_source"));
    cr_expect_null(json_object_get(json_object_get(out, "referral"), "campaign_id"));
    cr_expect(json_is_false(json_object_get(json_array_get(json_object_get(out, "identities"), 1),
                                            "hashed")));
    json_decref(out);
    dashi_event_clear(&ev);

    /* no referral at all, referral null */
    json_object_set_new(o, "referral", json_null());
    parse_ok(o, &ev);
    cr_expect_null(ev.u.account_registered.referral);
    out = dashi_event_to_json(&ev);
    cr_expect_null(json_object_get(out, "referral"));
    json_decref(out);
    dashi_event_clear(&ev);
    json_decref(o);
}

/* ---- life cycle and helpers ---- */

Test(event, init_sets_none_values) {
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_CAMPAIGN_EVENT);
    cr_expect_eq(ev.type, DASHI_EV_CAMPAIGN_EVENT);
    cr_expect_eq(ev.u.campaign_event.tier_threshold, DASHI_INT_NONE);
    cr_expect_eq(ev.u.campaign_event.rank, DASHI_INT_NONE);
    cr_expect_eq(ev.u.campaign_event.expires_at, DASHI_TIME_NONE);
    cr_expect_null(ev.u.campaign_event.ladder);
    cr_expect_eq(ev.u.campaign_event.count, 0);
    dashi_event_clear(&ev);

    dashi_event_init(&ev, DASHI_EV_COMMISSION_EVENT);
    cr_expect_eq(ev.u.commission_event.customer_kind, DASHI_ENUM_NONE);
    cr_expect_eq(ev.u.commission_event.tier, DASHI_ENUM_NONE);
    cr_expect_eq(ev.u.commission_event.rate_bp, DASHI_INT_NONE);
    cr_expect_eq(ev.u.commission_event.review_ends_at, DASHI_TIME_NONE);
    dashi_event_clear(&ev);

    dashi_event_clear(NULL); /* no-op */
}

Test(event, copy_is_deep) {
    json_t *samples = load_samples(), *obj;
    size_t i;
    json_array_foreach(samples, i, obj) {
        dashi_event ev, copy;
        parse_ok(obj, &ev);
        cr_assert_eq(dashi_event_copy(&copy, &ev), DASHI_OK);
        json_t *a = dashi_event_to_json(&ev);
        dashi_event_clear(&ev); /* the copy must not share anything */
        json_t *b = dashi_event_to_json(&copy);
        cr_expect(json_equal(a, b), "copy of line %zu differs", i + 1);
        json_decref(a);
        json_decref(b);
        dashi_event_clear(&copy);
    }
    json_decref(samples);
}

Test(event, string_helpers) {
    char **v = NULL;
    size_t n = 0;
    dashi_kv *kv = NULL;
    size_t nkv = 0;

    cr_expect_null(dashi_strdup(NULL));
    char *s = dashi_strdup("abc");
    cr_expect_str_eq(s, "abc");
    free(s);

    cr_assert_eq(dashi_strv_push(&v, &n, "a"), 0);
    cr_assert_eq(dashi_strv_push(&v, &n, "b"), 0);
    cr_expect_eq(dashi_strv_push(&v, &n, NULL), -1);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(v[1], "b");

    cr_assert_eq(dashi_kv_push(&kv, &nkv, "k1", "v1"), 0);
    cr_assert_eq(dashi_kv_push(&kv, &nkv, "k2", "v2"), 0);
    cr_expect_eq(dashi_kv_push(&kv, &nkv, "k3", NULL), -1);
    cr_assert_eq(nkv, 2);
    cr_expect_str_eq(kv[1].key, "k2");
    cr_expect_str_eq(kv[1].value, "v2");

    /* hand them to an event, which frees them */
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_FRAUD_ALERT);
    ev.u.fraud_alert.subject_uids = v;
    ev.u.fraud_alert.n_subject_uids = n;
    ev.u.fraud_alert.evidence = kv;
    ev.u.fraud_alert.n_evidence = nkv;
    cr_expect_str_eq(dashi_event_key(&ev), "a");
    dashi_event_clear(&ev);
}

Test(event, names_and_topics) {
    static const char *const topics[DASHI_EV__COUNT] = {
        "registration", "association", "verification", "account",     "account",  "account",
        "account",      "account",     "order",        "order",       "risk-action",
        "same-person",  "commission",  "campaign",     "tier",        "fraud-alert"};
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        const char *name = dashi_event_type_name(t);
        cr_assert_not_null(name);
        cr_expect_eq(dashi_event_type_from_name(name), t);
        cr_expect_str_eq(dashi_event_topic(t), topics[t]);
        cr_expect_eq(dashi_event_type_is_input(t) != 0, t < DASHI_EV__FIRST_OUTPUT);
    }
    cr_expect_null(dashi_event_type_name(DASHI_EV__COUNT));
    cr_expect_eq(dashi_event_type_from_name("Nope"), -1);
    cr_expect_eq(dashi_event_type_from_name(NULL), -1);
    cr_expect_str_eq(dashi_event_type_name(DASHI_EV_ACCOUNT_REGISTERED), "AccountRegistered");
    cr_expect_str_eq(dashi_event_type_name(DASHI_EV_FRAUD_ALERT), "FraudAlert");

    cr_expect_str_eq(dashi_enum_name(DASHI_ENUM_TIER, DASHI_TIER_HEAD), "HEAD");
    cr_expect_str_eq(dashi_enum_name(DASHI_ENUM_IDENTITY_KIND, DASHI_ID_ID_DOC), "ID_DOC");
    cr_expect_str_eq(dashi_enum_name(DASHI_ENUM_CAMPAIGN_KIND, DASHI_CAMP_SETTLED), "SETTLED");
    cr_expect_str_eq(dashi_enum_name(DASHI_ENUM_COMMISSION_KIND, DASHI_CE_REJECTED), "REJECTED");
    cr_expect_str_eq(dashi_enum_name(DASHI_ENUM_FLAG, DASHI_FLAG_PARTNER_SALES), "PARTNER_SALES");
    cr_expect_null(dashi_enum_name(DASHI_ENUM_TIER, DASHI_TIER__COUNT));
    cr_expect_null(dashi_enum_name(DASHI_ENUM_TIER, DASHI_ENUM_NONE));
    cr_expect_null(dashi_enum_name(DASHI_ENUM__COUNT, 0));
    cr_expect_eq(dashi_enum_from_name(DASHI_ENUM_METHOD, "PHONE_CODE"), DASHI_METHOD_PHONE_CODE);
    cr_expect_eq(dashi_enum_from_name(DASHI_ENUM_SEVERITY, "HIGH"), DASHI_SEV_HIGH);
    cr_expect_eq(dashi_enum_from_name(DASHI_ENUM_SEVERITY, "high"), -1);
    cr_expect_eq(dashi_enum_from_name(DASHI_ENUM_SEVERITY, NULL), -1);
}

Test(event, accessors_on_null_and_empty) {
    cr_expect_str_eq(dashi_event_id(NULL), "");
    cr_expect_str_eq(dashi_event_key(NULL), "");
    cr_expect_eq(dashi_event_time(NULL), DASHI_TIME_NONE);
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_FRAUD_ALERT);
    cr_expect_str_eq(dashi_event_key(&ev), ""); /* no subject, no ambassador */
    dashi_event_init(&ev, DASHI_EV_TIER_ASSIGNED);
    cr_expect_eq(dashi_event_time(&ev), DASHI_TIME_NONE); /* no month */
    cr_expect_null(dashi_event_to_json(NULL));
}

Test(event, json_quote_writes_what_jansson_writes) {
    /* every byte value at every position of strings around the 8-byte steps of the
     * writer, and UTF-8 sequences across them: the text jansson writes, or the
     * refusal jansson makes (invalid UTF-8) */
    char s[40], out[DASHI_JSON_QUOTE_ROOM(40)];
    for (size_t len = 1; len <= 20; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (int b = 0; b < 256; b++) {
                memset(s, 'a', len);
                s[pos] = (char)b;
                if (pos + 1 < len && b >= 0xC2 && b <= 0xDF)
                    s[pos + 1] = (char)0xA9; /* a two-byte sequence when b starts one */
                int bad = 0;
                size_t n = dashi_json_quote(out, s, len, &bad);
                json_t *j = json_stringn_nocheck(s, len);
                char *want = json_dumps(j, JSON_ENCODE_ANY);
                cr_assert_eq(bad != 0, want == NULL, "byte %d at %zu of %zu", b, pos, len);
                if (want) {
                    cr_assert_str_eq(out, want, "byte %d at %zu of %zu", b, pos, len);
                    cr_assert_eq(n, strlen(want));
                }
                free(want);
                json_decref(j);
            }
}

/* ---- the reader without a tree against the reader through a tree ---- */

/* What dashi_event_parse() did before it read plain lines straight into the struct. */
static dashi_err parse_by_tree(const char *text, size_t len, dashi_event *out, char *errstr, size_t size) {
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        snprintf(errstr, size, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return DASHI_ERR_PARSE;
    }
    dashi_err err = dashi_event_from_json(obj, out, errstr, size);
    json_decref(obj);
    return err;
}

/* dashi_event_parse() and the tree's reader agree on text: error and message, or the event. */
static void check_readers_agree(const char *text, size_t len) {
    dashi_event a, b;
    char ea[512] = "", eb[512] = "";
    dashi_err ra = dashi_event_parse(text, len, &a, ea, sizeof ea), rb = parse_by_tree(text, len, &b, eb, sizeof eb);
    cr_assert_eq(ra, rb, "'%.*s': %s / %s", (int)len, text, ea, eb);
    if (ra != DASHI_OK) {
        cr_assert_str_eq(ea, eb, "'%.*s'", (int)len, text);
    } else {
        char *da = dashi_event_dump(&a), *db = dashi_event_dump(&b);
        cr_assert(da && db);
        cr_assert_str_eq(da, db, "'%.*s'", (int)len, text);
        free(da);
        free(db);
    }
    dashi_event_clear(&a);
    dashi_event_clear(&b);
}

Test(event, reading_without_a_tree_equals_reading_through_one) {
    /* every sample type (inputs and outputs), a generated stream, and one-byte
     * changes of every sample line at every position */
    static const char subst[] = "\"{}[],:0-x n";
    FILE *f = fopen(SAMPLES, "r");
    char line[8192], buf[8192];
    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        if (n == 0)
            continue;
        check_readers_agree(line, n);
        for (size_t i = 0; i < n; i++) {
            memcpy(buf, line, i); /* deletion */
            memcpy(buf + i, line + i + 1, n - i - 1);
            check_readers_agree(buf, n - 1);
            for (size_t k = 0; k < sizeof subst - 1; k++) { /* replacement */
                memcpy(buf, line, n);
                buf[i] = subst[k];
                check_readers_agree(buf, n);
            }
        }
    }
    fclose(f);

    dashi_gen_opts o;
    char err[256], *text = NULL, *l = NULL;
    size_t size = 0, cap = 0, lines = 0;
    uint64_t count = 0;
    ssize_t len;
    dashi_gen_opts_default(&o);
    o.ambassadors = 40;
    o.customers = 400;
    FILE *g = open_memstream(&text, &size);
    cr_assert(g);
    cr_assert_eq(dashi_generate(&o, g, &count, err, sizeof err), DASHI_OK, "%s", err);
    fclose(g);
    g = fmemopen(text, size, "r");
    while ((len = getline(&l, &cap, g)) > 0) {
        check_readers_agree(l, (size_t)len - (l[len - 1] == '\n'));
        lines++;
    }
    cr_expect_eq(lines, count);
    fclose(g);
    free(l);
    free(text);

    /* values the tree's reader takes and this one leaves to it */
    static const char *const hard[] = {
        "{\"type\":\"AccountRegistered\",\"event_id\":\"e1\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\","
        "\"uid\":\"u1\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[]}",
        "{\"type\":\"AccountRegistered\",\"event_id\":\"e\\u0031\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\","
        "\"uid\":\"u1\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[],\"x\":{\"a\":1,\"a\":2}}",
        "{\"type\":\"AccountRegistered\",\"event_id\":\"e1\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\","
        "\"uid\":\"u1\",\"account_type\":\"PERSONAL\",\"method\":null,\"identities\":[{\"kind\":\"PHONE\","
        "\"value\":\"138\",\"hashed\":true}],\"unknown\":[1,{\"b\":[true,null]}]}",
        "{\"type\":\"OrderPaid\",\"event_id\":\"o\",\"occurred_at\":\"2022-06-01T10:00:00+08:00\",\"amount\":100.0}",
        "{\"type\":\"OrderPaid\",\"type\":\"OrderPaid\"}",
        "{\"type\":\"NoSuchType\"}",
        "{\"type\":7}",
        "{}",
        "[]",
    };
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++)
        check_readers_agree(hard[i], strlen(hard[i]));
}
