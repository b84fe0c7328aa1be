/* consumer.c - benchmark data sink for bpipe's benchmarks.
 *
 * Usage:
 *   consumer read
 *   consumer splice
 *   consumer rate [MARK_FILE]
 *   consumer slow BYTES_PER_SECOND
 *   consumer trace TRACE_FILE
 *
 * Reads stdin to EOF and prints one line of key=value pairs on stdout.
 *
 *   read    read(2) into a 1 MiB buffer.  Prints: bytes=N last_byte=T
 *   splice  splice(2) from stdin to an fd open on /dev/null, 1 MiB at a
 *           time; falls back to read(2) if stdin cannot be spliced (not a
 *           pipe).  Prints: bytes=N mode=splice|read last_byte=T
 *           (read and splice: T is the CLOCK_REALTIME time, in seconds
 *           since the epoch like bash's $EPOCHREALTIME, at which the last
 *           byte arrived, 0 if none did; EOF may come later, when the
 *           writer closes)
 *   rate    read(2) into a 1 MiB buffer and timestamp every read with
 *           CLOCK_MONOTONIC.  Prints:
 *             bytes=N           total bytes
 *             span_s=S          seconds from the first byte to the last byte
 *             avg_Bps=R         bytes / span_s (0 if span_s is 0)
 *             steady_Bps=R      bytes arriving after first byte + 1 s, divided
 *                               by (last byte - (first byte + 1 s))
 *             maxwin_B=N        the maximum number of bytes received in any
 *                               250 ms window [s, s + 0.25] with
 *                               s >= first byte + 1 s (exact over the samples:
 *                               a window's best start is a sample's time)
 *             maxwin_all_B=N    the same over all windows, the first second
 *                               included
 *           With MARK_FILE (written by `producer idle`, holding the
 *           CLOCK_MONOTONIC time at which the producer resumed writing after
 *           its idle period; read at EOF), also:
 *             idle_seen_s=S     mark - time of the last read before the mark
 *                               (how long the consumer really saw no data
 *                               before the producer resumed; small or
 *                               negative means the relay was still draining)
 *             post_B=N          bytes read at or after the mark
 *             post_first_s=S    first read after the mark - mark
 *             post_last_s=S     last read - mark (time to receive the
 *                               post-idle data)
 *             post_maxwin_B=N   maximum bytes in any 250 ms window starting
 *                               at or after the mark
 *   slow    a slow reader: read(2) 64 KiB at a time, sleeping between reads
 *           so that the bytes read by time t never exceed
 *           BYTES_PER_SECOND × (t - first byte) by more than one read.
 *           BYTES_PER_SECOND takes K/M/G (1024-based).  Prints: bytes=N
 *   trace   read(2) into a 1 MiB buffer and timestamp every read with
 *           CLOCK_MONOTONIC, kept in memory; at EOF writes one line per read
 *           to TRACE_FILE, "T BYTES" (the time in seconds, 6 decimals, and
 *           the bytes received so far, that read's included), so that a
 *           script can compare the arrivals with times taken elsewhere on
 *           the same clock.  Prints: bytes=N reads=N
 *
 * Timestamps are taken right after read(2) returns, with the byte count
 * returned by that read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)
#define SLOW_BLOCK (64u << 10)
#define WINDOW 0.25

static void die(const char *what)
{
    fprintf(stderr, "consumer: %s: %s\n", what, strerror(errno));
    exit(2);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CLOCK_REALTIME of the last read that returned data (read, splice). */
static double last_byte;

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long read_loop(char *buf)
{
    unsigned long long total = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (n == 0)
            return total;
        last_byte = now_real();
        total += (unsigned long long)n;
    }
}

static double parse_rate(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; end++; break;
    case 'm': case 'M': v *= 1024 * 1024; end++; break;
    case 'g': case 'G': v *= 1024 * 1024 * 1024; end++; break;
    }
    if (errno || end == s || *end || !(v > 0)) {
        fprintf(stderr, "consumer: bad rate '%s'\n", s);
        exit(1);
    }
    return v;
}

/* Paced by an absolute schedule from the first byte, so that time lost to
 * scheduling delays is caught up rather than added up. */
static unsigned long long slow_loop(char *buf, double rate)
{
    unsigned long long total = 0;
    double start = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, SLOW_BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (n == 0)
            return total;
        if (total == 0)
            start = now_mono();
        total += (unsigned long long)n;
        double due = start + (double)total / rate;
        struct timespec ts = { .tv_sec = (time_t)due,
                               .tv_nsec = (long)((due - (double)(time_t)due) * 1e9) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
}

struct sample {
    double t;
    size_t n;
};

/* Maximum bytes in a window [s, s + WINDOW] over all s >= from.  Samples are
 * sorted by time; the best window starts at some sample's time. */
static unsigned long long max_window(const struct sample *s, size_t count, double from)
{
    unsigned long long best = 0, sum = 0;
    size_t j = 0;
    for (size_t i = 0; i < count; i++) {
        if (j < i) {
            j = i;
            sum = 0;
        }
        while (j < count && s[j].t - s[i].t <= WINDOW) {
            sum += s[j].n;
            j++;
        }
        if (s[i].t >= from && sum > best)
            best = sum;
        sum -= s[i].n; /* slide the start past sample i */
    }
    return best;
}

/* Reads stdin to EOF, one sample (CLOCK_MONOTONIC right after read(2)
 * returned, bytes) per read; sets *count and *total. */
static struct sample *read_samples(char *buf, size_t *count, unsigned long long *total)
{
    size_t cap = 1 << 16;
    struct sample *s = malloc(cap * sizeof *s);
    if (!s)
        die("malloc");
    *count = 0;
    *total = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, BLOCK);
        double t = now_mono();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (n == 0)
            return s;
        if (*count == cap) {
            cap *= 2;
            s = realloc(s, cap * sizeof *s);
            if (!s)
                die("realloc");
        }
        s[*count].t = t;
        s[*count].n = (size_t)n;
        (*count)++;
        *total += (unsigned long long)n;
    }
}

static int trace_mode(char *buf, const char *trace_file)
{
    size_t count;
    unsigned long long total, sofar = 0;
    struct sample *s = read_samples(buf, &count, &total);
    FILE *f = fopen(trace_file, "w");
    if (!f)
        die(trace_file);
    for (size_t i = 0; i < count; i++) {
        sofar += s[i].n;
        fprintf(f, "%.6f %llu\n", s[i].t, sofar);
    }
    if (fclose(f))
        die(trace_file);
    printf("bytes=%llu reads=%zu\n", total, count);
    free(s);
    return 0;
}

static int rate_mode(char *buf, const char *mark_file)
{
    size_t count;
    unsigned long long total;
    struct sample *s = read_samples(buf, &count, &total);

    double span = count ? s[count - 1].t - s[0].t : 0;
    double avg = span > 0 ? (double)total / span : 0;
    double steady = 0;
    unsigned long long maxwin = 0, maxwin_all = 0;
    if (count) {
        double from = s[0].t + 1.0;
        unsigned long long after = 0;
        for (size_t i = 0; i < count; i++)
            if (s[i].t > from)
                after += s[i].n;
        double dur = s[count - 1].t - from;
        steady = dur > 0 ? (double)after / dur : 0;
        maxwin = max_window(s, count, from);
        maxwin_all = max_window(s, count, s[0].t);
    }
    printf("bytes=%llu span_s=%.6f avg_Bps=%.1f steady_Bps=%.1f maxwin_B=%llu maxwin_all_B=%llu",
           total, span, avg, steady, maxwin, maxwin_all);

    if (mark_file) {
        FILE *f = fopen(mark_file, "r");
        double mark;
        if (!f || fscanf(f, "%lf", &mark) != 1) {
            fprintf(stderr, "consumer: cannot read a time from %s\n", mark_file);
            printf("\n");
            return 2;
        }
        fclose(f);
        double last_pre = count ? s[0].t : mark;
        unsigned long long post = 0;
        double post_first = -1;
        for (size_t i = 0; i < count; i++) {
            if (s[i].t < mark) {
                last_pre = s[i].t;
            } else {
                if (post_first < 0)
                    post_first = s[i].t - mark;
                post += s[i].n;
            }
        }
        double post_last = count ? s[count - 1].t - mark : 0;
        printf(" idle_seen_s=%.6f post_B=%llu post_first_s=%.6f post_last_s=%.6f post_maxwin_B=%llu",
               mark - last_pre, post, post_first, post_last, max_window(s, count, mark));
    }
    printf("\n");
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: consumer read|splice|rate [MARK_FILE]|slow BYTES_PER_SECOND|trace FILE\n");
        return 1;
    }
    const char *mode = argv[1];
    char *buf;
    if (posix_memalign((void **)&buf, 4096, BLOCK))
        die("posix_memalign");

    if (!strcmp(mode, "read")) {
        unsigned long long total = read_loop(buf);
        printf("bytes=%llu last_byte=%.6f\n", total, last_byte);
    } else if (!strcmp(mode, "splice")) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0)
            die("/dev/null");
        unsigned long long total = 0;
        const char *how = "splice";
        for (;;) {
            ssize_t n = splice(STDIN_FILENO, NULL, null, NULL, BLOCK, SPLICE_F_MOVE);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EINVAL && total == 0) {
                    total = read_loop(buf);
                    how = "read";
                    break;
                }
                die("splice");
            }
            if (n == 0)
                break;
            last_byte = now_real();
            total += (unsigned long long)n;
        }
        printf("bytes=%llu mode=%s last_byte=%.6f\n", total, how, last_byte);
    } else if (!strcmp(mode, "slow")) {
        if (argc < 3) {
            fprintf(stderr, "usage: consumer slow BYTES_PER_SECOND\n");
            return 1;
        }
        printf("bytes=%llu\n", slow_loop(buf, parse_rate(argv[2])));
    } else if (!strcmp(mode, "rate")) {
        return rate_mode(buf, argc > 2 ? argv[2] : NULL);
    } else if (!strcmp(mode, "trace")) {
        if (argc < 3) {
            fprintf(stderr, "usage: consumer trace TRACE_FILE\n");
            return 1;
        }
        return trace_mode(buf, argv[2]);
    } else {
        fprintf(stderr, "consumer: unknown mode '%s' (read, splice, rate, slow, trace)\n", mode);
        return 1;
    }
    return 0;
}
