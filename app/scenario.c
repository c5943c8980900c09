/* scenario.c — the scenario runner: events in, engine on fresh state, expectations checked.
 *
 * Events of a scenario are parsed with the event model (a bad one fails the
 * scenario, it is a bug in the file), sorted like replay, and run on a fresh
 * in-memory state (or a Redis prefix of its own) with the rules file the scenario
 * names (relative to the scenario file) or the default one. Outputs are compared
 * in their JSON form, so a scenario checks exactly what consumers read. A failed
 * expectation is reported with up to three closest outputs of the same type.
 */
#include "app/scenario.h"

#include <libgen.h>
#include <stdarg.h>
#include <unistd.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "app/replay.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"

static bool is_instant(const char *s, dashi_time *t) {
    return dashi_time_parse(s, t, NULL, 0) == DASHI_OK;
}

bool dashi_scenario_match(const json_t *exp, const json_t *act) {
    if (json_is_null(exp))
        return act == NULL || json_is_null(act);
    if (!act)
        return false;
    if (json_is_boolean(exp))
        return json_is_boolean(act) && json_boolean_value(exp) == json_boolean_value(act);
    if (json_is_number(exp))
        return json_is_number(act) && json_number_value(exp) == json_number_value(act) &&
               (!json_is_integer(exp) || !json_is_integer(act) ||
                json_integer_value(exp) == json_integer_value(act));
    if (json_is_string(exp)) {
        if (!json_is_string(act))
            return false;
        const char *e = json_string_value(exp), *a = json_string_value(act);
        if (strcmp(e, a) == 0)
            return true;
        dashi_time te, ta;
        return is_instant(e, &te) && is_instant(a, &ta) && te == ta;
    }
    if (json_is_array(exp)) {
        if (!json_is_array(act))
            return false;
        size_t i, j;
        json_t *x, *y;
        json_array_foreach(exp, i, x) {
            bool found = false;
            json_array_foreach(act, j, y) {
                if (dashi_scenario_match(x, y)) {
                    found = true;
                    break;
                }
            }
            if (!found)
                return false;
        }
        return true;
    }
    if (json_is_object(exp)) {
        if (!json_is_object(act))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)exp, k, v) {
            if (!dashi_scenario_match(v, json_object_get(act, k)))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)exp, (json_t *)act);
}

static size_t field_score(const json_t *exp, const json_t *out) {
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)exp, k, v) n += dashi_scenario_match(v, json_object_get(out, k));
    return n;
}

typedef struct outbuf {
    json_t *outputs; /* array */
} outbuf;

static int collect(void *opaque, const dashi_event *ev) {
    outbuf *o = opaque;
    json_t *j = dashi_event_to_json(ev);
    if (!j)
        return 1;
    json_array_append_new(o->outputs, j);
    return 0;
}

/* Growable text for the report. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->n;
        va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if (t->s && (size_t)k < room) {
            t->n += (size_t)k;
            return;
        }
        size_t cap = (t->cap ? t->cap : 256);
        while (cap < t->n + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s)
            return;
        if (!t->s)
            s[0] = '\0';
        t->s = s;
        t->cap = cap;
    }
}

static void append_compact(text *t, const char *label, const json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t len = s ? strlen(s) : 0;
    tprintf(t, "%s%.*s%s\n", label, (int)(len > 600 ? 600 : len), s ? s : "?", len > 600 ? "..." : "");
    free(s);
}

static void check(const json_t *sc, const json_t *outputs, text *rep) {
    size_t i, j;
    json_t *exp, *out;
    json_array_foreach(json_object_get(sc, "expect"), i, exp) {
        bool ok = false;
        json_array_foreach(outputs, j, out) {
            if (dashi_scenario_match(exp, out)) {
                ok = true;
                break;
            }
        }
        if (ok)
            continue;
        tprintf(rep, "expect[%zu] not matched: ", i);
        append_compact(rep, "", exp);
        /* three closest outputs of the same type */
        const json_t *best[3] = {NULL, NULL, NULL};
        size_t score[3] = {0, 0, 0};
        json_array_foreach(outputs, j, out) {
            if (!json_equal(json_object_get(out, "type"), json_object_get(exp, "type")))
                continue;
            size_t s = field_score(exp, out);
            for (int k = 0; k < 3; k++)
                if (!best[k] || s > score[k]) {
                    for (int m = 2; m > k; m--) {
                        best[m] = best[m - 1];
                        score[m] = score[m - 1];
                    }
                    best[k] = out;
                    score[k] = s;
                    break;
                }
        }
        if (!best[0])
            tprintf(rep, "    no output of type %s\n", json_string_value(json_object_get(exp, "type")));
        for (int k = 0; k < 3 && best[k]; k++)
            append_compact(rep, "    closest: ", best[k]);
    }
    json_array_foreach(json_object_get(sc, "expect_absent"), i, exp) {
        size_t hits = 0;
        json_array_foreach(outputs, j, out) {
            if (!dashi_scenario_match(exp, out))
                continue;
            if (hits++ == 0) {
                tprintf(rep, "expect_absent[%zu] matched: ", i);
                append_compact(rep, "", exp);
            }
            if (hits <= 3)
                append_compact(rep, "    found: ", out);
        }
    }
    const char *type;
    json_t *want;
    json_object_foreach(json_object_get(sc, "expect_count"), type, want) {
        json_int_t got = 0;
        json_array_foreach(outputs, j, out) got += json_is_string(json_object_get(out, "type")) &&
                                                   strcmp(json_string_value(json_object_get(out, "type")), type) == 0;
        if (!json_is_integer(want) || json_integer_value(want) != got)
            tprintf(rep, "expect_count %s: expected %lld, got %lld\n", type,
                    (long long)json_integer_value(want), (long long)got);
    }
}

static void reject_into_report(void *opaque, const char *source, size_t line, const char *reason, const char *t) {
    (void)t;
    tprintf(opaque, "(input refused as bad input: %s[%zu]: %s)\n", source, line, reason);
}

void dashi_scenario_result_clear(dashi_scenario_result *r) {
    if (!r)
        return;
    free(r->name);
    free(r->report);
    json_decref(r->rules);
    memset(r, 0, sizeof(*r));
}

dashi_err dashi_scenario_run(const char *path, const char *state_spec, dashi_scenario_result *r,
                             char *errstr, size_t errstr_size) {
    dashi_err err = DASHI_OK;
    json_error_t jerr;
    json_t *sc = NULL;
    dashi_rules *rules = NULL;
    dashi_keyring *keys = NULL;
    dashi_state *st = NULL;
    dashi_engine *eng = NULL;
    dashi_event_list list = {0};
    dashi_replay_stats stats = {0};
    outbuf ob = {json_array()};
    text rep = {0}, notes = {0};
    char rules_path[PATH_MAX], why[512] = "";
    dashi_time until = DASHI_TIME_NONE;

    memset(r, 0, sizeof(*r));
    tprintf(&rep, "%s", "");
    if (!(sc = json_load_file(path, 0, &jerr))) {
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    const json_t *events = json_object_get(sc, "events");
    if (!json_is_object(sc) || !json_is_array(events)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: not a scenario: no \"events\" list", path);
        goto out;
    }
    r->name = dashi_strdup(json_string_value(json_object_get(sc, "name")) ? json_string_value(json_object_get(sc, "name")) : "");
    r->rules = json_incref(json_object_get(sc, "rules"));
    const char *cfg = json_string_value(json_object_get(sc, "config"));
    if (cfg) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        snprintf(rules_path, sizeof(rules_path), "%s/%s", dirname(dir), cfg);
    } else {
        snprintf(rules_path, sizeof(rules_path), "%s", dashi_default_rules_path());
    }
    const char *until_s = json_string_value(json_object_get(sc, "until"));
    if (until_s && dashi_time_parse(until_s, &until, why, sizeof(why)) != DASHI_OK) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: until: %s", path, why);
        goto out;
    }
    if (!(rules = dashi_rules_load(rules_path, errstr, errstr_size))) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    if (!(keys = dashi_keyring_load(NULL, errstr, errstr_size))) {
        err = DASHI_ERR_INTERNAL;
        goto out;
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "scn:%ld:", (long)getpid());
    if (!(st = dashi_state_open(state_spec ? state_spec : "memory", prefix, errstr, errstr_size))) {
        err = DASHI_ERR_TRANSPORT;
        goto out;
    }
    if ((err = st->ops->clear(st, errstr, errstr_size)) != DASHI_OK)
        goto out;
    if (!(eng = dashi_engine_new(rules, keys, st, errstr, errstr_size))) {
        err = DASHI_ERR_NOMEM;
        goto out;
    }
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        dashi_event e;
        memset(&e, 0, sizeof(e));
        if (dashi_event_from_json(ev, &e, why, sizeof(why)) != DASHI_OK) {
            tprintf(&rep, "events[%zu] is bad input: %s\n", i, why);
            stats.rejected++;
            continue;
        }
        if (!dashi_event_type_is_input(e.type)) {
            tprintf(&rep, "events[%zu] is not an input event\n", i);
            dashi_event_clear(&e);
            continue;
        }
        if (dashi_event_list_push(&list, &e, i) < 0) {
            dashi_event_clear(&e);
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "%s: out of memory", path);
            goto out;
        }
    }
    dashi_replay_sort(&list);
    err = dashi_replay_run(eng, &list, "events", until, collect, &ob, reject_into_report, &notes, &stats, errstr,
                           errstr_size);
    if (err != DASHI_OK)
        goto out;
    check(sc, ob.outputs, &rep);
    r->passed = rep.n == 0;
    if (!r->passed && notes.n) /* bad input in a scenario is allowed (it tests refusals): context only */
        tprintf(&rep, "%s", notes.s);
out:
    r->report = rep.s ? rep.s : dashi_strdup("");
    free(notes.s);
    if (st && state_spec)
        st->ops->clear(st, NULL, 0);
    dashi_event_list_clear(&list);
    dashi_engine_destroy(eng);
    dashi_state_destroy(st);
    dashi_keyring_destroy(keys);
    dashi_rules_destroy(rules);
    json_decref(ob.outputs);
    json_decref(sc);
    return err;
}
