/* bench/pop3_drain.c: the POP3 load generator of `make bench` (bench/README.md).
 *
 *     pop3_drain HOST PORT ACCOUNTS
 *
 * ACCOUNTS is a file of lines "address password". One process per line, all started at once,
 * each logs in with USER/PASS, asks STAT, then for every message RETR n and DELE n, and QUIT
 * (the deletions happen at QUIT, RFC 1939). The parent waits for all of them and prints one
 * line of key=value pairs:
 *
 *     clients=20 messages=5000 bytes=21510000 seconds=1.234 client_cpu=0.321
 *
 * bytes counts the message lines as received (after +OK, before the final "."), CRLFs
 * included. seconds is the wall time from the first fork to the last exit; client_cpu is the
 * user+system time of all the client processes, so that client_cpu/seconds shows how much of
 * the machine's CPUs the generator itself took. Exit status 0 when every client got through,
 * 1 otherwise (the failing client says why on stderr). Plain TCP only: no TLS, no APOP.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define BUF_SIZE 65536

struct conn {
    int fd;
    char buf[BUF_SIZE];
    size_t start, end;
    const char *who;
};

static void die(struct conn *c, const char *what) {
    fprintf(stderr, "pop3_drain: %s: %s\n", c ? c->who : "-", what);
    _exit(1);
}

/* read_line: the next line (CRLF or LF ended) into *line, *len; it points into the buffer
 * and stays valid until the next call. Lines longer than the buffer are returned in pieces. */
static void read_line(struct conn *c, const char **line, size_t *len) {
    for (;;) {
        char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
        if (nl) {
            *line = c->buf + c->start;
            *len = (size_t)(nl + 1 - (c->buf + c->start));
            c->start += *len;
            return;
        }
        if (c->start > 0) {
            memmove(c->buf, c->buf + c->start, c->end - c->start);
            c->end -= c->start;
            c->start = 0;
        }
        if (c->end == sizeof c->buf) {
            *line = c->buf;
            *len = c->end;
            c->start = c->end = 0;
            return;
        }
        ssize_t n = read(c->fd, c->buf + c->end, sizeof c->buf - c->end);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die(c, n == 0 ? "connection closed" : strerror(errno));
        c->end += (size_t)n;
    }
}

static void send_cmd(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_cmd(struct conn *c, const char *fmt, ...) {
    char out[1100];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof out - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof out - 2) die(c, "command too long");
    out[n++] = '\r';
    out[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(c->fd, out + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die(c, strerror(errno));
        off += (int)w;
    }
}

/* expect_ok: read one reply line; anything but +OK ends the client. */
static void expect_ok(struct conn *c, const char *after, char *copy, size_t copy_size) {
    const char *line;
    size_t len;
    read_line(c, &line, &len);
    if (len < 3 || memcmp(line, "+OK", 3) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "after %s: %.*s", after, (int)(len > 200 ? 200 : len), line);
        die(c, msg);
    }
    if (copy) {
        size_t n = len < copy_size - 1 ? len : copy_size - 1;
        memcpy(copy, line, n);
        copy[n] = 0;
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* client: one account, start to QUIT; writes "messages bytes\n" to out_fd. */
static void client(const char *host, int port, const char *user, const char *password, int out_fd) {
    static struct conn c;
    c.who = user;
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c.fd < 0) die(&c, strerror(errno));
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die(&c, "bad host address");
    if (connect(c.fd, (struct sockaddr *)&sa, sizeof sa) < 0) die(&c, strerror(errno));

    expect_ok(&c, "connect", NULL, 0);
    send_cmd(&c, "USER %s", user);
    expect_ok(&c, "USER", NULL, 0);
    send_cmd(&c, "PASS %s", password);
    expect_ok(&c, "PASS", NULL, 0);
    char stat[200];
    send_cmd(&c, "STAT");
    expect_ok(&c, "STAT", stat, sizeof stat);
    long count = 0;
    if (sscanf(stat, "+OK %ld", &count) != 1 || count < 0) die(&c, "bad STAT reply");

    unsigned long long bytes = 0;
    for (long i = 1; i <= count; i++) {
        send_cmd(&c, "RETR %ld", i);
        expect_ok(&c, "RETR", NULL, 0);
        for (;;) {
            const char *line;
            size_t len;
            read_line(&c, &line, &len);
            if ((len == 3 && memcmp(line, ".\r\n", 3) == 0) || (len == 2 && memcmp(line, ".\n", 2) == 0)) break;
            bytes += len;
        }
        send_cmd(&c, "DELE %ld", i);
        expect_ok(&c, "DELE", NULL, 0);
    }
    send_cmd(&c, "QUIT");
    expect_ok(&c, "QUIT", NULL, 0);
    close(c.fd);

    char report[64];
    int n = snprintf(report, sizeof report, "%ld %llu\n", count, bytes);
    if (write(out_fd, report, (size_t)n) != n) die(&c, "cannot report");
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: pop3_drain HOST PORT ACCOUNTS\n");
        return 100;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    FILE *f = fopen(argv[3], "r");
    if (!f) {
        perror(argv[3]);
        return 100;
    }
    static char users[MAX_CLIENTS][256], passwords[MAX_CLIENTS][256];
    int clients = 0;
    char line[600];
    while (fgets(line, sizeof line, f) && clients < MAX_CLIENTS) {
        if (sscanf(line, "%255s %255s", users[clients], passwords[clients]) == 2) clients++;
    }
    fclose(f);
    if (clients == 0) {
        fprintf(stderr, "pop3_drain: no accounts in %s\n", argv[3]);
        return 100;
    }

    int pipes[MAX_CLIENTS][2];
    pid_t pids[MAX_CLIENTS];
    double start = now();
    for (int i = 0; i < clients; i++) {
        if (pipe(pipes[i]) < 0) {
            perror("pipe");
            return 1;
        }
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0) {
            close(pipes[i][0]);
            client(host, port, users[i], passwords[i], pipes[i][1]);
        }
        close(pipes[i][1]);
    }
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        int status;
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
    double seconds = now() - start;
    long messages = 0;
    unsigned long long bytes = 0;
    for (int i = 0; i < clients; i++) {
        char report[64] = {0};
        ssize_t n = read(pipes[i][0], report, sizeof report - 1);
        long m = 0;
        unsigned long long b = 0;
        if (n > 0 && sscanf(report, "%ld %llu", &m, &b) == 2) {
            messages += m;
            bytes += b;
        }
        close(pipes[i][0]);
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("clients=%d failed=%d messages=%ld bytes=%llu seconds=%.4f client_cpu=%.4f\n", clients, failed, messages,
           bytes, seconds, cpu);
    return failed ? 1 : 0;
}
