/* The C side of testprogs/robust: things a program may do to the process it runs in. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "robust.h"

void *volatile robust_sink;

/* ---- Many threads ------------------------------------------------------------------------- */

static pthread_barrier_t all_started;
static void *volatile thread_keep[8192];

__attribute__((noinline)) void robust_thread_leak(int i) { thread_keep[i] = malloc(100 + (size_t)(i % 7)); }

static void *thread_main(void *arg)
{
    int i = (int)(intptr_t)arg;
    for (int k = 0; k < 8; k++) {
        void *p = malloc(48 + (size_t)k);
        robust_sink = p;
        free(p);
    }
    if (i % 10 == 0)
        robust_thread_leak(i);
    pthread_barrier_wait(&all_started); /* every thread is alive at once */
    for (int k = 0; k < 8; k++) {
        void *p = calloc(1, 64 + (size_t)k);
        robust_sink = p;
        free(p);
    }
    return NULL;
}

/* Starts n threads that are all alive at the same moment, each allocating and freeing, every
 * tenth leaking one block of 100 + i%7 bytes; joins them. Returns 0, or -1 if a thread could
 * not be started. */
int robust_threads(int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (n > 8192 || !t || pthread_barrier_init(&all_started, NULL, (unsigned)n) != 0)
        return -1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &attr, thread_main, (void *)(intptr_t)i) != 0)
            return -1;
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&all_started);
    free(t);
    return 0;
}

/* ---- Descriptors -------------------------------------------------------------------------- */

void robust_close_fds(void)
{
    for (int fd = 3; fd < 65536; fd++)
        close(fd);
}

__attribute__((noinline)) void *robust_c_leak(size_t n)
{
    void *p = malloc(n);
    if (p)
        memset(p, 0x3c, n);
    return p;
}

/* ---- Daemon ------------------------------------------------------------------------------- */

__attribute__((noinline)) void robust_daemon_leak(int i) { robust_sink = malloc(200 + (size_t)i); }

/* The classic double fork: the child starts a session and forks the daemon, then exits; the
 * daemon detaches from the terminal's descriptors, waits until the foreground is surely gone,
 * leaks n blocks from C and exits. Returns once the intermediate child has exited. */
int robust_daemonize(int n, int delay_ms)
{
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        setsid();
        pid_t d = fork();
        if (d != 0)
            _exit(d < 0 ? 1 : 0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2)
                close(null);
        }
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        for (int i = 0; i < n; i++)
            robust_daemon_leak(i);
        _exit(0);
    }
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return 0;
}

/* ---- Busy allocating ----------------------------------------------------------------------- */

/* Allocates and frees for about ms milliseconds; returns how many pairs it made. */
long robust_churn_for(int ms)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long n = 0;
    for (;;) {
        for (int k = 0; k < 1000; k++, n++) {
            void *p = malloc(16 + (size_t)(k % 200));
            robust_sink = p;
            free(p);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= ms)
            return n;
    }
}
