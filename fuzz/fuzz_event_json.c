/* fuzz_event_json.c — libFuzzer target: the JSON event parser (core/event.c) on any text.
 *
 * One input is one NDJSON line as `dashi replay` reads it. The parser must never
 * crash or leak; an event it accepts must write back (dashi_event_dump, the
 * hand-written writer) to text that parses to the same event and is written the
 * same again, and must agree with jansson's writer of dashi_event_to_json.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    dashi_event ev, again;
    if (dashi_event_parse((const char *)data, size, &ev, err, sizeof(err)) != DASHI_OK)
        return 0;
    char *a = dashi_event_dump(&ev);
    json_t *j = dashi_event_to_json(&ev);
    char *viajansson = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!a || !viajansson || strcmp(a, viajansson) != 0) {
        fprintf(stderr, "fuzz_event_json: dump and jansson disagree:\n%s\n%s\n", a ? a : "-", viajansson ? viajansson : "-");
        abort();
    }
    if (dashi_event_parse(a, strlen(a), &again, err, sizeof(err)) != DASHI_OK) {
        fprintf(stderr, "fuzz_event_json: own output does not parse: %s\n%s\n", err, a);
        abort();
    }
    char *b = dashi_event_dump(&again);
    if (!b || strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_event_json: round trip changed the event:\n%s\n%s\n", a, b ? b : "-");
        abort();
    }
    free(a);
    free(b);
    free(viajansson);
    json_decref(j);
    dashi_event_clear(&again);
    dashi_event_clear(&ev);
    return 0;
}
