/* mockctl.h — `dashi devcluster --control` for fault tests: start it, send it fault commands, stop it.
 *
 * The dev cluster runs as a child with pipes on its stdin and stdout: the first
 * line it prints is the bootstrap string, then one answer line per command
 * ("ok [value]" or "error <why>"; "# " lines are skipped). Its stderr goes to
 * <dir>/devcluster.log. The child dies with the test process (PR_SET_PDEATHSIG).
 * libc only, as every file of tests/support/ is linked into every test program.
 *
 *     dashi_test_mock *m = dashi_test_mock_start(DASHI_BINARY, dir, 3, 4);
 *     dashi_test_mock_cmd(m, NULL, 0, "broker %d down", 2);   // 0: "ok"
 *     dashi_test_mock_stop(m);
 */
#ifndef DASHI_TEST_MOCKCTL_H
#define DASHI_TEST_MOCKCTL_H

#include <stddef.h>

typedef struct dashi_test_mock dashi_test_mock;

/* Start `dashi devcluster --control` (binary path dashi) with brokers brokers and
 * partitions partitions per topic; wait up to 20 s for its bootstrap line. NULL on failure. */
dashi_test_mock *dashi_test_mock_start(const char *dashi, const char *dir, int brokers, int partitions);
/* The bootstrap servers; owned by m. */
const char *dashi_test_mock_bootstrap(const dashi_test_mock *m);
/* Send one command (printf-style, without newline) and wait up to 60 s for its
 * answer, copied to answer (may be NULL). 0 when it is "ok...", -1 otherwise. */
int dashi_test_mock_cmd(dashi_test_mock *m, char *answer, size_t answer_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* SIGTERM, reap, free. NULL-safe. */
void dashi_test_mock_stop(dashi_test_mock *m);

#endif
