/* Which clock stamps records: the TSC when the CPU says it is invariant, else CLOCK_MONOTONIC. */
#include <time.h>

#include "shim.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

CGS_HIDDEN int cgs_clock_kind = CGS_CLOCK_MONO;

uint64_t cgs_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cgs_clock_init(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    /* CPUID 0x80000007 EDX bit 8: invariant TSC (constant rate, runs in every C-state). */
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000007u &&
        __get_cpuid(0x80000007u, &a, &b, &c, &d) && (d & (1u << 8)))
        cgs_clock_kind = CGS_CLOCK_TSC;
#endif
}
