/* fuzz_config.c — libFuzzer target: the processor configuration loader (consumers/config.c) on any text.
 *
 * dashi_config_load_buffer is what dashi_config_load runs on a file's bytes. It
 * must refuse anything malformed with a message naming the file, never crash or
 * leak; a configuration it accepts must produce the reference docs without trouble
 * and keep every integer row inside its range.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024] = "";
    dashi_config *cfg = dashi_config_load_buffer("fuzz.json", (const char *)data, size, err, sizeof(err));
    if (!cfg) {
        if (!strstr(err, "fuzz.json")) {
            fprintf(stderr, "fuzz_config: refusal does not name the file: %s\n", err);
            abort();
        }
        return 0;
    }
    size_t n;
    const dashi_cfg_row *rows = dashi_config_rows(&n);
    for (size_t i = 0; i < n; i++) {
        const void *field = (const char *)cfg + rows[i].offset;
        if (rows[i].type == DASHI_CFG_INT) {
            int64_t v = *(const int64_t *)field;
            if (v < rows[i].min || v > rows[i].max) {
                fprintf(stderr, "fuzz_config: %s = %lld out of range\n", rows[i].name, (long long)v);
                abort();
            }
        } else if (rows[i].type == DASHI_CFG_STRING && !*(char *const *)field) {
            fprintf(stderr, "fuzz_config: %s is NULL\n", rows[i].name);
            abort();
        }
    }
    const char *topics[DASHI_EV__COUNT];
    if (dashi_config_input_topics(cfg, topics) == 0)
        abort();
    dashi_config_destroy(cfg);
    return 0;
}
