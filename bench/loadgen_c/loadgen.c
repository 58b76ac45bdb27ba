// A fixed-rate (open loop) HTTP load generator for bench/soak.py, the same rules, flags and JSON as
// bench/loadgen_go: each connection follows its own schedule and a request's latency counts from
// when it was due (as wrk2 does), so a stalled server shows up as latency, not as a lower rate.
//
// C, one thread, epoll and a timerfd, because the load generator shares the machine with what it
// measures. The Go one cost 0.35 cores at 2,000 requests/s once the soak ran it at real-time
// priority: its runtime's monitor thread sleeps 20 us at a time whenever the scheduler wakes from
// idle, which at this rate is always (perf: 55% of its samples in nanosleep). Here a request costs a
// write, a read and a share of one epoll_wait.
//
//   loadgen -url http://127.0.0.1:8000/features/user/%d?feature_service=ads_ranking -ids 100000
//           -rate 2000 -seconds 60 -conns 32 [-timeout 5s] [-worst-seconds 5 -slow 5ms]
//
// Prints one JSON object: ok, failed, timed_out, p50_ms, p99_ms, max_ms, worst_seconds.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 16384

typedef struct {
    int fd;
    int awaiting;     // a request is out and its answer not read yet
    int64_t due;      // monotonic ns the current (or next) request is due
    int64_t sent;     // when it was written, for the timeout
    uint64_t rng;
    size_t len;
    char buf[BUF];
} conn_t;

static struct sockaddr_in addr;
static char path_fmt[2048], host_hdr[256];
static double *lat;
static size_t nlat, caplat;
static long ok_n, failed_n, timed_out_n;
static int *slow_by_s;  // per second from the start
static long nseconds;
static int64_t start_mono, start_real, slow_ns;  // start_real: wall-clock ns at start_mono
static char first_err[256];

static int64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void fail(const char *why) {
    if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", why);
}

static void die(const char *msg) {
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

// Go's duration syntax for the flags the soak passes: 5s, 5ms, 5.0ms, 500us, 100ns.
static int64_t parse_duration(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s) die("bad duration");
    if (!strcmp(end, "s")) return (int64_t)(v * 1e9);
    if (!strcmp(end, "ms")) return (int64_t)(v * 1e6);
    if (!strcmp(end, "us") || !strcmp(end, "\xc2\xb5s")) return (int64_t)(v * 1e3);
    if (!strcmp(end, "ns")) return (int64_t)v;
    die("a duration needs a unit: ns, us, ms or s");
    return 0;
}

static uint64_t next_rand(uint64_t *s) {  // xorshift64
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void close_conn(conn_t *c, int ep) {
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->len = 0;
}

static int open_conn(conn_t *c, int ep) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    c->fd = fd;
    c->len = 0;
    return 0;
}

static void record(conn_t *c, int outcome, int64_t now, int64_t interval) {
    // outcome: 0 ok, 1 failed, 2 timed out
    int64_t took = now - c->due;
    if (outcome == 0) {
        ok_n++;
        if (nlat == caplat) {
            caplat *= 2;
            lat = realloc(lat, caplat * sizeof *lat);
        }
        lat[nlat++] = took / 1e6;
    } else if (outcome == 1) {
        failed_n++;
    } else {
        timed_out_n++;
    }
    if (outcome != 0 || took > slow_ns) {
        // By wall-clock second of the due time, as the Go one: the soak lines them up with other clocks.
        long sec = (long)((start_real + (c->due - start_mono)) / 1000000000LL - start_real / 1000000000LL);
        if (sec >= 0 && sec < nseconds) slow_by_s[sec]++;
    }
    c->awaiting = 0;
    c->due += interval;
}

// 1: a whole answer is in the buffer (status in *status), 0: not yet, -1: not HTTP/1.1 as expected.
static int parse(conn_t *c, int *status) {
    char *head_end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!head_end) return c->len == BUF ? -1 : 0;
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 ", 9)) return -1;
    *status = atoi(c->buf + 9);
    long length = -1;
    for (char *line = memchr(c->buf, '\n', head_end - c->buf) + 1; line < head_end;) {
        char *eol = memchr(line, '\n', head_end + 2 - line);
        if (eol - line > 15 && !strncasecmp(line, "content-length:", 15)) length = strtol(line + 15, NULL, 10);
        line = eol + 1;
    }
    if (length < 0) return -1;
    return (size_t)(head_end + 4 - c->buf) + (size_t)length <= c->len ? 1 : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double p) {
    if (nlat == 0) return 0;
    return lat[(size_t)(p / 100 * (double)(nlat - 1))];
}

int main(int argc, char **argv) {
    const char *url = NULL;
    long ids = 100000, nconns = 32, worst = 0;
    double rate = 2000, seconds = 60;
    int64_t timeout = 5000000000LL;
    slow_ns = 5000000LL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "-url")) url = v;
        else if (!strcmp(k, "-ids")) ids = atol(v);
        else if (!strcmp(k, "-rate")) rate = atof(v);
        else if (!strcmp(k, "-seconds")) seconds = atof(v);
        else if (!strcmp(k, "-conns")) nconns = atol(v);
        else if (!strcmp(k, "-timeout")) timeout = parse_duration(v);
        else if (!strcmp(k, "-worst-seconds")) worst = atol(v);
        else if (!strcmp(k, "-slow")) slow_ns = parse_duration(v);
        else die("unknown flag (flags: -url -ids -rate -seconds -conns -timeout -worst-seconds -slow)");
    }
    if (!url) die("-url is required");
    if (ids < 1 || nconns < 1 || rate <= 0 || seconds <= 0) die("-ids, -conns, -rate and -seconds must be positive");
    // http://host:port/path with one %d
    if (strncmp(url, "http://", 7)) die("-url must be http://host:port/path with one %d");
    const char *hp = url + 7, *slash = strchr(hp, '/');
    const char *d = slash ? strstr(slash, "%d") : NULL;
    if (!slash || !d || strstr(d + 2, "%d") || strchr(slash, '%') != d || (size_t)(slash - hp) >= sizeof host_hdr)
        die("-url must be http://host:port/path with one %d");
    memcpy(host_hdr, hp, slash - hp);
    char host[256];
    strcpy(host, host_hdr);
    char *colon = strrchr(host, ':');
    int port = 80;
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res)) die("cannot resolve the host");
    addr = *(struct sockaddr_in *)res->ai_addr;
    addr.sin_port = htons(port);
    freeaddrinfo(res);
    snprintf(path_fmt, sizeof path_fmt, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", slash, host_hdr);

    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    int64_t interval = (int64_t)(1e9 * nconns / rate);
    nseconds = (long)seconds + 2;
    slow_by_s = calloc(nseconds, sizeof *slow_by_s);
    caplat = (size_t)(rate * seconds) + 1024;
    lat = malloc(caplat * sizeof *lat);
    conn_t *conns = calloc(nconns, sizeof *conns);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    start_mono = mono_ns();
    start_real = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
    int64_t end = start_mono + (int64_t)(seconds * 1e9);
    for (long i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].rng = (uint64_t)i * 0x9E3779B97F4A7C15ULL + 1;
        conns[i].due = start_mono + interval * i / nconns;  // spread over one interval: an even rate
    }
    char request[4096];
    struct epoll_event events[64];
    for (;;) {
        int64_t now = mono_ns(), next = INT64_MAX;
        int live = 0;
        for (long i = 0; i < nconns; i++) {
            conn_t *c = &conns[i];
            if (c->awaiting) {
                if (now - c->sent >= timeout) {
                    fail("timeout");
                    close_conn(c, ep);
                    record(c, 2, now, interval);
                }
            }
            while (!c->awaiting && c->due < end && c->due <= now) {
                if (c->fd < 0 && open_conn(c, ep) < 0) {
                    fail(strerror(errno));
                    record(c, 1, now, interval);
                    continue;
                }
                int n = snprintf(request, sizeof request, path_fmt,
                                 (long)(next_rand(&c->rng) % (uint64_t)ids) + 1);
                if (write(c->fd, request, n) != n) {
                    fail(strerror(errno));
                    close_conn(c, ep);
                    record(c, 1, now, interval);
                    continue;
                }
                c->awaiting = 1;
                c->sent = now;
            }
            if (c->awaiting) {
                live = 1;
                if (c->sent + timeout < next) next = c->sent + timeout;
            } else if (c->due < end) {
                live = 1;
                if (c->due < next) next = c->due;
            }
        }
        if (!live) break;
        struct itimerspec its = {.it_value = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL}};
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        int n = epoll_wait(ep, events, 64, -1);
        now = mono_ns();
        for (int e = 0; e < n; e++) {
            conn_t *c = events[e].data.ptr;
            if (c == NULL) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0) { /* re-armed above */ }
                continue;
            }
            ssize_t got = read(c->fd, c->buf + c->len, BUF - c->len);
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                fail(got == 0 ? "connection closed by the server" : strerror(errno));
                close_conn(c, ep);
                if (c->awaiting) record(c, 1, now, interval);
                continue;
            }
            c->len += (size_t)got;
            if (!c->awaiting) continue;  // bytes nobody asked for: dropped with the next answer
            int status = 0, done = parse(c, &status);
            if (done < 0) {
                fail("bad answer");
                close_conn(c, ep);
                record(c, 1, now, interval);
            } else if (done > 0) {
                c->len = 0;
                if (status != 200) {
                    char why[32];
                    snprintf(why, sizeof why, "status %d", status);  // 503: Redis timed out; 5xx else: a bug
                    fail(why);
                }
                record(c, status == 200 ? 0 : 1, now, interval);
            }
        }
    }
    if (failed_n + timed_out_n) fprintf(stderr, "loadgen: first error: %s\n", first_err);
    qsort(lat, nlat, sizeof *lat, cmp_double);
    printf("{\"ok\":%ld,\"failed\":%ld,\"timed_out\":%ld,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,"
           "\"worst_seconds\":[", ok_n, failed_n, timed_out_n, pct(50), pct(99), pct(100));
    for (long w = 0; w < worst; w++) {  // the seconds with the most slow requests, most first
        long best = -1;
        for (long s = 0; s < nseconds; s++)
            if (slow_by_s[s] > 0 && (best < 0 || slow_by_s[s] > slow_by_s[best])) best = s;
        if (best < 0) break;
        printf("%s{\"unix_s\":%ld,\"slow\":%d}", w ? "," : "", (long)(start_real / 1000000000LL) + best, slow_by_s[best]);
        slow_by_s[best] = 0;
    }
    printf("]}\n");
    return 0;
}
