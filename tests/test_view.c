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
