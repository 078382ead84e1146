#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void clock_sample(uint64_t *ticks, uint64_t *ns)
{
#if defined(__x86_64__)
    unsigned aux;
    *ticks = __rdtscp(&aux);
#else
    *ticks = 0;
#endif
    *ns = clock_mono_ns();
}

uint64_t clock_tsc_fenced(void)
{
#if defined(__x86_64__)
    _mm_lfence();
    uint64_t tsc = __rdtsc();
    _mm_lfence();
    return tsc;
#else
    return 0;
#endif
}

void clock_sleep_us(long us)
{
    struct timespec d = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&d, NULL);
}

void clock_phase(const char *what)
{
    static int on = -1;
    static uint64_t last;
    if (on < 0) {
        const char *e = getenv("CGOSCOPE_PHASES");
        on = e && *e == '1';
    }
    if (!on)
        return;
    uint64_t now = clock_mono_ns();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* the analyzer's own CPU time so far, all its threads */
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    if (last)
        fprintf(stderr, "cgoscope phase: %-24s %8.1f ms  (analyzer CPU so far %.3f s)\n", what,
                (double)(now - last) / 1e6, cpu);
    else
        fprintf(stderr, "cgoscope phase: %-24s           (analyzer CPU so far %.3f s)\n", what, cpu);
    last = now;
}
