/* explain.c — `dashi explain`: reads the rules modules' state records and says, line by line, what was decided and by which rule.
 *
 * Design. Every record is read once through the state ops (mget one key, or scan a
 * prefix, with app/records.c, the reader inspect uses too) and parsed with
 * jansson into a per-call cache (key → record, JSON null for an absent key), so
 * the printing code borrows records freely and one json_decref frees them all at
 * the end; the first back-end error is kept and stops further reads. The text is built from the records alone — the record
 * layouts are the ones documented in the headers of core/identity.c,
 * core/commission.c and core/campaign.c — and each line starts with the rule IDs
 * of RULES.md it rests on, e.g. "[A2]", "[C6,V1]". Facts the state does not keep
 * are named as such (only the latest association of an account, refund totals
 * rather than single refunds, no reason on a dropped campaign entry); the reason
 * an entry dropped or never entered is then worked out from what is kept, in the
 * order the campaign module checks it, and marked "inferred". Identity appears as
 * attribute kinds with an 8-character prefix of the keyed hash, never more.
 */
#include "app/explain.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/records.h"
#include "app/replay.h"
#include "core/ctx.h"
#include "core/engine.h"
#include "core/event.h"

#define EX_RING 24       /* formatted values alive at once (several per printed line) */
#define EX_FMT 96        /* size of one formatted value */
#define EX_PID 64        /* person id buffer, as identity.c's */
#define EX_HASH_SHOWN 8  /* hash characters shown of an attribute id */
#define BP_WHOLE 10000   /* 100% in basis points */

/* One explain call: where records come from, where text goes, what was read. */
typedef struct ex {
    dashi_records rd;      /* the store, errstr, and the first back-end error: reads stop after it */
    const dashi_rules *rules;
    FILE *out;
    json_t *cache;         /* key → record, or json null when the key is absent */
    char ring[EX_RING][EX_FMT];
    unsigned ring_at;
} ex;

/* A growable string, for lists built before they are printed. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto out;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s)
            goto out;
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
out:
    return;
}

static const char *sb_str(const sbuf *b) {
    return b->s ? b->s : "";
}

static void sb_free(sbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ formatting */

static char *ring_next(ex *x) {
    return x->ring[x->ring_at++ % EX_RING];
}

static const char *fmt_time(ex *x, dashi_time t) {
    char *buf = ring_next(x);
    if (t == DASHI_TIME_NONE)
        snprintf(buf, EX_FMT, "(none)");
    else
        dashi_time_format(t, buf);
    return buf;
}

static const char *fmt_money(ex *x, int64_t fen) {
    char *buf = ring_next(x);
    uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    snprintf(buf, EX_FMT, "%s%llu.%02llu RMB", fen < 0 ? "-" : "", (unsigned long long)(a / 100),
             (unsigned long long)(a % 100));
    return buf;
}

static const char *fmt_bp(ex *x, int64_t bp) {
    char *buf = ring_next(x);
    snprintf(buf, EX_FMT, "%lld bp (%lld.%02lld%%)", (long long)bp, (long long)(bp / 100), (long long)(bp % 100));
    return buf;
}

/* An amount in a campaign's unit. */
static const char *fmt_reward(ex *x, const dashi_campaign *c, int64_t v) {
    char *buf;
    if (c->unit != DASHI_UNIT_YUNQI)
        return fmt_money(x, v);
    buf = ring_next(x);
    snprintf(buf, EX_FMT, "%lld yunqi", (long long)v);
    return buf;
}

static const char *fmt_days(ex *x, int64_t ms) {
    char *buf = ring_next(x);
    if (ms % DASHI_MS_PER_DAY == 0)
        snprintf(buf, EX_FMT, "%lld days", (long long)(ms / DASHI_MS_PER_DAY));
    else
        snprintf(buf, EX_FMT, "%.2f days", (double)ms / (double)DASHI_MS_PER_DAY);
    return buf;
}

/* One line: the rule IDs in brackets, then the text. */
static void say(ex *x, const char *rules, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(ex *x, const char *rules, const char *fmt, ...) {
    char tag[40];
    va_list ap;
    snprintf(tag, sizeof tag, rules && *rules ? "[%s]" : "%s", rules ? rules : "");
    fprintf(x->out, "  %-13s ", tag);
    va_start(ap, fmt);
    vfprintf(x->out, fmt, ap);
    va_end(ap);
    fputc('\n', x->out);
}

static void section(ex *x, const char *title) {
    fprintf(x->out, "%s\n", title);
}

/* ------------------------------------------------------------------ JSON helpers */

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static const char *jstr0(const json_t *o, const char *k) {
    const char *s = jstr(o, k);
    return s ? s : "";
}

static int64_t jint(const json_t *o, const char *k, int64_t dflt) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static bool jtrue(const json_t *o, const char *k) {
    return json_is_true(json_object_get(o, k));
}

static bool str_eq(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

static bool arr_has(const json_t *arr, const char *s) {
    bool found = false;
    for (size_t i = 0; i < json_array_size(arr) && !found; i++)
        found = str_eq(json_string_value(json_array_get(arr, i)), s);
    return found;
}

/* "A, B, C" of a JSON array of strings (into b). */
static void sb_join(sbuf *b, const json_t *arr) {
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v))
            sb_add(b, "%s%s", b->len ? ", " : "", json_string_value(v));
    }
}

/* ------------------------------------------------------------------ reading records */

/* The record under the formatted key (borrowed until the call ends), or NULL when absent. */
static const json_t *ex_get(ex *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const json_t *ex_get(ex *x, const char *fmt, ...) {
    char *key = NULL;
    json_t *rec = NULL;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(key = malloc((size_t)n + 1)))
        goto out;
    va_start(ap, fmt);
    vsnprintf(key, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if ((rec = json_object_get(x->cache, key)) || x->rd.err != DASHI_OK)
        goto out;
    rec = dashi_records_get(&x->rd, key, (size_t)n, NULL, NULL);
    if (x->rd.err != DASHI_OK)
        goto out;
    if (!rec)
        rec = json_null(); /* absent (or not JSON: no record of a rules module) */
    if (json_object_set_new(x->cache, key, rec) != 0)
        rec = NULL;
out:
    free(key);
    return json_is_null(rec) ? NULL : rec;
}

/* ------------------------------------------------------------------ rule IDs of codes */

typedef struct code_info {
    const char *code, *rules, *why;
} code_info;

/* Reason codes of commission outcomes (C11) and the notes a commission carries. */
static const code_info codes[] = {
    {"NOT_ASSOCIATED", "A1,A8",
     "no association with an ambassador when the order was paid (a login or registration through an enrolled "
     "ambassador's link makes one; a non-ambassador's link does not)"},
    {"ASSOCIATION_EXPIRED", "A2", "the association had ended (its window is half-open) before the order was paid"},
    {"NOT_FIRST_PURCHASE", "C1,C11",
     "the person was new when associated, but an earlier order (not of the same cart) already was the first "
     "purchase; an UPGRADE is never a first purchase"},
    {"NOT_NEW_USER", "S4,C11",
     "the person had already paid (> 0) when associated, or a same-person link found later shows an earlier paid "
     "order of another account"},
    {"RENEWAL", "C2", "renewal orders never earn"},
    {"POSTPAID_EXCLUDED", "C3", "only prepaid purchases earn; pay-as-you-go does not"},
    {"PRODUCT_NOT_ELIGIBLE", "C4", "no item of a category on the eligible list of the order's rules"},
    {"SAME_PERSON_AMBASSADOR", "S3,S5", "the customer is the ambassador's own person"},
    {"AMBASSADOR_INVALID", "A7",
     "the ambassador is flagged (employee, outsourced, enterprise-certified or partner sales): promotion invalid"},
    {"CUSTOMER_NOT_ASSOCIABLE", "A6", "the customer is bound to a distributor, CBM, telesales or PPL"},
    {"REFUNDED", "C7", "refunded in full before anything was paid out"},
    {"CAP_REACHED", "C9", "the per-customer cap of first-purchase commission was reached"},
    {"RISK_FROZEN", "R3", "frozen by a risk action; it waits for an unfreeze"},
    {"RISK_VOIDED", "R3,R1", "voided by a risk action"},
    {"REPURCHASE", "A5,C2", "a repurchase that still earned under the rules of its time"},
    {"PARTIAL_REFUND", "C5,C7", "a partial refund reduced the base and the commission"},
    {"DOWNGRADE", "C5,C7", "a downgrade reduced the base and the commission"},
};

static const code_info *code_find(const char *code) {
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (str_eq(codes[i].code, code))
            return &codes[i];
    return NULL;
}

static void say_codes(ex *x, const json_t *arr, const char *label) {
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        const code_info *ci = code_find(json_string_value(v));
        if (json_is_string(v))
            say(x, ci ? ci->rules : "C11", "%s %s: %s", label, json_string_value(v),
                ci ? ci->why : "(code not described here)");
    }
}

/* "REASON1, REASON2" of a JSON array. */
static const char *codes_str(ex *x, const json_t *arr) {
    char *buf = ring_next(x);
    size_t i, len = 0;
    const json_t *v;
    buf[0] = '\0';
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && len < EX_FMT)
            len += (size_t)snprintf(buf + len, EX_FMT - len, "%s%s", len ? ", " : "", json_string_value(v));
    }
    return buf;
}

static const char *const kind_rule[DASHI_PROGRAM__COUNT] = {"K1", "K2", "K3", "K4", "K5", "K6", "K7"};

/* The K rule of a campaign: its kind's (a second campaign of a kind follows the same rule). */
static const char *kind_rule_of(const dashi_campaign *c) {
    return (unsigned)c->kind < DASHI_PROGRAM__COUNT ? kind_rule[c->kind] : "K";
}

/* ------------------------------------------------------------------ identity (S1–S7) */

typedef struct ex_person {
    const json_t *acct; /* acct:<uid>, NULL when unknown */
    const char *root;   /* uid of the person's root account */
    const json_t *P;    /* person data on the root (NULL: singleton, unpaid) */
    bool known;         /* registered or seen */
    char id[EX_PID];
} ex_person;

static void ex_person_of(ex *x, const char *uid, ex_person *p) {
    const char *r;
    memset(p, 0, sizeof *p);
    p->acct = ex_get(x, "acct:%s", uid);
    r = jstr(p->acct, "p");
    p->root = r ? r : uid;
    p->P = json_object_get(ex_get(x, "acct:%s", p->root), "P");
    p->known = json_object_get(p->acct, "t") != NULL;
    if (!p->known)
        goto out;
    if (jstr(p->P, "i")) {
        snprintf(p->id, sizeof p->id, "%s", jstr(p->P, "i"));
    } else if (strlen(p->root) + 3 <= sizeof p->id) { /* identity.c: "P-" + founding uid, or a digest */
        snprintf(p->id, sizeof p->id, "P-%s", p->root);
    } else {
        const char *parts[] = {p->root};
        dashi_ctx_make_id(p->id, sizeof p->id, "P", parts, 1);
    }
out:
    return;
}

/* Are the two accounts one person now (identity.c's test: both known, one root)? */
static bool ex_same_person(ex *x, const char *a, const char *b) {
    ex_person pa, pb;
    bool same = str_eq(a, b);
    if (same || !a || !b)
        goto out;
    ex_person_of(x, a, &pa);
    ex_person_of(x, b, &pb);
    same = pa.known && pb.known && str_eq(pa.root, pb.root);
out:
    return same;
}

static const char *id_kind_name(char letter) {
    switch (letter) {
    case 'P': return "PHONE";
    case 'E': return "EMAIL";
    case 'I': return "ID_DOC";
    case 'D': return "DEVICE";
    default: return "UNKNOWN";
    }
}

/* "PHONE P1.AbCdEfGh (links), EMAIL E1.…" of an account's edges: kinds and hash prefixes only (S7). */
static void sb_identities(sbuf *b, const json_t *acct) {
    const char *aid;
    const json_t *edge;
    json_object_foreach(json_object_get(acct, "e"), aid, edge) {
        const char *dot = strchr(aid, '.');
        int shown = dot ? (int)(dot - aid) + 1 + EX_HASH_SHOWN : (int)strlen(aid);
        sb_add(b, "%s%s %.*s%s%s", b->len ? ", " : "", id_kind_name(aid[0]), shown, aid,
               json_integer_value(json_array_get(edge, 1)) & 1 ? " (linked)" : "",
               json_array_size(edge) > 2 ? " (closed)" : "");
    }
    if (!b->len)
        sb_add(b, "none that links");
}

/* Member uids of a person (a new array). */
static json_t *person_members(const ex_person *p) {
    const json_t *m = json_object_get(p->P, "m");
    json_t *out = json_is_array(m) ? json_deep_copy(m) : json_array();
    if (out && !json_is_array(m))
        json_array_append_new(out, json_string(p->root));
    return out;
}

static void say_person(ex *x, const char *uid, const ex_person *p, bool all_members) {
    json_t *members = person_members(p);
    sbuf b = {0};
    size_t i;
    const json_t *v;
    if (!p->known) {
        say(x, "S1", "account %s is unknown to identity (never registered or seen)%s", uid,
            p->acct ? "; it has only a payment record" : "");
        goto out;
    }
    sb_join(&b, members);
    say(x, "S1", "person %s: %zu account%s (%s); accounts sharing identity data are one person", p->id,
        json_array_size(members), json_array_size(members) == 1 ? "" : "s", sb_str(&b));
    json_array_foreach(members, i, v) {
        const char *m = json_string_value(v);
        if (!m || (!all_members && !str_eq(m, uid)))
            continue;
        b.len = 0;
        sb_identities(&b, ex_get(x, "acct:%s", m));
        say(x, "S1,S7", "%s identity: %s", m, sb_str(&b));
    }
    if (json_array_size(json_object_get(p->P, "A"))) {
        b.len = 0;
        sb_join(&b, json_object_get(p->P, "A"));
        say(x, "S3", "accounts of this person that act as ambassadors: %s", sb_str(&b));
    }
out:
    sb_free(&b);
    json_decref(members);
}

/* The person's paid status (S4, C1). */
static void say_paid(ex *x, const ex_person *p) {
    const char *cart = jstr(p->P, "pc");
    if (!json_object_get(p->P, "pt")) {
        say(x, "S4,C1", "paid before: no (no order paying > 0 by any account of the person): a new user");
        goto out;
    }
    say(x, "S4,C1", "paid before: yes; the person's first paid order is %s%s%s by account %s at %s", jstr0(p->P, "po"),
        cart ? ", cart " : " (no cart)", cart ? cart : "", jstr0(p->P, "pu"), fmt_time(x, jint(p->P, "pt", 0)));
out:
    return;
}

/* ------------------------------------------------------------------ association (A1–A8) */

static const char *assoc_how(const char *kind) {
    if (str_eq(kind, "PURE_NEW"))
        return "the customer registered through the link (registration association, customer kind PURE_NEW)";
    if (str_eq(kind, "REGISTERED_NEW"))
        return "the customer logged in through the link as a new user (login association, customer kind "
               "REGISTERED_NEW)";
    if (str_eq(kind, "OLD"))
        return "the customer logged in through the link while already an old user (login association)";
    return "(kind not recorded)";
}

static void say_ambassador(ex *x, const char *amb_uid) {
    const json_t *amb = ex_get(x, "amb:%s", amb_uid);
    sbuf b = {0};
    const char *flag;
    const json_t *v;
    if (jint(amb, "enrolled_at", DASHI_TIME_NONE) == DASHI_TIME_NONE) {
        say(x, "A8", "%s is not an enrolled ambassador: its link earns no commission", amb_uid);
        goto out;
    }
    json_object_foreach(json_object_get(amb, "flags"), flag, v) {
        sb_add(&b, "%s%s", b.len ? ", " : "", flag);
    }
    say(x, "A7,A8", "ambassador %s: enrolled %s; flags: %s", amb_uid, fmt_time(x, jint(amb, "enrolled_at", 0)),
        b.len ? sb_str(&b) : "none (promotion valid)");
    if (jtrue(amb, "frozen"))
        say(x, "R3", "the ambassador is frozen by a risk action: its open commissions wait");
out:
    sb_free(&b);
}

/* The account's association as stored; at/amb: the order it is read for (DASHI_TIME_NONE/NULL: none). */
static void say_association(ex *x, const char *uid, dashi_time at, const char *order_amb) {
    const json_t *asc = ex_get(x, "asc:%s", uid);
    const char *amb = jstr(asc, "amb");
    dashi_time since = jint(asc, "since", DASHI_TIME_NONE), until = jint(asc, "until", DASHI_TIME_NONE);
    dashi_time prot = jint(asc, "protected_until", DASHI_TIME_NONE), keep = jint(asc, "keep_until", DASHI_TIME_NONE);
    dashi_time end = keep != DASHI_TIME_NONE && keep > until ? keep : until;
    const dashi_ruleset *set = dashi_rules_at(x->rules, since != DASHI_TIME_NONE ? since : 0);
    if (jstr(asc, "bound"))
        say(x, "A6", "the customer is bound (%s): it cannot be associated%s%s", jstr(asc, "bound"),
            jstr(asc, "blocked") ? "; last ambassador refused: " : "", jstr0(asc, "blocked"));
    if (!amb) {
        if (jstr(asc, "bound"))
            say(x, "A6", "so no association was made");
        else
            say(x, "A1,A8", "no association: the account never logged in or registered through an enrolled "
                            "ambassador's link");
        if (order_amb && *order_amb)
            say_ambassador(x, order_amb);
        goto out;
    }
    say(x, "A1", "ambassador %s: %s, made %s", amb, assoc_how(jstr(asc, "kind")), fmt_time(x, since));
    say(x, "A2", "lasts until %s (%s, half-open); a visit to the same ambassador's link does not extend it",
        fmt_time(x, until), fmt_days(x, until - since));
    if (at != DASHI_TIME_NONE) {
        if (since > at)
            say(x, "A2,A4", "this association was made after the order: the one in force when the order was paid is "
                            "no longer kept");
        else if (at >= end)
            say(x, "A2", "the order at %s came at or after its end %s: the association had expired", fmt_time(x, at),
                fmt_time(x, end));
        else
            say(x, "A2", "the order at %s was inside it", fmt_time(x, at));
    }
    if (prot != DASHI_TIME_NONE)
        say(x, "A3", "protected until %s: no other ambassador could take the customer over before then",
            fmt_time(x, prot));
    else
        say(x, "A3,A4", "not protected (a login association): a login through another ambassador's link moves it "
                        "(last touch wins)");
    if (keep != DASHI_TIME_NONE)
        say(x, "A5", "kept after the pure-new user's first purchase until %s (the window of rules %s: repurchases "
                     "in it earn the first-purchase rate while such a window is in the rules)", fmt_time(x, keep),
            set->version);
    if (str_eq(jstr(asc, "kind"), "OLD") && set->old_user_assoc_days > 0)
        say(x, "A5,C2", "an old user's login association of %lld days (rules %s): its prepaid orders earn the "
                        "repurchase rate %s", (long long)set->old_user_assoc_days, set->version,
            fmt_bp(x, set->repurchase_rate_bp));
    else if (str_eq(jstr(asc, "kind"), "OLD"))
        say(x, "A5,C2", "an old user's login association (rules %s): its orders earn nothing", set->version);
    say(x, "A4", "only the latest association of an account is kept: earlier ones are not in the state");
    if (at != DASHI_TIME_NONE && order_amb && *order_amb && !str_eq(order_amb, amb))
        say(x, "A4", "the order was credited to %s; the association has moved to %s since", order_amb, amb);
    say_ambassador(x, order_amb && *order_amb ? order_amb : amb);
out:
    return;
}

/* ------------------------------------------------------------------ one order */

static const char *version_of(const json_t *cm, const dashi_ruleset *set) {
    const char *v = jstr(cm, "version");
    return v && *v ? v : set->version;
}

static int64_t round_rate(int64_t base, int64_t rate) {
    return (int64_t)(((__int128)base * rate + BP_WHOLE / 2) / BP_WHOLE);
}

static void say_first_purchase(ex *x, const char *order_id, const json_t *ord, const json_t *cm,
                               const ex_person *p) {
    const json_t *asc = ex_get(x, "asc:%s", jstr0(ord, "uid"));
    dashi_time since =
        str_eq(jstr(asc, "amb"), jstr(cm, "amb")) ? jint(asc, "since", DASHI_TIME_NONE) : DASHI_TIME_NONE;
    const char *type = jstr(ord, "type"), *cart = jstr(ord, "cart");
    const char *po = jstr(p->P, "po"), *pc = jstr(p->P, "pc");
    bool is_first = str_eq(po, order_id), same_cart = cart && *cart && str_eq(pc, cart);
    if (str_eq(type, "RENEWAL"))
        say(x, "C2", "a RENEWAL order: renewals never earn, whatever the person's status");
    else if (str_eq(type, "UPGRADE"))
        say(x, "C1,C2", "an UPGRADE order: never a first purchase (it earns only a repurchase rate, where the rules "
                        "have one)");
    if (is_first)
        say(x, "C1", "this order is the person's first paid order: the first purchase");
    else if (same_cart)
        say(x, "C1", "same cart %s as the person's first paid order %s: part of the first purchase", cart, po);
    else if (po)
        say(x, "C1,S4", "not the first purchase: the person first paid with order %s (account %s) at %s, before this "
                        "order", po, jstr0(p->P, "pu"), fmt_time(x, jint(p->P, "pt", 0)));
    if (po && !is_first && !same_cart && since != DASHI_TIME_NONE && since <= jint(ord, "at", 0)) {
        const json_t *reasons = json_object_get(cm, "reasons");
        if (jint(p->P, "pt", 0) <= since)
            say(x, arr_has(reasons, "NOT_NEW_USER") ? "S4,C11" : "S4", "the person had paid (%s) when the association "
                "was made (%s): an old user, so every order is a repurchase%s", fmt_time(x, jint(p->P, "pt", 0)),
                fmt_time(x, since), arr_has(reasons, "NOT_NEW_USER") ? ": NOT_NEW_USER" : "");
        else
            say(x, arr_has(reasons, "NOT_FIRST_PURCHASE") ? "C1,C11" : "C1", "the person was new when associated (%s) "
                "and first paid later (%s) with another order%s", fmt_time(x, since), fmt_time(x, jint(p->P, "pt", 0)),
                arr_has(reasons, "NOT_FIRST_PURCHASE") ? ": NOT_FIRST_PURCHASE" : "");
    }
    if (cm && json_object_get(cm, "first")) {
        bool first = jtrue(cm, "first");
        say(x, "C1", "commission judged it %s when the order was paid", first ? "a first purchase" : "a repurchase");
        if (first && !is_first && !same_cart && po)
            say(x, "S4", "a same-person link found after the order showed an earlier first purchase of the person");
    }
}

static void say_rate(ex *x, const json_t *cm, const dashi_ruleset *set, bool repurchase, const char *label) {
    const char *kind = jstr(cm, "kind"), *tier = jstr(cm, "tier");
    int64_t rate = jint(cm, "rate", DASHI_INT_NONE);
    int k = kind ? dashi_enum_from_name(DASHI_ENUM_CUSTOMER_KIND, kind) : DASHI_ENUM_NONE;
    int t = tier ? dashi_enum_from_name(DASHI_ENUM_TIER, tier) : DASHI_ENUM_NONE;
    if (rate == DASHI_INT_NONE)
        goto out;
    if (repurchase && rate == set->repurchase_rate_bp && set->repurchase_rate_bp > 0)
        say(x, "A5,C2,V1", "rate %s: the old users' repurchase rate of rules %s", fmt_bp(x, rate),
            version_of(cm, set));
    else
        say(x, "C6,V1", "%s %s: customer kind %s x tier %s, rules %s%s", label,
            fmt_bp(x, rate), kind ? kind : "?",
            tier ? tier : "?", version_of(cm, set),
            repurchase ? " (A5: a repurchase in the pure-new window earns the first-purchase rate)" : "");
    if (k >= 0 && t >= 0 && !repurchase && set->rate_bp[k][t] != rate)
        say(x, "V1", "note: the rules file given here has %s for that cell; the order was judged with rules %s",
            fmt_bp(x, set->rate_bp[k][t]), version_of(cm, set));
out:
    return;
}

static void say_tier(ex *x, const json_t *ord, const json_t *cm, const dashi_ruleset *set) {
    const char *tier = jstr(cm, "tier");
    char month[16];
    if (!tier)
        goto out;
    dashi_cst_month_str(jint(ord, "at", 0), month);
    if (set->tier_basis == DASHI_TIER_BASIS_NEW_USERS)
        say(x, "T1", "tier %s of %s in %s: set when the month started, by its valid new users (first purchase >= %s) "
                     "of the previous month",
            tier, jstr0(cm, "amb"), month, fmt_money(x, set->tier_min_first_purchase));
    else
        say(x, "T2", "tier %s of %s in %s: set when the month started, by the yunqi credited in the previous %lld "
                     "months", tier, jstr0(cm, "amb"), month, (long long)set->tier_lookback_months);
out:
    return;
}

static void say_amount(ex *x, const json_t *cm, bool live) {
    int64_t base = jint(cm, "base", 0), rate = jint(cm, "rate", DASHI_INT_NONE), limit = jint(cm, "limit", -1);
    int64_t full, amount = jint(cm, "amount", 0);
    if (!live || rate == DASHI_INT_NONE)
        goto out;
    full = round_rate(base, rate);
    if (limit >= 0 && full > limit)
        say(x, jtrue(cm, "first") ? "C6,C9" : "A5,C2", "commission = min(%s x %s = %s, limit %s) = %s",
            fmt_money(x, base), fmt_bp(x, rate),
            fmt_money(x, full), fmt_money(x, limit), fmt_money(x, amount));
    else
        say(x, "C6", "commission = %s x %s = %s (half-up to the fen, once)", fmt_money(x, base), fmt_bp(x, rate),
            fmt_money(x, amount));
out:
    return;
}

static void say_cap(ex *x, const json_t *ord, const json_t *cm, const dashi_ruleset *set, bool live) {
    const json_t *asc = ex_get(x, "asc:%s", jstr0(ord, "uid"));
    int64_t limit = jint(cm, "limit", -1);
    int t = jstr(cm, "tier") ? dashi_enum_from_name(DASHI_ENUM_TIER, jstr(cm, "tier")) : DASHI_ENUM_NONE;
    bool capped = arr_has(json_object_get(cm, "notes"), "CAP_REACHED") ||
                  arr_has(json_object_get(cm, "reasons"), "CAP_REACHED");
    if (!jtrue(cm, "first")) {
        if (live && limit >= 0)
            say(x, "A5,C2", "a repurchase commission is capped at %s per order%s", fmt_money(x, limit),
                capped ? ": reached" : "");
        goto out;
    }
    if (!set->cap_enabled) {
        say(x, "C9", "no per-customer cap in rules %s (it is not enabled there)", set->version);
        goto out;
    }
    say(x, "C9", "cap %s per customer for tier %s; left for this order when it was decided: %s; %s",
        t >= 0 ? fmt_money(x, set->cap_per_customer[t]) : "?", jstr0(cm, "tier"),
        limit >= 0 ? fmt_money(x, limit) : "(not recorded)", capped ? "the cap was reached" : "not reached");
    say(x, "C9", "first-purchase commission granted to %s so far (all its orders): %s", jstr0(ord, "uid"),
        fmt_money(x, jint(asc, "cap_used", 0)));
out:
    return;
}

static void say_review(ex *x, const json_t *ord, const json_t *cm, const dashi_ruleset *set) {
    const char *state = jstr0(cm, "state");
    dashi_time ends = jint(cm, "review_ends", DASHI_TIME_NONE);
    if (ends == DASHI_TIME_NONE)
        goto out;
    say(x, "C8", "review of %s from the order: ends %s", fmt_days(x, ends - jint(ord, "at", 0)), fmt_time(x, ends));
    if (str_eq(state, "PENDING") && jtrue(cm, "review_over"))
        say(x, "C8,R3", "the review is over but the commission is frozen: it is confirmed when unfrozen");
    else if (str_eq(state, "PENDING"))
        say(x, "C8", "still in review in this state: refunds and same-person findings may still cancel or reduce it");
    else if (str_eq(state, "CONFIRMED") && jint(cm, "confirmed_at", ends) > ends)
        say(x, "C8,R3", "confirmed at %s, after the review end: it was frozen by a risk action then, and confirmed "
                        "when unfrozen", fmt_time(x, jint(cm, "confirmed_at", ends)));
    else if (str_eq(state, "CONFIRMED"))
        say(x, "C8", "confirmed at %s, when the review ended", fmt_time(x, jint(cm, "confirmed_at", ends)));
    else if (str_eq(state, "CANCELLED"))
        say(x, "C8", "cancelled during the review");
    if (str_eq(state, "CONFIRMED")) {
        const json_t *inst = json_object_get(cm, "installments"), *v;
        sbuf b = {0};
        size_t i;
        int64_t sum = 0;
        json_array_foreach(inst, i, v) {
            sum += jint(v, "amount", 0);
            sb_add(&b, "%s#%lld %s due %s", b.len ? ", " : "", (long long)jint(v, "seq", 0),
                   fmt_money(x, jint(v, "amount", 0)), fmt_time(x, jint(v, "due_at", 0)));
        }
        if (json_array_size(inst) > 1)
            say(x, "C10", "%s >= the threshold %s of rules %s: paid in %zu instalments: %s", fmt_money(x, sum),
                fmt_money(x, set->installment_threshold), set->version, json_array_size(inst), sb_str(&b));
        else if (set->installments_enabled)
            say(x, "C10", "%s < the threshold %s: paid in one instalment at review end (%s)", fmt_money(x, sum),
                fmt_money(x, set->installment_threshold), sb_str(&b));
        else
            say(x, "C10", "no instalments in rules %s: paid in one at review end (%s)", set->version, sb_str(&b));
        if (sum > jint(cm, "amount", 0))
            say(x, "C7,R2", "clawback of %s after confirmation (refund or downgrade after the rebate; alert "
                            "REFUND_AFTER_REBATE)", fmt_money(x, sum - jint(cm, "amount", 0)));
        sb_free(&b);
    }
out:
    return;
}

static void say_refunds(ex *x, const json_t *ord, const json_t *cm) {
    int64_t paid = jint(ord, "paid", 0), left = jint(ord, "paid_left", paid), elig_left = 0;
    size_t i, n_elig = 0;
    const json_t *it;
    json_array_foreach(json_object_get(ord, "items"), i, it) {
        if (jtrue(it, "elig")) {
            n_elig++;
            elig_left += jint(it, "left", 0);
        }
    }
    say(x, "C4,C5", "eligible base %s%s: %zu of %zu items of an eligible category, at the amount actually paid",
        fmt_money(x, jint(cm, "base", 0)), left != paid ? " (now, after refunds)" : "", n_elig,
        json_array_size(json_object_get(ord, "items")));
    if (left == paid) {
        say(x, "C5,C7", "refunds: none (paid %s, all of it left)", fmt_money(x, paid));
        goto out;
    }
    say(x, "C5,C7", "refunds and downgrades took %s off the %s paid%s; left: %s paid, %s of it eligible",
        fmt_money(x, paid - left), fmt_money(x, paid), left == 0 ? " (in full)" : "", fmt_money(x, left),
        fmt_money(x, elig_left));
    say(x, "C5", "the single refunds are not kept in the state, only what is left of each item");
out:
    return;
}

static void say_valid_new_user(ex *x, const json_t *cm, const dashi_ruleset *set) {
    const char *month = jstr(cm, "nu_month");
    int64_t paid = jint(cm, "nu_paid", 0);
    if (!month)
        goto out;
    if (paid <= 0)
        say(x, "T1", "no longer counts toward %s's valid new users of %s", jstr0(cm, "amb"), month);
    else if (set->tier_basis != DASHI_TIER_BASIS_NEW_USERS)
        say(x, "T1", "recorded for %s's new users of %s (paid %s); tiers of its rules go by yunqi (T2)",
            jstr0(cm, "amb"), month, fmt_money(x, paid));
    else
        say(x, "T1", "%s toward %s's valid new users of %s: first purchase paid %s %s %s",
            paid >= set->tier_min_first_purchase ? "counts" : "does not count", jstr0(cm, "amb"), month,
            fmt_money(x, paid), paid >= set->tier_min_first_purchase ? ">=" : "<",
            fmt_money(x, set->tier_min_first_purchase));
out:
    return;
}

static void say_order_campaigns(ex *x, const char *order_id) {
    const json_t *cpo = ex_get(x, "cp:ord:%s", order_id), *pr;
    const char *key;
    if (!cpo) {
        say(x, "K", "the order went into no campaign count (no first purchase through a campaign link in a window)");
        goto out;
    }
    json_object_foreach(json_object_get(cpo, "progs"), key, pr) {
        const dashi_campaign *c = dashi_rules_campaign(x->rules, key);
        const json_t *e = ex_get(x, "cp:%s:u:%s", key, jstr0(pr, "u"));
        say(x, c ? kind_rule_of(c) : "K", "%s (%s): %s qualifying, for account %s of promoter %s; entry now %s%s",
            key, c && c->name ? c->name : "?", fmt_money(x, jint(pr, "q", 0)), jstr0(pr, "u"), jstr0(e, "p"),
            jstr(e, "st") ? jstr(e, "st") : "(none)",
            jtrue(pr, "w") ? "; the order's part was withdrawn (full refund in the window, or void)" : "");
    }
    if (jtrue(cpo, "full"))
        say(x, "K,C7", "refunded in full: within the refund window it stops counting in every campaign");
out:
    return;
}

static void explain_order(ex *x, const char *order_id, const json_t *ord) {
    const json_t *cm = json_object_get(ord, "cm");
    const char *state = jstr0(cm, "state"), *amb = jstr0(cm, "amb"), *uid = jstr0(ord, "uid");
    dashi_time at = jint(ord, "at", 0);
    const dashi_ruleset *set = dashi_rules_at(x->rules, at);
    bool live = str_eq(state, "PENDING") || str_eq(state, "CONFIRMED");
    bool repurchase = arr_has(json_object_get(cm, "notes"), "REPURCHASE");
    ex_person p;

    fprintf(x->out, "order %s: %s", order_id, *state ? state : "(no outcome)");
    if (live)
        fprintf(x->out, ", commission %s to ambassador %s\n", fmt_money(x, jint(cm, "amount", 0)), amb);
    else
        fprintf(x->out, "%s%s\n", json_array_size(json_object_get(cm, "reasons")) ? ": " : "",
                codes_str(x, json_object_get(cm, "reasons")));
    say(x, "C1,V1", "paid %s by customer %s: type %s, cart %s, %s paid; judged by rules %s", fmt_time(x, at), uid,
        jstr0(ord, "type"), *jstr0(ord, "cart") ? jstr0(ord, "cart") : "none", fmt_money(x, jint(ord, "paid", 0)),
        version_of(cm, set));
    say(x, "C11", "commission id %s", jstr0(cm, "id"));

    section(x, "association");
    say_association(x, uid, at, amb);

    section(x, "person");
    ex_person_of(x, uid, &p);
    say_person(x, uid, &p, false);
    say_paid(x, &p);
    if (*amb)
        say(x, "S3", "customer and ambassador %s are %s", amb,
            ex_same_person(x, uid, amb) ? "the same person now" : "different persons");

    section(x, "first purchase");
    say_first_purchase(x, order_id, ord, cm, &p);

    section(x, "commission");
    say_refunds(x, ord, cm);
    say_tier(x, ord, cm, set);
    say_rate(x, cm, set, repurchase,
             live ? "rate" : str_eq(state, "CANCELLED") ? "rate while it was live" : "rate that would have applied");
    say_amount(x, cm, live);
    if (live || arr_has(json_object_get(cm, "reasons"), "CAP_REACHED") || str_eq(state, "CANCELLED"))
        say_cap(x, ord, cm, set, live);
    say_review(x, ord, cm, set);
    if (jint(cm, "bonus", 0) > 0)
        say(x, "K1", "first-order bonus %lld yunqi on top (the commission amount stays the normal one)",
            (long long)jint(cm, "bonus", 0));
    if (jtrue(cm, "first"))
        say_valid_new_user(x, cm, set);
    if (jtrue(cm, "frozen"))
        say(x, "R3", "this commission is frozen by a risk action");
    if (str_eq(jstr(ex_get(x, "amb:%s", amb), "awakened_by"), order_id))
        say(x, "P2", "its confirmation awakened %s's yunqi (the ambassador's first confirmed order)", amb);
    {
        const char *kind;
        const json_t *v;
        json_object_foreach(json_object_get(cm, "alerted"), kind, v) {
            say(x, "S4,S5,R2", "a same-person finding after confirmation raised %s; a confirmed commission is not "
                               "reopened", kind);
        }
    }

    section(x, "outcome");
    if (live) {
        say(x, "C11", "%s: %s to %s (customer kind %s, tier %s, rate %s, rules %s)", state,
            fmt_money(x, jint(cm, "amount", 0)), amb, jstr(cm, "kind") ? jstr(cm, "kind") : "old user",
            jstr0(cm, "tier"),
            fmt_bp(x, jint(cm, "rate", 0)), version_of(cm, set));
        say_codes(x, json_object_get(cm, "notes"), "note");
    } else if (*state) {
        say(x, "C11", "%s: nothing earned%s%s", state, *amb ? "; ambassador concerned: " : "", amb);
        say_codes(x, json_object_get(cm, "reasons"), "reason");
    } else {
        say(x, "C11", "no outcome recorded");
    }

    section(x, "campaigns");
    say_order_campaigns(x, order_id);
}

/* ------------------------------------------------------------------ one customer */

typedef struct ord_ref {
    const char *id;
    const json_t *ord;
} ord_ref;

static int ord_ref_cmp(const void *pa, const void *pb) {
    const ord_ref *a = pa, *b = pb;
    int64_t ta = jint(a->ord, "at", 0), tb = jint(b->ord, "at", 0);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return strcmp(a->id, b->id);
}

static void say_customer_order(ex *x, const char *id, const json_t *ord) {
    const json_t *cm = json_object_get(ord, "cm");
    const char *state = jstr0(cm, "state");
    if (str_eq(state, "PENDING") || str_eq(state, "CONFIRMED"))
        say(x, "C11", "%s %s %s paid %s -> %s %s to %s (%s x %s, %s%s%s)", id, fmt_time(x, jint(ord, "at", 0)),
            jstr0(ord, "type"), fmt_money(x, jint(ord, "paid", 0)), state, fmt_money(x, jint(cm, "amount", 0)),
            jstr0(cm, "amb"), jstr0(cm, "kind"), jstr0(cm, "tier"), fmt_bp(x, jint(cm, "rate", 0)),
            json_array_size(json_object_get(cm, "notes")) ? "; " : "", codes_str(x, json_object_get(cm, "notes")));
    else
        say(x, "C11", "%s %s %s paid %s -> %s: %s%s%s", id, fmt_time(x, jint(ord, "at", 0)), jstr0(ord, "type"),
            fmt_money(x, jint(ord, "paid", 0)), *state ? state : "(no outcome)",
            codes_str(x, json_object_get(cm, "reasons")), *jstr0(cm, "amb") ? ", ambassador " : "",
            jstr0(cm, "amb"));
}

static void explain_customer(ex *x, const char *uid, json_t *orders) {
    ex_person p;
    json_t *members;
    const json_t *amb = ex_get(x, "amb:%s", uid), *v, *ord;
    const char *key;
    ord_ref *refs = NULL;
    size_t i, n = 0;

    ex_person_of(x, uid, &p);
    fprintf(x->out, "customer %s%s%s\n", uid, p.known ? ", person " : "", p.id);
    section(x, "person");
    if (p.known) {
        int64_t d = jint(p.acct, "d", -1);
        say(x, "S1", "account known since %s", fmt_time(x, jint(p.acct, "t", 0)));
        if (d >= 0)
            say(x, "S2", "last same-person decision: %s%s", d >> 4 ? "SAME_PERSON" : "NEW_PERSON",
                jint(p.acct, "f", 0) ? " (final)" : " (provisional: the T+0 day is not over)");
    }
    say_person(x, uid, &p, true);
    say_paid(x, &p);
    if (jint(amb, "enrolled_at", DASHI_TIME_NONE) != DASHI_TIME_NONE)
        say(x, "A8,T3", "%s is also an enrolled ambassador (since %s), tier %s for %s", uid,
            fmt_time(x, jint(amb, "enrolled_at", 0)), jstr0(amb, "tier"), jstr0(amb, "tier_month"));

    section(x, "association");
    say_association(x, uid, DASHI_TIME_NONE, NULL);
    members = person_members(&p);
    json_array_foreach(members, i, v) {
        const char *m = json_string_value(v);
        const json_t *asc = m && !str_eq(m, uid) ? ex_get(x, "asc:%s", m) : NULL;
        if (jstr(asc, "amb"))
            say(x, "A1,S1", "the person's account %s is associated with %s (%s, %s .. %s)", m, jstr(asc, "amb"),
                jstr0(asc, "kind"), fmt_time(x, jint(asc, "since", 0)), fmt_time(x, jint(asc, "until", 0)));
    }
    json_decref(members);

    section(x, "orders");
    refs = calloc(json_object_size(orders) + 1, sizeof *refs);
    json_object_foreach(orders, key, ord) {
        if (refs) {
            refs[n].id = key;
            refs[n++].ord = ord;
        }
    }
    if (n > 1)
        qsort(refs, n, sizeof *refs, ord_ref_cmp);
    if (n == 0)
        say(x, "C1,C11", "no order paying > 0 (orders paying 0 fen are not purchases and leave no record)");
    for (i = 0; i < n; i++)
        say_customer_order(x, refs[i].id, refs[i].ord);
    if (n)
        say(x, "", "(dashi explain --order ID tells why each one ended so)");
    free(refs);

    section(x, "campaigns");
    n = 0;
    for (i = 0; x->rules && i < x->rules->n_campaigns; i++) {
        const dashi_campaign *c = &x->rules->campaigns[i];
        const json_t *e = ex_get(x, "cp:%s:u:%s", c->id, uid);
        const json_t *lk = ex_get(x, "cp:lk:%s:%s", c->campaign_id, uid);
        bool first_of_link = true;
        for (size_t k = 0; k < i; k++)
            first_of_link = first_of_link && !str_eq(x->rules->campaigns[k].campaign_id, c->campaign_id);
        if (lk && first_of_link) {
            say(x, "K", "link of %s: last touched by promoter %s at %s%s", c->campaign_id, jstr0(lk, "p"),
                fmt_time(x, jint(lk, "at", 0)), jtrue(lk, "reg") ? " (registered through it)" : " (logged in)");
            n++;
        }
        if (e) {
            say(x, kind_rule_of(c), "%s entry for promoter %s: %s, qualifying paid %s%s", c->id, jstr0(e, "p"),
                jstr0(e, "st"), fmt_money(x, jint(e, "paid", 0)),
                str_eq(jstr(e, "st"), "counted") ? "" : " (dashi explain --campaign ID --promoter UID says why)");
            n++;
        }
    }
    if (!n)
        say(x, "K", "no campaign link touch and no campaign entry");
}

/* ------------------------------------------------------------------ one promoter in one campaign */

static const char *const kind_label[DASHI_PROGRAM__COUNT] = {
    "first-order bonus", "first-purchase ladder", "a draw per first purchase", "verification ladder",
    "leaderboard",       "designated products ladder", "buyer draw"};

static bool cp_window(const dashi_campaign *c, dashi_time t) {
    return t != DASHI_TIME_NONE && t >= c->starts_at && t < c->ends_at;
}

static bool cp_purchase_kind(const dashi_campaign *c) {
    return c->kind != DASHI_PROGRAM_FIRST_ORDER_BONUS && c->kind != DASHI_PROGRAM_VERIFIED_LADDER;
}

static int64_t cp_need(const dashi_campaign *c) {
    int64_t need = c->kind == DASHI_PROGRAM_VERIFIED_LADDER ? c->purchase_min_paid : c->min_paid;
    if ((c->kind == DASHI_PROGRAM_PRODUCT_LADDER || c->kind == DASHI_PROGRAM_BUYER_DRAW) && need < 1)
        need = 1;
    return need;
}

/* Could uid promote c at t? campaign.c's test: an ambassador by then, or signed up unless the campaign is for
 * ambassadors only; never flagged or voided. *why says why not. */
static bool cp_promoter_ok(ex *x, const dashi_campaign *c, const char *uid, dashi_time t, const char **why) {
    const json_t *acct = ex_get(x, "cp:acct:%s", uid), *pr = ex_get(x, "cp:%s:p:%s", c->id, uid);
    int64_t at = jint(acct, "amb", DASHI_INT_NONE), enr = jint(json_object_get(acct, "enr"), c->campaign_id,
                                                                DASHI_INT_NONE);
    *why = NULL;
    if (json_array_size(json_object_get(acct, "flags")))
        *why = "the promoter is flagged (A7)";
    else if (jtrue(pr, "void"))
        *why = "the promoter was voided by risk (R3)";
    else if (at != DASHI_INT_NONE && at <= t)
        *why = NULL; /* an ambassador by then */
    else if (c->ambassadors_only)
        *why = "the promoter was not an enrolled ambassador then (ambassadors only)";
    else if (enr == DASHI_INT_NONE || enr > t)
        *why = "the promoter was neither an enrolled ambassador nor signed up for the campaign then";
    return *why == NULL;
}

/* Does the entry hold the person's first purchase (its orders or cart)? */
static bool cp_holds_first(const json_t *e, const ex_person *p) {
    const char *po = jstr(p->P, "po"), *pc = jstr(p->P, "pc");
    return (po && arr_has(json_object_get(e, "orders"), po)) || (pc && str_eq(jstr(e, "cart"), pc));
}

/* Why a dropped entry stopped counting, worked out from the state (campaign.c keeps no reason). */
static void why_dropped(ex *x, const dashi_campaign *c, const char *promoter, const char *uid, const json_t *e,
                        sbuf *b) {
    const json_t *pr = ex_get(x, "cp:%s:p:%s", c->id, promoter), *v;
    json_t *members = NULL;
    size_t i;
    ex_person p;
    ex_person_of(x, uid, &p);
    if (jtrue(pr, "void")) {
        sb_add(b, "[R3] a risk VOID of everything the promoter had in the campaign");
        goto out;
    }
    if (c->kind != DASHI_PROGRAM_BUYER_DRAW && ex_same_person(x, promoter, uid)) {
        sb_add(b, "[S3] the customer is the promoter's own person");
        goto out;
    }
    if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER && json_object_get(p.P, "pt") &&
        jint(p.P, "pt", 0) < jint(e, "reg", INT64_MAX)) {
        sb_add(b, "[%s,S4] the person had paid (order %s) before registering through the link: not a new user",
               kind_rule[c->kind], jstr0(p.P, "po"));
        goto out;
    }
    if (cp_purchase_kind(c) && !cp_holds_first(e, &p)) {
        sb_add(b, "[S4,C1] a same-person finding: its order is no longer the person's first purchase (that is %s of "
                  "account %s)", jstr0(p.P, "po"), jstr0(p.P, "pu"));
        goto out;
    }
    json_array_foreach(cp_purchase_kind(c) ? json_object_get(e, "orders") : NULL, i, v) {
        const char *oid = json_string_value(v);
        const json_t *cpo = oid ? ex_get(x, "cp:ord:%s", oid) : NULL;
        const json_t *cm = json_object_get(ex_get(x, "ord:%s", oid ? oid : ""), "cm");
        if (jtrue(cpo, "full") && jtrue(json_object_get(json_object_get(cpo, "progs"), c->id), "w")) {
            sb_add(b, "[%s,C7] order %s was refunded in full within the refund window", kind_rule[c->kind], oid);
            goto out;
        }
        if (str_eq(jstr(cm, "state"), "CANCELLED")) {
            sb_add(b, "[%s,C11] the commission of its order %s was cancelled (%s)", kind_rule[c->kind], oid,
                   codes_str(x, json_object_get(cm, "reasons")));
            goto out;
        }
    }
    members = person_members(&p);
    json_array_foreach(members, i, v) {
        const char *other = json_string_value(v);
        const json_t *o = other && !str_eq(other, uid) ? ex_get(x, "cp:%s:u:%s", c->id, other) : NULL;
        if (str_eq(jstr(o, "st"), "counted")) {
            sb_add(b, "[S1,%s] one person counts once: account %s of the same person counts (for promoter %s)",
                   kind_rule[c->kind], other, jstr0(o, "p"));
            goto out;
        }
    }
    sb_add(b, "[R3] none of the recorded causes applies; what is left is a risk VOID naming its order");
out:
    json_decref(members);
}

/* Why a user reached through the promoter's link has no entry of its own, worked out from the state. */
static void why_no_entry(ex *x, const dashi_campaign *c, const char *promoter, const char *uid, const json_t *lk,
                         sbuf *b) {
    ex_person p;
    const json_t *first, *cpacct = ex_get(x, "cp:acct:%s", uid);
    const char *why;
    dashi_time touched = jint(lk, "at", DASHI_TIME_NONE), paid_at;
    const char *k = kind_rule[c->kind];
    ex_person_of(x, uid, &p);
    paid_at = jint(p.P, "pt", DASHI_TIME_NONE);
    if (jtrue(cpacct, "bound")) {
        sb_add(b, "[A6,%s] the customer is bound to a partner: campaign links do not reach it", k);
        goto out;
    }
    if (!cp_window(c, touched)) {
        sb_add(b, "[%s] the link touch kept (%s) is outside the window", k, fmt_time(x, touched));
        goto out;
    }
    if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER) {
        if (!jtrue(lk, "reg"))
            sb_add(b, "[K4] only logged in through the link: K4 counts users who register through it");
        else if (paid_at != DASHI_TIME_NONE && paid_at < touched)
            sb_add(b, "[K4,S4] the person had paid before registering: not a new user");
        else
        {
            sb_add(b, "[K4] registered through the link with a method that does not count (counted:");
            for (size_t i = 0; i < c->n_methods; i++)
                sb_add(b, "%s %s", i ? "," : "", c->methods[i]);
            sb_add(b, "); the state does not keep the method");
        }
        goto out;
    }
    if (paid_at == DASHI_TIME_NONE) {
        sb_add(b, "[%s,C1] no purchase (as of this state)", k);
        goto out;
    }
    first = ex_get(x, "ord:%s", jstr0(p.P, "po"));
    if (!str_eq(jstr(p.P, "pu"), uid)) {
        sb_add(b, "[%s,C1,S1] the person's first purchase (order %s) was made by its other account %s", k,
               jstr0(p.P, "po"), jstr0(p.P, "pu"));
        goto out;
    }
    if (!cp_window(c, paid_at)) {
        sb_add(b, "[%s,C1] the first purchase (order %s at %s) is outside the window", k, jstr0(p.P, "po"),
               fmt_time(x, paid_at));
        goto out;
    }
    if (first && !str_eq(jstr(first, "type"), "NEW")) {
        sb_add(b, "[%s,C1] the first purchase %s is a %s order: only NEW orders count", k, jstr0(p.P, "po"),
               jstr0(first, "type"));
        goto out;
    }
    if (touched > paid_at) {
        sb_add(b, "[%s] the link touch kept (%s) came after the first purchase (%s)", k, fmt_time(x, touched),
               fmt_time(x, paid_at));
        goto out;
    }
    if (ex_same_person(x, promoter, uid)) {
        sb_add(b, "[S3,%s] the customer is the promoter's own person", k);
        goto out;
    }
    if (!cp_promoter_ok(x, c, promoter, paid_at, &why)) {
        sb_add(b, "[%s] at the first purchase %s", k, why);
        goto out;
    }
    sb_add(b, "[%s] the first purchase %s carried another campaign's id, or paid nothing that counts here "
              "(excluded categories, or no designated product); the state keeps neither", k, jstr0(p.P, "po"));
out:
    return;
}

/* K5: the promoter's place among every promoter of c with a count above 0 (ties: who reached the count
 * first, then uid), as the settlement ranks them. */
static void say_rank(ex *x, const dashi_campaign *c, const char *promoter, const json_t *pr) {
    char prefix[256];
    json_t *all;
    const char *uid;
    const json_t *p;
    int64_t n = jint(json_array_get(json_object_get(pr, "l"), 0), "n", 0), rank = 1, total = 0;
    int64_t reached = json_integer_value(json_array_get(json_object_get(pr, "t"), (size_t)(n > 0 ? n - 1 : 0)));
    snprintf(prefix, sizeof prefix, "cp:%s:p:", c->id);
    if (n <= 0 || !(all = dashi_records_scan(&x->rd, prefix, NULL, NULL)))
        goto out;
    json_object_foreach(all, uid, p) {
        int64_t m = jint(json_array_get(json_object_get(p, "l"), 0), "n", 0);
        int64_t t = m > 0 ? json_integer_value(json_array_get(json_object_get(p, "t"), (size_t)(m - 1))) : 0;
        if (m <= 0)
            continue;
        total++;
        if (m > n || (m == n && (t < reached || (t == reached && strcmp(uid, promoter) < 0))))
            rank++;
    }
    say(x, "K5", "rank %lld of %lld promoters with a count above 0 (count %lld reached %s; ties go to who reached the "
                 "count first)%s", (long long)rank, (long long)total, (long long)n, fmt_time(x, reached),
        ex_get(x, "cp:%s:st", c->id) ? "" : "; a preview until settlement");
    json_decref(all);
out:
    return;
}

static void say_ladders(ex *x, const dashi_campaign *c, const char *promoter, const json_t *pr) {
    const char *k = kind_rule_of(c);
    bool board = c->kind == DASHI_PROGRAM_LEADERBOARD, verified = c->kind == DASHI_PROGRAM_VERIFIED_LADDER;
    for (size_t li = 0; li < c->n_ladders; li++) {
        const dashi_ladder *l = &c->ladders[li];
        const json_t *rec = json_array_get(json_object_get(pr, "l"), li);
        int64_t n = jint(rec, "n", 0), bought = jint(rec, "b", 0), s = jint(rec, "s", 0), r = jint(rec, "r", 0);
        const char *name = l->name ? l->name : "ladder";
        if (s > 0 && (size_t)s <= l->n_steps && board)
            say(x, k, "%s: %lld counted -> threshold %lld reached: eligible for the prize draw", name, (long long)n,
                (long long)l->steps[s - 1].count);
        else if (s > 0 && (size_t)s <= l->n_steps)
            say(x, k, "%s: %lld counted -> step %lld of %zu reached (%lld users -> %s); reward %s (the highest step "
                      "reached, not a sum)", name, (long long)n, (long long)s, l->n_steps,
                (long long)l->steps[s - 1].count, fmt_reward(x, c, l->steps[s - 1].reward), fmt_reward(x, c, r));
        else
            say(x, k, "%s: %lld counted -> no %s reached (the first needs %lld)", name, (long long)n,
                board ? "threshold" : "step", l->n_steps ? (long long)l->steps[0].count : 0LL);
        if (verified)
            say(x, "K4", "%s: %lld of the %lld verified users made a first purchase >= %s", name, (long long)bought,
                (long long)n, fmt_money(x, c->purchase_min_paid));
        if ((size_t)s < l->n_steps) {
            int64_t need = l->steps[s].count;
            int64_t buyers = (need * c->purchase_ratio_bp + BP_WHOLE - 1) / BP_WHOLE;
            if (verified)
                say(x, "K4", "%s: next step %lld users -> %s: needs %lld verified users and ceil(%lld x %s) = %lld of "
                             "them with such a purchase", name, (long long)need, fmt_reward(x, c, l->steps[s].reward),
                    (long long)need, (long long)need, fmt_bp(x, c->purchase_ratio_bp), (long long)buyers);
            else if (board)
                say(x, k, "%s: next threshold %lld users (prize-draw eligibility)", name, (long long)need);
            else
                say(x, k, "%s: next step %lld users -> %s", name, (long long)need,
                    fmt_reward(x, c, l->steps[s].reward));
        }
    }
    if (board)
        say_rank(x, c, promoter, pr);
}

static void explain_bonus(ex *x, const dashi_campaign *c, const char *promoter, const json_t *pr) {
    const json_t *acct = ex_get(x, "cp:acct:%s", promoter);
    int64_t enrolled = jint(acct, "amb", DASHI_INT_NONE), first_cm = jint(acct, "cm", DASHI_INT_NONE);
    if (jstr(pr, "order")) {
        int64_t bonus = jint(pr, "bonus", 0);
        say(x, "K1", "first commissioned order in the window through the link: %s of customer %s (%s)",
            jstr0(pr, "order"), jstr0(pr, "customer"), fmt_time(x, jint(pr, "at", 0)));
        if (bonus <= 0)
            say(x, "K1", "bonus 0: the band rate x min(base, cap) did not exceed the normal commission");
        else
            say(x, "K1", "bonus %s%s", fmt_reward(x, c, bonus),
                jtrue(pr, "revoked") ? ", REVOKED (its commission was cancelled, or a risk VOID)" : "");
        goto out;
    }
    if (enrolled == DASHI_INT_NONE)
        say(x, "K1,A8", "no bonus: %s is not an enrolled ambassador (K1 is for ambassadors only)", promoter);
    else if (!cp_window(c, enrolled) && first_cm != DASHI_INT_NONE && first_cm < c->starts_at)
        say(x, "K1", "no bonus: joined before the campaign (%s) and had a commissioned order before it (%s)",
            fmt_time(x, enrolled), fmt_time(x, first_cm));
    else
        say(x, "K1", "no bonus yet: no commissioned order in the window from a customer reached through the "
                     "campaign's link");
out:
    return;
}

static void explain_program(ex *x, const dashi_campaign *c, const char *promoter) {
    char prefix[512];
    const json_t *pr = ex_get(x, "cp:%s:p:%s", c->id, promoter), *settled = ex_get(x, "cp:%s:st", c->id);
    const json_t *acct = ex_get(x, "cp:acct:%s", promoter), *e, *lk;
    const char *uid, *k = kind_rule_of(c);
    json_t *entries = NULL, *touches = NULL;
    sbuf b = {0};
    size_t n_counted = 0, n_excluded = 0;
    int64_t enrolled = jint(acct, "amb", DASHI_INT_NONE);

    fprintf(x->out, "campaign %s \"%s\" (%s, %s), link campaign id %s\n", c->id, c->name ? c->name : "",
            kind_label[c->kind], k, c->campaign_id);
    say(x, "K,V2", "window %s .. %s (half-open); settles %s%s", fmt_time(x, c->starts_at), fmt_time(x, c->ends_at),
        fmt_time(x, c->settles_at),
        settled ? "; SETTLED: the figures below are final" : "; no settlement recorded in this state");
    section(x, "promoter");
    say(x, "K,A8", "%s: %s%s%s", promoter,
        enrolled != DASHI_INT_NONE ? "enrolled ambassador since " : "not an enrolled ambassador",
        enrolled != DASHI_INT_NONE ? fmt_time(x, enrolled) : "",
        jint(json_object_get(acct, "enr"), c->campaign_id, DASHI_INT_NONE) != DASHI_INT_NONE
            ? "; signed up for the campaign"
            : (c->ambassadors_only ? "; the campaign is for ambassadors only" : "; not signed up for the campaign"));
    if (json_array_size(json_object_get(acct, "flags")))
        say(x, "A7", "flagged: cannot promote");
    if (jtrue(pr, "void"))
        say(x, "R3", "voided by risk in this campaign: nothing counts for it");
    if (c->kind == DASHI_PROGRAM_FIRST_ORDER_BONUS) {
        explain_bonus(x, c, promoter, pr);
        goto out;
    }
    section(x, "steps");
    if (c->n_ladders)
        say_ladders(x, c, promoter, pr);
    else if (c->kind == DASHI_PROGRAM_DRAW_PER_PURCHASE || c->kind == DASHI_PROGRAM_BUYER_DRAW)
        say(x, k, "%lld draw%s granted now (one per counted %s); unused draws expire %s",
            (long long)jint(json_array_get(json_object_get(pr, "l"), 0), "n", 0),
            jint(json_array_get(json_object_get(pr, "l"), 0), "n", 0) == 1 ? "" : "s",
            c->kind == DASHI_PROGRAM_BUYER_DRAW ? "own first purchase" : "user", fmt_time(x, c->draw_expires_at));

    snprintf(prefix, sizeof prefix, "cp:%s:u:", c->id);
    if (!(entries = dashi_records_scan(&x->rd, prefix, "p", promoter)))
        goto out;
    section(x, "counted users");
    json_object_foreach(entries, uid, e) {
        ex_person p;
        if (!str_eq(jstr(e, "st"), "counted"))
            continue;
        ex_person_of(x, uid, &p);
        b.len = 0;
        sb_join(&b, json_object_get(e, "orders"));
        if (c->kind == DASHI_PROGRAM_VERIFIED_LADDER)
            say(x, k, "%s (person %s): registered %s, verified and counted %s on %s; first purchase %s%s%s%s", uid,
                p.id, fmt_time(x, jint(e, "reg", 0)), fmt_time(x, jint(e, "at", 0)),
                c->ladders && (size_t)jint(e, "li", 0) < c->n_ladders && c->ladders[jint(e, "li", 0)].name
                    ? c->ladders[jint(e, "li", 0)].name
                    : "the ladder",
                jtrue(e, "bought") ? "yes, " : "no", jtrue(e, "bought") ? fmt_money(x, jint(e, "paid", 0)) : "",
                b.len ? " in orders " : "", sb_str(&b));
        else
            say(x, k, "%s (person %s): order %s, qualifying paid %s (>= %s), counted since %s", uid, p.id,
                sb_str(&b), fmt_money(x, jint(e, "paid", 0)), fmt_money(x, cp_need(c)),
                fmt_time(x, jint(e, "at", 0)));
        n_counted++;
    }
    if (!n_counted)
        say(x, k, "none");

    section(x, "excluded users");
    json_object_foreach(entries, uid, e) {
        const char *st = jstr0(e, "st");
        if (str_eq(st, "counted"))
            continue;
        b.len = 0;
        if (str_eq(st, "dropped")) {
            why_dropped(x, c, promoter, uid, e, &b);
            say(x, k, "%s: counted no more (dropped); why (inferred): %s", uid, sb_str(&b));
        } else if (str_eq(st, "pending")) {
            say(x, k, "%s: pending: qualifying paid %s < %s a valid first purchase needs (%s%s)", uid,
                fmt_money(x, jint(e, "paid", 0)), fmt_money(x, cp_need(c)),
                c->n_excluded_categories ? "domain and marketplace items do not count" : "designated products only",
                c->n_products && c->n_excluded_categories ? "; designated products only" : "");
        } else if (str_eq(st, "reg")) {
            const char *why = NULL;
            bool ok = cp_promoter_ok(x, c, promoter, jint(e, "reg", 0), &why);
            say(x, "K4", "%s: registered through the link %s but not counted: %s", uid, fmt_time(x, jint(e, "reg", 0)),
                ok ? "no real-name verification inside the window (as of this state)" : why);
        } else {
            say(x, k, "%s: entry state %s", uid, st);
        }
        n_excluded++;
    }
    if (c->kind != DASHI_PROGRAM_BUYER_DRAW) {
        snprintf(prefix, sizeof prefix, "cp:lk:%s:", c->campaign_id);
        if (!(touches = dashi_records_scan(&x->rd, prefix, "p", promoter)))
            goto out;
        json_object_foreach(touches, uid, lk) {
            const json_t *own = json_object_get(entries, uid), *any = own ? own : ex_get(x, "cp:%s:u:%s", c->id, uid);
            if (own)
                continue;
            b.len = 0;
            if (any)
                sb_add(&b, "[%s] its entry belongs to promoter %s (%s): one entry per customer, the first that "
                           "counted it", k, jstr0(any, "p"), jstr0(any, "st"));
            else
                why_no_entry(x, c, promoter, uid, lk, &b);
            say(x, k, "%s: reached through the link (%s) but never counted here; why (inferred): %s", uid,
                fmt_time(x, jint(lk, "at", 0)), sb_str(&b));
            n_excluded++;
        }
    }
    if (!n_excluded)
        say(x, k, "none");
out:
    sb_free(&b);
    json_decref(entries);
    json_decref(touches);
}

/* ------------------------------------------------------------------ entry points */

static dashi_err ex_begin(ex *x, dashi_state *st, const dashi_rules *rules, FILE *out, char *errstr,
                          size_t errstr_size) {
    memset(x, 0, sizeof *x);
    dashi_records_init(&x->rd, st, "explain", errstr, errstr_size);
    x->rules = rules;
    x->out = out;
    if (!st || !rules || !out)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "explain: state, rules and output are required");
    if (!(x->cache = json_object()))
        return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "explain: out of memory");
    return DASHI_OK;
}

static dashi_err ex_end(ex *x, dashi_err err) {
    json_decref(x->cache);
    x->cache = NULL;
    if (err == DASHI_OK && x->rd.err != DASHI_OK)
        err = x->rd.err; /* errstr was written by the back end */
    if (err == DASHI_OK && ferror(x->out))
        err = dashi_errf(DASHI_ERR_IO, x->rd.errstr, x->rd.errstr_size, "explain: write error");
    return err;
}

dashi_err dashi_explain_order(dashi_state *st, const dashi_rules *rules, const char *order_id, FILE *out,
                              char *errstr, size_t errstr_size) {
    ex x;
    const json_t *ord;
    dashi_err err = ex_begin(&x, st, rules, out, errstr, errstr_size);
    if (err != DASHI_OK || !order_id)
        goto out;
    ord = ex_get(&x, "ord:%s", order_id);
    if (x.rd.err != DASHI_OK)
        goto out;
    if (!ord) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size,
                         "no order %s in the state (an order paying 0 fen is no purchase and leaves no record, C1)",
                         order_id);
        goto out;
    }
    explain_order(&x, order_id, ord);
out:
    return ex_end(&x, err);
}

dashi_err dashi_explain_customer(dashi_state *st, const dashi_rules *rules, const char *uid, FILE *out,
                                 char *errstr, size_t errstr_size) {
    ex x;
    json_t *orders = NULL;
    dashi_err err = ex_begin(&x, st, rules, out, errstr, errstr_size);
    if (err != DASHI_OK || !uid)
        goto out;
    if (!(orders = dashi_records_scan(&x.rd, "ord:", "uid", uid)))
        goto out;
    if (!ex_get(&x, "acct:%s", uid) && !ex_get(&x, "asc:%s", uid) && !json_object_size(orders) &&
        x.rd.err == DASHI_OK) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "no account %s in the state", uid);
        goto out;
    }
    explain_customer(&x, uid, orders);
out:
    json_decref(orders);
    return ex_end(&x, err);
}

dashi_err dashi_explain_campaign(dashi_state *st, const dashi_rules *rules, const char *campaign,
                                 const char *promoter, FILE *out, char *errstr, size_t errstr_size) {
    ex x;
    size_t found = 0;
    dashi_err err = ex_begin(&x, st, rules, out, errstr, errstr_size);
    if (err != DASHI_OK || !campaign || !promoter)
        goto out;
    for (size_t i = 0; i < rules->n_campaigns && x.rd.err == DASHI_OK; i++) {
        const dashi_campaign *c = &rules->campaigns[i];
        if (!str_eq(c->id, campaign) && !str_eq(c->campaign_id, campaign))
            continue;
        if (found++)
            fputc('\n', out);
        explain_program(&x, c, promoter);
    }
    if (!found)
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size,
                         "no campaign %s in the rules (a program id such as K2, or a link campaign id such as "
                         "invite-2206)", campaign);
out:
    return ex_end(&x, err);
}

/* ------------------------------------------------------------------ replay into memory */

static void reject_to(void *opaque, const char *source, size_t line, const char *reason, const char *text) {
    (void)text; /* the line may hold clear identity values: not repeated */
    if (opaque)
        fprintf(opaque, "%s:%zu: %s\n", source, line, reason);
}

dashi_err dashi_explain_replay(FILE *in, const char *name, const dashi_rules *rules, const dashi_keyring *keys,
                               dashi_time until, FILE *rejects, dashi_state **out, size_t *n_events,
                               size_t *n_rejected, char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    dashi_event_list list = {0};
    dashi_replay_stats stats = {0};
    dashi_state *st = NULL;
    dashi_engine *eng = NULL;
    if (!in || !rules || !out) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "explain: input, rules and output are required");
        goto out;
    }
    *out = NULL;
    if ((err = dashi_replay_read(in, name, &list, &stats, reject_to, rejects, errstr, errstr_size)) != DASHI_OK)
        goto out;
    dashi_replay_sort(&list);
    if (!(st = dashi_state_mem_new())) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "explain: out of memory");
        goto out;
    }
    if (!(eng = dashi_engine_new(rules, keys, st, errstr, errstr_size))) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    if ((err = dashi_replay_run(eng, &list, name, until, NULL, NULL, reject_to, rejects, &stats, errstr,
                                errstr_size)) != DASHI_OK)
        goto out;
    *out = st;
    st = NULL;
    if (n_events)
        *n_events = stats.events;
    if (n_rejected)
        *n_rejected = stats.rejected;
out:
    dashi_engine_destroy(eng);
    dashi_state_destroy(st);
    dashi_event_list_clear(&list);
    return err;
}
