/* cmd_schemas.c — `dashi schemas`: write or check the Avro schemas generated from the event tables.
 *
 * The .avsc files in schemas/ are build products that are checked in: the event
 * descriptor tables are their source. `--out DIR` (re)writes DIR/<Type>.avsc for
 * every event type; `--check DIR` compares DIR with what would be written and exits
 * 1 listing every file that is missing, differs, or is an .avsc no event type
 * generates, so CI catches a table change whose schemas were not regenerated.
 * Accepts argv with or without the program name in front of "schemas".
 */
#include "cli/commands.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/codec.h"
#include "core/event.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: dashi schemas --out DIR     write DIR/<Type>.avsc for every event type\n"
            "       dashi schemas --check DIR   exit 1 listing the files of DIR that differ\n"
            "\n"
            "The Avro schemas of EVENTS.md, generated from the event descriptor tables\n"
            "(the project ships them in schemas/).\n");
}

/* Whole file into a NUL-terminated malloc'ed buffer; NULL when it cannot be read. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *grown;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            if (!(grown = realloc(buf, cap + 1))) {
                free(buf);
                buf = NULL;
                goto out;
            }
            buf = grown;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[len] = '\0';
out:
    fclose(f);
    return buf;
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    int rc = -1;
    if (!f)
        return -1;
    if (fputs(text, f) >= 0)
        rc = 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static int schema_path(char *out, size_t size, const char *dir, dashi_event_type t) {
    int n = snprintf(out, size, "%s/%s.avsc", dir, dashi_event_type_name(t));
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int do_out(const char *dir) {
    char path[4096];
    int rc = 0;
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        char *text = dashi_event_avro_schema_text((dashi_event_type)t);
        if (!text || schema_path(path, sizeof(path), dir, (dashi_event_type)t) ||
            write_file(path, text)) {
            fprintf(stderr, "dashi schemas: cannot write %s/%s.avsc: %s\n", dir,
                    dashi_event_type_name((dashi_event_type)t), text ? strerror(errno) : "out of memory");
            rc = 1;
        } else {
            printf("wrote %s\n", path);
        }
        free(text);
    }
    return rc;
}

static int is_generated_name(const char *file) {
    size_t n = strlen(file);
    if (n < 6 || strcmp(file + n - 5, ".avsc") != 0)
        return 1; /* not a schema file: not ours to judge */
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        const char *name = dashi_event_type_name((dashi_event_type)t);
        if (strlen(name) == n - 5 && strncmp(file, name, n - 5) == 0)
            return 1;
    }
    return 0;
}

static int do_check(const char *dir) {
    char path[4096];
    int bad = 0;
    DIR *d;
    struct dirent *de;

    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        char *want = dashi_event_avro_schema_text((dashi_event_type)t), *have = NULL;
        if (!want || schema_path(path, sizeof(path), dir, (dashi_event_type)t)) {
            fprintf(stderr, "dashi schemas: out of memory\n");
            free(want);
            return 1;
        }
        if (!(have = read_file(path))) {
            printf("missing  %s\n", path);
            bad++;
        } else if (strcmp(have, want) != 0) {
            printf("differs  %s\n", path);
            bad++;
        }
        free(want);
        free(have);
    }
    if ((d = opendir(dir)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (!is_generated_name(de->d_name)) {
                printf("unknown  %s/%s (no event type generates it)\n", dir, de->d_name);
                bad++;
            }
        }
        closedir(d);
    }
    if (bad)
        printf("%d schema file(s) out of date: run `dashi schemas --out %s`\n", bad, dir);
    return bad ? 1 : 0;
}

int dashi_cmd_schemas(int argc, char **argv) {
    const char *out_dir = NULL, *check_dir = NULL;
    int i = 1;

    if (argc > 1 && strcmp(argv[1], "schemas") == 0)
        i = 2; /* called with the full argv of the program */
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_dir = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0 && i + 1 < argc) {
            check_dir = argv[++i];
        } else {
            fprintf(stderr, "dashi schemas: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if ((out_dir != NULL) == (check_dir != NULL)) {
        usage(stderr);
        return 2;
    }
    return out_dir ? do_out(out_dir) : do_check(check_dir);
}
