/* test_campaign.c — the campaign engine (core/campaign.c): K1–K7 run from config/rules.json, at handler level.
 *
 * Each test builds a dashi_ctx per step over dashi_view_new(dashi_state_mem_new())
 * with the project's config/rules.json, runs identity → commission → campaign on
 * the event as the engine does, commits the view to the in-memory store and fires
 * due timers the same way, so settlement ("cp:settle:<id>") happens on stream time.
 * K1 is also driven directly through dashi_campaign_first_order_bonus and
 * dashi_campaign_on_commission with hand-made orders and commission events, so its
 * arithmetic is checked without depending on how commission computes the normal
 * amount. The numbers in the comments are worked out by hand from the default
 * campaigns (K2: 3 → 6000 yunqi, 5 → 10000; K4: 10 → 5000 fen personal, 10000
 * enterprise, 20%; K5: threshold 10; K1: bands 50/45/40%, base cap 5,000,000).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hashing.h"
#include "core/modules.h"

#define MAX_OUT 1024
#define ANY "*"         /* ladder: any (NULL means: no ladder) */
#define INV "invite-2206"
#define DES "designated-2206"
#define BUY "buyer-gift-2206"

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
    n_outs = 0;
    dashi_view_destroy(view);
    dashi_state_destroy(st);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
}

/* ------------------------------------------------------------------ steps */

static void ctx_begin(dashi_ctx *ctx, dashi_time now, const char *cause, const dashi_event *ev) {
    memset(ctx, 0, sizeof(*ctx));
    dashi_view_reset(view);
    ctx->view = view;
    ctx->rules = rules;
    ctx->set = dashi_rules_at(rules, now);
    ctx->keys = keys;
    ctx->now = now;
    ctx->cause = cause;
    ctx->event = ev;
}

/* Commit the step (plus the fired timer's removal) and keep its outputs. */
static void ctx_end(dashi_ctx *ctx, dashi_err err, const char *timer_id) {
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
        for (size_t i = 0; i < ctx->n_outputs; i++) {
            cr_assert_lt(n_outs, MAX_OUT);
            outs[n_outs++] = ctx->outputs[i];
        }
    } else {
        for (size_t i = 0; i < ctx->n_outputs; i++)
            dashi_event_clear(&ctx->outputs[i]);
    }
    free(ctx->outputs);
    ctx->outputs = NULL;
    dashi_view_reset(view);
}

static dashi_err step(dashi_time now, const char *cause, const dashi_event *ev, const char *timer_id) {
    dashi_ctx ctx;
    dashi_err err = DASHI_OK;
    ctx_begin(&ctx, now, cause, ev);
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
    ctx_end(&ctx, err, timer_id);
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
static void feed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void feed(const char *fmt, ...) {
    char text[2048], line[2200], err[256], cause[16];
    va_list ap;
    dashi_event ev;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "{\"event_id\":\"e%04d\",%s}", ++seq, text);
    cr_assert_eq(dashi_event_parse(line, strlen(line), &ev, err, sizeof(err)), DASHI_OK, "%s: %s", line, err);
    dashi_time t = dashi_event_time(&ev);
    advance(t);
    snprintf(cause, sizeof(cause), "e%04d", seq);
    cr_assert_eq(step(t, cause, &ev, NULL), DASHI_OK, "%s", line);
    dashi_event_clear(&ev);
}

/* ------------------------------------------------------------------ inputs */

static void ambassador(const char *uid) {
    feed("\"type\":\"AccountRegistered\",\"occurred_at\":\"2022-06-01T09:00:00+08:00\",\"uid\":\"%s\","
         "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":[{\"kind\":\"PHONE\",\"value\":\"1390000%04d\"}]",
         uid, seq);
    feed("\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2022-06-01T09:05:00+08:00\",\"uid\":\"%s\"", uid);
}

static void enrolled(const char *at, const char *uid, const char *campaign) {
    feed("\"type\":\"CampaignEnrolled\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"campaign_id\":\"%s\"", at, uid, campaign);
}

/* Registration through promoter's link of campaign (NULL: a plain link; promoter NULL: no referral). */
static void reg_full(const char *at, const char *uid, const char *promoter, const char *campaign, const char *kind,
                     const char *method, const char *phone) {
    char ref[256] = "", ph[32];
    if (promoter && campaign)
        snprintf(ref, sizeof(ref), ",\"referral\":{\"ambassador_uid\":\"%s\",\"link_id\":\"l-%s\",\"campaign_id\":\"%s\"}",
                 promoter, promoter, campaign);
    else if (promoter)
        snprintf(ref, sizeof(ref), ",\"referral\":{\"ambassador_uid\":\"%s\",\"link_id\":\"l-%s\"}", promoter, promoter);
    if (!phone) {
        snprintf(ph, sizeof(ph), "1380000%04d", seq);
        phone = ph;
    }
    feed("\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"account_type\":\"%s\","
         "\"method\":\"%s\",\"identities\":[{\"kind\":\"PHONE\",\"value\":\"%s\"}]%s",
         at, uid, kind, method, phone, ref);
}

static void reg(const char *at, const char *uid, const char *promoter, const char *campaign) {
    reg_full(at, uid, promoter, campaign, "PERSONAL", "PASSWORD", NULL);
}

static void verify(const char *at, const char *uid, const char *kind, const char *doc) {
    feed("\"type\":\"RealNameVerified\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"kind\":\"%s\","
         "\"identities\":[{\"kind\":\"ID_DOC\",\"value\":\"%s\"}]",
         at, uid, kind, doc);
}

/* One order with one item of product = category; campaign and cart may be NULL. */
static void order(const char *at, const char *oid, const char *uid, const char *campaign, const char *cart,
                  const char *product, long long paid) {
    char c[160] = "", cp[160] = "";
    if (cart)
        snprintf(c, sizeof(c), "\"cart_id\":\"%s\",", cart);
    if (campaign)
        snprintf(cp, sizeof(cp), "\"campaign_id\":\"%s\",", campaign);
    feed("\"type\":\"OrderPaid\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\",%s"
         "\"order_type\":\"NEW\",\"billing\":\"PREPAID\",%s\"items\":[{\"item_id\":\"i-%s\",\"product_code\":\"%s\","
         "\"category\":\"%s\",\"list_amount\":%lld,\"discount_amount\":0,\"paid_amount\":%lld}]",
         at, oid, uid, c, cp, oid, product, product, paid, paid);
}

static void refund(const char *at, const char *oid, const char *uid, long long amount) {
    feed("\"type\":\"OrderRefunded\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\","
         "\"kind\":\"REFUND\",\"amount\":%lld",
         at, oid, uid, amount);
}

/* n customers c<first>..c<first+n-1> of promoter, each registered through the invite
 * link on June 9 and buying (paid) 30 seconds later; times grow with the index. */
static void buyers(const char *promoter, int first, int n, long long paid) {
    char uid[32], oid[32], at[40];
    for (int i = first; i < first + n; i++) {
        snprintf(uid, sizeof(uid), "c%d", i);
        snprintf(oid, sizeof(oid), "o%d", i);
        snprintf(at, sizeof(at), "2022-06-09T%02d:%02d:00+08:00", 10 + i / 60, i % 60);
        reg(at, uid, promoter, INV);
        snprintf(at, sizeof(at), "2022-06-09T%02d:%02d:30+08:00", 10 + i / 60, i % 60);
        order(at, oid, uid, INV, NULL, "ecs", paid);
    }
}

/* ------------------------------------------------------------------ outputs */

static bool ladder_is(const dashi_campaign_event *ce, const char *ladder) {
    if (ladder && strcmp(ladder, ANY) == 0)
        return true;
    if (!ladder)
        return ce->ladder == NULL;
    return ce->ladder && strcmp(ce->ladder, ladder) == 0;
}

/* i-th (from 0) CampaignEvent of campaign, promoter, kind and ladder; NULL when none. */
static const dashi_campaign_event *ce_nth(const char *campaign, const char *promoter, int kind, const char *ladder,
                                          size_t nth) {
    for (size_t i = 0; i < n_outs; i++) {
        if (outs[i].type != DASHI_EV_CAMPAIGN_EVENT)
            continue;
        const dashi_campaign_event *ce = &outs[i].u.campaign_event;
        if (strcmp(ce->campaign_id, campaign) == 0 && (!promoter || strcmp(ce->promoter_uid, promoter) == 0) &&
            ce->kind == kind && ladder_is(ce, ladder) && nth-- == 0)
            return ce;
    }
    return NULL;
}

static size_t ce_count(const char *campaign, const char *promoter, int kind, const char *ladder) {
    size_t n = 0;
    while (ce_nth(campaign, promoter, kind, ladder, n))
        n++;
    return n;
}

static const dashi_campaign_event *ce_last(const char *campaign, const char *promoter, int kind, const char *ladder) {
    size_t n = ce_count(campaign, promoter, kind, ladder);
    return n ? ce_nth(campaign, promoter, kind, ladder, n - 1) : NULL;
}

/* ------------------------------------------------------------------ the configuration */

TestSuite(config, .init = setup, .fini = teardown);

Test(config, default_campaigns_have_the_seven_kinds) {
    static const char *const ids[] = {"K1", "K2", "K3", "K4", "K5", "K6", "K7"};
    static const dashi_program_kind kinds[] = {
        DASHI_PROGRAM_FIRST_ORDER_BONUS, DASHI_PROGRAM_FIRST_PURCHASE_LADDER, DASHI_PROGRAM_DRAW_PER_PURCHASE,
        DASHI_PROGRAM_VERIFIED_LADDER,   DASHI_PROGRAM_LEADERBOARD,           DASHI_PROGRAM_PRODUCT_LADDER,
        DASHI_PROGRAM_BUYER_DRAW};
    for (size_t i = 0; i < 7; i++) {
        const dashi_campaign *c = dashi_rules_campaign(rules, ids[i]);
        cr_assert_not_null(c, "%s", ids[i]);
        cr_assert_eq(c->kind, kinds[i], "%s", ids[i]);
    }
}

Test(config, second_campaign_file_loads) {
    char err[512] = "";
    dashi_rules *r = dashi_rules_load(DASHI_SOURCE_DIR "/tests/data/campaigns/second-campaign.json", err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(r->n_campaigns, 2);
    cr_assert_eq(dashi_rules_campaign(r, "S1")->kind, DASHI_PROGRAM_FIRST_PURCHASE_LADDER);
    cr_assert_eq(dashi_rules_campaign(r, "S2")->kind, DASHI_PROGRAM_PRODUCT_LADDER);
    cr_assert_str_eq(dashi_rules_campaign(r, "S2")->campaign_id, "summer-2207");
    dashi_rules_destroy(r);
}

/* ------------------------------------------------------------------ K2 (and the counting rules every kind shares) */

TestSuite(k2, .init = setup, .fini = teardown);

Test(k2, three_first_purchases_reach_the_first_step) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(ce_nth(INV, "amb1", DASHI_CAMP_PROGRESS, NULL, i)->count, (int64_t)i + 1);
    const dashi_campaign_event *p = ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, NULL);
    cr_assert_eq(p->reward_amount, 6000);
    cr_assert_eq(p->reward_delta, 6000);
    const dashi_campaign_event *t = ce_last(INV, "amb1", DASHI_CAMP_TIER_REACHED, NULL);
    cr_assert_not_null(t);
    cr_assert_eq(t->count, 3);
    cr_assert_eq(t->tier_threshold, 3);
    cr_assert_eq(t->reward_amount, 6000);
    cr_assert_eq(t->unit, DASHI_UNIT_YUNQI);
    cr_assert_eq(t->occurred_at, T("2022-06-09T10:03:30+08:00"));
    cr_assert_str_eq(t->caused_by, "e0008"); /* the third order */
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_REACHED, NULL), 1);
}

Test(k2, rewards_are_totals_of_the_highest_step) {
    ambassador("amb1");
    buyers("amb1", 1, 5, 3000); /* exactly the minimum */
    const dashi_campaign_event *t = ce_last(INV, "amb1", DASHI_CAMP_TIER_REACHED, NULL);
    cr_assert_eq(t->tier_threshold, 5);
    cr_assert_eq(t->reward_amount, 10000); /* 100 RMB in all, not 60 + 100 */
    cr_assert_eq(t->reward_delta, 4000);
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, NULL)->reward_amount, 10000);
}

Test(k2, below_minimum_and_excluded_categories_do_not_count) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    reg("2022-06-08T10:01:00+08:00", "c2", "amb1", INV);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 2999);
    order("2022-06-09T10:01:00+08:00", "o2", "c2", INV, NULL, "domain", 90000);
    order("2022-06-10T10:01:00+08:00", "o2b", "c2", INV, NULL, "ecs", 9000); /* not the first purchase */
    cr_assert_eq(ce_count(INV, NULL, DASHI_CAMP_PROGRESS, ANY), 0);
    cr_assert_eq(ce_count(INV, NULL, DASHI_CAMP_DRAW_GRANTED, ANY), 0);
}

Test(k2, orders_of_the_first_cart_add_up) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, "cart1", "ecs", 2000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 0);
    order("2022-06-09T10:00:00+08:00", "o1b", "c1", INV, "cart1", "rds", 1000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 1);
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, NULL)->count, 1);
}

Test(k2, full_refund_within_the_window_loses_the_step) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    refund("2022-06-12T10:00:00+08:00", "o3", "c3", 4000); /* partial: nothing */
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL), 0);
    refund("2022-06-13T10:00:00+08:00", "o2", "c2", 10000);
    const dashi_campaign_event *l = ce_last(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL);
    cr_assert_not_null(l);
    cr_assert_eq(l->count, 2);
    cr_assert_eq(l->tier_threshold, 3);
    cr_assert_eq(l->reward_amount, 0);
    cr_assert_eq(l->reward_delta, -6000);
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, NULL)->count, 2);
    /* the draw of that purchase goes too */
    const dashi_campaign_event *d = ce_last(INV, "amb1", DASHI_CAMP_DRAW_REVOKED, NULL);
    cr_assert_str_eq(d->customer_uid, "c2");
}

Test(k2, refund_at_thirty_days_is_outside_the_refund_window) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    refund("2022-07-09T10:02:30+08:00", "o2", "c2", 10000); /* o2 paid 2022-06-09 10:02:30 */
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL), 0);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_DRAW_REVOKED, NULL), 0);
}

Test(k2, window_is_half_open) {
    ambassador("amb1");
    reg("2022-06-29T10:00:00+08:00", "c1", "amb1", INV);
    reg("2022-06-29T10:01:00+08:00", "c2", "amb1", INV);
    reg("2022-06-29T10:02:00+08:00", "c3", "amb1", INV);
    order("2022-06-30T23:59:59+08:00", "o1", "c1", INV, NULL, "ecs", 10000);
    order("2022-07-01T00:00:00+08:00", "o2", "c2", INV, NULL, "ecs", 10000);
    order("2022-07-01T00:00:01+08:00", "o3", "c3", INV, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 1);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_DRAW_GRANTED, NULL), 1);
}

Test(k2, only_the_campaigns_own_links_count) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", DES);  /* another campaign's link */
    reg("2022-06-08T10:01:00+08:00", "c2", "amb1", NULL); /* a plain promo link */
    reg("2022-06-08T10:02:00+08:00", "c3", "amb1", INV);  /* ... but orders under another campaign */
    reg("2022-06-08T10:03:00+08:00", "c4", "amb1", INV);  /* ... orders without a campaign id: counts */
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 10000);
    order("2022-06-09T10:01:00+08:00", "o2", "c2", NULL, NULL, "ecs", 10000);
    order("2022-06-09T10:02:00+08:00", "o3", "c3", DES, NULL, "ecs", 10000);
    order("2022-06-09T10:03:00+08:00", "o4", "c4", NULL, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 1);
    cr_assert_str_eq(ce_last(INV, "amb1", DASHI_CAMP_DRAW_GRANTED, NULL)->customer_uid, "c4");
}

Test(k2, last_touch_of_the_campaign_link_wins) {
    ambassador("amb1");
    ambassador("amb2");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    feed("\"type\":\"LinkVisited\",\"occurred_at\":\"2022-06-08T12:00:00+08:00\",\"uid\":\"c1\",\"ambassador_uid\":\"amb2\","
         "\"link_id\":\"l-amb2\",\"campaign_id\":\"invite-2206\",\"logged_in\":true");
    feed("\"type\":\"LinkVisited\",\"occurred_at\":\"2022-06-08T13:00:00+08:00\",\"uid\":\"c1\",\"ambassador_uid\":\"amb1\","
         "\"link_id\":\"l-amb1\",\"campaign_id\":\"invite-2206\",\"logged_in\":false"); /* not logged in: no touch */
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 0);
    cr_assert_eq(ce_count(INV, "amb2", DASHI_CAMP_PROGRESS, NULL), 1);
}

Test(k2, promoters_are_ambassadors_or_signed_up_users) {
    reg("2022-06-01T09:00:00+08:00", "p1", NULL, NULL);
    reg("2022-06-01T09:00:00+08:00", "p2", NULL, NULL);
    enrolled("2022-06-07T09:00:00+08:00", "p1", INV);
    enrolled("2022-06-07T09:00:00+08:00", "p2", DES); /* another campaign */
    reg("2022-06-08T10:00:00+08:00", "c1", "p1", INV);
    reg("2022-06-08T10:01:00+08:00", "c2", "p2", INV);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 10000);
    order("2022-06-09T10:01:00+08:00", "o2", "c2", INV, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(INV, "p1", DASHI_CAMP_PROGRESS, NULL), 1);
    cr_assert_eq(ce_count(INV, "p2", DASHI_CAMP_PROGRESS, ANY), 0);
    cr_assert_eq(ce_count(INV, "p1", DASHI_CAMP_BONUS, NULL), 0); /* K1 is for ambassadors only */
}

Test(k2, flagged_ambassador_counts_nothing) {
    ambassador("amb1");
    feed("\"type\":\"AccountFlagged\",\"occurred_at\":\"2022-06-05T10:00:00+08:00\",\"uid\":\"amb1\","
         "\"flag\":\"EMPLOYEE\",\"set\":true");
    buyers("amb1", 1, 1, 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, ANY), 0);
}

Test(k2, one_person_counts_once) {
    ambassador("amb1");
    reg_full("2022-06-08T10:00:00+08:00", "c1", "amb1", INV, "PERSONAL", "PASSWORD", "13812345678");
    reg_full("2022-06-08T10:01:00+08:00", "c1b", "amb1", INV, "PERSONAL", "PASSWORD", "13812345678");
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 10000);
    order("2022-06-09T10:01:00+08:00", "o1b", "c1b", INV, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, NULL), 1);
}

Test(k2, same_person_found_later_drops_the_later_purchase) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_REACHED, NULL), 1);
    feed("\"type\":\"IdentityChanged\",\"occurred_at\":\"2022-06-12T10:00:00+08:00\",\"uid\":\"c3\","
         "\"added\":[{\"kind\":\"ID_DOC\",\"value\":\"110101199001019999\"}],\"removed\":[]");
    feed("\"type\":\"IdentityChanged\",\"occurred_at\":\"2022-06-12T11:00:00+08:00\",\"uid\":\"c2\","
         "\"added\":[{\"kind\":\"ID_DOC\",\"value\":\"110101199001019999\"}],\"removed\":[]");
    const dashi_campaign_event *l = ce_last(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL);
    cr_assert_not_null(l);
    cr_assert_eq(l->count, 2);
    /* o2 (10:02:30) was the person's first purchase: c3's draw is the one revoked */
    cr_assert_str_eq(ce_last(INV, "amb1", DASHI_CAMP_DRAW_REVOKED, NULL)->customer_uid, "c3");
}

Test(k2, settlement_emits_final_rewards_and_freezes) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    dashi_timer *timers = NULL;
    size_t n = 0;
    char err[256];
    bool queued = false;
    cr_assert_eq(st->ops->timers_due(st, T("2022-07-31T00:00:00+08:00"), 100, &timers, &n, err, sizeof(err)), DASHI_OK);
    for (size_t i = 0; i < n; i++)
        if (strcmp(timers[i].id, "cp:settle:K2") == 0) {
            queued = true;
            cr_assert_eq(timers[i].due, T("2022-07-31T00:00:00+08:00"));
        }
    dashi_timers_free(timers, n);
    cr_assert(queued, "settlement timer of K2 not queued");
    advance(T("2022-07-31T00:00:00+08:00"));
    const dashi_campaign_event *s = ce_last(INV, "amb1", DASHI_CAMP_SETTLED, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s->count, 3);
    cr_assert_eq(s->reward_amount, 6000);
    cr_assert_eq(s->unit, DASHI_UNIT_YUNQI);
    cr_assert_eq(s->occurred_at, T("2022-07-31T00:00:00+08:00"));
    cr_assert_str_eq(s->caused_by, "cp:settle:K2");
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_SETTLED, NULL), 2); /* K2, and the K1 bonus (with customer) */
    /* after settlement nothing moves */
    size_t before = n_outs;
    refund("2022-07-31T00:00:00+08:00", "o1", "c1", 10000);
    for (size_t i = before; i < n_outs; i++)
        cr_assert_neq(outs[i].type, DASHI_EV_CAMPAIGN_EVENT);
}

Test(k2, risk_void_of_one_order_and_of_a_promoter) {
    ambassador("amb1");
    ambassador("amb2");
    buyers("amb1", 1, 3, 10000);
    buyers("amb2", 4, 2, 10000);
    feed("\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-12T10:00:00+08:00\",\"action\":\"VOID\","
         "\"ambassador_uid\":\"amb1\",\"order_id\":\"o2\",\"campaign_id\":\"invite-2206\",\"reason\":\"fake order\"");
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, NULL)->count, 2);
    cr_assert_not_null(ce_last(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL));
    feed("\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-12T11:00:00+08:00\",\"action\":\"VOID\","
         "\"ambassador_uid\":\"amb2\",\"campaign_id\":\"invite-2206\",\"reason\":\"collusion\"");
    cr_assert_eq(ce_last(INV, "amb2", DASHI_CAMP_PROGRESS, NULL)->count, 0);
    cr_assert_eq(ce_count(INV, "amb2", DASHI_CAMP_DRAW_REVOKED, NULL), 2);
    cr_assert_not_null(ce_last(INV, "amb2", DASHI_CAMP_BONUS_REVOKED, NULL));
    /* a voided promoter counts nothing more */
    size_t progress = ce_count(INV, "amb2", DASHI_CAMP_PROGRESS, NULL);
    reg("2022-06-13T10:00:00+08:00", "c9", "amb2", INV);
    order("2022-06-14T10:00:00+08:00", "o9", "c9", INV, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(INV, "amb2", DASHI_CAMP_PROGRESS, NULL), progress);
}

Test(k2, ids_are_deterministic_and_unique) {
    char *first[MAX_OUT];
    size_t n_first = 0;
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    refund("2022-06-13T10:00:00+08:00", "o2", "c2", 10000);
    advance(T("2022-07-31T00:00:00+08:00"));
    for (size_t i = 0; i < n_outs; i++)
        if (outs[i].type == DASHI_EV_CAMPAIGN_EVENT)
            first[n_first++] = strdup(outs[i].u.campaign_event.campaign_event_id);
    for (size_t i = 0; i < n_first; i++)
        for (size_t j = i + 1; j < n_first; j++)
            cr_assert_str_neq(first[i], first[j], "duplicate id %s", first[i]);
    teardown();
    setup();
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    refund("2022-06-13T10:00:00+08:00", "o2", "c2", 10000);
    advance(T("2022-07-31T00:00:00+08:00"));
    size_t k = 0;
    for (size_t i = 0; i < n_outs; i++)
        if (outs[i].type == DASHI_EV_CAMPAIGN_EVENT) {
            cr_assert_lt(k, n_first);
            cr_assert_str_eq(outs[i].u.campaign_event.campaign_event_id, first[k]);
            k++;
        }
    cr_assert_eq(k, n_first);
    for (size_t i = 0; i < n_first; i++)
        free(first[i]);
}

/* ------------------------------------------------------------------ K3, K7 — draws */

TestSuite(draws, .init = setup, .fini = teardown);

Test(draws, one_draw_per_valid_first_purchase_with_expiry) {
    ambassador("amb1");
    buyers("amb1", 1, 2, 3000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_DRAW_GRANTED, NULL), 2);
    const dashi_campaign_event *d = ce_nth(INV, "amb1", DASHI_CAMP_DRAW_GRANTED, NULL, 1);
    cr_assert_str_eq(d->customer_uid, "c2");
    cr_assert_eq(d->count, 2);
    cr_assert_eq(d->expires_at, T("2022-07-11T00:00:00+08:00"));
    advance(T("2022-07-31T00:00:00+08:00"));
    /* draws carry no amount: no SETTLED for them (the K2 one has unit YUNQI) */
    for (size_t i = 0; i < n_outs; i++)
        if (outs[i].type == DASHI_EV_CAMPAIGN_EVENT && outs[i].u.campaign_event.kind == DASHI_CAMP_SETTLED)
            cr_assert_eq(outs[i].u.campaign_event.unit, DASHI_UNIT_YUNQI);
}

Test(draws, buyer_draw_goes_to_the_buyer) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", BUY);
    reg("2022-06-08T10:01:00+08:00", "c2", "amb1", BUY);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", BUY, NULL, "ecs", 100);
    order("2022-06-09T10:01:00+08:00", "o2", "c2", BUY, NULL, "rds", 10000); /* not the designated product */
    order("2022-06-10T10:01:00+08:00", "o2b", "c2", BUY, NULL, "ecs", 10000); /* not the first order */
    cr_assert_eq(ce_count(BUY, NULL, DASHI_CAMP_DRAW_GRANTED, NULL), 1);
    const dashi_campaign_event *d = ce_last(BUY, "c1", DASHI_CAMP_DRAW_GRANTED, NULL);
    cr_assert_not_null(d);
    cr_assert_str_eq(d->customer_uid, "c1");
    cr_assert_eq(d->expires_at, T("2022-07-01T00:00:00+08:00"));
    cr_assert_eq(ce_count(BUY, "amb1", DASHI_CAMP_DRAW_GRANTED, ANY), 0);
}

Test(draws, buyer_draw_needs_a_new_user) {
    reg("2022-06-01T10:00:00+08:00", "c1", NULL, NULL);
    order("2022-06-02T10:00:00+08:00", "o0", "c1", NULL, NULL, "ecs", 10000);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", BUY, NULL, "ecs", 10000);
    cr_assert_eq(ce_count(BUY, NULL, DASHI_CAMP_DRAW_GRANTED, NULL), 0);
}

/* ------------------------------------------------------------------ K4 */

TestSuite(k4, .init = setup, .fini = teardown);

/* n verified users u<first>.. of kind through amb1's invite link, registered on
 * June 8 and verified on June 9 (methods PASSWORD and PHONE_CODE by turns). */
static void verified(int first, int n, const char *kind) {
    char uid[32], at[40], doc[32];
    for (int i = first; i < first + n; i++) {
        snprintf(uid, sizeof(uid), "u%02d", i);
        snprintf(at, sizeof(at), "2022-06-08T10:%02d:00+08:00", i);
        reg_full(at, uid, "amb1", INV, kind, i % 2 ? "PASSWORD" : "PHONE_CODE", NULL);
    }
    for (int i = first; i < first + n; i++) {
        snprintf(uid, sizeof(uid), "u%02d", i);
        snprintf(at, sizeof(at), "2022-06-09T10:%02d:00+08:00", i);
        snprintf(doc, sizeof(doc), "1101011990010%05d", i);
        verify(at, uid, kind, doc);
    }
}

static void buy(int i, long long paid) {
    char uid[32], oid[32], at[40];
    snprintf(uid, sizeof(uid), "u%02d", i);
    snprintf(oid, sizeof(oid), "o-u%02d", i);
    snprintf(at, sizeof(at), "2022-06-10T10:%02d:00+08:00", i);
    order(at, oid, uid, INV, NULL, "ecs", paid);
}

Test(k4, step_needs_twenty_percent_buyers_rounded_up) {
    ambassador("amb1");
    verified(1, 10, "PERSONAL");
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL")->count, 10);
    buy(1, 3000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_REACHED, "PERSONAL"), 0);
    buy(2, 2999); /* under 30 RMB: not a qualifying purchase */
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_REACHED, "PERSONAL"), 0);
    buy(3, 3000);
    const dashi_campaign_event *t = ce_last(INV, "amb1", DASHI_CAMP_TIER_REACHED, "PERSONAL");
    cr_assert_not_null(t);
    cr_assert_eq(t->tier_threshold, 10);
    cr_assert_eq(t->count, 10);
    cr_assert_eq(t->reward_amount, 5000);
    cr_assert_eq(t->unit, DASHI_UNIT_CNY);
    /* an extra verified user without a purchase never loses the step */
    reg("2022-06-11T10:00:00+08:00", "u11", "amb1", INV);
    verify("2022-06-11T11:00:00+08:00", "u11", "PERSONAL", "110101199001099999");
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_TIER_LOST, "PERSONAL"), 0);
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL")->count, 11);
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL")->reward_amount, 5000);
}

Test(k4, purchase_before_verification_counts_and_ladders_are_separate) {
    ambassador("amb1");
    char uid[32], at[40], doc[32];
    for (int i = 1; i <= 10; i++) {
        snprintf(uid, sizeof(uid), "u%02d", i);
        snprintf(at, sizeof(at), "2022-06-08T10:%02d:00+08:00", i);
        reg_full(at, uid, "amb1", INV, "ENTERPRISE", "PASSWORD", NULL);
    }
    buy(1, 3000);
    buy(2, 5000);
    for (int i = 1; i <= 10; i++) {
        snprintf(uid, sizeof(uid), "u%02d", i);
        snprintf(at, sizeof(at), "2022-06-11T10:%02d:00+08:00", i);
        snprintf(doc, sizeof(doc), "9101011990010%05d", i);
        verify(at, uid, "ENTERPRISE", doc);
    }
    const dashi_campaign_event *t = ce_last(INV, "amb1", DASHI_CAMP_TIER_REACHED, "ENTERPRISE");
    cr_assert_not_null(t);
    cr_assert_eq(t->reward_amount, 10000);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL"), 0);
}

Test(k4, method_other_and_old_users_do_not_count) {
    ambassador("amb1");
    reg_full("2022-06-08T10:00:00+08:00", "u01", "amb1", INV, "PERSONAL", "OTHER", NULL);
    verify("2022-06-09T10:00:00+08:00", "u01", "PERSONAL", "110101199001000001");
    /* a person who already paid registers a new account through the link */
    reg_full("2022-06-01T10:00:00+08:00", "old", NULL, NULL, "PERSONAL", "PASSWORD", "13811112222");
    order("2022-06-02T10:00:00+08:00", "o-old", "old", NULL, NULL, "ecs", 10000);
    reg_full("2022-06-08T10:01:00+08:00", "u02", "amb1", INV, "PERSONAL", "PASSWORD", "13811112222");
    verify("2022-06-09T10:01:00+08:00", "u02", "PERSONAL", "110101199001000002");
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL"), 0);
}

Test(k4, one_person_verifying_two_accounts_counts_once) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "u01", "amb1", INV);
    reg("2022-06-08T10:01:00+08:00", "u02", "amb1", INV);
    verify("2022-06-09T10:00:00+08:00", "u01", "PERSONAL", "110101199001000001");
    verify("2022-06-09T10:01:00+08:00", "u02", "PERSONAL", "110101199001000001");
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL")->count, 1);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, "PERSONAL"), 1);
}

Test(k4, refund_of_a_buyer_loses_the_step_and_settles_at_zero) {
    ambassador("amb1");
    verified(1, 10, "PERSONAL");
    buy(1, 3000);
    buy(2, 5000);
    cr_assert_not_null(ce_last(INV, "amb1", DASHI_CAMP_TIER_REACHED, "PERSONAL"));
    refund("2022-06-15T10:00:00+08:00", "o-u02", "u02", 5000);
    const dashi_campaign_event *l = ce_last(INV, "amb1", DASHI_CAMP_TIER_LOST, "PERSONAL");
    cr_assert_not_null(l);
    cr_assert_eq(l->reward_delta, -5000);
    advance(T("2022-07-31T00:00:00+08:00"));
    const dashi_campaign_event *s = ce_last(INV, "amb1", DASHI_CAMP_SETTLED, "PERSONAL");
    cr_assert_not_null(s);
    cr_assert_eq(s->count, 10);
    cr_assert_eq(s->reward_amount, 0);
    cr_assert_null(ce_last(INV, "amb1", DASHI_CAMP_SETTLED, "ENTERPRISE"));
}

/* ------------------------------------------------------------------ K5 */

TestSuite(k5, .init = setup, .fini = teardown);

Test(k5, threshold_makes_eligible_with_reward_zero) {
    ambassador("amb1");
    buyers("amb1", 1, 10, 10000);
    const dashi_campaign_event *t = ce_last(INV, "amb1", DASHI_CAMP_TIER_REACHED, "LEADERBOARD");
    cr_assert_not_null(t);
    cr_assert_eq(t->tier_threshold, 10);
    cr_assert_eq(t->reward_amount, 0);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_PROGRESS, "LEADERBOARD"), 10);
}

Test(k5, rank_by_count_then_who_reached_it_first_then_uid) {
    ambassador("ambA");
    ambassador("ambB");
    ambassador("ambC");
    ambassador("ambD");
    buyers("ambB", 1, 1, 10000); /* ambB reaches 1 at 10:01:30 */
    buyers("ambA", 2, 1, 10000); /* ambA reaches 1 at 10:02:30 */
    buyers("ambC", 3, 2, 10000); /* ambC reaches 2 at 10:04:30 */
    buyers("ambD", 5, 1, 10000); /* ambD reaches 1 at 10:05:30, then is refunded */
    refund("2022-06-12T10:00:00+08:00", "o5", "c5", 10000);
    advance(T("2022-07-31T00:00:00+08:00"));
    cr_assert_eq(ce_count(INV, NULL, DASHI_CAMP_RANK, "LEADERBOARD"), 3);
    cr_assert_eq(ce_last(INV, "ambC", DASHI_CAMP_RANK, "LEADERBOARD")->rank, 1);
    cr_assert_eq(ce_last(INV, "ambB", DASHI_CAMP_RANK, "LEADERBOARD")->rank, 2);
    cr_assert_eq(ce_last(INV, "ambA", DASHI_CAMP_RANK, "LEADERBOARD")->rank, 3);
    cr_assert_eq(ce_last(INV, "ambA", DASHI_CAMP_RANK, "LEADERBOARD")->count, 1);
    cr_assert_null(ce_last(INV, "ambD", DASHI_CAMP_RANK, "LEADERBOARD"));
}

Test(k5, same_instant_ties_go_by_promoter_uid) {
    ambassador("ambZ");
    ambassador("ambY");
    reg("2022-06-08T10:00:00+08:00", "c1", "ambZ", INV);
    reg("2022-06-08T10:00:00+08:00", "c2", "ambY", INV);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 10000);
    order("2022-06-09T10:00:00+08:00", "o2", "c2", INV, NULL, "ecs", 10000);
    advance(T("2022-07-31T00:00:00+08:00"));
    cr_assert_eq(ce_last(INV, "ambY", DASHI_CAMP_RANK, "LEADERBOARD")->rank, 1);
    cr_assert_eq(ce_last(INV, "ambZ", DASHI_CAMP_RANK, "LEADERBOARD")->rank, 2);
}

/* ------------------------------------------------------------------ K6 */

TestSuite(k6, .init = setup, .fini = teardown);

Test(k6, designated_product_at_minimum_counts_highest_step_once) {
    char uid[32], oid[32], at[40];
    ambassador("amb1");
    for (int i = 1; i <= 7; i++) {
        snprintf(uid, sizeof(uid), "c%d", i);
        snprintf(oid, sizeof(oid), "o%d", i);
        snprintf(at, sizeof(at), "2022-06-08T10:%02d:00+08:00", i);
        reg(at, uid, "amb1", DES);
        snprintf(at, sizeof(at), "2022-06-09T10:%02d:00+08:00", i);
        order(at, oid, uid, DES, NULL, i == 6 ? "rds" : "ecs", i == 7 ? 499 : 500);
    }
    const dashi_campaign_event *p = ce_last(DES, "amb1", DASHI_CAMP_PROGRESS, NULL);
    cr_assert_eq(p->count, 5);
    cr_assert_eq(p->reward_amount, 2000); /* 20 RMB: the step of 5, not 10 + 20 */
    cr_assert_eq(p->unit, DASHI_UNIT_CNY);
    cr_assert_eq(ce_count(DES, "amb1", DASHI_CAMP_TIER_REACHED, NULL), 2);
}

/* ------------------------------------------------------------------ K1 — direct calls */

TestSuite(k1, .init = setup, .fini = teardown);

/* Ask for the bonus of a hand-made one-item order of uid in a step of its own. */
static int64_t bonus_of(const char *at, const char *oid, const char *uid, const char *campaign, const char *amb,
                        int64_t base, int64_t amount) {
    dashi_ctx ctx;
    dashi_order_paid op;
    dashi_item item;
    char cause[32];
    memset(&op, 0, sizeof(op));
    memset(&item, 0, sizeof(item));
    item.item_id = "i";
    item.product_code = item.category = "ecs";
    item.list_amount = item.paid_amount = base;
    op.event_id = cause;
    op.occurred_at = T(at);
    op.order_id = (char *)oid;
    op.uid = (char *)uid;
    op.cart_id = NULL;
    op.order_type = DASHI_ORDER_NEW;
    op.billing = DASHI_BILLING_PREPAID;
    op.campaign_id = (char *)campaign;
    op.items = &item;
    op.n_items = 1;
    snprintf(cause, sizeof(cause), "x%04d", ++seq);
    ctx_begin(&ctx, op.occurred_at, cause, NULL);
    int64_t bonus = dashi_campaign_first_order_bonus(&ctx, &op, amb, base, amount);
    ctx_end(&ctx, DASHI_OK, NULL);
    return bonus;
}

static void commission_says(const char *at, int kind, const char *amb, const char *oid) {
    dashi_ctx ctx;
    dashi_commission_event ce;
    char cause[32];
    memset(&ce, 0, sizeof(ce));
    ce.event = kind;
    ce.occurred_at = T(at);
    ce.ambassador_uid = (char *)amb;
    ce.customer_uid = "someone";
    ce.order_id = (char *)oid;
    snprintf(cause, sizeof(cause), "x%04d", ++seq);
    ctx_begin(&ctx, ce.occurred_at, cause, NULL);
    dashi_campaign_on_commission(&ctx, &ce);
    ctx_end(&ctx, DASHI_OK, NULL);
}

Test(k1, bands_cap_and_half_up) {
    static const struct {
        int64_t base, amount, bonus;
    } cases[] = {
        {99999, 26000, 24000},     /* 50% of 99,999 = 49,999.5 → 50,000 */
        {100000, 26000, 19000},    /* 45% */
        {300000, 78000, 57000},    /* 45%: 300,000 is in the middle band */
        {300001, 78000, 42000},    /* 40% of 300,001 = 120,000.4 → 120,000 */
        {6000000, 500000, 1500000}, /* 40% of the 5,000,000 cap − the capped commission */
        {10000, 6000, 0},          /* 50% of 10,000 − 6,000 = −1,000 → never below 0 */
    };
    char amb[16], cust[16], at[40];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(amb, sizeof(amb), "amb%zu", i);
        snprintf(cust, sizeof(cust), "c%zu", i);
        ambassador(amb);
        snprintf(at, sizeof(at), "2022-06-08T10:%02zu:00+08:00", i);
        reg(at, cust, amb, INV);
        cr_assert_eq(bonus_of("2022-06-09T10:00:00+08:00", cust, cust, INV, amb, cases[i].base, cases[i].amount),
                     cases[i].bonus, "case %zu", i);
        const dashi_campaign_event *b = ce_last(INV, amb, DASHI_CAMP_BONUS, NULL);
        if (cases[i].bonus == 0) {
            cr_assert_null(b, "case %zu", i);
            continue;
        }
        cr_assert_not_null(b, "case %zu", i);
        cr_assert_eq(b->reward_amount, cases[i].bonus);
        cr_assert_eq(b->reward_delta, cases[i].bonus);
        cr_assert_eq(b->unit, DASHI_UNIT_YUNQI);
        cr_assert_str_eq(b->customer_uid, cust);
    }
}

Test(k1, only_the_first_commissioned_order_and_asking_again_is_stable) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    reg("2022-06-08T10:01:00+08:00", "c2", "amb1", INV);
    cr_assert_eq(bonus_of("2022-06-09T10:00:00+08:00", "o1", "c1", INV, "amb1", 100000, 26000), 19000);
    cr_assert_eq(bonus_of("2022-06-09T10:00:00+08:00", "o1", "c1", INV, "amb1", 100000, 26000), 19000);
    cr_assert_eq(bonus_of("2022-06-10T10:00:00+08:00", "o2", "c2", INV, "amb1", 100000, 26000), 0);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_BONUS, NULL), 1);
}

Test(k1, eligibility_link_and_window) {
    ambassador("amb1");
    ambassador("amb2");
    ambassador("amb3");
    /* amb1 had a commissioned order before the campaign */
    commission_says("2022-06-03T10:00:00+08:00", DASHI_CE_PENDING, "amb1", "o-may");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    cr_assert_eq(bonus_of("2022-06-09T10:00:00+08:00", "o1", "c1", INV, "amb1", 100000, 26000), 0);
    /* amb2's customer came through another campaign's link */
    reg("2022-06-08T10:01:00+08:00", "c2", "amb2", DES);
    cr_assert_eq(bonus_of("2022-06-09T10:01:00+08:00", "o2", "c2", DES, "amb2", 100000, 26000), 0);
    /* amb3's order is one second after the window */
    reg("2022-06-30T10:00:00+08:00", "c3", "amb3", INV);
    cr_assert_eq(bonus_of("2022-07-01T00:00:01+08:00", "o3", "c3", INV, "amb3", 100000, 26000), 0);
    cr_assert_eq(ce_count(INV, NULL, DASHI_CAMP_BONUS, NULL), 0);
}

Test(k1, ambassador_enrolled_in_the_window_is_eligible_despite_history) {
    reg("2022-05-01T10:00:00+08:00", "amb1", NULL, NULL);
    commission_says("2022-05-03T10:00:00+08:00", DASHI_CE_PENDING, "amb1", "o-may"); /* (as seen by campaign) */
    feed("\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2022-06-08T09:00:00+08:00\",\"uid\":\"amb1\"");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    cr_assert_eq(bonus_of("2022-06-09T10:00:00+08:00", "o1", "c1", INV, "amb1", 100000, 26000), 19000);
}

Test(k1, cancelled_commission_revokes_the_bonus) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    cr_assert_eq(bonus_of("2022-06-09T10:00:00+08:00", "o1", "c1", INV, "amb1", 100000, 26000), 19000);
    commission_says("2022-06-10T10:00:00+08:00", DASHI_CE_CANCELLED, "amb1", "other-order");
    cr_assert_null(ce_last(INV, "amb1", DASHI_CAMP_BONUS_REVOKED, NULL));
    commission_says("2022-06-10T10:00:00+08:00", DASHI_CE_CANCELLED, "amb1", "o1");
    commission_says("2022-06-10T10:00:00+08:00", DASHI_CE_CANCELLED, "amb1", "o1"); /* once */
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_BONUS_REVOKED, NULL), 1);
    const dashi_campaign_event *r = ce_last(INV, "amb1", DASHI_CAMP_BONUS_REVOKED, NULL);
    cr_assert_eq(r->reward_amount, 0);
    cr_assert_eq(r->reward_delta, -19000);
    cr_assert_str_eq(r->customer_uid, "c1");
}

Test(k1, through_the_engine_order_path) {
    ambassador("amb1");
    reg("2022-06-08T10:00:00+08:00", "c1", "amb1", INV);
    order("2022-06-09T10:00:00+08:00", "o1", "c1", INV, NULL, "ecs", 99999);
    const dashi_campaign_event *b = ce_last(INV, "amb1", DASHI_CAMP_BONUS, NULL);
    cr_assert_not_null(b);
    cr_assert_eq(b->reward_amount, 24000);
    for (size_t i = 0; i < n_outs; i++)
        if (outs[i].type == DASHI_EV_COMMISSION_EVENT && outs[i].u.commission_event.event == DASHI_CE_PENDING)
            cr_assert_eq(outs[i].u.commission_event.bonus_amount, 24000);
}

/* ------------------------------------------------------------------ robustness */

TestSuite(edges, .init = setup, .fini = teardown);

Test(edges, foreign_timers_and_empty_calls_are_no_ops) {
    dashi_ctx ctx;
    ctx_begin(&ctx, T("2022-07-31T00:00:00+08:00"), "cp:settle:nope", NULL);
    cr_assert_eq(dashi_campaign_on_timer(&ctx, "cp:settle:nope", NULL), DASHI_OK);
    cr_assert_eq(dashi_campaign_on_timer(&ctx, "cp:other", NULL), DASHI_OK);
    dashi_campaign_on_person_change(&ctx, NULL, 0);
    dashi_campaign_on_commission(&ctx, NULL);
    cr_assert_eq(dashi_campaign_first_order_bonus(&ctx, NULL, "amb1", 100, 10), 0);
    cr_assert_eq(ctx.n_outputs, 0);
    ctx_end(&ctx, DASHI_OK, NULL);
}

Test(edges, settling_twice_emits_once) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    advance(T("2022-07-31T00:00:00+08:00"));
    size_t n = ce_count(INV, "amb1", DASHI_CAMP_SETTLED, NULL);
    cr_assert_eq(step(T("2022-07-31T00:00:00+08:00"), "cp:settle:K2", NULL, "cp:settle:K2"), DASHI_OK);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_SETTLED, NULL), n);
}
