/* redis_server.c — start, restart, kill and stop a private redis-server for tests (see redis_server.h).
 *
 * fork + exec of redis-server in the foreground, so the test owns the process and
 * reaps it with waitpid; readiness is "a hiredis connection to the socket answers
 * PING" (NOAUTH counts: the server is up, it wants a password), polled every 10 ms
 * for at most 5 s, giving up early when the child exits (then the tail of its log
 * explains why). Only libc and hiredis, as this file is linked into every test.
 */
#include "tests/support/redis_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define READY_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000

struct dashi_test_redis {
    pid_t pid;        /* -1 when not running */
    char dir[64];     /* the mkdtemp directory */
    char sock[96];    /* dir "/redis.sock" */
    char log[96];     /* dir "/redis.log" */
    char url[128];    /* "unix://" sock */
    char *bin;        /* owned; the redis-server to run */
    char **extra;     /* owned, NULL-terminated copies of the extra arguments */
};

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (!errstr || !errstr_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* $DASHI_REDIS_SERVER, else redis-server on PATH, else /usr/bin/redis-server; malloc'ed. */
static char *find_redis_server(void) {
    const char *env = getenv("DASHI_REDIS_SERVER");
    if (env && *env)
        return strdup(env);
    const char *path = getenv("PATH");
    if (path) {
        char *copy = strdup(path), *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
            size_t len = strlen(d) + sizeof "/redis-server";
            char *cand = malloc(len);
            if (!cand)
                break;
            snprintf(cand, len, "%s/redis-server", d);
            if (access(cand, X_OK) == 0) {
                free(copy);
                return cand;
            }
            free(cand);
        }
        free(copy);
    }
    return strdup("/usr/bin/redis-server");
}

/* The last line(s) of the server log, for error messages. */
static void log_tail(const dashi_test_redis *srv, char *buf, size_t size) {
    buf[0] = '\0';
    FILE *f = fopen(srv->log, "r");
    if (!f)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long end = ftell(f);
        long from = end > (long)size - 1 ? end - (long)size + 1 : 0;
        if (fseek(f, from, SEEK_SET) == 0) {
            size_t n = fread(buf, 1, size - 1, f);
            buf[n] = '\0';
        }
    }
    fclose(f);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* 1 when the server answers PING (or NOAUTH), else 0. */
static int ping(const char *sock) {
    struct timeval tv = {0, 200000};
    int up = 0;
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        up = r && (r->type == REDIS_REPLY_STATUS ||
                   (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0));
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return up;
}

/* fork+exec the server and wait for PING. 0, or -1 with errstr. */
static int spawn(dashi_test_redis *srv, char *errstr, size_t errstr_size) {
    size_t n_extra = 0;
    while (srv->extra && srv->extra[n_extra])
        n_extra++;
    const char *fixed[] = {srv->bin,     "--port",      "0",          "--unixsocket", srv->sock,
                           "--unixsocketperm", "700",   "--save",     "",             "--appendonly",
                           "no",         "--daemonize", "no",         "--dir",        srv->dir,
                           "--logfile",  srv->log};
    size_t n_fixed = sizeof fixed / sizeof fixed[0];
    char **argv = calloc(n_fixed + n_extra + 1, sizeof *argv);
    if (!argv) {
        set_err(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n_fixed; i++)
        argv[i] = (char *)fixed[i];
    for (size_t i = 0; i < n_extra; i++)
        argv[n_fixed + i] = srv->extra[i];

    unlink(srv->sock);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        set_err(errstr, errstr_size, "fork: %s", strerror(errno));
        free(argv);
        return -1;
    }
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
#endif
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            if (devnull > 2)
                close(devnull);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    (void)parent;
    free(argv);
    srv->pid = pid;

    for (long waited = 0; waited <= READY_TIMEOUT_MS; waited += 10) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char tail[160];
            log_tail(srv, tail, sizeof tail);
            srv->pid = -1;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                set_err(errstr, errstr_size, "cannot run %s (not installed? set DASHI_REDIS_SERVER)", srv->bin);
            else
                set_err(errstr, errstr_size, "%s exited at start (status %d): %s", srv->bin, status, tail);
            return -1;
        }
        if (ping(srv->sock))
            return 0;
        sleep_ms(10);
    }
    set_err(errstr, errstr_size, "%s did not answer PING on %s within %d ms", srv->bin, srv->sock, READY_TIMEOUT_MS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    srv->pid = -1;
    return -1;
}

/* Send sig and reap, escalating to SIGKILL after STOP_TIMEOUT_MS. */
static void terminate(dashi_test_redis *srv, int sig) {
    if (srv->pid <= 0)
        return;
    kill(srv->pid, sig);
    for (long waited = 0;; waited += 10) {
        pid_t w = waitpid(srv->pid, NULL, WNOHANG);
        if (w == srv->pid || (w < 0 && errno != EINTR))
            break;
        if (waited >= STOP_TIMEOUT_MS) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, NULL, 0);
            break;
        }
        sleep_ms(10);
    }
    srv->pid = -1;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

void dashi_test_redis_stop(dashi_test_redis *srv) {
    if (!srv)
        return;
    terminate(srv, SIGTERM);
    if (srv->dir[0])
        remove_dir(srv->dir);
    for (size_t i = 0; srv->extra && srv->extra[i]; i++)
        free(srv->extra[i]);
    free(srv->extra);
    free(srv->bin);
    free(srv);
}

dashi_test_redis *dashi_test_redis_start_with(const char *const *extra_args, char *errstr, size_t errstr_size) {
    dashi_test_redis *srv = calloc(1, sizeof *srv);
    size_t n_extra = 0;
    if (!srv)
        goto nomem;
    srv->pid = -1;
    while (extra_args && extra_args[n_extra])
        n_extra++;
    if (!(srv->extra = calloc(n_extra + 1, sizeof *srv->extra)))
        goto nomem;
    for (size_t i = 0; i < n_extra; i++)
        if (!(srv->extra[i] = strdup(extra_args[i])))
            goto nomem;
    if (!(srv->bin = find_redis_server()))
        goto nomem;
    snprintf(srv->dir, sizeof srv->dir, "/tmp/dashi-redis-XXXXXX");
    if (!mkdtemp(srv->dir)) {
        set_err(errstr, errstr_size, "mkdtemp: %s", strerror(errno));
        srv->dir[0] = '\0';
        goto fail;
    }
    snprintf(srv->sock, sizeof srv->sock, "%s/redis.sock", srv->dir);
    snprintf(srv->log, sizeof srv->log, "%s/redis.log", srv->dir);
    snprintf(srv->url, sizeof srv->url, "unix://%s", srv->sock);
    if (spawn(srv, errstr, errstr_size) != 0)
        goto fail;
    return srv;
nomem:
    set_err(errstr, errstr_size, "out of memory");
fail:
    dashi_test_redis_stop(srv);
    return NULL;
}

dashi_test_redis *dashi_test_redis_start(char *errstr, size_t errstr_size) {
    return dashi_test_redis_start_with(NULL, errstr, errstr_size);
}

const char *dashi_test_redis_url(const dashi_test_redis *srv) {
    return srv ? srv->url : NULL;
}

const char *dashi_test_redis_socket(const dashi_test_redis *srv) {
    return srv ? srv->sock : NULL;
}

int dashi_test_redis_pid(const dashi_test_redis *srv) {
    return srv && srv->pid > 0 ? (int)srv->pid : -1;
}

int dashi_test_redis_kill(dashi_test_redis *srv) {
    if (!srv || srv->pid <= 0)
        return -1;
    terminate(srv, SIGKILL);
    return 0;
}

int dashi_test_redis_restart(dashi_test_redis *srv) {
    if (!srv)
        return -1;
    terminate(srv, SIGTERM);
    return spawn(srv, NULL, 0);
}

int dashi_test_redis_command(const dashi_test_redis *srv, char *out, size_t out_size, const char *const *argv) {
    int rc = -1, argc = 0;
    redisContext *c = NULL;
    redisReply *r = NULL;
    struct timeval tv = {5, 0};
    if (out && out_size)
        out[0] = '\0';
    if (!srv || !argv)
        goto out;
    while (argv[argc])
        argc++;
    c = redisConnectUnixWithTimeout(srv->sock, tv);
    if (!c || c->err) {
        set_err(out, out_size, "connect: %s", c ? c->errstr : "out of memory");
        goto out;
    }
    if (!(r = redisCommandArgv(c, argc, (const char **)argv, NULL))) {
        set_err(out, out_size, "command: %s", c->errstr);
        goto out;
    }
    switch (r->type) {
    case REDIS_REPLY_STRING: case REDIS_REPLY_STATUS: case REDIS_REPLY_ERROR:
        set_err(out, out_size, "%.*s", (int)r->len, r->str);
        break;
    case REDIS_REPLY_INTEGER:
        set_err(out, out_size, "%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        set_err(out, out_size, "(nil)");
        break;
    default:
        set_err(out, out_size, "(array %zu)", r->elements);
        break;
    }
    rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
out:
    freeReplyObject(r);
    if (c)
        redisFree(c);
    return rc;
}
