/* Prints the cost in ns of one pair of the clock reads the shim makes around a timed cgo call
 * (rdtsc before, rdtscp after: shim/shim.h cgs_now_start, cgs_now_after; CLOCK_MONOTONIC where
 * the TSC is not invariant). */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void)
{
    const int n = 5000000;
    uint64_t sink = 0;
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            uint64_t a = __rdtsc();
            unsigned aux;
            uint64_t b = __rdtscp(&aux);
            sink += b - a;
        }
        double per = (now() - t0) / n;
        if (per < best)
            best = per;
    }
    printf("%.2f\n", best + (double)(sink & 0) * 0);
    return 0;
}
