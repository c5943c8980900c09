/* fuzz_rules.c — libFuzzer target: the rules loader (core/rules.c) on any text.
 *
 * The bytes are read as dashi_rules_load reads a file (jansson, duplicate keys
 * refused) and handed to dashi_rules_from_json. Malformed rules must be refused
 * with a message naming the source, never crash or leak; accepted rules must answer
 * dashi_rules_at for any instant and print (`dashi rules show`) every rule set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024] = "";
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return 0;
    dashi_rules *rules = dashi_rules_from_json(doc, "fuzz.json", err, sizeof(err));
    json_decref(doc);
    if (!rules) {
        if (!strstr(err, "fuzz.json")) {
            fprintf(stderr, "fuzz_rules: refusal does not name the source: %s\n", err);
            abort();
        }
        return 0;
    }
    const dashi_time probes[] = {INT64_MIN + 1, -1, 0, rules->plausible_from, rules->plausible_until - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const dashi_ruleset *set = dashi_rules_at(rules, probes[i]);
        if (!set)
            abort();
        json_t *j = dashi_ruleset_to_json(set);
        json_decref(j);
    }
    dashi_rules_destroy(rules);
    return 0;
}
