/* fuzz_event_readers.c — libFuzzer target: the readers without a JSON tree against jansson's, on any text.
 *
 * dashi_event_parse() reads plain lines straight into the struct and
 * dashi_json_loadb() builds trees without jansson's lexer (core/json.c); both must
 * give exactly what the tree path gives: json_loadb + dashi_event_from_json (the
 * same error and message, or the same event) and json_loadb (the same tree, member
 * order included, or a refusal). Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* dashi_event_parse() as it was before it read lines without a tree. */
static dashi_err parse_by_tree(const char *text, size_t len, dashi_event *out, char *errstr, size_t size) {
    json_error_t jerr;
    json_t *obj;
    dashi_err err;

    memset(out, 0, sizeof(*out));
    if (len > DASHI_MAX_EVENT_BYTES) /* refused unread by both */
        return dashi_event_parse(text, len, out, errstr, size);
    if (!(obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        snprintf(errstr, size, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return DASHI_ERR_PARSE;
    }
    err = dashi_event_from_json(obj, out, errstr, size);
    json_decref(obj);
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    char ea[512] = "", eb[512] = "";
    dashi_event a, b;
    dashi_err ra = dashi_event_parse(text, size, &a, ea, sizeof(ea));
    dashi_err rb = parse_by_tree(text, size, &b, eb, sizeof(eb));
    if (ra != rb || (ra != DASHI_OK && strcmp(ea, eb) != 0)) {
        fprintf(stderr, "fuzz_event_readers: results differ (%d, %d):\n%s\n%s\n", ra, rb, ea, eb);
        abort();
    }
    if (ra == DASHI_OK) {
        char *da = dashi_event_dump(&a), *db = dashi_event_dump(&b);
        if (!da || !db || strcmp(da, db) != 0) {
            fprintf(stderr, "fuzz_event_readers: events differ:\n%s\n%s\n", da ? da : "-", db ? db : "-");
            abort();
        }
        free(da);
        free(db);
        dashi_event_clear(&a);
        dashi_event_clear(&b);
    }
    json_t *x = dashi_json_loadb(text, size, 0, NULL), *y = json_loadb(text, size, 0, NULL);
    char *dx = x ? json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *dy = y ? json_dumps(y, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if ((dx == NULL) != (dy == NULL) || (dx && strcmp(dx, dy) != 0)) {
        fprintf(stderr, "fuzz_event_readers: trees differ:\n%s\n%s\n", dx ? dx : "-", dy ? dy : "-");
        abort();
    }
    free(dx);
    free(dy);
    json_decref(x);
    json_decref(y);
    return 0;
}
