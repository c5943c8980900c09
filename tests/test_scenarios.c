/* test_scenarios.c — every scenario file in tests/scenarios is one test (RULES.md acceptance tests).
 *
 * The files are listed at run time, so adding a scenario needs no code. A scenario
 * named in tests/scenarios/xfail.txt waits for the issue that implements its
 * rules: the test then asserts that it still FAILS, so a fixed scenario must be
 * taken off the list (nothing is skipped silently).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/scenario.h"

#define SCN_DIR DASHI_SOURCE_DIR "/tests/scenarios"

typedef struct scn_param {
    char *file; /* cr_malloc'ed base name */
} scn_param;

static void free_params(struct criterion_test_params *crp) {
    scn_param *p = crp->params;
    for (size_t i = 0; i < crp->length; i++)
        cr_free(p[i].file);
    cr_free(p);
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const scn_param *)a)->file, ((const scn_param *)b)->file);
}

ParameterizedTestParameters(scenarios, file) {
    size_t n = 0, cap = 256;
    scn_param *p = cr_malloc(cap * sizeof(*p));
    DIR *d = opendir(SCN_DIR);
    struct dirent *de;
    while (d && (de = readdir(d)) && n < cap) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        p[n].file = cr_malloc(len + 1);
        memcpy(p[n].file, de->d_name, len + 1);
        n++;
    }
    if (d)
        closedir(d);
    qsort(p, n, sizeof(*p), by_name);
    return cr_make_param_array(scn_param, p, n, free_params);
}

static int in_xfail(const char *file) {
    FILE *f = fopen(SCN_DIR "/xfail.txt", "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char *tok = strtok(line, " \t\r\n#");
        found = tok && line[0] != '#' && strcmp(tok, file) == 0;
    }
    if (f)
        fclose(f);
    return found;
}

ParameterizedTest(scn_param *p, scenarios, file, .timeout = 120) {
    char path[4096], errstr[1024] = "";
    dashi_scenario_result r;
    snprintf(path, sizeof(path), "%s/%s", SCN_DIR, p->file);
    dashi_err err = dashi_scenario_run(path, NULL, &r, errstr, sizeof(errstr));
    cr_assert_eq(err, DASHI_OK, "%s: cannot run: %s", p->file, errstr);
    if (in_xfail(p->file))
        cr_expect(!r.passed, "%s passes but is listed in tests/scenarios/xfail.txt: take it off the list", p->file);
    else
        cr_expect(r.passed, "%s failed (%s):\n%s", p->file, r.name, r.report);
    dashi_scenario_result_clear(&r);
}

Test(scenarios, every_rule_id_is_named) {
    /* every rule ID of RULES.md is named by at least one scenario's "rules" */
    static const char *ids[] = {"A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "S1", "S2", "S3", "S4",
                                "S5", "S6", "S7", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9",
                                "C10", "C11", "C12", "T1", "T2", "T3", "P1", "P2", "R1", "R2", "R3", "K1",
                                "K2", "K3", "K4", "K5", "K6", "K7", "V1", "V2"};
    int named[sizeof(ids) / sizeof(ids[0])] = {0};
    DIR *d = opendir(SCN_DIR);
    struct dirent *de;
    cr_assert_not_null(d);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", SCN_DIR, de->d_name);
        json_t *sc = json_load_file(path, 0, NULL);
        cr_assert_not_null(sc, "%s is not JSON", de->d_name);
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(sc, "rules"), i, id) {
            for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
                named[k] |= json_is_string(id) && strcmp(json_string_value(id), ids[k]) == 0;
        }
        json_decref(sc);
    }
    closedir(d);
    char missing[512] = "";
    for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
        if (!named[k]) {
            strcat(missing, " ");
            strcat(missing, ids[k]);
        }
    cr_expect_str_empty(missing, "rule IDs named by no scenario:%s", missing);
}
