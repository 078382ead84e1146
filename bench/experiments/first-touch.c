/*
 * bench/experiments/first-touch.c: what this machine charges the first time a page of new
 * anonymous memory is touched, in 2 MiB huge pages and in 4 KiB pages (bench/README.md, "Issue
 * 14, second day"). On the project's 2-core guest a fault exits to the hypervisor, which backs
 * the page then: ~1.5 ms per MiB in huge pages, ~2.5 ms in 4 KiB pages, and almost nothing when
 * the guest hands back huge pages just freed by another process.
 *
 *   cc -O2 -o /tmp/first-touch bench/experiments/first-touch.c
 *   /tmp/first-touch 100; /tmp/first-touch 100
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void touch(size_t mib, int huge)
{
    size_t n = mib << 20, align = (size_t)2 << 20;
    char *raw = mmap(NULL, n + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    madvise(p, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    double t0 = now_ms();
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    double t1 = now_ms();
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 2;
    double t2 = now_ms();
    printf("%zu MiB, %s pages: first touch %.1f ms (%.2f ms/MiB), second %.1f ms\n", mib,
           huge ? "2 MiB" : "4 KiB", t1 - t0, (t1 - t0) / (double)mib, t2 - t1);
    munmap(raw, n + align);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
    if (!mib)
        mib = 100;
    touch(mib, 1);
    touch(mib, 0);
    return 0;
}
