/* inspect.h — `dashi inspect`: the stored records of a customer, person, ambassador, campaign or order, shown readably and without identity values.
 *
 * Where `dashi explain` says why, inspect shows what is stored: the JSON records
 * the rules modules keep (layouts in the headers of core/identity.c,
 * core/commission.c and core/campaign.c; the README's "State layout"), read
 * through the state ops only — mget one key, scan a prefix (app/records.c, the
 * reader app/explain.c uses too) — so it works on a Redis state of `dashi replay --state` or `dashi run` (and on
 * any dashi_state). Each record is printed under its key, indented, keys sorted,
 * with two changes for reading: instants stored as epoch milliseconds are written
 * as CST times, and identity attribute ids (the keyed hashes of identity.c, e.g.
 * "P1.<43 characters>") are cut to their kind, key version and first 8 hash
 * characters, "P1.sb_UBPRQ…". The state never holds a clear identity value (S7),
 * so nothing else needs hiding. Keys that are not stored are listed at the end.
 */
#ifndef DASHI_INSPECT_H
#define DASHI_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "core/error.h"
#include "core/rules.h"
#include "core/state.h"

#define DASHI_INSPECT_HASH_SHOWN 8 /* hash characters kept of an attribute id */

typedef enum dashi_inspect_what {
    DASHI_INSPECT_CUSTOMER,   /* acct:, asc:, cp:acct:, link touches and campaign entries, its orders */
    DASHI_INSPECT_PERSON,     /* the person of an account: every member's acct:, the attributes of their edges */
    DASHI_INSPECT_AMBASSADOR, /* amb:, acct:, cp:acct:, its promoter records in every campaign */
    DASHI_INSPECT_CAMPAIGN,   /* cp:<id>:st and every promoter (one line each), or one promoter in full */
    DASHI_INSPECT_ORDER,      /* ord: (with its commission outcome) and cp:ord: */
} dashi_inspect_what;

/* Print what the state st (borrowed) holds about id to out. rules (borrowed) name
 * the campaigns whose keys are looked up; for DASHI_INSPECT_CAMPAIGN, id is a
 * program id ("K2") or a link campaign id ("invite-2206": each of its programs),
 * and promoter (may be NULL: all promoters, one line each) picks one promoter.
 * DASHI_ERR_NOT_FOUND when no record of id is stored (nothing printed but a
 * line saying so); a back-end error as the store returned it. */
dashi_err dashi_inspect(dashi_state *st, const dashi_rules *rules, dashi_inspect_what what, const char *id,
                        const char *promoter, FILE *out, char *errstr, size_t errstr_size);

/* Is s an identity attribute id ("<P|E|I|D><version digits or h>.<at least 20 base64url chars>")? */
bool dashi_inspect_is_attr_id(const char *s);

/* A readable deep copy of rec: attribute ids (values and object keys) cut to
 * "<kind><version>.<8 chars>…", integers that are instants (epoch ms in
 * 2000..2100) written as CST text. New reference; NULL on out of memory. */
json_t *dashi_inspect_readable(const json_t *rec);

#endif
