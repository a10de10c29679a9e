/* bench/proc_cost.c: what the kernel charges for the pieces of a process, on this machine.
 *
 *     cc -O2 -o /tmp/proc_cost bench/proc_cost.c && /tmp/proc_cost [PROGRAM ...]
 *
 * Not run by `make bench` (bench/README.md, "Where tikimail was behind"). Prints, each as
 * the mean over a loop: a system call (getppid), the first write to a fresh anonymous page
 * (a page fault), fork + _exit + waitpid of this small process, and fork + exec + wait of each
 * PROGRAM given, run with no arguments, stdin from /dev/null and its output thrown away
 * (tikimail's programs then print their usage or refuse, and exit: their start-up and exit
 * is what is measured).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const int calls = 200000, pages = 20000, forks = 300;
    double t = now();
    for (int i = 0; i < calls; i++) syscall(SYS_getppid);
    printf("system call                 %8.2f us\n", (now() - t) / calls * 1e6);

    char *p = mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    t = now();
    for (int i = 0; i < pages; i++) p[(size_t)i * 4096] = 1;
    printf("page fault (anonymous)      %8.2f us\n", (now() - t) / pages * 1e6);
    munmap(p, (size_t)pages * 4096);

    t = now();
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        waitpid(pid, NULL, 0);
    }
    printf("fork + exit + wait          %8.1f us\n", (now() - t) / forks * 1e6);

    for (int a = 1; a < argc; a++) {
        t = now();
        for (int i = 0; i < forks; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
                execl(argv[a], argv[a], (char *)NULL);
                _exit(127);
            }
            waitpid(pid, NULL, 0);
        }
        printf("fork + exec + exit %-24s %8.1f us\n", argv[a], (now() - t) / forks * 1e6);
    }
    return 0;
}
