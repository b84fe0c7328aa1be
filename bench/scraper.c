/* scraper.c - scrape an HTTP metrics endpoint at a steady rate, as Prometheus
 * does (only far more often), for bench/metrics.sh.
 *
 * Usage:
 *   scraper PORT RATE_PER_S MAX_S
 *
 * Waits (at most 10 s) for a first `GET /metrics` on 127.0.0.1:PORT to
 * answer 200, then sends one every 1/RATE_PER_S seconds on an absolute
 * schedule (a slow answer delays the next scrape, not the ones after it)
 * until MAX_S seconds have passed or SIGTERM/SIGINT comes.  Each scrape is a
 * new connection, as Prometheus makes one per scrape when the server closes
 * it.  Prints one line on stdout:
 *
 *   scrapes=N ok=N failed=N bytes=N span_s=S rate=R avg_ms=A max_ms=M
 *
 * ok counts answers that start with `HTTP/1.1 200`; bytes is the total of
 * the answers read; rate is scrapes per second over span_s.  Exit status 0,
 * or 1 when the endpoint never answered.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* One scrape: the number of bytes of the answer, or -1; *ok set when it is a
 * 200. */
static long scrape(int port, int *ok)
{
    static const char request[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    static char buf[65536];
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval timeout = {.tv_sec = 5};
    long total = 0;
    *ok = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        send(fd, request, sizeof request - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof request - 1)) {
        close(fd);
        return -1;
    }
    char head[12];
    size_t head_len = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = sizeof head - head_len < (size_t)n ? sizeof head - head_len : (size_t)n;
        memcpy(head + head_len, buf, take);
        head_len += take;
        total += n;
    }
    *ok = head_len == sizeof head && !memcmp(head, "HTTP/1.1 200", sizeof head);
    close(fd);
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: scraper PORT RATE_PER_S MAX_S\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]), max_s = atof(argv[3]);
    if (port <= 0 || port > 65535 || rate <= 0 || max_s <= 0) {
        fprintf(stderr, "scraper: bad arguments\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int ok;
    double give_up = now_s() + 10;
    while (!stop && !(scrape(port, &ok) > 0 && ok)) {
        if (now_s() > give_up) {
            fprintf(stderr, "scraper: nothing answered on port %d\n", port);
            return 1;
        }
        usleep(1000);
    }
    unsigned long scrapes = 0, good = 0, failed = 0;
    unsigned long long bytes = 0;
    double start = now_s(), sum_ms = 0, max_ms = 0;
    double period = 1 / rate;
    while (!stop && now_s() - start < max_s) {
        double t0 = now_s();
        long n = scrape(port, &ok);
        double ms = (now_s() - t0) * 1000;
        scrapes++;
        if (n > 0 && ok)
            good++;
        else
            failed++;
        bytes += n > 0 ? (unsigned long long)n : 0;
        sum_ms += ms;
        if (ms > max_ms)
            max_ms = ms;
        double next = start + scrapes * period;
        struct timespec until = {.tv_sec = (time_t)next,
                                 .tv_nsec = (long)((next - (time_t)next) * 1e9)};
        while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
    }
    double span = now_s() - start;
    printf("scrapes=%lu ok=%lu failed=%lu bytes=%llu span_s=%.3f rate=%.1f avg_ms=%.3f max_ms=%.3f\n",
           scrapes, good, failed, bytes, span, span > 0 ? scrapes / span : 0,
           scrapes ? sum_ms / scrapes : 0, max_ms);
    return 0;
}
