/* explain.h — `dashi explain`: the decisions behind an order, a customer or a campaign promoter, in plain words with their rule IDs.
 *
 * Explain reads the state the rules modules left (their file headers document the
 * records: acct:/attr: of identity.c, asc:/amb:/ord: of commission.c, cp: of
 * campaign.c) through the state ops only (mget, scan), so it works the same on a
 * fresh in-memory replay (dashi_explain_replay) and on the Redis state of an earlier
 * `dashi replay --state` or `dashi run`. It never re-runs a rule: each line says
 * what the state records and names the rule IDs of RULES.md behind it. Where the
 * state does not keep a fact (an earlier association, the single refunds, why a
 * campaign entry dropped) the text says so, and a reason worked out from what is
 * kept is marked "inferred". Identity values appear only as kinds and 8-character
 * hash prefixes, as in identity alerts.
 */
#ifndef DASHI_EXPLAIN_H
#define DASHI_EXPLAIN_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"
#include "core/time.h"

/* Replay NDJSON events from in (name for messages) in event-time order into a new
 * in-memory state, then move the clock to until (DASHI_TIME_NONE: no advance) so
 * timers up to it fire. Refused lines go to rejects as "name:line: reason" (NULL:
 * counted only). *out is the state (free with dashi_state_destroy); *n_events and
 * *n_rejected (either may be NULL) count applied and refused events. */
dashi_err dashi_explain_replay(FILE *in, const char *name, const dashi_rules *rules, const dashi_keyring *keys,
                               dashi_time until, FILE *rejects, dashi_state **out, size_t *n_events,
                               size_t *n_rejected, char *errstr, size_t errstr_size);

/* Why order_id ended as it did: association, person, first purchase, base, rate,
 * cap, review, instalments, refunds, outcome and campaigns. DASHI_ERR_NOT_FOUND
 * when the state has no such order (orders paying 0 fen are never recorded, C1). */
dashi_err dashi_explain_order(dashi_state *st, const dashi_rules *rules, const char *order_id, FILE *out,
                              char *errstr, size_t errstr_size);

/* A customer account: its person, association, every order with its outcome, and
 * its campaign entries. DASHI_ERR_NOT_FOUND when the state knows nothing of uid. */
dashi_err dashi_explain_customer(dashi_state *st, const dashi_rules *rules, const char *uid, FILE *out,
                                 char *errstr, size_t errstr_size);

/* A promoter in a campaign: campaign is a program id ("K2") or a link campaign id
 * ("invite-2206": every program of it). Counted users, the step reached per ladder,
 * and why each user reached through the promoter's link is not counted (K rules).
 * DASHI_ERR_NOT_FOUND when no campaign has that id. */
dashi_err dashi_explain_campaign(dashi_state *st, const dashi_rules *rules, const char *campaign,
                                 const char *promoter, FILE *out, char *errstr, size_t errstr_size);

#endif
