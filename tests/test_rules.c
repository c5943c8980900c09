/* test_rules.c — the rules file: the default's values at points in time (RULES V1), campaigns K1–K7, refusals.
 *
 * The default config/rules.json is checked against the numbers of RULES.md at and
 * around every switch point, through dashi_rules_at, as the rules code will see
 * them. Refusals come from two sources: small files in tests/data/rules/ (syntax
 * errors, a file that is not an object, ...) and one edit each of the default
 * document (a JSON-pointer-like path and a new value), so every case is a
 * realistic file with exactly one mistake; each must name the file, the path where
 * the mistake was written and the problem. The `dashi rules` command is exercised
 * through the built binary when it exists (DASHI_BINARY), and skipped otherwise.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rules.h"

#define DEFAULT_RULES DASHI_SOURCE_DIR "/config/rules.json"
#define DATA_DIR DASHI_SOURCE_DIR "/tests/data/rules/"

static dashi_rules *rules;

static void load_default(void) {
    char errstr[1024] = "";
    rules = dashi_rules_load(DEFAULT_RULES, errstr, sizeof errstr);
    cr_assert_not_null(rules, "default rules refused: %s", errstr);
}

static void unload(void) {
    dashi_rules_destroy(rules);
    rules = NULL;
}

static dashi_time at(const char *s) {
    dashi_time t = 0;
    char errstr[256] = "";
    cr_assert_eq(dashi_time_parse(s, &t, errstr, sizeof errstr), DASHI_OK, "%s: %s", s, errstr);
    return t;
}

static const dashi_ruleset *set_at(const char *s) {
    return dashi_rules_at(rules, at(s));
}

/* ------------------------------------------------------------------ the default file */

TestSuite(defaults, .init = load_default, .fini = unload);

Test(defaults, loads_with_every_period_and_campaign) {
    cr_assert_eq(rules->n_sets, 5);
    cr_assert_eq(rules->n_campaigns, 7);
    cr_assert_str_eq(rules->source, DEFAULT_RULES);
    cr_assert_not_null(rules->name);
    cr_assert(rules->revision >= 1);
    cr_assert_eq(rules->plausible_from, at("2019-01-01T00:00:00+08:00"));
    cr_assert_eq(rules->plausible_until, at("2030-01-01T00:00:00+08:00"));
    const char *versions[] = {"2019-01-01", "2020-08-21", "2021-10-26", "2022-01-01", "2022-06-01"};
    const char *froms[] = {"2019-01-01T00:00:00+08:00", "2020-08-21T00:00:00+08:00", "2021-10-26T00:00:00+08:00",
                           "2022-01-01T00:00:00+08:00", "2022-06-01T00:00:00+08:00"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(rules->sets[i].version, versions[i]);
        cr_assert_eq(rules->sets[i].from, at(froms[i]), "periods[%zu].from", i);
        if (i + 1 < 5)
            cr_assert_eq(rules->sets[i].until, at(froms[i + 1]), "periods[%zu].until", i);
    }
    cr_assert_eq(rules->sets[4].until, DASHI_TIME_NONE);
}

Test(defaults, lookup_picks_the_period_in_force) {
    cr_assert_str_eq(set_at("2018-06-01T00:00:00+08:00")->version, "2019-01-01", "before every period: the first");
    cr_assert_str_eq(set_at("2020-08-20T23:59:59.999+08:00")->version, "2019-01-01");
    cr_assert_str_eq(set_at("2020-08-21T00:00:00+08:00")->version, "2020-08-21");
    cr_assert_str_eq(set_at("2020-08-20T16:00:00Z")->version, "2020-08-21", "the same instant in UTC");
    cr_assert_str_eq(set_at("2021-10-25T23:59:59+08:00")->version, "2020-08-21");
    cr_assert_str_eq(set_at("2021-10-26T00:00:00+08:00")->version, "2021-10-26");
    cr_assert_str_eq(set_at("2021-12-31T23:59:59.999+08:00")->version, "2021-10-26");
    cr_assert_str_eq(set_at("2022-01-01T00:00:00+08:00")->version, "2022-01-01");
    cr_assert_str_eq(set_at("2022-05-31T23:59:59+08:00")->version, "2022-01-01");
    cr_assert_str_eq(set_at("2022-06-01T00:00:00+08:00")->version, "2022-06-01");
    cr_assert_str_eq(set_at("2029-12-31T00:00:00+08:00")->version, "2022-06-01");
}

/* C6: [customer kind][tier] in fen basis points, before and after 2021-10-26 00:00 CST. */
Test(defaults, c6_rates_before_and_after_2021_10_26) {
    static const int64_t before[2][DASHI_TIER__COUNT] = {{2300, 2500, 2800, 3100}, {2300, 2500, 2800, 3100}};
    static const int64_t after[2][DASHI_TIER__COUNT] = {{2600, 2800, 3100, 3400}, {2100, 2300, 2600, 2900}};
    const char *before_times[] = {"2019-06-01T00:00:00+08:00", "2020-09-01T00:00:00+08:00",
                                  "2021-10-25T23:59:59+08:00"};
    const char *after_times[] = {"2021-10-26T00:00:00+08:00", "2022-03-01T00:00:00+08:00",
                                 "2022-06-08T10:00:00+08:00"};
    for (size_t i = 0; i < 3; i++) {
        const dashi_ruleset *b = set_at(before_times[i]), *a = set_at(after_times[i]);
        for (int k = 0; k < 2; k++) {
            for (int t = 0; t < DASHI_TIER__COUNT; t++) {
                cr_assert_eq(b->rate_bp[k][t], before[k][t], "%s %s %s: %lld", before_times[i],
                             dashi_enum_name(DASHI_ENUM_CUSTOMER_KIND, k), dashi_enum_name(DASHI_ENUM_TIER, t),
                             (long long)b->rate_bp[k][t]);
                cr_assert_eq(a->rate_bp[k][t], after[k][t], "%s %s %s: %lld", after_times[i],
                             dashi_enum_name(DASHI_ENUM_CUSTOMER_KIND, k), dashi_enum_name(DASHI_ENUM_TIER, t),
                             (long long)a->rate_bp[k][t]);
            }
        }
    }
    cr_assert_eq(set_at("2021-10-26T00:00:00+08:00")->rate_bp[DASHI_CUST_PURE_NEW][DASHI_TIER_HEAD], 3400);
    cr_assert_eq(set_at("2021-10-25T23:59:59+08:00")->rate_bp[DASHI_CUST_PURE_NEW][DASHI_TIER_HEAD], 3100);
    cr_assert_eq(set_at("2021-10-26T00:00:00+08:00")->rate_bp[DASHI_CUST_REGISTERED_NEW][DASHI_TIER_DISCIPLE], 2100);
    cr_assert_eq(set_at("2021-10-25T23:59:59+08:00")->rate_bp[DASHI_CUST_REGISTERED_NEW][DASHI_TIER_DISCIPLE], 2300);
}

/* S2, P2, A5 around 2020-08-21. */
Test(defaults, s2_p2_a5_at_2020_08_21) {
    const dashi_ruleset *b = set_at("2020-08-20T23:59:59+08:00"), *a = set_at("2020-08-21T00:00:00+08:00");
    cr_assert_eq(b->decision_days, 3, "T+3 before");
    cr_assert_eq(a->decision_days, 0, "T+0 from 2020-08-21");
    cr_assert_not(b->awakening);
    cr_assert(a->awakening);
    cr_assert_eq(b->pure_new_repurchase_days, 0);
    cr_assert_eq(a->pure_new_repurchase_days, 90);
    cr_assert_eq(b->old_user_assoc_days, 0);
    cr_assert_eq(a->old_user_assoc_days, 2);
    cr_assert_eq(b->repurchase_rate_bp, 0);
    cr_assert_eq(a->repurchase_rate_bp, 1000);
    cr_assert_eq(a->repurchase_cap_per_order, 500000);
    /* A5: the 90-day pure-new rule ends at 2021-10-26 00:00, old users keep 2 days until 2022-01-01 */
    cr_assert_eq(set_at("2021-10-25T23:59:59+08:00")->pure_new_repurchase_days, 90);
    cr_assert_eq(set_at("2021-10-26T00:00:00+08:00")->pure_new_repurchase_days, 0);
    cr_assert_eq(set_at("2021-10-26T00:00:00+08:00")->old_user_assoc_days, 2);
    /* unchanged by later periods */
    cr_assert_eq(set_at("2022-06-08T00:00:00+08:00")->decision_days, 0);
    cr_assert(set_at("2022-06-08T00:00:00+08:00")->awakening);
}

/* C2, A5 at 2022-01-01. */
Test(defaults, c2_repurchase_ends_2022_01_01) {
    const dashi_ruleset *b = set_at("2021-12-31T23:59:59+08:00"), *a = set_at("2022-01-01T00:00:00+08:00");
    cr_assert_eq(b->repurchase_rate_bp, 1000);
    cr_assert_eq(b->repurchase_cap_per_order, 500000);
    cr_assert_eq(b->old_user_assoc_days, 2);
    cr_assert_eq(a->repurchase_rate_bp, 0);
    cr_assert_eq(a->old_user_assoc_days, 0);
    cr_assert_eq(set_at("2022-06-08T00:00:00+08:00")->repurchase_rate_bp, 0);
}

/* T1, T2, C9, C10, C4 at 2022-06-01. */
Test(defaults, t1_c9_c10_c4_at_2022_06_01) {
    const dashi_ruleset *b = set_at("2022-05-31T23:59:59+08:00"), *a = set_at("2022-06-01T00:00:00+08:00");
    static const int64_t yunqi_min[] = {0, 100000, 1000000, 10000000}, users_min[] = {0, 3, 30, 80};

    cr_assert_eq(b->tier_basis, DASHI_TIER_BASIS_YUNQI);
    cr_assert_eq(b->tier_lookback_months, 3);
    cr_assert_eq(a->tier_basis, DASHI_TIER_BASIS_NEW_USERS);
    cr_assert_eq(a->tier_lookback_months, 1);
    cr_assert_eq(a->tier_min_first_purchase, 3000);
    for (int t = 0; t < DASHI_TIER__COUNT; t++) {
        cr_assert_eq(b->tier_min[t], yunqi_min[t]);
        cr_assert_eq(a->tier_min[t], users_min[t]);
        cr_assert_eq(a->cap_per_customer[t], 500000);
    }
    cr_assert_not(b->cap_enabled);
    cr_assert(a->cap_enabled);

    cr_assert_not(b->installments_enabled);
    cr_assert_eq(b->n_installments, 1);
    cr_assert_eq(b->installment_offsets_days[0], 0);
    cr_assert(a->installments_enabled);
    cr_assert_eq(a->installment_threshold, 100000);
    cr_assert_eq(a->n_installments, 3);
    cr_assert_eq(a->installment_offsets_days[0], 0);
    cr_assert_eq(a->installment_offsets_days[1], 30);
    cr_assert_eq(a->installment_offsets_days[2], 60);

    cr_assert_not(dashi_ruleset_category_eligible(b, "trademark"));
    cr_assert_not(dashi_ruleset_category_eligible(b, "trademark_voucher"));
    cr_assert(dashi_ruleset_category_eligible(a, "trademark"));
    cr_assert(dashi_ruleset_category_eligible(a, "trademark_voucher"));
    const char *always[] = {"ecs", "rds", "oss", "slb", "cdn"}, *never[] = {"domain", "marketplace", "other", ""};
    for (size_t i = 0; i < 5; i++) {
        cr_assert(dashi_ruleset_category_eligible(set_at("2019-03-01T00:00:00+08:00"), always[i]), "%s", always[i]);
        cr_assert(dashi_ruleset_category_eligible(b, always[i]), "%s", always[i]);
        cr_assert(dashi_ruleset_category_eligible(a, always[i]), "%s", always[i]);
    }
    for (size_t i = 0; i < 4; i++) {
        cr_assert_not(dashi_ruleset_category_eligible(b, never[i]), "%s", never[i]);
        cr_assert_not(dashi_ruleset_category_eligible(a, never[i]), "%s", never[i]);
    }
    cr_assert_not(dashi_ruleset_category_eligible(a, NULL));
}

Test(defaults, tier_for_takes_the_highest_tier_reached) {
    const dashi_ruleset *users = set_at("2022-06-08T00:00:00+08:00"), *yunqi = set_at("2022-05-01T00:00:00+08:00");
    cr_assert_eq(dashi_ruleset_tier_for(users, 0), DASHI_TIER_DISCIPLE);
    cr_assert_eq(dashi_ruleset_tier_for(users, 2), DASHI_TIER_DISCIPLE);
    cr_assert_eq(dashi_ruleset_tier_for(users, 3), DASHI_TIER_HALL_MASTER);
    cr_assert_eq(dashi_ruleset_tier_for(users, 29), DASHI_TIER_HALL_MASTER);
    cr_assert_eq(dashi_ruleset_tier_for(users, 30), DASHI_TIER_HELMSMAN);
    cr_assert_eq(dashi_ruleset_tier_for(users, 79), DASHI_TIER_HELMSMAN);
    cr_assert_eq(dashi_ruleset_tier_for(users, 80), DASHI_TIER_HEAD);
    cr_assert_eq(dashi_ruleset_tier_for(users, 100000), DASHI_TIER_HEAD);
    cr_assert_eq(dashi_ruleset_tier_for(users, -1), DASHI_TIER_DISCIPLE);
    cr_assert_eq(dashi_ruleset_tier_for(yunqi, 99999), DASHI_TIER_DISCIPLE);
    cr_assert_eq(dashi_ruleset_tier_for(yunqi, 100000), DASHI_TIER_HALL_MASTER);
    cr_assert_eq(dashi_ruleset_tier_for(yunqi, 999999), DASHI_TIER_HALL_MASTER);
    cr_assert_eq(dashi_ruleset_tier_for(yunqi, 1000000), DASHI_TIER_HELMSMAN);
    cr_assert_eq(dashi_ruleset_tier_for(yunqi, 9999999), DASHI_TIER_HELMSMAN);
    cr_assert_eq(dashi_ruleset_tier_for(yunqi, 10000000), DASHI_TIER_HEAD);
}

Test(defaults, unchanged_values_hold_in_every_period) {
    for (size_t i = 0; i < rules->n_sets; i++) {
        const dashi_ruleset *s = &rules->sets[i];
        cr_assert_eq(s->assoc_days, 30);
        cr_assert_eq(s->protection_days, 30);
        cr_assert_eq(s->review_days, 30);
        cr_assert_eq(s->refund_window_days, 30);
        cr_assert_eq(s->yunqi_per_rmb, 100);
        cr_assert_eq(s->generic_attribute_limit, 20);
        cr_assert_eq(s->burst_window_ms, 60 * DASHI_MS_PER_MIN);
        cr_assert_eq(s->burst_threshold, 5);
        for (int k = 0; k < DASHI_ID__COUNT; k++)
            cr_assert(s->link_kinds[k], "%s links", dashi_enum_name(DASHI_ENUM_IDENTITY_KIND, k));
        cr_assert_eq(s->n_blocklist, 3);
        cr_assert_str_eq(s->blocklist[0], "PHONE:+8600000000000");
    }
}

/* ------------------------------------------------------------------ campaigns */

static void check_window(const dashi_campaign *c, const char *campaign_id) {
    cr_assert_str_eq(c->campaign_id, campaign_id, "%s", c->id);
    cr_assert_eq(c->starts_at, at("2022-06-07T00:00:00+08:00"), "%s starts", c->id);
    cr_assert_eq(c->ends_at, at("2022-07-01T00:00:00+08:00"), "%s ends", c->id);
    cr_assert_eq(c->settles_at, at("2022-07-31T00:00:00+08:00"), "%s settles", c->id);
}

static void check_steps(const dashi_ladder *l, const int64_t (*steps)[2], size_t n) {
    cr_assert_eq(l->n_steps, n, "%zu steps, expected %zu", l->n_steps, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(l->steps[i].count, steps[i][0], "step %zu count", i);
        cr_assert_eq(l->steps[i].reward, steps[i][1], "step %zu reward", i);
    }
}

static int has(char *const *v, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

Test(defaults, k1_first_order_bonus) {
    const dashi_campaign *c = dashi_rules_campaign(rules, "K1");
    cr_assert_not_null(c);
    check_window(c, "invite-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_FIRST_ORDER_BONUS);
    cr_assert(c->ambassadors_only);
    cr_assert_eq(c->unit, DASHI_UNIT_YUNQI);
    cr_assert_eq(c->bonus_base_cap, 5000000);
    cr_assert_eq(c->n_bands, 3);
    cr_assert_eq(c->bands[0].min_base, 0);
    cr_assert_eq(c->bands[0].max_base, 99999);
    cr_assert_eq(c->bands[0].rate_bp, 5000);
    cr_assert_eq(c->bands[1].min_base, 100000);
    cr_assert_eq(c->bands[1].max_base, 300000);
    cr_assert_eq(c->bands[1].rate_bp, 4500);
    cr_assert_eq(c->bands[2].min_base, 300001);
    cr_assert_eq(c->bands[2].max_base, DASHI_INT_NONE);
    cr_assert_eq(c->bands[2].rate_bp, 4000);
    cr_assert_eq(c->draw_expires_at, DASHI_TIME_NONE);
    cr_assert_eq(c->n_ladders, 0);
}

Test(defaults, k2_first_purchase_targets_in_yunqi) {
    static const int64_t steps[][2] = {{3, 6000},       {5, 10000},       {10, 20000},
                                       {20, 50000},     {80, 200000},     {100, 260000},
                                       {200, 520000},   {500, 1500000},   {1000, 3000000}};
    const dashi_campaign *c = dashi_rules_campaign(rules, "K2");
    cr_assert_not_null(c);
    check_window(c, "invite-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_FIRST_PURCHASE_LADDER);
    cr_assert_not(c->ambassadors_only);
    cr_assert_eq(c->unit, DASHI_UNIT_YUNQI);
    cr_assert_eq(c->min_paid, 3000);
    cr_assert(has(c->excluded_categories, c->n_excluded_categories, "domain"));
    cr_assert(has(c->excluded_categories, c->n_excluded_categories, "marketplace"));
    cr_assert_eq(c->n_ladders, 1);
    cr_assert_null(c->ladders[0].name);
    cr_assert_eq(c->ladders[0].account_kind, DASHI_ENUM_NONE);
    check_steps(&c->ladders[0], steps, 9);
}

Test(defaults, k3_draws_expire_2022_07_11) {
    const dashi_campaign *c = dashi_rules_campaign(rules, "K3");
    cr_assert_not_null(c);
    check_window(c, "invite-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_DRAW_PER_PURCHASE);
    cr_assert_eq(c->unit, DASHI_UNIT_CNY);
    cr_assert_eq(c->min_paid, 3000);
    cr_assert(has(c->excluded_categories, c->n_excluded_categories, "domain"));
    cr_assert_eq(c->draw_expires_at, at("2022-07-11T00:00:00+08:00"));
    cr_assert_eq(c->n_ladders, 0);
}

Test(defaults, k4_verified_ladders_personal_and_enterprise) {
    static const int64_t personal[][2] = {{10, 5000},  {20, 10000},   {30, 15000},  {50, 25000},
                                          {100, 50000}, {500, 250000}, {1000, 500000}};
    static const int64_t enterprise[][2] = {{10, 10000},   {20, 25000},     {30, 50000},   {50, 90000},
                                            {100, 200000}, {500, 1000000}, {1000, 2000000}};
    const dashi_campaign *c = dashi_rules_campaign(rules, "K4");
    cr_assert_not_null(c);
    check_window(c, "invite-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_VERIFIED_LADDER);
    cr_assert_not(c->ambassadors_only, "non-ambassadors may take part (A8)");
    cr_assert_eq(c->unit, DASHI_UNIT_CNY);
    cr_assert_eq(c->purchase_ratio_bp, 2000);
    cr_assert_eq(c->purchase_min_paid, 3000);
    cr_assert_eq(c->n_methods, 2);
    cr_assert(has(c->methods, c->n_methods, "PASSWORD"));
    cr_assert(has(c->methods, c->n_methods, "PHONE_CODE"));
    cr_assert_not(has(c->methods, c->n_methods, "OTHER"));
    cr_assert_eq(c->n_ladders, 2);
    cr_assert_str_eq(c->ladders[0].name, "PERSONAL");
    cr_assert_eq(c->ladders[0].account_kind, DASHI_ACCOUNT_PERSONAL);
    check_steps(&c->ladders[0], personal, 7);
    cr_assert_str_eq(c->ladders[1].name, "ENTERPRISE");
    cr_assert_eq(c->ladders[1].account_kind, DASHI_ACCOUNT_ENTERPRISE);
    check_steps(&c->ladders[1], enterprise, 7);
}

Test(defaults, k5_leaderboard_threshold_10) {
    static const int64_t steps[][2] = {{10, 0}};
    const dashi_campaign *c = dashi_rules_campaign(rules, "K5");
    cr_assert_not_null(c);
    check_window(c, "invite-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_LEADERBOARD);
    cr_assert_eq(c->min_paid, 3000);
    cr_assert_eq(c->n_thresholds, 1);
    cr_assert_eq(c->thresholds[0], 10);
    cr_assert_eq(c->n_ladders, 1, "derived from the thresholds");
    cr_assert_str_eq(c->ladders[0].name, "LEADERBOARD");
    check_steps(&c->ladders[0], steps, 1);
}

Test(defaults, k6_designated_products) {
    static const int64_t steps[][2] = {{3, 1000},     {5, 2000},     {10, 5000},     {20, 12000},   {30, 21000},
                                       {50, 40000},   {100, 100000}, {500, 500000},  {1000, 1000000}};
    const dashi_campaign *c = dashi_rules_campaign(rules, "K6");
    cr_assert_not_null(c);
    check_window(c, "designated-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_PRODUCT_LADDER);
    cr_assert_eq(c->unit, DASHI_UNIT_CNY);
    cr_assert_eq(c->min_paid, 500);
    cr_assert_eq(c->n_products, 1);
    cr_assert_str_eq(c->products[0], "ecs");
    cr_assert_eq(c->n_ladders, 1);
    check_steps(&c->ladders[0], steps, 9);
}

Test(defaults, k7_buyer_draw) {
    const dashi_campaign *c = dashi_rules_campaign(rules, "K7");
    cr_assert_not_null(c);
    check_window(c, "buyer-gift-2206");
    cr_assert_eq(c->kind, DASHI_PROGRAM_BUYER_DRAW);
    cr_assert_eq(c->n_products, 1);
    cr_assert_str_eq(c->products[0], "ecs");
    cr_assert_eq(c->draw_expires_at, at("2022-07-01T00:00:00+08:00"));
    cr_assert_null(dashi_rules_campaign(rules, "K8"));
    cr_assert_null(dashi_rules_campaign(rules, NULL));
}

/* ------------------------------------------------------------------ JSON out */

Test(defaults, ruleset_to_json_shows_resolved_values) {
    json_t *j = dashi_ruleset_to_json(set_at("2022-06-08T10:00:00+08:00"));
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "version")), "2022-06-01");
    cr_assert_str_eq(json_string_value(json_object_get(j, "from")), "2022-06-01T00:00:00+08:00");
    cr_assert(json_is_null(json_object_get(j, "until")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(j, "rates"), "PURE_NEW"), "HEAD")),
                 3400, "inherited from 2021-10-26");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "same_person"), "decision_days")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "tiers"), "basis")), "NEW_USERS");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(json_object_get(j, "same_person"), "burst"), "window_minutes")),
                 60);
    json_decref(j);
    cr_assert_null(dashi_ruleset_to_json(NULL));
    cr_assert_null(dashi_campaign_to_json(NULL));
}

/* What to_json writes loads back to the same values: one period per resolved set, every campaign. */
Test(defaults, json_out_loads_back_unchanged) {
    json_t *doc = json_pack("{s:s, s:I, s:{s:s, s:s}, s:[], s:[]}", "name", "round trip", "revision", (json_int_t)7,
                            "plausible", "from", "2019-01-01T00:00:00+08:00", "until", "2030-01-01T00:00:00+08:00",
                            "periods", "campaigns");
    char errstr[1024] = "";
    dashi_rules *back;
    cr_assert_not_null(doc);
    for (size_t i = 0; i < rules->n_sets; i++) {
        json_t *p = dashi_ruleset_to_json(&rules->sets[i]);
        json_object_set(p, "id", json_object_get(p, "version"));
        json_object_del(p, "version");
        json_object_del(p, "until");
        json_array_append_new(json_object_get(doc, "periods"), p);
    }
    for (size_t i = 0; i < rules->n_campaigns; i++)
        json_array_append_new(json_object_get(doc, "campaigns"), dashi_campaign_to_json(&rules->campaigns[i]));
    back = dashi_rules_from_json(doc, "roundtrip", errstr, sizeof errstr);
    cr_assert_not_null(back, "%s", errstr);
    cr_assert_eq(back->n_sets, rules->n_sets);
    cr_assert_eq(back->n_campaigns, rules->n_campaigns);
    for (size_t i = 0; i < rules->n_sets; i++) {
        json_t *a = dashi_ruleset_to_json(&rules->sets[i]), *b = dashi_ruleset_to_json(&back->sets[i]);
        cr_assert(json_equal(a, b), "set %zu differs", i);
        json_decref(a);
        json_decref(b);
    }
    for (size_t i = 0; i < rules->n_campaigns; i++) {
        json_t *a = dashi_campaign_to_json(&rules->campaigns[i]), *b = dashi_campaign_to_json(&back->campaigns[i]);
        cr_assert(json_equal(a, b), "campaign %s differs", rules->campaigns[i].id);
        json_decref(a);
        json_decref(b);
    }
    dashi_rules_destroy(back);
    json_decref(doc);
}

/* ------------------------------------------------------------------ other files */

Test(files, minimal_file_loads) {
    char errstr[1024] = "";
    dashi_rules *r = dashi_rules_load(DATA_DIR "minimal.json", errstr, sizeof errstr);
    cr_assert_not_null(r, "%s", errstr);
    cr_assert_eq(r->n_sets, 1);
    cr_assert_eq(r->n_campaigns, 0);
    cr_assert_eq(dashi_rules_at(r, 0), &r->sets[0]);
    cr_assert_eq(r->sets[0].until, DASHI_TIME_NONE);
    cr_assert(r->sets[0].link_kinds[DASHI_ID_PHONE]);
    cr_assert_not(r->sets[0].link_kinds[DASHI_ID_DEVICE]);
    cr_assert_eq(r->sets[0].n_blocklist, 0);
    dashi_rules_destroy(r);
    dashi_rules_destroy(NULL);
}

/* Parameters are copied into Criterion's worker processes: inline text, no pointers. */
typedef struct {
    char file[64];       /* under tests/data/rules/ */
    char expect[3][200]; /* substrings of the message; "" ends the list */
} bad_file;

ParameterizedTestParameters(files, bad_files_are_refused) {
    static bad_file cases[] = {
        {"bad-syntax.json", {"bad-syntax.json:5:"}},
        {"bad-duplicate-key.json", {"bad-duplicate-key.json:4:", "duplicate"}},
        {"bad-not-object.json", {"bad-not-object.json: expected a JSON object"}},
        {"bad-typo.json", {"bad-typo.json: periods[0].review.dayz: unknown key", "days, refund_window_days"}},
        {"bad-incomplete.json", {"bad-incomplete.json: periods[0].points.yunqi_per_rmb: missing"}},
        {"bad-rate.json",
         {"bad-rate.json: periods[1].rates.PURE_NEW.HEAD: expected basis points 0..10000, got 12000"}},
        {"no-such-file.json", {"no-such-file.json: "}},
    };
    return cr_make_param_array(bad_file, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_file *bf, files, bad_files_are_refused) {
    char path[512], errstr[1024] = "";
    dashi_rules *r;
    snprintf(path, sizeof path, "%s%s", DATA_DIR, bf->file);
    r = dashi_rules_load(path, errstr, sizeof errstr);
    cr_assert_null(r, "%s was accepted", bf->file);
    cr_assert(strncmp(errstr, path, strlen(path)) == 0, "message does not start with the file: %s", errstr);
    for (size_t i = 0; i < 3 && bf->expect[i][0]; i++)
        cr_assert_not_null(strstr(errstr, bf->expect[i]), "%s: expected \"%s\" in: %s", bf->file, bf->expect[i],
                           errstr);
}

/* ------------------------------------------------------------------ one mistake in the default file */

typedef struct {
    char where[64];      /* "periods/3/rates/PURE_NEW/HEAD": objects created as needed, numbers index arrays */
    char value[64];      /* JSON text of the new value; DELETE removes the member */
    char expect[3][200]; /* substrings of the message; "" ends the list */
} bad_edit;

#define DELETE "" /* bad_edit.value: remove the member */

/* Set (or delete) the member at where in doc. */
static void edit(json_t *doc, const char *where, const char *value) {
    char buf[256], *save = NULL, *seg, *next;
    json_t *cur = doc;
    snprintf(buf, sizeof buf, "%s", where);
    seg = strtok_r(buf, "/", &save);
    while (seg) {
        next = strtok_r(NULL, "/", &save);
        if (json_is_array(cur)) {
            size_t i = (size_t)strtoul(seg, NULL, 10);
            cr_assert(i < json_array_size(cur), "%s: no element %zu", where, i);
            if (!next) {
                if (value)
                    json_array_set_new(cur, i, json_loads(value, JSON_DECODE_ANY, NULL));
                else
                    json_array_remove(cur, i);
                return;
            }
            cur = json_array_get(cur, i);
        } else {
            cr_assert(json_is_object(cur), "%s: %s is not inside an object", where, seg);
            if (!next) {
                if (value) {
                    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
                    cr_assert_not_null(v, "bad test value %s", value);
                    json_object_set_new(cur, seg, v);
                } else {
                    cr_assert_eq(json_object_del(cur, seg), 0, "%s: nothing to delete", where);
                }
                return;
            }
            if (!json_object_get(cur, seg))
                json_object_set_new(cur, seg, json_object());
            cur = json_object_get(cur, seg);
        }
        seg = next;
    }
}

ParameterizedTestParameters(edits, one_mistake_is_refused) {
    static bad_edit cases[] = {
        /* rule-set values, where written */
        {"periods/3/rates/PURE_NEW/HEAD", "12000",
         {"bad.json: periods[3].rates.PURE_NEW.HEAD: expected basis points 0..10000, got 12000"}},
        {"periods/2/rates/REGISTERED_NEW/DISCIPLE", "-5",
         {"periods[2].rates.REGISTERED_NEW.DISCIPLE: expected basis points 0..10000, got -5"}},
        {"periods/0/association/days", "-1", {"periods[0].association.days: expected days 0..3650, got -1"}},
        {"periods/1/association/old_user_days", "\"2\"",
         {"periods[1].association.old_user_days: expected days 0..3650, got \"2\""}},
        {"periods/0/review/days", "3651", {"periods[0].review.days: expected days 0..3650, got 3651"}},
        {"periods/1/repurchase/cap_per_order", "-500000",
         {"periods[1].repurchase.cap_per_order: expected an amount in fen", "got -500000"}},
        {"periods/0/cap/enabled", "\"yes\"", {"periods[0].cap.enabled: expected true or false, got \"yes\""}},
        {"periods/3/rates/PURE_NEW", "3400", {"periods[3].rates.PURE_NEW: expected an object, got 3400"}},
        {"periods/0/points/yunqi_per_rmb", "0", {"periods[0].points.yunqi_per_rmb: expected an integer 1.."}},
        {"periods/4/tiers/lookback_months", "0", {"periods[4].tiers.lookback_months: expected months 1..120"}},
        {"periods/1/rates/PURE_NEW/HEAD", "31.5", {"periods[1].rates.PURE_NEW.HEAD: expected basis points"}},
        /* typos are not silent */
        {"periods/1/same_person/decison_days", "0",
         {"periods[1].same_person.decison_days: unknown key", "decision_days"}},
        {"periods/2/ratez", "{}", {"periods[2].ratez: unknown key", "rates"}},
        {"periods/2/rates/PURE_NEW/BOSS", "3400",
         {"periods[2].rates.PURE_NEW.BOSS: unknown key", "DISCIPLE, HALL_MASTER, HELMSMAN, HEAD"}},
        {"periods/4/cap/per_customer/HEAD ", "500000", {"periods[4].cap.per_customer.HEAD : unknown key"}},
        {"campaigns/3/purchase_ratio", "2000", {"campaigns[3].purchase_ratio: unknown key", "purchase_ratio_bp"}},
        {"campaigns/1/ladders/0/steps/0/rewards", "6000", {"campaigns[1].ladders[0].steps[0].rewards: unknown key"}},
        {"periods/3/rates.PURE_NEW", "{\"HEAD\": 3500}",
         {"periods[3].rates.PURE_NEW: unknown key (write nested objects, not dotted keys)"}},
        {"periods_", "[]", {"bad.json: periods_: unknown key"}},
        {"plausible/to", "\"2030-01-01T00:00:00+08:00\"", {"plausible.to: unknown key"}},
        /* completeness of the first period */
        {"periods/0/review/days", DELETE, {"periods[0].review.days: missing"}},
        {"periods/0/tiers", DELETE, {"periods[0].tiers.basis: missing"}},
        /* names */
        {"periods/0/same_person/link_kinds", "[\"PHONE\", \"FAX\"]",
         {"periods[0].same_person.link_kinds[1]: expected one of PHONE, EMAIL, ID_DOC, DEVICE, got \"FAX\""}},
        {"periods/0/same_person/link_kinds", "[\"PHONE\", \"PHONE\"]",
         {"periods[0].same_person.link_kinds[1]: duplicate \"PHONE\""}},
        {"periods/4/tiers/basis", "\"USERS\"", {"periods[4].tiers.basis: expected one of NEW_USERS, YUNQI"}},
        {"periods/0/same_person/blocklist", "[\"+8600000000000\"]",
         {"periods[0].same_person.blocklist[0]: expected \"KIND:normalized value\""}},
        {"periods/4/products/eligible_categories", "[\"ecs\", \"\"]",
         {"periods[4].products.eligible_categories[1]: expected a non-empty string"}},
        /* lists and cross-field checks */
        {"periods/4/installments/offsets_days", "[0, 60, 30]",
         {"periods[4].installments.offsets_days[2]: offsets in days 0..3650 must ascend strictly (30 after 60)"}},
        {"periods/4/installments/offsets_days", "[]", {"periods[4].installments.offsets_days: expected a non-empty list"}},
        {"periods/4/tiers/min/HELMSMAN", "2",
         {"periods[4].tiers.min.HELMSMAN: tier minima must ascend strictly (HELMSMAN 2 is not above HALL_MASTER 3)"}},
        {"periods/4/tiers/min/DISCIPLE", "1", {"periods[4].tiers.min.DISCIPLE: the lowest tier (DISCIPLE) must start at 0"}},
        {"periods/0/tiers/min/HEAD", "100000",
         {"periods[0].tiers.min.HEAD: tier minima must ascend strictly (HEAD 100000 is not above HELMSMAN 1000000)"}},
        /* periods */
        {"periods/3/from", "\"2021-01-01T00:00:00+08:00\"",
         {"periods[3].from: periods must start in strictly ascending order", "periods[2].from 2021-10-26T00:00:00+08:00"}},
        {"periods/1/from", "\"2020-08-21\"", {"periods[1].from: expected an ISO-8601 instant with offset", "\"2020-08-21\""}},
        {"periods/2/id", "\"2020-08-21\"", {"periods[2].id: duplicate id \"2020-08-21\" (also periods[1])"}},
        {"periods/2/id", DELETE, {"periods[2].id: expected a non-empty string"}},
        {"periods", "[]", {"bad.json: periods: expected a non-empty list of periods, got []"}},
        {"plausible/until", "\"2018-01-01T00:00:00+08:00\"", {"plausible.until: must be after plausible.from"}},
        {"revision", "-1", {"bad.json: revision: expected a count 0.."}},
        {"name", DELETE, {"bad.json: name: missing"}},
        /* campaigns */
        {"campaigns/0/kind", "\"BONUS\"", {"campaigns[0].kind: expected one of FIRST_ORDER_BONUS, FIRST_PURCHASE_LADDER"}},
        {"campaigns/1/unit", "\"RMB\"", {"campaigns[1].unit: expected one of CNY, YUNQI, got \"RMB\""}},
        {"campaigns/3/ladders/1/account_kind", "\"COMPANY\"",
         {"campaigns[3].ladders[1].account_kind: expected one of PERSONAL, ENTERPRISE, got \"COMPANY\""}},
        {"campaigns/3/methods", "[\"PASSWORD\", \"SMS\"]", {"campaigns[3].methods[1]: expected one of PASSWORD, PHONE_CODE, OTHER"}},
        {"campaigns/1/ladders/0/steps/2/count", "4",
         {"campaigns[1].ladders[0].steps[2].count: steps must ascend strictly by count (4 after 5)"}},
        {"campaigns/5/ladders/0/steps/3/reward", "1200",
         {"campaigns[5].ladders[0].steps[3].reward: rewards are totals at each step and must not decrease (1200 after 5000)"}},
        {"campaigns/1/ladders/0/steps", "[]", {"campaigns[1].ladders[0].steps: expected a non-empty list of steps"}},
        {"campaigns/3/ladders/1/name", "\"PERSONAL\"", {"campaigns[3].ladders[1].name: duplicate ladder name \"PERSONAL\""}},
        {"campaigns/3/ladders/1/name", DELETE, {"campaigns[3].ladders[1].name: missing (required when a campaign has several ladders)"}},
        {"campaigns/0/ends_at", "\"2022-06-01T00:00:00+08:00\"", {"campaigns[0].ends_at: must be after starts_at"}},
        {"campaigns/2/settles_at", "\"2022-06-30T00:00:00+08:00\"", {"campaigns[2].settles_at: must not be before ends_at"}},
        {"campaigns/6/draw_expires_at", "\"2022-06-01T00:00:00+08:00\"", {"campaigns[6].draw_expires_at: must be after starts_at"}},
        {"campaigns/2/draw_expires_at", DELETE, {"campaigns[2].draw_expires_at: missing (required for a DRAW_PER_PURCHASE campaign)"}},
        {"campaigns/0/bonus_base_cap", DELETE, {"campaigns[0].bonus_base_cap: missing (required for a FIRST_ORDER_BONUS campaign)"}},
        {"campaigns/4/thresholds", "[10, 10]", {"campaigns[4].thresholds[1]: thresholds must ascend strictly"}},
        {"campaigns/5/products", DELETE, {"campaigns[5].products: missing (required for a PRODUCT_LADDER campaign)"}},
        {"campaigns/6/id", "\"K1\"", {"campaigns[6].id: duplicate id \"K1\" (also campaigns[0])"}},
        {"campaigns/2/name", DELETE, {"campaigns[2].name: missing"}},
        {"campaigns/3/purchase_ratio_bp", "20000", {"campaigns[3].purchase_ratio_bp: expected basis points 0..10000, got 20000"}},
        {"campaigns/5/min_paid", "-500", {"campaigns[5].min_paid: expected an amount in fen"}},
        {"campaigns/0/bands/1/min_base", "100001",
         {"campaigns[0].bands[1].min_base: bands must be contiguous (expected 100000 right after max_base 99999, got 100001)"}},
        {"campaigns/0/bands/0/min_base", "1", {"campaigns[0].bands[0].min_base: the first band must start at 0"}},
        {"campaigns/0/bands/2/max_base", "500000", {"campaigns[0].bands[2].max_base: the last band must be open"}},
        {"campaigns/0/bands/1/max_base", DELETE, {"campaigns[0].bands[1].max_base: missing (only the last band may be open)"}},
        {"campaigns/0/bands/0/rate_bp", "50000", {"campaigns[0].bands[0].rate_bp: expected basis points 0..10000, got 50000"}},
        {"campaigns/1/starts_at", "\"June 7\"", {"campaigns[1].starts_at: expected an ISO-8601 instant"}},
        {"campaigns", "{}", {"bad.json: campaigns: expected a list of campaigns"}},
    };
    return cr_make_param_array(bad_edit, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_edit *be, edits, one_mistake_is_refused) {
    json_error_t jerr;
    char errstr[1024] = "";
    json_t *doc = json_load_file(DEFAULT_RULES, 0, &jerr);
    dashi_rules *r;
    cr_assert_not_null(doc, "%s", jerr.text);
    edit(doc, be->where, be->value[0] ? be->value : NULL);
    r = dashi_rules_from_json(doc, "bad.json", errstr, sizeof errstr);
    cr_assert_null(r, "%s = %s was accepted", be->where, be->value[0] ? be->value : "(deleted)");
    cr_assert(strncmp(errstr, "bad.json: ", 10) == 0, "message does not name the file: %s", errstr);
    for (size_t i = 0; i < 3 && be->expect[i][0]; i++)
        cr_assert_not_null(strstr(errstr, be->expect[i]), "%s: expected \"%s\" in: %s", be->where, be->expect[i],
                           errstr);
    json_decref(doc);
}

/* Comments are ignored anywhere, and an unchanged copy of the default loads (the edit helper itself is sound). */
Test(edits, comments_and_the_unedited_default_load) {
    json_error_t jerr;
    char errstr[1024] = "";
    json_t *doc = json_load_file(DEFAULT_RULES, 0, &jerr);
    dashi_rules *r;
    cr_assert_not_null(doc);
    edit(doc, "periods/3/_note", "\"anything\"");
    edit(doc, "periods/4/tiers/_why", "[1, 2]");
    edit(doc, "campaigns/3/ladders/0/_x", "{}");
    edit(doc, "periods/3/rates/PURE_NEW/HEAD", "3500"); /* a valid override in a period that had no rates */
    r = dashi_rules_from_json(doc, "ok.json", errstr, sizeof errstr);
    cr_assert_not_null(r, "%s", errstr);
    cr_assert_eq(r->sets[3].rate_bp[DASHI_CUST_PURE_NEW][DASHI_TIER_HEAD], 3500);
    cr_assert_eq(r->sets[3].rate_bp[DASHI_CUST_PURE_NEW][DASHI_TIER_HELMSMAN], 3100, "the rest of rates inherited");
    cr_assert_eq(r->sets[4].rate_bp[DASHI_CUST_PURE_NEW][DASHI_TIER_HEAD], 3500, "and carried forward");
    cr_assert_eq(r->sets[2].rate_bp[DASHI_CUST_PURE_NEW][DASHI_TIER_HEAD], 3400, "earlier periods untouched");
    dashi_rules_destroy(r);
    json_decref(doc);
}

/* ------------------------------------------------------------------ the command (needs the built dashi) */

/* Run the dashi binary with args (shell words); its stdout+stderr into out; returns the exit status, -1 if absent. */
static int run_dashi(const char *args, char *out, size_t size) {
    char cmd[1024];
    size_t used = 0;
    FILE *p;
    int status;
    if (access(DASHI_BINARY, X_OK) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "env -u DASHI_RULES %s %s 2>&1", DASHI_BINARY, args);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (used + 1 < size && !feof(p)) {
        size_t n = fread(out + used, 1, size - 1 - used, p);
        if (n == 0)
            break;
        used += n;
    }
    out[used] = '\0';
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

Test(command, check_and_show) {
    static char out[1 << 16];
    int rc = run_dashi("rules check " DEFAULT_RULES, out, sizeof out);
    json_t *doc;
    if (rc < 0)
        cr_skip_test("%s not built", DASHI_BINARY);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_not_null(strstr(out, DEFAULT_RULES ": ok (5 periods, 7 campaigns)"), "%s", out);

    rc = run_dashi("rules check " DATA_DIR "bad-rate.json", out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_not_null(strstr(out, "bad-rate.json: periods[1].rates.PURE_NEW.HEAD: expected basis points"), "%s", out);

    rc = run_dashi("rules show --config " DEFAULT_RULES " --at 2022-06-08T10:00:00+08:00", out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", out);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "ruleset"), "version")), "2022-06-01");
    cr_assert_eq(json_array_size(json_object_get(doc, "campaigns")), 7);
    json_decref(doc);

    rc = run_dashi("rules show --config " DEFAULT_RULES " --at 2021-10-25T23:59:59+08:00", out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", out);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "ruleset"), "version")), "2020-08-21");
    cr_assert_eq(json_array_size(json_object_get(doc, "campaigns")), 0);
    json_decref(doc);

    cr_assert_eq(run_dashi("rules show --at yesterday", out, sizeof out), 2, "%s", out);
    cr_assert_eq(run_dashi("rules --help", out, sizeof out), 0, "%s", out);
    cr_assert_eq(run_dashi("rules show --help", out, sizeof out), 0, "%s", out);
    cr_assert_eq(run_dashi("rules check --help", out, sizeof out), 0, "%s", out);
}

/* Campaign ids are parts of state keys and timer ids, and an event's campaign_id (at
 * most DASHI_MAX_ID_LEN bytes) must be able to name them: a longer one is refused. */
Test(edits, campaign_ids_longer_than_the_id_limit_are_refused) {
    const char *fields[] = {"id", "campaign_id"};
    for (int k = 0; k < 2; k++) {
        for (int len = DASHI_MAX_ID_LEN; len <= DASHI_MAX_ID_LEN + 1; len++) {
            json_error_t jerr;
            char errstr[1024] = "", value[DASHI_MAX_ID_LEN + 2];
            json_t *doc = json_load_file(DEFAULT_RULES, 0, &jerr);
            cr_assert_not_null(doc, "%s", jerr.text);
            memset(value, 'K', (size_t)len);
            value[len] = '\0';
            json_object_set_new(json_array_get(json_object_get(doc, "campaigns"), 2), fields[k], json_string(value));
            dashi_rules *r = dashi_rules_from_json(doc, "bad.json", errstr, sizeof errstr);
            if (len == DASHI_MAX_ID_LEN) {
                cr_expect_not_null(r, "a %s of %d bytes is refused: %s", fields[k], len, errstr);
            } else {
                char want[96];
                snprintf(want, sizeof want, "bad.json: campaigns[2].%s: longer than 128 bytes", fields[k]);
                cr_expect_null(r);
                cr_expect(strstr(errstr, want), "%s", errstr);
            }
            dashi_rules_destroy(r);
            json_decref(doc);
        }
    }
}
