/* event.c — the events of EVENTS.md: descriptor tables, JSON form, validation, life cycle.
 *
 * Each struct of event.h has one descriptor table (core/event_desc.h): field name,
 * kind, offset, flags. A handful of generic walkers do everything per field kind:
 * record_from_json (type checks and conversion), dashi_event_validate (semantic
 * checks on the built struct, shared with the Avro decoder), record_to_json,
 * record_copy and dashi_record_clear. Adding a field to an event is one table row.
 * Errors name the field path ("items[0].paid_amount: ...") so a dead-lettered record
 * says exactly what was wrong with it; the paths are built without printf, since
 * every field of every event read gets one. dashi_event_dump writes the text
 * straight from the struct (record_write), byte for byte what jansson writes of
 * record_to_json's tree, because it runs for every output and every input's
 * de-duplication digest. Nothing here allocates through aborting helpers except
 * dashi_strdup, whose contract says so.
 */
#include "core/event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event_desc.h"
#include "core/json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PATH_MAX_LEN 256

/* ---------------------------------------------------------------------------------- */
/* enumerations                                                                       */
/* ---------------------------------------------------------------------------------- */

static const char *const sym_account_type[] = {"PERSONAL", "ENTERPRISE"};
static const char *const sym_method[] = {"PASSWORD", "PHONE_CODE", "OTHER"};
static const char *const sym_identity_kind[] = {"PHONE", "EMAIL", "ID_DOC", "DEVICE"};
static const char *const sym_flag[] = {"EMPLOYEE", "OUTSOURCED", "ENTERPRISE_CERTIFIED",
                                       "PARTNER_SALES"};
static const char *const sym_binding[] = {"DISTRIBUTOR", "CBM", "TELESALES", "PPL"};
static const char *const sym_order_type[] = {"NEW", "RENEWAL", "UPGRADE"};
static const char *const sym_billing[] = {"PREPAID", "POSTPAID"};
static const char *const sym_refund_kind[] = {"REFUND", "DOWNGRADE"};
static const char *const sym_risk_action[] = {"FREEZE", "UNFREEZE", "VOID"};
static const char *const sym_sp_status[] = {"NEW_PERSON", "SAME_PERSON"};
static const char *const sym_commission_kind[] = {"PENDING",   "ADJUSTED", "CANCELLED",
                                                  "CONFIRMED", "CLAWBACK", "REJECTED"};
static const char *const sym_customer_kind[] = {"PURE_NEW", "REGISTERED_NEW"};
static const char *const sym_tier[] = {"DISCIPLE", "HALL_MASTER", "HELMSMAN", "HEAD"};
static const char *const sym_campaign_kind[] = {
    "PROGRESS", "TIER_REACHED", "TIER_LOST",     "DRAW_GRANTED", "DRAW_REVOKED",
    "BONUS",    "BONUS_REVOKED", "RANK", "SETTLED"};
static const char *const sym_unit[] = {"CNY", "YUNQI"};
static const char *const sym_severity[] = {"LOW", "MEDIUM", "HIGH"};

static const struct {
    const char *avro_name;
    const char *const *symbols;
    int n;
} enum_tables[DASHI_ENUM__COUNT] = {
#define ENUM_ROW(k, name, syms) [k] = {name, syms, (int)ARRAY_LEN(syms)}
    ENUM_ROW(DASHI_ENUM_ACCOUNT_TYPE, "AccountType", sym_account_type),
    ENUM_ROW(DASHI_ENUM_METHOD, "RegistrationMethod", sym_method),
    ENUM_ROW(DASHI_ENUM_IDENTITY_KIND, "IdentityKind", sym_identity_kind),
    ENUM_ROW(DASHI_ENUM_FLAG, "AccountFlag", sym_flag),
    ENUM_ROW(DASHI_ENUM_BINDING, "Binding", sym_binding),
    ENUM_ROW(DASHI_ENUM_ORDER_TYPE, "OrderType", sym_order_type),
    ENUM_ROW(DASHI_ENUM_BILLING, "Billing", sym_billing),
    ENUM_ROW(DASHI_ENUM_REFUND_KIND, "RefundKind", sym_refund_kind),
    ENUM_ROW(DASHI_ENUM_RISK_ACTION, "RiskActionKind", sym_risk_action),
    ENUM_ROW(DASHI_ENUM_SP_STATUS, "SamePersonStatus", sym_sp_status),
    ENUM_ROW(DASHI_ENUM_COMMISSION_KIND, "CommissionEventKind", sym_commission_kind),
    ENUM_ROW(DASHI_ENUM_CUSTOMER_KIND, "CustomerKind", sym_customer_kind),
    ENUM_ROW(DASHI_ENUM_TIER, "Tier", sym_tier),
    ENUM_ROW(DASHI_ENUM_CAMPAIGN_KIND, "CampaignEventKind", sym_campaign_kind),
    ENUM_ROW(DASHI_ENUM_UNIT, "Unit", sym_unit),
    ENUM_ROW(DASHI_ENUM_SEVERITY, "Severity", sym_severity),
#undef ENUM_ROW
};

const char *dashi_enum_name(dashi_enum_kind k, int value) {
    if ((unsigned)k >= DASHI_ENUM__COUNT || value < 0 || value >= enum_tables[k].n)
        return NULL;
    return enum_tables[k].symbols[value];
}

int dashi_enum_from_name(dashi_enum_kind k, const char *name) {
    if ((unsigned)k >= DASHI_ENUM__COUNT || !name)
        return -1;
    for (int i = 0; i < enum_tables[k].n; i++)
        if (strcmp(enum_tables[k].symbols[i], name) == 0)
            return i;
    return -1;
}

const char *dashi_enum_avro_name(dashi_enum_kind k) {
    return (unsigned)k < DASHI_ENUM__COUNT ? enum_tables[k].avro_name : NULL;
}

int dashi_enum_count(dashi_enum_kind k) {
    return (unsigned)k < DASHI_ENUM__COUNT ? enum_tables[k].n : 0;
}

/* ---------------------------------------------------------------------------------- */
/* descriptor tables                                                                  */
/* ---------------------------------------------------------------------------------- */

#define F_STR(S, n, fl) {#n, DASHI_FK_STRING, (fl), offsetof(S, n), 0, 0, NULL}
#define F_TIME(S, n, fl) {#n, DASHI_FK_TIME, (fl), offsetof(S, n), 0, 0, NULL}
#define F_INT(S, n, fl) {#n, DASHI_FK_INT, (fl), offsetof(S, n), 0, 0, NULL}
#define F_BOOL(S, n, fl) {#n, DASHI_FK_BOOL, (fl), offsetof(S, n), 0, 0, NULL}
#define F_ENUM(S, n, ek, fl) {#n, DASHI_FK_ENUM, (fl), offsetof(S, n), 0, (ek), NULL}
#define F_PTR(S, n, sub, fl) {#n, DASHI_FK_STRUCT_PTR, (fl), offsetof(S, n), 0, 0, &(sub)}
#define F_ARR(S, n, sub) {#n, DASHI_FK_STRUCT_ARRAY, 0, offsetof(S, n), offsetof(S, n_##n), 0, &(sub)}
#define F_STRV(S, n, fl) {#n, DASHI_FK_STRING_ARRAY, (fl), offsetof(S, n), offsetof(S, n_##n), 0, NULL}
#define F_ENUMV(S, n, ek) {#n, DASHI_FK_ENUM_ARRAY, 0, offsetof(S, n), offsetof(S, n_##n), (ek), NULL}
#define F_MAP(S, n) {#n, DASHI_FK_STRING_MAP, 0, offsetof(S, n), offsetof(S, n_##n), 0, NULL}
/* the same with an explicit limit (dashi_field_desc.max): bytes of a string, elements of an array */
#define F_STRM(S, n, fl, mx) {#n, DASHI_FK_STRING, (fl), offsetof(S, n), 0, 0, NULL, (mx)}
#define F_ARRM(S, n, sub, mx) {#n, DASHI_FK_STRUCT_ARRAY, 0, offsetof(S, n), offsetof(S, n_##n), 0, &(sub), (mx)}
/* output strings: ids and uids from the inputs, but also rule versions, ladders and
 * timer causes from the rules and the engine: the text limit */
#define F_OSTR(S, n, fl) F_STRM(S, n, fl, DASHI_MAX_TEXT_LEN)
#define RECORD(var, name, doc, S, fields, check) \
    static const dashi_record_desc var = {name, doc, sizeof(S), fields, ARRAY_LEN(fields), check}

#define OPT DASHI_FF_OPTIONAL
#define NE DASHI_FF_NONEMPTY
#define NN DASHI_FF_NONNEG
#define POS DASHI_FF_POSITIVE
#define AMT DASHI_FF_AMOUNT

static dashi_err check_item(const void *rec, const char *path, char *errstr, size_t errstr_size);
static dashi_err check_tier_assigned(const void *rec, const char *path, char *errstr,
                                     size_t errstr_size);
static dashi_err check_order_paid(const void *rec, const char *path, char *errstr, size_t errstr_size);

/* nested records */
static const dashi_field_desc fields_identity[] = {
    F_ENUM(dashi_identity, kind, DASHI_ENUM_IDENTITY_KIND, 0),
    F_STRM(dashi_identity, value, NE, DASHI_MAX_VALUE_LEN),
    F_BOOL(dashi_identity, hashed, DASHI_FF_DEFAULT),
};
RECORD(desc_identity, "Identity", "An identity attribute (clear text unless hashed)",
       dashi_identity, fields_identity, NULL);

static const dashi_field_desc fields_item[] = {
    F_STR(dashi_item, item_id, NE),          F_STR(dashi_item, product_code, 0),
    F_STR(dashi_item, category, 0),          F_INT(dashi_item, list_amount, NN | AMT),
    F_INT(dashi_item, discount_amount, NN | AMT), F_INT(dashi_item, paid_amount, NN | AMT),
};
RECORD(desc_item, "Item", "An order item; amounts in fen, paid = list - discount", dashi_item,
       fields_item, check_item);

static const dashi_field_desc fields_referral[] = {
    F_STR(dashi_referral, ambassador_uid, NE),
    F_STR(dashi_referral, link_id, NE),
    F_STR(dashi_referral, campaign_id, OPT | NE),
};
RECORD(desc_referral, "Referral", "The promo link a registration came through", dashi_referral,
       fields_referral, NULL);

static const dashi_field_desc fields_installment[] = {
    F_INT(dashi_installment, seq, NN),
    F_TIME(dashi_installment, due_at, 0),
    F_INT(dashi_installment, amount, NN),
};
RECORD(desc_installment, "Installment", "One payout instalment of a commission (fen)",
       dashi_installment, fields_installment, NULL);

/* inputs */
#define INPUT_HEAD(S)                                                                        \
    F_STR(S, event_id, NE), F_TIME(S, occurred_at, 0)

static const dashi_field_desc fields_account_registered[] = {
    INPUT_HEAD(dashi_account_registered),
    F_STR(dashi_account_registered, uid, NE),
    F_ENUM(dashi_account_registered, account_type, DASHI_ENUM_ACCOUNT_TYPE, 0),
    F_ENUM(dashi_account_registered, method, DASHI_ENUM_METHOD, 0),
    F_ARRM(dashi_account_registered, identities, desc_identity, DASHI_MAX_IDENTITIES),
    F_PTR(dashi_account_registered, referral, desc_referral, OPT),
};
static const dashi_field_desc fields_link_visited[] = {
    INPUT_HEAD(dashi_link_visited),
    F_STR(dashi_link_visited, uid, NE),
    F_STR(dashi_link_visited, ambassador_uid, NE),
    F_STR(dashi_link_visited, link_id, NE),
    F_STR(dashi_link_visited, campaign_id, OPT | NE),
    F_BOOL(dashi_link_visited, logged_in, 0),
};
static const dashi_field_desc fields_real_name_verified[] = {
    INPUT_HEAD(dashi_real_name_verified),
    F_STR(dashi_real_name_verified, uid, NE),
    F_ENUM(dashi_real_name_verified, kind, DASHI_ENUM_ACCOUNT_TYPE, 0),
    F_ARRM(dashi_real_name_verified, identities, desc_identity, DASHI_MAX_IDENTITIES),
};
static const dashi_field_desc fields_identity_changed[] = {
    INPUT_HEAD(dashi_identity_changed),
    F_STR(dashi_identity_changed, uid, NE),
    F_ARRM(dashi_identity_changed, added, desc_identity, DASHI_MAX_IDENTITIES),
    F_ARRM(dashi_identity_changed, removed, desc_identity, DASHI_MAX_IDENTITIES),
};
static const dashi_field_desc fields_ambassador_enrolled[] = {
    INPUT_HEAD(dashi_ambassador_enrolled),
    F_STR(dashi_ambassador_enrolled, uid, NE),
};
static const dashi_field_desc fields_account_flagged[] = {
    INPUT_HEAD(dashi_account_flagged),
    F_STR(dashi_account_flagged, uid, NE),
    F_ENUM(dashi_account_flagged, flag, DASHI_ENUM_FLAG, 0),
    F_BOOL(dashi_account_flagged, set, 0),
};
static const dashi_field_desc fields_customer_bound[] = {
    INPUT_HEAD(dashi_customer_bound),
    F_STR(dashi_customer_bound, uid, NE),
    F_ENUM(dashi_customer_bound, binding, DASHI_ENUM_BINDING, 0),
};
static const dashi_field_desc fields_campaign_enrolled[] = {
    INPUT_HEAD(dashi_campaign_enrolled),
    F_STR(dashi_campaign_enrolled, uid, NE),
    F_STR(dashi_campaign_enrolled, campaign_id, NE),
};
static const dashi_field_desc fields_order_paid[] = {
    INPUT_HEAD(dashi_order_paid),
    F_STR(dashi_order_paid, order_id, NE),
    F_STR(dashi_order_paid, uid, NE),
    F_STR(dashi_order_paid, cart_id, OPT | NE),
    F_ENUM(dashi_order_paid, order_type, DASHI_ENUM_ORDER_TYPE, 0),
    F_ENUM(dashi_order_paid, billing, DASHI_ENUM_BILLING, 0),
    F_STR(dashi_order_paid, campaign_id, OPT | NE),
    F_ARRM(dashi_order_paid, items, desc_item, DASHI_MAX_ITEMS),
};
static const dashi_field_desc fields_order_refunded[] = {
    INPUT_HEAD(dashi_order_refunded),
    F_STR(dashi_order_refunded, order_id, NE),
    F_STR(dashi_order_refunded, uid, NE),
    F_ENUM(dashi_order_refunded, kind, DASHI_ENUM_REFUND_KIND, 0),
    F_INT(dashi_order_refunded, amount, POS | AMT),
    F_STR(dashi_order_refunded, item_id, OPT | NE),
};
static const dashi_field_desc fields_risk_action[] = {
    INPUT_HEAD(dashi_risk_action),
    F_ENUM(dashi_risk_action, action, DASHI_ENUM_RISK_ACTION, 0),
    F_STR(dashi_risk_action, ambassador_uid, NE),
    F_STR(dashi_risk_action, order_id, OPT | NE),
    F_STR(dashi_risk_action, campaign_id, OPT | NE),
    F_STRM(dashi_risk_action, reason, 0, DASHI_MAX_TEXT_LEN),
};

/* outputs */
static const dashi_field_desc fields_same_person_decision[] = {
    F_OSTR(dashi_same_person_decision, decision_id, NE),
    F_TIME(dashi_same_person_decision, decided_at, 0),
    F_OSTR(dashi_same_person_decision, uid, NE),
    F_OSTR(dashi_same_person_decision, person_id, NE),
    F_ENUM(dashi_same_person_decision, status, DASHI_ENUM_SP_STATUS, 0),
    F_BOOL(dashi_same_person_decision, paid_before, 0),
    F_ENUMV(dashi_same_person_decision, matched_on, DASHI_ENUM_IDENTITY_KIND),
    F_BOOL(dashi_same_person_decision, final, 0),
};
static const dashi_field_desc fields_commission_event[] = {
    F_OSTR(dashi_commission_event, commission_id, NE),
    F_ENUM(dashi_commission_event, event, DASHI_ENUM_COMMISSION_KIND, 0),
    F_TIME(dashi_commission_event, occurred_at, 0),
    F_OSTR(dashi_commission_event, ambassador_uid, 0), /* "" on REJECTED NOT_ASSOCIATED: no ambassador */
    F_OSTR(dashi_commission_event, customer_uid, NE),
    F_OSTR(dashi_commission_event, person_id, 0),      /* "" when the buyer's account is unknown */
    F_OSTR(dashi_commission_event, order_id, NE),
    F_ENUM(dashi_commission_event, customer_kind, DASHI_ENUM_CUSTOMER_KIND, OPT),
    F_ENUM(dashi_commission_event, tier, DASHI_ENUM_TIER, OPT),
    F_INT(dashi_commission_event, rate_bp, OPT | NN),
    F_INT(dashi_commission_event, base_amount, NN),
    F_INT(dashi_commission_event, amount, NN),
    F_INT(dashi_commission_event, delta, 0),
    F_INT(dashi_commission_event, bonus_amount, NN),
    F_TIME(dashi_commission_event, review_ends_at, OPT),
    F_ARR(dashi_commission_event, installments, desc_installment),
    F_STRV(dashi_commission_event, reasons, NE),
    F_OSTR(dashi_commission_event, rule_version, 0),
    F_OSTR(dashi_commission_event, caused_by, 0),
};
static const dashi_field_desc fields_campaign_event[] = {
    F_OSTR(dashi_campaign_event, campaign_event_id, NE),
    F_OSTR(dashi_campaign_event, campaign_id, NE),
    F_OSTR(dashi_campaign_event, promoter_uid, NE),
    F_ENUM(dashi_campaign_event, kind, DASHI_ENUM_CAMPAIGN_KIND, 0),
    F_OSTR(dashi_campaign_event, ladder, OPT),
    F_INT(dashi_campaign_event, count, NN),
    F_INT(dashi_campaign_event, tier_threshold, OPT | NN),
    F_INT(dashi_campaign_event, reward_amount, NN),
    F_INT(dashi_campaign_event, reward_delta, 0),
    F_ENUM(dashi_campaign_event, unit, DASHI_ENUM_UNIT, 0),
    F_TIME(dashi_campaign_event, expires_at, OPT),
    F_OSTR(dashi_campaign_event, customer_uid, OPT | NE),
    F_INT(dashi_campaign_event, rank, OPT | POS),
    F_TIME(dashi_campaign_event, occurred_at, 0),
    F_OSTR(dashi_campaign_event, caused_by, 0),
};
static const dashi_field_desc fields_tier_assigned[] = {
    F_OSTR(dashi_tier_assigned, ambassador_uid, NE),
    F_OSTR(dashi_tier_assigned, month, 0),
    F_ENUM(dashi_tier_assigned, tier, DASHI_ENUM_TIER, 0),
    F_INT(dashi_tier_assigned, basis, NN),
    F_OSTR(dashi_tier_assigned, rule_version, 0),
};
static const dashi_field_desc fields_fraud_alert[] = {
    F_OSTR(dashi_fraud_alert, alert_id, NE),
    F_OSTR(dashi_fraud_alert, kind, NE),
    F_ENUM(dashi_fraud_alert, severity, DASHI_ENUM_SEVERITY, 0),
    F_TIME(dashi_fraud_alert, occurred_at, 0),
    F_STRV(dashi_fraud_alert, subject_uids, NE),
    F_OSTR(dashi_fraud_alert, ambassador_uid, OPT | NE),
    F_OSTR(dashi_fraud_alert, order_id, OPT | NE),
    F_MAP(dashi_fraud_alert, evidence),
    F_OSTR(dashi_fraud_alert, caused_by, 0),
};

RECORD(desc_account_registered, "AccountRegistered", "Input: an account was registered",
       dashi_account_registered, fields_account_registered, NULL);
RECORD(desc_link_visited, "LinkVisited", "Input: a user visited an ambassador's promo link",
       dashi_link_visited, fields_link_visited, NULL);
RECORD(desc_real_name_verified, "RealNameVerified", "Input: an account completed real-name verification",
       dashi_real_name_verified, fields_real_name_verified, NULL);
RECORD(desc_identity_changed, "IdentityChanged", "Input: an account's identity data changed",
       dashi_identity_changed, fields_identity_changed, NULL);
RECORD(desc_ambassador_enrolled, "AmbassadorEnrolled", "Input: a user joined the ambassador program",
       dashi_ambassador_enrolled, fields_ambassador_enrolled, NULL);
RECORD(desc_account_flagged, "AccountFlagged", "Input: an account flag was set or cleared",
       dashi_account_flagged, fields_account_flagged, NULL);
RECORD(desc_customer_bound, "CustomerBound", "Input: a customer was bound to a sales channel",
       dashi_customer_bound, fields_customer_bound, NULL);
RECORD(desc_campaign_enrolled, "CampaignEnrolled", "Input: a user signed up for a campaign",
       dashi_campaign_enrolled, fields_campaign_enrolled, NULL);
RECORD(desc_order_paid, "OrderPaid", "Input: an order was paid (amounts in fen)", dashi_order_paid,
       fields_order_paid, check_order_paid);
RECORD(desc_order_refunded, "OrderRefunded", "Input: an order was refunded or downgraded (fen)",
       dashi_order_refunded, fields_order_refunded, NULL);
RECORD(desc_risk_action, "RiskAction", "Input: the risk team froze, unfroze or voided earnings",
       dashi_risk_action, fields_risk_action, NULL);
RECORD(desc_same_person_decision, "SamePersonDecision", "Output: a customer's same-person status",
       dashi_same_person_decision, fields_same_person_decision, NULL);
RECORD(desc_commission_event, "CommissionEvent", "Output: a commission outcome or change (fen)",
       dashi_commission_event, fields_commission_event, NULL);
RECORD(desc_campaign_event, "CampaignEvent", "Output: campaign progress or reward of a promoter",
       dashi_campaign_event, fields_campaign_event, NULL);
RECORD(desc_tier_assigned, "TierAssigned", "Output: an ambassador's tier for a month",
       dashi_tier_assigned, fields_tier_assigned, check_tier_assigned);
RECORD(desc_fraud_alert, "FraudAlert", "Output: a risk pattern for the risk team",
       dashi_fraud_alert, fields_fraud_alert, NULL);

static const struct {
    const dashi_record_desc *desc;
    const char *topic;
} event_table[DASHI_EV__COUNT] = {
    [DASHI_EV_ACCOUNT_REGISTERED] = {&desc_account_registered, "registration"},
    [DASHI_EV_LINK_VISITED] = {&desc_link_visited, "association"},
    [DASHI_EV_REAL_NAME_VERIFIED] = {&desc_real_name_verified, "verification"},
    [DASHI_EV_IDENTITY_CHANGED] = {&desc_identity_changed, "account"},
    [DASHI_EV_AMBASSADOR_ENROLLED] = {&desc_ambassador_enrolled, "account"},
    [DASHI_EV_ACCOUNT_FLAGGED] = {&desc_account_flagged, "account"},
    [DASHI_EV_CUSTOMER_BOUND] = {&desc_customer_bound, "account"},
    [DASHI_EV_CAMPAIGN_ENROLLED] = {&desc_campaign_enrolled, "account"},
    [DASHI_EV_ORDER_PAID] = {&desc_order_paid, "order"},
    [DASHI_EV_ORDER_REFUNDED] = {&desc_order_refunded, "order"},
    [DASHI_EV_RISK_ACTION] = {&desc_risk_action, "risk-action"},
    [DASHI_EV_SAME_PERSON_DECISION] = {&desc_same_person_decision, "same-person"},
    [DASHI_EV_COMMISSION_EVENT] = {&desc_commission_event, "commission"},
    [DASHI_EV_CAMPAIGN_EVENT] = {&desc_campaign_event, "campaign"},
    [DASHI_EV_TIER_ASSIGNED] = {&desc_tier_assigned, "tier"},
    [DASHI_EV_FRAUD_ALERT] = {&desc_fraud_alert, "fraud-alert"},
};

const dashi_record_desc *dashi_event_desc(dashi_event_type t) {
    return (unsigned)t < DASHI_EV__COUNT ? event_table[t].desc : NULL;
}

size_t dashi_field_max(const dashi_field_desc *f) {
    switch (f->kind) {
    case DASHI_FK_STRING:
        return f->max ? f->max : DASHI_MAX_ID_LEN;
    case DASHI_FK_STRUCT_ARRAY:
    case DASHI_FK_STRING_ARRAY:
    case DASHI_FK_ENUM_ARRAY:
    case DASHI_FK_STRING_MAP:
        return f->max ? f->max : DASHI_MAX_ARRAY_LEN;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------------- */
/* names                                                                              */
/* ---------------------------------------------------------------------------------- */

const char *dashi_event_type_name(dashi_event_type t) {
    return (unsigned)t < DASHI_EV__COUNT ? event_table[t].desc->name : NULL;
}

int dashi_event_type_from_name(const char *name) {
    if (!name)
        return -1;
    for (int t = 0; t < DASHI_EV__COUNT; t++)
        if (strcmp(event_table[t].desc->name, name) == 0)
            return t;
    return -1;
}

int dashi_event_type_is_input(dashi_event_type t) {
    return (unsigned)t < DASHI_EV__FIRST_OUTPUT;
}

const char *dashi_event_topic(dashi_event_type t) {
    return (unsigned)t < DASHI_EV__COUNT ? event_table[t].topic : NULL;
}

/* ---------------------------------------------------------------------------------- */
/* small helpers                                                                      */
/* ---------------------------------------------------------------------------------- */

#define FIELD_PTR(rec, f) ((void *)((char *)(rec) + (f)->offset))
#define CFIELD_PTR(rec, f) ((const void *)((const char *)(rec) + (f)->offset))
#define FIELD_COUNT(rec, f) (*(size_t *)((char *)(rec) + (f)->count_offset))
#define CFIELD_COUNT(rec, f) (*(const size_t *)((const char *)(rec) + (f)->count_offset))

/* Append s to the path out[0..*n), cut where snprintf would cut it (out_size > 0).
 * Paths are built for every field of every event read, only to name a bad one, so
 * this avoids printf. */
static void path_put(char *out, size_t out_size, size_t *n, const char *s) {
    size_t len = strlen(s), room = out_size - 1 - *n;
    if (len > room)
        len = room; /* a longer path is cut at out_size: still names the field's start */
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = '\0';
}

char *dashi_path_join(char *out, size_t out_size, const char *prefix, const char *name) {
    size_t n = 0;
    if (!out_size)
        return out;
    out[0] = '\0';
    if (prefix && *prefix) {
        path_put(out, out_size, &n, prefix);
        path_put(out, out_size, &n, ".");
    }
    path_put(out, out_size, &n, name);
    return out;
}

static char *path_index(char *out, size_t out_size, const char *prefix, size_t i) {
    char digits[24];
    size_t d = sizeof(digits) - 1, n = 0;
    if (!out_size)
        return out;
    digits[d] = '\0';
    do {
        digits[--d] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    out[0] = '\0';
    path_put(out, out_size, &n, prefix);
    path_put(out, out_size, &n, "[");
    path_put(out, out_size, &n, digits + d);
    path_put(out, out_size, &n, "]");
    return out;
}

char *dashi_strdup(const char *s) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

int dashi_strv_push(char ***arr, size_t *n, const char *s) {
    char *copy = s ? strdup(s) : NULL;
    char **grown = NULL;
    int rc = -1;

    if (!copy)
        goto out;
    grown = realloc(*arr, (*n + 1) * sizeof(*grown));
    if (!grown)
        goto out;
    grown[*n] = copy;
    copy = NULL;
    *arr = grown;
    (*n)++;
    rc = 0;
out:
    free(copy);
    return rc;
}

int dashi_kv_push(dashi_kv **arr, size_t *n, const char *key, const char *value) {
    char *k = key ? strdup(key) : NULL;
    char *v = value ? strdup(value) : NULL;
    dashi_kv *grown = NULL;
    int rc = -1;

    if (!k || !v)
        goto out;
    grown = realloc(*arr, (*n + 1) * sizeof(*grown));
    if (!grown)
        goto out;
    grown[*n].key = k;
    grown[*n].value = v;
    k = v = NULL;
    *arr = grown;
    (*n)++;
    rc = 0;
out:
    free(k);
    free(v);
    return rc;
}

int dashi_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

dashi_time dashi_event_time_min(void) {
    return dashi_cst_from_civil(1, 1, 1);
}

dashi_time dashi_event_time_max(void) {
    return dashi_cst_from_civil(10000, 1, 1) - 1;
}

/* ---------------------------------------------------------------------------------- */
/* life cycle                                                                         */
/* ---------------------------------------------------------------------------------- */

void dashi_record_init(const dashi_record_desc *d, void *rec) {
    if (!d || !rec)
        return;
    memset(rec, 0, d->size);
    for (size_t i = 0; i < d->n_fields; i++) {
        const dashi_field_desc *f = &d->fields[i];
        if (!(f->flags & DASHI_FF_OPTIONAL))
            continue;
        switch (f->kind) {
        case DASHI_FK_TIME:
            *(dashi_time *)FIELD_PTR(rec, f) = DASHI_TIME_NONE;
            break;
        case DASHI_FK_INT:
            *(int64_t *)FIELD_PTR(rec, f) = DASHI_INT_NONE;
            break;
        case DASHI_FK_ENUM:
            *(int *)FIELD_PTR(rec, f) = DASHI_ENUM_NONE;
            break;
        default:
            break;
        }
    }
}

void dashi_record_clear(const dashi_record_desc *d, void *rec) {
    if (!d || !rec)
        return;
    for (size_t i = 0; i < d->n_fields; i++) {
        const dashi_field_desc *f = &d->fields[i];
        void *p = FIELD_PTR(rec, f);
        switch (f->kind) {
        case DASHI_FK_STRING:
            free(*(char **)p);
            break;
        case DASHI_FK_STRUCT_PTR: {
            void *sub = *(void **)p;
            if (sub) {
                dashi_record_clear(f->sub, sub);
                free(sub);
            }
            break;
        }
        case DASHI_FK_STRUCT_ARRAY: {
            char *arr = *(char **)p;
            size_t n = FIELD_COUNT(rec, f);
            for (size_t k = 0; arr && k < n; k++)
                dashi_record_clear(f->sub, arr + k * f->sub->size);
            free(arr);
            break;
        }
        case DASHI_FK_STRING_ARRAY: {
            char **arr = *(char ***)p;
            size_t n = FIELD_COUNT(rec, f);
            for (size_t k = 0; arr && k < n; k++)
                free(arr[k]);
            free(arr);
            break;
        }
        case DASHI_FK_ENUM_ARRAY:
            free(*(int **)p);
            break;
        case DASHI_FK_STRING_MAP: {
            dashi_kv *arr = *(dashi_kv **)p;
            size_t n = FIELD_COUNT(rec, f);
            for (size_t k = 0; arr && k < n; k++) {
                free(arr[k].key);
                free(arr[k].value);
            }
            free(arr);
            break;
        }
        default:
            break;
        }
    }
    dashi_record_init(d, rec);
}

void dashi_event_init(dashi_event *ev, dashi_event_type type) {
    if (!ev)
        return;
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    dashi_record_init(dashi_event_desc(type), &ev->u);
}

void dashi_event_clear(dashi_event *ev) {
    if (!ev)
        return;
    dashi_record_clear(dashi_event_desc(ev->type), &ev->u);
    memset(ev, 0, sizeof(*ev));
}

static dashi_err record_copy(const dashi_record_desc *d, void *dst, const void *src);

/* Deep copy of one field; dst's field is assumed empty (dst was memcpy'ed from src
 * and the pointer fields are overwritten here). */
static dashi_err field_copy(const dashi_field_desc *f, void *dst, const void *src) {
    const void *sp = CFIELD_PTR(src, f);
    void *dp = FIELD_PTR(dst, f);
    dashi_err err = DASHI_OK;

    switch (f->kind) {
    case DASHI_FK_STRING: {
        const char *s = *(char *const *)sp;
        *(char **)dp = NULL;
        if (s && !(*(char **)dp = strdup(s)))
            err = DASHI_ERR_NOMEM;
        break;
    }
    case DASHI_FK_STRUCT_PTR: {
        const void *sub = *(void *const *)sp;
        void *copy = NULL;
        *(void **)dp = NULL;
        if (!sub)
            break;
        if (!(copy = malloc(f->sub->size))) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        if ((err = record_copy(f->sub, copy, sub)) != DASHI_OK) {
            free(copy);
            break;
        }
        *(void **)dp = copy;
        break;
    }
    case DASHI_FK_STRUCT_ARRAY: {
        const char *arr = *(char *const *)sp;
        size_t n = CFIELD_COUNT(src, f), k;
        char *copy;
        *(void **)dp = NULL;
        FIELD_COUNT(dst, f) = 0;
        if (!arr || n == 0)
            break;
        if (!(copy = calloc(n, f->sub->size))) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        for (k = 0; k < n; k++)
            if ((err = record_copy(f->sub, copy + k * f->sub->size, arr + k * f->sub->size)))
                break;
        *(void **)dp = copy;
        FIELD_COUNT(dst, f) = k; /* the elements copied so far: clear frees exactly them */
        break;
    }
    case DASHI_FK_STRING_ARRAY: {
        char *const *arr = *(char **const *)sp;
        size_t n = CFIELD_COUNT(src, f);
        *(char ***)dp = NULL;
        FIELD_COUNT(dst, f) = 0;
        for (size_t k = 0; arr && k < n; k++)
            if (dashi_strv_push((char ***)dp, &FIELD_COUNT(dst, f), arr[k] ? arr[k] : "")) {
                err = DASHI_ERR_NOMEM;
                break;
            }
        break;
    }
    case DASHI_FK_ENUM_ARRAY: {
        const int *arr = *(int *const *)sp;
        size_t n = CFIELD_COUNT(src, f);
        int *copy;
        *(int **)dp = NULL;
        FIELD_COUNT(dst, f) = 0;
        if (!arr || n == 0)
            break;
        if (!(copy = malloc(n * sizeof(*copy)))) {
            err = DASHI_ERR_NOMEM;
            break;
        }
        memcpy(copy, arr, n * sizeof(*copy));
        *(int **)dp = copy;
        FIELD_COUNT(dst, f) = n;
        break;
    }
    case DASHI_FK_STRING_MAP: {
        const dashi_kv *arr = *(dashi_kv *const *)sp;
        size_t n = CFIELD_COUNT(src, f);
        *(dashi_kv **)dp = NULL;
        FIELD_COUNT(dst, f) = 0;
        for (size_t k = 0; arr && k < n; k++)
            if (dashi_kv_push((dashi_kv **)dp, &FIELD_COUNT(dst, f), arr[k].key ? arr[k].key : "",
                              arr[k].value ? arr[k].value : "")) {
                err = DASHI_ERR_NOMEM;
                break;
            }
        break;
    }
    default:
        break; /* scalars were copied by the memcpy */
    }
    return err;
}

/* dst gets a deep copy of src; on failure dst is left cleared (nothing leaks). */
static dashi_err record_copy(const dashi_record_desc *d, void *dst, const void *src) {
    dashi_err err = DASHI_OK;
    size_t i;

    memcpy(dst, src, d->size);
    for (i = 0; i < d->n_fields; i++)
        if ((err = field_copy(&d->fields[i], dst, src)) != DASHI_OK)
            break;
    if (err) {
        /* fields after i still alias src: null them before clearing */
        for (size_t k = i + 1; k < d->n_fields; k++) {
            const dashi_field_desc *f = &d->fields[k];
            if (f->kind == DASHI_FK_STRING || f->kind == DASHI_FK_STRUCT_PTR ||
                f->kind == DASHI_FK_STRUCT_ARRAY || f->kind == DASHI_FK_STRING_ARRAY ||
                f->kind == DASHI_FK_ENUM_ARRAY || f->kind == DASHI_FK_STRING_MAP)
                *(void **)FIELD_PTR(dst, f) = NULL;
            if (f->kind >= DASHI_FK_STRUCT_ARRAY)
                FIELD_COUNT(dst, f) = 0;
        }
        dashi_record_clear(d, dst);
    }
    return err;
}

dashi_err dashi_event_copy(dashi_event *dst, const dashi_event *src) {
    const dashi_record_desc *d;
    dashi_err err = DASHI_OK;

    if (!dst || !src)
        return DASHI_ERR_INVALID;
    if (!(d = dashi_event_desc(src->type)))
        return DASHI_ERR_INVALID;
    memset(dst, 0, sizeof(*dst));
    dst->type = src->type;
    if ((err = record_copy(d, &dst->u, &src->u)) != DASHI_OK)
        dashi_event_clear(dst);
    return err;
}

/* ---------------------------------------------------------------------------------- */
/* accessors                                                                          */
/* ---------------------------------------------------------------------------------- */

static const char *nonnull(const char *s) {
    return s ? s : "";
}

const char *dashi_event_id(const dashi_event *ev) {
    if (!ev)
        return "";
    switch (ev->type) {
    case DASHI_EV_ACCOUNT_REGISTERED: return nonnull(ev->u.account_registered.event_id);
    case DASHI_EV_LINK_VISITED: return nonnull(ev->u.link_visited.event_id);
    case DASHI_EV_REAL_NAME_VERIFIED: return nonnull(ev->u.real_name_verified.event_id);
    case DASHI_EV_IDENTITY_CHANGED: return nonnull(ev->u.identity_changed.event_id);
    case DASHI_EV_AMBASSADOR_ENROLLED: return nonnull(ev->u.ambassador_enrolled.event_id);
    case DASHI_EV_ACCOUNT_FLAGGED: return nonnull(ev->u.account_flagged.event_id);
    case DASHI_EV_CUSTOMER_BOUND: return nonnull(ev->u.customer_bound.event_id);
    case DASHI_EV_CAMPAIGN_ENROLLED: return nonnull(ev->u.campaign_enrolled.event_id);
    case DASHI_EV_ORDER_PAID: return nonnull(ev->u.order_paid.event_id);
    case DASHI_EV_ORDER_REFUNDED: return nonnull(ev->u.order_refunded.event_id);
    case DASHI_EV_RISK_ACTION: return nonnull(ev->u.risk_action.event_id);
    case DASHI_EV_SAME_PERSON_DECISION: return nonnull(ev->u.same_person_decision.decision_id);
    case DASHI_EV_COMMISSION_EVENT: return nonnull(ev->u.commission_event.commission_id);
    case DASHI_EV_CAMPAIGN_EVENT: return nonnull(ev->u.campaign_event.campaign_event_id);
    case DASHI_EV_TIER_ASSIGNED: return "";
    case DASHI_EV_FRAUD_ALERT: return nonnull(ev->u.fraud_alert.alert_id);
    default: return "";
    }
}

dashi_time dashi_event_time(const dashi_event *ev) {
    if (!ev)
        return DASHI_TIME_NONE;
    switch (ev->type) {
    case DASHI_EV_ACCOUNT_REGISTERED: return ev->u.account_registered.occurred_at;
    case DASHI_EV_LINK_VISITED: return ev->u.link_visited.occurred_at;
    case DASHI_EV_REAL_NAME_VERIFIED: return ev->u.real_name_verified.occurred_at;
    case DASHI_EV_IDENTITY_CHANGED: return ev->u.identity_changed.occurred_at;
    case DASHI_EV_AMBASSADOR_ENROLLED: return ev->u.ambassador_enrolled.occurred_at;
    case DASHI_EV_ACCOUNT_FLAGGED: return ev->u.account_flagged.occurred_at;
    case DASHI_EV_CUSTOMER_BOUND: return ev->u.customer_bound.occurred_at;
    case DASHI_EV_CAMPAIGN_ENROLLED: return ev->u.campaign_enrolled.occurred_at;
    case DASHI_EV_ORDER_PAID: return ev->u.order_paid.occurred_at;
    case DASHI_EV_ORDER_REFUNDED: return ev->u.order_refunded.occurred_at;
    case DASHI_EV_RISK_ACTION: return ev->u.risk_action.occurred_at;
    case DASHI_EV_SAME_PERSON_DECISION: return ev->u.same_person_decision.decided_at;
    case DASHI_EV_COMMISSION_EVENT: return ev->u.commission_event.occurred_at;
    case DASHI_EV_CAMPAIGN_EVENT: return ev->u.campaign_event.occurred_at;
    case DASHI_EV_FRAUD_ALERT: return ev->u.fraud_alert.occurred_at;
    case DASHI_EV_TIER_ASSIGNED: {
        const char *m = ev->u.tier_assigned.month;
        int y, mo;
        char tail;
        if (!m || sscanf(m, "%4d-%2d%c", &y, &mo, &tail) != 2 || mo < 1 || mo > 12)
            return DASHI_TIME_NONE;
        return dashi_cst_from_civil(y, mo, 1);
    }
    default: return DASHI_TIME_NONE;
    }
}

const char *dashi_event_key(const dashi_event *ev) {
    if (!ev)
        return "";
    switch (ev->type) {
    case DASHI_EV_ACCOUNT_REGISTERED: return nonnull(ev->u.account_registered.uid);
    case DASHI_EV_LINK_VISITED: return nonnull(ev->u.link_visited.uid);
    case DASHI_EV_REAL_NAME_VERIFIED: return nonnull(ev->u.real_name_verified.uid);
    case DASHI_EV_IDENTITY_CHANGED: return nonnull(ev->u.identity_changed.uid);
    case DASHI_EV_AMBASSADOR_ENROLLED: return nonnull(ev->u.ambassador_enrolled.uid);
    case DASHI_EV_ACCOUNT_FLAGGED: return nonnull(ev->u.account_flagged.uid);
    case DASHI_EV_CUSTOMER_BOUND: return nonnull(ev->u.customer_bound.uid);
    case DASHI_EV_CAMPAIGN_ENROLLED: return nonnull(ev->u.campaign_enrolled.uid);
    case DASHI_EV_ORDER_PAID: return nonnull(ev->u.order_paid.uid);
    case DASHI_EV_ORDER_REFUNDED: return nonnull(ev->u.order_refunded.uid);
    case DASHI_EV_RISK_ACTION: return nonnull(ev->u.risk_action.ambassador_uid);
    case DASHI_EV_SAME_PERSON_DECISION: return nonnull(ev->u.same_person_decision.uid);
    case DASHI_EV_COMMISSION_EVENT: return nonnull(ev->u.commission_event.ambassador_uid);
    case DASHI_EV_CAMPAIGN_EVENT: return nonnull(ev->u.campaign_event.promoter_uid);
    case DASHI_EV_TIER_ASSIGNED: return nonnull(ev->u.tier_assigned.ambassador_uid);
    case DASHI_EV_FRAUD_ALERT:
        if (ev->u.fraud_alert.n_subject_uids > 0 && ev->u.fraud_alert.subject_uids)
            return nonnull(ev->u.fraud_alert.subject_uids[0]);
        return nonnull(ev->u.fraud_alert.ambassador_uid);
    default: return "";
    }
}

/* ---------------------------------------------------------------------------------- */
/* validation                                                                         */
/* ---------------------------------------------------------------------------------- */

static dashi_err check_item(const void *rec, const char *path, char *errstr, size_t errstr_size) {
    const dashi_item *it = rec;
    char p[PATH_MAX_LEN];
    /* both amounts were checked >= 0 before, so the difference cannot overflow */
    if (it->paid_amount != it->list_amount - it->discount_amount)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                          "%s: must equal list_amount - discount_amount (%lld != %lld - %lld)",
                          dashi_path_join(p, sizeof(p), path, "paid_amount"),
                          (long long)it->paid_amount, (long long)it->list_amount,
                          (long long)it->discount_amount);
    return DASHI_OK;
}

/* The order's total: every paid_amount was checked <= DASHI_MAX_AMOUNT and there are
 * at most DASHI_MAX_ITEMS of them, so the sum cannot overflow. */
static dashi_err check_order_paid(const void *rec, const char *path, char *errstr, size_t errstr_size) {
    const dashi_order_paid *op = rec;
    char p[PATH_MAX_LEN];
    int64_t total = 0;
    for (size_t i = 0; i < op->n_items; i++)
        total += op->items[i].paid_amount;
    if (total > DASHI_MAX_AMOUNT)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                          "%s: order total %lld fen exceeds the limit of %lld fen",
                          dashi_path_join(p, sizeof(p), path, "items"), (long long)total,
                          (long long)DASHI_MAX_AMOUNT);
    return DASHI_OK;
}

static int month_valid(const char *m) {
    if (strlen(m) != 7 || m[4] != '-')
        return 0;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (m[i] < '0' || m[i] > '9'))
            return 0;
    int mo = (m[5] - '0') * 10 + (m[6] - '0');
    return mo >= 1 && mo <= 12 && strncmp(m, "0000", 4) != 0;
}

static dashi_err check_tier_assigned(const void *rec, const char *path, char *errstr,
                                     size_t errstr_size) {
    const dashi_tier_assigned *ta = rec;
    char p[PATH_MAX_LEN];
    if (!month_valid(ta->month))
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: must be YYYY-MM (got '%.40s')",
                          dashi_path_join(p, sizeof(p), path, "month"), ta->month);
    return DASHI_OK;
}

static dashi_err missing(const char *path, char *errstr, size_t errstr_size) {
    return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: missing required field", path);
}

static dashi_err validate_enum(dashi_enum_kind k, int v, const char *path, char *errstr,
                               size_t errstr_size) {
    if (v < 0 || v >= dashi_enum_count(k))
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                          "%s: enum value %d out of range for %s", path, v, dashi_enum_avro_name(k));
    return DASHI_OK;
}

static dashi_err record_validate(const dashi_record_desc *d, const void *rec, const char *path,
                                 char *errstr, size_t errstr_size);

static dashi_err too_long(const char *path, size_t len, size_t max, char *errstr, size_t errstr_size) {
    return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                      "%s: string of %zu bytes is longer than the limit of %zu", path, len, max);
}

static dashi_err too_many(const char *path, size_t n, size_t max, char *errstr, size_t errstr_size) {
    return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                      "%s: %zu elements, more than the limit of %zu", path, n, max);
}

static dashi_err field_validate(const dashi_field_desc *f, const void *rec, const char *fpath,
                                char *errstr, size_t errstr_size) {
    const void *p = CFIELD_PTR(rec, f);
    const int optional = (f->flags & DASHI_FF_OPTIONAL) != 0;
    char sub[PATH_MAX_LEN];
    dashi_err err = DASHI_OK;

    switch (f->kind) {
    case DASHI_FK_STRING: {
        const char *s = *(char *const *)p;
        if (!s)
            return optional ? DASHI_OK : missing(fpath, errstr, errstr_size);
        if ((f->flags & DASHI_FF_NONEMPTY) && !*s)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: must not be empty", fpath);
        if (strlen(s) > dashi_field_max(f))
            return too_long(fpath, strlen(s), dashi_field_max(f), errstr, errstr_size);
        break;
    }
    case DASHI_FK_TIME: {
        dashi_time t = *(const dashi_time *)p;
        if (t == DASHI_TIME_NONE)
            return optional ? DASHI_OK : missing(fpath, errstr, errstr_size);
        if (t < dashi_event_time_min() || t > dashi_event_time_max())
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: instant %lld ms out of range (years 0001..9999)", fpath,
                              (long long)t);
        break;
    }
    case DASHI_FK_INT: {
        int64_t v = *(const int64_t *)p;
        if (v == DASHI_INT_NONE)
            return optional ? DASHI_OK : missing(fpath, errstr, errstr_size);
        if ((f->flags & DASHI_FF_NONNEG) && v < 0)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: negative amount %lld (must be >= 0)", fpath, (long long)v);
        if ((f->flags & DASHI_FF_POSITIVE) && v <= 0)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: must be > 0 (got %lld)", fpath, (long long)v);
        if ((f->flags & DASHI_FF_AMOUNT) && v > DASHI_MAX_AMOUNT)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: amount %lld fen exceeds the limit of %lld fen", fpath, (long long)v,
                              (long long)DASHI_MAX_AMOUNT);
        break;
    }
    case DASHI_FK_ENUM: {
        int v = *(const int *)p;
        if (v == DASHI_ENUM_NONE)
            return optional ? DASHI_OK : missing(fpath, errstr, errstr_size);
        return validate_enum(f->enum_kind, v, fpath, errstr, errstr_size);
    }
    case DASHI_FK_STRUCT_PTR: {
        const void *s = *(void *const *)p;
        if (!s)
            return optional ? DASHI_OK : missing(fpath, errstr, errstr_size);
        return record_validate(f->sub, s, fpath, errstr, errstr_size);
    }
    case DASHI_FK_STRUCT_ARRAY: {
        const char *arr = *(char *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (n && !arr)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %zu elements but no array",
                              fpath, n);
        if (n > dashi_field_max(f))
            return too_many(fpath, n, dashi_field_max(f), errstr, errstr_size);
        for (size_t k = 0; k < n && !err; k++)
            err = record_validate(f->sub, arr + k * f->sub->size,
                                  path_index(sub, sizeof(sub), fpath, k), errstr, errstr_size);
        break;
    }
    case DASHI_FK_STRING_ARRAY: {
        char *const *arr = *(char **const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (n && !arr)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %zu elements but no array",
                              fpath, n);
        if (n > dashi_field_max(f))
            return too_many(fpath, n, dashi_field_max(f), errstr, errstr_size);
        for (size_t k = 0; k < n; k++) {
            if (!arr[k])
                return missing(path_index(sub, sizeof(sub), fpath, k), errstr, errstr_size);
            if ((f->flags & DASHI_FF_NONEMPTY) && !*arr[k])
                return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: must not be empty",
                                  path_index(sub, sizeof(sub), fpath, k));
            if (strlen(arr[k]) > DASHI_MAX_TEXT_LEN)
                return too_long(path_index(sub, sizeof(sub), fpath, k), strlen(arr[k]),
                                DASHI_MAX_TEXT_LEN, errstr, errstr_size);
        }
        break;
    }
    case DASHI_FK_ENUM_ARRAY: {
        const int *arr = *(int *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (n && !arr)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %zu elements but no array",
                              fpath, n);
        if (n > dashi_field_max(f))
            return too_many(fpath, n, dashi_field_max(f), errstr, errstr_size);
        for (size_t k = 0; k < n && !err; k++)
            err = validate_enum(f->enum_kind, arr[k], path_index(sub, sizeof(sub), fpath, k), errstr,
                                errstr_size);
        break;
    }
    case DASHI_FK_STRING_MAP: {
        const dashi_kv *arr = *(dashi_kv *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (n && !arr)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %zu entries but no array",
                              fpath, n);
        if (n > dashi_field_max(f))
            return too_many(fpath, n, dashi_field_max(f), errstr, errstr_size);
        for (size_t k = 0; k < n; k++) {
            if (!arr[k].key || !arr[k].value)
                return missing(path_index(sub, sizeof(sub), fpath, k), errstr, errstr_size);
            if (strlen(arr[k].key) > DASHI_MAX_MAP_KEY_LEN)
                return too_long(path_index(sub, sizeof(sub), fpath, k), strlen(arr[k].key),
                                DASHI_MAX_MAP_KEY_LEN, errstr, errstr_size);
            if (strlen(arr[k].value) > DASHI_MAX_TEXT_LEN)
                return too_long(dashi_path_join(sub, sizeof(sub), fpath, arr[k].key),
                                strlen(arr[k].value), DASHI_MAX_TEXT_LEN, errstr, errstr_size);
        }
        break;
    }
    case DASHI_FK_BOOL:
        break;
    }
    return err;
}

static dashi_err record_validate(const dashi_record_desc *d, const void *rec, const char *path,
                                 char *errstr, size_t errstr_size) {
    char fpath[PATH_MAX_LEN];
    dashi_err err = DASHI_OK;

    for (size_t i = 0; i < d->n_fields && !err; i++)
        err = field_validate(&d->fields[i], rec,
                             dashi_path_join(fpath, sizeof(fpath), path, d->fields[i].name), errstr,
                             errstr_size);
    if (!err && d->check)
        err = d->check(rec, path, errstr, errstr_size);
    return err;
}

dashi_err dashi_event_validate(const dashi_event *ev, char *errstr, size_t errstr_size) {
    const dashi_record_desc *d = ev ? dashi_event_desc(ev->type) : NULL;
    if (!d)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "type: unknown event type");
    return record_validate(d, &ev->u, "", errstr, errstr_size);
}

/* ---------------------------------------------------------------------------------- */
/* JSON in                                                                            */
/* ---------------------------------------------------------------------------------- */

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static dashi_err wrong_type(const char *path, const char *expected, const json_t *v, char *errstr,
                            size_t errstr_size) {
    return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: wrong type: expected %s, got %s",
                      path, expected, json_type_name(v));
}

static dashi_err json_to_string(const json_t *v, char **out, const char *path, char *errstr,
                                size_t errstr_size) {
    if (!json_is_string(v))
        return wrong_type(path, "string", v, errstr, errstr_size);
    if (!(*out = strdup(json_string_value(v))))
        return DASHI_ERR_NOMEM;
    return DASHI_OK;
}

static dashi_err json_to_int(const json_t *v, int64_t *out, const char *path, char *errstr,
                             size_t errstr_size) {
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x == (json_int_t)INT64_MIN)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: integer %lld out of range", path, (long long)x);
        *out = (int64_t)x;
        return DASHI_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d != floor(d))
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: must be an integer (got %.17g)", path, d);
        if (d <= -9223372036854775808.0 || d >= 9223372036854775808.0)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: integer %.17g out of int64 range", path, d);
        *out = (int64_t)d;
        return DASHI_OK;
    }
    return wrong_type(path, "integer", v, errstr, errstr_size);
}

static dashi_err json_to_time(const json_t *v, dashi_time *out, const char *path, char *errstr,
                              size_t errstr_size) {
    char msg[160];
    if (!json_is_string(v))
        return wrong_type(path, "ISO-8601 timestamp string", v, errstr, errstr_size);
    if (dashi_time_parse(json_string_value(v), out, msg, sizeof(msg)) != DASHI_OK)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: %s", path, msg);
    return DASHI_OK;
}

static dashi_err json_to_enum(const json_t *v, dashi_enum_kind k, int *out, const char *path,
                              char *errstr, size_t errstr_size) {
    char expected[256];
    size_t used = 0;
    if (!json_is_string(v))
        return wrong_type(path, "enum symbol string", v, errstr, errstr_size);
    if ((*out = dashi_enum_from_name(k, json_string_value(v))) >= 0)
        return DASHI_OK;
    expected[0] = '\0';
    for (int i = 0; i < dashi_enum_count(k) && used < sizeof(expected); i++) {
        int w = snprintf(expected + used, sizeof(expected) - used, "%s%s", i ? "|" : "",
                         dashi_enum_name(k, i));
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                      "%s: unknown enum symbol '%.60s' (expected %s)", path, json_string_value(v),
                      expected);
}

static dashi_err record_from_json(const dashi_record_desc *d, const json_t *obj, void *rec,
                                  const char *path, char *errstr, size_t errstr_size);

/* Read one present, non-null JSON value v into field f of rec. */
static dashi_err field_from_json(const dashi_field_desc *f, const json_t *v, void *rec,
                                 const char *fpath, char *errstr, size_t errstr_size) {
    void *p = FIELD_PTR(rec, f);
    char sub[PATH_MAX_LEN];
    dashi_err err = DASHI_OK;

    switch (f->kind) {
    case DASHI_FK_STRING:
        return json_to_string(v, (char **)p, fpath, errstr, errstr_size);
    case DASHI_FK_TIME:
        return json_to_time(v, (dashi_time *)p, fpath, errstr, errstr_size);
    case DASHI_FK_INT:
        return json_to_int(v, (int64_t *)p, fpath, errstr, errstr_size);
    case DASHI_FK_BOOL:
        if (!json_is_boolean(v))
            return wrong_type(fpath, "boolean", v, errstr, errstr_size);
        *(bool *)p = json_is_true(v);
        return DASHI_OK;
    case DASHI_FK_ENUM:
        return json_to_enum(v, f->enum_kind, (int *)p, fpath, errstr, errstr_size);
    case DASHI_FK_STRUCT_PTR: {
        void *s;
        if (!json_is_object(v))
            return wrong_type(fpath, "object", v, errstr, errstr_size);
        if (!(s = malloc(f->sub->size)))
            return DASHI_ERR_NOMEM;
        dashi_record_init(f->sub, s);
        *(void **)p = s; /* owned by rec from here: freed by the caller's clear on error */
        return record_from_json(f->sub, v, s, fpath, errstr, errstr_size);
    }
    case DASHI_FK_STRUCT_ARRAY: {
        size_t n;
        char *arr;
        if (!json_is_array(v))
            return wrong_type(fpath, "array", v, errstr, errstr_size);
        if ((n = json_array_size(v)) == 0)
            return DASHI_OK;
        if (n > dashi_field_max(f)) /* before allocating for them */
            return too_many(fpath, n, dashi_field_max(f), errstr, errstr_size);
        if (!(arr = calloc(n, f->sub->size)))
            return DASHI_ERR_NOMEM;
        *(void **)p = arr;
        for (size_t k = 0; k < n; k++) {
            const json_t *e = json_array_get(v, k);
            void *erec = arr + k * f->sub->size;
            dashi_record_init(f->sub, erec);
            FIELD_COUNT(rec, f) = k + 1;
            path_index(sub, sizeof(sub), fpath, k);
            if (!json_is_object(e))
                return wrong_type(sub, "object", e, errstr, errstr_size);
            if ((err = record_from_json(f->sub, e, erec, sub, errstr, errstr_size)))
                return err;
        }
        return DASHI_OK;
    }
    case DASHI_FK_STRING_ARRAY: {
        if (!json_is_array(v))
            return wrong_type(fpath, "array", v, errstr, errstr_size);
        if (json_array_size(v) > dashi_field_max(f))
            return too_many(fpath, json_array_size(v), dashi_field_max(f), errstr, errstr_size);
        for (size_t k = 0; k < json_array_size(v); k++) {
            const json_t *e = json_array_get(v, k);
            if (!json_is_string(e))
                return wrong_type(path_index(sub, sizeof(sub), fpath, k), "string", e, errstr,
                                  errstr_size);
            if (dashi_strv_push((char ***)p, &FIELD_COUNT(rec, f), json_string_value(e)))
                return DASHI_ERR_NOMEM;
        }
        return DASHI_OK;
    }
    case DASHI_FK_ENUM_ARRAY: {
        size_t n;
        int *arr;
        if (!json_is_array(v))
            return wrong_type(fpath, "array", v, errstr, errstr_size);
        if ((n = json_array_size(v)) == 0)
            return DASHI_OK;
        if (n > dashi_field_max(f))
            return too_many(fpath, n, dashi_field_max(f), errstr, errstr_size);
        if (!(arr = calloc(n, sizeof(*arr))))
            return DASHI_ERR_NOMEM;
        *(int **)p = arr;
        FIELD_COUNT(rec, f) = n;
        for (size_t k = 0; k < n; k++)
            if ((err = json_to_enum(json_array_get(v, k), f->enum_kind, &arr[k],
                                    path_index(sub, sizeof(sub), fpath, k), errstr, errstr_size)))
                return err;
        return DASHI_OK;
    }
    case DASHI_FK_STRING_MAP: {
        const char *key;
        json_t *val;
        if (!json_is_object(v))
            return wrong_type(fpath, "object", v, errstr, errstr_size);
        if (json_object_size(v) > dashi_field_max(f))
            return too_many(fpath, json_object_size(v), dashi_field_max(f), errstr, errstr_size);
        /* jansson iterates objects in insertion order: the map keeps the input's order */
        json_object_foreach((json_t *)v, key, val) {
            if (!json_is_string(val))
                return wrong_type(dashi_path_join(sub, sizeof(sub), fpath, key), "string", val,
                                  errstr, errstr_size);
            if (dashi_kv_push((dashi_kv **)p, &FIELD_COUNT(rec, f), key, json_string_value(val)))
                return DASHI_ERR_NOMEM;
        }
        return DASHI_OK;
    }
    }
    return DASHI_OK;
}

/* Convert obj into rec (already initialized). On error rec may be partly filled:
 * the caller clears it. */
static dashi_err record_from_json(const dashi_record_desc *d, const json_t *obj, void *rec,
                                  const char *path, char *errstr, size_t errstr_size) {
    char fpath[PATH_MAX_LEN];
    dashi_err err = DASHI_OK;

    for (size_t i = 0; i < d->n_fields && !err; i++) {
        const dashi_field_desc *f = &d->fields[i];
        const json_t *v = json_object_get(obj, f->name);
        dashi_path_join(fpath, sizeof(fpath), path, f->name);
        if (!v || json_is_null(v)) {
            if (!(f->flags & (DASHI_FF_OPTIONAL | DASHI_FF_DEFAULT)))
                err = missing(fpath, errstr, errstr_size);
            continue;
        }
        err = field_from_json(f, v, rec, fpath, errstr, errstr_size);
    }
    return err;
}

dashi_err dashi_event_from_json(const json_t *obj, dashi_event *out, char *errstr,
                                size_t errstr_size) {
    const json_t *type;
    int t;
    dashi_err err = DASHI_OK;

    if (!out)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "no output event");
    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "event: expected a JSON object, got %s",
                         obj ? json_type_name(obj) : "nothing");
        goto out;
    }
    type = json_object_get(obj, "type");
    if (!type || json_is_null(type)) {
        err = missing("type", errstr, errstr_size);
        goto out;
    }
    if (!json_is_string(type)) {
        err = wrong_type("type", "string", type, errstr, errstr_size);
        goto out;
    }
    if ((t = dashi_event_type_from_name(json_string_value(type))) < 0) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "type: unknown event type '%.60s'",
                         json_string_value(type));
        goto out;
    }
    dashi_event_init(out, (dashi_event_type)t);
    if ((err = record_from_json(dashi_event_desc(out->type), obj, &out->u, "", errstr, errstr_size)))
        goto out;
    err = dashi_event_validate(out, errstr, errstr_size);
out:
    if (err) {
        if (err == DASHI_ERR_NOMEM)
            dashi_errf(err, errstr, errstr_size, "out of memory");
        dashi_event_clear(out);
    }
    return err;
}

/* ---- the reading of plain text straight into the struct ----
 * Most input lines are plain JSON (dashi_json_split's subset) with every field of
 * the right type: they are read into the struct without a JSON tree, which was most
 * of the cost of reading an event (a tree is dozens of allocations, freed at once).
 * This reader only takes what record_from_json() would take without an error, and
 * builds the same struct from it; on anything else — a missing or mistyped field, an
 * unknown enum symbol or type, an unreadable instant, too many elements, text outside
 * the subset — it gives up, the partial struct is freed and the line is read again
 * through the tree, which finds the error and words it. tests/test_event.c compares
 * the two readers on generated streams and mutated lines. */

#define FAST_MAX_MEMBERS 64 /* members of one object, or elements of one array */
#define FAST_WORD_MAX 64    /* an enum symbol or instant longer than this is not read here */

static bool fast_record(const dashi_record_desc *d, const dashi_json_span *keys, const dashi_json_span *vals,
                        int n, void *rec);

/* A string span as a NUL-terminated word in buf[FAST_WORD_MAX]; false when longer. */
static bool fast_word(const dashi_json_span *v, char *buf) {
    if (v->type != '"' || v->len >= FAST_WORD_MAX)
        return false;
    memcpy(buf, v->p, v->len);
    buf[v->len] = '\0';
    return true;
}

static bool fast_enum(const dashi_json_span *v, dashi_enum_kind k, int *out) {
    char word[FAST_WORD_MAX];
    return fast_word(v, word) && (*out = dashi_enum_from_name(k, word)) >= 0;
}

/* The object (or array) in span v split into keys/vals: the count, or -1. */
static int fast_split(const dashi_json_span *v, char type, dashi_json_span *keys, dashi_json_span *vals) {
    return v->type == type ? dashi_json_split(v->p, v->len, type, keys, vals, FAST_MAX_MEMBERS) : -1;
}

/* What field_from_json() makes of v (present, not null), or false. */
static bool fast_field(const dashi_field_desc *f, const dashi_json_span *v, void *rec) {
    void *p = FIELD_PTR(rec, f);
    dashi_json_span keys[FAST_MAX_MEMBERS], vals[FAST_MAX_MEMBERS];
    char word[FAST_WORD_MAX];
    int n;

    switch (f->kind) {
    case DASHI_FK_STRING:
        return v->type == '"' && (*(char **)p = strndup(v->p, v->len)) != NULL;
    case DASHI_FK_TIME:
        return fast_word(v, word) && dashi_time_parse(word, (dashi_time *)p, NULL, 0) == DASHI_OK;
    case DASHI_FK_INT:
        if (v->type != 'i') /* a real: the tree's reader decides */
            return false;
        *(int64_t *)p = (int64_t)v->i; /* 18 digits at most: never INT64_MIN */
        return true;
    case DASHI_FK_BOOL:
        if (v->type != 't' && v->type != 'f')
            return false;
        *(bool *)p = v->type == 't';
        return true;
    case DASHI_FK_ENUM:
        return fast_enum(v, f->enum_kind, (int *)p);
    case DASHI_FK_STRUCT_PTR: {
        void *s;
        if ((n = fast_split(v, '{', keys, vals)) < 0 || !(s = malloc(f->sub->size)))
            return false;
        dashi_record_init(f->sub, s);
        *(void **)p = s; /* owned by rec from here */
        return fast_record(f->sub, keys, vals, n, s);
    }
    case DASHI_FK_STRUCT_ARRAY: {
        dashi_json_span elems[FAST_MAX_MEMBERS];
        char *arr;
        if ((n = fast_split(v, '[', NULL, elems)) < 0)
            return false;
        if (n == 0)
            return true;
        if ((size_t)n > dashi_field_max(f) || !(arr = calloc((size_t)n, f->sub->size)))
            return false;
        *(void **)p = arr;
        for (int k = 0; k < n; k++) {
            void *erec = arr + (size_t)k * f->sub->size;
            int m;
            dashi_record_init(f->sub, erec);
            FIELD_COUNT(rec, f) = (size_t)k + 1;
            if ((m = fast_split(&elems[k], '{', keys, vals)) < 0 || !fast_record(f->sub, keys, vals, m, erec))
                return false;
        }
        return true;
    }
    case DASHI_FK_STRING_ARRAY:
        if ((n = fast_split(v, '[', NULL, vals)) < 0 || (size_t)n > dashi_field_max(f))
            return false;
        for (int k = 0; k < n; k++) {
            char *copy = vals[k].type == '"' ? strndup(vals[k].p, vals[k].len) : NULL;
            int rc = copy ? dashi_strv_push((char ***)p, &FIELD_COUNT(rec, f), copy) : -1;
            free(copy);
            if (rc != 0)
                return false;
        }
        return true;
    case DASHI_FK_ENUM_ARRAY: {
        int *arr;
        if ((n = fast_split(v, '[', NULL, vals)) < 0)
            return false;
        if (n == 0)
            return true;
        if ((size_t)n > dashi_field_max(f) || !(arr = calloc((size_t)n, sizeof(*arr))))
            return false;
        *(int **)p = arr;
        FIELD_COUNT(rec, f) = (size_t)n;
        for (int k = 0; k < n; k++)
            if (!fast_enum(&vals[k], f->enum_kind, &arr[k]))
                return false;
        return true;
    }
    case DASHI_FK_STRING_MAP:
        if ((n = fast_split(v, '{', keys, vals)) < 0 || (size_t)n > dashi_field_max(f))
            return false;
        for (int k = 0; k < n; k++) { /* text order: the order the tree iterates */
            char *key = strndup(keys[k].p, keys[k].len);
            char *val = vals[k].type == '"' ? strndup(vals[k].p, vals[k].len) : NULL;
            int rc = key && val ? dashi_kv_push((dashi_kv **)p, &FIELD_COUNT(rec, f), key, val) : -1;
            free(key);
            free(val);
            if (rc != 0)
                return false;
        }
        return true;
    }
    return false;
}

/* What record_from_json() makes of an object's members, or false. */
static bool fast_record(const dashi_record_desc *d, const dashi_json_span *keys, const dashi_json_span *vals,
                        int n, void *rec) {
    for (size_t i = 0; i < d->n_fields; i++) {
        const dashi_field_desc *f = &d->fields[i];
        size_t name_len = strlen(f->name);
        const dashi_json_span *v = NULL;
        for (int k = 0; k < n && !v; k++)
            if (keys[k].len == name_len && memcmp(keys[k].p, f->name, name_len) == 0)
                v = &vals[k];
        if (!v || v->type == 'n') {
            if (!(f->flags & (DASHI_FF_OPTIONAL | DASHI_FF_DEFAULT)))
                return false; /* missing: the tree's reader says so */
            continue;
        }
        if (!fast_field(f, v, rec))
            return false;
    }
    return true;
}

/* dashi_event_from_json() of text before its validation, without a tree: true when
 * *out was built; false (and *out zeroed) when the tree's reader must do it. */
static bool fast_event(const char *text, size_t len, dashi_event *out) {
    dashi_json_span keys[FAST_MAX_MEMBERS], vals[FAST_MAX_MEMBERS];
    char word[FAST_WORD_MAX];
    int n = dashi_json_split(text, len, '{', keys, vals, FAST_MAX_MEMBERS), t = -1;

    for (int k = 0; k < n && t < 0; k++)
        if (keys[k].len == 4 && memcmp(keys[k].p, "type", 4) == 0) {
            if (!fast_word(&vals[k], word) || (t = dashi_event_type_from_name(word)) < 0)
                return false;
        }
    if (t < 0)
        return false;
    dashi_event_init(out, (dashi_event_type)t);
    if (fast_record(dashi_event_desc(out->type), keys, vals, n, &out->u))
        return true;
    dashi_event_clear(out);
    memset(out, 0, sizeof(*out));
    return false;
}

dashi_err dashi_event_parse(const char *text, size_t len, dashi_event *out, char *errstr,
                            size_t errstr_size) {
    json_error_t jerr;
    json_t *obj = NULL;
    dashi_err err = DASHI_OK;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!text) {
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "not JSON: no text");
        goto out;
    }
    if (len > DASHI_MAX_EVENT_BYTES) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "event: %zu bytes, more than the limit of %d", len, DASHI_MAX_EVENT_BYTES);
        goto out;
    }
    if (out && fast_event(text, len, out)) {
        if ((err = dashi_event_validate(out, errstr, errstr_size)) != DASHI_OK)
            dashi_event_clear(out); /* as dashi_event_from_json() does */
        goto out;
    }
    if (!(obj = dashi_json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "not JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
        goto out;
    }
    err = dashi_event_from_json(obj, out, errstr, errstr_size);
out:
    json_decref(obj);
    return err;
}

/* ---------------------------------------------------------------------------------- */
/* JSON out                                                                           */
/* ---------------------------------------------------------------------------------- */

static json_t *time_to_json(dashi_time t) {
    char buf[DASHI_TIME_STRLEN];
    /* an instant outside the formattable range is a bug upstream: keep it visible as a
     * number (the reader rejects it) rather than formatting garbage */
    if (t < dashi_event_time_min() || t > dashi_event_time_max())
        return json_integer((json_int_t)t);
    return json_string(dashi_time_format(t, buf));
}

static json_t *record_to_json(const dashi_record_desc *d, const void *rec, json_t *obj);

/* New JSON value for field f of rec; *skip set when the field is left out. */
static json_t *field_to_json(const dashi_field_desc *f, const void *rec, int *skip) {
    const void *p = CFIELD_PTR(rec, f);
    json_t *arr = NULL;

    *skip = 0;
    switch (f->kind) {
    case DASHI_FK_STRING: {
        const char *s = *(char *const *)p;
        if (!s) {
            *skip = 1;
            return NULL;
        }
        return json_string(s);
    }
    case DASHI_FK_TIME: {
        dashi_time t = *(const dashi_time *)p;
        if (t == DASHI_TIME_NONE) {
            *skip = 1;
            return NULL;
        }
        return time_to_json(t);
    }
    case DASHI_FK_INT: {
        int64_t v = *(const int64_t *)p;
        if (v == DASHI_INT_NONE && (f->flags & DASHI_FF_OPTIONAL)) {
            *skip = 1;
            return NULL;
        }
        return json_integer((json_int_t)v);
    }
    case DASHI_FK_BOOL:
        return json_boolean(*(const bool *)p);
    case DASHI_FK_ENUM: {
        const char *name = dashi_enum_name(f->enum_kind, *(const int *)p);
        if (!name) {
            *skip = 1; /* NONE, or out of range (which validation reports) */
            return NULL;
        }
        return json_string(name);
    }
    case DASHI_FK_STRUCT_PTR: {
        const void *s = *(void *const *)p;
        if (!s) {
            *skip = 1;
            return NULL;
        }
        return record_to_json(f->sub, s, json_object());
    }
    case DASHI_FK_STRUCT_ARRAY: {
        const char *a = *(char *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (!(arr = json_array()))
            return NULL;
        for (size_t k = 0; a && k < n; k++)
            if (json_array_append_new(arr, record_to_json(f->sub, a + k * f->sub->size,
                                                          json_object())))
                goto fail;
        return arr;
    }
    case DASHI_FK_STRING_ARRAY: {
        char *const *a = *(char **const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (!(arr = json_array()))
            return NULL;
        for (size_t k = 0; a && k < n; k++)
            if (json_array_append_new(arr, json_string(a[k] ? a[k] : "")))
                goto fail;
        return arr;
    }
    case DASHI_FK_ENUM_ARRAY: {
        const int *a = *(int *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (!(arr = json_array()))
            return NULL;
        for (size_t k = 0; a && k < n; k++) {
            const char *name = dashi_enum_name(f->enum_kind, a[k]);
            if (name && json_array_append_new(arr, json_string(name)))
                goto fail;
        }
        return arr;
    }
    case DASHI_FK_STRING_MAP: {
        const dashi_kv *a = *(dashi_kv *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        if (!(arr = json_object()))
            return NULL;
        for (size_t k = 0; a && k < n; k++)
            if (a[k].key && json_object_set_new(arr, a[k].key, json_string(a[k].value ? a[k].value : "")))
                goto fail;
        return arr;
    }
    }
    return NULL;
fail:
    json_decref(arr);
    return NULL;
}

/* Fill obj (a new reference, taken) with rec's fields; returns obj, or NULL (obj
 * released) on failure. */
static json_t *record_to_json(const dashi_record_desc *d, const void *rec, json_t *obj) {
    if (!obj)
        return NULL;
    for (size_t i = 0; i < d->n_fields; i++) {
        int skip;
        json_t *v = field_to_json(&d->fields[i], rec, &skip);
        if (skip)
            continue;
        if (!v || json_object_set_new(obj, d->fields[i].name, v)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *dashi_event_to_json(const dashi_event *ev) {
    const dashi_record_desc *d = ev ? dashi_event_desc(ev->type) : NULL;
    json_t *obj;

    if (!d || !(obj = json_object()))
        return NULL;
    if (json_object_set_new(obj, "type", json_string(d->name))) {
        json_decref(obj);
        return NULL;
    }
    return record_to_json(d, &ev->u, obj);
}

/* ---------------------------------------------------------------------------------- */
/* JSON text out                                                                      */
/* ---------------------------------------------------------------------------------- */

/* dashi_event_dump writes the text of json_dumps(dashi_event_to_json(ev), JSON_COMPACT |
 * JSON_PRESERVE_ORDER) straight from the struct, without building the JSON tree: it
 * runs for every output and every input's de-duplication digest. The same walk as
 * record_to_json, byte for byte: the same fields left out, strings escaped as
 * jansson does ('"', '\\' and control characters; \u00XX in upper-case hex for those
 * without a short form), a map key given twice keeps its first place and its last
 * value, and a string that is not UTF-8 fails the whole dump (json_string refuses
 * it). tests/test_differential.c compares the two paths. */

typedef struct text_buf {
    char *p; /* owned; NUL-terminated */
    size_t len, cap;
    int failed; /* out of memory, or a string jansson would refuse */
} text_buf;

/* Room for n more bytes and the NUL; 0 (and failed) when there is none. */
static int tb_room(text_buf *b, size_t n) {
    if (b->failed)
        return 0;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    return 1;
}

static void tb_put(text_buf *b, const char *s, size_t n) {
    if (!tb_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

size_t dashi_json_quote(char *dst, const char *s, size_t n, int *bad_utf8) {
    static const char hex[] = "0123456789ABCDEF";
    int utf8_checked = 0;
    char *p = dst;
    size_t i = 0;
    *p++ = '"';
    while (i < n) {
        uint64_t word;
        if (n - i >= 8) { /* eight plain bytes at once (most strings are plain ASCII) */
            memcpy(&word, s + i, 8);
            if (dashi_json_plain8(word)) {
                memcpy(p, &word, 8);
                p += 8;
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i++];
        if (c >= 0x20 && c != '"' && c != '\\') {
            if (c >= 0x80 && !utf8_checked) { /* the rest of s, once: bytes before are ASCII */
                *bad_utf8 |= !dashi_utf8_valid(s + i - 1, n - i + 1);
                utf8_checked = 1;
            }
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            memcpy(p, "u00", 3);
            p[3] = hex[c >> 4];
            p[4] = hex[c & 15];
            p += 5;
        }
    }
    *p++ = '"';
    *p = '\0';
    return (size_t)(p - dst);
}

static void tb_string(text_buf *b, const char *s) {
    size_t n = strlen(s);
    int bad = 0;
    if (!tb_room(b, DASHI_JSON_QUOTE_ROOM(n)))
        return;
    b->len += dashi_json_quote(b->p + b->len, s, n, &bad);
    b->failed |= bad;
}

static void tb_int(text_buf *b, int64_t v) {
    char tmp[24];
    size_t i = sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    tb_put(b, tmp + i, sizeof(tmp) - i);
}

/* '"name":' — a separator first unless it is the object's first member. */
static void tb_key(text_buf *b, const char *name, int *first) {
    if (!*first)
        tb_put(b, ",", 1);
    *first = 0;
    tb_string(b, name);
    tb_put(b, ":", 1);
}

static void record_write(text_buf *b, const dashi_record_desc *d, const void *rec, int first);

/* A map as record_to_json builds it with json_object_set_new: members without a key
 * are left out, and a repeated key keeps its first place with its last value. */
static void map_write(text_buf *b, const dashi_kv *a, size_t n) {
    int first = 1;
    tb_put(b, "{", 1);
    for (size_t k = 0; a && k < n; k++) {
        size_t last = k, j;
        if (!a[k].key)
            continue;
        for (j = 0; j < k && !(a[j].key && strcmp(a[j].key, a[k].key) == 0); j++)
            ;
        if (j < k)
            continue; /* written at its first place */
        for (j = k + 1; j < n; j++)
            if (a[j].key && strcmp(a[j].key, a[k].key) == 0)
                last = j;
        tb_key(b, a[k].key, &first);
        tb_string(b, a[last].value ? a[last].value : "");
    }
    tb_put(b, "}", 1);
}

/* Field f of rec as field_to_json makes it, after its key; nothing when it is left out. */
static void field_write(text_buf *b, const dashi_field_desc *f, const void *rec, int *first) {
    const void *p = CFIELD_PTR(rec, f);
    char tbuf[DASHI_TIME_STRLEN];
    const char *name;

    switch (f->kind) {
    case DASHI_FK_STRING:
        if (*(char *const *)p) {
            tb_key(b, f->name, first);
            tb_string(b, *(char *const *)p);
        }
        break;
    case DASHI_FK_TIME: {
        dashi_time t = *(const dashi_time *)p;
        if (t == DASHI_TIME_NONE)
            break;
        tb_key(b, f->name, first);
        if (t < dashi_event_time_min() || t > dashi_event_time_max())
            tb_int(b, t); /* as time_to_json */
        else
            tb_string(b, dashi_time_format(t, tbuf));
        break;
    }
    case DASHI_FK_INT: {
        int64_t v = *(const int64_t *)p;
        if (v == DASHI_INT_NONE && (f->flags & DASHI_FF_OPTIONAL))
            break;
        tb_key(b, f->name, first);
        tb_int(b, v);
        break;
    }
    case DASHI_FK_BOOL:
        tb_key(b, f->name, first);
        tb_put(b, *(const bool *)p ? "true" : "false", *(const bool *)p ? 4 : 5);
        break;
    case DASHI_FK_ENUM:
        if ((name = dashi_enum_name(f->enum_kind, *(const int *)p)) != NULL) {
            tb_key(b, f->name, first);
            tb_string(b, name);
        }
        break;
    case DASHI_FK_STRUCT_PTR:
        if (*(void *const *)p) {
            tb_key(b, f->name, first);
            tb_put(b, "{", 1);
            record_write(b, f->sub, *(void *const *)p, 1);
        }
        break;
    case DASHI_FK_STRUCT_ARRAY: {
        const char *a = *(char *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        tb_key(b, f->name, first);
        tb_put(b, "[", 1);
        for (size_t k = 0; a && k < n; k++) {
            tb_put(b, k ? ",{" : "{", k ? 2 : 1);
            record_write(b, f->sub, a + k * f->sub->size, 1);
        }
        tb_put(b, "]", 1);
        break;
    }
    case DASHI_FK_STRING_ARRAY: {
        char *const *a = *(char **const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        tb_key(b, f->name, first);
        tb_put(b, "[", 1);
        for (size_t k = 0; a && k < n; k++) {
            if (k)
                tb_put(b, ",", 1);
            tb_string(b, a[k] ? a[k] : "");
        }
        tb_put(b, "]", 1);
        break;
    }
    case DASHI_FK_ENUM_ARRAY: {
        const int *a = *(int *const *)p;
        size_t n = CFIELD_COUNT(rec, f);
        int none = 1;
        tb_key(b, f->name, first);
        tb_put(b, "[", 1);
        for (size_t k = 0; a && k < n; k++)
            if ((name = dashi_enum_name(f->enum_kind, a[k])) != NULL) {
                if (!none)
                    tb_put(b, ",", 1);
                none = 0;
                tb_string(b, name);
            }
        tb_put(b, "]", 1);
        break;
    }
    case DASHI_FK_STRING_MAP:
        tb_key(b, f->name, first);
        map_write(b, *(dashi_kv *const *)p, CFIELD_COUNT(rec, f));
        break;
    }
}

/* rec's fields and the closing brace of an object already opened; first: no member
 * written yet. */
static void record_write(text_buf *b, const dashi_record_desc *d, const void *rec, int first) {
    for (size_t i = 0; i < d->n_fields && !b->failed; i++)
        field_write(b, &d->fields[i], rec, &first);
    tb_put(b, "}", 1);
}

char *dashi_event_dump(const dashi_event *ev) {
    const dashi_record_desc *d = ev ? dashi_event_desc(ev->type) : NULL;
    text_buf b = {0};
    int first = 1;

    if (!d)
        goto out;
    tb_put(&b, "{", 1);
    tb_key(&b, "type", &first);
    tb_string(&b, d->name);
    record_write(&b, d, &ev->u, first);
out:
    if (b.failed) {
        free(b.p);
        b.p = NULL;
    }
    return b.p;
}
