/* live.h — the shared fixture of the live integration tests: private redis-server, devcluster, temp dir, dashi commands.
 *
 * A live test (test_pipeline, test_redis_faults, test_rebalance, test_badinput,
 * test_ops, test_backends, ...) starts, per Criterion test, its own redis-server
 * (tests/support/redis_server.c), optionally its own `dashi devcluster`, and a
 * fresh temporary directory for every file it writes; it drives the processor
 * only through dashi's own commands (gen, publish, run, tail, replay) as a user
 * would, and compares what came out with `dashi replay` of the same events and
 * the Redis state with a second store. These helpers used to be copied into each
 * test file; they live here once.
 *
 * Design: Criterion forks one process per test, so the fixture is one process-wide
 * context set up by dashi_test_live_setup() (.init) and torn down by
 * dashi_test_live_teardown() (.fini); the accessors below read it. Every helper a
 * test never expects to fail fails the test with a Criterion assertion naming the
 * command and its log file; helpers whose outcome is under test return it. All
 * strings returned by the accessors are borrowed from the context and valid until
 * teardown; dashi_test_live_path() returns one of eight rotating static buffers
 * (so up to eight paths may be alive in one expression). Compiled into every test
 * program (Criterion and the dashi libraries are linked into all of them).
 */
#ifndef DASHI_TEST_LIVE_H
#define DASHI_TEST_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/support/redis_server.h"

/* The stream end every live test runs to (`--clock-until` / `--until`). */
#define DASHI_TEST_LIVE_UNTIL "2022-08-31T00:00:00+08:00"

/* ---- the fixture ---- */

/* Start a redis-server (redis_args: extra server arguments, NULL-terminated, borrowed
 * for the call; NULL: none), make a temp dir and, when partitions > 0, start `dashi
 * devcluster` with that many partitions per topic. Asserts on failure. */
void dashi_test_live_setup(int partitions, const char *const *redis_args);
/* Start `dashi devcluster` later (after a setup with partitions 0). Asserts. */
void dashi_test_live_start_devcluster(int partitions);
/* Replace the redis-server by a fresh one started with redis_args (as in setup),
 * and "redis.url=..." with its URL. Asserts. */
void dashi_test_live_replace_redis(const char *const *redis_args);
/* Use bootstrap (copied) as the Kafka bootstrap: a cluster the test started itself
 * (tests/support/mockctl.h) in dashi_test_live_dir(). */
void dashi_test_live_set_boot(const char *bootstrap);
/* Stop the devcluster (if any) and redis-server, remove the temp dir (kept, and
 * named on stderr, when DASHI_TEST_KEEP or DASHI_KEEP_TMP is set). Safe after a
 * failed setup. */
void dashi_test_live_teardown(void);

/* The temp dir (borrowed). */
const char *dashi_test_live_dir(void);
/* dir/name in one of eight rotating static buffers (borrowed; name is copied). */
const char *dashi_test_live_path(const char *name);
/* The devcluster's bootstrap servers (borrowed; "" without a devcluster). */
const char *dashi_test_live_boot(void);
/* The private redis-server (borrowed), its URL, and "redis.url=<url>" for `--set`. */
dashi_test_redis *dashi_test_live_redis(void);
const char *dashi_test_live_redis_url(void);
const char *dashi_test_live_redis_set(void);

/* ---- dashi's commands (each asserts exit status 0, naming its log) ---- */

/* `dashi gen --seed --ambassadors --customers --out dir/out` (log gen.log). */
void dashi_test_live_gen(const char *out, const char *seed, const char *ambassadors, const char *customers);
/* `dashi publish --in file [--raw-topic raw_topic]` (raw_topic may be NULL; log publish.log). */
void dashi_test_live_publish(const char *file, const char *raw_topic);
/* `dashi tail --idle-ms idle_ms [--topic topic] > out` (topic may be NULL; log tail.log). */
void dashi_test_live_tail(const char *out, const char *topic, const char *idle_ms);
/* `dashi replay --in --out --until UNTIL --quiet [--rejects rejects] --state --prefix`
 * (state NULL: "memory"; prefix NULL: "dashi:"; rejects NULL: none; log replay.log). */
void dashi_test_live_replay(const char *in, const char *out, const char *state, const char *prefix,
                            const char *rejects);
/* Spawn `dashi run --bootstrap --set redis.url --set group.id=group --set
 * redis.prefix=prefix --set rules.file=<source>/config/rules.json --set hmac.key=dev`
 * followed by extra, the run's own settings (merge.wait_ms, --exit-idle, ...;
 * NULL-terminated, borrowed; may be NULL), with stdout and stderr to log (NULL:
 * dir/run.log). prefix NULL: no redis.prefix (the default). Returns the pid, or -1
 * when it could not start. */
pid_t dashi_test_live_spawn_run(const char *group, const char *prefix, const char *log, const char *const *extra);

/* ---- output sets ---- */

/* The distinct lines of a file, sorted; v points into buf. Owned by the caller:
 * free with dashi_test_live_lines_free(). */
typedef struct dashi_test_live_lines {
    char **v;
    size_t n, total; /* distinct lines, all lines read (skipped ones aside) */
    char *buf;
} dashi_test_live_lines;

/* Read file (asserted readable) into its sorted distinct lines, leaving out lines
 * that contain skip (NULL: none). */
dashi_test_live_lines dashi_test_live_read_set(const char *file, const char *skip);
/* Free v and buf; NULL-safe. */
void dashi_test_live_lines_free(dashi_test_live_lines *l);
/* How two sets differ: counts and the first line (borrowed from the sets) of each kind. */
typedef struct dashi_test_live_diff {
    size_t missing, extra;                 /* in expected only, in actual only */
    const char *first_missing, *first_extra; /* NULL when none */
} dashi_test_live_diff;

/* Compare two sets (both borrowed). */
dashi_test_live_diff dashi_test_live_diff_sets(const dashi_test_live_lines *expected,
                                               const dashi_test_live_lines *actual);
/* Expect the distinct lines of actual_file (lines containing skip_actual left out; may
 * be NULL) to be those of expected_file, and the reference to have more than 100;
 * actual_what names the actual side in the message ("distinct live outputs"). */
void dashi_test_live_assert_same_set(const char *expected_file, const char *actual_file, const char *skip_actual,
                                     const char *actual_what);

/* ---- Redis state (on the private redis-server) ---- */

/* Every key and value under prefix as "key\tvalue\n" lines, leaving out the
 * progress/fencing/outbox keys (off:, ep:, ob:) unless all_keys. Written to file
 * when file is not NULL. Returns the text (malloc'ed, owned by the caller). Asserts. */
char *dashi_test_live_dump_state(const char *prefix, const char *file, bool all_keys);
/* Keys under store prefix whose name starts with key_prefix. Asserts. */
size_t dashi_test_live_count_keys(const char *store, const char *key_prefix);
/* The same, but 0 when Redis does not answer (for polling while it is down). */
size_t dashi_test_live_count_keys_or_0(const char *store, const char *key_prefix);
/* Timers left under store prefix. Asserts. */
size_t dashi_test_live_count_timers(const char *store);

/* ---- files and waiting ---- */

/* Lines ('\n') in a file; 0 when it cannot be read. */
size_t dashi_test_live_count_lines(const char *file);
/* Whether the file contains text (false when it cannot be read). */
bool dashi_test_live_file_has(const char *file, const char *text);
/* Poll every 200 ms, at most ms, until the file contains text. */
bool dashi_test_live_wait_file(const char *file, const char *text, int ms);
/* Sleep ms milliseconds. */
void dashi_test_live_sleep_ms(long ms);

#endif
