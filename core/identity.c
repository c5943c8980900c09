/* identity.c — the same-person graph: keyed identity hashes, account–attribute edges, persons, T+0 decisions and identity alerts (RULES S1–S7, R2).
 *
 * Truth is the set of account–attribute edges; a person is a view derived from them
 * by union-find. An attribute is one identity value of one kind, known only by its
 * keyed hash (core/hashing.c) written compactly as its id "<K><v>.<b64url 43>" (K:
 * P phone, E email, I id doc, D device; v: key version; the full 32-byte HMAC, 46
 * chars) or "<K>h.<b64url SHA-256>" for a value that arrived hashed in a foreign form
 * (one that arrived as "v<v>:<hex>" is our own form and gets the plain id). A clear
 * value is looked up under every key version of the ring, newest first, so an
 * attribute stored before a key rotation is still found; a new one is stored under
 * the current version. Kinds the rule set does not link, values that do not
 * normalize, and block-listed values (S7) are ignored: they never become edges.
 *
 * State (keys owned by this module, JSON with sorted keys; bytes of key + value):
 *   acct:<uid>  {"t": known since (ms; registration or first sight),
 *                "e": {aid: [added, flags?, removed?]}  edges, times as ms offsets
 *                     from "t"; flags bit 0 = the edge linked the account to
 *                     another one (what matched_on reports),
 *                "p": root uid (absent: the account is the root of its person),
 *                "P": person data, on the root only (absent: a singleton, unpaid),
 *                "f": decisions are final: 1 the T+0 timer fired, 2 the account
 *                     was seen without a registration (enrolment, visit, referral,
 *                     verification): its day is long over — until a registration
 *                     of it arrives, which starts a T+0 day after all,
 *                "d": status*16 + matched kind bits of the last decision}
 *                ~105 B for an account with one phone
 *   person data P  {"i": person id (absent: "P-"+root uid), "ft": founding time
 *                (absent: root's "t"), "m": member uids (absent: [root]), "A":
 *                member uids that act as ambassadors, "R": {ambassador uid:
 *                [referred member uids, at most 4]}, "pt"/"po"/"pc"/"pu": first
 *                paid time, order, cart, account}      absent for most accounts
 *   attr:<aid>  {"a": member uids (<= generic limit), "bt": last burst alert} or,
 *                once generic, {"g": 1, "n": count, "r": recent join times, "bt"}
 *                ~70 B for one member, +12 B per further member
 * so 170–180 bytes of data per account (measured by a test), + the store's per-key
 * overhead for 2 keys; "person:" is not used. A payment-only account (OrderPaid,
 * never seen otherwise) is an acct: record without "t": unknown, but it keeps its
 * payment. ATTRIBUTE_BURST counts the members whose edge was added in the window.
 *
 * Person ids: "P-" + the uid of the founding (earliest known) account, or
 * "P-<16 hex>" when that uid is longer than 61 bytes. On a merge the person whose
 * founding account came first (ties: smaller id) keeps its id — independently of
 * where the members are stored: union by size, so the smaller person's accounts are
 * relabelled (their "p" points to the larger root) and the larger member list grows.
 * Cost of a merge of persons of a and b accounts: O(min(a, b)) record edits, O(a+b)
 * bytes to rewrite the larger root's member list and to hand the uids to
 * commission and campaign, and a decision re-check only for the side whose person
 * id or status changes; each account is relabelled O(log n) times over its life.
 * Persons never split: closing an edge (IdentityChanged.removed) stops future
 * linking through it but does not undo a link already made (nor does an attribute
 * turning generic), so an account once found to be the same person stays so.
 *
 * Super-node guard (S7): the account that would make an attribute shared by more
 * than generic_attribute_limit accounts does not link; the attribute turns generic
 * for good (member list dropped, count kept) and GENERIC_ATTRIBUTE (LOW) is raised.
 *
 * Decisions (S2, S4): registration emits a provisional SamePersonDecision and sets
 * timer "sp:<uid>" at 24:00 CST of the registration day (+ decision_days days);
 * the timer emits the final one. In between, and afterwards (then final=true), a
 * new decision is emitted for every account whose status or matched kinds changed
 * ("d") or whose person id changed (only a merge renames: it marks those accounts)
 * in a step. SAME_PERSON means the person has another account.
 *
 * Alerts (R2), ids "fa-" + hash(kind, cause, subject key), evidence with kinds,
 * person ids and 8-character hash prefixes only:
 *   SELF_REFERRAL (HIGH)  a registration referral or a logged-in visit whose
 *       customer is the ambassador's person (S3), or a merge that puts an
 *       ambassador and a customer it referred into one person (S4 late link);
 *   IDENTITY_CHANGE_TO_BUYER (HIGH)  the same merge caused by an IdentityChanged
 *       of the ambassador's side (S5);
 *   MULTI_ACCOUNT (MEDIUM)  a person that has paid and has several accounts, one
 *       of them referred/associated by an ambassador: raised at the association of
 *       an account of such a person, and at a merge where one side has paid and the
 *       other holds referred accounts (one alert per ambassador concerned);
 *   GENERIC_ATTRIBUTE (LOW)  above; ATTRIBUTE_BURST (MEDIUM)  burst_threshold
 *       accounts newly attached to one attribute within burst_window_ms (at most
 *       one alert per attribute per window).
 * On every merge commission and campaign are told the uids of the merged person.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/hashing.h"
#include "core/modules.h"

#define MAX_KEY_VERSIONS 8
#define AID_SIZE 64
#define PID_SIZE 64
#define ID_SIZE 32
#define MAX_REFERRED_PER_AMB 4
#define MAX_ALERT_SUBJECTS 32
#define EDGE_LINKED 1
#define FINAL_TIMER 1 /* acct "f": the T+0 timer fired */
#define FINAL_SEEN 2  /* acct "f": known without a registration (until one comes) */

static const char *const kind_names[DASHI_ID__COUNT] = {"PHONE", "EMAIL", "ID_DOC", "DEVICE"};
static const char kind_letters[DASHI_ID__COUNT] = {'P', 'E', 'I', 'D'};

/* Scratch of one step. */
typedef struct step {
    dashi_ctx *ctx;
    const char *ev_uid;     /* account the input event is about (NULL for a timer) */
    bool registered;        /* ev_uid registered: its decision is emitted even when unchanged */
    json_t *touched;        /* set of uids whose decision may have changed */
    json_t *merged;         /* set of roots of persons formed by a merge */
    dashi_err err;
} step;

/* ---------------------------------------------------------------- small helpers */

static const char *jstr(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

static bool jhas(const json_t *obj, const char *key) {
    return json_object_get(obj, key) != NULL;
}

/* Child object/array of obj at key, created when absent. */
static json_t *child(json_t *obj, const char *key, bool array) {
    json_t *c = json_object_get(obj, key);
    if (!c) {
        c = array ? json_array() : json_object();
        json_object_set_new(obj, key, c);
    }
    return c;
}

static bool array_has(const json_t *arr, const char *s) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void array_add_unique(json_t *arr, const char *s) {
    if (!array_has(arr, s))
        json_array_append_new(arr, json_string(s));
}

static void set_add(json_t *set, const char *key) {
    if (set && key && !json_object_get(set, key))
        json_object_set_new(set, key, json_true());
}

/* Touched accounts whose person id changed: their decision is emitted in any case. */
static void set_force(json_t *set, const char *key) {
    if (set && key)
        json_object_set_new(set, key, json_false());
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted heap copies of the keys of a JSON object. */
static char **set_keys(const json_t *set, size_t *n) {
    const char *key;
    json_t *v;
    char **keys = calloc(json_object_size(set) + 1, sizeof(char *));
    *n = 0;
    if (!keys)
        return NULL;
    json_object_foreach((json_t *)set, key, v) {
        (void)v;
        keys[(*n)++] = dashi_strdup(key);
    }
    qsort(keys, *n, sizeof(char *), cmp_str);
    return keys;
}

static void strv_free(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void default_person_id(const char *uid, char *buf) {
    if (strlen(uid) + 3 <= PID_SIZE) {
        snprintf(buf, PID_SIZE, "P-%s", uid);
        return;
    }
    const char *parts[] = {uid};
    dashi_ctx_make_id(buf, PID_SIZE, "P", parts, 1);
}

/* ---------------------------------------------------------------- attribute ids */

static void b64url(const unsigned char *in, size_t len, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Attribute id of a stored hash form: ours ("v<N>:<64 hex>") or a foreign one. */
static void aid_from_stored(int kind, const char *stored, char *aid) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const char *p = stored;
    long version = 0;
    char b64[64];

    if (*p == 'v' && p[1] >= '1' && p[1] <= '9') {
        for (p++; *p >= '0' && *p <= '9' && version < 1000000; p++)
            version = version * 10 + (*p - '0');
        if (*p == ':' && strlen(p + 1) == 64) {
            bool ok = true;
            for (int i = 0; i < 32 && ok; i++) {
                int hi = hexval(p[1 + 2 * i]), lo = hexval(p[2 + 2 * i]);
                ok = hi >= 0 && lo >= 0;
                mac[i] = (unsigned char)(hi << 4 | lo);
            }
            if (ok) {
                b64url(mac, 32, b64);
                snprintf(aid, AID_SIZE, "%c%d.%.43s", kind_letters[kind], (int)version, b64);
                return;
            }
        }
    }
    EVP_Digest(stored, strlen(stored), mac, &mac_len, EVP_sha256(), NULL);
    b64url(mac, mac_len, b64);
    snprintf(aid, AID_SIZE, "%ch.%.43s", kind_letters[kind], b64);
}

/* Candidate ids of an identity value: one per key version (current first, at most
 * MAX_KEY_VERSIONS) for a clear value, one for a hashed value. 0 when unusable. */
static size_t candidates(step *s, const dashi_identity *id, char cands[][AID_SIZE]) {
    const dashi_keyring *kr = s->ctx->keys;
    int versions[MAX_KEY_VERSIONS];
    char *buf = NULL;
    size_t n = 0, nv;

    if (!id->value)
        goto out;
    if (id->hashed) {
        size_t size = strlen(id->value) + 1;
        buf = malloc(size);
        if (buf && dashi_identity_hash(kr, id->kind, id->value, true, buf, size, NULL, 0) == DASHI_OK)
            aid_from_stored(id->kind, buf, cands[n++]);
        goto out;
    }
    if (!kr) {
        s->err = dashi_ctx_fail(s->ctx, DASHI_ERR_INTERNAL, "identity: no key ring to hash identity values with");
        goto out;
    }
    nv = dashi_keyring_versions(kr, versions, MAX_KEY_VERSIONS);
    for (size_t i = 0; i < nv && i < MAX_KEY_VERSIONS; i++) {
        char h[DASHI_HASH_STRLEN];
        if (dashi_identity_hash_version(kr, versions[i], id->kind, id->value, h, sizeof h, NULL, 0) != DASHI_OK) {
            n = 0; /* does not normalize: ignored */
            goto out;
        }
        aid_from_stored(id->kind, h, cands[n++]);
    }
out:
    free(buf);
    return n;
}

/* Is one of the candidates a block-listed value ("KIND:value" in the rule set)? */
static bool blocked(step *s, int kind, char cands[][AID_SIZE], size_t n) {
    const dashi_ruleset *set = s->ctx->set;
    size_t klen = strlen(kind_names[kind]);
    for (size_t b = 0; b < set->n_blocklist; b++) {
        const char *entry = set->blocklist[b];
        if (!entry || strncmp(entry, kind_names[kind], klen) != 0 || entry[klen] != ':')
            continue;
        dashi_identity clear = {.kind = kind, .value = (char *)entry + klen + 1, .hashed = false};
        char bc[MAX_KEY_VERSIONS][AID_SIZE];
        size_t nb = candidates(s, &clear, bc);
        for (size_t i = 0; i < nb; i++)
            for (size_t j = 0; j < n; j++)
                if (strcmp(bc[i], cands[j]) == 0)
                    return true;
    }
    return false;
}

static const char *kind_name_of_aid(const char *aid) {
    for (int k = 0; k < DASHI_ID__COUNT; k++)
        if (aid[0] == kind_letters[k])
            return kind_names[k];
    return "UNKNOWN";
}

/* "P1.AbCdEfGh": the attribute id cut after 8 hash characters, for evidence. */
static void aid_prefix(const char *aid, char *buf, size_t size) {
    const char *dot = strchr(aid, '.');
    size_t len = dot ? (size_t)(dot - aid) + 1 + 8 : strlen(aid);
    snprintf(buf, size, "%.*s", (int)len, aid);
}

/* ---------------------------------------------------------------- accounts and persons */

static const json_t *acct_get(dashi_ctx *ctx, const char *uid) {
    return dashi_view_getf(ctx->view, "acct:%s", uid);
}

static json_t *acct_edit(dashi_ctx *ctx, const char *uid) {
    return dashi_view_editf(ctx->view, "acct:%s", uid);
}

static bool acct_known(const json_t *acct) {
    return acct && jhas(acct, "t");
}

/* Heap copy of the root uid of uid's person (uid itself for a root or an unknown account). */
static char *root_dup(dashi_ctx *ctx, const char *uid) {
    const char *p = jstr(acct_get(ctx, uid), "p");
    return dashi_strdup(p ? p : uid);
}

static const json_t *person_get(dashi_ctx *ctx, const char *root) {
    return json_object_get(acct_get(ctx, root), "P");
}

static json_t *person_edit(dashi_ctx *ctx, const char *root) {
    json_t *acct = acct_edit(ctx, root);
    return acct ? child(acct, "P", false) : NULL;
}

static size_t person_size(const json_t *P) {
    const json_t *m = json_object_get(P, "m");
    return m ? json_array_size(m) : 1;
}

static void person_id_of(const char *root, const json_t *P, char *buf) {
    const char *i = jstr(P, "i");
    if (i)
        snprintf(buf, PID_SIZE, "%s", i);
    else
        default_person_id(root, buf);
}

static dashi_time person_founded(dashi_ctx *ctx, const char *root, const json_t *P) {
    const json_t *ft = json_object_get(P, "ft");
    if (ft)
        return json_integer_value(ft);
    const json_t *t = json_object_get(acct_get(ctx, root), "t");
    return t ? json_integer_value(t) : INT64_MAX;
}

/* Member uids of a person as heap copies. */
static char **person_members(const char *root, const json_t *P, size_t *n) {
    const json_t *m = json_object_get(P, "m");
    size_t i;
    json_t *v;
    char **out = calloc(m ? json_array_size(m) + 1 : 2, sizeof(char *));
    *n = 0;
    if (!out)
        return NULL;
    if (!m) {
        out[(*n)++] = dashi_strdup(root);
        return out;
    }
    json_array_foreach(m, i, v) out[(*n)++] = dashi_strdup(json_string_value(v));
    return out;
}

/* Make uid a known account ("seen": its decisions are final from the start). */
static void account_ensure(step *s, const char *uid) {
    json_t *acct = acct_edit(s->ctx, uid);
    if (acct && !jhas(acct, "t")) {
        json_object_set_new(acct, "t", json_integer(s->ctx->now));
        json_object_set_new(acct, "f", json_integer(FINAL_SEEN));
    }
}

/* Kinds (bits) of the account's edges that linked it to another account. */
static int matched_bits(const json_t *acct) {
    const char *aid;
    json_t *edge;
    int bits = 0;
    json_object_foreach(json_object_get(acct, "e"), aid, edge) {
        if (!(json_integer_value(json_array_get(edge, 1)) & EDGE_LINKED))
            continue;
        for (int k = 0; k < DASHI_ID__COUNT; k++)
            if (aid[0] == kind_letters[k])
                bits |= 1 << k;
    }
    return bits;
}

static void matched_text(int bits, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < DASHI_ID__COUNT; k++)
        if (bits & (1 << k))
            n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "", kind_names[k]);
}

/* ---------------------------------------------------------------- alerts */

static void alert_begin(step *s, dashi_event *ev, const char *kind, int severity, const char *ambassador_uid) {
    dashi_event_init(ev, DASHI_EV_FRAUD_ALERT);
    dashi_fraud_alert *fa = &ev->u.fraud_alert;
    fa->kind = dashi_strdup(kind);
    fa->severity = severity;
    fa->occurred_at = s->ctx->now;
    fa->ambassador_uid = ambassador_uid ? dashi_strdup(ambassador_uid) : NULL;
    fa->caused_by = dashi_strdup(s->ctx->cause ? s->ctx->cause : "");
}

static void alert_subject(dashi_event *ev, const char *uid) {
    dashi_fraud_alert *fa = &ev->u.fraud_alert;
    if (!uid || fa->n_subject_uids >= MAX_ALERT_SUBJECTS)
        return;
    for (size_t i = 0; i < fa->n_subject_uids; i++)
        if (strcmp(fa->subject_uids[i], uid) == 0)
            return;
    dashi_strv_push(&fa->subject_uids, &fa->n_subject_uids, uid);
}

static void alert_evidence(dashi_event *ev, const char *key, const char *value) {
    dashi_kv_push(&ev->u.fraud_alert.evidence, &ev->u.fraud_alert.n_evidence, key, value);
}

static void alert_evidence_int(dashi_event *ev, const char *key, int64_t value) {
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)value);
    alert_evidence(ev, key, buf);
}

/* Give the alert its id (kind, cause, key) and emit it, unless this step already did. */
static void alert_finish(step *s, dashi_event *ev, const char *key) {
    dashi_fraud_alert *fa = &ev->u.fraud_alert;
    const char *parts[] = {fa->kind, fa->caused_by, key ? key : ""};
    char id[ID_SIZE];
    dashi_ctx_make_id(id, sizeof id, "fa", parts, 3);
    for (size_t i = 0; i < s->ctx->n_outputs; i++) {
        const dashi_event *o = &s->ctx->outputs[i];
        if (o->type == DASHI_EV_FRAUD_ALERT && o->u.fraud_alert.alert_id &&
            strcmp(o->u.fraud_alert.alert_id, id) == 0) {
            dashi_event_clear(ev);
            return;
        }
    }
    fa->alert_id = dashi_strdup(id);
    dashi_ctx_emit(s->ctx, ev);
    dashi_event_clear(ev);
}

/* The ambassador amb and customer(s) are one person. Subjects: amb, the customers,
 * then every other ambassador account of amb's person (S6: the risk team may act on
 * all of them); ambassadors = that person's "A" list. */
static void alert_self_referral(step *s, const char *kind, const char *rule, const char *amb,
                                const json_t *customers, const char *cust, const json_t *ambassadors,
                                const char *how, const char *pid, const char *attr) {
    dashi_event ev;
    size_t i;
    json_t *v;
    char key[512];
    alert_begin(s, &ev, kind, DASHI_SEV_HIGH, amb);
    alert_subject(&ev, amb);
    alert_subject(&ev, cust);
    json_array_foreach(customers, i, v) alert_subject(&ev, json_string_value(v));
    json_array_foreach(ambassadors, i, v) alert_subject(&ev, json_string_value(v));
    alert_evidence_int(&ev, "ambassador_accounts", json_array_size(ambassadors) ? (int64_t)json_array_size(ambassadors) : 1);
    alert_evidence(&ev, "rule", rule);
    alert_evidence(&ev, "found", how);
    alert_evidence(&ev, "person_id", pid);
    if (attr)
        alert_evidence(&ev, "attribute", attr);
    if (cust) {
        char kinds[64];
        matched_text(matched_bits(acct_get(s->ctx, cust)), kinds, sizeof kinds);
        alert_evidence(&ev, "matched_on", strcmp(cust, amb) == 0 ? "SAME_ACCOUNT" : kinds);
    }
    snprintf(key, sizeof key, "%s|%s", amb, cust ? cust : pid);
    alert_finish(s, &ev, key);
}

static void alert_multi_account(step *s, const char *amb, const json_t *customers, const char *cust,
                                const json_t *paid_person, const char *pid, size_t n_accounts, const char *how) {
    dashi_event ev;
    size_t i;
    json_t *v;
    char key[512];
    const char *order = jstr(paid_person, "po");
    alert_begin(s, &ev, "MULTI_ACCOUNT", DASHI_SEV_MEDIUM, amb);
    alert_subject(&ev, cust);
    json_array_foreach(customers, i, v) alert_subject(&ev, json_string_value(v));
    alert_subject(&ev, jstr(paid_person, "pu"));
    if (order && *order)
        ev.u.fraud_alert.order_id = dashi_strdup(order);
    alert_evidence(&ev, "rule", "S4");
    alert_evidence(&ev, "found", how);
    alert_evidence(&ev, "person_id", pid);
    alert_evidence_int(&ev, "accounts", (int64_t)n_accounts);
    alert_evidence(&ev, "paid_before", "true");
    snprintf(key, sizeof key, "%s|%s", amb, pid);
    alert_finish(s, &ev, key);
}

/* ---------------------------------------------------------------- merging persons */

/* Alerts of a merge of persons X (root rx) and Y (root ry), before the data moves. */
static void union_alerts(step *s, const char *rx, const json_t *PX, const char *ry, const json_t *PY,
                         const char *pid, size_t n_accounts, const char *attr) {
    char *ev_root = s->ev_uid ? root_dup(s->ctx, s->ev_uid) : NULL;
    json_t *self = json_object(); /* ambassadors found self-referring: no MULTI_ACCOUNT for them */
    const char *roots[2] = {rx, ry};
    const json_t *P[2] = {PX, PY};

    for (int side = 0; side < 2; side++) {
        const json_t *mine = P[side], *other = P[1 - side];
        const json_t *referred = json_object_get(other, "R");
        size_t i;
        json_t *amb;
        json_array_foreach(json_object_get(mine, "A"), i, amb) {
            const char *a = json_string_value(amb);
            const json_t *custs = json_object_get(referred, a);
            if (!custs)
                continue;
            bool by_change = s->ctx->event && s->ctx->event->type == DASHI_EV_IDENTITY_CHANGED && ev_root &&
                             strcmp(ev_root, roots[side]) == 0;
            alert_self_referral(s, by_change ? "IDENTITY_CHANGE_TO_BUYER" : "SELF_REFERRAL", by_change ? "S5" : "S3",
                                a, custs, NULL, json_object_get(mine, "A"), "LATE_LINK", pid, attr);
            set_add(self, a);
        }
    }
    for (int side = 0; side < 2; side++) {
        const json_t *paid = P[side], *other = P[1 - side];
        const char *amb;
        json_t *custs;
        if (!jhas(paid, "pt"))
            continue;
        json_object_foreach(json_object_get(other, "R"), amb, custs) {
            if (!json_object_get(self, amb))
                alert_multi_account(s, amb, custs, NULL, paid, pid, n_accounts, "MERGE");
        }
    }
    json_decref(self);
    free(ev_root);
}

/* Mark the members of a person for a decision re-check (forced when their person id changes). */
static void touch_members(step *s, const char *root, const json_t *P, bool renamed) {
    size_t n = 0;
    char **m = person_members(root, P, &n);
    for (size_t i = 0; i < n; i++) {
        if (renamed)
            set_force(s->touched, m[i]);
        else
            set_add(s->touched, m[i]);
    }
    strv_free(m, n);
}

/* Fold the person data of the absorbed side (PS) into the surviving root's (PB). */
static void person_fold(json_t *PB, const json_t *PS) {
    size_t i;
    json_t *v;
    const char *key;

    json_array_foreach(json_object_get(PS, "A"), i, v) array_add_unique(child(PB, "A", true), json_string_value(v));
    json_object_foreach((json_t *)json_object_get(PS, "R"), key, v) {
        json_t *dst = child(child(PB, "R", false), key, true);
        size_t j;
        json_t *c;
        json_array_foreach(v, j, c) {
            if (json_array_size(dst) < MAX_REFERRED_PER_AMB)
                array_add_unique(dst, json_string_value(c));
        }
    }
    const json_t *spt = json_object_get(PS, "pt"), *bpt = json_object_get(PB, "pt");
    if (spt && (!bpt || json_integer_value(spt) < json_integer_value(bpt) ||
                (json_integer_value(spt) == json_integer_value(bpt) &&
                 strcmp(jstr(PS, "po") ? jstr(PS, "po") : "", jstr(PB, "po") ? jstr(PB, "po") : "") < 0))) {
        static const char *const paid_keys[] = {"pt", "po", "pc", "pu"};
        for (size_t k = 0; k < 4; k++) {
            json_t *src = json_object_get(PS, paid_keys[k]);
            if (src)
                json_object_set_new(PB, paid_keys[k], json_deep_copy(src));
            else
                json_object_del(PB, paid_keys[k]);
        }
    }
}

/* Merge the persons of accounts a and b (linked through attribute aid). */
static void person_union(step *s, const char *uid_a, const char *uid_b, const char *aid) {
    dashi_ctx *ctx = s->ctx;
    char *ra = root_dup(ctx, uid_a), *rb = root_dup(ctx, uid_b);
    char **moved = NULL;
    size_t n_moved = 0;
    char ida[PID_SIZE], idb[PID_SIZE], attr[AID_SIZE];

    if (!ra || !rb || strcmp(ra, rb) == 0)
        goto out;
    json_t *PA = person_edit(ctx, ra), *PB = person_edit(ctx, rb);
    if (!PA || !PB)
        goto out;
    person_id_of(ra, PA, ida);
    person_id_of(rb, PB, idb);
    dashi_time fa = person_founded(ctx, ra, PA), fb = person_founded(ctx, rb, PB);
    bool a_wins = fa < fb || (fa == fb && strcmp(ida, idb) <= 0);
    size_t na = person_size(PA), nb = person_size(PB);
    bool a_big = na > nb || (na == nb && a_wins);
    const char *big = a_big ? ra : rb, *small = a_big ? rb : ra;
    json_t *Pbig = a_big ? PA : PB, *Psmall = a_big ? PB : PA;
    const char *win_id = a_wins ? ida : idb;
    dashi_time win_ft = a_wins ? fa : fb;

    aid_prefix(aid, attr, sizeof attr);
    union_alerts(s, ra, PA, rb, PB, win_id, na + nb, attr);
    if (strcmp(ida, win_id) != 0 || na == 1)
        touch_members(s, ra, PA, strcmp(ida, win_id) != 0);
    if (strcmp(idb, win_id) != 0 || nb == 1)
        touch_members(s, rb, PB, strcmp(idb, win_id) != 0);

    moved = person_members(small, Psmall, &n_moved);
    json_t *mbig = json_object_get(Pbig, "m");
    if (!mbig) {
        mbig = json_array();
        json_array_append_new(mbig, json_string(big));
        json_object_set_new(Pbig, "m", mbig);
    }
    person_fold(Pbig, Psmall);
    char win_default[PID_SIZE];
    default_person_id(big, win_default);
    if (strcmp(win_id, win_default) != 0)
        json_object_set_new(Pbig, "i", json_string(win_id));
    else
        json_object_del(Pbig, "i");
    const json_t *tbig = json_object_get(acct_get(ctx, big), "t");
    if (!tbig || json_integer_value(tbig) != win_ft)
        json_object_set_new(Pbig, "ft", json_integer(win_ft));
    else
        json_object_del(Pbig, "ft");
    for (size_t i = 0; i < n_moved; i++) {
        json_t *acct = acct_edit(ctx, moved[i]);
        if (!acct)
            goto out;
        json_object_set_new(acct, "p", json_string(big));
        json_array_append_new(mbig, json_string(moved[i]));
    }
    json_t *sacct = acct_edit(ctx, small);
    if (sacct)
        json_object_del(sacct, "P"); /* Psmall is gone from here on */
    json_object_del(s->merged, small);
    set_add(s->merged, big);
out:
    strv_free(moved, n_moved);
    free(ra);
    free(rb);
}

/* ---------------------------------------------------------------- attributes and edges */

/* When account uid's edge to aid was added (edges keep ms offsets from the account's "t"). */
static dashi_time edge_added_at(dashi_ctx *ctx, const char *uid, const char *aid) {
    const json_t *acct = acct_get(ctx, uid);
    const json_t *edge = json_object_get(json_object_get(acct, "e"), aid);
    if (!edge)
        return DASHI_TIME_NONE;
    return json_integer_value(json_object_get(acct, "t")) + json_integer_value(json_array_get(edge, 0));
}

static bool burst_enabled(const dashi_ruleset *set) {
    return set->burst_threshold > 0 && set->burst_window_ms > 0;
}

/* Generic attributes keep no member list: their recent join times live in "r". */
static int64_t burst_ring_push(step *s, json_t *attr) {
    const dashi_ruleset *set = s->ctx->set;
    json_t *r = child(attr, "r", true);
    while (json_array_size(r) > 0 && json_integer_value(json_array_get(r, 0)) <= s->ctx->now - set->burst_window_ms)
        json_array_remove(r, 0);
    json_array_append_new(r, json_integer(s->ctx->now));
    while ((int64_t)json_array_size(r) > set->burst_threshold)
        json_array_remove(r, 0);
    return (int64_t)json_array_size(r);
}

/* ATTRIBUTE_BURST when `recent` accounts joined aid within the window (one alert per window). */
static void burst_check(step *s, json_t *attr, const char *aid, const char *uid, char **peers, size_t n_peers,
                        int64_t recent) {
    const dashi_ruleset *set = s->ctx->set;
    dashi_time now = s->ctx->now;
    const json_t *bt = json_object_get(attr, "bt");
    dashi_event ev;
    char prefix[AID_SIZE];

    if (!burst_enabled(set) || recent < set->burst_threshold ||
        (bt && json_integer_value(bt) > now - set->burst_window_ms))
        return;
    json_object_set_new(attr, "bt", json_integer(now));
    aid_prefix(aid, prefix, sizeof prefix);
    alert_begin(s, &ev, "ATTRIBUTE_BURST", DASHI_SEV_MEDIUM, NULL);
    alert_subject(&ev, uid);
    for (size_t i = 0; i < n_peers; i++)
        alert_subject(&ev, peers[i]);
    alert_evidence(&ev, "rule", "R2");
    alert_evidence(&ev, "kind", kind_name_of_aid(aid));
    alert_evidence(&ev, "attribute", prefix);
    alert_evidence_int(&ev, "accounts_in_window", recent);
    alert_evidence_int(&ev, "window_ms", set->burst_window_ms);
    alert_finish(s, &ev, aid);
}

/* The attribute passes the limit with account uid: generic from now on (S7). */
static void make_generic(step *s, json_t *attr, const char *aid, const char *uid, char **peers, size_t n_peers,
                         const dashi_time *joined) {
    dashi_event ev;
    char prefix[AID_SIZE];
    json_t *ring = json_array();

    aid_prefix(aid, prefix, sizeof prefix);
    alert_begin(s, &ev, "GENERIC_ATTRIBUTE", DASHI_SEV_LOW, NULL);
    alert_subject(&ev, uid);
    for (size_t i = 0; i < n_peers; i++)
        alert_subject(&ev, peers[i]);
    alert_evidence(&ev, "rule", "S7");
    alert_evidence(&ev, "kind", kind_name_of_aid(aid));
    alert_evidence(&ev, "attribute", prefix);
    alert_evidence_int(&ev, "accounts", (int64_t)n_peers + 1);
    alert_evidence_int(&ev, "limit", s->ctx->set->generic_attribute_limit);
    alert_finish(s, &ev, aid);

    json_object_del(attr, "a");
    json_object_set_new(attr, "g", json_integer(1));
    json_object_set_new(attr, "n", json_integer((json_int_t)n_peers + 1));
    if (burst_enabled(s->ctx->set)) { /* seed the ring with the joins still in the window */
        for (size_t i = 0; i < n_peers; i++)
            if (joined[i] != DASHI_TIME_NONE && joined[i] > s->ctx->now - s->ctx->set->burst_window_ms)
                json_array_append_new(ring, json_integer(joined[i]));
        json_array_append_new(ring, json_integer(s->ctx->now));
        json_object_set_new(attr, "r", json_incref(ring));
    }
    json_decref(ring);
}

static void edge_mark_linked(step *s, const char *uid, const char *aid) {
    json_t *acct = acct_edit(s->ctx, uid);
    json_t *edge = json_object_get(json_object_get(acct, "e"), aid);
    if (!edge)
        return;
    json_int_t flags = json_integer_value(json_array_get(edge, 1));
    if (flags & EDGE_LINKED)
        return;
    if (json_array_size(edge) < 2)
        json_array_append_new(edge, json_integer(flags | EDGE_LINKED));
    else
        json_array_set_new(edge, 1, json_integer(flags | EDGE_LINKED));
    set_add(s->touched, uid);
}

/* Account uid has a new (or reopened) edge to aid: join the attribute, link. */
static void attr_join(step *s, const char *uid, const char *aid) {
    dashi_ctx *ctx = s->ctx;
    const dashi_ruleset *set = ctx->set;
    char **peers = NULL;
    dashi_time *joined = NULL;
    size_t n_peers = 0, i;
    int64_t recent = 1;
    json_t *attr = dashi_view_editf(ctx->view, "attr:%s", aid), *a, *v;

    if (!attr)
        goto out;
    if (jhas(attr, "g")) {
        json_object_set_new(attr, "n", json_integer(json_integer_value(json_object_get(attr, "n")) + 1));
        if (burst_enabled(set))
            burst_check(s, attr, aid, uid, NULL, 0, burst_ring_push(s, attr));
        goto out;
    }
    a = child(attr, "a", true);
    if (array_has(a, uid))
        goto out;
    peers = calloc(json_array_size(a) + 1, sizeof(char *));
    joined = calloc(json_array_size(a) + 1, sizeof(dashi_time));
    if (!peers || !joined) {
        s->err = DASHI_ERR_NOMEM;
        goto out;
    }
    json_array_foreach(a, i, v) {
        peers[n_peers] = dashi_strdup(json_string_value(v));
        joined[n_peers] = edge_added_at(ctx, peers[n_peers], aid);
        if (joined[n_peers] != DASHI_TIME_NONE && joined[n_peers] > ctx->now - set->burst_window_ms)
            recent++;
        n_peers++;
    }
    burst_check(s, attr, aid, uid, peers, n_peers, recent);
    if (set->generic_attribute_limit > 0 && (int64_t)n_peers + 1 > set->generic_attribute_limit) {
        make_generic(s, attr, aid, uid, peers, n_peers, joined);
        goto out;
    }
    json_array_append_new(a, json_string(uid));
    if (n_peers > 0)
        edge_mark_linked(s, uid, aid);
    for (i = 0; i < n_peers; i++) {
        edge_mark_linked(s, peers[i], aid);
        person_union(s, uid, peers[i], aid);
    }
out:
    strv_free(peers, n_peers);
    free(joined);
}

static void attr_leave(step *s, const char *uid, const char *aid) {
    json_t *attr = dashi_view_editf(s->ctx->view, "attr:%s", aid);
    json_t *a;
    size_t i;
    json_t *v;

    if (!attr)
        return;
    if (jhas(attr, "g")) {
        json_int_t n = json_integer_value(json_object_get(attr, "n"));
        json_object_set_new(attr, "n", json_integer(n > 0 ? n - 1 : 0));
        return;
    }
    a = json_object_get(attr, "a");
    json_array_foreach(a, i, v) {
        if (strcmp(json_string_value(v), uid) == 0) {
            json_array_remove(a, i);
            break;
        }
    }
    if (json_array_size(a) == 0) {
        char key[AID_SIZE + 8];
        snprintf(key, sizeof key, "attr:%s", aid);
        dashi_view_del(s->ctx->view, key);
    }
}

/* Identity value id of account uid: a new edge (or a reopened one) joins its attribute. */
static void attach(step *s, const char *uid, const dashi_identity *id) {
    dashi_ctx *ctx = s->ctx;
    char cands[MAX_KEY_VERSIONS][AID_SIZE];
    const char *aid = NULL;
    json_t *acct, *edges;
    size_t n;

    if (id->kind < 0 || id->kind >= DASHI_ID__COUNT || !ctx->set->link_kinds[id->kind])
        goto out;
    n = candidates(s, id, cands);
    if (n == 0 || blocked(s, id->kind, cands, n) || !(acct = acct_edit(ctx, uid)))
        goto out;
    edges = child(acct, "e", false);
    json_int_t offset = (json_int_t)(ctx->now - json_integer_value(json_object_get(acct, "t")));
    for (size_t i = 0; i < n && !aid; i++) {
        json_t *edge = json_object_get(edges, cands[i]);
        if (!edge)
            continue;
        if (json_array_size(edge) < 3)
            goto out; /* already active */
        json_int_t flags = json_integer_value(json_array_get(edge, 1));
        json_object_set_new(edges, cands[i], flags ? json_pack("[I,I]", offset, flags) : json_pack("[I]", offset));
        aid = cands[i];
    }
    for (size_t i = 0; i < n && !aid; i++)
        if (dashi_view_getf(ctx->view, "attr:%s", cands[i]))
            aid = cands[i];
    if (!aid)
        aid = cands[0];
    if (!json_object_get(edges, aid))
        json_object_set_new(edges, aid, json_pack("[I]", offset));
    attr_join(s, uid, aid);
out:
    return;
}

/* Close the edge of account uid to an identity value (history kept, linking stops). */
static void detach(step *s, const char *uid, const dashi_identity *id) {
    dashi_ctx *ctx = s->ctx;
    char cands[MAX_KEY_VERSIONS][AID_SIZE];
    json_t *acct, *edges;
    size_t n;

    if (id->kind < 0 || id->kind >= DASHI_ID__COUNT)
        goto out;
    n = candidates(s, id, cands);
    acct = acct_edit(ctx, uid);
    edges = json_object_get(acct, "e");
    for (size_t i = 0; i < n && edges; i++) {
        json_t *edge = json_object_get(edges, cands[i]);
        if (!edge || json_array_size(edge) >= 3)
            continue;
        if (json_array_size(edge) < 2)
            json_array_append_new(edge, json_integer(0));
        json_array_append_new(edge, json_integer(ctx->now - json_integer_value(json_object_get(acct, "t"))));
        attr_leave(s, uid, cands[i]);
        goto out;
    }
out:
    return;
}

/* ---------------------------------------------------------------- ambassadors and referrals */

static void ambassador_mark(step *s, const char *uid) {
    char *root = root_dup(s->ctx, uid);
    json_t *P = person_edit(s->ctx, root);
    if (P)
        array_add_unique(child(P, "A", true), uid);
    free(root);
}

/* Customer cust was associated with ambassador amb (registration referral or
 * logged-in visit, how = "REGISTRATION" | "LOGIN"): S3 check, then remember it. */
static void note_referral(step *s, const char *cust, const char *amb, const char *how) {
    dashi_ctx *ctx = s->ctx;
    char *root = NULL, pid[PID_SIZE];

    if (!amb || !*amb)
        goto out;
    account_ensure(s, amb);
    ambassador_mark(s, amb);
    root = root_dup(ctx, cust);
    person_id_of(root, person_get(ctx, root), pid);
    if (dashi_identity_same_person(ctx, cust, amb)) {
        alert_self_referral(s, "SELF_REFERRAL", "S3", amb, NULL, cust, json_object_get(person_get(ctx, root), "A"),
                            how, pid, NULL);
        goto out;
    }
    json_t *P = person_edit(ctx, root);
    if (!P)
        goto out;
    json_t *list = child(child(P, "R", false), amb, true);
    if (json_array_size(list) < MAX_REFERRED_PER_AMB)
        array_add_unique(list, cust);
    if (person_size(P) > 1 && jhas(P, "pt"))
        alert_multi_account(s, amb, NULL, cust, P, pid, person_size(P), how);
out:
    free(root);
}

/* ---------------------------------------------------------------- decisions */

/* Emit a SamePersonDecision for uid when its status changed (always when forced). */
static void decide(step *s, const char *uid, bool force) {
    dashi_ctx *ctx = s->ctx;
    const json_t *acct = acct_get(ctx, uid);
    char *root = NULL, pid[PID_SIZE], id[ID_SIZE];
    dashi_event ev;

    if (!acct_known(acct))
        goto out;
    root = root_dup(ctx, uid);
    const json_t *P = person_get(ctx, root);
    int status = person_size(P) > 1 ? DASHI_SP_SAME_PERSON : DASHI_SP_NEW_PERSON;
    int bits = matched_bits(acct);
    int code = status * 16 + bits;
    bool paid = jhas(P, "pt"), final = jhas(acct, "f");
    const json_t *d = json_object_get(acct, "d");
    person_id_of(root, P, pid);
    if (!force && (d ? json_integer_value(d) == code : status == DASHI_SP_NEW_PERSON))
        goto out;
    const char *parts[] = {uid, ctx->cause ? ctx->cause : ""};
    dashi_ctx_make_id(id, sizeof id, "sp", parts, 2);
    dashi_event_init(&ev, DASHI_EV_SAME_PERSON_DECISION);
    dashi_same_person_decision *sp = &ev.u.same_person_decision;
    sp->decision_id = dashi_strdup(id);
    sp->decided_at = ctx->now;
    sp->uid = dashi_strdup(uid);
    sp->person_id = dashi_strdup(pid);
    sp->status = status;
    sp->paid_before = paid;
    sp->final = final;
    sp->matched_on = calloc(DASHI_ID__COUNT, sizeof(int));
    for (int k = 0; k < DASHI_ID__COUNT && sp->matched_on; k++)
        if (bits & (1 << k))
            sp->matched_on[sp->n_matched_on++] = k;
    dashi_ctx_emit(ctx, &ev);
    dashi_event_clear(&ev);

    json_t *edit = acct_edit(ctx, uid);
    if (!edit)
        goto out;
    json_object_set_new(edit, "d", json_integer(code));
out:
    free(root);
}

/* End of an event step: decisions for touched accounts, then merges to commission and campaign. */
static void step_finish(step *s) {
    dashi_ctx *ctx = s->ctx;
    size_t n_touched = 0, n_roots = 0;
    char **touched = set_keys(s->touched, &n_touched);
    char **roots = set_keys(s->merged, &n_roots);

    /* the event's own account first, then the others by uid */
    if (s->ev_uid && json_object_get(s->touched, s->ev_uid))
        decide(s, s->ev_uid, s->registered || json_is_false(json_object_get(s->touched, s->ev_uid)));
    for (size_t i = 0; touched && i < n_touched; i++)
        if (!s->ev_uid || strcmp(s->ev_uid, touched[i]) != 0)
            decide(s, touched[i], json_is_false(json_object_get(s->touched, touched[i])));
    for (size_t i = 0; roots && i < n_roots; i++) {
        char *root = root_dup(ctx, roots[i]);
        size_t n = 0;
        char **uids = person_members(root, person_get(ctx, root), &n);
        if (uids && strcmp(root, roots[i]) == 0) {
            dashi_commission_on_person_change(ctx, (const char *const *)uids, n);
            dashi_campaign_on_person_change(ctx, (const char *const *)uids, n);
        }
        strv_free(uids, n);
        free(root);
    }
    strv_free(touched, n_touched);
    strv_free(roots, n_roots);
}

/* ---------------------------------------------------------------- event handlers */

static void on_registered(step *s, const dashi_account_registered *ar) {
    dashi_ctx *ctx = s->ctx;
    json_t *acct = acct_edit(ctx, ar->uid);
    char *timer = NULL;

    if (!acct)
        goto out;
    if (!jhas(acct, "t") || json_integer_value(json_object_get(acct, "f")) == FINAL_SEEN) {
        int64_t days = ctx->set->decision_days > 0 ? ctx->set->decision_days : 0;
        size_t len = strlen(ar->uid) + 4;
        if (!jhas(acct, "t"))
            json_object_set_new(acct, "t", json_integer(ctx->now));
        json_object_del(acct, "f"); /* a seen account registering now: its T+0 day starts */
        timer = malloc(len);
        if (!timer) {
            s->err = DASHI_ERR_NOMEM;
            goto out;
        }
        snprintf(timer, len, "sp:%s", ar->uid);
        dashi_view_timer_add(ctx->view, timer, dashi_cst_next_day(ctx->now) + days * DASHI_MS_PER_DAY, NULL);
        s->registered = true;
    }
    set_add(s->touched, ar->uid);
    for (size_t i = 0; i < ar->n_identities; i++)
        attach(s, ar->uid, &ar->identities[i]);
    if (ar->referral)
        note_referral(s, ar->uid, ar->referral->ambassador_uid, "REGISTRATION");
out:
    free(timer);
}

static void on_identities(step *s, const char *uid, const dashi_identity *removed, size_t n_removed,
                          const dashi_identity *added, size_t n_added) {
    account_ensure(s, uid);
    set_add(s->touched, uid);
    for (size_t i = 0; i < n_removed; i++)
        detach(s, uid, &removed[i]);
    for (size_t i = 0; i < n_added; i++)
        attach(s, uid, &added[i]);
}

dashi_err dashi_identity_on_event(dashi_ctx *ctx, const dashi_event *ev) {
    step s = {.ctx = ctx, .err = DASHI_OK};

    if (!ctx || !ev || !ctx->set)
        return DASHI_ERR_INTERNAL;
    switch (ev->type) {
    case DASHI_EV_ACCOUNT_REGISTERED:
    case DASHI_EV_REAL_NAME_VERIFIED:
    case DASHI_EV_IDENTITY_CHANGED:
    case DASHI_EV_LINK_VISITED:
    case DASHI_EV_AMBASSADOR_ENROLLED:
        break;
    default:
        goto out;
    }
    s.touched = json_object();
    s.merged = json_object();
    if (!s.touched || !s.merged) {
        s.err = DASHI_ERR_NOMEM;
        goto out;
    }
    switch (ev->type) {
    case DASHI_EV_ACCOUNT_REGISTERED:
        s.ev_uid = ev->u.account_registered.uid;
        on_registered(&s, &ev->u.account_registered);
        break;
    case DASHI_EV_REAL_NAME_VERIFIED:
        s.ev_uid = ev->u.real_name_verified.uid;
        on_identities(&s, s.ev_uid, NULL, 0, ev->u.real_name_verified.identities,
                      ev->u.real_name_verified.n_identities);
        break;
    case DASHI_EV_IDENTITY_CHANGED:
        s.ev_uid = ev->u.identity_changed.uid;
        on_identities(&s, s.ev_uid, ev->u.identity_changed.removed, ev->u.identity_changed.n_removed,
                      ev->u.identity_changed.added, ev->u.identity_changed.n_added);
        break;
    case DASHI_EV_LINK_VISITED:
        s.ev_uid = ev->u.link_visited.uid;
        if (ev->u.link_visited.logged_in) {
            account_ensure(&s, s.ev_uid);
            note_referral(&s, s.ev_uid, ev->u.link_visited.ambassador_uid, "LOGIN");
        }
        break;
    default: /* DASHI_EV_AMBASSADOR_ENROLLED */
        s.ev_uid = ev->u.ambassador_enrolled.uid;
        account_ensure(&s, s.ev_uid);
        ambassador_mark(&s, s.ev_uid);
        break;
    }
    if (s.err == DASHI_OK)
        step_finish(&s);
out:
    json_decref(s.touched);
    json_decref(s.merged);
    return s.err;
}

dashi_err dashi_identity_on_timer(dashi_ctx *ctx, const char *timer_id, const json_t *payload) {
    step s = {.ctx = ctx, .err = DASHI_OK};
    const char *uid;
    json_t *acct;

    (void)payload;
    if (!ctx || !timer_id || strncmp(timer_id, "sp:", 3) != 0)
        return DASHI_ERR_INVALID;
    uid = timer_id + 3; /* the engine removes the fired timer */
    if (!acct_known(acct_get(ctx, uid)) || jhas(acct_get(ctx, uid), "f"))
        goto out;
    acct = acct_edit(ctx, uid);
    if (!acct)
        goto out;
    json_object_set_new(acct, "f", json_integer(FINAL_TIMER));
    decide(&s, uid, true);
out:
    return s.err;
}

/* ---------------------------------------------------------------- queries */

void dashi_identity_person(dashi_ctx *ctx, const char *uid, dashi_person_info *out) {
    char *root = NULL;

    memset(out, 0, sizeof *out);
    out->first_paid_at = DASHI_TIME_NONE;
    const json_t *acct = uid ? acct_get(ctx, uid) : NULL;
    if (!acct)
        goto out;
    root = root_dup(ctx, uid);
    const json_t *P = person_get(ctx, root);
    out->known = acct_known(acct);
    if (out->known)
        person_id_of(root, P, out->person_id);
    if (jhas(P, "pt")) {
        out->paid_before = true;
        out->first_paid_at = json_integer_value(json_object_get(P, "pt"));
        snprintf(out->first_order_id, sizeof out->first_order_id, "%s", jstr(P, "po") ? jstr(P, "po") : "");
        snprintf(out->first_cart_id, sizeof out->first_cart_id, "%s", jstr(P, "pc") ? jstr(P, "pc") : "");
    }
out:
    free(root);
}

bool dashi_identity_same_person(dashi_ctx *ctx, const char *uid_a, const char *uid_b) {
    bool same = false;
    char *ra = NULL, *rb = NULL;

    if (!uid_a || !uid_b)
        goto out;
    if (strcmp(uid_a, uid_b) == 0) {
        same = true;
        goto out;
    }
    if (!acct_known(acct_get(ctx, uid_a)) || !acct_known(acct_get(ctx, uid_b)))
        goto out;
    ra = root_dup(ctx, uid_a);
    rb = root_dup(ctx, uid_b);
    same = strcmp(ra, rb) == 0;
out:
    free(ra);
    free(rb);
    return same;
}

void dashi_identity_record_payment(dashi_ctx *ctx, const char *uid, const char *order_id, const char *cart_id,
                                   dashi_time at) {
    char *root = NULL;
    json_t *P;

    if (!uid || !acct_edit(ctx, uid))
        goto out;
    root = root_dup(ctx, uid);
    P = person_edit(ctx, root);
    if (!P)
        goto out;
    const json_t *pt = json_object_get(P, "pt");
    if (pt && json_integer_value(pt) <= at)
        goto out;
    json_object_set_new(P, "pt", json_integer(at));
    json_object_set_new(P, "po", json_string(order_id ? order_id : ""));
    if (cart_id && *cart_id)
        json_object_set_new(P, "pc", json_string(cart_id));
    else
        json_object_del(P, "pc");
    json_object_set_new(P, "pu", json_string(uid));
out:
    free(root);
}
