/* event.h — the input and output events of EVENTS.md as C structs, and their JSON form.
 *
 * One struct per event type, gathered in the tagged union dashi_event. Field names
 * are the JSON/Avro names of ../shared/spec/EVENTS.md, so the generic code in
 * event.c can walk a descriptor table (name, kind, offset) per struct to read and
 * write JSON, validate, free, and generate the Avro schemas in schemas/: one table
 * is the single source of truth for the wire, the JSON form and the schemas.
 *
 * Ownership: every char* and array in a dashi_event is owned by the event (heap,
 * freed by dashi_event_clear). Optional values: char* NULL, enum DASHI_ENUM_NONE,
 * integer DASHI_INT_NONE, instant DASHI_TIME_NONE, nested struct pointer NULL.
 */
#ifndef DASHI_EVENT_H
#define DASHI_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/error.h"
#include "core/time.h"

#define DASHI_ENUM_NONE (-1)
#define DASHI_INT_NONE INT64_MIN

/* ---- limits: validation refuses larger values (docs/SECURITY.md) ----
 * They bound every state key built from an input string (no key buffer can be cut,
 * so two long ids can never collide) and every sum of amounts (10^12 fen per
 * amount and per order, at most DASHI_MAX_ITEMS items: a sum of one order stays
 * below 2^48, and across orders the commission code saturates). */
#define DASHI_MAX_ID_LEN 128        /* bytes of an id, uid, code or category (event_id, order_id, ...) */
#define DASHI_MAX_VALUE_LEN 256     /* bytes of an identity value (phone, email, ID number, device) */
#define DASHI_MAX_TEXT_LEN 1024     /* bytes of free text (RiskAction.reason) and of output texts */
#define DASHI_MAX_IDENTITIES 32     /* identities per array of one event */
#define DASHI_MAX_ITEMS 256         /* items (cart lines) per order */
#define DASHI_MAX_ARRAY_LEN 4096    /* elements of any other array or map (outputs) */
#define DASHI_MAX_AMOUNT 1000000000000LL /* fen per amount and per order (10^10 RMB) */
#define DASHI_MAX_EVENT_BYTES (1024 * 1024) /* one JSON line, one Avro record */

typedef enum dashi_event_type {
    /* inputs */
    DASHI_EV_ACCOUNT_REGISTERED = 0,
    DASHI_EV_LINK_VISITED,
    DASHI_EV_REAL_NAME_VERIFIED,
    DASHI_EV_IDENTITY_CHANGED,
    DASHI_EV_AMBASSADOR_ENROLLED,
    DASHI_EV_ACCOUNT_FLAGGED,
    DASHI_EV_CUSTOMER_BOUND,
    DASHI_EV_CAMPAIGN_ENROLLED,
    DASHI_EV_ORDER_PAID,
    DASHI_EV_ORDER_REFUNDED,
    DASHI_EV_RISK_ACTION,
    /* outputs */
    DASHI_EV_SAME_PERSON_DECISION,
    DASHI_EV_COMMISSION_EVENT,
    DASHI_EV_CAMPAIGN_EVENT,
    DASHI_EV_TIER_ASSIGNED,
    DASHI_EV_FRAUD_ALERT,
    DASHI_EV__COUNT
} dashi_event_type;

#define DASHI_EV__FIRST_OUTPUT DASHI_EV_SAME_PERSON_DECISION

/* ---- enumerations (JSON/Avro symbols are the upper-case names after the prefix) ---- */
typedef enum { DASHI_ACCOUNT_PERSONAL, DASHI_ACCOUNT_ENTERPRISE } dashi_account_type; /* also RealNameVerified.kind */
typedef enum { DASHI_METHOD_PASSWORD, DASHI_METHOD_PHONE_CODE, DASHI_METHOD_OTHER } dashi_reg_method;
typedef enum { DASHI_ID_PHONE, DASHI_ID_EMAIL, DASHI_ID_ID_DOC, DASHI_ID_DEVICE, DASHI_ID__COUNT } dashi_identity_kind;
typedef enum { DASHI_FLAG_EMPLOYEE, DASHI_FLAG_OUTSOURCED, DASHI_FLAG_ENTERPRISE_CERTIFIED, DASHI_FLAG_PARTNER_SALES } dashi_flag;
typedef enum { DASHI_BIND_DISTRIBUTOR, DASHI_BIND_CBM, DASHI_BIND_TELESALES, DASHI_BIND_PPL } dashi_binding;
typedef enum { DASHI_ORDER_NEW, DASHI_ORDER_RENEWAL, DASHI_ORDER_UPGRADE } dashi_order_type;
typedef enum { DASHI_BILLING_PREPAID, DASHI_BILLING_POSTPAID } dashi_billing;
typedef enum { DASHI_REFUND_REFUND, DASHI_REFUND_DOWNGRADE } dashi_refund_kind;
typedef enum { DASHI_RISK_FREEZE, DASHI_RISK_UNFREEZE, DASHI_RISK_VOID } dashi_risk_action_kind;
typedef enum { DASHI_SP_NEW_PERSON, DASHI_SP_SAME_PERSON } dashi_sp_status;
typedef enum {
    DASHI_CE_PENDING, DASHI_CE_ADJUSTED, DASHI_CE_CANCELLED,
    DASHI_CE_CONFIRMED, DASHI_CE_CLAWBACK, DASHI_CE_REJECTED
} dashi_commission_kind;
typedef enum { DASHI_CUST_PURE_NEW, DASHI_CUST_REGISTERED_NEW } dashi_customer_kind;
typedef enum { DASHI_TIER_DISCIPLE, DASHI_TIER_HALL_MASTER, DASHI_TIER_HELMSMAN, DASHI_TIER_HEAD, DASHI_TIER__COUNT } dashi_tier;
typedef enum {
    DASHI_CAMP_PROGRESS, DASHI_CAMP_TIER_REACHED, DASHI_CAMP_TIER_LOST, DASHI_CAMP_DRAW_GRANTED,
    DASHI_CAMP_DRAW_REVOKED, DASHI_CAMP_BONUS, DASHI_CAMP_BONUS_REVOKED, DASHI_CAMP_RANK, DASHI_CAMP_SETTLED
} dashi_campaign_kind;
typedef enum { DASHI_UNIT_CNY, DASHI_UNIT_YUNQI } dashi_unit;
typedef enum { DASHI_SEV_LOW, DASHI_SEV_MEDIUM, DASHI_SEV_HIGH } dashi_severity;

/* ---- nested records ---- */
typedef struct dashi_identity {
    int kind;      /* dashi_identity_kind, required */
    char *value;   /* required; clear text unless hashed (never stored or logged as is) */
    bool hashed;   /* default false */
} dashi_identity;

typedef struct dashi_item {
    char *item_id, *product_code, *category; /* required */
    int64_t list_amount, discount_amount, paid_amount; /* fen, >= 0, paid = list - discount */
} dashi_item;

typedef struct dashi_referral {
    char *ambassador_uid, *link_id; /* required */
    char *campaign_id;              /* optional */
} dashi_referral;

typedef struct dashi_installment {
    int64_t seq;
    dashi_time due_at;
    int64_t amount;
} dashi_installment;

typedef struct dashi_kv {
    char *key, *value;
} dashi_kv;

/* ---- inputs ---- */
typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
    int account_type; int method;                       /* dashi_account_type, dashi_reg_method */
    dashi_identity *identities; size_t n_identities;
    dashi_referral *referral;                           /* optional */
} dashi_account_registered;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
    char *ambassador_uid, *link_id, *campaign_id;       /* campaign_id optional */
    bool logged_in;
} dashi_link_visited;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
    int kind;                                           /* dashi_account_type */
    dashi_identity *identities; size_t n_identities;
} dashi_real_name_verified;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
    dashi_identity *added; size_t n_added;
    dashi_identity *removed; size_t n_removed;
} dashi_identity_changed;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
} dashi_ambassador_enrolled;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
    int flag; bool set;                                 /* dashi_flag */
} dashi_account_flagged;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid;
    int binding;                                        /* dashi_binding */
} dashi_customer_bound;

typedef struct {
    char *event_id; dashi_time occurred_at; char *uid; char *campaign_id;
} dashi_campaign_enrolled;

typedef struct {
    char *event_id; dashi_time occurred_at; char *order_id; char *uid;
    char *cart_id;                                      /* optional */
    int order_type; int billing;                        /* dashi_order_type, dashi_billing */
    char *campaign_id;                                  /* optional */
    dashi_item *items; size_t n_items;
} dashi_order_paid;

typedef struct {
    char *event_id; dashi_time occurred_at; char *order_id; char *uid;
    int kind;                                           /* dashi_refund_kind */
    int64_t amount;                                     /* fen, > 0 */
    char *item_id;                                      /* optional */
} dashi_order_refunded;

typedef struct {
    char *event_id; dashi_time occurred_at;
    int action;                                         /* dashi_risk_action_kind */
    char *ambassador_uid;
    char *order_id, *campaign_id;                       /* optional */
    char *reason;
} dashi_risk_action;

/* ---- outputs ---- */
typedef struct {
    char *decision_id; dashi_time decided_at; char *uid; char *person_id;
    int status;                                         /* dashi_sp_status */
    bool paid_before;
    int *matched_on; size_t n_matched_on;               /* dashi_identity_kind values */
    bool final;
} dashi_same_person_decision;

typedef struct {
    char *commission_id;
    int event;                                          /* dashi_commission_kind */
    dashi_time occurred_at;
    char *ambassador_uid, *customer_uid, *person_id, *order_id;
    int customer_kind;                                  /* optional dashi_customer_kind */
    int tier;                                           /* optional dashi_tier */
    int64_t rate_bp;                                    /* optional */
    int64_t base_amount, amount, delta, bonus_amount;
    dashi_time review_ends_at;                          /* optional */
    dashi_installment *installments; size_t n_installments;
    char **reasons; size_t n_reasons;
    char *rule_version;
    char *caused_by;
} dashi_commission_event;

typedef struct {
    char *campaign_event_id, *campaign_id, *promoter_uid;
    int kind;                                           /* dashi_campaign_kind */
    char *ladder;                                       /* optional */
    int64_t count;
    int64_t tier_threshold;                             /* optional */
    int64_t reward_amount, reward_delta;
    int unit;                                           /* dashi_unit */
    dashi_time expires_at;                              /* optional */
    char *customer_uid;                                 /* optional */
    int64_t rank;                                       /* optional */
    dashi_time occurred_at;
    char *caused_by;
} dashi_campaign_event;

typedef struct {
    char *ambassador_uid;
    char *month;                                        /* "YYYY-MM" */
    int tier;                                           /* dashi_tier */
    int64_t basis;
    char *rule_version;
} dashi_tier_assigned;

typedef struct {
    char *alert_id, *kind;
    int severity;                                       /* dashi_severity */
    dashi_time occurred_at;
    char **subject_uids; size_t n_subject_uids;
    char *ambassador_uid, *order_id;                    /* optional */
    dashi_kv *evidence; size_t n_evidence;              /* JSON object {string: string}, Avro map */
    char *caused_by;
} dashi_fraud_alert;

typedef struct dashi_event {
    dashi_event_type type;
    union {
        dashi_account_registered account_registered;
        dashi_link_visited link_visited;
        dashi_real_name_verified real_name_verified;
        dashi_identity_changed identity_changed;
        dashi_ambassador_enrolled ambassador_enrolled;
        dashi_account_flagged account_flagged;
        dashi_customer_bound customer_bound;
        dashi_campaign_enrolled campaign_enrolled;
        dashi_order_paid order_paid;
        dashi_order_refunded order_refunded;
        dashi_risk_action risk_action;
        dashi_same_person_decision same_person_decision;
        dashi_commission_event commission_event;
        dashi_campaign_event campaign_event;
        dashi_tier_assigned tier_assigned;
        dashi_fraud_alert fraud_alert;
    } u;
} dashi_event;

/* ---- names ---- */
const char *dashi_event_type_name(dashi_event_type t);           /* "AccountRegistered" */
int dashi_event_type_from_name(const char *name);                 /* -1 when unknown */
int dashi_event_type_is_input(dashi_event_type t);
const char *dashi_event_topic(dashi_event_type t);                /* EVENTS.md topic: "registration", "commission", ... */

/* Symbol of an enum value of the given kind table, e.g.
 * dashi_enum_name(DASHI_ENUM_TIER, DASHI_TIER_HEAD) == "HEAD"; NULL when out of range. */
typedef enum {
    DASHI_ENUM_ACCOUNT_TYPE, DASHI_ENUM_METHOD, DASHI_ENUM_IDENTITY_KIND, DASHI_ENUM_FLAG,
    DASHI_ENUM_BINDING, DASHI_ENUM_ORDER_TYPE, DASHI_ENUM_BILLING, DASHI_ENUM_REFUND_KIND,
    DASHI_ENUM_RISK_ACTION, DASHI_ENUM_SP_STATUS, DASHI_ENUM_COMMISSION_KIND,
    DASHI_ENUM_CUSTOMER_KIND, DASHI_ENUM_TIER, DASHI_ENUM_CAMPAIGN_KIND, DASHI_ENUM_UNIT,
    DASHI_ENUM_SEVERITY, DASHI_ENUM__COUNT
} dashi_enum_kind;
const char *dashi_enum_name(dashi_enum_kind k, int value);
int dashi_enum_from_name(dashi_enum_kind k, const char *name);    /* -1 when unknown */

/* ---- life cycle ---- */
/* Zero ev, set its type, and set every optional scalar to its NONE value. */
void dashi_event_init(dashi_event *ev, dashi_event_type type);
/* Free everything ev owns and leave it zeroed; NULL is a no-op. */
void dashi_event_clear(dashi_event *ev);
/* Deep copy of src into dst (dst is overwritten, not cleared first). */
dashi_err dashi_event_copy(dashi_event *dst, const dashi_event *src);

/* ---- accessors common to every type ---- */
const char *dashi_event_id(const dashi_event *ev);   /* event_id, or the output's own id (decision_id, commission_id+event ...) */
dashi_time dashi_event_time(const dashi_event *ev);  /* occurred_at, decided_at; month start for TierAssigned */
const char *dashi_event_key(const dashi_event *ev);  /* Kafka record key of EVENTS.md (uid, ambassador_uid, promoter_uid, first subject) */

/* ---- JSON form ---- */
/* Read and validate one event object. On failure returns DASHI_ERR_INVALID (or
 * _PARSE) with errstr naming the field path, e.g. "items[0].paid_amount: must equal
 * list_amount - discount_amount (900 != 1000 - 0)"; out is left cleared. Validation:
 * required fields, types, enum symbols, amounts >= 0 (refund amount > 0), the paid
 * amount identity, timestamps with offset. Unknown fields are ignored. */
dashi_err dashi_event_from_json(const json_t *obj, dashi_event *out, char *errstr, size_t errstr_size);
/* Same from one line of text (NDJSON); errors as above (also "not JSON: ...", and
 * text longer than DASHI_MAX_EVENT_BYTES is refused unread). */
dashi_err dashi_event_parse(const char *text, size_t len, dashi_event *out, char *errstr, size_t errstr_size);
/* New JSON object for ev ("type" first, fields in EVENTS.md order, absent optionals
 * left out, instants in +08:00). Returns a new reference; NULL on out of memory. */
json_t *dashi_event_to_json(const dashi_event *ev);
/* Compact one-line JSON text of ev (malloc'ed, caller frees); NULL on out of memory. */
char *dashi_event_dump(const dashi_event *ev);

/* The JSON string literal of s[0..n) (quotes included, control characters, '"' and
 * '\\' escaped, other bytes as they are) written to dst, which must have room for
 * DASHI_JSON_QUOTE_ROOM(n) bytes (borrows both); NUL-terminated. Returns the length
 * written, without the NUL. Sets *bad_utf8 when s is not valid UTF-8. The one string
 * writer of the hand-written JSON of events and of the view. */
#define DASHI_JSON_QUOTE_ROOM(n) ((n) * 6 + 3)
size_t dashi_json_quote(char *dst, const char *s, size_t n, int *bad_utf8);

/* ---- helpers for building outputs ---- */
char *dashi_strdup(const char *s);                    /* NULL-safe strdup; aborts on OOM */
/* Append a copy of s to a char** array (*arr, *n); returns 0, or -1 on OOM. */
int dashi_strv_push(char ***arr, size_t *n, const char *s);
/* Append a copy of key/value to an evidence map. */
int dashi_kv_push(dashi_kv **arr, size_t *n, const char *key, const char *value);

#endif
