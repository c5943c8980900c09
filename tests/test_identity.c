/* test_identity.c — the same-person graph (core/identity.c) via the engine: links, T+0 decisions, guards, alerts.
 *
 * Each test runs config/rules.json (or its rule set with one field changed in
 * place) with the shared harness (tests/support/harness.h): every input event goes
 * through dashi_engine_process, which fires the due timers first ("sp:" timers end
 * the T+0 day on stream time), runs identity → commission → campaign and commits
 * the step with its de-duplication marker. Payments are recorded and the person
 * graph is read by calling identity's own functions in steps of the test's own
 * over the harness's view (pay, person, same). Every test runs twice: suite
 * "identity" over the in-memory store, suite "identity_redis" over a throw-away
 * redis-server (tests/support), so both back ends pass the same tests.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modules.h"
#include "tests/support/harness.h"
#include "tests/support/redis_server.h"

static dashi_test_redis *srv; /* NULL for the in-memory suite */
static dashi_harness *h;
static dashi_ruleset *custom; /* the rule set a test edits (customize), NULL when none */
static dashi_ruleset saved;   /* ... as it was before */

static dashi_time T(const char *s) {
    return dashi_harness_time(s);
}

static void start(void) {
    dashi_harness_opts opts = {.state = srv ? dashi_test_redis_url(srv) : NULL, .id_digits = 5};
    h = dashi_harness_start(&opts);
    custom = NULL;
}

static void setup(void) {
    srv = NULL;
    start();
}

static void setup_redis(void) {
    char err[512];
    srv = dashi_test_redis_start(err, sizeof err);
    cr_assert_not_null(srv, "redis-server: %s", err);
    start();
}

static void teardown(void) {
    dashi_harness_stop(h);
    h = NULL;
    dashi_test_redis_stop(srv);
    srv = NULL;
}

/* A fresh state in the same back end (same server), for tests that run twice. */
static void restart(void) {
    dashi_harness_stop(h);
    start();
}

/* Edit the rule set in force at `at` in place (the engine reads the harness's rules
 * at every step); uncustomize() puts it back. */
static void customize(const char *at) {
    dashi_rules *rules = dashi_harness_rules(h);
    custom = &rules->sets[dashi_rules_at(rules, T(at)) - rules->sets];
    saved = *custom;
}

static void uncustomize(void) {
    *custom = saved;
    custom = NULL;
}

/* AccountRegistered with identities (JSON array text) and an optional referring ambassador. */
static void reg(const char *at, const char *uid, const char *identities, const char *amb) {
    char referral[256] = "";
    if (amb)
        snprintf(referral, sizeof referral, ",\"referral\":{\"ambassador_uid\":\"%s\",\"link_id\":\"l-%s\"}", amb, amb);
    dashi_harness_feed_ok(h, "\"type\":\"AccountRegistered\",\"occurred_at\":\"%s\",\"uid\":\"%s\","
                             "\"account_type\":\"PERSONAL\",\"method\":\"PASSWORD\",\"identities\":%s%s",
                             at, uid, identities, referral);
}

static void verify(const char *at, const char *uid, const char *identities) {
    dashi_harness_feed_ok(h, "\"type\":\"RealNameVerified\",\"occurred_at\":\"%s\",\"uid\":\"%s\","
                             "\"kind\":\"PERSONAL\",\"identities\":%s", at, uid, identities);
}

static void change(const char *at, const char *uid, const char *added, const char *removed) {
    dashi_harness_feed_ok(h, "\"type\":\"IdentityChanged\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"added\":%s,"
                             "\"removed\":%s", at, uid, added, removed);
}

static void enroll(const char *at, const char *uid) {
    dashi_harness_feed_ok(h, "\"type\":\"AmbassadorEnrolled\",\"occurred_at\":\"%s\",\"uid\":\"%s\"", at, uid);
}

static void visit(const char *at, const char *uid, const char *amb, bool logged_in) {
    dashi_harness_feed_ok(h, "\"type\":\"LinkVisited\",\"occurred_at\":\"%s\",\"uid\":\"%s\",\"ambassador_uid\":\"%s\","
                             "\"link_id\":\"l1\",\"logged_in\":%s", at, uid, amb, logged_in ? "true" : "false");
}

/* A payment recorded by identity's own dashi_identity_record_payment in a step of
 * the test's own: these tests need "this person has paid" and nothing else, where
 * an OrderPaid would also run commission and campaign on an order. */
static void pay(const char *at, const char *uid, const char *order, const char *cart) {
    dashi_ctx ctx;
    dashi_harness_ctx_begin(h, &ctx, T(at), order);
    dashi_identity_record_payment(&ctx, uid, order, cart, T(at));
    dashi_harness_ctx_end(h, &ctx, true);
}

static dashi_person_info person(const char *uid) {
    dashi_person_info pi;
    dashi_ctx ctx;
    dashi_harness_ctx_begin(h, &ctx, 0, "q");
    dashi_identity_person(&ctx, uid, &pi);
    dashi_harness_ctx_end(h, &ctx, false);
    return pi;
}

static bool same(const char *a, const char *b) {
    dashi_ctx ctx;
    dashi_harness_ctx_begin(h, &ctx, 0, "q");
    bool yes = dashi_identity_same_person(&ctx, a, b);
    dashi_harness_ctx_end(h, &ctx, false);
    return yes;
}

/* Identity's own queued timers ("sp:"): the engine runs commission too, and an
 * enrolment queues its month timer. */
static size_t n_timers(void) {
    return dashi_harness_timers(h, "sp:");
}

/* ---- output queries ---- */

static const dashi_event *out(size_t i) {
    return dashi_harness_output(h, i);
}

/* The last SamePersonDecision of uid at index >= from, NULL when none. */
static const dashi_same_person_decision *decision(const char *uid, size_t from) {
    const dashi_event *ev = dashi_harness_find(h, DASHI_EV_SAME_PERSON_DECISION, from, -1, "uid", uid, NULL);
    return ev ? &ev->u.same_person_decision : NULL;
}

/* SamePersonDecisions at index >= from, of uid (NULL: of anyone). */
static size_t count_decisions(const char *uid, size_t from) {
    return uid ? dashi_harness_count(h, DASHI_EV_SAME_PERSON_DECISION, from, "uid", uid, NULL)
               : dashi_harness_count(h, DASHI_EV_SAME_PERSON_DECISION, from, NULL);
}

/* The first FraudAlert of kind at index >= from, NULL when none. */
static const dashi_fraud_alert *alert(const char *kind, size_t from) {
    const dashi_event *ev = dashi_harness_find(h, DASHI_EV_FRAUD_ALERT, from, 0, "kind", kind, NULL);
    return ev ? &ev->u.fraud_alert : NULL;
}

/* FraudAlerts of kind (NULL: of any kind). */
static size_t count_alerts(const char *kind) {
    return kind ? dashi_harness_count(h, DASHI_EV_FRAUD_ALERT, 0, "kind", kind, NULL)
                : dashi_harness_count(h, DASHI_EV_FRAUD_ALERT, 0, NULL);
}

static bool has_subject(const dashi_fraud_alert *fa, const char *uid) {
    for (size_t i = 0; i < fa->n_subject_uids; i++)
        if (strcmp(fa->subject_uids[i], uid) == 0)
            return true;
    return false;
}

static const char *evidence(const dashi_fraud_alert *fa, const char *key) {
    for (size_t i = 0; i < fa->n_evidence; i++)
        if (strcmp(fa->evidence[i].key, key) == 0)
            return fa->evidence[i].value;
    return NULL;
}

static bool matched(const dashi_same_person_decision *d, int kind) {
    for (size_t i = 0; i < d->n_matched_on; i++)
        if (d->matched_on[i] == kind)
            return true;
    return false;
}

#define PHONE(v) "{\"kind\":\"PHONE\",\"value\":\"" v "\"}"
#define EMAIL(v) "{\"kind\":\"EMAIL\",\"value\":\"" v "\"}"
#define IDDOC(v) "{\"kind\":\"ID_DOC\",\"value\":\"" v "\"}"
#define DEVICE(v) "{\"kind\":\"DEVICE\",\"value\":\"" v "\"}"
#define HASHED(k, v) "{\"kind\":\"" k "\",\"value\":\"" v "\",\"hashed\":true}"

TestSuite(identity, .init = setup, .fini = teardown);
TestSuite(identity_redis, .init = setup_redis, .fini = teardown);

/* One test body, run in both suites (options: Criterion test options, never empty). */
#define IDENTITY_TEST_WITH(name, ...)                                                                                  \
    static void name##_body(void);                                                                                     \
    Test(identity, name, __VA_ARGS__) { name##_body(); }                                                               \
    Test(identity_redis, name, __VA_ARGS__) { name##_body(); }                                                         \
    static void name##_body(void)
#define IDENTITY_TEST(name) IDENTITY_TEST_WITH(name, .timeout = 60)

/* ---- S1: linking ---- */

IDENTITY_TEST(new_account_is_a_new_person_with_a_provisional_decision) {
    reg("2022-06-08T10:00:00+08:00", "c1", "[" PHONE("13800000001") "]", NULL);
    const dashi_same_person_decision *d = decision("c1", 0);
    cr_assert_not_null(d);
    cr_assert_eq(d->status, DASHI_SP_NEW_PERSON);
    cr_assert_str_eq(d->person_id, "P-c1");
    cr_assert_not(d->final);
    cr_assert_not(d->paid_before);
    cr_assert_eq(d->n_matched_on, 0);
    cr_assert_eq(d->decided_at, T("2022-06-08T10:00:00+08:00"));
    dashi_person_info pi = person("c1");
    cr_assert(pi.known);
    cr_assert_str_eq(pi.person_id, "P-c1");
    cr_assert_not(pi.paid_before);
    cr_assert_eq(pi.first_paid_at, DASHI_TIME_NONE);
    cr_assert_eq(n_timers(), 1);
}

IDENTITY_TEST(shared_phone_in_two_spellings_links) {
    reg("2022-06-08T10:00:00+08:00", "c1", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T11:00:00+08:00", "c2", "[" PHONE("+86 138-0000-0001") "]", NULL);
    const dashi_same_person_decision *d2 = decision("c2", 0), *d1 = decision("c1", dashi_harness_mark(h));
    cr_assert_eq(d2->status, DASHI_SP_SAME_PERSON);
    cr_assert_str_eq(d2->person_id, "P-c1");
    cr_assert_eq(d2->n_matched_on, 1);
    cr_assert(matched(d2, DASHI_ID_PHONE));
    cr_assert_not_null(d1, "the first account's status changed too");
    cr_assert_eq(d1->status, DASHI_SP_SAME_PERSON);
    cr_assert(same("c1", "c2"));
    cr_assert_str_eq(person("c2").person_id, "P-c1");
}

IDENTITY_TEST(gmail_normalization_links) {
    reg("2022-06-08T10:00:00+08:00", "c1", "[" EMAIL("John.Smith@gmail.com") "]", NULL);
    reg("2022-06-08T10:05:00+08:00", "c2", "[" EMAIL(" johnsmith+cloud@GoogleMail.com ") "]", NULL);
    reg("2022-06-08T10:06:00+08:00", "c3", "[" EMAIL("john.smith@qq.com") "]", NULL);
    reg("2022-06-08T10:07:00+08:00", "c4", "[" EMAIL("johnsmith@qq.com") "]", NULL);
    cr_assert(same("c1", "c2"));
    cr_assert(matched(decision("c2", 0), DASHI_ID_EMAIL));
    cr_assert_not(same("c3", "c4"), "dots count outside gmail");
    cr_assert_not(same("c1", "c3"));
}

IDENTITY_TEST(sharing_is_transitive) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "b", "[" PHONE("13800000001") "," EMAIL("b@example.com") "]", NULL);
    reg("2022-06-08T10:02:00+08:00", "c", "[" EMAIL("B@Example.com") "]", NULL);
    cr_assert(same("a", "c"));
    cr_assert_str_eq(person("c").person_id, "P-a");
    const dashi_same_person_decision *dc = decision("c", 0), *db = decision("b", 0), *da = decision("a", 0);
    cr_assert(matched(dc, DASHI_ID_EMAIL));
    cr_assert_not(matched(dc, DASHI_ID_PHONE));
    cr_assert(matched(db, DASHI_ID_EMAIL) && matched(db, DASHI_ID_PHONE));
    cr_assert(matched(da, DASHI_ID_PHONE) && !matched(da, DASHI_ID_EMAIL));
}

IDENTITY_TEST(two_persons_joined_by_one_account_keep_the_oldest_id) {
    reg("2022-06-08T10:00:00+08:00", "x1", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "x2", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T09:00:00+08:00", "y1", "[" PHONE("13900000001") "]", NULL); /* earlier founder */
    reg("2022-06-08T11:00:00+08:00", "z", "[" PHONE("13800000001") "," PHONE("13900000001") "]", NULL);
    cr_assert(same("x1", "y1"));
    cr_assert_str_eq(person("x1").person_id, "P-y1");
    cr_assert_str_eq(person("x2").person_id, "P-y1");
    /* x1 and x2 changed person id: each gets a new decision */
    cr_assert_str_eq(decision("x1", dashi_harness_mark(h))->person_id, "P-y1");
    cr_assert_str_eq(decision("x2", dashi_harness_mark(h))->person_id, "P-y1");
}

IDENTITY_TEST(unknown_account_and_payment_before_registration) {
    dashi_person_info pi = person("ghost");
    cr_assert_not(pi.known);
    cr_assert_str_eq(pi.person_id, "");
    cr_assert_not(pi.paid_before);
    pay("2022-06-08T10:00:00+08:00", "ghost", "o1", "cart1");
    pi = person("ghost");
    cr_assert_not(pi.known);
    cr_assert_str_eq(pi.person_id, "");
    cr_assert(pi.paid_before);
    cr_assert_str_eq(pi.first_order_id, "o1");
    cr_assert_str_eq(pi.first_cart_id, "cart1");
    cr_assert_eq(pi.first_paid_at, T("2022-06-08T10:00:00+08:00"));
    cr_assert_not(same("ghost", "c1"));
    cr_assert(same("ghost", "ghost"));
    reg("2022-06-09T10:00:00+08:00", "ghost", "[" PHONE("13800000009") "]", NULL);
    pi = person("ghost");
    cr_assert(pi.known);
    cr_assert_str_eq(pi.person_id, "P-ghost");
    cr_assert(pi.paid_before);
    cr_assert(decision("ghost", 0)->paid_before);
}

IDENTITY_TEST(paid_before_is_known_at_once_for_every_account) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    pay("2022-06-08T12:00:00+08:00", "a", "o1", NULL);
    pay("2022-06-08T13:00:00+08:00", "a", "o2", NULL); /* not the first: ignored */
    reg("2022-06-09T10:00:00+08:00", "b", "[" PHONE("13800000001") "]", NULL);
    dashi_person_info pi = person("b");
    cr_assert(pi.paid_before);
    cr_assert_str_eq(pi.first_order_id, "o1");
    cr_assert_str_eq(pi.first_cart_id, "");
    cr_assert(decision("b", 0)->paid_before);
    /* a payment by a linked account marks the whole person */
    reg("2022-06-09T10:00:00+08:00", "c", "[" PHONE("13900000001") "]", NULL);
    reg("2022-06-09T10:30:00+08:00", "d", "[" PHONE("13900000001") "]", NULL);
    pay("2022-06-09T11:00:00+08:00", "d", "o3", "k3");
    cr_assert(person("c").paid_before);
    cr_assert_str_eq(person("c").first_order_id, "o3");
    cr_assert_str_eq(person("c").first_cart_id, "k3");
}

IDENTITY_TEST(merge_keeps_the_earliest_first_payment) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:00:00+08:00", "b", "[" PHONE("13900000001") "]", NULL);
    pay("2022-06-08T12:00:00+08:00", "b", "ob", NULL);
    pay("2022-06-08T13:00:00+08:00", "a", "oa", NULL);
    change("2022-06-10T10:00:00+08:00", "a", "[" PHONE("13900000001") "]", "[]");
    cr_assert_str_eq(person("a").first_order_id, "ob");
    cr_assert_str_eq(person("a").person_id, "P-a"); /* same founding time: smaller id */
}

/* ---- S2: T+0 ---- */

IDENTITY_TEST(final_at_midnight_link_one_second_before_is_provisional) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:00:00+08:00", "b", "[" PHONE("13900000001") "]", NULL);
    verify("2022-06-08T23:59:59+08:00", "b", "[" IDDOC("110105194912310021") "," PHONE("13800000001") "]");
    const dashi_same_person_decision *d = decision("b", dashi_harness_mark(h));
    cr_assert_eq(d->status, DASHI_SP_SAME_PERSON);
    cr_assert_not(d->final);
    dashi_harness_advance(h, T("2022-06-08T23:59:59.999+08:00"));
    cr_assert_eq(count_decisions(NULL, dashi_harness_mark(h)), 2, "nothing fires before 24:00");
    dashi_harness_advance(h, T("2022-06-09T00:00:00+08:00"));
    d = decision("b", dashi_harness_mark(h));
    cr_assert_eq(d->status, DASHI_SP_SAME_PERSON);
    cr_assert(d->final);
    cr_assert_eq(d->decided_at, T("2022-06-09T00:00:00+08:00"));
    cr_assert(decision("a", 0)->final);
    cr_assert_eq(n_timers(), 0);
}

IDENTITY_TEST(link_at_midnight_comes_after_the_final_decision) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:00:00+08:00", "b", "[" PHONE("13900000001") "]", NULL);
    size_t before = dashi_harness_n_outputs(h);
    /* the timer due at 24:00 fires before an event stamped 24:00 */
    verify("2022-06-09T00:00:00+08:00", "b", "[" PHONE("13800000001") "]");
    size_t first_b = before;
    while (!(out(first_b)->type == DASHI_EV_SAME_PERSON_DECISION &&
             strcmp(out(first_b)->u.same_person_decision.uid, "b") == 0))
        first_b++;
    cr_assert_eq(out(first_b)->u.same_person_decision.status, DASHI_SP_NEW_PERSON);
    cr_assert(out(first_b)->u.same_person_decision.final);
    const dashi_same_person_decision *d = decision("b", first_b + 1);
    cr_assert_eq(d->status, DASHI_SP_SAME_PERSON);
    cr_assert(d->final, "a decision after the T+0 day is final");
}

IDENTITY_TEST(before_2020_08_21_the_decision_is_t_plus_3) {
    reg("2019-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    dashi_harness_advance(h, T("2019-06-11T23:59:59+08:00"));
    cr_assert_eq(count_decisions("a", 0), 1);
    dashi_harness_advance(h, T("2019-06-12T00:00:00+08:00"));
    cr_assert_eq(count_decisions("a", 0), 2);
    cr_assert(decision("a", 0)->final);
}

IDENTITY_TEST(decision_ids_are_deterministic_and_unique) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "b", "[" PHONE("13800000001") "]", NULL);
    dashi_harness_advance(h, T("2022-06-10T00:00:00+08:00"));
    char ids[16][32];
    size_t n = 0;
    for (size_t i = 0; i < dashi_harness_n_outputs(h) && n < 16; i++)
        if (out(i)->type == DASHI_EV_SAME_PERSON_DECISION)
            snprintf(ids[n++], 32, "%s", out(i)->u.same_person_decision.decision_id);
    cr_assert_eq(n, 5); /* a prov, b prov, a SAME, a final, b final */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_str_neq(ids[i], ids[j]);
    /* the same inputs again give the same ids */
    restart();
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "b", "[" PHONE("13800000001") "]", NULL);
    dashi_harness_advance(h, T("2022-06-10T00:00:00+08:00"));
    size_t k = 0;
    for (size_t i = 0; i < dashi_harness_n_outputs(h); i++)
        if (out(i)->type == DASHI_EV_SAME_PERSON_DECISION)
            cr_assert_str_eq(out(i)->u.same_person_decision.decision_id, ids[k++]);
}

/* ---- S4: a later link ---- */

IDENTITY_TEST(id_document_days_later_still_merges) {
    reg("2022-06-08T10:00:00+08:00", "old", "[" PHONE("13800000001") "]", NULL);
    verify("2022-06-08T11:00:00+08:00", "old", "[" IDDOC("11010519491231002X") "]");
    pay("2022-06-08T12:00:00+08:00", "old", "o-old", NULL);
    reg("2022-06-10T10:00:00+08:00", "new", "[" PHONE("13900000001") "]", "amb");
    dashi_harness_advance(h, T("2022-06-11T00:00:00+08:00"));
    cr_assert(decision("new", 0)->final);
    cr_assert_eq(decision("new", 0)->status, DASHI_SP_NEW_PERSON);
    verify("2022-06-14T15:00:00+08:00", "new", "[" IDDOC("110105 19491231 002x") "]");
    const dashi_same_person_decision *d = decision("new", dashi_harness_mark(h));
    cr_assert_not_null(d);
    cr_assert_eq(d->status, DASHI_SP_SAME_PERSON);
    cr_assert(d->final);
    cr_assert(d->paid_before);
    cr_assert(matched(d, DASHI_ID_ID_DOC));
    cr_assert_str_eq(d->person_id, "P-old");
    cr_assert(same("old", "new"));
    /* the merged person had paid and holds an account referred by amb: MULTI_ACCOUNT */
    const dashi_fraud_alert *fa = alert("MULTI_ACCOUNT", dashi_harness_mark(h));
    cr_assert_not_null(fa);
    cr_assert_str_eq(fa->ambassador_uid, "amb");
    cr_assert(has_subject(fa, "new"));
    cr_assert(has_subject(fa, "old"));
    cr_assert_str_eq(fa->order_id, "o-old");
}

/* ---- S7: guards ---- */

IDENTITY_TEST(super_node_stops_linking_and_alerts) {
    customize("2022-06-08T00:00:00+08:00");
    custom->generic_attribute_limit = 3;
    custom->burst_threshold = 0;
    reg("2022-06-08T10:00:00+08:00", "s1", "[" PHONE("4008001234") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "s2", "[" PHONE("4008001234") "]", NULL);
    reg("2022-06-08T10:02:00+08:00", "s3", "[" PHONE("4008001234") "]", NULL);
    cr_assert(same("s1", "s3"));
    cr_assert_null(alert("GENERIC_ATTRIBUTE", 0));
    reg("2022-06-08T10:03:00+08:00", "s4", "[" PHONE("4008001234") "]", NULL);
    cr_assert_not(same("s1", "s4"), "the 4th account (limit 3) does not link");
    const dashi_fraud_alert *fa = alert("GENERIC_ATTRIBUTE", 0);
    cr_assert_not_null(fa);
    cr_assert_eq(fa->severity, DASHI_SEV_LOW);
    cr_assert(has_subject(fa, "s4") && has_subject(fa, "s1"));
    cr_assert_str_eq(evidence(fa, "kind"), "PHONE");
    cr_assert_str_eq(evidence(fa, "accounts"), "4");
    cr_assert_eq(strlen(evidence(fa, "attribute")), strlen("P1.") + 8);
    cr_assert_eq(decision("s4", 0)->status, DASHI_SP_NEW_PERSON);
    reg("2022-06-08T10:04:00+08:00", "s5", "[" PHONE("4008001234") "]", NULL);
    cr_assert_not(same("s4", "s5"));
    cr_assert_eq(count_alerts("GENERIC_ATTRIBUTE"), 1, "raised once");
    /* other attributes still link */
    reg("2022-06-08T10:05:00+08:00", "s6", "[" PHONE("4008001234") "," EMAIL("s5@example.com") "]", NULL);
    reg("2022-06-08T10:06:00+08:00", "s7", "[" EMAIL("s5@example.com") "]", NULL);
    cr_assert(same("s6", "s7"));
}

IDENTITY_TEST(default_limit_is_twenty) {
    char uid[16];
    for (int i = 0; i < 21; i++) {
        char at[40];
        snprintf(uid, sizeof uid, "g%02d", i);
        snprintf(at, sizeof at, "2022-06-08T%02d:%02d:00+08:00", 1 + i / 2, (i % 2) * 30); /* 2 an hour: no burst */
        reg(at, uid, "[" EMAIL("test@company.example") "]", NULL);
    }
    cr_assert(same("g00", "g19"));
    cr_assert_not(same("g00", "g20"));
    cr_assert_eq(count_alerts("GENERIC_ATTRIBUTE"), 1);
    cr_assert_eq(count_alerts("ATTRIBUTE_BURST"), 0);
}

IDENTITY_TEST(blocklist_never_links) {
    /* config/rules.json block-lists PHONE:+8611111111111 and EMAIL:test@example.com */
    reg("2022-06-08T10:00:00+08:00", "b1", "[" PHONE("11111111111") "," EMAIL("TEST@example.com") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "b2", "[" PHONE("+86 111 1111 1111") "]", NULL);
    reg("2022-06-08T10:02:00+08:00", "b3", "[" EMAIL(" test@example.com") "]", NULL);
    cr_assert_not(same("b1", "b2"));
    cr_assert_not(same("b1", "b3"));
    cr_assert_eq(decision("b2", 0)->status, DASHI_SP_NEW_PERSON);
    cr_assert_eq(count_alerts(NULL), 0);
    /* a hashed value of a block-listed phone is recognised too */
    char hash[DASHI_HASH_STRLEN], err[128], ids[256];
    cr_assert_eq(dashi_identity_hash(dashi_harness_keys(h), DASHI_ID_PHONE, "11111111111", false, hash, sizeof hash,
                                     err, sizeof err),
                 DASHI_OK);
    snprintf(ids, sizeof ids, "[{\"kind\":\"PHONE\",\"value\":\"%s\",\"hashed\":true}]", hash);
    reg("2022-06-08T10:03:00+08:00", "b4", ids, NULL);
    reg("2022-06-08T10:04:00+08:00", "b5", ids, NULL);
    cr_assert_not(same("b4", "b5"));
}

IDENTITY_TEST(kinds_the_rule_set_does_not_link_are_ignored) {
    customize("2022-06-08T00:00:00+08:00");
    custom->link_kinds[DASHI_ID_DEVICE] = false;
    reg("2022-06-08T10:00:00+08:00", "d1", "[" DEVICE("dev-1") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "d2", "[" DEVICE("dev-1") "]", NULL);
    cr_assert_not(same("d1", "d2"));
    uncustomize();
    reg("2022-06-08T10:02:00+08:00", "d3", "[" DEVICE("dev-2") "]", NULL);
    reg("2022-06-08T10:03:00+08:00", "d4", "[" DEVICE("dev-2") "]", NULL);
    cr_assert(same("d3", "d4"));
    cr_assert(matched(decision("d4", 0), DASHI_ID_DEVICE));
}

IDENTITY_TEST(unusable_values_are_skipped) {
    reg("2022-06-08T10:00:00+08:00", "u1", "[" PHONE("  ") "," PHONE("n/a") "," EMAIL("nobody") "]", NULL);
    reg("2022-06-08T10:01:00+08:00", "u2", "[" PHONE("  ") "," PHONE("n/a") "," EMAIL("nobody") "]", NULL);
    cr_assert_not(same("u1", "u2"));
    cr_assert_eq(decision("u2", 0)->status, DASHI_SP_NEW_PERSON);
}

/* ---- hashed inputs and keys ---- */

IDENTITY_TEST(hashed_inputs_link_with_clear_ones_and_with_each_other) {
    char hash[DASHI_HASH_STRLEN], err[128], ids[512];
    cr_assert_eq(dashi_identity_hash(dashi_harness_keys(h), DASHI_ID_PHONE, "13800000001", false, hash, sizeof hash,
                                     err, sizeof err),
                 DASHI_OK);
    reg("2022-06-08T10:00:00+08:00", "h1", "[" PHONE("138 0000 0001") "]", NULL);
    snprintf(ids, sizeof ids, "[{\"kind\":\"PHONE\",\"value\":\" %s \",\"hashed\":true}]", hash);
    reg("2022-06-08T10:01:00+08:00", "h2", ids, NULL);
    cr_assert(same("h1", "h2"), "our own hash form links with the clear value");
    /* a foreign hash form links only with the same foreign value */
    reg("2022-06-08T10:02:00+08:00", "h3", "[" HASHED("ID_DOC", "sha256:9f86d081884c7d659a2feaa0c55ad015") "]", NULL);
    reg("2022-06-08T10:03:00+08:00", "h4", "[" HASHED("ID_DOC", "sha256:9f86d081884c7d659a2feaa0c55ad015") "]", NULL);
    reg("2022-06-08T10:04:00+08:00", "h5", "[" HASHED("EMAIL", "sha256:9f86d081884c7d659a2feaa0c55ad015") "]", NULL);
    cr_assert(same("h3", "h4"));
    cr_assert_not(same("h3", "h5"), "the kind is part of the attribute");
    cr_assert(matched(decision("h4", 0), DASHI_ID_ID_DOC));
    char *all = dashi_harness_dump(h);
    cr_assert_null(strstr(all, "9f86d081884c7d659a2feaa0c55ad015"), "a foreign hash is stored re-hashed (compact)");
    free(all);
}

IDENTITY_TEST(values_stored_before_a_key_rotation_are_found) {
    reg("2022-06-08T10:00:00+08:00", "k1", "[" PHONE("13800000001") "]", NULL);
    /* rotate: version 2 becomes current, version 1 stays in the ring */
    char err[128];
    const char *v2 = "another-secret-for-version-2!";
    cr_assert_eq(dashi_keyring_add(dashi_harness_keys(h), 2, v2, strlen(v2), err, sizeof err), DASHI_OK);
    reg("2022-06-09T10:00:00+08:00", "k2", "[" PHONE("13800000001") "," EMAIL("k2@example.com") "]", NULL);
    cr_assert(same("k1", "k2"));
    reg("2022-06-09T10:01:00+08:00", "k3", "[" EMAIL("k2@example.com") "]", NULL);
    cr_assert(same("k1", "k3"));
    char *all = dashi_harness_dump(h);
    cr_assert_not_null(strstr(all, "attr:P1."), "the old phone attribute keeps version 1");
    cr_assert_not_null(strstr(all, "attr:E2."), "a new attribute is stored under version 2");
    cr_assert_null(strstr(all, "attr:P2."));
    free(all);
}

IDENTITY_TEST(no_clear_identity_value_in_state_or_outputs) {
    reg("2022-06-08T10:00:00+08:00", "amb", "[" PHONE("13912345678") "," EMAIL("Amb.Person@gmail.com") "]", NULL);
    enroll("2022-06-08T10:05:00+08:00", "amb");
    reg("2022-06-08T11:00:00+08:00", "c1", "[" PHONE("13912345678") "," IDDOC("11010519491231002X") "]", "amb");
    verify("2022-06-08T12:00:00+08:00", "c1", "[" IDDOC("11010519491231002X") "," DEVICE("device-abc-777") "]");
    change("2022-06-08T13:00:00+08:00", "c1", "[" EMAIL("other.person@example.com") "]", "[" PHONE("13912345678") "]");
    dashi_harness_advance(h, T("2022-06-10T00:00:00+08:00"));
    cr_assert_gt(count_alerts("SELF_REFERRAL"), 0);
    char *all = dashi_harness_dump(h);
    static const char *const clear[] = {"13912345678", "912345678", "amb.person", "ambperson", "Amb.Person",
                                        "11010519491231002", "device-abc", "other.person", "example.com",
                                        "gmail"};
    for (size_t i = 0; i < sizeof clear / sizeof *clear; i++)
        cr_assert_null(strstr(all, clear[i]), "clear value '%s' found in:\n%s", clear[i], all);
    free(all);
}

/* ---- IdentityChanged ---- */

IDENTITY_TEST(removed_value_closes_the_edge) {
    reg("2022-06-08T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", NULL);
    change("2022-06-09T10:00:00+08:00", "a", "[" PHONE("13900000001") "]", "[" PHONE("+8613800000001") "]");
    reg("2022-06-10T10:00:00+08:00", "b", "[" PHONE("13800000001") "]", NULL);
    cr_assert_not(same("a", "b"), "a recycled number does not link to its former owner");
    reg("2022-06-10T11:00:00+08:00", "c", "[" PHONE("13900000001") "]", NULL);
    cr_assert(same("a", "c"));
    /* adding the old value again reopens the edge */
    change("2022-06-11T10:00:00+08:00", "a", "[" PHONE("13800000001") "]", "[]");
    cr_assert(same("a", "b"));
    /* closing an edge does not split a person already formed */
    change("2022-06-12T10:00:00+08:00", "b", "[]", "[" PHONE("13800000001") "]");
    cr_assert(same("a", "b"));
}

/* ---- S3, S5, R2 alerts ---- */

IDENTITY_TEST(self_referral_at_registration) {
    reg("2022-06-01T09:00:00+08:00", "amb1", "[" PHONE("13900000001") "]", NULL);
    enroll("2022-06-01T09:05:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "cust1", "[" PHONE("139 0000 0001") "]", "amb1");
    const dashi_fraud_alert *fa = alert("SELF_REFERRAL", 0);
    cr_assert_not_null(fa);
    cr_assert_eq(fa->severity, DASHI_SEV_HIGH);
    cr_assert_str_eq(fa->ambassador_uid, "amb1");
    cr_assert(has_subject(fa, "cust1") && has_subject(fa, "amb1"));
    cr_assert_str_eq(evidence(fa, "rule"), "S3");
    cr_assert_str_eq(evidence(fa, "found"), "REGISTRATION");
    cr_assert_str_eq(evidence(fa, "matched_on"), "PHONE");
    cr_assert_str_eq(fa->caused_by, "e00003");
    cr_assert_eq(strncmp(fa->alert_id, "fa-", 3), 0);
    cr_assert_eq(count_alerts(NULL), 1, "no MULTI_ACCOUNT next to the self-referral");
    const dashi_same_person_decision *d = decision("cust1", 0);
    cr_assert_eq(d->status, DASHI_SP_SAME_PERSON);
    cr_assert(matched(d, DASHI_ID_PHONE));
}

IDENTITY_TEST(self_referral_at_a_logged_in_visit) {
    reg("2022-06-01T09:00:00+08:00", "amb1", "[" EMAIL("amb@example.org") "]", NULL);
    enroll("2022-06-01T09:05:00+08:00", "amb1");
    reg("2022-06-02T09:00:00+08:00", "alt", "[" EMAIL("AMB@example.org") "]", NULL);
    visit("2022-06-08T10:00:00+08:00", "alt", "amb1", false);
    cr_assert_null(alert("SELF_REFERRAL", 0), "not logged in: no association");
    visit("2022-06-08T10:01:00+08:00", "alt", "amb1", true);
    const dashi_fraud_alert *fa = alert("SELF_REFERRAL", 0);
    cr_assert_not_null(fa);
    cr_assert_str_eq(evidence(fa, "found"), "LOGIN");
    /* the ambassador on its own link */
    visit("2022-06-08T10:02:00+08:00", "amb1", "amb1", true);
    cr_assert_eq(count_alerts("SELF_REFERRAL"), 2);
}

IDENTITY_TEST(unrelated_customer_raises_nothing) {
    reg("2022-06-01T09:00:00+08:00", "amb1", "[" PHONE("13900000001") "]", NULL);
    enroll("2022-06-01T09:05:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "cust1", "[" PHONE("13800000001") "]", "amb1");
    visit("2022-06-09T10:00:00+08:00", "cust1", "amb1", true);
    dashi_harness_advance(h, T("2022-06-20T00:00:00+08:00"));
    cr_assert_eq(count_alerts(NULL), 0);
    cr_assert_eq(decision("cust1", 0)->status, DASHI_SP_NEW_PERSON);
}

IDENTITY_TEST(ambassador_changing_identity_into_the_buyer) {
    reg("2022-06-01T09:00:00+08:00", "amb1", "[" PHONE("13900000001") "]", NULL);
    enroll("2022-06-01T09:05:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "buyer", "[" PHONE("13800000001") "]", "amb1");
    pay("2022-06-09T10:00:00+08:00", "buyer", "o1", NULL);
    change("2022-06-15T10:00:00+08:00", "amb1", "[" PHONE("13800000001") "]", "[" PHONE("13900000001") "]");
    const dashi_fraud_alert *fa = alert("IDENTITY_CHANGE_TO_BUYER", dashi_harness_mark(h));
    cr_assert_not_null(fa);
    cr_assert_eq(fa->severity, DASHI_SEV_HIGH);
    cr_assert_str_eq(fa->ambassador_uid, "amb1");
    cr_assert(has_subject(fa, "buyer"));
    cr_assert_str_eq(evidence(fa, "rule"), "S5");
    cr_assert(same("amb1", "buyer"));
    cr_assert_str_eq(person("buyer").person_id, "P-amb1");
}

IDENTITY_TEST(buyer_linking_to_the_ambassador_later_is_self_referral) {
    reg("2022-06-01T09:00:00+08:00", "amb1", "[" IDDOC("110105194912310021") "]", NULL);
    enroll("2022-06-01T09:05:00+08:00", "amb1");
    reg("2022-06-08T10:00:00+08:00", "buyer", "[" PHONE("13800000001") "]", "amb1");
    verify("2022-06-12T10:00:00+08:00", "buyer", "[" IDDOC("110105194912310021") "]");
    const dashi_fraud_alert *fa = alert("SELF_REFERRAL", dashi_harness_mark(h));
    cr_assert_not_null(fa);
    cr_assert_str_eq(evidence(fa, "found"), "LATE_LINK");
    cr_assert_null(alert("IDENTITY_CHANGE_TO_BUYER", 0));
}

IDENTITY_TEST(multi_account_at_association_of_a_paid_person) {
    reg("2022-06-01T09:00:00+08:00", "amb1", "[" PHONE("13900000001") "]", NULL);
    enroll("2022-06-01T09:05:00+08:00", "amb1");
    reg("2022-06-02T10:00:00+08:00", "old", "[" PHONE("13800000001") "]", NULL);
    pay("2022-06-03T10:00:00+08:00", "old", "o-old", NULL);
    reg("2022-06-08T10:00:00+08:00", "new", "[" PHONE("13800000001") "]", "amb1");
    const dashi_fraud_alert *fa = alert("MULTI_ACCOUNT", 0);
    cr_assert_not_null(fa);
    cr_assert_eq(fa->severity, DASHI_SEV_MEDIUM);
    cr_assert_str_eq(fa->ambassador_uid, "amb1");
    cr_assert(has_subject(fa, "new") && has_subject(fa, "old"));
    cr_assert_str_eq(evidence(fa, "found"), "REGISTRATION");
    cr_assert_null(alert("SELF_REFERRAL", 0));
    /* an unpaid second account raises nothing */
    reg("2022-06-09T10:00:00+08:00", "x1", "[" PHONE("13700000001") "]", NULL);
    reg("2022-06-09T10:01:00+08:00", "x2", "[" PHONE("13700000001") "]", "amb1");
    cr_assert_eq(count_alerts("MULTI_ACCOUNT"), 1);
}

IDENTITY_TEST(attribute_burst) {
    /* config: 5 accounts on one attribute within 60 minutes */
    reg("2022-06-08T10:00:00+08:00", "b1", "[" DEVICE("emu-1") "]", NULL);
    reg("2022-06-08T10:10:00+08:00", "b2", "[" DEVICE("emu-1") "]", NULL);
    reg("2022-06-08T10:20:00+08:00", "b3", "[" DEVICE("emu-1") "]", NULL);
    reg("2022-06-08T10:30:00+08:00", "b4", "[" DEVICE("emu-1") "]", NULL);
    cr_assert_null(alert("ATTRIBUTE_BURST", 0));
    reg("2022-06-08T10:59:59+08:00", "b5", "[" DEVICE("emu-1") "]", NULL);
    const dashi_fraud_alert *fa = alert("ATTRIBUTE_BURST", 0);
    cr_assert_not_null(fa);
    cr_assert_eq(fa->severity, DASHI_SEV_MEDIUM);
    cr_assert_str_eq(evidence(fa, "kind"), "DEVICE");
    cr_assert_str_eq(evidence(fa, "accounts_in_window"), "5");
    cr_assert(has_subject(fa, "b1") && has_subject(fa, "b5"));
    reg("2022-06-08T11:05:00+08:00", "b6", "[" DEVICE("emu-1") "]", NULL);
    cr_assert_eq(count_alerts("ATTRIBUTE_BURST"), 1, "one alert per window");
    /* four within an hour, the fifth an hour after the first: no burst */
    reg("2022-06-09T10:00:00+08:00", "q1", "[" DEVICE("emu-2") "]", NULL);
    reg("2022-06-09T10:10:00+08:00", "q2", "[" DEVICE("emu-2") "]", NULL);
    reg("2022-06-09T10:20:00+08:00", "q3", "[" DEVICE("emu-2") "]", NULL);
    reg("2022-06-09T10:30:00+08:00", "q4", "[" DEVICE("emu-2") "]", NULL);
    reg("2022-06-09T11:00:00+08:00", "q5", "[" DEVICE("emu-2") "]", NULL);
    cr_assert_eq(count_alerts("ATTRIBUTE_BURST"), 1);
}

IDENTITY_TEST(ambassador_seen_only_by_enrolment_is_known) {
    enroll("2022-06-01T09:05:00+08:00", "amb9");
    dashi_person_info pi = person("amb9");
    cr_assert(pi.known);
    cr_assert_str_eq(pi.person_id, "P-amb9");
    cr_assert_eq(count_decisions(NULL, 0), 0, "no registration, no decision");
    /* it gets identities later and turns out to be a customer's person: final decisions */
    reg("2022-06-08T10:00:00+08:00", "cust", "[" PHONE("13800000001") "]", "amb9");
    change("2022-06-09T10:00:00+08:00", "amb9", "[" PHONE("13800000001") "]", "[]");
    const dashi_same_person_decision *d = decision("amb9", 0);
    cr_assert_not_null(d);
    cr_assert(d->final);
    cr_assert_eq(d->status, DASHI_SP_SAME_PERSON);
    cr_assert_not_null(alert("IDENTITY_CHANGE_TO_BUYER", 0));
}

/* ---- scale: merging two large persons ---- */

/* A chain of n accounts "<p>0".."<p>(n-1)": account i shares an email with i-1. */
static void chain(const char *p, int n, int hour) {
    for (int i = 0; i < n; i++) {
        char uid[16], at[40], ids[256];
        snprintf(uid, sizeof uid, "%s%d", p, i);
        snprintf(at, sizeof at, "2022-06-08T%02d:%02d:%02d+08:00", hour + i / 3600, (i / 60) % 60, i % 60);
        if (i == 0)
            snprintf(ids, sizeof ids, "[" "{\"kind\":\"EMAIL\",\"value\":\"%s0@x.example\"}]", p);
        else
            snprintf(ids, sizeof ids,
                     "[{\"kind\":\"EMAIL\",\"value\":\"%s%d@x.example\"},{\"kind\":\"EMAIL\",\"value\":\"%s%d@x.example\"}]",
                     p, i, p, i - 1);
        reg(at, uid, ids, NULL);
    }
}

/* 2 x 500 accounts in memory; 2 x 100 over Redis, where commission's and campaign's
 * on_person_change read one key per uid of the merged person per event. */
IDENTITY_TEST_WITH(merging_two_large_persons, .timeout = 120) {
    const int n = srv ? 100 : 500;
    char last_a[16], last_b[16], ids[256], mid_b[16];
    chain("a", n, 1);
    chain("b", n, 3);
    snprintf(last_a, sizeof last_a, "a%d", n - 1);
    snprintf(last_b, sizeof last_b, "b%d", n - 1);
    snprintf(mid_b, sizeof mid_b, "b%d", n / 2);
    cr_assert(same("a0", last_a));
    cr_assert(same("b0", last_b));
    cr_assert_not(same("a0", "b0"));
    snprintf(ids, sizeof ids, "[{\"kind\":\"EMAIL\",\"value\":\"%s@x.example\"},{\"kind\":\"EMAIL\",\"value\":\"%s@x.example\"}]",
             last_a, last_b);
    reg("2022-06-08T09:00:00+08:00", "join", ids, NULL);
    cr_assert(same("a0", "b0"));
    cr_assert(same("join", mid_b));
    /* union by size: about n account records rewritten, not 2n */
    size_t ops = dashi_harness_step_ops(h);
    cr_assert_lt(ops, (size_t)n + 20, "write set of the merge: %zu ops", ops);
    cr_assert_gt(ops, (size_t)n);
    /* the person whose founding account registered first keeps its id */
    cr_assert_str_eq(person("b17").person_id, "P-a0");
    cr_assert_str_eq(person("join").person_id, "P-a0");
    /* b's accounts changed person id: one decision each; a's did not */
    cr_assert_eq(count_decisions(NULL, dashi_harness_mark(h)), (size_t)n + 1);
    cr_assert_eq(count_decisions("a7", dashi_harness_mark(h)), 0);
    cr_assert_str_eq(decision("b7", dashi_harness_mark(h))->person_id, "P-a0");
}

IDENTITY_TEST(an_older_account_renames_a_large_person) {
    reg("2022-06-08T00:30:00+08:00", "first", "[" PHONE("13800000001") "]", NULL);
    chain("m", 50, 2);
    change("2022-06-08T05:00:00+08:00", "first", "[" EMAIL("m10@x.example") "]", "[]");
    cr_assert_str_eq(person("m49").person_id, "P-first");
    cr_assert_eq(count_decisions(NULL, dashi_harness_mark(h)), 51);
    /* the singleton moves; the 50 accounts are rewritten only for their new decision */
    cr_assert_lt(dashi_harness_step_ops(h), 50 + 6, "%zu ops", dashi_harness_step_ops(h));
}

/* ---- compactness ---- */

typedef struct size_acc {
    size_t bytes, keys;
} size_acc;

static int size_cb(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    size_acc *a = opaque;
    (void)key;
    (void)val;
    a->bytes += key_len + val_len;
    a->keys++;
    return 0;
}

IDENTITY_TEST(state_stays_compact_per_account) {
    /* 200 accounts with a phone each (100 pairs share it: 100 two-account persons) and
     * one finalized decision each; key + value bytes of identity records only (170 B
     * when written: the full HMAC is 43 base64url chars, edge times are offsets). */
    for (int i = 0; i < 200; i++) {
        char uid[16], at[40], ids[128];
        snprintf(uid, sizeof uid, "u%07d", 1000000 + i);
        snprintf(at, sizeof at, "2022-06-08T%02d:%02d:00+08:00", 1 + i / 60, i % 60);
        snprintf(ids, sizeof ids, "[{\"kind\":\"PHONE\",\"value\":\"138%08d\"}]", i / 2);
        reg(at, uid, ids, NULL);
    }
    dashi_harness_advance(h, T("2022-06-09T00:00:00+08:00"));
    size_acc acct = {0, 0}, attr = {0, 0};
    char err[128];
    dashi_state *st = dashi_harness_state(h);
    cr_assert_eq(st->ops->scan(st, "acct:", 5, size_cb, &acct, err, sizeof err), DASHI_OK);
    cr_assert_eq(st->ops->scan(st, "attr:", 5, size_cb, &attr, err, sizeof err), DASHI_OK);
    size_t per_account = (acct.bytes + attr.bytes) / 200;
    cr_log_info("identity state: %zu acct keys %zu B, %zu attr keys %zu B: %zu B per account", acct.keys, acct.bytes,
                attr.keys, attr.bytes, per_account);
    cr_assert_eq(acct.keys, 200);
    cr_assert_eq(attr.keys, 100);
    cr_assert_lt(per_account, 180, "%zu bytes of identity state per account", per_account);
}

IDENTITY_TEST(account_seen_before_its_registration_still_gets_a_t0_day) {
    enroll("2022-06-08T09:00:00+08:00", "amb1");
    cr_assert_eq(count_decisions(NULL, 0), 0);
    reg("2022-06-08T09:00:01+08:00", "amb1", "[" PHONE("13800000001") "]", NULL);
    const dashi_same_person_decision *d = decision("amb1", 0);
    cr_assert_not_null(d);
    cr_assert_not(d->final);
    dashi_harness_advance(h, T("2022-06-09T00:00:00+08:00"));
    cr_assert(decision("amb1", 0)->final);
    cr_assert_eq(count_decisions("amb1", 0), 2);
    /* a registration delivered twice under another event id changes nothing */
    reg("2022-06-10T09:00:00+08:00", "amb1", "[" PHONE("13800000001") "]", NULL);
    cr_assert_eq(count_decisions("amb1", 0), 2);
    cr_assert_eq(n_timers(), 0);
}
