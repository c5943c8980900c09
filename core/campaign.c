/* campaign.c — the campaigns of RULES K1–K7, run from their configuration (struct dashi_campaign), not from code.
 *
 * Design. A campaign is data (RULES V2): its window [starts_at, ends_at), the link
 * campaign id, who may promote, what counts, its ladders, unit, draw expiry and
 * settlement. The code knows only the seven kinds (dashi_program_kind) and how
 * each counts; every number comes from the campaign, so a second campaign of a
 * known kind is a new entry in the rules file. Counting is per customer account
 * ("entry"), one entry per (campaign, account), and moves through the states
 * pending (first purchase seen, not yet paid enough) / reg (K4: registered through
 * the link) → counted → dropped (never counts again). A customer is reached only
 * through the campaign's links: this module keeps its own last-touch record of
 * customer → promoter per link campaign id, from AccountRegistered.referral and
 * logged-in LinkVisited (touches outside the window do not count). An order counts
 * for a campaign when it is the person's first purchase (identity's first order or
 * first cart), of type NEW, inside the window, and either carries the campaign's id
 * or carries none while the buyer's account has a link touch of the campaign (an
 * order carrying another campaign's id never counts here). A counted entry drops
 * (the promoter's count goes down, steps are lost) on a full refund inside the
 * refund window of the rule set in force at the order, on a same-person finding
 * (dashi_campaign_on_person_change re-checks the first purchase and keeps one
 * account per person), on a commission CANCELLED for its order, and on a risk VOID
 * naming the campaign — until the campaign settles at settles_at (timer
 * "cp:settle:<id>"), which emits SETTLED per promoter and ladder (RANK for a
 * leaderboard; nothing for draws, whose grants and revocations are final; the
 * bonus's SETTLED names its customer) and freezes everything. Ladders pay the
 * reward of the highest step met; a verification-ladder step of N needs N
 * verified users of the ladder's kind and ceil(N × purchase_ratio_bp / 10000) of
 * them with a first purchase paid at least purchase_min_paid (any first purchase
 * in the window; it need not carry the campaign id), and one person counts once
 * across the ladders. The first-order bonus counts only the ambassador's first
 * commissioned order in the window that came through the campaign's link; a later
 * commission ADJUSTED does not change it, a CANCELLED revokes it.
 *
 * State (prefix "cp:"; times are integer ms):
 *   cp:acct:<uid>               {"amb": enrolled at, "enr": {campaign_id: at}, "flags": [flag],
 *                                "bound": true, "cm": first commissioned order at}
 *   cp:lk:<campaign_id>:<uid>   {"p": promoter, "at": touched at, "reg": registered through it}
 *   cp:ord:<order_id>           {"uid", "at", "paid", "ref", "full", "progs": {<id>: {"u": entry uid, "q": counted fen}}}
 *   cp:<id>:u:<uid>             entry {"p", "st", "orders": [..], "cart", "paid", "at", "reg", "li", "bought"}
 *   cp:<id>:pi:<person_id>      {"u": [uid]} K4 accounts of a person with an entry
 *   cp:<id>:p:<promoter>        {"l": [{"n": count, "b": buyers, "s": steps met, "r": reward}], "t": [first time at
 *                                count k+1], "u": [counted uids], "void": true, "ix": true,
 *                                K1: "order", "customer", "bonus", "revoked"}
 *   cp:<id>:idx:<00..3f>       {"p": [promoter uids]} who settles, in buckets by a hash of the uid
 *   cp:<id>:st                  {"settled": at}
 *   timer cp:settle:<id>        due settles_at
 */
#include "core/modules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/rules.h"
#include "core/time.h"
#include "core/view.h"

#define CP_ID_LEN 40
#define CP_TIMER_PREFIX "cp:settle:"
#define CP_BP 10000
#define CP_IDX_BUCKETS 64u /* settlement list split in this many records */

/* ---------------------------------------------------------------- small helpers */

static int64_t j_int(const json_t *o, const char *k, int64_t dflt) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static const char *j_str(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool j_bool(const json_t *o, const char *k) {
    return json_is_true(json_object_get(o, k));
}

static void j_set_int(json_t *o, const char *k, int64_t v) {
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

static void j_set_str(json_t *o, const char *k, const char *s) {
    json_object_set_new(o, k, json_string(s ? s : ""));
}

static bool str_eq(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

static bool strv_has(char *const *v, size_t n, const char *s) {
    bool found = false;
    for (size_t i = 0; s && i < n && !found; i++)
        found = strcmp(v[i], s) == 0;
    return found;
}

static bool j_arr_has(const json_t *arr, const char *s) {
    bool found = false;
    for (size_t i = 0; i < json_array_size(arr) && !found; i++)
        found = str_eq(json_string_value(json_array_get(arr, i)), s);
    return found;
}

/* The array o[k] (created when absent). */
static json_t *j_arr(json_t *o, const char *k) {
    json_t *a = json_object_get(o, k);
    if (!json_is_array(a)) {
        a = json_array();
        json_object_set_new(o, k, a);
    }
    return a;
}

static void j_arr_add(json_t *o, const char *k, const char *s) {
    json_t *a = j_arr(o, k);
    if (!j_arr_has(a, s))
        json_array_append_new(a, json_string(s));
}

static bool cp_in_window(const dashi_campaign *c, dashi_time t) {
    return t != DASHI_TIME_NONE && t >= c->starts_at && t < c->ends_at;
}

static bool cp_settled(dashi_ctx *ctx, const dashi_campaign *c) {
    return ctx->now >= c->settles_at || dashi_view_getf(ctx->view, "cp:%s:st", c->id) != NULL;
}

static bool cp_is_purchase_kind(const dashi_campaign *c) {
    return c->kind == DASHI_PROGRAM_FIRST_PURCHASE_LADDER || c->kind == DASHI_PROGRAM_DRAW_PER_PURCHASE ||
           c->kind == DASHI_PROGRAM_LEADERBOARD || c->kind == DASHI_PROGRAM_PRODUCT_LADDER ||
           c->kind == DASHI_PROGRAM_BUYER_DRAW;
}

static bool cp_is_draw_kind(const dashi_campaign *c) {
    return c->kind == DASHI_PROGRAM_DRAW_PER_PURCHASE || c->kind == DASHI_PROGRAM_BUYER_DRAW;
}

static bool cp_is_designated_kind(const dashi_campaign *c) {
    return c->kind == DASHI_PROGRAM_PRODUCT_LADDER || c->kind == DASHI_PROGRAM_BUYER_DRAW;
}

/* The paid amount of an order that a campaign looks at: items of a category the
 * campaign does not exclude and, for designated-product kinds, of a listed product. */
static int64_t cp_qualifying_paid(const dashi_campaign *c, const dashi_order_paid *o, bool designated) {
    int64_t sum = 0;
    for (size_t i = 0; i < o->n_items; i++) {
        const dashi_item *it = &o->items[i];
        if (strv_has(c->excluded_categories, c->n_excluded_categories, it->category))
            continue;
        if (designated && !strv_has(c->products, c->n_products, it->product_code))
            continue;
        sum += it->paid_amount;
    }
    return sum;
}

static int64_t cp_order_paid(const dashi_order_paid *o) {
    int64_t sum = 0;
    for (size_t i = 0; i < o->n_items; i++)
        sum += o->items[i].paid_amount;
    return sum;
}

/* What an entry's qualifying paid amount must reach: K4 purchase_min_paid, else
 * min_paid (at least 1 fen of a designated product: a 0-fen item is no purchase). */
static int64_t cp_entry_need(const dashi_campaign *c) {
    int64_t need = c->kind == DASHI_PROGRAM_VERIFIED_LADDER ? c->purchase_min_paid : c->min_paid;
    if (cp_is_designated_kind(c) && need < 1)
        need = 1;
    return need;
}

/* Is the order (or its cart) the person's first paid purchase (identity, C1)? */
static bool cp_is_first_purchase(const dashi_person_info *pi, const char *order_id, const char *cart_id) {
    return (pi->first_order_id[0] && str_eq(pi->first_order_id, order_id)) ||
           (cart_id && cart_id[0] && pi->first_cart_id[0] && strcmp(pi->first_cart_id, cart_id) == 0);
}

/* ---------------------------------------------------------------- ladders */

static size_t cp_n_steps(const dashi_campaign *c, size_t li) {
    return li < c->n_ladders ? c->ladders[li].n_steps : 0;
}

static const char *cp_ladder_name(const dashi_campaign *c, size_t li) {
    return li < c->n_ladders ? c->ladders[li].name : NULL;
}

/* Is step k of ladder li met with n counted users of whom b made a qualifying purchase? */
static bool cp_step_met(const dashi_campaign *c, size_t li, size_t k, int64_t n, int64_t b) {
    int64_t need = c->ladders[li].steps[k].count;
    bool met = n >= need;
    if (met && c->kind == DASHI_PROGRAM_VERIFIED_LADDER)
        met = b >= (need * c->purchase_ratio_bp + CP_BP - 1) / CP_BP; /* ceil */
    return met;
}

/* Number of steps met (steps are met from the bottom up: a higher step met implies
 * every lower one is). The reward is that of the highest step met. */
static size_t cp_steps_met(const dashi_campaign *c, size_t li, int64_t n, int64_t b) {
    size_t met = 0;
    for (size_t k = 0; k < cp_n_steps(c, li); k++)
        if (cp_step_met(c, li, k, n, b))
            met = k + 1;
    return met;
}

static int64_t cp_step_reward(const dashi_campaign *c, size_t li, size_t met) {
    return met ? c->ladders[li].steps[met - 1].reward : 0;
}

/* ---------------------------------------------------------------- outputs */

typedef struct cp_out {
    int kind;                /* dashi_campaign_kind */
    const char *ladder;      /* NULL: none */
    int64_t count;
    int64_t threshold;       /* DASHI_INT_NONE: none */
    int64_t reward, delta;
    const char *customer;    /* NULL: none */
    dashi_time expires_at;   /* DASHI_TIME_NONE: none */
    int64_t rank;            /* DASHI_INT_NONE: none */
} cp_out;

static void cp_out_init(cp_out *o, int kind) {
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->threshold = DASHI_INT_NONE;
    o->expires_at = DASHI_TIME_NONE;
    o->rank = DASHI_INT_NONE;
}

/* Emit one CampaignEvent. Its id digests the campaign, promoter, kind, ladder,
 * customer, numbers, the cause and, in an event step, how many campaign events the
 * step emitted before it (so two changes of one promoter in one step get distinct
 * ids, the same on every replay). */
static void cp_emit(dashi_ctx *ctx, const dashi_campaign *c, const char *promoter, const cp_out *o) {
    dashi_event ev;
    dashi_campaign_event *ce;
    char id[CP_ID_LEN], nums[4][24];
    const char *parts[10];
    size_t seq = 0;
    /* (a timer step — settlement — emits one event per promoter and ladder: unique without it) */
    for (size_t i = 0; ctx->event && i < ctx->n_outputs; i++)
        seq += ctx->outputs[i].type == DASHI_EV_CAMPAIGN_EVENT;
    snprintf(nums[0], sizeof nums[0], "%lld", (long long)o->count);
    snprintf(nums[1], sizeof nums[1], "%lld", (long long)o->threshold);
    snprintf(nums[2], sizeof nums[2], "%lld", (long long)o->reward);
    snprintf(nums[3], sizeof nums[3], "%zu", seq);
    parts[0] = c->id;
    parts[1] = promoter;
    parts[2] = dashi_enum_name(DASHI_ENUM_CAMPAIGN_KIND, o->kind);
    parts[3] = o->ladder ? o->ladder : "";
    parts[4] = o->customer ? o->customer : "";
    parts[5] = nums[0];
    parts[6] = nums[1];
    parts[7] = nums[2];
    parts[8] = ctx->cause ? ctx->cause : "";
    parts[9] = nums[3];
    dashi_ctx_make_id(id, sizeof id, "cpe", parts, 10);

    dashi_event_init(&ev, DASHI_EV_CAMPAIGN_EVENT);
    ce = &ev.u.campaign_event;
    ce->campaign_event_id = dashi_strdup(id);
    ce->campaign_id = dashi_strdup(c->campaign_id);
    ce->promoter_uid = dashi_strdup(promoter);
    ce->kind = o->kind;
    ce->ladder = o->ladder ? dashi_strdup(o->ladder) : NULL;
    ce->count = o->count;
    ce->tier_threshold = o->threshold;
    ce->reward_amount = o->reward;
    ce->reward_delta = o->delta;
    ce->unit = c->unit;
    ce->expires_at = o->expires_at;
    ce->customer_uid = o->customer ? dashi_strdup(o->customer) : NULL;
    ce->rank = o->rank;
    ce->occurred_at = ctx->now;
    ce->caused_by = dashi_strdup(ctx->cause ? ctx->cause : "");
    dashi_ctx_emit(ctx, &ev);
    dashi_event_clear(&ev);
}

/* ---------------------------------------------------------------- promoters */

static const dashi_campaign *cp_find(const dashi_rules *rules, const char *id) {
    const dashi_campaign *c = NULL;
    for (size_t i = 0; rules && id && i < rules->n_campaigns && !c; i++)
        if (strcmp(rules->campaigns[i].id, id) == 0)
            c = &rules->campaigns[i];
    return c;
}

/* May uid promote campaign c at t? Ambassadors (enrolled by t) and, unless the
 * campaign is for ambassadors only, users who signed up for its campaign id; never
 * flagged accounts (A7) nor a promoter voided by risk. */
static bool cp_is_promoter(dashi_ctx *ctx, const dashi_campaign *c, const char *uid, dashi_time t) {
    const json_t *acct, *pr;
    int64_t at;
    bool ok = false;
    if (!uid || !uid[0])
        goto out;
    acct = dashi_view_getf(ctx->view, "cp:acct:%s", uid);
    pr = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, uid);
    if (json_array_size(json_object_get(acct, "flags")) > 0 || j_bool(pr, "void"))
        goto out;
    at = j_int(acct, "amb", DASHI_INT_NONE);
    if (at != DASHI_INT_NONE && at <= t) {
        ok = true;
        goto out;
    }
    if (c->ambassadors_only)
        goto out;
    at = j_int(json_object_get(acct, "enr"), c->campaign_id, DASHI_INT_NONE);
    ok = at != DASHI_INT_NONE && at <= t;
out:
    return ok;
}

/* Settlement list bucket of a promoter (FNV-1a of the uid): the list is split so
 * that adding a promoter rewrites a small record, not one that grows with all of them. */
static unsigned cp_bucket(const char *uid) {
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)uid; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CP_IDX_BUCKETS;
}

/* Put promoter on the campaign's settlement list (once) and make sure the
 * settlement timer is queued. */
static void cp_index_promoter(dashi_ctx *ctx, const dashi_campaign *c, const char *promoter) {
    json_t *p, *idx;
    char tid[256];
    const json_t *pr = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, promoter);
    if (j_bool(pr, "ix"))
        goto out;
    if (!(p = dashi_view_editf(ctx->view, "cp:%s:p:%s", c->id, promoter)) ||
        !(idx = dashi_view_editf(ctx->view, "cp:%s:idx:%02x", c->id, cp_bucket(promoter))))
        goto out;
    json_object_set_new(p, "ix", json_true());
    j_arr_add(idx, "p", promoter);
    snprintf(tid, sizeof tid, CP_TIMER_PREFIX "%s", c->id);
    dashi_view_timer_add(ctx->view, tid, c->settles_at, NULL);
out:
    return;
}

/* Change a promoter's count (dn) and buyers (db, K4) on ladder li, recompute the
 * step and reward, and emit PROGRESS and TIER_REACHED / TIER_LOST for ladder kinds.
 * Returns the new count. */
static int64_t cp_promoter_change(dashi_ctx *ctx, const dashi_campaign *c, const char *promoter, size_t li,
                                  int64_t dn, int64_t db) {
    json_t *p, *ls, *l, *times;
    int64_t n0 = 0, b0, r0, n1 = 0, b1, r1;
    size_t s0, s1, k;
    const char *ladder = cp_ladder_name(c, li);
    cp_out o;
    if (!(p = dashi_view_editf(ctx->view, "cp:%s:p:%s", c->id, promoter)))
        goto out;
    ls = j_arr(p, "l");
    while (json_array_size(ls) <= li)
        json_array_append_new(ls, json_object());
    l = json_array_get(ls, li);
    n0 = j_int(l, "n", 0);
    b0 = j_int(l, "b", 0);
    s0 = (size_t)j_int(l, "s", 0);
    r0 = j_int(l, "r", 0);
    n1 = n0 + dn < 0 ? 0 : n0 + dn;
    b1 = b0 + db < 0 ? 0 : b0 + db;
    s1 = cp_steps_met(c, li, n1, b1);
    r1 = cp_step_reward(c, li, s1);
    j_set_int(l, "n", n1);
    j_set_int(l, "b", b1);
    j_set_int(l, "s", (int64_t)s1);
    j_set_int(l, "r", r1);
    if (c->kind == DASHI_PROGRAM_LEADERBOARD) {
        /* when the promoter first reached each count: the ranking's tie-break */
        times = j_arr(p, "t");
        while ((int64_t)json_array_size(times) < n1)
            json_array_append_new(times, json_integer((json_int_t)ctx->now));
    }
    if (cp_is_draw_kind(c) || c->kind == DASHI_PROGRAM_FIRST_ORDER_BONUS)
        goto out;
    if (n1 != n0 || r1 != r0) {
        cp_out_init(&o, DASHI_CAMP_PROGRESS);
        o.ladder = ladder;
        o.count = n1;
        o.reward = r1;
        o.delta = r1 - r0;
        cp_emit(ctx, c, promoter, &o);
    }
    for (k = s0; k < s1; k++) {
        cp_out_init(&o, DASHI_CAMP_TIER_REACHED);
        o.ladder = ladder;
        o.count = n1;
        o.threshold = c->ladders[li].steps[k].count;
        o.reward = cp_step_reward(c, li, k + 1);
        o.delta = o.reward - cp_step_reward(c, li, k);
        cp_emit(ctx, c, promoter, &o);
    }
    for (k = s0; k > s1; k--) {
        cp_out_init(&o, DASHI_CAMP_TIER_LOST);
        o.ladder = ladder;
        o.count = n1;
        o.threshold = c->ladders[li].steps[k - 1].count;
        o.reward = cp_step_reward(c, li, k - 1);
        o.delta = o.reward - cp_step_reward(c, li, k);
        cp_emit(ctx, c, promoter, &o);
    }
out:
    return n1;
}

static void cp_emit_draw(dashi_ctx *ctx, const dashi_campaign *c, const char *promoter, const char *customer,
                         int kind, int64_t count) {
    cp_out o;
    cp_out_init(&o, kind);
    o.count = count;
    o.customer = customer;
    o.expires_at = c->draw_expires_at;
    cp_emit(ctx, c, promoter, &o);
}

/* ---------------------------------------------------------------- entries */

static size_t cp_entry_ladder(const json_t *e) {
    int64_t li = j_int(e, "li", 0);
    return li < 0 ? 0 : (size_t)li;
}

/* Entry e of account uid starts to count. */
static void cp_entry_count(dashi_ctx *ctx, const dashi_campaign *c, json_t *e, const char *uid) {
    char promoter[256];
    json_t *p;
    int64_t n;
    snprintf(promoter, sizeof promoter, "%s", j_str(e, "p") ? j_str(e, "p") : "");
    j_set_str(e, "st", "counted");
    j_set_int(e, "at", ctx->now);
    n = cp_promoter_change(ctx, c, promoter, cp_entry_ladder(e), 1,
                           c->kind == DASHI_PROGRAM_VERIFIED_LADDER && j_bool(e, "bought") ? 1 : 0);
    if ((p = dashi_view_editf(ctx->view, "cp:%s:p:%s", c->id, promoter)) != NULL)
        j_arr_add(p, "u", uid);
    cp_index_promoter(ctx, c, promoter);
    if (cp_is_draw_kind(c))
        cp_emit_draw(ctx, c, promoter, uid, DASHI_CAMP_DRAW_GRANTED, n);
}

/* Entry e of account uid stops counting for good. */
static void cp_entry_drop(dashi_ctx *ctx, const dashi_campaign *c, json_t *e, const char *uid) {
    char promoter[256];
    bool was = str_eq(j_str(e, "st"), "counted");
    int64_t n;
    snprintf(promoter, sizeof promoter, "%s", j_str(e, "p") ? j_str(e, "p") : "");
    j_set_str(e, "st", "dropped");
    if (!was)
        goto out;
    n = cp_promoter_change(ctx, c, promoter, cp_entry_ladder(e), -1,
                           c->kind == DASHI_PROGRAM_VERIFIED_LADDER && j_bool(e, "bought") ? -1 : 0);
    if (cp_is_draw_kind(c))
        cp_emit_draw(ctx, c, promoter, uid, DASHI_CAMP_DRAW_REVOKED, n);
out:
    return;
}

/* K4: the verified user behind e made (or no longer has) a qualifying first purchase. */
static void cp_entry_set_bought(dashi_ctx *ctx, const dashi_campaign *c, json_t *e, bool bought) {
    char promoter[256];
    if (j_bool(e, "bought") == bought)
        goto out;
    json_object_set_new(e, "bought", json_boolean(bought));
    if (!str_eq(j_str(e, "st"), "counted"))
        goto out;
    snprintf(promoter, sizeof promoter, "%s", j_str(e, "p") ? j_str(e, "p") : "");
    cp_promoter_change(ctx, c, promoter, cp_entry_ladder(e), 0, bought ? 1 : -1);
out:
    return;
}

/* Is entry e of account uid still valid after what identity learned? The customer
 * is not the promoter's person, and: for purchase kinds the entry's order is still
 * the person's first purchase; for K4 the person had not paid before registering. */
static bool cp_entry_valid(dashi_ctx *ctx, const dashi_campaign *c, const json_t *e, const char *uid) {
    dashi_person_info pi;
    const char *promoter = j_str(e, "p");
    const json_t *orders = json_object_get(e, "orders");
    int64_t reg;
    bool ok = false;
    if (c->kind != DASHI_PROGRAM_BUYER_DRAW && promoter && dashi_identity_same_person(ctx, promoter, uid))
        goto out;
    dashi_identity_person(ctx, uid, &pi);
    if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER) {
        reg = j_int(e, "reg", DASHI_INT_NONE);
        ok = pi.first_paid_at == DASHI_TIME_NONE || reg == DASHI_INT_NONE || pi.first_paid_at >= reg;
        goto out;
    }
    ok = (pi.first_order_id[0] && j_arr_has(orders, pi.first_order_id)) ||
         (pi.first_cart_id[0] && str_eq(j_str(e, "cart"), pi.first_cart_id));
out:
    return ok;
}

/* K4: does the entry still hold the person's qualifying first purchase? */
static bool cp_entry_purchase_valid(dashi_ctx *ctx, const json_t *e, const char *uid) {
    dashi_person_info pi;
    const json_t *orders = json_object_get(e, "orders");
    dashi_identity_person(ctx, uid, &pi);
    return (pi.first_order_id[0] && j_arr_has(orders, pi.first_order_id)) ||
           (pi.first_cart_id[0] && str_eq(j_str(e, "cart"), pi.first_cart_id));
}

/* Remember that order o contributed q fen to the entry of account entry_uid in c. */
static void cp_order_note(dashi_ctx *ctx, const dashi_campaign *c, const dashi_order_paid *o, const char *entry_uid,
                          int64_t q) {
    json_t *rec, *progs, *pr;
    if (!(rec = dashi_view_editf(ctx->view, "cp:ord:%s", o->order_id)))
        goto out;
    if (!json_object_get(rec, "uid")) {
        j_set_str(rec, "uid", o->uid);
        j_set_int(rec, "at", o->occurred_at);
        j_set_int(rec, "paid", cp_order_paid(o));
        j_set_int(rec, "ref", 0);
    }
    progs = json_object_get(rec, "progs");
    if (!json_is_object(progs)) {
        progs = json_object();
        json_object_set_new(rec, "progs", progs);
    }
    pr = json_object();
    j_set_str(pr, "u", entry_uid);
    j_set_int(pr, "q", q);
    json_object_set_new(progs, c->id, pr);
out:
    return;
}

/* Take the contribution of an order out of the entry it went to (full refund,
 * risk void): below what the entry needs it drops (K4: the purchase stops counting). */
static void cp_order_withdraw(dashi_ctx *ctx, const dashi_campaign *c, const json_t *ord) {
    const json_t *pr = json_object_get(json_object_get(ord, "progs"), c->id);
    const char *uid = j_str(pr, "u");
    json_t *e;
    int64_t paid;
    if (!uid || j_bool(pr, "w") || !(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, uid)))
        goto out;
    paid = j_int(e, "paid", 0) - j_int(pr, "q", 0);
    j_set_int(e, "paid", paid);
    if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER) {
        if (paid < cp_entry_need(c))
            cp_entry_set_bought(ctx, c, e, false);
    } else if (paid < cp_entry_need(c) && !str_eq(j_str(e, "st"), "dropped")) {
        cp_entry_drop(ctx, c, e, uid);
    }
out:
    return;
}

/* Mark an order's contribution to c as withdrawn (so it is withdrawn once). */
static void cp_order_mark_withdrawn(dashi_ctx *ctx, const dashi_campaign *c, const char *order_id) {
    json_t *rec = dashi_view_editf(ctx->view, "cp:ord:%s", order_id);
    json_t *pr = json_object_get(json_object_get(rec, "progs"), c->id);
    if (json_is_object(pr))
        json_object_set_new(pr, "w", json_true());
}

/* ---------------------------------------------------------------- K1 */

static void cp_bonus_revoke(dashi_ctx *ctx, const dashi_campaign *c, const char *amb, const char *order_id) {
    json_t *p;
    const json_t *pr = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, amb);
    cp_out o;
    int64_t bonus = j_int(pr, "bonus", 0);
    if (!pr || bonus <= 0 || j_bool(pr, "revoked") || (order_id && !str_eq(j_str(pr, "order"), order_id)))
        goto out;
    if (!(p = dashi_view_editf(ctx->view, "cp:%s:p:%s", c->id, amb)))
        goto out;
    json_object_set_new(p, "revoked", json_true());
    cp_out_init(&o, DASHI_CAMP_BONUS_REVOKED);
    o.count = 0;
    o.reward = 0;
    o.delta = -bonus;
    o.customer = j_str(p, "customer");
    cp_emit(ctx, c, amb, &o);
out:
    return;
}

/* Is the order's buyer reached through c's link by promoter, inside the window? */
static bool cp_through_link(dashi_ctx *ctx, const dashi_campaign *c, const dashi_order_paid *o, const char *promoter) {
    const json_t *lk;
    bool ok = false;
    if (o->campaign_id && !str_eq(o->campaign_id, c->campaign_id))
        goto out;
    lk = dashi_view_getf(ctx->view, "cp:lk:%s:%s", c->campaign_id, o->uid);
    ok = lk && cp_in_window(c, j_int(lk, "at", DASHI_INT_NONE)) && (!promoter || str_eq(j_str(lk, "p"), promoter));
out:
    return ok;
}

static int64_t cp_bonus_for(dashi_ctx *ctx, const dashi_campaign *c, const dashi_order_paid *order,
                            const char *amb, int64_t base, int64_t amount) {
    const json_t *pr, *acct;
    json_t *p;
    int64_t bonus = 0, rate = 0, capped, enrolled, first_cm;
    cp_out o;
    if (!cp_in_window(c, ctx->now) || cp_settled(ctx, c))
        goto out;
    pr = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, amb);
    if (j_str(pr, "order")) {
        /* the first order was decided; asking again for it gives the same answer */
        if (str_eq(j_str(pr, "order"), order->order_id) && !j_bool(pr, "revoked"))
            bonus = j_int(pr, "bonus", 0);
        goto out;
    }
    acct = dashi_view_getf(ctx->view, "cp:acct:%s", amb);
    enrolled = j_int(acct, "amb", DASHI_INT_NONE);
    first_cm = j_int(acct, "cm", DASHI_INT_NONE);
    if (!cp_in_window(c, enrolled) && first_cm != DASHI_INT_NONE && first_cm < c->starts_at)
        goto out;
    if (!cp_is_promoter(ctx, c, amb, ctx->now) || !cp_through_link(ctx, c, order, amb))
        goto out;
    for (size_t i = 0; i < c->n_bands; i++)
        if (base >= c->bands[i].min_base && (c->bands[i].max_base == DASHI_INT_NONE || base <= c->bands[i].max_base))
            rate = c->bands[i].rate_bp;
    capped = c->bonus_base_cap != DASHI_INT_NONE && base > c->bonus_base_cap ? c->bonus_base_cap : base;
    bonus = (rate * capped + CP_BP / 2) / CP_BP - amount;
    if (bonus < 0)
        bonus = 0;
    if (!(p = dashi_view_editf(ctx->view, "cp:%s:p:%s", c->id, amb)))
        goto out;
    j_set_str(p, "order", order->order_id);
    j_set_str(p, "customer", order->uid);
    j_set_int(p, "bonus", bonus);
    j_set_int(p, "at", ctx->now);
    if (bonus <= 0)
        goto out;
    cp_index_promoter(ctx, c, amb);
    cp_out_init(&o, DASHI_CAMP_BONUS);
    o.count = 1;
    o.reward = bonus;
    o.delta = bonus;
    o.customer = order->uid;
    cp_emit(ctx, c, amb, &o);
out:
    return bonus;
}

int64_t dashi_campaign_first_order_bonus(dashi_ctx *ctx, const dashi_order_paid *order,
                                         const char *ambassador_uid, int64_t base, int64_t amount) {
    int64_t total = 0;
    if (!ctx || !order || !ambassador_uid || !ctx->rules)
        goto out;
    for (size_t i = 0; i < ctx->rules->n_campaigns; i++)
        if (ctx->rules->campaigns[i].kind == DASHI_PROGRAM_FIRST_ORDER_BONUS)
            total += cp_bonus_for(ctx, &ctx->rules->campaigns[i], order, ambassador_uid, base, amount);
out:
    return total;
}

/* ---------------------------------------------------------------- inputs */

static void cp_on_account_flag(dashi_ctx *ctx, const char *uid, const char *flag, bool set) {
    json_t *acct = dashi_view_editf(ctx->view, "cp:acct:%s", uid);
    json_t *flags, *v;
    size_t i;
    if (!acct || !flag)
        goto out;
    flags = j_arr(acct, "flags");
    if (set) {
        j_arr_add(acct, "flags", flag);
        goto out;
    }
    json_array_foreach(flags, i, v) {
        if (str_eq(json_string_value(v), flag)) {
            json_array_remove(flags, i);
            break;
        }
    }
out:
    return;
}

/* A customer touched promoter's link of campaign_id (last touch wins). */
static void cp_link_touch(dashi_ctx *ctx, const char *campaign_id, const char *uid, const char *promoter,
                          bool registered) {
    json_t *lk;
    if (!campaign_id || !campaign_id[0] || !promoter || !uid || str_eq(promoter, uid))
        goto out;
    if (j_bool(dashi_view_getf(ctx->view, "cp:acct:%s", uid), "bound"))
        goto out;
    if (!(lk = dashi_view_editf(ctx->view, "cp:lk:%s:%s", campaign_id, uid)))
        goto out;
    j_set_str(lk, "p", promoter);
    j_set_int(lk, "at", ctx->now);
    json_object_set_new(lk, "reg", json_boolean(registered));
out:
    return;
}

/* K4: a new user registered through the campaign's link with a method that counts. */
static void cp_on_registered(dashi_ctx *ctx, const dashi_campaign *c, const dashi_account_registered *r) {
    dashi_person_info pi;
    json_t *e, *idx;
    if (!r->referral || !str_eq(r->referral->campaign_id, c->campaign_id) || str_eq(r->referral->ambassador_uid, r->uid))
        goto out;
    if (!cp_in_window(c, ctx->now) || cp_settled(ctx, c))
        goto out;
    if (!strv_has(c->methods, c->n_methods, dashi_enum_name(DASHI_ENUM_METHOD, r->method)))
        goto out;
    if (j_bool(dashi_view_getf(ctx->view, "cp:acct:%s", r->uid), "bound"))
        goto out;
    dashi_identity_person(ctx, r->uid, &pi);
    if (pi.paid_before || dashi_view_getf(ctx->view, "cp:%s:u:%s", c->id, r->uid))
        goto out;
    if (!(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, r->uid)))
        goto out;
    j_set_str(e, "p", r->referral->ambassador_uid);
    j_set_str(e, "st", "reg");
    j_set_int(e, "reg", ctx->now);
    j_set_int(e, "paid", 0);
    if (pi.person_id[0] && (idx = dashi_view_editf(ctx->view, "cp:%s:pi:%s", c->id, pi.person_id)) != NULL)
        j_arr_add(idx, "u", r->uid);
out:
    return;
}

/* K4: does another account in list (JSON array of uids) count in c and belong to uid's person? */
static bool cp_list_has_person(dashi_ctx *ctx, const dashi_campaign *c, const json_t *list, const char *uid) {
    const json_t *v;
    size_t i;
    bool found = false;
    json_array_foreach(list, i, v) {
        const char *other = json_string_value(v);
        const json_t *e2;
        if (!other || str_eq(other, uid))
            continue;
        e2 = dashi_view_getf(ctx->view, "cp:%s:u:%s", c->id, other);
        if (str_eq(j_str(e2, "st"), "counted") && dashi_identity_same_person(ctx, other, uid)) {
            found = true;
            break;
        }
    }
    return found;
}

/* K4: another account of uid's person already counts in c: among the accounts
 * indexed under the person, or among the promoter's counted users (which also
 * catches a person whose id changed in a merge this module was not told about). */
static bool cp_person_counted(dashi_ctx *ctx, const dashi_campaign *c, const char *person_id, const char *uid,
                              const char *promoter) {
    const json_t *idx = person_id[0] ? dashi_view_getf(ctx->view, "cp:%s:pi:%s", c->id, person_id) : NULL;
    const json_t *pr = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, promoter);
    return cp_list_has_person(ctx, c, json_object_get(idx, "u"), uid) ||
           cp_list_has_person(ctx, c, json_object_get(pr, "u"), uid);
}

/* K4: real-name verification of a registered invitee: counts on the ladder of its kind. */
static void cp_on_verified(dashi_ctx *ctx, const dashi_campaign *c, const dashi_real_name_verified *v) {
    dashi_person_info pi;
    const json_t *e0 = dashi_view_getf(ctx->view, "cp:%s:u:%s", c->id, v->uid);
    json_t *e;
    size_t li = c->n_ladders;
    if (!str_eq(j_str(e0, "st"), "reg") || !cp_in_window(c, ctx->now) || cp_settled(ctx, c))
        goto out;
    for (size_t i = 0; i < c->n_ladders && li == c->n_ladders; i++)
        if (c->ladders[i].account_kind == DASHI_ENUM_NONE || c->ladders[i].account_kind == v->kind)
            li = i;
    if (li == c->n_ladders || !cp_is_promoter(ctx, c, j_str(e0, "p"), ctx->now))
        goto out;
    if (!(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, v->uid)))
        goto out;
    dashi_identity_person(ctx, v->uid, &pi);
    if (!cp_entry_valid(ctx, c, e, v->uid) || cp_person_counted(ctx, c, pi.person_id, v->uid, j_str(e0, "p"))) {
        cp_entry_drop(ctx, c, e, v->uid);
        goto out;
    }
    j_set_int(e, "li", (int64_t)li);
    cp_entry_count(ctx, c, e, v->uid);
out:
    return;
}

/* K4: a first purchase of a person with a registration entry. */
static void cp_on_order_verified(dashi_ctx *ctx, const dashi_campaign *c, const dashi_order_paid *o,
                                 const dashi_person_info *pi) {
    char uid[256];
    const json_t *idx, *v;
    json_t *e;
    size_t i;
    int64_t q;
    const char *st;
    uid[0] = '\0';
    if (!cp_in_window(c, ctx->now) || cp_settled(ctx, c) || o->order_type != DASHI_ORDER_NEW ||
        !cp_is_first_purchase(pi, o->order_id, o->cart_id))
        goto out;
    if (dashi_view_getf(ctx->view, "cp:%s:u:%s", c->id, o->uid)) {
        snprintf(uid, sizeof uid, "%s", o->uid);
    } else if (pi->person_id[0]) {
        idx = dashi_view_getf(ctx->view, "cp:%s:pi:%s", c->id, pi->person_id);
        json_array_foreach(json_object_get(idx, "u"), i, v) {
            if (json_string_value(v) && dashi_identity_same_person(ctx, json_string_value(v), o->uid)) {
                snprintf(uid, sizeof uid, "%s", json_string_value(v));
                break;
            }
        }
    }
    q = cp_qualifying_paid(c, o, false);
    if (!uid[0] || q <= 0 || !(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, uid)))
        goto out;
    st = j_str(e, "st");
    if (!str_eq(st, "reg") && !str_eq(st, "counted"))
        goto out;
    if (o->cart_id && o->cart_id[0])
        j_set_str(e, "cart", o->cart_id);
    j_arr_add(e, "orders", o->order_id);
    j_set_int(e, "paid", j_int(e, "paid", 0) + q);
    cp_order_note(ctx, c, o, uid, q);
    if (j_int(e, "paid", 0) >= cp_entry_need(c))
        cp_entry_set_bought(ctx, c, e, true);
out:
    return;
}

/* K2, K3, K5, K6, K7: a first purchase through the campaign. */
static void cp_on_order_purchase(dashi_ctx *ctx, const dashi_campaign *c, const dashi_order_paid *o,
                                 const dashi_person_info *pi) {
    char promoter[256];
    const json_t *lk;
    json_t *e;
    const char *st;
    int64_t q;
    if (!cp_in_window(c, ctx->now) || cp_settled(ctx, c) || o->order_type != DASHI_ORDER_NEW ||
        !cp_is_first_purchase(pi, o->order_id, o->cart_id))
        goto out;
    if (o->campaign_id && !str_eq(o->campaign_id, c->campaign_id))
        goto out;
    lk = dashi_view_getf(ctx->view, "cp:lk:%s:%s", c->campaign_id, o->uid);
    if (!lk || !cp_in_window(c, j_int(lk, "at", DASHI_INT_NONE)))
        lk = NULL;
    if (c->kind == DASHI_PROGRAM_BUYER_DRAW) {
        /* buyer side: the buyer is the one rewarded, reached through the campaign page */
        if (!lk && !o->campaign_id)
            goto out;
        snprintf(promoter, sizeof promoter, "%s", o->uid);
    } else {
        if (!lk)
            goto out;
        snprintf(promoter, sizeof promoter, "%s", j_str(lk, "p") ? j_str(lk, "p") : "");
        if (str_eq(promoter, o->uid) || !cp_is_promoter(ctx, c, promoter, ctx->now) ||
            dashi_identity_same_person(ctx, promoter, o->uid))
            goto out;
    }
    q = cp_qualifying_paid(c, o, cp_is_designated_kind(c));
    if (q <= 0 || !(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, o->uid)))
        goto out;
    st = j_str(e, "st");
    if (str_eq(st, "dropped"))
        goto out;
    if (!st) {
        j_set_str(e, "p", promoter);
        j_set_str(e, "st", "pending");
        j_set_int(e, "paid", 0);
    }
    if (o->cart_id && o->cart_id[0])
        j_set_str(e, "cart", o->cart_id);
    j_arr_add(e, "orders", o->order_id);
    j_set_int(e, "paid", j_int(e, "paid", 0) + q);
    cp_order_note(ctx, c, o, o->uid, q);
    if (str_eq(j_str(e, "st"), "pending") && j_int(e, "paid", 0) >= cp_entry_need(c))
        cp_entry_count(ctx, c, e, o->uid);
out:
    return;
}

/* A refund in full inside the refund window takes the order out of every campaign it
 * counted in. Refunds and downgrades add up: "in full" is when nothing paid is left. */
static void cp_on_refund(dashi_ctx *ctx, const dashi_order_refunded *r) {
    json_t *ord;
    const dashi_ruleset *set;
    const char *key;
    json_t *pr;
    int64_t at;
    /* only orders that went into some campaign have a record (a refund never creates one) */
    if (!dashi_view_getf(ctx->view, "cp:ord:%s", r->order_id) ||
        !(ord = dashi_view_editf(ctx->view, "cp:ord:%s", r->order_id)))
        goto out;
    j_set_int(ord, "ref", j_int(ord, "ref", 0) + r->amount);
    if (j_bool(ord, "full") || j_int(ord, "ref", 0) < j_int(ord, "paid", 0))
        goto out;
    json_object_set_new(ord, "full", json_true());
    at = j_int(ord, "at", DASHI_INT_NONE);
    set = dashi_rules_at(ctx->rules, at);
    if (ctx->now >= at + set->refund_window_days * DASHI_MS_PER_DAY)
        goto out;
    json_object_foreach(json_object_get(ord, "progs"), key, pr) {
        const dashi_campaign *c = cp_find(ctx->rules, key);
        if (!c || cp_settled(ctx, c) || j_bool(pr, "w"))
            continue;
        cp_order_withdraw(ctx, c, ord);
        json_object_set_new(pr, "w", json_true());
    }
out:
    return;
}

/* Risk VOID naming a campaign: of one order (order_id) or of everything the promoter has in it. */
static void cp_on_risk(dashi_ctx *ctx, const dashi_risk_action *ra) {
    for (size_t i = 0; ra->action == DASHI_RISK_VOID && ra->campaign_id && i < ctx->rules->n_campaigns; i++) {
        const dashi_campaign *c = &ctx->rules->campaigns[i];
        const json_t *ord, *pr, *v;
        json_t *p, *e, *list;
        size_t k;
        if (!str_eq(c->campaign_id, ra->campaign_id) || cp_settled(ctx, c))
            continue;
        if (c->kind == DASHI_PROGRAM_FIRST_ORDER_BONUS) {
            cp_bonus_revoke(ctx, c, ra->ambassador_uid, ra->order_id);
            continue;
        }
        if (ra->order_id) {
            ord = dashi_view_getf(ctx->view, "cp:ord:%s", ra->order_id);
            pr = json_object_get(json_object_get(ord, "progs"), c->id);
            if (!j_str(pr, "u") || j_bool(pr, "w") ||
                !(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, j_str(pr, "u"))) ||
                !str_eq(j_str(e, "p"), ra->ambassador_uid))
                continue;
            if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER) {
                cp_order_withdraw(ctx, c, ord);
                cp_order_mark_withdrawn(ctx, c, ra->order_id);
            } else {
                cp_entry_drop(ctx, c, e, j_str(pr, "u"));
            }
            continue;
        }
        if (!(p = dashi_view_editf(ctx->view, "cp:%s:p:%s", c->id, ra->ambassador_uid)))
            continue;
        json_object_set_new(p, "void", json_true());
        list = json_deep_copy(json_object_get(p, "u"));
        json_array_foreach(list, k, v) {
            const char *uid = json_string_value(v);
            if (uid && (e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, uid)) != NULL &&
                str_eq(j_str(e, "p"), ra->ambassador_uid))
                cp_entry_drop(ctx, c, e, uid);
        }
        json_decref(list);
    }
}

dashi_err dashi_campaign_on_event(dashi_ctx *ctx, const dashi_event *ev) {
    dashi_person_info pi;
    json_t *acct, *enr;
    if (!ctx || !ev || !ctx->rules)
        goto out;
    switch (ev->type) {
    case DASHI_EV_AMBASSADOR_ENROLLED:
        if ((acct = dashi_view_editf(ctx->view, "cp:acct:%s", ev->u.ambassador_enrolled.uid)) &&
            !json_object_get(acct, "amb"))
            j_set_int(acct, "amb", ctx->now);
        break;
    case DASHI_EV_CAMPAIGN_ENROLLED:
        if (!(acct = dashi_view_editf(ctx->view, "cp:acct:%s", ev->u.campaign_enrolled.uid)))
            break;
        enr = json_object_get(acct, "enr");
        if (!json_is_object(enr)) {
            enr = json_object();
            json_object_set_new(acct, "enr", enr);
        }
        if (!json_object_get(enr, ev->u.campaign_enrolled.campaign_id))
            j_set_int(enr, ev->u.campaign_enrolled.campaign_id, ctx->now);
        break;
    case DASHI_EV_ACCOUNT_FLAGGED:
        cp_on_account_flag(ctx, ev->u.account_flagged.uid,
                           dashi_enum_name(DASHI_ENUM_FLAG, ev->u.account_flagged.flag), ev->u.account_flagged.set);
        break;
    case DASHI_EV_CUSTOMER_BOUND:
        if ((acct = dashi_view_editf(ctx->view, "cp:acct:%s", ev->u.customer_bound.uid)) != NULL)
            json_object_set_new(acct, "bound", json_true());
        break;
    case DASHI_EV_ACCOUNT_REGISTERED: {
        const dashi_account_registered *r = &ev->u.account_registered;
        if (r->referral)
            cp_link_touch(ctx, r->referral->campaign_id, r->uid, r->referral->ambassador_uid, true);
        for (size_t i = 0; i < ctx->rules->n_campaigns; i++)
            if (ctx->rules->campaigns[i].kind == DASHI_PROGRAM_VERIFIED_LADDER)
                cp_on_registered(ctx, &ctx->rules->campaigns[i], r);
        break;
    }
    case DASHI_EV_LINK_VISITED: {
        const dashi_link_visited *lv = &ev->u.link_visited;
        if (lv->logged_in)
            cp_link_touch(ctx, lv->campaign_id, lv->uid, lv->ambassador_uid, false);
        break;
    }
    case DASHI_EV_REAL_NAME_VERIFIED:
        for (size_t i = 0; i < ctx->rules->n_campaigns; i++)
            if (ctx->rules->campaigns[i].kind == DASHI_PROGRAM_VERIFIED_LADDER)
                cp_on_verified(ctx, &ctx->rules->campaigns[i], &ev->u.real_name_verified);
        break;
    case DASHI_EV_ORDER_PAID: {
        const dashi_order_paid *o = &ev->u.order_paid;
        dashi_identity_person(ctx, o->uid, &pi);
        for (size_t i = 0; i < ctx->rules->n_campaigns; i++) {
            const dashi_campaign *c = &ctx->rules->campaigns[i];
            if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER)
                cp_on_order_verified(ctx, c, o, &pi);
            else if (cp_is_purchase_kind(c))
                cp_on_order_purchase(ctx, c, o, &pi);
        }
        break;
    }
    case DASHI_EV_ORDER_REFUNDED:
        cp_on_refund(ctx, &ev->u.order_refunded);
        break;
    case DASHI_EV_RISK_ACTION:
        cp_on_risk(ctx, &ev->u.risk_action);
        break;
    default:
        break;
    }
out:
    return DASHI_OK;
}

/* ---------------------------------------------------------------- calls from other modules */

void dashi_campaign_on_commission(dashi_ctx *ctx, const dashi_commission_event *ce) {
    const json_t *acct, *ord, *pr;
    json_t *a, *e;
    if (!ctx || !ce || !ce->ambassador_uid || !ctx->rules)
        goto out;
    if (ce->event == DASHI_CE_PENDING) {
        acct = dashi_view_getf(ctx->view, "cp:acct:%s", ce->ambassador_uid);
        if (!json_object_get(acct, "cm") && (a = dashi_view_editf(ctx->view, "cp:acct:%s", ce->ambassador_uid)))
            j_set_int(a, "cm", ce->occurred_at != DASHI_TIME_NONE ? ce->occurred_at : ctx->now);
        goto out;
    }
    if (ce->event != DASHI_CE_CANCELLED || !ce->order_id)
        goto out;
    ord = dashi_view_getf(ctx->view, "cp:ord:%s", ce->order_id);
    for (size_t i = 0; i < ctx->rules->n_campaigns; i++) {
        const dashi_campaign *c = &ctx->rules->campaigns[i];
        const char *uid;
        if (cp_settled(ctx, c))
            continue;
        if (c->kind == DASHI_PROGRAM_FIRST_ORDER_BONUS) {
            cp_bonus_revoke(ctx, c, ce->ambassador_uid, ce->order_id);
            continue;
        }
        pr = json_object_get(json_object_get(ord, "progs"), c->id);
        uid = j_str(pr, "u");
        if (!uid || j_bool(pr, "w") || !(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, uid)))
            continue;
        if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER) {
            /* the purchase behind a verified user is void; the user may stay verified */
            cp_order_withdraw(ctx, c, ord);
            cp_order_mark_withdrawn(ctx, c, ce->order_id);
            if (!cp_entry_valid(ctx, c, e, uid))
                cp_entry_drop(ctx, c, e, uid);
        } else if (str_eq(j_str(e, "p"), ce->ambassador_uid) || !cp_entry_valid(ctx, c, e, uid)) {
            cp_entry_drop(ctx, c, e, uid);
        }
    }
out:
    return;
}

typedef struct cp_member {
    const char *uid;
    json_t *e;
    char person[64];
    int64_t at;
} cp_member;

/* Same person: re-check every entry of the accounts, keep one counted account per person. */
void dashi_campaign_on_person_change(dashi_ctx *ctx, const char *const *uids, size_t n) {
    cp_member *m = NULL;
    if (!ctx || !uids || n == 0 || !ctx->rules || !(m = calloc(n, sizeof *m)))
        goto out;
    for (size_t i = 0; i < ctx->rules->n_campaigns; i++) {
        const dashi_campaign *c = &ctx->rules->campaigns[i];
        size_t nm = 0;
        if (c->kind == DASHI_PROGRAM_FIRST_ORDER_BONUS || cp_settled(ctx, c))
            continue;
        for (size_t k = 0; k < n; k++) {
            dashi_person_info pi;
            json_t *e, *idx;
            const char *st;
            if (!uids[k] || !dashi_view_getf(ctx->view, "cp:%s:u:%s", c->id, uids[k]) ||
                !(e = dashi_view_editf(ctx->view, "cp:%s:u:%s", c->id, uids[k])))
                continue;
            st = j_str(e, "st");
            if (str_eq(st, "dropped"))
                continue;
            if (!cp_entry_valid(ctx, c, e, uids[k])) {
                cp_entry_drop(ctx, c, e, uids[k]);
                continue;
            }
            if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER && j_bool(e, "bought") &&
                !cp_entry_purchase_valid(ctx, e, uids[k]))
                cp_entry_set_bought(ctx, c, e, false);
            dashi_identity_person(ctx, uids[k], &pi);
            if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER && pi.person_id[0] &&
                (idx = dashi_view_editf(ctx->view, "cp:%s:pi:%s", c->id, pi.person_id)) != NULL)
                j_arr_add(idx, "u", uids[k]);
            if (!str_eq(st, "counted"))
                continue;
            m[nm].uid = uids[k];
            m[nm].e = e;
            snprintf(m[nm].person, sizeof m[nm].person, "%s", pi.person_id);
            m[nm].at = j_int(e, "at", 0);
            nm++;
        }
        /* one person counts once: the account counted first stays */
        for (size_t a = 0; a < nm; a++) {
            bool later = false;
            for (size_t b = 0; b < nm && !later; b++) {
                if (a == b || !m[a].person[0] || strcmp(m[a].person, m[b].person) != 0 ||
                    !str_eq(j_str(m[b].e, "st"), "counted"))
                    continue;
                later = m[b].at < m[a].at || (m[b].at == m[a].at && strcmp(m[b].uid, m[a].uid) < 0);
            }
            if (later)
                cp_entry_drop(ctx, c, m[a].e, m[a].uid);
        }
    }
out:
    free(m);
}

/* ---------------------------------------------------------------- settlement */

typedef struct cp_rank {
    const char *uid;
    int64_t count, reached;
} cp_rank;

static int cp_rank_cmp(const void *pa, const void *pb) {
    const cp_rank *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    if (a->reached != b->reached)
        return a->reached < b->reached ? -1 : 1;
    return strcmp(a->uid, b->uid);
}

static void cp_settle_leaderboard(dashi_ctx *ctx, const dashi_campaign *c, const char **list, size_t n_list) {
    cp_rank *r = calloc(n_list + 1, sizeof *r);
    size_t n = 0;
    cp_out o;
    if (!r)
        goto out;
    for (size_t i = 0; i < n_list; i++) {
        const json_t *p = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, list[i]);
        int64_t count = j_int(json_array_get(json_object_get(p, "l"), 0), "n", 0);
        if (count <= 0)
            continue;
        r[n].uid = list[i];
        r[n].count = count;
        r[n].reached = json_integer_value(json_array_get(json_object_get(p, "t"), (size_t)count - 1));
        n++;
    }
    qsort(r, n, sizeof *r, cp_rank_cmp);
    for (size_t i = 0; i < n; i++) {
        cp_out_init(&o, DASHI_CAMP_RANK);
        o.ladder = cp_ladder_name(c, 0);
        o.count = r[i].count;
        o.rank = (int64_t)i + 1;
        cp_emit(ctx, c, r[i].uid, &o);
    }
out:
    free(r);
}

static void cp_settle_promoter(dashi_ctx *ctx, const dashi_campaign *c, const char *uid) {
    const json_t *p = dashi_view_getf(ctx->view, "cp:%s:p:%s", c->id, uid);
    const json_t *l;
    size_t li;
    cp_out o;
    if (c->kind == DASHI_PROGRAM_FIRST_ORDER_BONUS) {
        bool valid = !j_bool(p, "revoked") && j_int(p, "bonus", 0) > 0;
        cp_out_init(&o, DASHI_CAMP_SETTLED);
        o.count = valid ? 1 : 0;
        o.reward = valid ? j_int(p, "bonus", 0) : 0;
        o.customer = j_str(p, "customer");
        cp_emit(ctx, c, uid, &o);
        goto out;
    }
    json_array_foreach(json_object_get(p, "l"), li, l) {
        if (!json_object_get(l, "n"))
            continue;
        cp_out_init(&o, DASHI_CAMP_SETTLED);
        o.ladder = cp_ladder_name(c, li);
        o.count = j_int(l, "n", 0);
        o.reward = j_int(l, "r", 0);
        cp_emit(ctx, c, uid, &o);
    }
out:
    return;
}

static int cp_str_cmp(const void *pa, const void *pb) {
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Every promoter on c's settlement list, sorted by uid (borrowed strings; caller
 * frees the array). */
static const char **cp_promoters(dashi_ctx *ctx, const dashi_campaign *c, size_t *n_out) {
    const char **all = NULL;
    size_t n = 0, cap = 0;
    for (unsigned b = 0; b < CP_IDX_BUCKETS; b++) {
        const json_t *list = json_object_get(dashi_view_getf(ctx->view, "cp:%s:idx:%02x", c->id, b), "p");
        const json_t *v;
        size_t i;
        json_array_foreach(list, i, v) {
            if (!json_string_value(v))
                continue;
            if (n == cap) {
                const char **grown = realloc(all, (cap = cap ? cap * 2 : 64) * sizeof *all);
                if (!grown)
                    abort(); /* out of memory in the middle of a step: nothing sane to do */
                all = grown;
            }
            all[n++] = json_string_value(v);
        }
    }
    if (n > 1)
        qsort(all, n, sizeof *all, cp_str_cmp);
    *n_out = n;
    return all;
}

dashi_err dashi_campaign_on_timer(dashi_ctx *ctx, const char *timer_id, const json_t *payload) {
    const dashi_campaign *c;
    const char **list = NULL;
    json_t *st;
    size_t n = 0;
    (void)payload;
    if (!ctx || !timer_id || strncmp(timer_id, CP_TIMER_PREFIX, strlen(CP_TIMER_PREFIX)) != 0)
        goto out;
    c = cp_find(ctx->rules, timer_id + strlen(CP_TIMER_PREFIX));
    if (!c || dashi_view_getf(ctx->view, "cp:%s:st", c->id) || !(st = dashi_view_editf(ctx->view, "cp:%s:st", c->id)))
        goto out;
    j_set_int(st, "settled", ctx->now);
    if (cp_is_draw_kind(c))
        goto out; /* draws carry no amount: DRAW_GRANTED / DRAW_REVOKED are their final word */
    list = cp_promoters(ctx, c, &n);
    if (c->kind == DASHI_PROGRAM_LEADERBOARD) {
        cp_settle_leaderboard(ctx, c, list, n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        cp_settle_promoter(ctx, c, list[i]);
out:
    free(list);
    return DASHI_OK;
}
