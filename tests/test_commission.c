/* test_commission.c — association, commission, tiers and points (core/commission.c) through the real engine.
 *
 * Each test runs config/rules.json over an in-memory store with the shared harness
 * (tests/support/harness.h): every input event goes through dashi_engine_process,
 * which fires the due timers first, runs identity → commission → campaign and
 * commits the step with its de-duplication marker, so review ends and month starts
 * happen on stream time exactly as in production. Expected amounts are worked out
 * by hand in the comments.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/modules.h"
#include "tests/support/harness.h"

static dashi_harness *h;

static dashi_time T(const char *s) {
    return dashi_harness_time(s);
}

static void setup(void) {
    h = dashi_harness_start(NULL);
}

static void teardown(void) {
    dashi_harness_stop(h);
}

static void enroll(const char *at, const char *amb) {
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\","
                                    "\"uid\":\"%s\","
                                    "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
                                    "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"1390000%04d\"}]",
                                    at, amb, dashi_harness_seq(h)),
                 DASHI_OK);
    cr_assert_eq(dashi_harness_feed(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"%s\",\"uid\":\"%s\"", at,
                                    amb),
                 DASHI_OK);
}

static void reg(const char *at, const char *uid, const char *amb) {
    char ref[256] = "";
    if (amb)
        snprintf(ref, sizeof(ref), ",\"referral\":{\"ambassador_uid\":\"%s\",\"link_id\":\"l-%s\"}", amb, amb);
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\","
                                    "\"uid\":\"%s\","
                                    "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
                                    "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"1380000%04d\"}]%s",
                                    at, uid, dashi_harness_seq(h), ref),
                 DASHI_OK);
}

static void visit(const char *at, const char *uid, const char *amb) {
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"LinkVisited\",\"occurred_at\":\"%s\","
                                    "\"uid\":\"%s\","
                                    "\"ambassador_uid\":\"%s\",\"link_id\":\"l-%s\",\"logged_in\":true",
                                    at, uid, amb, amb),
                 DASHI_OK);
}

static dashi_err order(const char *at, const char *oid, const char *uid, const char *cart, const char *category,
                       long long paid) {
    char c[160] = "";
    if (cart)
        snprintf(c, sizeof(c), "\"cart_id\":\"%s\",", cart);
    return dashi_harness_feed(h,
                              "\"type\":\"OrderPaid\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\",%s"
                              "\"order_type\":\"NEW\",\"billing\":\"PREPAID\",\"items\":[{\"item_id\":\"i-%s\","
                              "\"product_code\":\"%s\",\"category\":\"%s\",\"list_amount\":%lld,"
                              "\"discount_amount\":0,\"paid_amount\":%lld}]",
                              at, oid, uid, c, oid, category, category, paid, paid);
}

static dashi_err refund(const char *at, const char *oid, const char *uid, long long amount) {
    return dashi_harness_feed(h,
                              "\"type\":\"OrderRefunded\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\","
                              "\"kind\":\"REFUND\",\"amount\":%lld",
                              at, oid, uid, amount);
}

/* The last CommissionEvent of that kind for the order. */
static const dashi_commission_event *ce_find(dashi_commission_kind kind, const char *oid) {
    const char *name = dashi_enum_name(DASHI_ENUM_COMMISSION_KIND, kind);
    const dashi_event *ev =
        dashi_harness_find(h, DASHI_EV_COMMISSION_EVENT, 0, -1, "event", name, "order_id", oid, NULL);
    return ev ? &ev->u.commission_event : NULL;
}

static size_t count_type(dashi_event_type type) {
    return dashi_harness_count(h, type, 0, NULL);
}

static bool has_reason(const dashi_commission_event *ce, const char *code) {
    for (size_t i = 0; ce && i < ce->n_reasons; i++)
        if (strcmp(ce->reasons[i], code) == 0)
            return true;
    return false;
}

TestSuite(commission, .init = setup, .fini = teardown);

Test(commission, rounding_is_half_up_once) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c2", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c3", "amb1");
    /* 26% of 10001 = 2600.26 → 2600; of 10002 = 2600.52 → 2601 */
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 10001), DASHI_OK);
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o2", "c2", NULL, "ecs", 10002), DASHI_OK);
    /* 26% of 3125 = 812.5 → 813 (the half goes up) */
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o3", "c3", NULL, "ecs", 3125), DASHI_OK);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o1")->amount, 2600);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o2")->amount, 2601);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o3")->amount, 813);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o3")->rate_bp, 2600);
}

Test(commission, installment_split_at_threshold) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    /* 26% of 2,000,000 = 520,000, capped at 500,000 per customer (C9) */
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 2000000), DASHI_OK);
    const dashi_commission_event *p = ce_find(DASHI_CE_PENDING, "o1");
    cr_assert_eq(p->amount, 500000);
    cr_assert(has_reason(p, "CAP_REACHED"));
    dashi_harness_advance(h, T("2022-09-01T00:00:00+08:00"));
    const dashi_commission_event *c = ce_find(DASHI_CE_CONFIRMED, "o1");
    cr_assert_not_null(c);
    cr_assert_eq(c->n_installments, 3);
    dashi_time end = T("2022-07-09T10:00:00+08:00");
    cr_assert_eq(c->installments[0].amount, 166668);
    cr_assert_eq(c->installments[1].amount, 166666);
    cr_assert_eq(c->installments[2].amount, 166666);
    cr_assert_eq(c->installments[0].due_at, end);
    cr_assert_eq(c->installments[1].due_at, end + 30 * DASHI_MS_PER_DAY);
    cr_assert_eq(c->installments[2].due_at, end + 60 * DASHI_MS_PER_DAY);
    cr_assert_eq(c->installments[0].seq, 1);
    cr_assert_eq(c->installments[2].seq, 3);
}

Test(commission, installment_single_below_threshold_and_before_switch) {
    enroll("2022-01-10T09:00:00+08:00", "amb1");
    reg("2022-05-20T10:00:00+08:00", "c0", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    /* before 2022-06-01: 26% of 500,000 = 130,000 ≥ threshold, still one instalment */
    cr_assert_eq(order("2022-05-21T10:00:00+08:00", "o0", "c0", NULL, "ecs", 500000), DASHI_OK);
    /* 26% of 384,611 = 99,998.86 → 99,999 < 100,000 → one instalment */
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 384611), DASHI_OK);
    dashi_harness_advance(h, T("2022-08-01T00:00:00+08:00"));
    const dashi_commission_event *c0 = ce_find(DASHI_CE_CONFIRMED, "o0");
    const dashi_commission_event *c1 = ce_find(DASHI_CE_CONFIRMED, "o1");
    cr_assert_eq(c0->amount, 130000);
    cr_assert_eq(c0->n_installments, 1);
    cr_assert_eq(c0->installments[0].amount, 130000);
    cr_assert_eq(c0->installments[0].due_at, T("2022-06-20T10:00:00+08:00"));
    cr_assert_eq(c1->amount, 99999);
    cr_assert_eq(c1->n_installments, 1);
    cr_assert_eq(c1->installments[0].amount, 99999);
}

Test(commission, rate_by_period_boundary) {
    enroll("2021-10-01T09:00:00+08:00", "amb1");
    reg("2021-10-20T10:00:00+08:00", "c1", "amb1");
    reg("2021-10-20T10:00:00+08:00", "c2", "amb1");
    reg("2021-10-20T10:00:00+08:00", "c3", "c3amb-none"); /* not an ambassador: A8 */
    cr_assert_eq(order("2021-10-25T23:59:59+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    cr_assert_eq(order("2021-10-26T00:00:00+08:00", "o2", "c2", NULL, "ecs", 100000), DASHI_OK);
    cr_assert_eq(order("2021-10-26T00:00:00+08:00", "o3", "c3", NULL, "ecs", 100000), DASHI_OK);
    const dashi_commission_event *a = ce_find(DASHI_CE_PENDING, "o1"), *b = ce_find(DASHI_CE_PENDING, "o2");
    cr_assert_eq(a->rate_bp, 2300);
    cr_assert_str_eq(a->rule_version, "2020-08-21");
    cr_assert_eq(b->rate_bp, 2600);
    cr_assert_str_eq(b->rule_version, "2021-10-26");
    const dashi_commission_event *r = ce_find(DASHI_CE_REJECTED, "o3");
    cr_assert(has_reason(r, "NOT_ASSOCIATED"));
    cr_assert_str_eq(r->ambassador_uid, "");
}

Test(commission, association_window_is_half_open) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-02T10:00:00+08:00", "c1", "amb1");
    reg("2022-06-02T10:00:00+08:00", "c2", "amb1");
    cr_assert_eq(order("2022-07-02T09:59:59+08:00", "o1", "c1", NULL, "ecs", 10000), DASHI_OK);
    cr_assert_eq(order("2022-07-02T10:00:00+08:00", "o2", "c2", NULL, "ecs", 10000), DASHI_OK);
    cr_assert_not_null(ce_find(DASHI_CE_PENDING, "o1"));
    const dashi_commission_event *r = ce_find(DASHI_CE_REJECTED, "o2");
    cr_assert(has_reason(r, "ASSOCIATION_EXPIRED"));
    cr_assert_str_eq(r->ambassador_uid, "amb1");
    cr_assert_eq(r->amount, 0);
}

Test(commission, refund_at_review_end_is_a_clawback) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c2", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 10000), DASHI_OK);
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o2", "c2", NULL, "ecs", 10000), DASHI_OK);
    cr_assert_eq(refund("2022-07-09T09:59:59+08:00", "o1", "c1", 10000), DASHI_OK);
    cr_assert_eq(refund("2022-07-09T10:00:00+08:00", "o2", "c2", 10000), DASHI_OK);
    const dashi_commission_event *x = ce_find(DASHI_CE_CANCELLED, "o1");
    cr_assert_eq(x->delta, -2600);
    cr_assert(has_reason(x, "REFUNDED"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
    cr_assert_not_null(ce_find(DASHI_CE_CONFIRMED, "o2"));
    const dashi_commission_event *cb = ce_find(DASHI_CE_CLAWBACK, "o2");
    cr_assert_eq(cb->delta, -2600);
    cr_assert_eq(cb->amount, 0);
    cr_assert_eq(count_type(DASHI_EV_FRAUD_ALERT), 1);
}

Test(commission, refund_larger_than_left_is_bad_input) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 10000), DASHI_OK);
    cr_assert_eq(refund("2022-06-10T10:00:00+08:00", "o1", "c1", 4000), DASHI_OK);
    size_t before = dashi_harness_n_outputs(h);
    cr_assert_eq(refund("2022-06-11T10:00:00+08:00", "o1", "c1", 6001), DASHI_ERR_INVALID);
    cr_assert_eq(refund("2022-06-11T10:00:00+08:00", "nope", "c1", 1), DASHI_ERR_INVALID);
    cr_assert_eq(dashi_harness_n_outputs(h), before);
    /* 26% of 6000 = 1560: the partial refund adjusted by -1040 */
    const dashi_commission_event *a = ce_find(DASHI_CE_ADJUSTED, "o1");
    cr_assert_eq(a->amount, 1560);
    cr_assert_eq(a->delta, -1040);
    cr_assert_eq(a->base_amount, 6000);
}

Test(commission, cap_reached_on_third_cart_order) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    /* 26% of 1,500,000 = 390,000; the second leaves 110,000 of the 500,000 cap; the third nothing */
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", "k1", "ecs", 1500000), DASHI_OK);
    cr_assert_eq(order("2022-06-09T10:00:01+08:00", "o2", "c1", "k1", "rds", 1500000), DASHI_OK);
    cr_assert_eq(order("2022-06-09T10:00:02+08:00", "o3", "c1", "k1", "oss", 1000), DASHI_OK);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o1")->amount, 390000);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o2")->amount, 110000);
    cr_assert(has_reason(ce_find(DASHI_CE_REJECTED, "o3"), "CAP_REACHED"));
}

Test(commission, tier_from_previous_month_new_users) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    const char *c[] = {"c1", "c2", "c3", "c4"};
    for (int i = 0; i < 4; i++)
        reg("2022-06-10T10:00:00+08:00", c[i], "amb1");
    /* three valid new users (≥ 3000 fen) and one below the minimum */
    cr_assert_eq(order("2022-06-30T23:59:59+08:00", "o1", "c1", NULL, "ecs", 3000), DASHI_OK);
    cr_assert_eq(order("2022-06-20T10:00:00+08:00", "o2", "c2", NULL, "ecs", 5000), DASHI_OK);
    cr_assert_eq(order("2022-06-20T10:00:00+08:00", "o3", "c3", NULL, "ecs", 2999), DASHI_OK);
    cr_assert_eq(order("2022-06-20T10:00:00+08:00", "o4", "c4", NULL, "domain", 9000), DASHI_OK);
    reg("2022-06-25T10:00:00+08:00", "c5", "amb1");
    cr_assert_eq(order("2022-06-26T10:00:00+08:00", "o5", "c5", NULL, "ecs", 100000), DASHI_OK);
    reg("2022-06-30T10:00:00+08:00", "c6", "amb1");
    cr_assert_eq(order("2022-07-01T00:00:00+08:00", "o6", "c6", NULL, "ecs", 100000), DASHI_OK);
    /* o1, o2, o5 count (o3 too small, o4 earns nothing): HALL_MASTER from July, 28% pure new */
    const dashi_event *ev = dashi_harness_find(h, DASHI_EV_TIER_ASSIGNED, 0, -1, "month", "2022-07", NULL);
    cr_assert_not_null(ev);
    const dashi_tier_assigned *ta = &ev->u.tier_assigned;
    cr_assert_eq(ta->tier, DASHI_TIER_HALL_MASTER);
    cr_assert_eq(ta->basis, 3);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o6")->rate_bp, 2800);
    cr_assert_eq(ce_find(DASHI_CE_PENDING, "o5")->rate_bp, 2600);
}

Test(commission, login_association_and_protection) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    enroll("2022-06-01T09:00:00+08:00", "amb2");
    reg("2022-06-02T10:00:00+08:00", "c1", NULL);
    reg("2022-06-02T10:00:00+08:00", "c2", "amb1");
    visit("2022-06-05T10:00:00+08:00", "c1", "amb1");
    visit("2022-06-06T10:00:00+08:00", "c1", "amb2");          /* A4: last touch wins */
    visit("2022-07-02T09:59:59+08:00", "c2", "amb2");          /* A3: still protected */
    cr_assert_eq(order("2022-06-07T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    const dashi_commission_event *p = ce_find(DASHI_CE_PENDING, "o1");
    cr_assert_str_eq(p->ambassador_uid, "amb2");
    cr_assert_eq(p->customer_kind, DASHI_CUST_REGISTERED_NEW);
    cr_assert_eq(p->rate_bp, 2100);
    cr_assert_eq(order("2022-07-02T09:59:59+08:00", "o2", "c2", NULL, "ecs", 100000), DASHI_OK);
    cr_assert_str_eq(ce_find(DASHI_CE_PENDING, "o2")->ambassador_uid, "amb1");
}

Test(commission, risk_freeze_holds_confirmation_until_unfreeze) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-20T10:00:00+08:00\","
                                    "\"action\":\"FREEZE\","
                                    "\"ambassador_uid\":\"amb1\",\"reason\":\"suspected brushing\""),
                 DASHI_OK);
    cr_assert(has_reason(ce_find(DASHI_CE_ADJUSTED, "o1"), "RISK_FROZEN"));
    dashi_harness_advance(h, T("2022-07-20T00:00:00+08:00"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"RiskAction\",\"occurred_at\":\"2022-07-20T10:00:00+08:00\","
                                    "\"action\":\"UNFREEZE\","
                                    "\"ambassador_uid\":\"amb1\",\"reason\":\"cleared\""),
                 DASHI_OK);
    const dashi_commission_event *c = ce_find(DASHI_CE_CONFIRMED, "o1");
    cr_assert_not_null(c);
    cr_assert_eq(c->occurred_at, T("2022-07-20T10:00:00+08:00"));
    cr_assert_eq(c->amount, 26000);
    cr_assert_not(has_reason(c, "RISK_FROZEN"));
}

Test(commission, risk_void_cancels) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-20T10:00:00+08:00\","
                                    "\"action\":\"VOID\","
                                    "\"ambassador_uid\":\"amb1\",\"order_id\":\"o1\",\"reason\":\"fake order\""),
                 DASHI_OK);
    const dashi_commission_event *x = ce_find(DASHI_CE_CANCELLED, "o1");
    cr_assert(has_reason(x, "RISK_VOIDED"));
    cr_assert_eq(x->delta, -26000);
    dashi_harness_advance(h, T("2022-08-01T00:00:00+08:00"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
}

Test(commission, awakening_and_yunqi_state) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    json_t *amb = dashi_harness_record(h, "amb:amb1");
    cr_assert_null(json_object_get(amb, "awakened_at"));
    json_decref(amb);
    dashi_harness_advance(h, T("2022-07-10T00:00:00+08:00"));
    amb = dashi_harness_record(h, "amb:amb1");
    cr_assert_eq(json_integer_value(json_object_get(amb, "awakened_at")), T("2022-07-09T10:00:00+08:00"));
    cr_assert_str_eq(json_string_value(json_object_get(amb, "awakened_by")), "o1");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(amb, "yq"), "2022-07")), 26000);
    json_decref(amb);
}

Test(commission, identity_change_to_buyer_cancels_in_review) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    /* c1 registered with phone 1380000<seq> while seq was 2 (two enrolment events before) */
    cr_assert_eq(dashi_harness_feed(h,
                                    "\"type\":\"IdentityChanged\",\"occurred_at\":\"2022-06-15T10:00:00+08:00\","
                                    "\"uid\":\"amb1\","
                                    "\"added\":[{\"kind\":\"PHONE\",\"value\":\"13800000002\"}],\"removed\":[]"),
                 DASHI_OK);
    const dashi_commission_event *x = ce_find(DASHI_CE_CANCELLED, "o1");
    cr_assert_not_null(x);
    cr_assert(has_reason(x, "SAME_PERSON_AMBASSADOR"));
    dashi_harness_advance(h, T("2022-08-01T00:00:00+08:00"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
}

/* Regression (found checking key buffers against the id limits): the person's first
 * order and cart ids were kept in 128-byte buffers, so an id of the maximal 128 bytes
 * was cut to 127 and a second order from the first purchase's cart no longer matched
 * it (C1: rejected as NOT_FIRST_PURCHASE instead of earning). */
Test(commission, first_cart_with_an_id_of_the_maximal_length) {
    char cart[DASHI_MAX_ID_LEN + 1], o1[DASHI_MAX_ID_LEN + 1], o2[DASHI_MAX_ID_LEN + 1];
    memset(cart, 'c', DASHI_MAX_ID_LEN);
    cart[DASHI_MAX_ID_LEN] = '\0';
    memset(o1, '1', DASHI_MAX_ID_LEN);
    o1[DASHI_MAX_ID_LEN] = '\0';
    memset(o2, '1', DASHI_MAX_ID_LEN);
    o2[DASHI_MAX_ID_LEN - 1] = '2';
    o2[DASHI_MAX_ID_LEN] = '\0';
    dashi_harness_feed_ok(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2022-06-01T09:05:00+08:00\",\"uid\":\"amb1\"");
    dashi_harness_feed_ok(h, "\"type\":\"AccountRegistered\",\"occurred_at\":\"2022-06-08T10:00:00+08:00\",\"uid\":\"cust1\","
                             "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[],"
                             "\"referral\":{\"ambassador_uid\":\"amb1\",\"link_id\":\"l1\"}");
    for (int k = 0; k < 2; k++)
        dashi_harness_feed_ok(h, "\"type\":\"OrderPaid\",\"occurred_at\":\"2022-06-09T11:00:0%d+08:00\",\"order_id\":\"%s\","
                                 "\"uid\":\"cust1\",\"cart_id\":\"%s\",\"order_type\":\"NEW\",\"billing\":\"PREPAID\","
                                 "\"items\":[{\"item_id\":\"i1\",\"product_code\":\"ecs\",\"category\":\"ecs\","
                                 "\"list_amount\":100000,\"discount_amount\":0,\"paid_amount\":100000}]",
                              k, k ? o2 : o1, cart);
    cr_expect(dashi_harness_find(h, DASHI_EV_COMMISSION_EVENT, 0, 0, "order_id", o1, "event", "PENDING", NULL),
              "the first order earns");
    cr_expect(dashi_harness_find(h, DASHI_EV_COMMISSION_EVENT, 0, 0, "order_id", o2, "event", "PENDING", NULL),
              "the second order of the first cart (a %d-byte cart id) must earn too", DASHI_MAX_ID_LEN);
}
