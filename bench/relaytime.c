/* relaytime.c - run one command and report its own resource use, precisely.
 *
 * Usage:
 *   relaytime OUT_FILE LIMIT_S COMMAND [ARGS...]
 *
 * Runs COMMAND (searched in PATH) as a child and waits for it alone, then
 * writes one line to OUT_FILE:
 *
 *   WALL_S USER_S SYS_S MAXRSS_KIB START_S END_S
 *
 * START_S and END_S are the CLOCK_MONOTONIC times (seconds) just before the
 * fork and after the wait, comparable with other tools' monotonic stamps.
 * Times are given with microsecond precision (GNU time prints CPU seconds to 10 ms, too
 * coarse for a relay that spends ~0.05 s of CPU per GiB).  The figures are
 * those wait4(2) returns for that child: its own threads and the children
 * it waited for, nothing else.  Other children this process inherited (the
 * shell's process substitutions, when the shell exec'd relaytime) are
 * neither waited for nor counted.
 *
 * After LIMIT_S seconds the command gets SIGTERM, 5 s later SIGKILL, and
 * relaytime exits 124 (as timeout(1) does).  Otherwise it exits with the
 * command's status, or 128+N if signal N ended it; 127 if it could not be
 * started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: relaytime OUT_FILE LIMIT_S COMMAND [ARGS...]\n");
        return 2;
    }
    unsigned limit = (unsigned)strtoul(argv[2], NULL, 10);
    double t0 = now_mono();
    pid_t pid = fork();
    if (pid < 0) {
        perror("relaytime: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[3], argv + 3);
        fprintf(stderr, "relaytime: %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: wait4 returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    if (limit)
        alarm(limit);

    int status, killed = 0;
    struct rusage ru;
    for (;;) {
        if (wait4(pid, &status, 0, &ru) == pid)
            break;
        if (errno != EINTR) {
            perror("relaytime: wait4");
            return 127;
        }
        if (timed_out) {
            timed_out = 0;
            kill(pid, killed ? SIGKILL : SIGTERM);
            killed = 1;
            alarm(5);
        }
    }
    double t1 = now_mono();

    FILE *f = fopen(argv[1], "w");
    if (!f) {
        fprintf(stderr, "relaytime: %s: %s\n", argv[1], strerror(errno));
        return 127;
    }
    fprintf(f, "%.6f %.6f %.6f %ld %.6f %.6f\n", t1 - t0, seconds(ru.ru_utime),
            seconds(ru.ru_stime), ru.ru_maxrss, t0, t1);
    fclose(f);
    if (killed)
        return 124;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
