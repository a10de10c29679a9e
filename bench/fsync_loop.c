/* bench/fsync_loop.c: the machine's ceiling for durable small-file commits, for `make bench`.
 *
 *     fsync_loop DIR SECONDS
 *
 * In DIR, one process repeats for SECONDS: create tmp/<n> (O_CREAT|O_EXCL), write 4096
 * bytes, fsync it, rename it to new/<n>, fsync new/ (the Maildir and queue commit: what every
 * message costs at least once). It removes nothing: on a filesystem without a journal every
 * create scans the inodes freed in the last 30 s (bench/README.md, "Deletions"), so deleting
 * here would slow this loop and the burst measured after it; the caller removes DIR when the
 * benchmark is over. Prints one line:
 *
 *     ops=1234 seconds=3.001 ops_per_s=411.2 fsync_per_s=822.4
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what) {
    fprintf(stderr, "fsync_loop: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fsync_loop DIR SECONDS\n");
        return 100;
    }
    if (chdir(argv[1]) != 0) fail(argv[1]);
    double limit = atof(argv[2]);
    mkdir("tmp", 0700);
    mkdir("new", 0700);
    int newdir = open("new", O_RDONLY | O_DIRECTORY);
    if (newdir < 0) fail("open new");
    char block[4096];
    memset(block, 'x', sizeof block);

    long ops = 0;
    double start = now(), elapsed = 0;
    while ((elapsed = now() - start) < limit) {
        char tmp[64], dst[64];
        snprintf(tmp, sizeof tmp, "tmp/%ld", ops);
        snprintf(dst, sizeof dst, "new/%ld", ops);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) fail("create");
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block) fail("write");
        if (fsync(fd) != 0) fail("fsync file");
        close(fd);
        if (rename(tmp, dst) != 0) fail("rename");
        if (fsync(newdir) != 0) fail("fsync dir");
        ops++;
    }
    printf("ops=%ld seconds=%.3f ops_per_s=%.1f fsync_per_s=%.1f\n", ops, elapsed, ops / elapsed, 2 * ops / elapsed);
    return 0;
}
