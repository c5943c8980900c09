/* test_progress.c — the progress line of `dashi replay`: its text (a pure function) and when it shows.
 *
 * The formatter is checked on fixed inputs: thousands separators, the bar, the
 * share, the rate, the ETA from bytes (and none without a known size), clamping,
 * truncation like snprintf. The display is checked through the real binary: with
 * stderr on a pipe it prints no progress (only the summary); on a pseudo-terminal
 * it draws carriage-return lines ending at 100%; with --quiet it draws nothing
 * even on a terminal. The outputs are the same with and without the line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/generate.h"
#include "app/progress.h"
#include "support/proc.h"

Test(progress, format_known_size) {
    char b[160];
    /* 45% of the bytes in 10 s: 1234 events → 123 events/s; ETA 10 * 55/45 = 12.2 s */
    size_t n = dashi_progress_format(b, sizeof b, 1234, 450, 1000, 10.0);
    cr_assert_str_eq(b, "[#########           ]  45.0%  1,234 events  123 events/s  ETA 0:12");
    cr_assert_eq(n, strlen(b));
    dashi_progress_format(b, sizeof b, 1234567, 1, 4, 2.0);
    cr_assert_str_eq(b, "[#####               ]  25.0%  1,234,567 events  617,284 events/s  ETA 0:06");
    /* an hour and more */
    dashi_progress_format(b, sizeof b, 10, 1, 1000, 4.0);
    cr_assert_str_eq(b, "[                    ]   0.1%  10 events  3 events/s  ETA 1:06:36");
}

Test(progress, format_done_and_clamped) {
    char b[160];
    dashi_progress_format(b, sizeof b, 60856, 5000, 5000, 3.5);
    cr_assert_str_eq(b, "[####################] 100.0%  60,856 events  17,387 events/s  done in 0:04");
    /* more bytes than the size (a file that grew) count as the size */
    dashi_progress_format(b, sizeof b, 7, 9000, 5000, 1.0);
    cr_assert_str_eq(b, "[####################] 100.0%  7 events  7 events/s  done in 0:01");
}

Test(progress, format_unknown_size_or_no_time) {
    char b[160];
    dashi_progress_format(b, sizeof b, 999, 12345, 0, 1.0);
    cr_assert_str_eq(b, "999 events  999 events/s  ETA --");
    dashi_progress_format(b, sizeof b, 0, 0, 100, 0.0);
    cr_assert_str_eq(b, "[                    ]   0.0%  0 events  - events/s  ETA --");
    dashi_progress_format(b, sizeof b, 1000, 0, 0, 0.0);
    cr_assert_str_eq(b, "1,000 events  - events/s  ETA --");
}

Test(progress, format_truncates_like_snprintf) {
    char b[10], full[160];
    size_t n = dashi_progress_format(full, sizeof full, 1234, 450, 1000, 10.0);
    cr_assert_eq(dashi_progress_format(b, sizeof b, 1234, 450, 1000, 10.0), n);
    cr_assert_str_eq(b, "[########");
    cr_assert_eq(dashi_progress_format(NULL, 0, 1234, 450, 1000, 10.0), n);
}

Test(progress, wanted_only_on_a_terminal) {
    FILE *f = tmpfile();
    cr_assert(f);
    cr_assert_not(dashi_progress_wanted(f, false));
    cr_assert_not(dashi_progress_wanted(f, true));
    fclose(f);
    int m, s;
    cr_assert_eq(openpty(&m, &s, NULL, NULL, NULL), 0);
    FILE *t = fdopen(s, "w");
    cr_assert(t);
    cr_assert(dashi_progress_wanted(t, false));
    cr_assert_not(dashi_progress_wanted(t, true));
    fclose(t);
    close(m);
}

/* ---- through the binary ---- */

static char dir[256], events[512], outputs[600];

static void setup(void) {
    dashi_gen_opts o;
    char err[256] = "";
    uint64_t n = 0;
    FILE *f;
    cr_assert(dashi_test_tmpdir(dir, sizeof dir));
    snprintf(events, sizeof events, "%s/events.ndjson", dir);
    snprintf(outputs, sizeof outputs, "%s/out.ndjson", dir);
    dashi_gen_opts_default(&o);
    o.ambassadors = 50;
    o.customers = 1500;
    cr_assert((f = fopen(events, "w")));
    cr_assert_eq(dashi_generate(&o, f, &n, err, sizeof err), DASHI_OK, "%s", err);
    cr_assert_eq(fclose(f), 0);
}

/* Run `dashi replay` with stderr on a pipe (pty 0) or a pseudo-terminal; returns what stderr got. */
static char *run_replay(int pty, int quiet) {
    int fds[2], m = -1, s = -1;
    if (pty)
        cr_assert_eq(openpty(&m, &s, NULL, NULL, NULL), 0);
    else {
        cr_assert_eq(pipe(fds), 0);
        m = fds[0];
        s = fds[1];
    }
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(s, 2);
        close(m);
        close(s);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        const char *argv[] = {DASHI_BINARY, "replay", "--in", events, "--out", outputs,
                              "--until", "2022-08-31T00:00:00+08:00", quiet ? "--quiet" : NULL, NULL};
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(s);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(m, buf + len, cap - len - 1);
        if (r > 0)
            len += (size_t)r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            break; /* EOF on a pipe, EIO on a pty whose slave closed */
    }
    buf[len] = '\0';
    close(m);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dashi replay failed: %s", buf);
    return buf;
}

Test(progress, replay_is_silent_on_a_pipe, .init = setup) {
    char *err = run_replay(0, 0);
    cr_assert(strstr(err, "dashi replay:") && strstr(err, "events applied"), "no summary: %s", err);
    cr_assert_null(strchr(err, '\r'), "a progress line on a pipe: %s", err);
    cr_assert_null(strstr(err, "events/s"), "a progress line on a pipe: %s", err);
    cr_assert_null(strstr(err, "\033["), "terminal escapes on a pipe: %s", err);
    free(err);
}

Test(progress, replay_draws_on_a_terminal_and_not_when_quiet, .init = setup) {
    char *tty = run_replay(1, 0);
    char *plain = dashi_test_slurp(outputs, NULL);
    cr_assert(strstr(tty, "events/s"), "no progress on a terminal: %s", tty);
    cr_assert(strstr(tty, "\r[####################] 100.0%"), "no final line: %s", tty);
    cr_assert(strstr(tty, "done in "), "%s", tty);
    cr_assert(strstr(tty, "events applied"), "no summary: %s", tty);
    free(tty);
    char *quiet = run_replay(1, 1);
    cr_assert_eq(quiet[0], '\0', "--quiet printed on a terminal: %s", quiet);
    free(quiet);
    char *again = dashi_test_slurp(outputs, NULL);
    cr_assert(plain && again && strcmp(plain, again) == 0, "outputs differ with the progress line");
    free(plain);
    free(again);
}
