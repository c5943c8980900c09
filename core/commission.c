/* commission.c — association, commission, tiers and points: who earns what for a customer's order (RULES A, C, T, P, R3, V1).
 *
 * Design. Every decision reads the rule set in force at the instant it judges
 * (ctx->set at ctx->now; an order's own set, dashi_rules_at(order time), for
 * everything that follows the order: review length, rate, cap, instalments).
 * State is four kinds of JSON records, all owned here:
 *
 *   asc:<uid>        a customer account: "amb" (associated ambassador), "kind"
 *                    PURE_NEW|REGISTERED_NEW|OLD (how THIS account was associated),
 *                    "since"/"until" (half-open window), "protected_until" (A3),
 *                    "keep_until" (A5 pre-2021-10-26 pure-new window after the first
 *                    purchase), "bound" (A6 binding) and "blocked" (last refused
 *                    ambassador), "cap_used" (C9 commission granted on first-purchase
 *                    orders), "orders" (order ids with a commission of this customer).
 *   amb:<uid>        an ambassador (or a flagged uid): "enrolled_at", "flags" {FLAG:true}
 *                    (A7), "frozen" (R3 freeze of the whole ambassador), "tier" +
 *                    "tier_month" + "tier_basis" (current month's tier), "open" (order
 *                    ids of commissions not final), "nu" {month:{person:paid}} (T1 valid
 *                    new users by the month of their first purchase), "yq" {month:yunqi}
 *                    and "yunqi" (T2, P1 confirmed commission credited), "awakened_at" /
 *                    "awakened_by" (P2: when yunqi became redeemable, by which order).
 *   ord:<order_id>   an order paying > 0: "uid", "at", "cart", "type", "paid",
 *                    "paid_left", "items" [{id, elig, left}], and "cm" its one outcome
 *                    (C11): id, amb, person, state PENDING|CONFIRMED|CANCELLED|REJECTED,
 *                    kind, tier, rate, limit (most it may reach: cap or per-order cap),
 *                    base, amount, bonus, version, review_ends, review_over, frozen,
 *                    first, notes (reasons a commissioned outcome carries), reasons
 *                    (of a rejection or cancellation), nu_month/nu_person/nu_paid
 *                    (its contribution to the tier count), installments, alerted.
 *   cm:ambassadors   {"uids": [...], "c": n} every enrolled ambassador in enrolment
 *                    order, for the month timer: the first AMB_INDEX_CHUNK uids here,
 *                    the next ones in "cm:ambassadors:1".."cm:ambassadors:<n>"
 *                    (AMB_INDEX_CHUNK each; "c" absent: none), so an enrolment rewrites
 *                    one short record, not a list of every ambassador (which made
 *                    enrolments quadratic in bytes read and written).
 *
 * Timers: "cm:review:<order_id>" at the end of the review (C8), "cm:month:YYYY-MM"
 * at 00:00 CST of each month (T3; the next is scheduled when one fires).
 * An ambassador's tier for the month is decided when the month starts, so an order
 * reads the current "tier"; yunqi count in the month the review ends. The first
 * confirmed order of an ambassador awakens the yunqi (P2; before the rule, at
 * enrolment) and is kept in amb: for `explain`; no output carries it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"

#define FEN_PER_RMB 100  /* unit definitions, not rules: 1 RMB = 100 fen, */
#define BP_WHOLE 10000   /* 100% = 10,000 basis points */
#define MAX_CODES 12
#define AMB_INDEX_CHUNK 256 /* uids per record of the ambassador index (cm:ambassadors) */

typedef struct codes {
    const char *v[MAX_CODES];
    size_t n;
} codes;

static void codes_add(codes *c, const char *code) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i], code) == 0)
            return;
    if (c->n < MAX_CODES)
        c->v[c->n++] = code;
}

/* ------------------------------------------------------------------ JSON helpers */

static int64_t jint(const json_t *o, const char *k, int64_t dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static const char *jstr0(const json_t *o, const char *k) {
    const char *s = jstr(o, k);
    return s ? s : "";
}

static void set_int(json_t *o, const char *k, int64_t v) {
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

static void set_str(json_t *o, const char *k, const char *v) {
    json_object_set_new(o, k, json_string(v ? v : ""));
}

static void set_bool(json_t *o, const char *k, bool v) {
    json_object_set_new(o, k, json_boolean(v));
}

static json_t *jarr(json_t *o, const char *k) {
    json_t *a = json_object_get(o, k);
    if (!json_is_array(a)) {
        a = json_array();
        json_object_set_new(o, k, a);
    }
    return a;
}

static void arr_add_unique(json_t *arr, const char *s) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return;
    }
    json_array_append_new(arr, json_string(s));
}

static void arr_remove(json_t *arr, const char *s) {
    for (size_t i = json_array_size(arr); i-- > 0;)
        if (json_is_string(json_array_get(arr, i)) && strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            json_array_remove(arr, i);
}

/* A copy of the strings of a JSON array (for iterating while the array changes). */
static char **arr_copy(const json_t *arr, size_t *n) {
    size_t cnt = json_array_size(arr), k = 0;
    char **out = calloc(cnt ? cnt : 1, sizeof(*out));
    for (size_t i = 0; out && i < cnt; i++)
        if (json_is_string(json_array_get(arr, i)))
            out[k++] = dashi_strdup(json_string_value(json_array_get(arr, i)));
    *n = k;
    return out;
}

static void strv_free(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void codes_to_json(json_t *o, const char *k, const codes *c) {
    json_t *a = json_array();
    for (size_t i = 0; i < c->n; i++)
        json_array_append_new(a, json_string(c->v[i]));
    json_object_set_new(o, k, a);
}

/* ------------------------------------------------------------------ arithmetic */

/* a + b, held at the int64 bounds: sums of amounts across orders (yunqi, the cap,
 * tier bases) cannot wrap. One order's amounts are bounded by validation
 * (DASHI_MAX_AMOUNT per order); only a long history of such orders comes near. */
static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Half-up to the fen, once (RULES: rounding). */
static int64_t round_rate(int64_t base, int64_t rate_bp) {
    return (int64_t)(((__int128)base * rate_bp + BP_WHOLE / 2) / BP_WHOLE);
}

static int64_t days_ms(int64_t days) {
    return days * DASHI_MS_PER_DAY;
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

/* ------------------------------------------------------------------ outputs */

static const char *kind_name(int kind) {
    return dashi_enum_name(DASHI_ENUM_CUSTOMER_KIND, kind);
}

static const char *tier_name(int tier) {
    return dashi_enum_name(DASHI_ENUM_TIER, tier);
}

static int tier_of(const char *name, const dashi_ruleset *set) {
    int t = name ? dashi_enum_from_name(DASHI_ENUM_TIER, name) : -1;
    return t >= 0 ? t : (int)dashi_ruleset_tier_for(set, 0);
}

/* Is the commission frozen, by itself or through its ambassador (R3)? */
static bool cm_frozen(dashi_ctx *ctx, const json_t *cm) {
    if (json_is_true(json_object_get(cm, "frozen")))
        return true;
    const json_t *amb = dashi_view_getf(ctx->view, "amb:%s", jstr0(cm, "amb"));
    return json_is_true(json_object_get(amb, "frozen"));
}

/* Emit one CommissionEvent for the order's commission as it stands now. */
static void emit_commission(dashi_ctx *ctx, const char *order_id, const json_t *ord, int kind, int64_t delta,
                            const codes *reasons, const dashi_installment *inst, size_t n_inst) {
    const json_t *cm = json_object_get(ord, "cm");
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_COMMISSION_EVENT);
    dashi_commission_event *ce = &ev.u.commission_event;
    ce->commission_id = dashi_strdup(jstr0(cm, "id"));
    ce->event = kind;
    ce->occurred_at = ctx->now;
    ce->ambassador_uid = dashi_strdup(jstr0(cm, "amb"));
    ce->customer_uid = dashi_strdup(jstr0(ord, "uid"));
    /* the customer's person as of now: a merge since the order (S4) shows here */
    dashi_person_info who;
    dashi_identity_person(ctx, jstr0(ord, "uid"), &who);
    ce->person_id = dashi_strdup(who.person_id[0] ? who.person_id : jstr0(cm, "person"));
    ce->order_id = dashi_strdup(order_id);
    const char *k = jstr(cm, "kind");
    ce->customer_kind = k ? dashi_enum_from_name(DASHI_ENUM_CUSTOMER_KIND, k) : DASHI_ENUM_NONE;
    k = jstr(cm, "tier");
    ce->tier = k ? dashi_enum_from_name(DASHI_ENUM_TIER, k) : DASHI_ENUM_NONE;
    ce->rate_bp = jint(cm, "rate", DASHI_INT_NONE);
    ce->base_amount = jint(cm, "base", 0);
    ce->amount = jint(cm, "amount", 0);
    ce->delta = delta;
    ce->bonus_amount = jint(cm, "bonus", 0);
    ce->review_ends_at = jint(cm, "review_ends", DASHI_TIME_NONE);
    if (n_inst) {
        ce->installments = calloc(n_inst, sizeof(*ce->installments));
        if (!ce->installments)
            abort();
        memcpy(ce->installments, inst, n_inst * sizeof(*inst));
        ce->n_installments = n_inst;
    }
    for (size_t i = 0; reasons && i < reasons->n; i++)
        dashi_strv_push(&ce->reasons, &ce->n_reasons, reasons->v[i]);
    ce->rule_version = dashi_strdup(jstr0(cm, "version"));
    ce->caused_by = dashi_strdup(ctx->cause ? ctx->cause : "");
    dashi_campaign_on_commission(ctx, ce);
    dashi_ctx_emit(ctx, &ev);
    dashi_event_clear(&ev);
}

/* Reasons a live commission carries: its notes, and RISK_FROZEN while frozen. */
static void live_reasons(dashi_ctx *ctx, const json_t *cm, codes *out) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(cm, "notes"), i, v) {
        if (json_is_string(v))
            codes_add(out, json_string_value(v));
    }
    if (cm_frozen(ctx, cm))
        codes_add(out, "RISK_FROZEN");
}

static void emit_alert(dashi_ctx *ctx, const char *kind, int severity, const char *amb, const char *customer,
                       const char *order_id, const char *why) {
    char id[64];
    const char *parts[4] = {kind, order_id ? order_id : "", customer ? customer : "", ctx->cause ? ctx->cause : ""};
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_FRAUD_ALERT);
    dashi_fraud_alert *fa = &ev.u.fraud_alert;
    fa->alert_id = dashi_strdup(dashi_ctx_make_id(id, sizeof(id), "fa", parts, 4));
    fa->kind = dashi_strdup(kind);
    fa->severity = severity;
    fa->occurred_at = ctx->now;
    if (amb && *amb)
        dashi_strv_push(&fa->subject_uids, &fa->n_subject_uids, amb);
    if (customer && *customer && (!amb || strcmp(amb, customer) != 0))
        dashi_strv_push(&fa->subject_uids, &fa->n_subject_uids, customer);
    fa->ambassador_uid = amb && *amb ? dashi_strdup(amb) : NULL;
    fa->order_id = order_id ? dashi_strdup(order_id) : NULL;
    if (customer)
        dashi_kv_push(&fa->evidence, &fa->n_evidence, "customer_uid", customer);
    if (order_id)
        dashi_kv_push(&fa->evidence, &fa->n_evidence, "order_id", order_id);
    dashi_kv_push(&fa->evidence, &fa->n_evidence, "finding", why);
    fa->caused_by = dashi_strdup(ctx->cause ? ctx->cause : "");
    dashi_ctx_emit(ctx, &ev);
    dashi_event_clear(&ev);
}

/* ------------------------------------------------------------------ association (A1–A8) */

static bool amb_enrolled(const json_t *amb) {
    return jint(amb, "enrolled_at", DASHI_TIME_NONE) != DASHI_TIME_NONE;
}

static bool amb_flagged(const json_t *amb) {
    return json_object_size(json_object_get(amb, "flags")) > 0;
}

/* A5: the pure-new window after the first purchase counts only while the rule is in force. */
static dashi_time keep_until(dashi_ctx *ctx, const json_t *asc) {
    return ctx->set->pure_new_repurchase_days > 0 ? jint(asc, "keep_until", DASHI_TIME_NONE) : DASHI_TIME_NONE;
}

static dashi_time assoc_until(dashi_ctx *ctx, const json_t *asc) {
    return max64(jint(asc, "until", DASHI_TIME_NONE), keep_until(ctx, asc));
}

static dashi_time protected_until(dashi_ctx *ctx, const json_t *asc) {
    return max64(jint(asc, "protected_until", DASHI_TIME_NONE), keep_until(ctx, asc));
}

/* A login (or, with registration, a sign-up) of uid through amb's link. */
static void associate(dashi_ctx *ctx, const char *uid, const char *amb_uid, bool registration) {
    const json_t *amb = dashi_view_getf(ctx->view, "amb:%s", amb_uid);
    if (!amb_enrolled(amb))
        return; /* A8: not an ambassador's link — campaigns may still count it */
    const json_t *cur = dashi_view_getf(ctx->view, "asc:%s", uid);
    if (jstr(cur, "bound")) { /* A6 */
        json_t *asc = dashi_view_editf(ctx->view, "asc:%s", uid);
        set_str(asc, "blocked", amb_uid);
        return;
    }
    const char *cur_amb = jstr(cur, "amb");
    if (cur_amb && ctx->now < assoc_until(ctx, cur)) {
        if (strcmp(cur_amb, amb_uid) == 0)
            return; /* A2 decision: the same ambassador does not extend it */
        if (ctx->now < protected_until(ctx, cur))
            return; /* A3, A5: protected */
    }
    dashi_person_info p;
    dashi_identity_person(ctx, uid, &p);
    const char *kind = registration ? kind_name(DASHI_CUST_PURE_NEW)
                       : p.paid_before ? "OLD"
                                       : kind_name(DASHI_CUST_REGISTERED_NEW);
    int64_t days = ctx->set->assoc_days;
    if (!registration && p.paid_before && ctx->set->old_user_assoc_days > 0)
        days = ctx->set->old_user_assoc_days; /* A5: old users before the switch */
    json_t *asc = dashi_view_editf(ctx->view, "asc:%s", uid);
    if (!asc)
        return;
    set_str(asc, "amb", amb_uid);
    set_str(asc, "kind", kind);
    set_int(asc, "since", ctx->now);
    set_int(asc, "until", ctx->now + days_ms(days));
    if (registration)
        set_int(asc, "protected_until", ctx->now + days_ms(ctx->set->protection_days));
    else
        json_object_del(asc, "protected_until");
    json_object_del(asc, "keep_until");
    json_object_del(asc, "blocked");
}

/* ------------------------------------------------------------------ tiers and points (T1–T3, P1–P2) */

static void emit_tier(dashi_ctx *ctx, const char *amb_uid, const char *month, int tier, int64_t basis) {
    dashi_event ev;
    dashi_event_init(&ev, DASHI_EV_TIER_ASSIGNED);
    dashi_tier_assigned *ta = &ev.u.tier_assigned;
    ta->ambassador_uid = dashi_strdup(amb_uid);
    ta->month = dashi_strdup(month);
    ta->tier = tier;
    ta->basis = basis;
    ta->rule_version = dashi_strdup(ctx->set->version);
    dashi_ctx_emit(ctx, &ev);
    dashi_event_clear(&ev);
}

static void schedule_month(dashi_ctx *ctx, dashi_time month_start) {
    char id[32], m[16];
    snprintf(id, sizeof(id), "cm:month:%s", dashi_cst_month_str(month_start, m));
    dashi_view_timer_add(ctx->view, id, month_start, NULL);
}

/* Basis of the tier for the month starting now: valid new users (T1) or yunqi (T2) of the lookback months. */
static int64_t tier_basis(dashi_ctx *ctx, const json_t *amb) {
    const dashi_ruleset *set = ctx->set;
    int64_t basis = 0;
    for (int64_t back = 1; back <= set->tier_lookback_months; back++) {
        char m[16];
        dashi_cst_month_str(dashi_cst_month_add(ctx->now, (int)-back), m);
        if (set->tier_basis == DASHI_TIER_BASIS_YUNQI) {
            basis = sat_add(basis, jint(json_object_get(amb, "yq"), m, 0));
            continue;
        }
        const char *person;
        json_t *paid;
        json_object_foreach(json_object_get(json_object_get(amb, "nu"), m), person, paid)
            basis += json_integer_value(paid) >= set->tier_min_first_purchase ? 1 : 0;
    }
    return basis;
}

/* Drop month counters older than any rule set's lookback. */
static void prune_months(dashi_ctx *ctx, json_t *amb) {
    int64_t keep = 1;
    for (size_t i = 0; i < ctx->rules->n_sets; i++)
        keep = max64(keep, ctx->rules->sets[i].tier_lookback_months);
    char cutoff[16];
    dashi_cst_month_str(dashi_cst_month_add(ctx->now, (int)-keep), cutoff);
    const char *maps[2] = {"nu", "yq"};
    for (size_t k = 0; k < 2; k++) {
        json_t *map = json_object_get(amb, maps[k]);
        const char *month;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(map, tmp, month, v) {
            if (strcmp(month, cutoff) < 0)
                json_object_del(map, month);
        }
    }
}

/* The ambassador index, record c: "cm:ambassadors" (c = 0), "cm:ambassadors:<c>". */
static const json_t *amb_index_get(dashi_ctx *ctx, int64_t c) {
    return c ? dashi_view_getf(ctx->view, "cm:ambassadors:%lld", (long long)c)
             : dashi_view_get(ctx->view, "cm:ambassadors");
}

/* Every enrolled ambassador, in enrolment order (strv_free them). */
static char **amb_index_read(dashi_ctx *ctx, size_t *n) {
    int64_t chunks = jint(amb_index_get(ctx, 0), "c", 0);
    size_t total = 0, k = 0;
    char **out;
    for (int64_t c = 0; c <= chunks; c++)
        total += json_array_size(json_object_get(amb_index_get(ctx, c), "uids"));
    out = calloc(total ? total : 1, sizeof(*out));
    for (int64_t c = 0; out && c <= chunks; c++) {
        const json_t *arr = json_object_get(amb_index_get(ctx, c), "uids");
        for (size_t i = 0; i < json_array_size(arr) && k < total; i++)
            if (json_is_string(json_array_get(arr, i)))
                out[k++] = dashi_strdup(json_string_value(json_array_get(arr, i)));
    }
    *n = k;
    return out;
}

/* Append uid to the last record of the ambassador index, or to a new one when that is full. */
static void amb_index_add(dashi_ctx *ctx, const char *uid) {
    int64_t chunks = jint(amb_index_get(ctx, 0), "c", 0);
    json_t *last = chunks ? dashi_view_editf(ctx->view, "cm:ambassadors:%lld", (long long)chunks)
                          : dashi_view_edit(ctx->view, "cm:ambassadors");
    if (last && json_array_size(json_object_get(last, "uids")) >= AMB_INDEX_CHUNK) {
        json_t *head = dashi_view_edit(ctx->view, "cm:ambassadors");
        if (head)
            set_int(head, "c", chunks + 1);
        last = dashi_view_editf(ctx->view, "cm:ambassadors:%lld", (long long)(chunks + 1));
    }
    if (last)
        arr_add_unique(jarr(last, "uids"), uid);
}

static void month_start(dashi_ctx *ctx) {
    char month[16];
    size_t n = 0;
    dashi_cst_month_str(ctx->now, month);
    char **uids = amb_index_read(ctx, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *amb = dashi_view_editf(ctx->view, "amb:%s", uids[i]);
        if (!amb || strcmp(jstr0(amb, "tier_month"), month) == 0)
            continue;
        int prev = tier_of(jstr(amb, "tier"), ctx->set);
        int64_t basis = tier_basis(ctx, amb);
        int tier = (int)dashi_ruleset_tier_for(ctx->set, basis);
        if (tier != prev)
            emit_tier(ctx, uids[i], month, tier, basis);
        set_str(amb, "tier", tier_name(tier));
        set_str(amb, "tier_month", month);
        set_int(amb, "tier_basis", basis);
        prune_months(ctx, amb);
    }
    strv_free(uids, n);
    schedule_month(ctx, dashi_cst_month_add(ctx->now, 1));
}

static void on_enrolled(dashi_ctx *ctx, const dashi_ambassador_enrolled *e) {
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", e->uid);
    if (!amb || amb_enrolled(amb))
        return; /* enrolled once */
    char month[16];
    dashi_cst_month_str(ctx->now, month);
    int tier = (int)dashi_ruleset_tier_for(ctx->set, 0);
    set_int(amb, "enrolled_at", ctx->now);
    set_str(amb, "tier", tier_name(tier));
    set_str(amb, "tier_month", month);
    set_int(amb, "tier_basis", 0);
    if (!ctx->set->awakening && jint(amb, "awakened_at", DASHI_TIME_NONE) == DASHI_TIME_NONE)
        set_int(amb, "awakened_at", ctx->now); /* P2 not yet in force: yunqi redeemable as they come */
    amb_index_add(ctx, e->uid);
    emit_tier(ctx, e->uid, month, tier, 0);
    schedule_month(ctx, dashi_cst_month_add(ctx->now, 1));
}

/* Credit confirmed commission as yunqi in the month of now (T2, P1); delta may be negative (clawback). */
static void credit_yunqi(dashi_ctx *ctx, const char *amb_uid, int64_t fen) {
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", amb_uid);
    if (!amb || fen == 0)
        return;
    __int128 yq128 = (__int128)fen * ctx->set->yunqi_per_rmb / FEN_PER_RMB;
    int64_t yunqi = yq128 > INT64_MAX ? INT64_MAX : yq128 < -INT64_MAX ? -INT64_MAX : (int64_t)yq128;
    char month[16];
    dashi_cst_month_str(ctx->now, month);
    json_t *yq = json_object_get(amb, "yq");
    if (!json_is_object(yq)) {
        yq = json_object();
        json_object_set_new(amb, "yq", yq);
    }
    set_int(yq, month, sat_add(jint(yq, month, 0), yunqi));
    set_int(amb, "yunqi", sat_add(jint(amb, "yunqi", 0), yunqi));
}

/* Set the order's contribution to its ambassador's valid-new-user count (T1). */
static void nu_set(dashi_ctx *ctx, json_t *cm, int64_t paid) {
    const char *month = jstr(cm, "nu_month"), *person = jstr(cm, "nu_person");
    int64_t prev = jint(cm, "nu_paid", 0);
    if (!month || !person || prev == paid)
        return;
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", jstr0(cm, "amb"));
    if (!amb)
        return;
    json_t *nu = json_object_get(amb, "nu");
    if (!json_is_object(nu)) {
        nu = json_object();
        json_object_set_new(amb, "nu", nu);
    }
    json_t *m = json_object_get(nu, month);
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(nu, month, m);
    }
    int64_t now_paid = jint(m, person, 0) - prev + paid;
    if (now_paid > 0)
        set_int(m, person, now_paid);
    else
        json_object_del(m, person);
    set_int(cm, "nu_paid", paid);
}

/* ------------------------------------------------------------------ the outcome of an order (C1–C11) */

typedef struct outcome {
    char *amb;          /* associated ambassador, NULL when none */
    int kind;           /* dashi_customer_kind or DASHI_ENUM_NONE */
    int tier;           /* dashi_tier or DASHI_ENUM_NONE */
    int64_t rate_bp;    /* DASHI_INT_NONE when no rate applies */
    int64_t limit;      /* most the commission may reach, -1 = no limit */
    bool first;         /* the new user's first purchase (C1) */
    codes reasons;      /* rejection codes */
    codes notes;        /* reasons a commissioned outcome carries */
    codes alerts;       /* fraud alert kinds to raise */
} outcome;

static void outcome_decide(dashi_ctx *ctx, const dashi_order_paid *op, const dashi_person_info *p, int64_t base,
                           outcome *oc) {
    const dashi_ruleset *set = ctx->set;
    const json_t *asc = dashi_view_getf(ctx->view, "asc:%s", op->uid);
    const char *amb_uid = jstr(asc, "amb");
    if (jstr(asc, "bound") && (amb_uid || jstr(asc, "blocked"))) { /* A6 */
        oc->amb = dashi_strdup(amb_uid ? amb_uid : jstr(asc, "blocked"));
        codes_add(&oc->reasons, "CUSTOMER_NOT_ASSOCIABLE");
        return;
    }
    if (!amb_uid) {
        codes_add(&oc->reasons, "NOT_ASSOCIATED"); /* also A8: links of non-ambassadors */
        return;
    }
    oc->amb = dashi_strdup(amb_uid);
    if (ctx->now >= assoc_until(ctx, asc)) { /* A2: half-open window */
        codes_add(&oc->reasons, "ASSOCIATION_EXPIRED");
        return;
    }
    const json_t *amb = dashi_view_getf(ctx->view, "amb:%s", amb_uid);
    if (amb_flagged(amb)) { /* A7 */
        codes_add(&oc->reasons, "AMBASSADOR_INVALID");
        codes_add(&oc->alerts, "INVALID_AMBASSADOR");
    }
    if (strcmp(op->uid, amb_uid) == 0 || dashi_identity_same_person(ctx, op->uid, amb_uid)) { /* S3 */
        codes_add(&oc->reasons, "SAME_PERSON_AMBASSADOR");
        codes_add(&oc->alerts, "SELF_REFERRAL");
    }
    if (op->billing == DASHI_BILLING_POSTPAID)
        codes_add(&oc->reasons, "POSTPAID_EXCLUDED"); /* C3 */

    const char *kname = jstr(asc, "kind");
    int akind = kname ? dashi_enum_from_name(DASHI_ENUM_CUSTOMER_KIND, kname) : DASHI_ENUM_NONE; /* OLD → NONE */
    oc->tier = tier_of(jstr(amb, "tier"), set);
    bool in_first_cart = p->paid_before && op->cart_id && *op->cart_id && strcmp(p->first_cart_id, op->cart_id) == 0;
    bool keep = akind == DASHI_CUST_PURE_NEW && ctx->now < keep_until(ctx, asc);
    if (op->order_type == DASHI_ORDER_RENEWAL) {
        codes_add(&oc->reasons, "RENEWAL"); /* C2 */
    } else if (op->order_type == DASHI_ORDER_NEW && (!p->paid_before || in_first_cart)) {
        oc->first = true; /* C1 */
        oc->kind = akind == DASHI_ENUM_NONE ? DASHI_CUST_REGISTERED_NEW : akind;
        oc->rate_bp = set->rate_bp[oc->kind][oc->tier];
    } else if (op->order_type == DASHI_ORDER_NEW && keep) {
        oc->kind = DASHI_CUST_PURE_NEW; /* A5: repurchase inside the pure-new window earns the first-purchase rate */
        oc->rate_bp = set->rate_bp[oc->kind][oc->tier];
        codes_add(&oc->notes, "REPURCHASE");
    } else if (set->repurchase_rate_bp > 0) {
        oc->kind = akind; /* A5, C2: old users' repurchase rate before the switch */
        oc->rate_bp = set->repurchase_rate_bp;
        oc->limit = set->repurchase_cap_per_order;
        codes_add(&oc->notes, "REPURCHASE");
    } else {
        /* C11 decision: paid before the association → NOT_NEW_USER, else an earlier first purchase */
        bool paid_when_associated = p->paid_before && p->first_paid_at != DASHI_TIME_NONE &&
                                    p->first_paid_at <= jint(asc, "since", DASHI_TIME_NONE);
        codes_add(&oc->reasons, paid_when_associated ? "NOT_NEW_USER" : "NOT_FIRST_PURCHASE");
    }
    if (base == 0)
        codes_add(&oc->reasons, "PRODUCT_NOT_ELIGIBLE"); /* C4 */
    if (oc->reasons.n == 0 && oc->first && set->cap_enabled) { /* C9 */
        int64_t left = set->cap_per_customer[oc->tier] - jint(asc, "cap_used", 0);
        oc->limit = left > 0 ? left : 0;
        if (left <= 0)
            codes_add(&oc->reasons, "CAP_REACHED");
    }
}

static json_t *order_record(dashi_ctx *ctx, const dashi_order_paid *op, int64_t paid, int64_t base) {
    json_t *ord = dashi_view_editf(ctx->view, "ord:%s", op->order_id);
    if (!ord)
        return NULL;
    set_str(ord, "uid", op->uid);
    set_int(ord, "at", ctx->now);
    set_str(ord, "cart", op->cart_id ? op->cart_id : "");
    set_str(ord, "type", dashi_enum_name(DASHI_ENUM_ORDER_TYPE, op->order_type));
    set_int(ord, "paid", paid);
    set_int(ord, "paid_left", paid);
    json_t *items = json_array();
    for (size_t i = 0; i < op->n_items; i++) {
        const dashi_item *it = &op->items[i];
        json_array_append_new(items, json_pack("{s:s,s:b,s:I}", "id", it->item_id, "elig",
                                               dashi_ruleset_category_eligible(ctx->set, it->category),
                                               "left", (json_int_t)it->paid_amount));
    }
    json_object_set_new(ord, "items", items);
    json_t *cm = json_object();
    json_object_set_new(ord, "cm", cm);
    set_int(cm, "base", base);
    set_str(cm, "version", ctx->set->version);
    return ord;
}

static void open_commission(dashi_ctx *ctx, const dashi_order_paid *op, const dashi_person_info *p, json_t *ord,
                            outcome *oc) {
    const dashi_ruleset *set = ctx->set;
    json_t *cm = json_object_get(ord, "cm");
    int64_t base = jint(cm, "base", 0);
    int64_t amount = round_rate(base, oc->rate_bp);
    if (oc->limit >= 0 && amount > oc->limit) {
        amount = oc->limit;
        codes_add(&oc->notes, "CAP_REACHED");
    }
    int64_t bonus = dashi_campaign_first_order_bonus(ctx, op, oc->amb, base, amount);
    set_str(cm, "state", "PENDING");
    set_int(cm, "amount", amount);
    set_int(cm, "bonus", bonus);
    set_int(cm, "review_ends", ctx->now + days_ms(set->review_days));
    if (oc->limit >= 0)
        set_int(cm, "limit", oc->limit);
    set_bool(cm, "first", oc->first);
    codes_to_json(cm, "notes", &oc->notes);

    char timer[600];
    snprintf(timer, sizeof(timer), "cm:review:%s", op->order_id);
    dashi_view_timer_add(ctx->view, timer, ctx->now + days_ms(set->review_days), NULL);
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", oc->amb);
    if (amb)
        arr_add_unique(jarr(amb, "open"), op->order_id);
    json_t *asc = dashi_view_editf(ctx->view, "asc:%s", op->uid);
    if (asc) {
        arr_add_unique(jarr(asc, "orders"), op->order_id);
        if (oc->first) {
            set_int(asc, "cap_used", sat_add(jint(asc, "cap_used", 0), amount));
            if (set->pure_new_repurchase_days > 0 && oc->kind == DASHI_CUST_PURE_NEW)
                set_int(asc, "keep_until", max64(jint(asc, "keep_until", DASHI_TIME_NONE),
                                                 ctx->now + days_ms(set->pure_new_repurchase_days)));
        }
    }
    if (oc->first) { /* T1: a valid new user of the order's month, counted once per person */
        char month[16];
        set_str(cm, "nu_month", dashi_cst_month_str(ctx->now, month));
        set_str(cm, "nu_person", *p->person_id ? p->person_id : op->uid);
        nu_set(ctx, cm, jint(ord, "paid", 0));
    }
    codes reasons = {0};
    live_reasons(ctx, cm, &reasons);
    emit_commission(ctx, op->order_id, ord, DASHI_CE_PENDING, amount, &reasons, NULL, 0);
}

static int alert_severity(const char *kind) {
    return strcmp(kind, "SELF_REFERRAL") == 0 || strcmp(kind, "IDENTITY_CHANGE_TO_BUYER") == 0 ? DASHI_SEV_HIGH
                                                                                                 : DASHI_SEV_MEDIUM;
}

static dashi_err on_order_paid(dashi_ctx *ctx, const dashi_order_paid *op) {
    dashi_err err = DASHI_OK;
    outcome oc = {.kind = DASHI_ENUM_NONE, .tier = DASHI_ENUM_NONE, .rate_bp = DASHI_INT_NONE, .limit = -1};
    int64_t paid = 0, base = 0;
    for (size_t i = 0; i < op->n_items; i++) {
        paid += op->items[i].paid_amount;
        if (dashi_ruleset_category_eligible(ctx->set, op->items[i].category))
            base += op->items[i].paid_amount; /* C4, C5 */
    }
    if (paid == 0)
        goto out; /* C1 decision: not a purchase */
    if (dashi_view_getf(ctx->view, "ord:%s", op->order_id)) {
        err = dashi_ctx_fail(ctx, DASHI_ERR_INVALID, "order %s was already paid", op->order_id);
        goto out;
    }
    dashi_person_info p;
    dashi_identity_person(ctx, op->uid, &p);
    outcome_decide(ctx, op, &p, base, &oc);
    dashi_identity_record_payment(ctx, op->uid, op->order_id, op->cart_id, ctx->now);

    char cid[32];
    const char *parts[2] = {op->order_id, oc.amb ? oc.amb : ""};
    json_t *ord = order_record(ctx, op, paid, base);
    json_t *cm = json_object_get(ord, "cm");
    if (!cm)
        goto out;
    set_str(cm, "id", dashi_ctx_make_id(cid, sizeof(cid), "cm", parts, 2));
    set_str(cm, "amb", oc.amb ? oc.amb : "");
    set_str(cm, "person", p.person_id);
    if (oc.kind != DASHI_ENUM_NONE)
        set_str(cm, "kind", kind_name(oc.kind));
    if (oc.tier != DASHI_ENUM_NONE)
        set_str(cm, "tier", tier_name(oc.tier));
    if (oc.rate_bp != DASHI_INT_NONE)
        set_int(cm, "rate", oc.rate_bp);
    if (oc.reasons.n == 0) {
        open_commission(ctx, op, &p, ord, &oc);
        goto out;
    }
    set_str(cm, "state", "REJECTED");
    set_int(cm, "amount", 0);
    codes_to_json(cm, "reasons", &oc.reasons);
    emit_commission(ctx, op->order_id, ord, DASHI_CE_REJECTED, 0, &oc.reasons, NULL, 0);
    for (size_t i = 0; i < oc.alerts.n; i++)
        emit_alert(ctx, oc.alerts.v[i], alert_severity(oc.alerts.v[i]), oc.amb, op->uid, op->order_id,
                   oc.reasons.v[0]);
out:
    free(oc.amb);
    return err;
}

/* ------------------------------------------------------------------ life of a commission (C7–C10, R3) */

/* Take a live commission out of review: no timer, not open, its count and cap given back. */
static void close_commission(dashi_ctx *ctx, const char *order_id, json_t *ord) {
    json_t *cm = json_object_get(ord, "cm");
    char timer[600];
    snprintf(timer, sizeof(timer), "cm:review:%s", order_id);
    dashi_view_timer_del(ctx->view, timer);
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", jstr0(cm, "amb"));
    if (amb)
        arr_remove(jarr(amb, "open"), order_id);
}

static void cap_give_back(dashi_ctx *ctx, json_t *ord, int64_t delta) {
    json_t *cm = json_object_get(ord, "cm");
    if (!json_is_true(json_object_get(cm, "first")) || delta == 0)
        return;
    json_t *asc = dashi_view_editf(ctx->view, "asc:%s", jstr0(ord, "uid"));
    if (asc)
        set_int(asc, "cap_used", jint(asc, "cap_used", 0) + delta);
}

static void cancel(dashi_ctx *ctx, const char *order_id, json_t *ord, const char *reason) {
    json_t *cm = json_object_get(ord, "cm");
    int64_t old = jint(cm, "amount", 0);
    close_commission(ctx, order_id, ord);
    cap_give_back(ctx, ord, -old);
    nu_set(ctx, cm, 0);
    codes reasons = {0};
    codes_add(&reasons, reason);
    set_str(cm, "state", "CANCELLED");
    set_int(cm, "amount", 0);
    codes_to_json(cm, "reasons", &reasons);
    emit_commission(ctx, order_id, ord, DASHI_CE_CANCELLED, -old, &reasons, NULL, 0);
}

/* C10: the payout schedule of a confirmed total, by the order's rule set. */
static size_t schedule(const dashi_ruleset *set, int64_t total, dashi_time start, dashi_installment **out) {
    size_t n = set->installments_enabled && set->n_installments > 1 && total >= set->installment_threshold
                   ? set->n_installments
                   : 1;
    dashi_installment *inst = calloc(n, sizeof(*inst));
    if (!inst)
        abort();
    int64_t each = total / (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        inst[i].seq = (int64_t)i + 1;
        inst[i].due_at = start + (n > 1 ? days_ms(set->installment_offsets_days[i]) : 0);
        inst[i].amount = i == 0 ? total - each * (int64_t)(n - 1) : each;
    }
    *out = inst;
    return n;
}

static void confirm(dashi_ctx *ctx, const char *order_id, json_t *ord) {
    json_t *cm = json_object_get(ord, "cm");
    const dashi_ruleset *oset = dashi_rules_at(ctx->rules, jint(ord, "at", ctx->now));
    int64_t amount = jint(cm, "amount", 0);
    dashi_installment *inst = NULL;
    size_t n = schedule(oset, amount, ctx->now, &inst);
    json_t *jinst = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(jinst, json_pack("{s:I,s:I,s:I}", "seq", (json_int_t)inst[i].seq, "due_at",
                                               (json_int_t)inst[i].due_at, "amount", (json_int_t)inst[i].amount));
    json_object_set_new(cm, "installments", jinst);
    close_commission(ctx, order_id, ord);
    set_str(cm, "state", "CONFIRMED");
    set_int(cm, "confirmed_at", ctx->now);
    const char *amb_uid = jstr0(cm, "amb");
    credit_yunqi(ctx, amb_uid, amount);
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", amb_uid);
    if (amb && jint(amb, "awakened_at", DASHI_TIME_NONE) == DASHI_TIME_NONE) { /* P2 */
        set_int(amb, "awakened_at", ctx->now);
        set_str(amb, "awakened_by", order_id);
    }
    codes reasons = {0};
    live_reasons(ctx, cm, &reasons);
    emit_commission(ctx, order_id, ord, DASHI_CE_CONFIRMED, 0, &reasons, inst, n);
    free(inst);
}

static void on_review_end(dashi_ctx *ctx, const char *order_id) {
    if (!dashi_view_getf(ctx->view, "ord:%s", order_id))
        return;
    json_t *ord = dashi_view_editf(ctx->view, "ord:%s", order_id);
    json_t *cm = json_object_get(ord, "cm");
    if (strcmp(jstr0(cm, "state"), "PENDING") != 0)
        return;
    set_bool(cm, "review_over", true);
    if (!cm_frozen(ctx, cm)) /* R3: a frozen commission waits for UNFREEZE */
        confirm(ctx, order_id, ord);
}

static json_t *item_find(const json_t *items, const char *item_id) {
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        if (strcmp(jstr0(it, "id"), item_id) == 0)
            return it;
    }
    return NULL;
}

/* Take amount off the order's items: one item, or all in proportion (largest remainder). */
static void take_refund(json_t *items, const char *item_id, int64_t amount) {
    size_t n = json_array_size(items), i;
    json_t *it;
    if (item_id) {
        if ((it = item_find(items, item_id)))
            set_int(it, "left", jint(it, "left", 0) - amount);
        return;
    }
    int64_t total = 0, given = 0;
    json_array_foreach(items, i, it) {
        total += jint(it, "left", 0);
    }
    if (total <= 0)
        return;
    int64_t *share = calloc(n ? n : 1, sizeof(*share)), *rem = calloc(n ? n : 1, sizeof(*rem));
    if (!share || !rem)
        abort();
    json_array_foreach(items, i, it) {
        __int128 p = (__int128)amount * jint(it, "left", 0);
        share[i] = (int64_t)(p / total);
        rem[i] = (int64_t)(p % total);
        given += share[i];
    }
    for (; given < amount; given++) { /* at most n - 1 fen left: to the largest remainders, first item on ties */
        size_t best = 0;
        for (size_t k = 1; k < n; k++)
            if (rem[k] > rem[best])
                best = k;
        share[best]++;
        rem[best] = -1;
    }
    json_array_foreach(items, i, it) {
        set_int(it, "left", jint(it, "left", 0) - share[i]);
    }
    free(share);
    free(rem);
}

static int64_t eligible_left(const json_t *items) {
    size_t i;
    json_t *it;
    int64_t base = 0;
    json_array_foreach(items, i, it) {
        if (json_is_true(json_object_get(it, "elig")))
            base += jint(it, "left", 0);
    }
    return base;
}

static dashi_err on_refund(dashi_ctx *ctx, const dashi_order_refunded *r) {
    dashi_err err = DASHI_OK;
    const json_t *seen = dashi_view_getf(ctx->view, "ord:%s", r->order_id);
    if (!seen || strcmp(jstr0(seen, "uid"), r->uid) != 0) {
        err = dashi_ctx_fail(ctx, DASHI_ERR_INVALID, "refund of unknown order %s of %s", r->order_id, r->uid);
        goto out;
    }
    int64_t left = jint(seen, "paid_left", 0);
    if (r->item_id) {
        const json_t *it = item_find(json_object_get(seen, "items"), r->item_id);
        left = jint(it, "left", -1);
        if (left < 0) {
            err = dashi_ctx_fail(ctx, DASHI_ERR_INVALID, "refund of unknown item %s of order %s", r->item_id,
                                 r->order_id);
            goto out;
        }
    }
    if (r->amount > left) {
        err = dashi_ctx_fail(ctx, DASHI_ERR_INVALID, "refund of %lld fen exceeds the %lld fen left of order %s%s%s",
                             (long long)r->amount, (long long)left, r->order_id, r->item_id ? " item " : "",
                             r->item_id ? r->item_id : "");
        goto out;
    }
    json_t *ord = dashi_view_editf(ctx->view, "ord:%s", r->order_id);
    json_t *cm = json_object_get(ord, "cm");
    take_refund(json_object_get(ord, "items"), r->item_id, r->amount);
    int64_t paid_left = jint(ord, "paid_left", 0) - r->amount;
    set_int(ord, "paid_left", paid_left);
    const char *state = jstr0(cm, "state");
    bool live = strcmp(state, "PENDING") == 0, confirmed = strcmp(state, "CONFIRMED") == 0;
    if (!live && !confirmed)
        goto out; /* rejected or cancelled: the order's figures are kept for later refunds */
    int64_t old_base = jint(cm, "base", 0), base = eligible_left(json_object_get(ord, "items"));
    int64_t old = jint(cm, "amount", 0), limit = jint(cm, "limit", -1);
    int64_t amount = round_rate(base, jint(cm, "rate", 0));
    if (limit >= 0 && amount > limit)
        amount = limit;
    bool full = paid_left == 0;
    nu_set(ctx, cm, paid_left);
    set_int(cm, "base", base);
    if (live && full) { /* C7: refunded in full before anything was paid (in review, or held by a freeze) */
        cancel(ctx, r->order_id, ord, "REFUNDED");
        goto out;
    }
    if (base == old_base)
        goto out; /* nothing eligible was refunded */
    codes reasons = {0};
    codes_add(&reasons, full ? "REFUNDED" : r->kind == DASHI_REFUND_DOWNGRADE ? "DOWNGRADE" : "PARTIAL_REFUND");
    set_int(cm, "amount", amount);
    cap_give_back(ctx, ord, amount - old);
    if (live) {
        live_reasons(ctx, cm, &reasons);
        emit_commission(ctx, r->order_id, ord, DASHI_CE_ADJUSTED, amount - old, &reasons, NULL, 0);
        goto out;
    }
    credit_yunqi(ctx, jstr0(cm, "amb"), amount - old); /* C7: after the review, a clawback */
    emit_commission(ctx, r->order_id, ord, DASHI_CE_CLAWBACK, amount - old, &reasons, NULL, 0);
    emit_alert(ctx, "REFUND_AFTER_REBATE", DASHI_SEV_MEDIUM, jstr(cm, "amb"), r->uid, r->order_id,
               reasons.v[0]);
out:
    return err;
}

/* R3 on one commission; amb_wide tells whether the action named the whole ambassador. */
static void risk_apply(dashi_ctx *ctx, const char *order_id, int action, bool amb_wide, bool was_amb_frozen) {
    json_t *ord = dashi_view_editf(ctx->view, "ord:%s", order_id);
    json_t *cm = json_object_get(ord, "cm");
    if (strcmp(jstr0(cm, "state"), "PENDING") != 0)
        return;
    bool was = json_is_true(json_object_get(cm, "frozen")) || was_amb_frozen;
    if (action == DASHI_RISK_VOID) {
        cancel(ctx, order_id, ord, "RISK_VOIDED");
        return;
    }
    if (action == DASHI_RISK_FREEZE || !amb_wide)
        set_bool(cm, "frozen", action == DASHI_RISK_FREEZE);
    else
        json_object_del(cm, "frozen"); /* an ambassador-wide UNFREEZE lifts every freeze */
    bool is = cm_frozen(ctx, cm);
    if (was == is)
        return;
    if (!is && json_is_true(json_object_get(cm, "review_over"))) {
        confirm(ctx, order_id, ord); /* due while frozen: confirmed now */
        return;
    }
    codes reasons = {0};
    live_reasons(ctx, cm, &reasons);
    emit_commission(ctx, order_id, ord, DASHI_CE_ADJUSTED, 0, &reasons, NULL, 0);
}

static void on_risk(dashi_ctx *ctx, const dashi_risk_action *ra) {
    if (ra->campaign_id && !ra->order_id)
        return; /* names campaign rewards only: campaign.c */
    if (ra->order_id) {
        const json_t *ord = dashi_view_getf(ctx->view, "ord:%s", ra->order_id);
        if (ord && strcmp(jstr0(json_object_get(ord, "cm"), "amb"), ra->ambassador_uid) == 0) {
            bool amb_frozen = json_is_true(
                json_object_get(dashi_view_getf(ctx->view, "amb:%s", ra->ambassador_uid), "frozen"));
            risk_apply(ctx, ra->order_id, ra->action, false, amb_frozen);
        }
        return;
    }
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", ra->ambassador_uid);
    if (!amb)
        return;
    bool was = json_is_true(json_object_get(amb, "frozen"));
    if (ra->action == DASHI_RISK_FREEZE)
        set_bool(amb, "frozen", true);
    else if (ra->action == DASHI_RISK_UNFREEZE)
        json_object_del(amb, "frozen");
    size_t n = 0;
    char **open = arr_copy(json_object_get(amb, "open"), &n);
    for (size_t i = 0; i < n; i++)
        risk_apply(ctx, open[i], ra->action, true, was);
    strv_free(open, n);
}

/* S4 decision, S5: findings about the customer of one commission after the order. */
static void person_check(dashi_ctx *ctx, const char *order_id) {
    const json_t *seen = dashi_view_getf(ctx->view, "ord:%s", order_id);
    const json_t *scm = json_object_get(seen, "cm");
    const char *state = jstr0(scm, "state");
    bool live = strcmp(state, "PENDING") == 0;
    if (!live && strcmp(state, "CONFIRMED") != 0)
        return;
    json_t *ord = dashi_view_editf(ctx->view, "ord:%s", order_id);
    json_t *cm = json_object_get(ord, "cm");
    char *cust = dashi_strdup(jstr0(ord, "uid")), *amb = dashi_strdup(jstr0(cm, "amb"));
    const char *finding = NULL, *alert = NULL;
    if (strcmp(cust, amb) == 0 || dashi_identity_same_person(ctx, cust, amb)) {
        finding = "SAME_PERSON_AMBASSADOR";
        alert = "IDENTITY_CHANGE_TO_BUYER";
    } else if (json_is_true(json_object_get(cm, "first"))) {
        dashi_person_info p;
        dashi_identity_person(ctx, cust, &p);
        const char *cart = jstr0(ord, "cart");
        bool own = strcmp(p.first_order_id, order_id) == 0 || (*cart && strcmp(p.first_cart_id, cart) == 0);
        if (p.paid_before && !own && p.first_paid_at != DASHI_TIME_NONE && p.first_paid_at <= jint(ord, "at", 0)) {
            finding = "NOT_NEW_USER";
            alert = "MULTI_ACCOUNT";
        }
    }
    if (!finding)
        goto out;
    if (live) {
        cancel(ctx, order_id, ord, finding);
    } else {
        json_t *alerted = json_object_get(cm, "alerted");
        if (json_is_true(json_object_get(alerted, alert)))
            goto out; /* confirmed: not reopened, alerted once */
        if (!json_is_object(alerted)) {
            alerted = json_object();
            json_object_set_new(cm, "alerted", alerted);
        }
        set_bool(alerted, alert, true);
    }
    emit_alert(ctx, alert, alert_severity(alert), amb, cust, order_id, live ? finding : "confirmed, not reopened");
out:
    free(cust);
    free(amb);
}

void dashi_commission_on_person_change(dashi_ctx *ctx, const char *const *uids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t k = 0, m = 0;
        char **mine = arr_copy(json_object_get(dashi_view_getf(ctx->view, "asc:%s", uids[i]), "orders"), &k);
        char **theirs = arr_copy(json_object_get(dashi_view_getf(ctx->view, "amb:%s", uids[i]), "open"), &m);
        for (size_t j = 0; j < k; j++)
            person_check(ctx, mine[j]);
        for (size_t j = 0; j < m; j++)
            person_check(ctx, theirs[j]);
        strv_free(mine, k);
        strv_free(theirs, m);
    }
}

/* ------------------------------------------------------------------ entry points */

static void on_flagged(dashi_ctx *ctx, const dashi_account_flagged *f) {
    json_t *amb = dashi_view_editf(ctx->view, "amb:%s", f->uid);
    const char *flag = dashi_enum_name(DASHI_ENUM_FLAG, f->flag);
    if (!amb || !flag)
        return;
    json_t *flags = json_object_get(amb, "flags");
    if (!json_is_object(flags)) {
        flags = json_object();
        json_object_set_new(amb, "flags", flags);
    }
    if (f->set)
        set_bool(flags, flag, true);
    else
        json_object_del(flags, flag);
}

static void on_bound(dashi_ctx *ctx, const dashi_customer_bound *b) {
    json_t *asc = dashi_view_editf(ctx->view, "asc:%s", b->uid);
    if (asc)
        set_str(asc, "bound", dashi_enum_name(DASHI_ENUM_BINDING, b->binding));
}

dashi_err dashi_commission_on_event(dashi_ctx *ctx, const dashi_event *ev) {
    dashi_err err = DASHI_OK;
    switch (ev->type) {
    case DASHI_EV_ACCOUNT_REGISTERED:
        if (ev->u.account_registered.referral)
            associate(ctx, ev->u.account_registered.uid, ev->u.account_registered.referral->ambassador_uid, true);
        break;
    case DASHI_EV_LINK_VISITED:
        if (ev->u.link_visited.logged_in) /* A1: only a login associates */
            associate(ctx, ev->u.link_visited.uid, ev->u.link_visited.ambassador_uid, false);
        break;
    case DASHI_EV_AMBASSADOR_ENROLLED:
        on_enrolled(ctx, &ev->u.ambassador_enrolled);
        break;
    case DASHI_EV_ACCOUNT_FLAGGED:
        on_flagged(ctx, &ev->u.account_flagged);
        break;
    case DASHI_EV_CUSTOMER_BOUND:
        on_bound(ctx, &ev->u.customer_bound);
        break;
    case DASHI_EV_ORDER_PAID:
        err = on_order_paid(ctx, &ev->u.order_paid);
        break;
    case DASHI_EV_ORDER_REFUNDED:
        err = on_refund(ctx, &ev->u.order_refunded);
        break;
    case DASHI_EV_RISK_ACTION:
        on_risk(ctx, &ev->u.risk_action);
        break;
    default:
        break;
    }
    return err;
}

dashi_err dashi_commission_on_timer(dashi_ctx *ctx, const char *timer_id, const json_t *payload) {
    (void)payload;
    static const char review[] = "cm:review:", month[] = "cm:month:";
    if (strncmp(timer_id, review, sizeof(review) - 1) == 0)
        on_review_end(ctx, timer_id + sizeof(review) - 1);
    else if (strncmp(timer_id, month, sizeof(month) - 1) == 0)
        month_start(ctx);
    return DASHI_OK;
}
