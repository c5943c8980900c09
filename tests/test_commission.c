/* test_commission.c — association, commission, tiers and points (core/commission.c) at handler level.
 *
 * Each test builds a dashi_ctx per step over dashi_view_new(dashi_state_mem_new())
 * with the project's config/rules.json, runs identity → commission → campaign on
 * the event as the engine does, commits the view to the in-memory store and fires
 * due timers the same way, so review ends and month starts happen on stream time.
 * Expected amounts are worked out by hand in the comments.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hashing.h"
#include "core/modules.h"

#define MAX_OUT 256

static dashi_rules *rules;
static dashi_keyring *keys;
static dashi_state *st;
static dashi_view *view;
static dashi_event outs[MAX_OUT];
static size_t n_outs;
static int seq;

static dashi_time T(const char *s) {
    dashi_time t = 0;
    char err[128];
    cr_assert_eq(dashi_time_parse(s, &t, err, sizeof(err)), DASHI_OK, "%s: %s", s, err);
    return t;
}

static void setup(void) {
    char err[512] = "";
    rules = dashi_rules_load(DASHI_SOURCE_DIR "/config/rules.json", err, sizeof(err));
    cr_assert_not_null(rules, "rules: %s", err);
    keys = dashi_keyring_load(NULL, err, sizeof(err));
    cr_assert_not_null(keys, "keys: %s", err);
    st = dashi_state_mem_new();
    view = dashi_view_new(st);
    n_outs = 0;
    seq = 0;
}

static void teardown(void) {
    for (size_t i = 0; i < n_outs; i++)
        dashi_event_clear(&outs[i]);
    dashi_view_destroy(view);
    dashi_state_destroy(st);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
}

/* One step: handlers on a fresh ctx, then commit (plus the fired timer's removal). */
static dashi_err step(dashi_time now, const char *cause, const dashi_event *ev, const char *timer_id) {
    dashi_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    dashi_view_reset(view);
    ctx.view = view;
    ctx.rules = rules;
    ctx.set = dashi_rules_at(rules, now);
    ctx.keys = keys;
    ctx.now = now;
    ctx.cause = cause;
    ctx.event = ev;
    dashi_err err = DASHI_OK;
    if (ev) {
        if ((err = dashi_identity_on_event(&ctx, ev)) == DASHI_OK && (err = dashi_commission_on_event(&ctx, ev)) == DASHI_OK)
            err = dashi_campaign_on_event(&ctx, ev);
    } else if (strncmp(timer_id, "sp:", 3) == 0) {
        err = dashi_identity_on_timer(&ctx, timer_id, NULL);
    } else if (strncmp(timer_id, "cm:", 3) == 0) {
        err = dashi_commission_on_timer(&ctx, timer_id, NULL);
    } else if (strncmp(timer_id, "cp:", 3) == 0) {
        err = dashi_campaign_on_timer(&ctx, timer_id, NULL);
    }
    if (err == DASHI_OK) {
        dashi_writeset ws;
        dashi_err res = DASHI_OK;
        char e2[256];
        dashi_writeset_init(&ws);
        cr_assert_eq(dashi_view_writeset(view, &ws), DASHI_OK);
        if (timer_id)
            dashi_writeset_add(&ws, DASHI_WS_TIMER_DEL, timer_id, strlen(timer_id), NULL, 0, 0);
        const dashi_writeset *sets[1] = {&ws};
        cr_assert_eq(st->ops->apply(st, 1, sets, &res, e2, sizeof(e2)), DASHI_OK, "%s", e2);
        cr_assert_eq(res, DASHI_OK);
        dashi_writeset_clear(&ws);
        for (size_t i = 0; i < ctx.n_outputs; i++) {
            cr_assert_lt(n_outs, MAX_OUT);
            outs[n_outs++] = ctx.outputs[i];
        }
    } else {
        for (size_t i = 0; i < ctx.n_outputs; i++)
            dashi_event_clear(&ctx.outputs[i]);
    }
    free(ctx.outputs);
    dashi_view_reset(view);
    return err;
}

static void advance(dashi_time until) {
    for (;;) {
        dashi_timer *timers = NULL;
        size_t n = 0;
        char err[256];
        cr_assert_eq(st->ops->timers_due(st, until, 1, &timers, &n, err, sizeof(err)), DASHI_OK);
        if (n == 0) {
            dashi_timers_free(timers, n);
            return;
        }
        char *id = strdup(timers[0].id);
        dashi_time due = timers[0].due;
        dashi_timers_free(timers, n);
        cr_assert_eq(step(due, id, NULL, id), DASHI_OK, "timer %s", id);
        free(id);
    }
}

/* Feed one input event given as JSON text with printf arguments; "event_id" is added. */
static dashi_err feed(const char *fmt, ...) {
    char text[2048], line[2200], err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "{\"event_id\":\"e%04d\",%s}", ++seq, text);
    dashi_event ev;
    cr_assert_eq(dashi_event_parse(line, strlen(line), &ev, err, sizeof(err)), DASHI_OK, "%s: %s", line, err);
    dashi_time t = dashi_event_time(&ev);
    advance(t);
    char cause[16];
    snprintf(cause, sizeof(cause), "e%04d", seq);
    dashi_err rc = step(t, cause, &ev, NULL);
    dashi_event_clear(&ev);
    return rc;
}

static void enroll(const char *at, const char *amb) {
    cr_assert_eq(feed("\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"account_type\":\"PERSONAL\","
                      "\"method\":\"PASSWORD\",\"identities\":[{\"kind\":\"PHONE\",\"value\":\"1390000%04d\"}]",
                      at, amb, seq),
                 DASHI_OK);
    cr_assert_eq(feed("\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"%s\",\"uid\":\"%s\"", at, amb), DASHI_OK);
}

static void reg(const char *at, const char *uid, const char *amb) {
    char ref[256] = "";
    if (amb)
        snprintf(ref, sizeof(ref), ",\"referral\":{\"ambassador_uid\":\"%s\",\"link_id\":\"l-%s\"}", amb, amb);
    cr_assert_eq(feed("\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"account_type\":\"PERSONAL\","
                      "\"method\":\"PASSWORD\",\"identities\":[{\"kind\":\"PHONE\",\"value\":\"1380000%04d\"}]%s",
                      at, uid, seq, ref),
                 DASHI_OK);
}

static void visit(const char *at, const char *uid, const char *amb) {
    cr_assert_eq(feed("\"type\":\"LinkVisited\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"ambassador_uid\":\"%s\","
                      "\"link_id\":\"l-%s\",\"logged_in\":true",
                      at, uid, amb, amb),
                 DASHI_OK);
}

static dashi_err order(const char *at, const char *oid, const char *uid, const char *cart, const char *category,
                       long long paid) {
    char c[160] = "";
    if (cart)
        snprintf(c, sizeof(c), "\"cart_id\":\"%s\",", cart);
    return feed("\"type\":\"OrderPaid\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\",%s"
                "\"order_type\":\"NEW\",\"billing\":\"PREPAID\",\"items\":[{\"item_id\":\"i-%s\",\"product_code\":\"%s\","
                "\"category\":\"%s\",\"list_amount\":%lld,\"discount_amount\":0,\"paid_amount\":%lld}]",
                at, oid, uid, c, oid, category, category, paid, paid);
}

static dashi_err refund(const char *at, const char *oid, const char *uid, long long amount) {
    return feed("\"type\":\"OrderRefunded\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\","
                "\"kind\":\"REFUND\",\"amount\":%lld",
                at, oid, uid, amount);
}

/* The last CommissionEvent of that kind for the order (kind < 0: any). */
static const dashi_commission_event *ce_find(int kind, const char *oid) {
    for (size_t i = n_outs; i-- > 0;) {
        if (outs[i].type != DASHI_EV_COMMISSION_EVENT)
            continue;
        const dashi_commission_event *ce = &outs[i].u.commission_event;
        if ((kind < 0 || ce->event == kind) && strcmp(ce->order_id, oid) == 0)
            return ce;
    }
    return NULL;
}

static size_t count_type(dashi_event_type type) {
    size_t n = 0;
    for (size_t i = 0; i < n_outs; i++)
        n += outs[i].type == type;
    return n;
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
    advance(T("2022-09-01T00:00:00+08:00"));
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
    advance(T("2022-08-01T00:00:00+08:00"));
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
    size_t before = n_outs;
    cr_assert_eq(refund("2022-06-11T10:00:00+08:00", "o1", "c1", 6001), DASHI_ERR_INVALID);
    cr_assert_eq(refund("2022-06-11T10:00:00+08:00", "nope", "c1", 1), DASHI_ERR_INVALID);
    cr_assert_eq(n_outs, before);
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
    const dashi_tier_assigned *ta = NULL;
    for (size_t i = 0; i < n_outs; i++)
        if (outs[i].type == DASHI_EV_TIER_ASSIGNED && strcmp(outs[i].u.tier_assigned.month, "2022-07") == 0)
            ta = &outs[i].u.tier_assigned;
    cr_assert_not_null(ta);
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
    cr_assert_eq(feed("\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-20T10:00:00+08:00\",\"action\":\"FREEZE\","
                      "\"ambassador_uid\":\"amb1\",\"reason\":\"suspected brushing\""),
                 DASHI_OK);
    cr_assert(has_reason(ce_find(DASHI_CE_ADJUSTED, "o1"), "RISK_FROZEN"));
    advance(T("2022-07-20T00:00:00+08:00"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
    cr_assert_eq(feed("\"type\":\"RiskAction\",\"occurred_at\":\"2022-07-20T10:00:00+08:00\",\"action\":\"UNFREEZE\","
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
    cr_assert_eq(feed("\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-20T10:00:00+08:00\",\"action\":\"VOID\","
                      "\"ambassador_uid\":\"amb1\",\"order_id\":\"o1\",\"reason\":\"fake order\""),
                 DASHI_OK);
    const dashi_commission_event *x = ce_find(DASHI_CE_CANCELLED, "o1");
    cr_assert(has_reason(x, "RISK_VOIDED"));
    cr_assert_eq(x->delta, -26000);
    advance(T("2022-08-01T00:00:00+08:00"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
}

Test(commission, awakening_and_yunqi_state) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    const json_t *amb = dashi_view_get(view, "amb:amb1");
    cr_assert_null(json_object_get(amb, "awakened_at"));
    dashi_view_reset(view);
    advance(T("2022-07-10T00:00:00+08:00"));
    amb = dashi_view_get(view, "amb:amb1");
    cr_assert_eq(json_integer_value(json_object_get(amb, "awakened_at")), T("2022-07-09T10:00:00+08:00"));
    cr_assert_str_eq(json_string_value(json_object_get(amb, "awakened_by")), "o1");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(amb, "yq"), "2022-07")), 26000);
    dashi_view_reset(view);
}

Test(commission, identity_change_to_buyer_cancels_in_review) {
    enroll("2022-06-01T09:00:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1");
    cr_assert_eq(order("2022-06-09T10:00:00+08:00", "o1", "c1", NULL, "ecs", 100000), DASHI_OK);
    /* c1 registered with phone 1380000<seq> while seq was 2 (two enrolment events before) */
    cr_assert_eq(feed("\"type\":\"IdentityChanged\",\"occurred_at\":\"2022-06-15T10:00:00+08:00\",\"uid\":\"amb1\","
                      "\"added\":[{\"kind\":\"PHONE\",\"value\":\"13800000002\"}],\"removed\":[]"),
                 DASHI_OK);
    const dashi_commission_event *x = ce_find(DASHI_CE_CANCELLED, "o1");
    cr_assert_not_null(x);
    cr_assert(has_reason(x, "SAME_PERSON_AMBASSADOR"));
    advance(T("2022-08-01T00:00:00+08:00"));
    cr_assert_null(ce_find(DASHI_CE_CONFIRMED, "o1"));
}
