/* proc.h — child processes for integration tests: run dashi's own commands as a user would.
 *
 * dashi_test_spawn() starts argv with stdout (and stderr) redirected to files and
 * returns the pid; dashi_test_run() does the same and waits. The child gets
 * PR_SET_PDEATHSIG so a crashed test leaves nothing running. dashi_test_devcluster
 * starts `dashi devcluster` and waits for its bootstrap file.
 */
#ifndef DASHI_TEST_PROC_H
#define DASHI_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Start argv (NULL-terminated); out/err: file paths or NULL (inherit). -1 on failure. */
pid_t dashi_test_spawn(const char *const *argv, const char *out, const char *err);
/* Start and wait; the exit status (0..255), 128+signal, or -1. */
int dashi_test_run(const char *const *argv, const char *out, const char *err);
/* Wait for pid; the exit status like dashi_test_run. */
int dashi_test_wait(pid_t pid);
/* Kill pid with sig and reap it. */
void dashi_test_kill(pid_t pid, int sig);

/* A fresh temporary directory (mkdtemp) path in buf. */
char *dashi_test_tmpdir(char *buf, size_t size);
/* Start `dashi devcluster` (binary path) with its bootstrap in dir/bootstrap; wait up
 * to 20 s. Returns the pid and the bootstrap string in bootstrap, or -1. */
pid_t dashi_test_devcluster(const char *dashi, const char *dir, int partitions, char *bootstrap, size_t size);
/* Read a whole file (malloc'ed, NUL-terminated) or NULL. */
char *dashi_test_slurp(const char *path, size_t *len);

#endif
