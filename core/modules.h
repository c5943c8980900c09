/* modules.h — the rules modules and the calls between them.
 *
 * The engine calls, for every input event, identity then commission then campaign
 * (so a decision about an order sees the identity graph already updated by the
 * same event), and for every timer the module that owns the timer id prefix:
 * "sp:" identity, "cm:" commission (association, review, tiers), "cp:" campaign.
 * Modules talk to each other only through the functions below.
 *
 * Order inside one step: commission calls dashi_identity_record_payment() while it
 * handles an OrderPaid, so when campaign runs afterwards the person is already
 * paid; campaign recognises the first purchase by first_order_id / first_cart_id.
 *
 * State key prefixes (each module owns its own): identity "acct:", "person:",
 * "attr:"; commission "asc:", "amb:", "ord:", "cm:"; campaign "cp:".
 */
#ifndef DASHI_MODULES_H
#define DASHI_MODULES_H

#include <stdbool.h>

#include <jansson.h>

#include "core/ctx.h"

/* ---- identity.c — same person (RULES S1–S7, R2) ---- */
dashi_err dashi_identity_on_event(dashi_ctx *ctx, const dashi_event *ev);
dashi_err dashi_identity_on_timer(dashi_ctx *ctx, const char *timer_id, const json_t *payload);

typedef struct dashi_person_info {
    char person_id[64];             /* person the account belongs to ("" when account unknown) */
    bool known;                     /* account registered (or seen) */
    bool paid_before;               /* the person has a paid (> 0) order (S4, C1) */
    dashi_time first_paid_at;       /* when the person first paid; DASHI_TIME_NONE if never */
    char first_order_id[DASHI_MAX_ID_LEN + 1]; /* the person's first paid order (an id fits whole) */
    char first_cart_id[DASHI_MAX_ID_LEN + 1];  /* its cart ("" when none) */
} dashi_person_info;

/* Person of account uid as of now. Unknown accounts get person_id "" and known=false. */
void dashi_identity_person(dashi_ctx *ctx, const char *uid, dashi_person_info *out);
/* Are the two accounts the same person now? */
bool dashi_identity_same_person(dashi_ctx *ctx, const char *uid_a, const char *uid_b);
/* An order paying > 0 was paid by uid: the person becomes an old user (C1, S4).
 * Records the first paid order/cart of the person when it is the first. */
void dashi_identity_record_payment(dashi_ctx *ctx, const char *uid, const char *order_id,
                                   const char *cart_id, dashi_time at);

/* ---- commission.c — association, commission, tiers, points (A, C, T, P, R3) ---- */
dashi_err dashi_commission_on_event(dashi_ctx *ctx, const dashi_event *ev);
dashi_err dashi_commission_on_timer(dashi_ctx *ctx, const char *timer_id, const json_t *payload);
/* Identity tells: accounts uids[0..n) became one person with a new member or a new
 * link found after the fact (S4 decision, S5). Commission cancels what is in review. */
void dashi_commission_on_person_change(dashi_ctx *ctx, const char *const *uids, size_t n);

/* ---- campaign.c — campaigns (K1–K7) ---- */
dashi_err dashi_campaign_on_event(dashi_ctx *ctx, const dashi_event *ev);
dashi_err dashi_campaign_on_timer(dashi_ctx *ctx, const char *timer_id, const json_t *payload);
/* Commission tells campaigns about each commission outcome change of an order
 * (the CommissionEvent just emitted), so counts follow validity. */
void dashi_campaign_on_commission(dashi_ctx *ctx, const dashi_commission_event *ce);
void dashi_campaign_on_person_change(dashi_ctx *ctx, const char *const *uids, size_t n);
/* K1: commission asks, when it creates the PENDING commission of an order, for the
 * first-order bonus of that order (yunqi; 0 when the order does not qualify). The
 * campaign module records it and emits the BONUS CampaignEvent; commission writes
 * the same number into the CommissionEvent's bonus_amount. amount is the normal
 * commission as granted (after the C9 cap). */
int64_t dashi_campaign_first_order_bonus(dashi_ctx *ctx, const dashi_order_paid *order,
                                         const char *ambassador_uid, int64_t base, int64_t amount);

#endif
