/* producer.c - benchmark data source for bpipe's benchmarks.
 *
 * Usage:
 *   producer write    TOTAL_BYTES
 *   producer vmsplice TOTAL_BYTES
 *   producer idle     TOTAL_BYTES FIRST_BYTES SLEEP_MS [MARK_FILE]
 *
 * Writes TOTAL_BYTES to stdout in blocks of 1 MiB (the last block may be
 * shorter).  The data is text: lines of 128 bytes (127 printable characters
 * and '\n'), so a line-mode relay has real line boundaries to work on.
 * The same TOTAL_BYTES always yields the same bytes, in every mode.
 *
 *   write     plain write(2) of a prefilled 1 MiB buffer.
 *   vmsplice  vmsplice(2) of the 1 MiB page-aligned buffer into the stdout
 *             pipe (the buffer is never modified, so this is safe without
 *             SPLICE_F_GIFT); falls back to write(2) if stdout is not a pipe.
 *   idle      write(2) FIRST_BYTES, sleep SLEEP_MS milliseconds, then write
 *             the remaining TOTAL_BYTES - FIRST_BYTES.  Just before the
 *             resume, the CLOCK_MONOTONIC time (seconds, as a decimal) is
 *             written to MARK_FILE, if given, so that `consumer rate
 *             MARK_FILE` can measure what happened after the idle period.
 *
 * TOTAL_BYTES accepts a plain integer or a suffix K/M/G (powers of 1024).
 * Exit status: 0 on success, 1 on usage error, 2 on an I/O error
 * (EPIPE included: the reader went away before all bytes were written).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)
#define LINE 128

static void die(const char *what)
{
    fprintf(stderr, "producer: %s: %s\n", what, strerror(errno));
    exit(2);
}

static unsigned long long parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) {
        fprintf(stderr, "producer: bad size '%s'\n", s);
        exit(1);
    }
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    }
    if (*end) {
        fprintf(stderr, "producer: bad size '%s'\n", s);
        exit(1);
    }
    return v;
}

static void fill(char *buf)
{
    /* 127 printable characters then '\n'; the characters vary per line so
     * that a relay which drops or duplicates data is caught by a checksum. */
    for (size_t i = 0; i < BLOCK; i++) {
        size_t col = i % LINE, line = i / LINE;
        buf[i] = col == LINE - 1 ? '\n' : (char)(' ' + 1 + (col * 7 + line * 13) % 94);
    }
}

static void write_all(const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Write len bytes of the pattern, in blocks of at most 1 MiB. */
static void write_pattern(const char *buf, unsigned long long len)
{
    while (len) {
        size_t n = len < BLOCK ? (size_t)len : BLOCK;
        write_all(buf, n);
        len -= n;
    }
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: producer write|vmsplice TOTAL_BYTES\n"
                "       producer idle TOTAL_BYTES FIRST_BYTES SLEEP_MS [MARK_FILE]\n");
        return 1;
    }
    const char *mode = argv[1];
    unsigned long long total = parse_size(argv[2]);

    char *buf;
    if (posix_memalign((void **)&buf, 4096, BLOCK))
        die("posix_memalign");
    fill(buf);

    if (!strcmp(mode, "write")) {
        write_pattern(buf, total);
    } else if (!strcmp(mode, "vmsplice")) {
        struct stat st;
        int is_pipe = fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode);
        unsigned long long left = total;
        while (is_pipe && left) {
            size_t want = left < BLOCK ? (size_t)left : BLOCK;
            size_t off = 0;
            while (off < want) {
                struct iovec iov = {buf + off, want - off};
                ssize_t n = vmsplice(STDOUT_FILENO, &iov, 1, 0);
                if (n < 0) {
                    if (errno == EINTR)
                        continue;
                    if (errno == EINVAL || errno == ENOSYS) {
                        /* not spliceable after all: finish with write(2) */
                        write_all(buf + off, want - off);
                        off = want;
                        is_pipe = 0;
                        break;
                    }
                    die("vmsplice");
                }
                off += (size_t)n;
            }
            left -= want;
        }
        write_pattern(buf, left);
    } else if (!strcmp(mode, "idle")) {
        if (argc < 5) {
            fprintf(stderr, "usage: producer idle TOTAL_BYTES FIRST_BYTES SLEEP_MS [MARK_FILE]\n");
            return 1;
        }
        unsigned long long first = parse_size(argv[3]);
        long sleep_ms = atol(argv[4]);
        if (first > total)
            first = total;
        /* First part: the pattern's first `first` bytes.  The second part
         * continues the pattern at the same offset, so the whole stream is
         * identical to `producer write TOTAL_BYTES`. */
        write_pattern(buf, first);
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        if (argc > 5) {
            FILE *f = fopen(argv[5], "w");
            if (!f)
                die(argv[5]);
            fprintf(f, "%.9f\n", now_mono());
            if (fclose(f))
                die(argv[5]);
        }
        unsigned long long left = total - first;
        size_t off = (size_t)(first % BLOCK);
        if (off && left) {
            size_t n = BLOCK - off;
            if (n > left)
                n = (size_t)left;
            write_all(buf + off, n);
            left -= n;
        }
        write_pattern(buf, left);
    } else {
        fprintf(stderr, "producer: unknown mode '%s' (write, vmsplice, idle)\n", mode);
        return 1;
    }
    return 0;
}
