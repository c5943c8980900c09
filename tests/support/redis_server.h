/* redis_server.h — a throw-away redis-server for tests: started on a unix socket in a fresh temp dir, stopped and removed after.
 *
 * Any test that needs a real Redis starts its own (one per test, or per fixture):
 *
 *     static dashi_test_redis *srv;
 *     static void setup(void) {
 *         char err[256];
 *         srv = dashi_test_redis_start(err, sizeof err);
 *         cr_assert(srv, "redis-server: %s", err);   // fail, never skip
 *     }
 *     static void teardown(void) { dashi_test_redis_stop(srv); }
 *     ...
 *     dashi_state *st = dashi_state_open(dashi_test_redis_url(srv), "t:", err, sizeof err);
 *
 * The server runs in the foreground as a child of the test process with
 * `--port 0` (no TCP), `--unixsocket <dir>/redis.sock`, `--save "" --appendonly no`
 * (no persistence: a restart empties it), `--dir <dir>`, its log in <dir>/redis.log.
 * The binary is $DASHI_REDIS_SERVER, else redis-server from PATH, else
 * /usr/bin/redis-server. On Linux the server gets SIGTERM when the test process
 * dies, so a crashed test leaves no server behind. Each test process (Criterion
 * forks one per test) may run several servers; they share nothing.
 * Compiled into every test program: libc and hiredis only.
 */
#ifndef DASHI_TEST_REDIS_SERVER_H
#define DASHI_TEST_REDIS_SERVER_H

#include <stddef.h>

typedef struct dashi_test_redis dashi_test_redis;

/* Start a server and wait (at most 5 s) until it answers PING. NULL with a
 * message in errstr (with the tail of the server's log when it exited). */
dashi_test_redis *dashi_test_redis_start(char *errstr, size_t errstr_size);

/* The same with extra redis-server arguments appended, e.g.
 * (const char *[]){"--requirepass", "pw", NULL}; extra_args is NULL-terminated
 * (or NULL) and copied; restart() reuses them. */
dashi_test_redis *dashi_test_redis_start_with(const char *const *extra_args, char *errstr, size_t errstr_size);

/* "unix:///tmp/dashi-redis-XXXXXX/redis.sock" — for dashi_state_open(); owned by srv. */
const char *dashi_test_redis_url(const dashi_test_redis *srv);

/* "/tmp/dashi-redis-XXXXXX/redis.sock" — for hiredis or redis-cli -s; owned by srv. */
const char *dashi_test_redis_socket(const dashi_test_redis *srv);

/* Process id of the running server, or -1 when it is down. */
int dashi_test_redis_pid(const dashi_test_redis *srv);

/* Kill the server with SIGKILL (a crash: clients see their connection drop) and
 * reap it; the directory and socket path stay for restart(). 0, or -1. */
int dashi_test_redis_kill(dashi_test_redis *srv);

/* Stop the server if it runs (SIGTERM) and start a new one on the same socket with
 * the same arguments; it comes back empty. Waits for PING like start(). 0, or -1. */
int dashi_test_redis_restart(dashi_test_redis *srv);

/* Run one command on a fresh connection (no AUTH), e.g.
 * dashi_test_redis_command(srv, out, sizeof out, (const char *[]){"SCRIPT", "FLUSH", NULL}).
 * The reply as text goes to out (may be NULL): a string, status or error as is, an
 * integer in decimal, "(nil)", or "(array N)". 0 on a non-error reply, -1 otherwise. */
int dashi_test_redis_command(const dashi_test_redis *srv, char *out, size_t out_size, const char *const *argv);

/* Stop the server (SIGTERM, then SIGKILL after 5 s), reap it, remove the directory. NULL-safe. */
void dashi_test_redis_stop(dashi_test_redis *srv);

#endif
