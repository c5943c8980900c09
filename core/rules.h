/* rules.h — the program's rules as data (RULES V1, V2): rule sets by period and the campaigns.
 *
 * The rules file (config/rules.json) is a list of periods. The first period sets
 * every section; each later period starts at its "from" instant and overrides only
 * the sections (or fields inside them) it names — a rate change is one small
 * entry, not a copy of the whole file. Loading resolves the periods into complete
 * dashi_ruleset values, one per period, validates each, and keeps them sorted so
 * dashi_rules_at() picks the set in force at an event's time by binary search.
 * Each set's version is its period's id (e.g. "2022-06-01"), written into outputs
 * as rule_version. Campaigns (K1–K7 and any later ones) are a separate list with
 * their own windows. No number of RULES.md is written in code: all are here.
 */
#ifndef DASHI_RULES_H
#define DASHI_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/error.h"
#include "core/event.h"
#include "core/time.h"

typedef enum { DASHI_TIER_BASIS_NEW_USERS, DASHI_TIER_BASIS_YUNQI } dashi_tier_basis;

typedef struct dashi_ruleset {
    char *version;                    /* period id, e.g. "2022-06-01" */
    dashi_time from;                  /* in force from (inclusive) */
    dashi_time until;                 /* to (exclusive); DASHI_TIME_NONE for the last */

    /* A — association */
    int64_t assoc_days;               /* A2: 30 */
    int64_t protection_days;          /* A3: 30 */
    int64_t pure_new_repurchase_days; /* A5: 90 before 2021-10-26 (repurchases earn the first-purchase rate), 0 after */
    int64_t old_user_assoc_days;      /* A5: 2 before 2022-01-01, 0 = old users are not associated */

    /* S — same person */
    int64_t decision_days;            /* S2: 0 = T+0 (final at 24:00 CST of the day), 3 before 2020-08-21 */
    bool link_kinds[DASHI_ID__COUNT]; /* S1: which identity kinds link accounts */
    int64_t generic_attribute_limit;  /* S7: 20 */
    char **blocklist; size_t n_blocklist; /* S7: normalized values that never link, "KIND:value" */
    int64_t burst_window_ms;          /* R2: new accounts on one attribute within this window ... */
    int64_t burst_threshold;          /* ... at least this many → ATTRIBUTE_BURST */

    /* C — commission */
    int64_t review_days;              /* C8: 30 */
    int64_t refund_window_days;       /* C7: 30 */
    int64_t rate_bp[2][DASHI_TIER__COUNT]; /* C6: [dashi_customer_kind][dashi_tier] */
    int64_t repurchase_rate_bp;       /* C2/A5: 1000 before 2022-01-01, 0 after (nothing earns) */
    int64_t repurchase_cap_per_order; /* A5: 500000 fen */
    char **eligible_categories; size_t n_eligible_categories; /* C4 */
    bool cap_enabled;                 /* C9: from 2022-06-01 */
    int64_t cap_per_customer[DASHI_TIER__COUNT];
    bool installments_enabled;        /* C10: from 2022-06-01 */
    int64_t installment_threshold;    /* fen: at or above → schedule */
    int64_t *installment_offsets_days; size_t n_installments; /* days after review end: 0, 30, 60 */

    /* T, P — tiers and points */
    dashi_tier_basis tier_basis;      /* T1 NEW_USERS from 2022-06-01, T2 YUNQI before */
    int64_t tier_lookback_months;     /* T1: 1, T2: 3 */
    int64_t tier_min[DASHI_TIER__COUNT]; /* lowest count (or yunqi) of each tier: {0, 3, 30, 80} */
    int64_t tier_min_first_purchase;  /* T1: 3000 fen */
    int64_t yunqi_per_rmb;            /* P1: 100 */
    bool awakening;                   /* P2: from 2020-08-21 */
} dashi_ruleset;

/* The campaign kinds of RULES K1–K7: how a campaign counts and pays. */
typedef enum {
    DASHI_PROGRAM_FIRST_ORDER_BONUS,   /* K1 */
    DASHI_PROGRAM_FIRST_PURCHASE_LADDER, /* K2 */
    DASHI_PROGRAM_DRAW_PER_PURCHASE,   /* K3 */
    DASHI_PROGRAM_VERIFIED_LADDER,     /* K4 */
    DASHI_PROGRAM_LEADERBOARD,         /* K5 */
    DASHI_PROGRAM_PRODUCT_LADDER,      /* K6 */
    DASHI_PROGRAM_BUYER_DRAW,          /* K7 */
    DASHI_PROGRAM__COUNT
} dashi_program_kind;

typedef struct dashi_step {
    int64_t count;                    /* threshold */
    int64_t reward;                   /* total reward at this step, in the campaign's unit (fen or yunqi) */
} dashi_step;

typedef struct dashi_ladder {
    char *name;                       /* "PERSONAL", "ENTERPRISE", "LEADERBOARD", or NULL (no ladder field) */
    int account_kind;                 /* K4: dashi_account_type counted, DASHI_ENUM_NONE for any */
    dashi_step *steps; size_t n_steps; /* ascending count */
} dashi_ladder;

typedef struct dashi_band {
    int64_t min_base, max_base;       /* inclusive fen bounds; max DASHI_INT_NONE = open */
    int64_t rate_bp;
} dashi_band;

typedef struct dashi_campaign {
    char *id;                         /* program id, unique: "K1" ... */
    char *name;
    char *campaign_id;                /* the link's campaign id: "invite-2206" */
    dashi_program_kind kind;
    dashi_time starts_at, ends_at;    /* window [starts_at, ends_at) */
    dashi_time settles_at;            /* SETTLED events */
    bool ambassadors_only;            /* K1 */
    int unit;                         /* dashi_unit */
    /* what counts */
    int64_t min_paid;                 /* valid first purchase: 3000; designated products: 500 */
    char **excluded_categories; size_t n_excluded_categories; /* domain, marketplace */
    char **products; size_t n_products;                       /* designated product codes (K6, K7) */
    char **methods; size_t n_methods;                         /* K4: registration methods that count */
    int64_t purchase_ratio_bp;        /* K4: 2000 */
    int64_t purchase_min_paid;        /* K4: 3000 */
    /* how it pays */
    dashi_ladder *ladders; size_t n_ladders;
    dashi_band *bands; size_t n_bands; /* K1 */
    int64_t bonus_base_cap;           /* K1: 5000000 fen */
    dashi_time draw_expires_at;       /* K3, K7; DASHI_TIME_NONE otherwise */
    int64_t *thresholds; size_t n_thresholds; /* K5: draw-eligibility thresholds */
} dashi_campaign;

typedef struct dashi_rules {
    char *source;                     /* file it came from */
    char *name;
    int64_t revision;
    dashi_time plausible_from, plausible_until; /* events outside are bad input */
    dashi_ruleset *sets; size_t n_sets;          /* sorted by from, contiguous */
    dashi_campaign *campaigns; size_t n_campaigns;
} dashi_rules;

/* Load and validate a rules file. NULL on failure with errstr naming the file, the
 * path of the field and what is wrong:
 *   "config/rules.json: periods[2].rates.PURE_NEW.HEAD: expected basis points 0..10000, got -5" */
dashi_rules *dashi_rules_load(const char *path, char *errstr, size_t errstr_size);
/* Same from an already parsed document; source names it in messages. Borrows doc. */
dashi_rules *dashi_rules_from_json(const json_t *doc, const char *source, char *errstr, size_t errstr_size);
void dashi_rules_destroy(dashi_rules *rules); /* NULL-safe */

/* The rule set in force at t (the first one for t before every period). Never NULL. */
const dashi_ruleset *dashi_rules_at(const dashi_rules *rules, dashi_time t);
/* Campaign by program id ("K2"); NULL when none. */
const dashi_campaign *dashi_rules_campaign(const dashi_rules *rules, const char *id);

/* The resolved rule set (and campaigns active at t, when t is given) as JSON, for
 * `dashi rules show --at T`. New reference. */
json_t *dashi_ruleset_to_json(const dashi_ruleset *set);
json_t *dashi_campaign_to_json(const dashi_campaign *c);

/* Helpers used by the rules code. */
bool dashi_ruleset_category_eligible(const dashi_ruleset *set, const char *category);
dashi_tier dashi_ruleset_tier_for(const dashi_ruleset *set, int64_t basis);

#endif
