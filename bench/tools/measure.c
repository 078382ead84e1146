/*
 * measure: runs one command and appends one line to a file:
 *     <wall ns> <user+sys CPU ns of it and its waited-for children> <peak RSS KiB> <status>
 * status is the exit code, or 128+N when signal N ended it. The command's stdin, stdout and
 * stderr are left as the caller set them up.
 *
 *     measure -o RESULTS -- PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns_of(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }
static long long ns_of_tv(struct timeval t) { return t.tv_sec * 1000000000LL + t.tv_usec * 1000LL; }

int main(int argc, char **argv)
{
    const char *out = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else
            break;
    }
    if (!out || i >= argc) {
        fprintf(stderr, "usage: measure -o RESULTS -- PROGRAM [ARGS...]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 125;
    }
    if (pid == 0) {
        execvp(argv[i], argv + i);
        fprintf(stderr, "measure: %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("measure: wait4");
            return 125;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    /* ru of wait4 covers the child and the descendants it waited for. */
    FILE *f = fopen(out, "a");
    if (!f) {
        perror(out);
        return 125;
    }
    fprintf(f, "%lld %lld %ld %d\n", ns_of(t1) - ns_of(t0), ns_of_tv(ru.ru_utime) + ns_of_tv(ru.ru_stime),
            ru.ru_maxrss, status);
    fclose(f);
    return status;
}
