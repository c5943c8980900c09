/* mockctl.c — drive `dashi devcluster --control` over two pipes (see mockctl.h).
 *
 * fork + exec with the child's stdin and stdout on pipes; answers are read line by
 * line with poll() and a deadline, so a wedged dev cluster fails the test instead of
 * hanging it.
 */
#include "tests/support/mockctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct dashi_test_mock {
    pid_t pid;
    int in, out;       /* our ends: the child's stdin (write) and stdout (read) */
    char buf[8192];    /* unread output of the child */
    size_t len;
    char bootstrap[512];
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line of the child's stdout into line (without newline), waiting up to ms. */
static int read_line(dashi_test_mock *m, char *line, size_t size, long ms) {
    long long deadline = now_ms() + ms;
    for (;;) {
        char *nl = memchr(m->buf, '\n', m->len);
        if (nl) {
            size_t n = (size_t)(nl - m->buf);
            snprintf(line, size, "%.*s", (int)n, m->buf);
            memmove(m->buf, nl + 1, m->len - n - 1);
            m->len -= n + 1;
            return 0;
        }
        long long left = deadline - now_ms();
        if (left <= 0 || m->len == sizeof(m->buf))
            return -1;
        struct pollfd pfd = {.fd = m->out, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t got = read(m->out, m->buf + m->len, sizeof(m->buf) - m->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        m->len += (size_t)got;
    }
}

dashi_test_mock *dashi_test_mock_start(const char *dashi, const char *dir, int brokers, int partitions) {
    int to_child[2], from_child[2];
    char log[512], b[16], p[16];
    dashi_test_mock *m = calloc(1, sizeof(*m));
    if (!m || pipe(to_child) < 0) {
        free(m);
        return NULL;
    }
    if (pipe(from_child) < 0) {
        close(to_child[0]), close(to_child[1]);
        free(m);
        return NULL;
    }
    snprintf(log, sizeof(log), "%s/devcluster.log", dir);
    snprintf(b, sizeof(b), "%d", brokers);
    snprintf(p, sizeof(p), "%d", partitions);
    m->pid = fork();
    if (m->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, 2), close(fd);
        close(to_child[0]), close(to_child[1]), close(from_child[0]), close(from_child[1]);
        const char *argv[] = {dashi, "devcluster", "--control", "--brokers", b, "--partitions", p, NULL};
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    m->in = to_child[1];
    m->out = from_child[0];
    fcntl(m->in, F_SETFD, FD_CLOEXEC);
    fcntl(m->out, F_SETFD, FD_CLOEXEC);
    if (m->pid < 0 || read_line(m, m->bootstrap, sizeof(m->bootstrap), 20000) < 0 || !strchr(m->bootstrap, ':')) {
        dashi_test_mock_stop(m);
        return NULL;
    }
    return m;
}

const char *dashi_test_mock_bootstrap(const dashi_test_mock *m) {
    return m->bootstrap;
}

int dashi_test_mock_cmd(dashi_test_mock *m, char *answer, size_t answer_size, const char *fmt, ...) {
    char cmd[1024], line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd) - 1)
        return -1;
    cmd[n++] = '\n';
    signal(SIGPIPE, SIG_IGN);
    if (write(m->in, cmd, (size_t)n) != n)
        return -1;
    for (;;) {
        if (read_line(m, line, sizeof(line), 60000) < 0) {
            if (answer && answer_size)
                snprintf(answer, answer_size, "no answer");
            return -1;
        }
        if (line[0] != '#')
            break;
    }
    if (answer && answer_size)
        snprintf(answer, answer_size, "%s", line);
    return strncmp(line, "ok", 2) == 0 ? 0 : -1;
}

void dashi_test_mock_stop(dashi_test_mock *m) {
    if (!m)
        return;
    if (m->pid > 0) {
        int status;
        kill(m->pid, SIGTERM);
        while (waitpid(m->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (m->in > 0)
        close(m->in);
    if (m->out > 0)
        close(m->out);
    free(m);
}
