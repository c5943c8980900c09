/* test_view.c — the step's view on the state: keys built from input are never cut.
 *
 * The record keys of the rules modules are formatted from input strings
 * (dashi_view_getf/editf). A key longer than the view's buffer must not be cut to
 * a prefix (two long ids would then share one record): the read returns NULL and
 * the step is poisoned as bad input, which the engine refuses whole.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/state.h"
#include "core/view.h"

Test(view, a_key_too_long_is_an_error_not_a_cut) {
    char err[256];
    dashi_state *st = dashi_state_open("memory", "t:", err, sizeof(err));
    cr_assert(st, "%s", err);
    dashi_view *v = dashi_view_new(st);
    cr_assert(v);
    char a[600], b[600];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[590] = 'y'; /* differs only after byte 512 */
    /* a key within the limit works */
    json_t *r = dashi_view_editf(v, "amb:%.100s", a);
    cr_assert(r);
    const char *msg = NULL;
    cr_expect_eq(dashi_view_error(v, &msg), DASHI_OK);
    /* longer ones: NULL, and the step is bad input */
    cr_expect_null(dashi_view_editf(v, "amb:%s", a));
    cr_expect_eq(dashi_view_error(v, &msg), DASHI_ERR_INVALID);
    cr_expect(msg && strstr(msg, "longer than 511 bytes"), "%s", msg ? msg : "");
    cr_expect_null(dashi_view_getf(v, "amb:%s", b));
    /* nothing of this step is written: the engine refuses the whole step */
    dashi_writeset ws;
    dashi_writeset_init(&ws);
    dashi_view_reset(v);
    cr_expect_eq(dashi_view_error(v, NULL), DASHI_OK, "a new step starts clean");
    dashi_writeset_clear(&ws);
    dashi_view_destroy(v);
    dashi_state_destroy(st);
}

Test(view, the_longest_ids_fit) {
    /* every key format of the rules modules with ids at their limit is far below 512 */
    char err[256];
    dashi_state *st = dashi_state_open("memory", "t:", err, sizeof(err));
    cr_assert(st, "%s", err);
    dashi_view *v = dashi_view_new(st);
    char id[DASHI_MAX_ID_LEN + 1];
    memset(id, 'i', DASHI_MAX_ID_LEN);
    id[DASHI_MAX_ID_LEN] = '\0';
    cr_expect(dashi_view_editf(v, "cp:lk:%s:%s", id, id));
    cr_expect(dashi_view_editf(v, "cp:%s:p:%s", id, id));
    cr_expect(dashi_view_editf(v, "cp:%s:u:%s", id, id));
    cr_expect_eq(dashi_view_error(v, NULL), DASHI_OK);
    dashi_view_destroy(v);
    dashi_state_destroy(st);
}

Test(view, formatted_keys_are_what_printf_writes) {
    /* getf/editf copy "%s" keys without printf: the key is the same record as the one
     * named in full, at every length up to the limit and with other conversions */
    char err[256];
    dashi_state *st = dashi_state_open("memory", "t:", err, sizeof(err));
    cr_assert(st, "%s", err);
    dashi_view *v = dashi_view_new(st);
    cr_assert(v);
    char id[600], full[700];
    memset(id, 'q', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    for (size_t len = 0; len <= 520; len += (len < 490 ? 49 : 1)) {
        id[len] = '\0';
        snprintf(full, sizeof(full), "cp:%s:u:%s", "c1", id);
        json_t *r = dashi_view_editf(v, "cp:%s:u:%s", "c1", id);
        if (strlen(full) > 511) {
            cr_expect_null(r, "key of %zu bytes", strlen(full));
            cr_expect_eq(dashi_view_error(v, NULL), DASHI_ERR_INVALID);
        } else {
            cr_assert(r, "key of %zu bytes", strlen(full));
            json_object_set_new(r, "n", json_integer((json_int_t)len));
            const json_t *back = dashi_view_get(v, full);
            cr_expect_eq(back, r, "key of %zu bytes", strlen(full));
            cr_expect_eq(dashi_view_error(v, NULL), DASHI_OK);
        }
        dashi_view_reset(v);
        id[len] = 'q';
    }
    cr_assert(json_object_set_new(dashi_view_editf(v, "cm:ambassadors:%lld", 12LL), "x", json_true()) == 0);
    cr_expect(dashi_view_get(v, "cm:ambassadors:12"));
    cr_assert(json_object_set_new(dashi_view_editf(v, "cp:%s:idx:%02x", "c1", 10), "x", json_true()) == 0);
    cr_expect(dashi_view_get(v, "cp:c1:idx:0a"));
    const char *volatile none = NULL; /* printf's "(null)" */
    cr_assert(json_object_set_new(dashi_view_editf(v, "acct:%s", none), "x", json_true()) == 0);
    cr_expect(dashi_view_get(v, "acct:(null)"));
    cr_expect_eq(dashi_view_error(v, NULL), DASHI_OK);
    dashi_view_destroy(v);
    dashi_state_destroy(st);
}

/* The record's text, and the cached tree's members in their own order, after a commit. */
static void commit_and_read(dashi_state *st, dashi_view *v, const char *key, char **stored_text,
                            char **cached_order) {
    dashi_writeset ws;
    dashi_err res = DASHI_OK;
    dashi_bytes k = {(char *)key, strlen(key)}, val = {NULL, 0};
    dashi_writeset_init(&ws);
    cr_assert_eq(dashi_view_writeset(v, &ws), DASHI_OK);
    const dashi_writeset *sets[1] = {&ws};
    cr_assert_eq(st->ops->apply(st, 1, sets, &res, NULL, 0), DASHI_OK);
    cr_assert_eq(res, DASHI_OK);
    dashi_view_committed(v);
    dashi_writeset_clear(&ws);
    dashi_view_reset(v);
    cr_assert_eq(st->ops->mget(st, 1, &k, &val, NULL, 0), DASHI_OK);
    cr_assert(val.data);
    *stored_text = strndup(val.data, val.len);
    free(val.data);
    *cached_order = json_dumps(dashi_view_get(v, key), JSON_COMPACT); /* iteration order */
    dashi_view_reset(v);
}

Test(view, edited_records_iterate_in_the_order_a_parse_gives) {
    /* members added to a sorted record, before, between and after the others, at
     * several depths: the text is sorted, and so is the cached tree's iteration */
    char err[256], *text, *order;
    dashi_state *st = dashi_state_open("memory", "t:", err, sizeof(err));
    cr_assert(st, "%s", err);
    dashi_view *v = dashi_view_new(st);
    cr_assert(v);
    dashi_view_reset(v);
    json_t *r = dashi_view_edit(v, "r");
    json_object_set_new(r, "b", json_integer(1));
    json_object_set_new(r, "d", json_pack("{s:i,s:i}", "y", 1, "w", 2));
    commit_and_read(st, v, "r", &text, &order);
    cr_expect_str_eq(text, "{\"b\":1,\"d\":{\"w\":2,\"y\":1}}");
    cr_expect_str_eq(order, text);
    free(text);
    free(order);
    for (int round = 0; round < 3; round++) {
        const char *add[] = {"a", "c", "e", "bb", "", "dd"};
        r = dashi_view_edit(v, "r");
        json_t *d = json_object_get(r, "d");
        for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
            char name[16];
            snprintf(name, sizeof name, "%s%d", add[i], round);
            json_object_set_new(r, name, json_integer(round));
            json_object_set_new(d, name, json_integer(round));
        }
        json_object_set_new(r, "b", json_integer(round + 10)); /* a change in place */
        json_object_del(r, "c1");
        commit_and_read(st, v, "r", &text, &order);
        json_t *parsed = json_loads(text, 0, NULL);
        char *want = json_dumps(parsed, JSON_COMPACT);
        char *sorted = json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS);
        cr_expect_str_eq(text, sorted, "round %d", round);
        cr_expect_str_eq(order, want, "round %d", round);
        json_decref(parsed);
        free(want);
        free(sorted);
        free(text);
        free(order);
    }
    dashi_view_destroy(v);
    dashi_state_destroy(st);
}
