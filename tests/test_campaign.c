/* test_campaign.c — the campaign engine (core/campaign.c): K1–K7 from config/rules.json through the real engine.
 *
 * Each test runs config/rules.json over an in-memory store with the shared harness
 * (tests/support/harness.h): every input event goes through dashi_engine_process,
 * which fires the due timers first, runs identity → commission → campaign and
 * commits the step with its de-duplication marker, so settlement
 * ("cp:settle:<id>") happens on stream time. K1 is also driven directly through
 * dashi_campaign_first_order_bonus and dashi_campaign_on_commission with hand-made
 * orders and commission events, in steps of the test's own over the harness's view
 * (dashi_harness_ctx_begin/end), so its arithmetic is checked without depending on
 * how commission computes the normal amount. The numbers in the comments are
 * worked out by hand from the default campaigns (K2: 3 → 6000 yunqi, 5 → 10000;
 * K4: 10 → 5000 fen personal, 10000 enterprise, 20%; K5: threshold 10; K1: bands
 * 50/45/40%, base cap 5,000,000).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"
#include "tests/support/harness.h"

#define ANY "*"         /* ladder: any (NULL means: no ladder) */
#define INV "invite-2206"
#define DES "designated-2206"
#define BUY "buyer-gift-2206"

static dashi_harness *h;
static int direct_seq; /* causes "x0001"... of the direct K1 steps */

static dashi_time T(const char *s) {
    return dashi_harness_time(s);
}

static void setup(void) {
    h = dashi_harness_start(NULL);
    direct_seq = 0;
}

static void teardown(void) {
    dashi_harness_stop(h);
    h = NULL;
}

/* ------------------------------------------------------------------ inputs */

static void ambassador(const char *uid) {
    dashi_harness_feed_ok(h, "\"type\":\"AccountRegistered\",\"occurred_at\":\"2022-06-01T09:00:00+08:00\","
                             "\"uid\":\"%s\",\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\","
                             "\"identities\":[{\"kind\":\"PHONE\",\"value\":\"1390000%04d\"}]",
                             uid, dashi_harness_seq(h));
    dashi_harness_feed_ok(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2022-06-01T09:05:00+08:00\","
                             "\"uid\":\"%s\"", uid);
}

static void enrolled(const char *at, const char *uid, const char *campaign) {
    dashi_harness_feed_ok(h, "\"type\":\"CampaignEnrolled\",\"occurred_at\":\"%s\",\"uid\":\"%s\","
                             "\"campaign_id\":\"%s\"", at, uid, campaign);
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
        snprintf(ph, sizeof(ph), "1380000%04d", dashi_harness_seq(h));
        phone = ph;
    }
    dashi_harness_feed_ok(h, "\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\",\"uid\":\"%s\","
                             "\"account_type\":\"%s\",\"method\":\"%s\",\"identities\":[{\"kind\":\"PHONE\","
                             "\"value\":\"%s\"}]%s", at, uid, kind, method, phone, ref);
}

static void reg(const char *at, const char *uid, const char *promoter, const char *campaign) {
    reg_full(at, uid, promoter, campaign, "PERSONAL", "PASSWORD", NULL);
}

static void verify(const char *at, const char *uid, const char *kind, const char *doc) {
    dashi_harness_feed_ok(h, "\"type\":\"RealNameVerified\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"kind\":\"%s\","
                             "\"identities\":[{\"kind\":\"ID_DOC\",\"value\":\"%s\"}]", at, uid, kind, doc);
}

/* One order with one item of product = category; campaign and cart may be NULL. */
static void order(const char *at, const char *oid, const char *uid, const char *campaign, const char *cart,
                  const char *product, long long paid) {
    char c[160] = "", cp[160] = "";
    if (cart)
        snprintf(c, sizeof(c), "\"cart_id\":\"%s\",", cart);
    if (campaign)
        snprintf(cp, sizeof(cp), "\"campaign_id\":\"%s\",", campaign);
    dashi_harness_feed_ok(h, "\"type\":\"OrderPaid\",\"occurred_at\":\"%s\",\"order_id\":\"%s\","
                             "\"uid\":\"%s\",%s\"order_type\":\"NEW\","
                             "\"billing\":\"PREPAID\",%s\"items\":[{\"item_id\":\"i-%s\",\"product_code\":\"%s\","
                             "\"category\":\"%s\",\"list_amount\":%lld,\"discount_amount\":0,\"paid_amount\":%lld}]",
                             at, oid, uid, c, cp, oid, product, product, paid, paid);
}

static void refund(const char *at, const char *oid, const char *uid, long long amount) {
    dashi_harness_feed_ok(h, "\"type\":\"OrderRefunded\",\"occurred_at\":\"%s\",\"order_id\":\"%s\",\"uid\":\"%s\","
                             "\"kind\":\"REFUND\",\"amount\":%lld", at, oid, uid, amount);
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

/* The field pairs of CampaignEvents of campaign, promoter (NULL: any), kind and
 * ladder (ANY: any, NULL: none) for the harness's queries, in f (10 entries). */
static const char *const *ce_fields(const char **f, const char *campaign, const char *promoter, int kind,
                                    const char *ladder) {
    size_t k = 0;
    f[k++] = "campaign_id";
    f[k++] = campaign;
    if (promoter) {
        f[k++] = "promoter_uid";
        f[k++] = promoter;
    }
    f[k++] = "kind";
    f[k++] = dashi_enum_name(DASHI_ENUM_CAMPAIGN_KIND, kind);
    if (!ladder || strcmp(ladder, ANY) != 0) {
        f[k++] = "ladder";
        f[k++] = ladder;
    }
    f[k] = NULL;
    return f;
}

/* nth (from 0; -1 the last) CampaignEvent of campaign, promoter, kind and ladder; NULL when none. */
static const dashi_campaign_event *ce_nth(const char *campaign, const char *promoter, int kind, const char *ladder,
                                          long nth) {
    const char *f[10];
    const dashi_event *ev =
        dashi_harness_findv(h, DASHI_EV_CAMPAIGN_EVENT, 0, nth, ce_fields(f, campaign, promoter, kind, ladder));
    return ev ? &ev->u.campaign_event : NULL;
}

static size_t ce_count(const char *campaign, const char *promoter, int kind, const char *ladder) {
    const char *f[10];
    return dashi_harness_countv(h, DASHI_EV_CAMPAIGN_EVENT, 0, ce_fields(f, campaign, promoter, kind, ladder));
}

static const dashi_campaign_event *ce_last(const char *campaign, const char *promoter, int kind, const char *ladder) {
    return ce_nth(campaign, promoter, kind, ladder, -1);
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
        const dashi_campaign *c = dashi_rules_campaign(dashi_harness_rules(h), ids[i]);
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
    dashi_harness_feed_ok(h, "\"type\":\"LinkVisited\",\"occurred_at\":\"2022-06-08T12:00:00+08:00\",\"uid\":\"c1\","
                             "\"ambassador_uid\":\"amb2\",\"link_id\":\"l-amb2\",\"campaign_id\":\"invite-2206\","
                             "\"logged_in\":true");
    dashi_harness_feed_ok(h, "\"type\":\"LinkVisited\",\"occurred_at\":\"2022-06-08T13:00:00+08:00\",\"uid\":\"c1\","
                             "\"ambassador_uid\":\"amb1\",\"link_id\":\"l-amb1\",\"campaign_id\":\"invite-2206\","
                             "\"logged_in\":false"); /* not logged in: no touch */
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
    dashi_harness_feed_ok(h, "\"type\":\"AccountFlagged\",\"occurred_at\":\"2022-06-05T10:00:00+08:00\","
                             "\"uid\":\"amb1\",\"flag\":\"EMPLOYEE\",\"set\":true");
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
    dashi_harness_feed_ok(h, "\"type\":\"IdentityChanged\",\"occurred_at\":\"2022-06-12T10:00:00+08:00\","
                             "\"uid\":\"c3\",\"added\":[{\"kind\":\"ID_DOC\",\"value\":\"110101199001019999\"}],"
                             "\"removed\":[]");
    dashi_harness_feed_ok(h, "\"type\":\"IdentityChanged\",\"occurred_at\":\"2022-06-12T11:00:00+08:00\","
                             "\"uid\":\"c2\",\"added\":[{\"kind\":\"ID_DOC\",\"value\":\"110101199001019999\"}],"
                             "\"removed\":[]");
    const dashi_campaign_event *l = ce_last(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL);
    cr_assert_not_null(l);
    cr_assert_eq(l->count, 2);
    /* o2 (10:02:30) was the person's first purchase: c3's draw is the one revoked */
    cr_assert_str_eq(ce_last(INV, "amb1", DASHI_CAMP_DRAW_REVOKED, NULL)->customer_uid, "c3");
}

Test(k2, settlement_emits_final_rewards_and_freezes) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    dashi_time due = 0;
    bool queued = dashi_harness_timer(h, "cp:settle:K2", &due);
    cr_assert(queued, "settlement timer of K2 not queued");
    cr_assert_eq(due, T("2022-07-31T00:00:00+08:00"));
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
    const dashi_campaign_event *s = ce_last(INV, "amb1", DASHI_CAMP_SETTLED, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s->count, 3);
    cr_assert_eq(s->reward_amount, 6000);
    cr_assert_eq(s->unit, DASHI_UNIT_YUNQI);
    cr_assert_eq(s->occurred_at, T("2022-07-31T00:00:00+08:00"));
    cr_assert_str_eq(s->caused_by, "cp:settle:K2");
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_SETTLED, NULL), 2); /* K2, and the K1 bonus (with customer) */
    /* after settlement nothing moves */
    size_t before = dashi_harness_n_outputs(h);
    refund("2022-07-31T00:00:00+08:00", "o1", "c1", 10000);
    for (size_t i = before; i < dashi_harness_n_outputs(h); i++)
        cr_assert_neq(dashi_harness_output(h, i)->type, DASHI_EV_CAMPAIGN_EVENT);
}

Test(k2, risk_void_of_one_order_and_of_a_promoter) {
    ambassador("amb1");
    ambassador("amb2");
    buyers("amb1", 1, 3, 10000);
    buyers("amb2", 4, 2, 10000);
    dashi_harness_feed_ok(h, "\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-12T10:00:00+08:00\","
                             "\"action\":\"VOID\",\"ambassador_uid\":\"amb1\",\"order_id\":\"o2\","
                             "\"campaign_id\":\"invite-2206\",\"reason\":\"fake order\"");
    cr_assert_eq(ce_last(INV, "amb1", DASHI_CAMP_PROGRESS, NULL)->count, 2);
    cr_assert_not_null(ce_last(INV, "amb1", DASHI_CAMP_TIER_LOST, NULL));
    dashi_harness_feed_ok(h, "\"type\":\"RiskAction\",\"occurred_at\":\"2022-06-12T11:00:00+08:00\","
                             "\"action\":\"VOID\",\"ambassador_uid\":\"amb2\",\"campaign_id\":\"invite-2206\","
                             "\"reason\":\"collusion\"");
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
    enum { MAX_IDS = 1024 };
    char *first[MAX_IDS];
    size_t n_first = 0;
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    refund("2022-06-13T10:00:00+08:00", "o2", "c2", 10000);
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
    for (size_t i = 0; i < dashi_harness_n_outputs(h); i++)
        if (dashi_harness_output(h, i)->type == DASHI_EV_CAMPAIGN_EVENT) {
            cr_assert_lt(n_first, MAX_IDS);
            first[n_first++] = strdup(dashi_harness_output(h, i)->u.campaign_event.campaign_event_id);
        }
    for (size_t i = 0; i < n_first; i++)
        for (size_t j = i + 1; j < n_first; j++)
            cr_assert_str_neq(first[i], first[j], "duplicate id %s", first[i]);
    teardown();
    setup();
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    refund("2022-06-13T10:00:00+08:00", "o2", "c2", 10000);
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
    size_t k = 0;
    for (size_t i = 0; i < dashi_harness_n_outputs(h); i++)
        if (dashi_harness_output(h, i)->type == DASHI_EV_CAMPAIGN_EVENT) {
            cr_assert_lt(k, n_first);
            cr_assert_str_eq(dashi_harness_output(h, i)->u.campaign_event.campaign_event_id, first[k]);
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
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
    /* draws carry no amount: no SETTLED for them (the K2 one has unit YUNQI) */
    for (size_t i = 0; i < dashi_harness_n_outputs(h); i++) {
        const dashi_event *ev = dashi_harness_output(h, i);
        if (ev->type == DASHI_EV_CAMPAIGN_EVENT && ev->u.campaign_event.kind == DASHI_CAMP_SETTLED)
            cr_assert_eq(ev->u.campaign_event.unit, DASHI_UNIT_YUNQI);
    }
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
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
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
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
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
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
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
    snprintf(cause, sizeof(cause), "x%04d", ++direct_seq);
    dashi_harness_ctx_begin(h, &ctx, op.occurred_at, cause);
    int64_t bonus = dashi_campaign_first_order_bonus(&ctx, &op, amb, base, amount);
    dashi_harness_ctx_end(h, &ctx, true);
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
    snprintf(cause, sizeof(cause), "x%04d", ++direct_seq);
    dashi_harness_ctx_begin(h, &ctx, ce.occurred_at, cause);
    dashi_campaign_on_commission(&ctx, &ce);
    dashi_harness_ctx_end(h, &ctx, true);
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
    dashi_harness_feed_ok(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"2022-06-08T09:00:00+08:00\","
                             "\"uid\":\"amb1\"");
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
    for (size_t i = 0; i < dashi_harness_n_outputs(h); i++) {
        const dashi_event *ev = dashi_harness_output(h, i);
        if (ev->type == DASHI_EV_COMMISSION_EVENT && ev->u.commission_event.event == DASHI_CE_PENDING)
            cr_assert_eq(ev->u.commission_event.bonus_amount, 24000);
    }
}

/* ------------------------------------------------------------------ robustness */

TestSuite(edges, .init = setup, .fini = teardown);

Test(edges, foreign_timers_and_empty_calls_are_no_ops) {
    dashi_ctx ctx;
    dashi_harness_ctx_begin(h, &ctx, T("2022-07-31T00:00:00+08:00"), "cp:settle:nope");
    cr_assert_eq(dashi_campaign_on_timer(&ctx, "cp:settle:nope", NULL), DASHI_OK);
    cr_assert_eq(dashi_campaign_on_timer(&ctx, "cp:other", NULL), DASHI_OK);
    dashi_campaign_on_person_change(&ctx, NULL, 0);
    dashi_campaign_on_commission(&ctx, NULL);
    cr_assert_eq(dashi_campaign_first_order_bonus(&ctx, NULL, "amb1", 100, 10), 0);
    cr_assert_eq(ctx.n_outputs, 0);
    dashi_harness_ctx_end(h, &ctx, true);
}

Test(edges, settling_twice_emits_once) {
    ambassador("amb1");
    buyers("amb1", 1, 3, 10000);
    dashi_harness_advance(h, T("2022-07-31T00:00:00+08:00"));
    size_t n = ce_count(INV, "amb1", DASHI_CAMP_SETTLED, NULL);
    /* the settlement timer fired and is gone: run its handler again in a step of our own */
    dashi_ctx ctx;
    dashi_harness_ctx_begin(h, &ctx, T("2022-07-31T00:00:00+08:00"), "cp:settle:K2");
    cr_assert_eq(dashi_campaign_on_timer(&ctx, "cp:settle:K2", NULL), DASHI_OK);
    dashi_harness_ctx_end(h, &ctx, true);
    cr_assert_eq(ce_count(INV, "amb1", DASHI_CAMP_SETTLED, NULL), n);
}
