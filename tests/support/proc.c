/* proc.c — fork/exec helpers for the integration tests (see proc.h).
 *
 * Plain POSIX: fork, dup2 onto files, execvp; the child asks the kernel to kill
 * it when the test process dies, so no dev cluster or processor outlives a test.
 */
#include "tests/support/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t dashi_test_spawn(const char *const *argv, const char *out, const char *err) {
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (out) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, 1), close(fd);
    }
    if (err) {
        int fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, 2), close(fd);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int dashi_test_wait(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int dashi_test_run(const char *const *argv, const char *out, const char *err) {
    pid_t pid = dashi_test_spawn(argv, out, err);
    return pid < 0 ? -1 : dashi_test_wait(pid);
}

void dashi_test_kill(pid_t pid, int sig) {
    if (pid <= 0)
        return;
    kill(pid, sig);
    dashi_test_wait(pid);
}

char *dashi_test_tmpdir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/dashi-test.XXXXXX");
    return mkdtemp(buf);
}

char *dashi_test_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n < 0 ? 0 : n) + 1);
    size_t got = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

pid_t dashi_test_devcluster(const char *dashi, const char *dir, int partitions, char *bootstrap, size_t size) {
    char bfile[512], log[512], parts[16];
    snprintf(bfile, sizeof(bfile), "%s/bootstrap", dir);
    snprintf(log, sizeof(log), "%s/devcluster.log", dir);
    snprintf(parts, sizeof(parts), "%d", partitions);
    const char *argv[] = {dashi, "devcluster", "--partitions", parts, "--bootstrap-file", bfile, NULL};
    pid_t pid = dashi_test_spawn(argv, log, log);
    for (int i = 0; pid > 0 && i < 200; i++) {
        char *b = dashi_test_slurp(bfile, NULL);
        if (b && *b) {
            b[strcspn(b, "\r\n")] = '\0';
            snprintf(bootstrap, size, "%s", b);
            free(b);
            return pid;
        }
        free(b);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    dashi_test_kill(pid, SIGKILL);
    return -1;
}
