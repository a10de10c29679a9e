/* bench/smtp_floor.c: the floor of a process per SMTP connection, for `make bench`.
 *
 *     tcpserver -R -H -l bench 127.0.0.1 5525 bench/out/smtp_floor
 *
 * A statically linked SMTP responder that does nothing else: it greets, answers every
 * command 250 (354 to DATA, 221 to QUIT), reads the message to the lone dot and throws it
 * away. It reads no file, stores nothing, logs nothing. What a burst against it costs is what
 * tcpserver's fork, the exec and the exit of a small program and the TCP connection cost on
 * this machine, before any mail system has done any work (bench/README.md, "The floor").
 * Lines are cut at 1000 bytes; input ends the session at EOF or after 60 s of silence.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char in[8192];
static size_t have, pos;

/* One line into out (at most size-1 bytes kept, NUL-terminated); -1 at EOF or timeout. */
static int get_line(char *out, size_t size) {
    size_t n = 0;
    for (;;) {
        if (pos == have) {
            struct pollfd p = {0, POLLIN, 0};
            if (poll(&p, 1, 60000) <= 0) return -1;
            ssize_t got = read(0, in, sizeof in);
            if (got <= 0) return -1;
            have = (size_t)got;
            pos = 0;
        }
        char c = in[pos++];
        if (n < size - 1) out[n++] = c;
        if (c == '\n') {
            out[n] = '\0';
            return (int)n;
        }
    }
}

static void say(const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t w = write(1, s, len);
        if (w <= 0) _exit(0);
        s += w;
        len -= (size_t)w;
    }
}

int main(void) {
    char line[1000];
    say("220 floor ESMTP\r\n");
    while (get_line(line, sizeof line) >= 0) {
        if (strncasecmp(line, "DATA", 4) == 0) {
            say("354 go on\r\n");
            while (get_line(line, sizeof line) >= 0 && strcmp(line, ".\r\n") != 0) {
            }
            say("250 ok\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            say("221 bye\r\n");
            return 0;
        } else if (strncasecmp(line, "EHLO", 4) == 0) {
            say("250-floor\r\n250 PIPELINING\r\n");
        } else {
            say("250 ok\r\n");
        }
    }
    return 0;
}
