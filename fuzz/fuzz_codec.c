/* fuzz_codec.c — libFuzzer target: the wire decoder (consumers/codec.c) on any bytes.
 *
 * One input is one Kafka record value: a Confluent frame (magic byte, schema id,
 * Avro body). The codec is made once (as the pipeline does) and must never crash,
 * over-read or leak whatever the bytes; a record it accepts must validate, encode
 * back and decode to the same JSON text (the wire and the JSON form agree).
 * Build: CC=clang cmake -S . -B build-fuzz -DDASHI_FUZZ=ON; run: scripts/fuzz.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/codec.h"
#include "core/event_desc.h"
#include "core/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dashi_codec *codec;
static int atexit_set;

static void codec_free(void) {
    dashi_codec_destroy(codec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    dashi_event ev, again;
    void *buf = NULL;
    size_t len = 0;
    if (!codec && !(codec = dashi_codec_new(err, sizeof(err)))) {
        fprintf(stderr, "fuzz_codec: %s\n", err);
        abort();
    } else if (!atexit_set) {
        atexit_set = 1;
        atexit(codec_free); /* what is left at exit is a leak, not the codec's scratch values */
    }
    if (dashi_codec_decode(codec, data, size, &ev, err, sizeof(err)) != DASHI_OK)
        return 0;
    if (dashi_event_validate(&ev, err, sizeof(err)) != DASHI_OK) {
        fprintf(stderr, "fuzz_codec: decoded an event that does not validate: %s\n", err);
        abort();
    }
    if (dashi_codec_encode(codec, &ev, &buf, &len, err, sizeof(err)) != DASHI_OK) {
        fprintf(stderr, "fuzz_codec: decoded event does not encode: %s\n", err);
        abort();
    }
    if (dashi_codec_decode(codec, buf, len, &again, err, sizeof(err)) != DASHI_OK) {
        fprintf(stderr, "fuzz_codec: re-encoded event does not decode: %s\n", err);
        abort();
    }
    char *a = dashi_event_dump(&ev), *b = dashi_event_dump(&again);
    if (!a || !b || strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_codec: round trip changed the event:\n%s\n%s\n", a ? a : "-", b ? b : "-");
        abort();
    }
    free(a);
    free(b);
    free(buf);
    dashi_event_clear(&again);
    dashi_event_clear(&ev);
    return 0;
}
