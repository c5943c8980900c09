/* rules.c — the rules file: load it, resolve its periods, validate everything, answer "which rules held at t" (RULES V1, V2).
 *
 * Design. The fields of a rule set are described once, in field_table: the dotted
 * path of each value in the file ("rates" expands to rates.<customer kind>.<tier>,
 * "cap.per_customer" to one key per tier, names taken from core/event.h), what
 * kind of value it is (days, basis points, fen, a list of names, ...) and where it
 * lives in dashi_ruleset. Everything else is derived from that table: which keys
 * a section may hold (so a typo is an error that lists the keys it could have
 * meant), how a value is checked and stored, and the JSON written back by
 * dashi_ruleset_to_json — a new field is one row. Loading runs in two passes.
 * Pass one walks what each period writes and checks every value where it is
 * written. Pass two resolves period i leaf by leaf: the value is the one written
 * by the latest period j <= i that names it (objects merge, arrays and scalars
 * replace: a deep merge), and j is remembered so a check spanning several fields
 * (tier minima) still names the place where the bad value was written. Errors read
 * "FILE: PATH: problem" with PATH in the original document. Campaigns are a plain
 * list, checked field by field plus the requirements of their kind. Nothing here
 * reads the environment or a clock; the only I/O is json_load_file.
 */
#include "core/rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN 256
#define MAX_LEAVES 64
#define AMOUNT_MAX 1000000000000000LL /* 10^15 fen: far above any real amount, far below overflow */

/* ---------------------------------------------------------------- errors, paths */

typedef struct {
    const char *source; /* file name in messages */
    char *errstr;
    size_t errstr_size;
} loader;

static int fail(const loader *ld, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Record "SOURCE: PATH: message" (or "SOURCE: message" without a path); returns -1. */
static int fail(const loader *ld, const char *path, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path && *path)
        dashi_errf(DASHI_ERR_INVALID, ld->errstr, ld->errstr_size, "%s: %s: %s", ld->source, path, msg);
    else
        dashi_errf(DASHI_ERR_INVALID, ld->errstr, ld->errstr_size, "%s: %s", ld->source, msg);
    return -1;
}

/* Short JSON text of v for "got ..." (truncated), "nothing" for an absent value. */
static void describe(const json_t *v, char *buf, size_t size) {
    char *text = NULL;
    if (!v) {
        snprintf(buf, size, "nothing");
        goto out;
    }
    text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!text) {
        snprintf(buf, size, "a value");
        goto out;
    }
    if (strlen(text) > 60)
        snprintf(buf, size, "%.57s...", text);
    else
        snprintf(buf, size, "%s", text);
out:
    free(text);
}

static int fail_got(const loader *ld, const char *path, const char *expected, const json_t *v) {
    char got[80];
    describe(v, got, sizeof got);
    return fail(ld, path, "expected %s, got %s", expected, got);
}

/* Append s to the string in dst (PATH_LEN bytes), truncating. */
static void path_cat(char *dst, const char *s) {
    size_t used = strlen(dst), n = strlen(s);
    if (used + 1 >= PATH_LEN)
        return;
    if (n > PATH_LEN - 1 - used)
        n = PATH_LEN - 1 - used;
    memcpy(dst + used, s, n);
    dst[used + n] = '\0';
}

/* dst = parent.key (or key at the top); dst and parent are distinct buffers. */
static void path_key(char *dst, const char *parent, const char *key) {
    dst[0] = '\0';
    if (parent && *parent) {
        path_cat(dst, parent);
        path_cat(dst, ".");
    }
    path_cat(dst, key);
}

/* dst = parent[i]. */
static void path_index(char *dst, const char *parent, size_t i) {
    char num[32];
    snprintf(num, sizeof num, "[%zu]", i);
    dst[0] = '\0';
    path_cat(dst, parent);
    path_cat(dst, num);
}

static char *dup_str(const char *s) {
    size_t n;
    char *d;
    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void strv_free(char **v, size_t n) {
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---------------------------------------------------------------- names */

static const char *const basis_names[] = {[DASHI_TIER_BASIS_NEW_USERS] = "NEW_USERS", [DASHI_TIER_BASIS_YUNQI] = "YUNQI"};

static const char *const program_kind_names[DASHI_PROGRAM__COUNT] = {
    [DASHI_PROGRAM_FIRST_ORDER_BONUS] = "FIRST_ORDER_BONUS",
    [DASHI_PROGRAM_FIRST_PURCHASE_LADDER] = "FIRST_PURCHASE_LADDER",
    [DASHI_PROGRAM_DRAW_PER_PURCHASE] = "DRAW_PER_PURCHASE",
    [DASHI_PROGRAM_VERIFIED_LADDER] = "VERIFIED_LADDER",
    [DASHI_PROGRAM_LEADERBOARD] = "LEADERBOARD",
    [DASHI_PROGRAM_PRODUCT_LADDER] = "PRODUCT_LADDER",
    [DASHI_PROGRAM_BUYER_DRAW] = "BUYER_DRAW",
};

/* A set of names: a local table, or (table NULL) an enum of core/event.h. */
typedef struct {
    const char *const *table;
    size_t n;
    dashi_enum_kind kind;
} name_set;

static const char *name_at(const name_set *ns, size_t i) {
    if (ns->table)
        return i < ns->n ? ns->table[i] : NULL;
    return dashi_enum_name(ns->kind, (int)i);
}

static int name_lookup(const name_set *ns, const char *name) {
    if (!ns->table)
        return dashi_enum_from_name(ns->kind, name);
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->table[i], name) == 0)
            return (int)i;
    return -1;
}

static void name_list(const name_set *ns, char *buf, size_t size) {
    size_t used = 0;
    const char *name;
    buf[0] = '\0';
    for (size_t i = 0; (name = name_at(ns, i)) != NULL && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static const name_set basis_set = {basis_names, 2, 0};
static const name_set program_set = {program_kind_names, DASHI_PROGRAM__COUNT, 0};
static const name_set id_kind_set = {NULL, 0, DASHI_ENUM_IDENTITY_KIND};
static const name_set unit_set = {NULL, 0, DASHI_ENUM_UNIT};
static const name_set account_set = {NULL, 0, DASHI_ENUM_ACCOUNT_TYPE};
static const name_set method_set = {NULL, 0, DASHI_ENUM_METHOD};

/* ---------------------------------------------------------------- value kinds */

typedef enum {
    V_DAYS, V_BP, V_AMOUNT, V_COUNT, V_POSITIVE, V_MONTHS, V_MINUTES, /* integers */
    V_BOOL, V_STRINGS, V_BLOCKLIST, V_ID_KINDS, V_OFFSETS, V_BASIS
} value_kind;

static const struct {
    int64_t min, max;
    const char *what;
} int_kinds[] = {
    [V_DAYS] = {0, 3650, "days"},
    [V_BP] = {0, 10000, "basis points"},
    [V_AMOUNT] = {0, AMOUNT_MAX, "an amount in fen"},
    [V_COUNT] = {0, AMOUNT_MAX, "a count"},
    [V_POSITIVE] = {1, AMOUNT_MAX, "an integer"},
    [V_MONTHS] = {1, 120, "months"},
    [V_MINUTES] = {1, 3650LL * 1440, "minutes"},
};

static int is_int_kind(value_kind k) {
    return k <= V_MINUTES;
}

/* Check v is an integer in the range of kind; store it in *out (may be NULL). */
static int read_int(const loader *ld, const json_t *v, const char *path, value_kind kind, int64_t *out) {
    char expected[96];
    json_int_t x;
    snprintf(expected, sizeof expected, "%s %lld..%lld", int_kinds[kind].what, (long long)int_kinds[kind].min,
             (long long)int_kinds[kind].max);
    if (!json_is_integer(v))
        return fail_got(ld, path, expected, v);
    x = json_integer_value(v);
    if (x < int_kinds[kind].min || x > int_kinds[kind].max)
        return fail_got(ld, path, expected, v);
    if (out)
        *out = (int64_t)x;
    return 0;
}

static int read_bool(const loader *ld, const json_t *v, const char *path, bool *out) {
    if (!json_is_boolean(v))
        return fail_got(ld, path, "true or false", v);
    if (out)
        *out = json_is_true(v);
    return 0;
}

static int read_name(const loader *ld, const json_t *v, const char *path, const name_set *ns, int *out) {
    char list[256], expected[300];
    int idx = -1;
    if (json_is_string(v))
        idx = name_lookup(ns, json_string_value(v));
    if (idx < 0) {
        name_list(ns, list, sizeof list);
        snprintf(expected, sizeof expected, "one of %s", list);
        return fail_got(ld, path, expected, v);
    }
    if (out)
        *out = idx;
    return 0;
}

static int read_time(const loader *ld, const json_t *v, const char *path, dashi_time *out) {
    char detail[160];
    dashi_time t;
    if (!json_is_string(v))
        return fail_got(ld, path, "an ISO-8601 instant with offset (\"2022-06-07T00:00:00+08:00\")", v);
    if (dashi_time_parse(json_string_value(v), &t, detail, sizeof detail) != DASHI_OK) {
        char got[80];
        describe(v, got, sizeof got);
        return fail(ld, path, "expected an ISO-8601 instant with offset (\"2022-06-07T00:00:00+08:00\"), got %s (%s)",
                    got, detail);
    }
    if (out)
        *out = t;
    return 0;
}

/* Is the blocklist entry "KIND:value" well formed? */
static int blocklist_entry_ok(const char *s) {
    const char *colon = strchr(s, ':');
    char kind[32];
    size_t n;
    if (!colon || colon[1] == '\0')
        return 0;
    n = (size_t)(colon - s);
    if (n == 0 || n >= sizeof kind)
        return 0;
    memcpy(kind, s, n);
    kind[n] = '\0';
    return dashi_enum_from_name(DASHI_ENUM_IDENTITY_KIND, kind) >= 0;
}

/* A list of distinct non-empty strings; names of ns when ns is given, "KIND:value"
 * entries when blocklist. Copies into *out / *n_out when out is not NULL. */
static int read_strings(const loader *ld, const json_t *v, const char *path, const name_set *ns, bool blocklist,
                        char ***out, size_t *n_out) {
    char **arr = NULL;
    size_t n = 0;
    int rc = -1;
    char p[PATH_LEN];
    if (!json_is_array(v)) {
        fail_got(ld, path, ns ? "a list of names" : "a list of strings", v);
        goto out;
    }
    n = json_array_size(v);
    if (n) {
        arr = calloc(n, sizeof *arr);
        if (!arr) {
            fail(ld, path, "out of memory");
            n = 0;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        const char *s;
        path_index(p, path, i);
        if (!json_is_string(e) || json_string_length(e) == 0) {
            fail_got(ld, p, "a non-empty string", e);
            goto out;
        }
        s = json_string_value(e);
        if (ns && read_name(ld, e, p, ns, NULL) < 0)
            goto out;
        if (blocklist && !blocklist_entry_ok(s)) {
            char list[128], expected[200];
            name_list(&id_kind_set, list, sizeof list);
            snprintf(expected, sizeof expected, "\"KIND:normalized value\" with KIND one of %s", list);
            fail_got(ld, p, expected, e);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(v, j)), s) == 0) {
                fail(ld, p, "duplicate \"%s\" (also [%zu])", s, j);
                goto out;
            }
        }
        arr[i] = dup_str(s);
        if (!arr[i]) {
            fail(ld, p, "out of memory");
            goto out;
        }
    }
    if (out) {
        *out = arr;
        *n_out = n;
        arr = NULL;
    }
    rc = 0;
out:
    strv_free(arr, n);
    return rc;
}

/* A non-empty list of integers of kind, strictly ascending. */
static int read_int_list(const loader *ld, const json_t *v, const char *path, value_kind kind, const char *what,
                         int64_t **out, size_t *n_out) {
    int64_t *arr = NULL;
    size_t n;
    int rc = -1;
    char p[PATH_LEN], expected[128];
    snprintf(expected, sizeof expected, "a non-empty list of %s", what);
    if (!json_is_array(v) || json_array_size(v) == 0) {
        fail_got(ld, path, expected, v);
        goto out;
    }
    n = json_array_size(v);
    arr = calloc(n, sizeof *arr);
    if (!arr) {
        fail(ld, path, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        path_index(p, path, i);
        if (read_int(ld, json_array_get(v, i), p, kind, &arr[i]) < 0)
            goto out;
        if (i > 0 && arr[i] <= arr[i - 1]) {
            fail(ld, p, "%s must ascend strictly (%lld after %lld)", what, (long long)arr[i], (long long)arr[i - 1]);
            goto out;
        }
    }
    if (out) {
        *out = arr;
        *n_out = n;
        arr = NULL;
    }
    rc = 0;
out:
    free(arr);
    return rc;
}

/* ---------------------------------------------------------------- the rule-set fields */

typedef enum { KEYS_NONE, KEYS_TIER, KEYS_KIND_TIER } key_kind;

typedef struct {
    const char *path;    /* dotted path inside a period */
    value_kind kind;
    key_kind keys;       /* KEYS_TIER: an object keyed by tier; KEYS_KIND_TIER: by customer kind, then tier */
    size_t offset;       /* in dashi_ruleset */
    size_t count_offset; /* size_t count of a list value */
} field_spec;

#define RS(m) offsetof(dashi_ruleset, m)
#define N_CUSTOMER_KINDS (sizeof(((dashi_ruleset *)0)->rate_bp) / sizeof(((dashi_ruleset *)0)->rate_bp[0]))

static const field_spec field_table[] = {
    {"association.days", V_DAYS, KEYS_NONE, RS(assoc_days), 0},
    {"association.protection_days", V_DAYS, KEYS_NONE, RS(protection_days), 0},
    {"association.pure_new_repurchase_days", V_DAYS, KEYS_NONE, RS(pure_new_repurchase_days), 0},
    {"association.old_user_days", V_DAYS, KEYS_NONE, RS(old_user_assoc_days), 0},
    {"same_person.decision_days", V_DAYS, KEYS_NONE, RS(decision_days), 0},
    {"same_person.link_kinds", V_ID_KINDS, KEYS_NONE, RS(link_kinds), 0},
    {"same_person.generic_attribute_limit", V_POSITIVE, KEYS_NONE, RS(generic_attribute_limit), 0},
    {"same_person.blocklist", V_BLOCKLIST, KEYS_NONE, RS(blocklist), RS(n_blocklist)},
    {"same_person.burst.window_minutes", V_MINUTES, KEYS_NONE, RS(burst_window_ms), 0},
    {"same_person.burst.threshold", V_POSITIVE, KEYS_NONE, RS(burst_threshold), 0},
    {"review.days", V_DAYS, KEYS_NONE, RS(review_days), 0},
    {"review.refund_window_days", V_DAYS, KEYS_NONE, RS(refund_window_days), 0},
    {"rates", V_BP, KEYS_KIND_TIER, RS(rate_bp), 0},
    {"repurchase.rate_bp", V_BP, KEYS_NONE, RS(repurchase_rate_bp), 0},
    {"repurchase.cap_per_order", V_AMOUNT, KEYS_NONE, RS(repurchase_cap_per_order), 0},
    {"products.eligible_categories", V_STRINGS, KEYS_NONE, RS(eligible_categories), RS(n_eligible_categories)},
    {"cap.enabled", V_BOOL, KEYS_NONE, RS(cap_enabled), 0},
    {"cap.per_customer", V_AMOUNT, KEYS_TIER, RS(cap_per_customer), 0},
    {"installments.enabled", V_BOOL, KEYS_NONE, RS(installments_enabled), 0},
    {"installments.threshold", V_AMOUNT, KEYS_NONE, RS(installment_threshold), 0},
    {"installments.offsets_days", V_OFFSETS, KEYS_NONE, RS(installment_offsets_days), RS(n_installments)},
    {"tiers.basis", V_BASIS, KEYS_NONE, RS(tier_basis), 0},
    {"tiers.lookback_months", V_MONTHS, KEYS_NONE, RS(tier_lookback_months), 0},
    {"tiers.min", V_COUNT, KEYS_TIER, RS(tier_min), 0},
    {"tiers.min_first_purchase", V_AMOUNT, KEYS_NONE, RS(tier_min_first_purchase), 0},
    {"points.yunqi_per_rmb", V_POSITIVE, KEYS_NONE, RS(yunqi_per_rmb), 0},
    {"points.awakening", V_BOOL, KEYS_NONE, RS(awakening), 0},
};

/* One value of a period after expanding the keyed objects. */
typedef struct {
    char path[96];
    value_kind kind;
    size_t offset, count_offset;
} leaf;

static size_t leaf_add(leaf *lv, size_t n, const field_spec *f, const char *k1, const char *k2, size_t offset) {
    if (n >= MAX_LEAVES)
        return n;
    if (k2)
        snprintf(lv[n].path, sizeof lv[n].path, "%s.%s.%s", f->path, k1, k2);
    else if (k1)
        snprintf(lv[n].path, sizeof lv[n].path, "%s.%s", f->path, k1);
    else
        snprintf(lv[n].path, sizeof lv[n].path, "%s", f->path);
    lv[n].kind = f->kind;
    lv[n].offset = offset;
    lv[n].count_offset = f->count_offset;
    return n + 1;
}

/* Expand field_table into lv (MAX_LEAVES entries); returns the count. */
static size_t leaves_expand(leaf *lv) {
    size_t n = 0;
    for (size_t i = 0; i < sizeof field_table / sizeof field_table[0]; i++) {
        const field_spec *f = &field_table[i];
        if (f->keys == KEYS_NONE) {
            n = leaf_add(lv, n, f, NULL, NULL, f->offset);
            continue;
        }
        for (size_t k = 0; k < (f->keys == KEYS_KIND_TIER ? N_CUSTOMER_KINDS : 1); k++) {
            for (int t = 0; t < DASHI_TIER__COUNT; t++) {
                size_t off = f->offset + (k * DASHI_TIER__COUNT + (size_t)t) * sizeof(int64_t);
                const char *tier = dashi_enum_name(DASHI_ENUM_TIER, t);
                if (f->keys == KEYS_KIND_TIER)
                    n = leaf_add(lv, n, f, dashi_enum_name(DASHI_ENUM_CUSTOMER_KIND, (int)k), tier, off);
                else
                    n = leaf_add(lv, n, f, tier, NULL, off);
            }
        }
    }
    return n;
}

static const leaf *leaf_find(const leaf *lv, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(lv[i].path, path) == 0)
            return &lv[i];
    return NULL;
}

static size_t leaf_index_by_offset(const leaf *lv, size_t n, size_t offset) {
    for (size_t i = 0; i < n; i++)
        if (lv[i].offset == offset)
            return i;
    return 0;
}

/* The segment of path right under prefix ("" = top), its length in *len; NULL when path is not under prefix. */
static const char *segment_under(const char *path, const char *prefix, size_t *len) {
    size_t plen = strlen(prefix);
    if (plen) {
        if (strncmp(path, prefix, plen) != 0 || path[plen] != '.')
            return NULL;
        path += plen + 1;
    }
    *len = strcspn(path, ".");
    return path;
}

/* Is dotted an object on the way to some leaf? */
static int is_section(const leaf *lv, size_t n, const char *dotted) {
    size_t len = strlen(dotted);
    for (size_t i = 0; i < n; i++)
        if (strncmp(lv[i].path, dotted, len) == 0 && lv[i].path[len] == '.')
            return 1;
    return 0;
}

/* The keys allowed right under prefix, comma separated. */
static void section_keys(const leaf *lv, size_t n, const char *prefix, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        size_t len, len2;
        const char *seg = segment_under(lv[i].path, prefix, &len), *seg2;
        int seen = 0;
        if (!seg)
            continue;
        for (size_t j = 0; j < i && !seen; j++) {
            seg2 = segment_under(lv[j].path, prefix, &len2);
            seen = seg2 && len2 == len && strncmp(seg, seg2, len) == 0;
        }
        if (!seen) {
            int w = snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "", (int)len, seg);
            if (w < 0)
                break;
            used += (size_t)w;
        }
    }
}

static void *field_ptr(dashi_ruleset *set, size_t offset) {
    return (char *)set + offset;
}

static const void *field_cptr(const dashi_ruleset *set, size_t offset) {
    return (const char *)set + offset;
}

/* Check value v of leaf lf (written at path); store it into set unless set is NULL. */
static int leaf_read(const loader *ld, const leaf *lf, const json_t *v, const char *path, dashi_ruleset *set) {
    int rc = -1;
    char **names = NULL;
    size_t n_names = 0;
    if (is_int_kind(lf->kind)) {
        int64_t x;
        if (read_int(ld, v, path, lf->kind, &x) < 0)
            goto out;
        if (set)
            *(int64_t *)field_ptr(set, lf->offset) = lf->kind == V_MINUTES ? x * DASHI_MS_PER_MIN : x;
        rc = 0;
        goto out;
    }
    switch (lf->kind) {
    case V_BOOL:
        rc = read_bool(ld, v, path, set ? (bool *)field_ptr(set, lf->offset) : NULL);
        break;
    case V_BASIS: {
        int b;
        rc = read_name(ld, v, path, &basis_set, &b);
        if (rc == 0 && set)
            *(dashi_tier_basis *)field_ptr(set, lf->offset) = (dashi_tier_basis)b;
        break;
    }
    case V_STRINGS:
    case V_BLOCKLIST:
        rc = read_strings(ld, v, path, NULL, lf->kind == V_BLOCKLIST,
                          set ? (char ***)field_ptr(set, lf->offset) : NULL,
                          set ? (size_t *)field_ptr(set, lf->count_offset) : NULL);
        break;
    case V_ID_KINDS: {
        bool *kinds = set ? (bool *)field_ptr(set, lf->offset) : NULL;
        rc = read_strings(ld, v, path, &id_kind_set, false, &names, &n_names);
        for (size_t i = 0; rc == 0 && kinds && i < n_names; i++)
            kinds[dashi_enum_from_name(DASHI_ENUM_IDENTITY_KIND, names[i])] = true;
        break;
    }
    case V_OFFSETS:
        rc = read_int_list(ld, v, path, V_DAYS, "offsets in days 0..3650",
                           set ? (int64_t **)field_ptr(set, lf->offset) : NULL,
                           set ? (size_t *)field_ptr(set, lf->count_offset) : NULL);
        break;
    default:
        rc = fail(ld, path, "internal error: unhandled value kind %d", (int)lf->kind);
        break;
    }
out:
    strv_free(names, n_names);
    return rc;
}

static json_t *leaf_to_json(const dashi_ruleset *set, const leaf *lf) {
    json_t *arr = NULL, *result = NULL;
    if (is_int_kind(lf->kind)) {
        int64_t x = *(const int64_t *)field_cptr(set, lf->offset);
        result = json_integer(lf->kind == V_MINUTES ? x / DASHI_MS_PER_MIN : x);
        goto out;
    }
    switch (lf->kind) {
    case V_BOOL:
        result = json_boolean(*(const bool *)field_cptr(set, lf->offset));
        goto out;
    case V_BASIS: {
        dashi_tier_basis b = *(const dashi_tier_basis *)field_cptr(set, lf->offset);
        result = json_string((size_t)b < 2 ? basis_names[b] : "?");
        goto out;
    }
    default:
        break;
    }
    arr = json_array();
    if (!arr)
        goto out;
    if (lf->kind == V_STRINGS || lf->kind == V_BLOCKLIST) {
        char *const *v = *(char *const *const *)field_cptr(set, lf->offset);
        size_t n = *(const size_t *)field_cptr(set, lf->count_offset);
        for (size_t i = 0; i < n; i++)
            if (json_array_append_new(arr, json_string(v[i])) < 0)
                goto out;
    } else if (lf->kind == V_ID_KINDS) {
        const bool *kinds = (const bool *)field_cptr(set, lf->offset);
        for (int k = 0; k < DASHI_ID__COUNT; k++)
            if (kinds[k] && json_array_append_new(arr, json_string(dashi_enum_name(DASHI_ENUM_IDENTITY_KIND, k))) < 0)
                goto out;
    } else if (lf->kind == V_OFFSETS) {
        const int64_t *v = *(const int64_t *const *)field_cptr(set, lf->offset);
        size_t n = *(const size_t *)field_cptr(set, lf->count_offset);
        for (size_t i = 0; i < n; i++)
            if (json_array_append_new(arr, json_integer(v[i])) < 0)
                goto out;
    }
    result = arr;
    arr = NULL;
out:
    json_decref(arr);
    return result;
}

/* ---------------------------------------------------------------- periods */

/* The value at dotted path inside one period's object; NULL when it does not name it. */
static const json_t *period_lookup(const json_t *period, const char *dotted) {
    char seg[96];
    const json_t *cur = period;
    const char *p = dotted;
    while (cur && *p) {
        size_t len = strcspn(p, ".");
        if (!json_is_object(cur) || len >= sizeof seg)
            return NULL;
        memcpy(seg, p, len);
        seg[len] = '\0';
        cur = json_object_get(cur, seg);
        p += len;
        if (*p == '.')
            p++;
    }
    return cur;
}

/* Pass one: every key a period writes is known, every value is valid where written. */
static int period_check_written(const loader *ld, const leaf *lv, size_t n, const json_t *obj, const char *dotted,
                                const char *docpath) {
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        char d[PATH_LEN], p[PATH_LEN], known[512];
        const leaf *lf;
        if (key[0] == '_')
            continue;
        if (!*dotted && (strcmp(key, "id") == 0 || strcmp(key, "from") == 0))
            continue;
        path_key(d, dotted, key);
        path_key(p, docpath, key);
        if (strchr(key, '.')) /* "rates.PURE_NEW" would match a path here but never be read */
            return fail(ld, p, "unknown key (write nested objects, not dotted keys)");
        lf = leaf_find(lv, n, d);
        if (lf) {
            if (leaf_read(ld, lf, val, p, NULL) < 0)
                return -1;
            continue;
        }
        if (is_section(lv, n, d)) {
            if (!json_is_object(val))
                return fail_got(ld, p, "an object", val);
            if (period_check_written(ld, lv, n, val, d, p) < 0)
                return -1;
            continue;
        }
        section_keys(lv, n, dotted, known, sizeof known);
        return fail(ld, p, "unknown key (expected one of: %s%s)", *dotted ? "" : "id, from, ", known);
    }
    return 0;
}

/* Cross-field checks of one resolved set; where[k] is the period that wrote leaf k. */
static int ruleset_check(const loader *ld, const leaf *lv, size_t n, const size_t *where, const dashi_ruleset *set) {
    char p[PATH_LEN], q[PATH_LEN];
    for (int t = 0; t < DASHI_TIER__COUNT; t++) {
        size_t k = leaf_index_by_offset(lv, n, RS(tier_min) + (size_t)t * sizeof(int64_t));
        path_index(q, "periods", where[k]);
        path_key(p, q, lv[k].path);
        if (t == 0 && set->tier_min[0] != 0)
            return fail(ld, p, "the lowest tier (%s) must start at 0, got %lld", dashi_enum_name(DASHI_ENUM_TIER, 0),
                        (long long)set->tier_min[0]);
        if (t > 0 && set->tier_min[t] <= set->tier_min[t - 1])
            return fail(ld, p, "tier minima must ascend strictly (%s %lld is not above %s %lld)",
                        dashi_enum_name(DASHI_ENUM_TIER, t), (long long)set->tier_min[t],
                        dashi_enum_name(DASHI_ENUM_TIER, t - 1), (long long)set->tier_min[t - 1]);
    }
    return 0;
}

/* Pass two: resolve period i of periods into set (deep merge over the earlier periods). */
static int period_resolve(const loader *ld, const leaf *lv, size_t n, const json_t *periods, size_t i,
                          dashi_ruleset *set) {
    size_t where[MAX_LEAVES];
    char p[PATH_LEN], q[PATH_LEN];
    for (size_t k = 0; k < n; k++) {
        const json_t *v = NULL;
        size_t j = i + 1;
        while (j-- > 0) {
            v = period_lookup(json_array_get(periods, j), lv[k].path);
            if (v)
                break;
        }
        if (!v) {
            path_key(p, "periods[0]", lv[k].path);
            return fail(ld, p, "missing (the first period must give every value; later periods override)");
        }
        where[k] = j;
        path_index(q, "periods", j);
        path_key(p, q, lv[k].path);
        if (leaf_read(ld, &lv[k], v, p, set) < 0)
            return -1;
    }
    return ruleset_check(ld, lv, n, where, set);
}

/* id and from of period i (not inherited); ids unique, froms strictly ascending. */
static int period_header(const loader *ld, const json_t *periods, size_t i, dashi_ruleset *sets) {
    const json_t *obj = json_array_get(periods, i), *id;
    char p[PATH_LEN], q[PATH_LEN];
    path_index(p, "periods", i);
    if (!json_is_object(obj))
        return fail_got(ld, p, "a period object {\"id\", \"from\", sections...}", obj);
    id = json_object_get(obj, "id");
    path_key(q, p, "id");
    if (!json_is_string(id) || json_string_length(id) == 0)
        return fail_got(ld, q, "a non-empty string (the rule version, e.g. \"2022-06-01\")", id);
    for (size_t j = 0; j < i; j++)
        if (strcmp(sets[j].version, json_string_value(id)) == 0)
            return fail(ld, q, "duplicate id \"%s\" (also periods[%zu])", sets[j].version, j);
    sets[i].version = dup_str(json_string_value(id));
    if (!sets[i].version)
        return fail(ld, q, "out of memory");
    path_key(q, p, "from");
    if (read_time(ld, json_object_get(obj, "from"), q, &sets[i].from) < 0)
        return -1;
    if (i > 0 && sets[i].from <= sets[i - 1].from) {
        char a[DASHI_TIME_STRLEN], b[DASHI_TIME_STRLEN];
        return fail(ld, q, "periods must start in strictly ascending order (%s is not after periods[%zu].from %s)",
                    dashi_time_format(sets[i].from, a), i - 1, dashi_time_format(sets[i - 1].from, b));
    }
    return 0;
}

/* ---------------------------------------------------------------- campaigns */

static const char *const campaign_keys[] = {
    "id", "name", "campaign_id", "kind", "starts_at", "ends_at", "settles_at", "ambassadors_only", "unit",
    "min_paid", "excluded_categories", "products", "methods", "purchase_ratio_bp", "purchase_min_paid",
    "ladders", "bands", "bonus_base_cap", "draw_expires_at", "thresholds", NULL};
static const char *const ladder_keys[] = {"name", "account_kind", "steps", NULL};
static const char *const step_keys[] = {"count", "reward", NULL};
static const char *const band_keys[] = {"min_base", "max_base", "rate_bp", NULL};
static const char *const top_keys[] = {"name", "revision", "plausible", "periods", "campaigns", NULL};
static const char *const plausible_keys[] = {"from", "until", NULL};

/* obj is an object whose keys (other than "_comments") are all in allowed. */
static int check_keys(const loader *ld, const json_t *obj, const char *path, const char *what,
                      const char *const *allowed) {
    const char *key;
    json_t *val;
    if (!json_is_object(obj))
        return fail_got(ld, path, what, obj);
    json_object_foreach((json_t *)obj, key, val) {
        char p[PATH_LEN], list[512];
        size_t used = 0;
        int ok = key[0] == '_';
        (void)val;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (ok)
            continue;
        list[0] = '\0';
        for (size_t i = 0; allowed[i] && used < sizeof list; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", allowed[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        path_key(p, path, key);
        return fail(ld, p, "unknown key (expected one of: %s)", list);
    }
    return 0;
}

/* Field key of obj: absent → 1 (or an error when required), present → 0 with *v set, -1 on error. */
static int member(const loader *ld, const json_t *obj, const char *path, const char *key, bool required,
                  const json_t **v, char *p) {
    path_key(p, path, key);
    *v = json_object_get(obj, key);
    if (*v)
        return 0;
    if (required)
        return fail(ld, p, "missing");
    return 1;
}

static int get_str(const loader *ld, const json_t *obj, const char *path, const char *key, bool required, char **out) {
    const json_t *v;
    char p[PATH_LEN];
    int rc = member(ld, obj, path, key, required, &v, p);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail_got(ld, p, "a non-empty string", v);
    *out = dup_str(json_string_value(v));
    return *out ? 0 : fail(ld, p, "out of memory");
}

static int get_int(const loader *ld, const json_t *obj, const char *path, const char *key, value_kind kind,
                   bool required, int64_t *out) {
    const json_t *v;
    char p[PATH_LEN];
    int rc = member(ld, obj, path, key, required, &v, p);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return read_int(ld, v, p, kind, out);
}

static int get_time(const loader *ld, const json_t *obj, const char *path, const char *key, bool required,
                    dashi_time *out) {
    const json_t *v;
    char p[PATH_LEN];
    int rc = member(ld, obj, path, key, required, &v, p);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return read_time(ld, v, p, out);
}

static int get_name(const loader *ld, const json_t *obj, const char *path, const char *key, bool required,
                    const name_set *ns, int *out) {
    const json_t *v;
    char p[PATH_LEN];
    int rc = member(ld, obj, path, key, required, &v, p);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return read_name(ld, v, p, ns, out);
}

static int get_strings(const loader *ld, const json_t *obj, const char *path, const char *key, const name_set *ns,
                       char ***out, size_t *n_out) {
    const json_t *v;
    char p[PATH_LEN];
    int rc = member(ld, obj, path, key, false, &v, p);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return read_strings(ld, v, p, ns, false, out, n_out);
}

static int steps_read(const loader *ld, const json_t *v, const char *path, dashi_ladder *l) {
    char p[PATH_LEN];
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail_got(ld, path, "a non-empty list of steps [{\"count\", \"reward\"}]", v);
    l->steps = calloc(json_array_size(v), sizeof *l->steps);
    if (!l->steps)
        return fail(ld, path, "out of memory");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *s = json_array_get(v, i);
        dashi_step *st = &l->steps[i];
        path_index(p, path, i);
        if (check_keys(ld, s, p, "a step object {\"count\", \"reward\"}", step_keys) < 0 ||
            get_int(ld, s, p, "count", V_POSITIVE, true, &st->count) < 0 ||
            get_int(ld, s, p, "reward", V_AMOUNT, true, &st->reward) < 0)
            return -1;
        l->n_steps = i + 1;
        if (i > 0 && st->count <= st[-1].count) {
            char q[PATH_LEN];
            path_key(q, p, "count");
            return fail(ld, q, "steps must ascend strictly by count (%lld after %lld)", (long long)st->count,
                        (long long)st[-1].count);
        }
        if (i > 0 && st->reward < st[-1].reward) {
            char q[PATH_LEN];
            path_key(q, p, "reward");
            return fail(ld, q, "rewards are totals at each step and must not decrease (%lld after %lld)",
                        (long long)st->reward, (long long)st[-1].reward);
        }
    }
    return 0;
}

static int ladders_read(const loader *ld, const json_t *v, const char *path, dashi_campaign *c) {
    char p[PATH_LEN], q[PATH_LEN];
    size_t n;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail_got(ld, path, "a non-empty list of ladders [{\"name\", \"account_kind\", \"steps\"}]", v);
    n = json_array_size(v);
    c->ladders = calloc(n, sizeof *c->ladders);
    if (!c->ladders)
        return fail(ld, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(v, i);
        dashi_ladder *l = &c->ladders[i];
        const json_t *steps;
        l->account_kind = DASHI_ENUM_NONE;
        c->n_ladders = i + 1;
        path_index(p, path, i);
        if (check_keys(ld, o, p, "a ladder object {\"name\", \"account_kind\", \"steps\"}", ladder_keys) < 0 ||
            get_str(ld, o, p, "name", false, &l->name) < 0 ||
            get_name(ld, o, p, "account_kind", false, &account_set, &l->account_kind) < 0 ||
            member(ld, o, p, "steps", true, &steps, q) < 0 || steps_read(ld, steps, q, l) < 0)
            return -1;
        path_key(q, p, "name");
        if (n > 1 && !l->name)
            return fail(ld, q, "missing (required when a campaign has several ladders)");
        for (size_t j = 0; l->name && j < i; j++)
            if (c->ladders[j].name && strcmp(c->ladders[j].name, l->name) == 0)
                return fail(ld, q, "duplicate ladder name \"%s\" (also %s[%zu])", l->name, path, j);
    }
    return 0;
}

static int bands_read(const loader *ld, const json_t *v, const char *path, dashi_campaign *c) {
    char p[PATH_LEN], q[PATH_LEN];
    size_t n;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail_got(ld, path, "a non-empty list of bands [{\"min_base\", \"max_base\", \"rate_bp\"}]", v);
    n = json_array_size(v);
    c->bands = calloc(n, sizeof *c->bands);
    if (!c->bands)
        return fail(ld, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(v, i), *max;
        dashi_band *b = &c->bands[i];
        c->n_bands = i + 1;
        b->max_base = DASHI_INT_NONE;
        path_index(p, path, i);
        if (check_keys(ld, o, p, "a band object {\"min_base\", \"max_base\", \"rate_bp\"}", band_keys) < 0 ||
            get_int(ld, o, p, "min_base", V_AMOUNT, true, &b->min_base) < 0 ||
            get_int(ld, o, p, "rate_bp", V_BP, true, &b->rate_bp) < 0)
            return -1;
        max = json_object_get(o, "max_base");
        path_key(q, p, "max_base");
        if (max && !json_is_null(max) && read_int(ld, max, q, V_AMOUNT, &b->max_base) < 0)
            return -1;
        if (b->max_base != DASHI_INT_NONE && b->max_base < b->min_base)
            return fail(ld, q, "must not be below min_base (%lld < %lld)", (long long)b->max_base,
                        (long long)b->min_base);
        if (b->max_base == DASHI_INT_NONE && i + 1 < n)
            return fail(ld, q, "missing (only the last band may be open)");
        if (b->max_base != DASHI_INT_NONE && i + 1 == n)
            return fail(ld, q, "the last band must be open (no max_base) so that every base has a rate");
        path_key(q, p, "min_base");
        if (i == 0 && b->min_base != 0)
            return fail(ld, q, "the first band must start at 0, got %lld", (long long)b->min_base);
        if (i > 0 && b->min_base != b[-1].max_base + 1)
            return fail(ld, q, "bands must be contiguous (expected %lld right after max_base %lld, got %lld)",
                        (long long)(b[-1].max_base + 1), (long long)b[-1].max_base, (long long)b->min_base);
    }
    return 0;
}

/* K5: a leaderboard without a written ladder gets one named LEADERBOARD, its steps the thresholds, reward 0. */
static int leaderboard_ladder(const loader *ld, const char *path, dashi_campaign *c) {
    c->ladders = calloc(1, sizeof *c->ladders);
    if (!c->ladders)
        return fail(ld, path, "out of memory");
    c->n_ladders = 1;
    c->ladders[0].account_kind = DASHI_ENUM_NONE;
    c->ladders[0].name = dup_str("LEADERBOARD");
    c->ladders[0].steps = calloc(c->n_thresholds, sizeof *c->ladders[0].steps);
    if (!c->ladders[0].name || !c->ladders[0].steps)
        return fail(ld, path, "out of memory");
    for (size_t i = 0; i < c->n_thresholds; i++)
        c->ladders[0].steps[i].count = c->thresholds[i];
    c->ladders[0].n_steps = c->n_thresholds;
    return 0;
}

static int require(const loader *ld, const char *path, const char *key, bool present, const dashi_campaign *c) {
    char p[PATH_LEN];
    if (present)
        return 0;
    path_key(p, path, key);
    return fail(ld, p, "missing (required for a %s campaign)", program_kind_names[c->kind]);
}

static int campaign_read(const loader *ld, const json_t *obj, const char *path, dashi_campaign *c) {
    const json_t *v;
    char p[PATH_LEN];
    int kind = 0, rc;
    c->unit = DASHI_ENUM_NONE;
    c->bonus_base_cap = DASHI_INT_NONE;
    c->draw_expires_at = DASHI_TIME_NONE;
    if (check_keys(ld, obj, path, "a campaign object", campaign_keys) < 0 ||
        get_str(ld, obj, path, "id", true, &c->id) < 0 || get_str(ld, obj, path, "name", true, &c->name) < 0 ||
        get_str(ld, obj, path, "campaign_id", true, &c->campaign_id) < 0 ||
        get_name(ld, obj, path, "kind", true, &program_set, &kind) < 0)
        return -1;
    /* both are parts of state keys and timer ids, and an event's campaign_id (at most
     * DASHI_MAX_ID_LEN bytes) must be able to name them */
    if (strlen(c->id) > DASHI_MAX_ID_LEN || strlen(c->campaign_id) > DASHI_MAX_ID_LEN) {
        path_key(p, path, strlen(c->id) > DASHI_MAX_ID_LEN ? "id" : "campaign_id");
        return fail(ld, p, "longer than %d bytes", DASHI_MAX_ID_LEN);
    }
    c->kind = (dashi_program_kind)kind;
    if (get_time(ld, obj, path, "starts_at", true, &c->starts_at) < 0 ||
        get_time(ld, obj, path, "ends_at", true, &c->ends_at) < 0 ||
        get_time(ld, obj, path, "settles_at", true, &c->settles_at) < 0 ||
        get_time(ld, obj, path, "draw_expires_at", false, &c->draw_expires_at) < 0 ||
        get_name(ld, obj, path, "unit", true, &unit_set, &c->unit) < 0 ||
        get_int(ld, obj, path, "min_paid", V_AMOUNT, false, &c->min_paid) < 0 ||
        get_int(ld, obj, path, "purchase_ratio_bp", V_BP, false, &c->purchase_ratio_bp) < 0 ||
        get_int(ld, obj, path, "purchase_min_paid", V_AMOUNT, false, &c->purchase_min_paid) < 0 ||
        get_int(ld, obj, path, "bonus_base_cap", V_POSITIVE, false, &c->bonus_base_cap) < 0 ||
        get_strings(ld, obj, path, "excluded_categories", NULL, &c->excluded_categories, &c->n_excluded_categories) < 0 ||
        get_strings(ld, obj, path, "products", NULL, &c->products, &c->n_products) < 0 ||
        get_strings(ld, obj, path, "methods", &method_set, &c->methods, &c->n_methods) < 0)
        return -1;
    rc = member(ld, obj, path, "ambassadors_only", false, &v, p);
    if (rc == 0 && read_bool(ld, v, p, &c->ambassadors_only) < 0)
        return -1;
    rc = member(ld, obj, path, "thresholds", false, &v, p);
    if (rc == 0 && read_int_list(ld, v, p, V_POSITIVE, "thresholds", &c->thresholds, &c->n_thresholds) < 0)
        return -1;
    rc = member(ld, obj, path, "bands", false, &v, p);
    if (rc == 0 && bands_read(ld, v, p, c) < 0)
        return -1;
    rc = member(ld, obj, path, "ladders", false, &v, p);
    if (rc == 0 && ladders_read(ld, v, p, c) < 0)
        return -1;

    /* the window */
    if (c->ends_at <= c->starts_at) {
        path_key(p, path, "ends_at");
        return fail(ld, p, "must be after starts_at (the window is [starts_at, ends_at))");
    }
    if (c->settles_at < c->ends_at) {
        path_key(p, path, "settles_at");
        return fail(ld, p, "must not be before ends_at");
    }
    if (c->draw_expires_at != DASHI_TIME_NONE && c->draw_expires_at <= c->starts_at) {
        path_key(p, path, "draw_expires_at");
        return fail(ld, p, "must be after starts_at");
    }

    /* what each kind needs */
    switch (c->kind) {
    case DASHI_PROGRAM_FIRST_ORDER_BONUS:
        if (require(ld, path, "bands", c->n_bands > 0, c) < 0 ||
            require(ld, path, "bonus_base_cap", c->bonus_base_cap != DASHI_INT_NONE, c) < 0)
            return -1;
        break;
    case DASHI_PROGRAM_FIRST_PURCHASE_LADDER:
        if (require(ld, path, "ladders", c->n_ladders > 0, c) < 0)
            return -1;
        break;
    case DASHI_PROGRAM_VERIFIED_LADDER:
        if (require(ld, path, "ladders", c->n_ladders > 0, c) < 0 ||
            require(ld, path, "methods", c->n_methods > 0, c) < 0)
            return -1;
        break;
    case DASHI_PROGRAM_PRODUCT_LADDER:
        if (require(ld, path, "ladders", c->n_ladders > 0, c) < 0 ||
            require(ld, path, "products", c->n_products > 0, c) < 0)
            return -1;
        break;
    case DASHI_PROGRAM_DRAW_PER_PURCHASE:
        if (require(ld, path, "draw_expires_at", c->draw_expires_at != DASHI_TIME_NONE, c) < 0)
            return -1;
        break;
    case DASHI_PROGRAM_BUYER_DRAW:
        if (require(ld, path, "draw_expires_at", c->draw_expires_at != DASHI_TIME_NONE, c) < 0 ||
            require(ld, path, "products", c->n_products > 0, c) < 0)
            return -1;
        break;
    case DASHI_PROGRAM_LEADERBOARD:
        if (require(ld, path, "thresholds", c->n_thresholds > 0, c) < 0)
            return -1;
        if (c->n_ladders == 0 && leaderboard_ladder(ld, path, c) < 0)
            return -1;
        break;
    default:
        break;
    }
    return 0;
}

/* ---------------------------------------------------------------- life cycle */

static void ruleset_clear(dashi_ruleset *set) {
    free(set->version);
    strv_free(set->blocklist, set->n_blocklist);
    strv_free(set->eligible_categories, set->n_eligible_categories);
    free(set->installment_offsets_days);
}

static void campaign_clear(dashi_campaign *c) {
    free(c->id);
    free(c->name);
    free(c->campaign_id);
    strv_free(c->excluded_categories, c->n_excluded_categories);
    strv_free(c->products, c->n_products);
    strv_free(c->methods, c->n_methods);
    for (size_t i = 0; c->ladders && i < c->n_ladders; i++) {
        free(c->ladders[i].name);
        free(c->ladders[i].steps);
    }
    free(c->ladders);
    free(c->bands);
    free(c->thresholds);
}

void dashi_rules_destroy(dashi_rules *rules) {
    if (!rules)
        return;
    for (size_t i = 0; rules->sets && i < rules->n_sets; i++)
        ruleset_clear(&rules->sets[i]);
    for (size_t i = 0; rules->campaigns && i < rules->n_campaigns; i++)
        campaign_clear(&rules->campaigns[i]);
    free(rules->sets);
    free(rules->campaigns);
    free(rules->source);
    free(rules->name);
    free(rules);
}

static int rules_read_periods(const loader *ld, const json_t *doc, dashi_rules *rules) {
    leaf lv[MAX_LEAVES];
    size_t n_leaves = leaves_expand(lv);
    const json_t *periods = json_object_get(doc, "periods");
    char p[PATH_LEN];
    if (!json_is_array(periods) || json_array_size(periods) == 0)
        return fail_got(ld, "periods", "a non-empty list of periods", periods);
    rules->sets = calloc(json_array_size(periods), sizeof *rules->sets);
    if (!rules->sets)
        return fail(ld, "periods", "out of memory");
    rules->n_sets = json_array_size(periods);
    for (size_t i = 0; i < rules->n_sets; i++)
        if (period_header(ld, periods, i, rules->sets) < 0)
            return -1;
    for (size_t i = 0; i < rules->n_sets; i++) {
        path_index(p, "periods", i);
        if (period_check_written(ld, lv, n_leaves, json_array_get(periods, i), "", p) < 0)
            return -1;
    }
    for (size_t i = 0; i < rules->n_sets; i++) {
        if (period_resolve(ld, lv, n_leaves, periods, i, &rules->sets[i]) < 0)
            return -1;
        rules->sets[i].until = i + 1 < rules->n_sets ? rules->sets[i + 1].from : DASHI_TIME_NONE;
    }
    return 0;
}

static int rules_read_campaigns(const loader *ld, const json_t *doc, dashi_rules *rules) {
    const json_t *list = json_object_get(doc, "campaigns");
    char p[PATH_LEN], q[PATH_LEN];
    if (!list)
        return 0;
    if (!json_is_array(list))
        return fail_got(ld, "campaigns", "a list of campaigns", list);
    if (json_array_size(list) == 0)
        return 0;
    rules->campaigns = calloc(json_array_size(list), sizeof *rules->campaigns);
    if (!rules->campaigns)
        return fail(ld, "campaigns", "out of memory");
    for (size_t i = 0; i < json_array_size(list); i++) {
        dashi_campaign *c = &rules->campaigns[i];
        rules->n_campaigns = i + 1;
        path_index(p, "campaigns", i);
        if (campaign_read(ld, json_array_get(list, i), p, c) < 0)
            return -1;
        path_key(q, p, "id");
        for (size_t j = 0; j < i; j++)
            if (strcmp(rules->campaigns[j].id, c->id) == 0)
                return fail(ld, q, "duplicate id \"%s\" (also campaigns[%zu])", c->id, j);
    }
    return 0;
}

dashi_rules *dashi_rules_from_json(const json_t *doc, const char *source, char *errstr, size_t errstr_size) {
    loader ld = {source ? source : "rules", errstr, errstr_size};
    dashi_rules *rules = NULL, *result = NULL;
    const json_t *plausible;
    if (check_keys(&ld, doc, "", "a JSON object {\"name\", \"revision\", \"plausible\", \"periods\", \"campaigns\"}",
                   top_keys) < 0)
        goto out;
    rules = calloc(1, sizeof *rules);
    if (!rules || !(rules->source = dup_str(ld.source))) {
        fail(&ld, NULL, "out of memory");
        goto out;
    }
    if (get_str(&ld, doc, "", "name", true, &rules->name) < 0 ||
        get_int(&ld, doc, "", "revision", V_COUNT, true, &rules->revision) < 0)
        goto out;
    plausible = json_object_get(doc, "plausible");
    if (!plausible) {
        fail(&ld, "plausible", "missing");
        goto out;
    }
    if (check_keys(&ld, plausible, "plausible", "an object {\"from\", \"until\"}", plausible_keys) < 0 ||
        get_time(&ld, plausible, "plausible", "from", true, &rules->plausible_from) < 0 ||
        get_time(&ld, plausible, "plausible", "until", true, &rules->plausible_until) < 0)
        goto out;
    if (rules->plausible_until <= rules->plausible_from) {
        fail(&ld, "plausible.until", "must be after plausible.from");
        goto out;
    }
    if (rules_read_periods(&ld, doc, rules) < 0 || rules_read_campaigns(&ld, doc, rules) < 0)
        goto out;
    result = rules;
    rules = NULL;
out:
    dashi_rules_destroy(rules);
    return result;
}

dashi_rules *dashi_rules_load(const char *path, char *errstr, size_t errstr_size) {
    json_error_t jerr;
    json_t *doc = NULL;
    dashi_rules *rules = NULL;
    if (!path) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "rules: no file given");
        goto out;
    }
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (jerr.line > 0)
            dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        else
            dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "%s: %s", path, jerr.text);
        goto out;
    }
    rules = dashi_rules_from_json(doc, path, errstr, errstr_size);
out:
    json_decref(doc);
    return rules;
}

/* ---------------------------------------------------------------- queries */

const dashi_ruleset *dashi_rules_at(const dashi_rules *rules, dashi_time t) {
    size_t lo = 0, hi = rules->n_sets; /* answer: the last set with from <= t, else the first */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (rules->sets[mid].from <= t)
            lo = mid;
        else
            hi = mid;
    }
    return &rules->sets[lo];
}

const dashi_campaign *dashi_rules_campaign(const dashi_rules *rules, const char *id) {
    if (!rules || !id)
        return NULL;
    for (size_t i = 0; i < rules->n_campaigns; i++)
        if (strcmp(rules->campaigns[i].id, id) == 0)
            return &rules->campaigns[i];
    return NULL;
}

bool dashi_ruleset_category_eligible(const dashi_ruleset *set, const char *category) {
    if (!set || !category)
        return false;
    for (size_t i = 0; i < set->n_eligible_categories; i++)
        if (strcmp(set->eligible_categories[i], category) == 0)
            return true;
    return false;
}

dashi_tier dashi_ruleset_tier_for(const dashi_ruleset *set, int64_t basis) {
    dashi_tier tier = DASHI_TIER_DISCIPLE;
    for (int t = 0; t < DASHI_TIER__COUNT; t++)
        if (set->tier_min[t] <= basis)
            tier = (dashi_tier)t;
    return tier;
}

/* ---------------------------------------------------------------- JSON out */

static json_t *time_json(dashi_time t) {
    char buf[DASHI_TIME_STRLEN];
    if (t == DASHI_TIME_NONE)
        return json_null();
    return json_string(dashi_time_format(t, buf));
}

/* The object at the dotted prefix of path (all but its last segment) under root, created as needed. */
static json_t *object_for(json_t *root, const char *path, const char **last) {
    char seg[96];
    json_t *cur = root;
    const char *p = path, *dot;
    while ((dot = strchr(p, '.')) != NULL) {
        size_t len = (size_t)(dot - p);
        json_t *next;
        if (len >= sizeof seg)
            return NULL;
        memcpy(seg, p, len);
        seg[len] = '\0';
        next = json_object_get(cur, seg);
        if (!next) {
            next = json_object();
            if (json_object_set_new(cur, seg, next) < 0)
                return NULL;
        }
        cur = next;
        p = dot + 1;
    }
    *last = p;
    return cur;
}

json_t *dashi_ruleset_to_json(const dashi_ruleset *set) {
    json_t *root = NULL, *result = NULL;
    leaf lv[MAX_LEAVES];
    size_t n;
    if (!set)
        goto out;
    root = json_object();
    if (!root || json_object_set_new(root, "version", json_string(set->version ? set->version : "")) < 0 ||
        json_object_set_new(root, "from", time_json(set->from)) < 0 ||
        json_object_set_new(root, "until", time_json(set->until)) < 0)
        goto out;
    n = leaves_expand(lv);
    for (size_t i = 0; i < n; i++) {
        const char *last;
        json_t *parent = object_for(root, lv[i].path, &last);
        if (!parent || json_object_set_new(parent, last, leaf_to_json(set, &lv[i])) < 0)
            goto out;
    }
    result = root;
    root = NULL;
out:
    json_decref(root);
    return result;
}

static json_t *strv_json(char *const *v, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, json_string(v[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *ladder_json(const dashi_ladder *l) {
    json_t *o = json_object(), *steps = json_array(), *result = NULL;
    if (!o || !steps)
        goto out;
    if (l->name && json_object_set_new(o, "name", json_string(l->name)) < 0)
        goto out;
    if (l->account_kind != DASHI_ENUM_NONE &&
        json_object_set_new(o, "account_kind", json_string(dashi_enum_name(DASHI_ENUM_ACCOUNT_TYPE, l->account_kind))) < 0)
        goto out;
    for (size_t i = 0; i < l->n_steps; i++)
        if (json_array_append_new(steps, json_pack("{sIsI}", "count", (json_int_t)l->steps[i].count, "reward",
                                                   (json_int_t)l->steps[i].reward)) < 0)
            goto out;
    if (json_object_set(o, "steps", steps) < 0)
        goto out;
    result = o;
    o = NULL;
out:
    json_decref(steps);
    json_decref(o);
    return result;
}

json_t *dashi_campaign_to_json(const dashi_campaign *c) {
    json_t *o = NULL, *arr = NULL, *result = NULL;
    int ok = 1;
    if (!c)
        goto out;
    o = json_object();
    if (!o)
        goto out;
    ok &= json_object_set_new(o, "id", json_string(c->id)) == 0;
    ok &= json_object_set_new(o, "name", json_string(c->name)) == 0;
    ok &= json_object_set_new(o, "campaign_id", json_string(c->campaign_id)) == 0;
    ok &= json_object_set_new(o, "kind", json_string((unsigned)c->kind < DASHI_PROGRAM__COUNT
                                                         ? program_kind_names[c->kind] : "?")) == 0;
    ok &= json_object_set_new(o, "starts_at", time_json(c->starts_at)) == 0;
    ok &= json_object_set_new(o, "ends_at", time_json(c->ends_at)) == 0;
    ok &= json_object_set_new(o, "settles_at", time_json(c->settles_at)) == 0;
    if (c->draw_expires_at != DASHI_TIME_NONE)
        ok &= json_object_set_new(o, "draw_expires_at", time_json(c->draw_expires_at)) == 0;
    ok &= json_object_set_new(o, "ambassadors_only", json_boolean(c->ambassadors_only)) == 0;
    ok &= json_object_set_new(o, "unit", json_string(dashi_enum_name(DASHI_ENUM_UNIT, c->unit))) == 0;
    ok &= json_object_set_new(o, "min_paid", json_integer(c->min_paid)) == 0;
    if (c->n_excluded_categories)
        ok &= json_object_set_new(o, "excluded_categories", strv_json(c->excluded_categories, c->n_excluded_categories)) == 0;
    if (c->n_products)
        ok &= json_object_set_new(o, "products", strv_json(c->products, c->n_products)) == 0;
    if (c->n_methods)
        ok &= json_object_set_new(o, "methods", strv_json(c->methods, c->n_methods)) == 0;
    if (c->purchase_ratio_bp)
        ok &= json_object_set_new(o, "purchase_ratio_bp", json_integer(c->purchase_ratio_bp)) == 0;
    if (c->purchase_min_paid)
        ok &= json_object_set_new(o, "purchase_min_paid", json_integer(c->purchase_min_paid)) == 0;
    if (c->n_thresholds) {
        arr = json_array();
        for (size_t i = 0; arr && i < c->n_thresholds; i++)
            ok &= json_array_append_new(arr, json_integer(c->thresholds[i])) == 0;
        ok &= json_object_set(o, "thresholds", arr) == 0;
        json_decref(arr);
        arr = NULL;
    }
    if (c->n_bands) {
        arr = json_array();
        for (size_t i = 0; arr && i < c->n_bands; i++) {
            json_t *b = json_pack("{sI}", "min_base", (json_int_t)c->bands[i].min_base);
            if (b && c->bands[i].max_base != DASHI_INT_NONE)
                ok &= json_object_set_new(b, "max_base", json_integer(c->bands[i].max_base)) == 0;
            if (b)
                ok &= json_object_set_new(b, "rate_bp", json_integer(c->bands[i].rate_bp)) == 0;
            ok &= json_array_append_new(arr, b) == 0;
        }
        ok &= json_object_set(o, "bands", arr) == 0;
        json_decref(arr);
        arr = NULL;
    }
    if (c->bonus_base_cap != DASHI_INT_NONE)
        ok &= json_object_set_new(o, "bonus_base_cap", json_integer(c->bonus_base_cap)) == 0;
    if (c->n_ladders) {
        arr = json_array();
        for (size_t i = 0; arr && i < c->n_ladders; i++)
            ok &= json_array_append_new(arr, ladder_json(&c->ladders[i])) == 0;
        ok &= json_object_set(o, "ladders", arr) == 0;
    }
    if (!ok)
        goto out;
    result = o;
    o = NULL;
out:
    json_decref(arr);
    json_decref(o);
    return result;
}
