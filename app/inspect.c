/* inspect.c — `dashi inspect`: reads the rules modules' records for one subject and prints them readably.
 *
 * Design. A per-call reader (rules, output, the keys found absent, and the
 * records reader of app/records.c, which app/explain.c uses too: one mget per
 * key or one scan per prefix, parsed with jansson, the first back-end error
 * kept) fetches the records. Which keys belong to
 * a subject follows the layouts in the module headers: a customer's orders are
 * found by scanning "ord:" for the uid (orders are keyed by order id), a person's
 * accounts are the member list on the root account's person data, an
 * ambassador's and a campaign's records are looked up for each campaign of the
 * rules. Printing goes through dashi_inspect_readable, which never lets a full
 * attribute hash out. A record that is not JSON (no rules module writes one) is
 * shown by its length only, as it could be anything.
 */
#include "app/inspect.h"

#include "app/records.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctx.h"
#include "core/time.h"

#define MS_2000 946684800000LL  /* 2000-01-01T00:00:00Z: earliest integer read as an instant */
#define MS_2100 4102444800000LL /* 2100-01-01T00:00:00Z: first integer no longer read as one */
#define ATTR_MIN_HASH 20        /* base64url characters after the dot, at least */

typedef struct reader {
    dashi_records rd;  /* the store, and its first back-end error: reads stop after it */
    const dashi_rules *rules;
    FILE *out;
    json_t *absent;    /* keys looked up and not stored, in order */
    size_t shown;      /* records printed */
} reader;

/* ------------------------------------------------------------------ readable form */

bool dashi_inspect_is_attr_id(const char *s) {
    size_t i = 1, n = 0;
    if (!s || !strchr("PEID", s[0]) || !s[0])
        return false;
    if (s[1] == 'h')
        i = 2;
    else
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    if (i == 1 || s[i] != '.')
        return false;
    for (i++; s[i]; i++, n++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_'))
            return false;
    return n >= ATTR_MIN_HASH;
}

/* "P1.sb_UBPRQ…" of an attribute id into buf. */
static const char *attr_short(const char *aid, char *buf, size_t size) {
    const char *dot = strchr(aid, '.');
    snprintf(buf, size, "%.*s%.*s…", (int)(dot - aid) + 1, aid, DASHI_INSPECT_HASH_SHOWN, dot + 1);
    return buf;
}

json_t *dashi_inspect_readable(const json_t *rec) {
    json_t *out = NULL;
    char buf[64];
    if (json_is_object(rec)) {
        const char *k;
        json_t *v;
        if (!(out = json_object()))
            goto out;
        json_object_foreach((json_t *)rec, k, v) {
            json_t *r = dashi_inspect_readable(v);
            if (!r || json_object_set_new(out, dashi_inspect_is_attr_id(k) ? attr_short(k, buf, sizeof buf) : k, r)) {
                json_decref(out);
                out = NULL;
                goto out;
            }
        }
    } else if (json_is_array(rec)) {
        size_t i;
        json_t *v;
        if (!(out = json_array()))
            goto out;
        json_array_foreach(rec, i, v) {
            json_t *r = dashi_inspect_readable(v);
            if (!r || json_array_append_new(out, r)) {
                json_decref(out);
                out = NULL;
                goto out;
            }
        }
    } else if (json_is_string(rec) && dashi_inspect_is_attr_id(json_string_value(rec))) {
        out = json_string(attr_short(json_string_value(rec), buf, sizeof buf));
    } else if (json_is_integer(rec) && json_integer_value(rec) >= MS_2000 && json_integer_value(rec) < MS_2100) {
        char t[DASHI_TIME_STRLEN];
        out = json_string(dashi_time_format((dashi_time)json_integer_value(rec), t));
    } else {
        out = json_deep_copy(rec);
    }
out:
    return out;
}

/* ------------------------------------------------------------------ reading */

/* The record under key (a new reference), or NULL when absent, not JSON, or after an error. */
static json_t *get(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *get(reader *r, const char *fmt, ...) {
    char key[1024];
    json_t *rec = NULL;
    bool stored;
    size_t len = 0;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof key || r->rd.err != DASHI_OK)
        goto out;
    rec = dashi_records_get(&r->rd, key, (size_t)n, &stored, &len);
    if (r->rd.err != DASHI_OK)
        goto out;
    if (!stored) {
        json_array_append_new(r->absent, json_string(key));
        goto out;
    }
    if (!rec)
        rec = json_pack("{s:s,s:I}", "(not JSON: bytes)", "", "length", (json_int_t)len);
out:
    return rec;
}


/* ------------------------------------------------------------------ printing */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_scalar(const json_t *v) {
    return !json_is_object(v) && !json_is_array(v);
}

/* JSON with sorted keys, two spaces per level, and arrays of scalars on one line. */
static void print_json(FILE *f, const json_t *v, int indent) {
    if (is_scalar(v) || (json_is_array(v) && json_array_size(v) == 0) || (json_is_object(v) && !json_object_size(v))) {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fputs(s ? s : "?", f);
        free(s);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        bool flat = true;
        json_array_foreach(v, i, e) flat = flat && is_scalar(e);
        fputc('[', f);
        json_array_foreach(v, i, e) {
            if (flat) {
                fputs(i ? ", " : "", f);
            } else {
                fprintf(f, "%s\n%*s", i ? "," : "", indent + 2, "");
            }
            print_json(f, e, indent + 2);
        }
        if (!flat)
            fprintf(f, "\n%*s", indent, "");
        fputc(']', f);
    } else {
        size_t n = json_object_size(v), k = 0;
        const char **keys = calloc(n, sizeof *keys), *key;
        json_t *e;
        if (!keys) {
            fputs("(out of memory)", f);
            return;
        }
        json_object_foreach((json_t *)v, key, e) keys[k++] = key;
        qsort(keys, n, sizeof *keys, cmp_str);
        fputc('{', f);
        for (k = 0; k < n; k++) {
            json_t *ks = json_string(keys[k]);
            char *kt = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            fprintf(f, "%s\n%*s%s: ", k ? "," : "", indent + 2, "", kt ? kt : "?");
            free(kt);
            json_decref(ks);
            print_json(f, json_object_get(v, keys[k]), indent + 2);
        }
        fprintf(f, "\n%*s}", indent, "");
        free(keys);
    }
}

static void show(reader *r, const char *key, const char *what, const json_t *rec) {
    json_t *rd = dashi_inspect_readable(rec);
    char buf[64];
    const char *colon = strrchr(key, ':');
    /* a key that ends in an attribute id (attr:<aid>) is cut like the values */
    if (colon && dashi_inspect_is_attr_id(colon + 1))
        fprintf(r->out, "-- %.*s%s   (%s)\n", (int)(colon + 1 - key), key, attr_short(colon + 1, buf, sizeof buf),
                what);
    else
        fprintf(r->out, "-- %s   (%s)\n", key, what);
    if (rd)
        print_json(r->out, rd, 0);
    else
        fputs("(out of memory)", r->out);
    fputc('\n', r->out);
    json_decref(rd);
    r->shown++;
}

/* Get key and print it when stored; returns the record (new reference) or NULL. */
static json_t *get_show(reader *r, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static json_t *get_show(reader *r, const char *what, const char *fmt, ...) {
    char key[1024];
    json_t *rec;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    if ((rec = get(r, "%s", key)))
        show(r, key, what, rec);
    return rec;
}

static void show_all(reader *r, const char *prefix, const json_t *found, const char *what) {
    const char *k;
    json_t *v;
    char key[1024];
    json_object_foreach((json_t *)found, k, v) {
        snprintf(key, sizeof key, "%s%s", prefix, k);
        show(r, key, what, v);
    }
}

/* Has this link campaign id been looked up already (several programs share one)? */
static bool seen_before(const dashi_rules *rules, size_t i) {
    for (size_t j = 0; j < i; j++)
        if (strcmp(rules->campaigns[j].campaign_id, rules->campaigns[i].campaign_id) == 0)
            return true;
    return false;
}

static void customer(reader *r, const char *uid) {
    json_t *orders;
    char prefix[64];
    json_decref(get_show(r, "identity: account, its attribute edges, person data on a root", "acct:%s", uid));
    json_decref(get_show(r, "commission: association, C9 cap used, commissioned orders", "asc:%s", uid));
    json_decref(get_show(r, "campaign: the account's campaign facts", "cp:acct:%s", uid));
    for (size_t i = 0; i < r->rules->n_campaigns; i++)
        if (!seen_before(r->rules, i))
            json_decref(get_show(r, "campaign: last link touch of this campaign id", "cp:lk:%s:%s",
                                 r->rules->campaigns[i].campaign_id, uid));
    for (size_t i = 0; i < r->rules->n_campaigns; i++)
        json_decref(get_show(r, "campaign: the account's entry", "cp:%s:u:%s", r->rules->campaigns[i].id, uid));
    snprintf(prefix, sizeof prefix, "ord:");
    if ((orders = dashi_records_scan(&r->rd, prefix, "uid", uid))) {
        show_all(r, prefix, orders, "commission: an order of the account and its one outcome");
        json_decref(orders);
    }
}

static void person(reader *r, const char *uid) {
    json_t *acct = get(r, "acct:%s", uid), *root_acct = NULL, *members, *attrs = json_object();
    const char *root = json_string_value(json_object_get(acct, "p"));
    const json_t *P;
    size_t i;
    json_t *m;
    char key[1024], pid[64];
    if (!acct)
        goto out;
    root = root ? root : uid;
    root_acct = strcmp(root, uid) == 0 ? json_incref(acct) : get(r, "acct:%s", root);
    P = json_object_get(root_acct, "P");
    if (json_string_value(json_object_get(P, "i"))) {
        snprintf(pid, sizeof pid, "%s", json_string_value(json_object_get(P, "i")));
    } else if (strlen(root) + 3 <= sizeof pid) { /* identity.c: "P-" + founding uid, or a digest */
        snprintf(pid, sizeof pid, "P-%s", root);
    } else {
        const char *parts[] = {root};
        dashi_ctx_make_id(pid, sizeof pid, "P", parts, 1);
    }
    fprintf(r->out, "person %s: root account %s, %zu account(s)\n", pid, root,
            json_is_array(json_object_get(P, "m")) ? json_array_size(json_object_get(P, "m")) : (size_t)1);
    members = json_is_array(json_object_get(P, "m")) ? json_deep_copy(json_object_get(P, "m")) : json_array();
    if (!json_array_size(members))
        json_array_append_new(members, json_string(root));
    json_array_foreach(members, i, m) {
        const char *mu = json_string_value(m);
        json_t *rec = mu ? get(r, "acct:%s", mu) : NULL;
        const char *aid;
        json_t *edge;
        if (!rec)
            continue;
        snprintf(key, sizeof key, "acct:%s", mu);
        show(r, key, strcmp(mu, root) == 0 ? "identity: member account, root: holds the person data \"P\""
                                           : "identity: member account (\"p\" names the root)",
             rec);
        json_object_foreach(json_object_get(rec, "e"), aid, edge) json_object_set_new(attrs, aid, json_true());
        json_decref(rec);
    }
    json_decref(members);
    {
        const char *aid;
        json_t *v;
        json_object_foreach(attrs, aid, v) json_decref(
            get_show(r, "identity: attribute (a keyed hash): the accounts sharing it", "attr:%s", aid));
    }
out:
    json_decref(acct);
    json_decref(root_acct);
    json_decref(attrs);
}

static void ambassador(reader *r, const char *uid) {
    json_decref(get_show(r, "commission: ambassador: enrolment, flags, tier, open orders, new users, yunqi",
                         "amb:%s", uid));
    json_decref(get_show(r, "identity: the ambassador's own account", "acct:%s", uid));
    json_decref(get_show(r, "campaign: the account's campaign facts", "cp:acct:%s", uid));
    for (size_t i = 0; i < r->rules->n_campaigns; i++) {
        char what[160];
        snprintf(what, sizeof what, "campaign %s (%s): promoter: ladders, count times, counted users",
                 r->rules->campaigns[i].id, r->rules->campaigns[i].campaign_id);
        json_decref(get_show(r, what, "cp:%s:p:%s", r->rules->campaigns[i].id, uid));
    }
}

static void order(reader *r, const char *id) {
    json_decref(get_show(r, "commission: the order, its items and its one commission outcome \"cm\"", "ord:%s", id));
    json_decref(get_show(r, "campaign: the order as the campaigns counted it", "cp:ord:%s", id));
}

/* One line per promoter: ladders as name n/b steps reward, and the counted users. */
static void promoter_line(reader *r, const dashi_campaign *c, const char *uid, const json_t *p) {
    size_t i;
    json_t *l;
    fprintf(r->out, "  %-24s", uid);
    json_array_foreach(json_object_get(p, "l"), i, l) {
        const char *name = i < c->n_ladders && c->ladders[i].name ? c->ladders[i].name : "ladder";
        fprintf(r->out, "  %s: count %lld, buyers %lld, steps %lld, reward %lld%s", name,
                (long long)json_integer_value(json_object_get(l, "n")),
                (long long)json_integer_value(json_object_get(l, "b")),
                (long long)json_integer_value(json_object_get(l, "s")),
                (long long)json_integer_value(json_object_get(l, "r")), c->unit == DASHI_UNIT_YUNQI ? " yunqi" : " fen");
    }
    if (json_object_get(p, "bonus"))
        fprintf(r->out, "  bonus %lld yunqi (order %s)%s", (long long)json_integer_value(json_object_get(p, "bonus")),
                json_string_value(json_object_get(p, "order")) ? json_string_value(json_object_get(p, "order")) : "-",
                json_is_true(json_object_get(p, "revoked")) ? " revoked" : "");
    if (json_is_true(json_object_get(p, "void")))
        fprintf(r->out, "  VOID");
    fputc('\n', r->out);
}

static void campaign(reader *r, const char *id, const char *promoter, size_t *n_campaigns) {
    for (size_t i = 0; i < r->rules->n_campaigns; i++) {
        const dashi_campaign *c = &r->rules->campaigns[i];
        char prefix[128], what[160];
        json_t *all;
        if (strcmp(c->id, id) != 0 && strcmp(c->campaign_id, id) != 0)
            continue;
        (*n_campaigns)++;
        fprintf(r->out, "== campaign %s (%s), link campaign id %s ==\n", c->id, c->name ? c->name : "",
                c->campaign_id);
        json_decref(get_show(r, "campaign: settlement", "cp:%s:st", c->id));
        if (promoter) {
            snprintf(what, sizeof what, "campaign %s: promoter: ladders, count times, counted users", c->id);
            json_decref(get_show(r, what, "cp:%s:p:%s", c->id, promoter));
            snprintf(prefix, sizeof prefix, "cp:%s:u:", c->id);
            if ((all = dashi_records_scan(&r->rd, prefix, "p", promoter))) {
                show_all(r, prefix, all, "campaign: an entry of a user reached through the promoter's link");
                json_decref(all);
            }
            continue;
        }
        snprintf(prefix, sizeof prefix, "cp:%s:p:", c->id);
        if (!(all = dashi_records_scan(&r->rd, prefix, NULL, NULL)))
            continue;
        fprintf(r->out, "promoters (%zu; records %s<uid>):\n", json_object_size(all), prefix);
        {
            const char *uid;
            json_t *p;
            json_object_foreach(all, uid, p) promoter_line(r, c, uid, p);
        }
        r->shown += json_object_size(all);
        json_decref(all);
    }
}

dashi_err dashi_inspect(dashi_state *st, const dashi_rules *rules, dashi_inspect_what what, const char *id,
                        const char *promoter, FILE *out, char *errstr, size_t errstr_size) {
    reader r = {{0}, rules, out, json_array(), 0};
    static const char *const names[] = {"customer", "person", "ambassador", "campaign", "order"};
    size_t n_campaigns = 0;
    dashi_err err;
    dashi_records_init(&r.rd, st, "inspect", errstr, errstr_size);
    if (!r.absent) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "inspect: out of memory");
        goto out;
    }
    if (what != DASHI_INSPECT_CAMPAIGN)
        fprintf(out, "== %s %s ==\n", names[what], id);
    switch (what) {
    case DASHI_INSPECT_CUSTOMER: customer(&r, id); break;
    case DASHI_INSPECT_PERSON: person(&r, id); break;
    case DASHI_INSPECT_AMBASSADOR: ambassador(&r, id); break;
    case DASHI_INSPECT_ORDER: order(&r, id); break;
    case DASHI_INSPECT_CAMPAIGN: campaign(&r, id, promoter, &n_campaigns); break;
    default:
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "inspect: unknown subject %d", (int)what);
        goto out;
    }
    if ((err = r.rd.err) != DASHI_OK)
        goto out;
    if (what == DASHI_INSPECT_CAMPAIGN && n_campaigns == 0) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "no campaign %s in the rules", id);
        goto out;
    }
    if (json_array_size(r.absent) && r.shown) {
        size_t i;
        json_t *k;
        char buf[64];
        fprintf(out, "not stored:");
        json_array_foreach(r.absent, i, k) {
            const char *s = json_string_value(k), *colon = strrchr(s, ':');
            if (colon && dashi_inspect_is_attr_id(colon + 1))
                fprintf(out, "%s %.*s%s", i ? "," : "", (int)(colon + 1 - s), s, attr_short(colon + 1, buf, sizeof buf));
            else
                fprintf(out, "%s %s", i ? "," : "", s);
        }
        fputc('\n', out);
    }
    if (!r.shown) {
        fprintf(out, "(nothing stored)\n");
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "no record of %s %s%s%s", names[what], id,
                         promoter ? " with promoter " : "", promoter ? promoter : "");
    }
out:
    json_decref(r.absent);
    return err;
}
