/* generate.c — the seeded event generator (see generate.h for the mix).
 *
 * Randomness is splitmix64 seeded from the options, never rand(), so output does
 * not depend on the C library. Each event is built as a jansson object, dumped to
 * text with its instant and a sequence number, and the whole list is sorted (or
 * shuffled) before writing; events of one customer are generated in causal order
 * (register → visit → verify → order → refund) with gaps drawn per customer.
 * Identity values are synthetic (phones 1380000xxxx style, example.com emails);
 * they are clear text on purpose: dashi must hash them.
 */
#include "app/generate.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t below(rng *r, uint64_t n) {
    return n ? next(r) % n : 0;
}

/* true with probability per-mille pm */
static int chance(rng *r, unsigned pm) {
    return below(r, 1000) < pm;
}

typedef struct gen_line {
    dashi_time t;
    uint64_t seq;
    char *text;
} gen_line;

typedef struct gen {
    rng r;
    gen_line *lines;
    size_t n, cap;
    uint64_t seq;
    dashi_err err;
} gen;

static void emit(gen *g, dashi_time t, json_t *ev) {
    char ts[DASHI_TIME_STRLEN], id[32];
    if (g->err != DASHI_OK || !ev) {
        g->err = g->err ? g->err : DASHI_ERR_NOMEM;
        json_decref(ev);
        return;
    }
    snprintf(id, sizeof(id), "g%08llu", (unsigned long long)g->seq);
    json_object_set_new(ev, "event_id", json_string(id));
    json_object_set_new(ev, "occurred_at", json_string(dashi_time_format(t, ts)));
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        gen_line *nl = realloc(g->lines, cap * sizeof(*nl));
        if (!nl) {
            g->err = DASHI_ERR_NOMEM;
            json_decref(ev);
            return;
        }
        g->lines = nl;
        g->cap = cap;
    }
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (!text) {
        g->err = DASHI_ERR_NOMEM;
        return;
    }
    g->lines[g->n++] = (gen_line){t, g->seq++, text};
}

static json_t *identity(const char *kind, const char *value) {
    return json_pack("{s:s,s:s}", "kind", kind, "value", value);
}

static void phone_of(char *buf, size_t size, uint32_t n) {
    snprintf(buf, size, "138%08u", n);
}

static const char *categories[] = {"ecs", "ecs", "ecs", "rds", "oss", "slb", "cdn", "domain", "marketplace", "trademark"};

static json_t *item(rng *r, int idx, const char *order_id) {
    char item_id[96];
    const char *cat = categories[below(r, sizeof(categories) / sizeof(categories[0]))];
    /* log-uniform-ish amount from 9.9 RMB to 5,000 RMB */
    int64_t list = 990 + (int64_t)below(r, 4000) * (int64_t)(1 + below(r, 125));
    int64_t discount = chance(r, 300) ? list * (int64_t)below(r, 30) / 100 : 0;
    snprintf(item_id, sizeof(item_id), "%s-i%d", order_id, idx);
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "item_id", item_id, "product_code", cat, "category", cat,
                     "list_amount", (json_int_t)list, "discount_amount", (json_int_t)discount, "paid_amount",
                     (json_int_t)(list - discount));
}

static int64_t order_paid(const json_t *order) {
    int64_t sum = 0;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(order, "items"), i, it) sum += json_integer_value(json_object_get(it, "paid_amount"));
    return sum;
}

/* Pick an ambassador with a long tail: a few are very popular. */
static uint32_t pick_ambassador(rng *r, uint32_t n) {
    uint64_t a = below(r, n), b = below(r, n);
    return (uint32_t)(chance(r, 600) ? (a < b ? a : b) * (a < b ? a : b) / (n ? n : 1) : a);
}

static int cmp_line(const void *a, const void *b) {
    const gen_line *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void dashi_gen_opts_default(dashi_gen_opts *o) {
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->ambassadors = 1000;
    o->customers = 10000;
    o->start = dashi_cst_from_civil(2022, 6, 1);
    o->days = 30;
    o->sorted = 1;
}

static void gen_ambassadors(gen *g, const dashi_gen_opts *o) {
    char uid[32], phone[32];
    for (uint32_t a = 0; a < o->ambassadors; a++) {
        dashi_time t = o->start - (dashi_time)(1 + below(&g->r, 60)) * DASHI_MS_PER_DAY +
                       (dashi_time)below(&g->r, DASHI_MS_PER_DAY);
        snprintf(uid, sizeof(uid), "amb%05u", a);
        phone_of(phone, sizeof(phone), 90000000u + a);
        emit(g, t, json_pack("{s:s,s:s,s:s,s:s,s:[o]}", "type", "AccountRegistered", "uid", uid, "account_type",
                             "PERSONAL", "method", "PASSWORD", "identities", identity("PHONE", phone)));
        emit(g, t + 5 * DASHI_MS_PER_MIN, json_pack("{s:s,s:s}", "type", "AmbassadorEnrolled", "uid", uid));
        if (chance(&g->r, 300))
            emit(g, o->start + 6 * DASHI_MS_PER_DAY + (dashi_time)below(&g->r, 5 * DASHI_MS_PER_DAY),
                 json_pack("{s:s,s:s,s:s}", "type", "CampaignEnrolled", "uid", uid, "campaign_id",
                           chance(&g->r, 800) ? "invite-2206" : "designated-2206"));
        if (chance(&g->r, 10))
            emit(g, t + DASHI_MS_PER_HOUR, json_pack("{s:s,s:s,s:s,s:b}", "type", "AccountFlagged", "uid", uid,
                                                     "flag", "EMPLOYEE", "set", 1));
    }
}

static void gen_orders(gen *g, const dashi_gen_opts *o, const char *uid, dashi_time t, const char *campaign,
                       uint32_t c) {
    char order_id[64], cart_id[64];
    int n_orders = chance(&g->r, 100) ? 3 : chance(&g->r, 200) ? 2 : 1;
    snprintf(cart_id, sizeof(cart_id), "cart-%s", uid);
    for (int k = 0; k < n_orders; k++) {
        snprintf(order_id, sizeof(order_id), "o-%s-%d", uid, k);
        json_t *items = json_array();
        int n_items = 1 + (int)below(&g->r, 2);
        for (int i = 0; i < n_items; i++)
            json_array_append_new(items, item(&g->r, i, order_id));
        dashi_time ot = t + (dashi_time)k * (k == 1 && n_orders == 2 ? 9 * DASHI_MS_PER_DAY : 2 * DASHI_MS_PER_SEC);
        json_t *ord = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "type", "OrderPaid", "order_id", order_id, "uid", uid,
                                "order_type", chance(&g->r, 40) ? "RENEWAL" : "NEW", "billing",
                                chance(&g->r, 100) ? "POSTPAID" : "PREPAID", "items", items);
        if (n_orders == 3)
            json_object_set_new(ord, "cart_id", json_string(cart_id));
        if (campaign)
            json_object_set_new(ord, "campaign_id", json_string(campaign));
        int64_t paid = order_paid(ord);
        emit(g, ot, ord);
        if (paid > 0 && chance(&g->r, 120)) {
            int full = chance(&g->r, 650);
            int late = chance(&g->r, 150);
            dashi_time rt = ot + (dashi_time)(late ? 31 + below(&g->r, 20) : 1 + below(&g->r, 25)) * DASHI_MS_PER_DAY;
            int64_t amount = full ? paid : 1 + (int64_t)below(&g->r, (uint64_t)paid);
            emit(g, rt, json_pack("{s:s,s:s,s:s,s:s,s:I}", "type", "OrderRefunded", "order_id", order_id, "uid",
                                  uid, "kind", chance(&g->r, 800) ? "REFUND" : "DOWNGRADE", "amount",
                                  (json_int_t)amount));
        }
    }
    (void)o;
    (void)c;
}

static void gen_customers(gen *g, const dashi_gen_opts *o) {
    char uid[32], amb[32], phone[32], email[64], link[64], idd[32];
    for (uint32_t c = 0; c < o->customers; c++) {
        uint32_t a = pick_ambassador(&g->r, o->ambassadors ? o->ambassadors : 1);
        snprintf(uid, sizeof(uid), "cust%06u", c);
        snprintf(amb, sizeof(amb), "amb%05u", a);
        dashi_time t = o->start + (dashi_time)below(&g->r, (uint64_t)o->days * DASHI_MS_PER_DAY);
        /* shared identities: ~3% reuse an earlier customer's phone, 0.5% the ambassador's,
         * 0.3% a company switchboard shared by many */
        if (c > 0 && chance(&g->r, 30))
            phone_of(phone, sizeof(phone), (uint32_t)below(&g->r, c));
        else if (chance(&g->r, 5))
            phone_of(phone, sizeof(phone), 90000000u + a);
        else if (chance(&g->r, 3))
            snprintf(phone, sizeof(phone), "4008000000");
        else
            phone_of(phone, sizeof(phone), c);
        json_t *ids = json_array();
        json_array_append_new(ids, identity("PHONE", phone));
        if (chance(&g->r, 500)) {
            snprintf(email, sizeof(email), "User.%u+promo@Example.com", c);
            json_array_append_new(ids, identity("EMAIL", email));
        }
        const char *campaign = chance(&g->r, 350) ? "invite-2206" : chance(&g->r, 60) ? "designated-2206" : NULL;
        snprintf(link, sizeof(link), "l-%s%s%s", amb, campaign ? "-" : "", campaign ? campaign : "");
        unsigned how = (unsigned)below(&g->r, 100);
        json_t *reg = json_pack("{s:s,s:s,s:s,s:s,s:o}", "type", "AccountRegistered", "uid", uid, "account_type",
                                chance(&g->r, 150) ? "ENTERPRISE" : "PERSONAL", "method",
                                chance(&g->r, 50) ? "OTHER" : chance(&g->r, 500) ? "PHONE_CODE" : "PASSWORD",
                                "identities", ids);
        dashi_time reg_t = t;
        if (how < 60) { /* registration through the link */
            json_t *ref = json_pack("{s:s,s:s}", "ambassador_uid", amb, "link_id", link);
            if (campaign)
                json_object_set_new(ref, "campaign_id", json_string(campaign));
            json_object_set_new(reg, "referral", ref);
        } else {
            reg_t = t - (dashi_time)(1 + below(&g->r, 90)) * DASHI_MS_PER_DAY;
        }
        emit(g, reg_t, reg);
        if (how >= 60 && how < 90) { /* existing account logs in through a link */
            json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "LinkVisited", "uid", uid, "ambassador_uid", amb,
                                  "link_id", link, "logged_in", 1);
            if (campaign)
                json_object_set_new(v, "campaign_id", json_string(campaign));
            emit(g, t, v);
        }
        if (chance(&g->r, 150)) { /* a second ambassador's link later: last touch or protected */
            char amb2[32];
            snprintf(amb2, sizeof(amb2), "amb%05u", pick_ambassador(&g->r, o->ambassadors ? o->ambassadors : 1));
            emit(g, t + (dashi_time)(1 + below(&g->r, 10)) * DASHI_MS_PER_DAY,
                 json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "LinkVisited", "uid", uid, "ambassador_uid", amb2,
                           "link_id", "l-other", "logged_in", 1));
        }
        dashi_time vt = t + (dashi_time)below(&g->r, 3 * DASHI_MS_PER_DAY);
        if (chance(&g->r, 500)) {
            snprintf(idd, sizeof(idd), "11010119900101%04u", chance(&g->r, 20) && c ? (unsigned)below(&g->r, c) % 10000 : c % 10000);
            emit(g, vt, json_pack("{s:s,s:s,s:s,s:[o]}", "type", "RealNameVerified", "uid", uid, "kind",
                                  chance(&g->r, 150) ? "ENTERPRISE" : "PERSONAL", "identities",
                                  identity("ID_DOC", idd)));
        }
        if (chance(&g->r, 10))
            emit(g, t - DASHI_MS_PER_HOUR, json_pack("{s:s,s:s,s:s}", "type", "CustomerBound", "uid", uid, "binding", "CBM"));
        if (chance(&g->r, 550))
            gen_orders(g, o, uid, vt + (dashi_time)below(&g->r, 35 * DASHI_MS_PER_DAY), campaign, c);
    }
}

dashi_err dashi_generate(const dashi_gen_opts *o, FILE *out, uint64_t *n_events, char *errstr, size_t errstr_size) {
    gen g;
    memset(&g, 0, sizeof(g));
    g.r.s = o->seed * 0x2545F4914F6CDD1DULL + 1;
    gen_ambassadors(&g, o);
    gen_customers(&g, o);
    dashi_err err = g.err;
    if (err != DASHI_OK) {
        dashi_errf(err, errstr, errstr_size, "generator: out of memory");
        goto out;
    }
    if (o->sorted) {
        qsort(g.lines, g.n, sizeof(*g.lines), cmp_line);
    } else {
        for (size_t i = g.n; i > 1; i--) { /* Fisher–Yates */
            size_t j = (size_t)below(&g.r, i);
            gen_line tmp = g.lines[i - 1];
            g.lines[i - 1] = g.lines[j];
            g.lines[j] = tmp;
        }
    }
    for (size_t i = 0; i < g.n; i++)
        if (fputs(g.lines[i].text, out) == EOF || fputc('\n', out) == EOF) {
            err = dashi_errf(DASHI_ERR_IO, errstr, errstr_size, "generator: write failed");
            goto out;
        }
    *n_events = g.n;
out:
    for (size_t i = 0; i < g.n; i++)
        free(g.lines[i].text);
    free(g.lines);
    return err;
}
