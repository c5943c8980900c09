/* scenario.h — run a scenario file (../shared/spec/SCENARIOS.md) and check its expectations.
 *
 * The same matching rules as the independent runner shared/tools/run_scenarios.py:
 * an expected object matches an output when every field it names is equal;
 * timestamps compare as instants; an expected array matches when each element
 * matches some element of the actual array; nested objects recursively; an
 * expected null matches null or absent; booleans never equal numbers.
 */
#ifndef DASHI_SCENARIO_H
#define DASHI_SCENARIO_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "core/error.h"

/* Does actual satisfy expected? */
bool dashi_scenario_match(const json_t *expected, const json_t *actual);

typedef struct dashi_scenario_result {
    bool passed;
    char *name;     /* owned: the scenario's name */
    char *report;   /* owned: what failed (empty when passed), multi-line */
    json_t *rules;  /* owned reference: the "rules" array, or NULL */
} dashi_scenario_result;

void dashi_scenario_result_clear(dashi_scenario_result *r);

/* Run one scenario file with fresh in-memory state. state_spec: NULL for memory, or
 * a Redis URL (its keys under a fresh prefix). Returns DASHI_OK when the scenario
 * could be run (then r->passed tells the outcome), or an error when the file is
 * unreadable or not a scenario (errstr says why). */
dashi_err dashi_scenario_run(const char *path, const char *state_spec, dashi_scenario_result *r,
                             char *errstr, size_t errstr_size);

#endif
