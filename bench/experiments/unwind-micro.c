/*
 * bench/experiments/unwind-micro.c: what one libunwind (Debian 1.6.2) unwind of a 16-frame stack
 * costs here, configured each way the library offers (bench/experiments/unwind.sh builds and runs
 * it). MODE: 0 default (global cache), 1 UNW_CACHE_PER_THREAD, 2 UNW_CACHE_NONE, 3 the modules'
 * .eh_frame_hdr tables registered with _U_dyn_register, 4 = 2 + 3, 5 unw_backtrace, 6 = 1 + 3.
 * Modes 0-4 and 6 walk with unw_init_local + unw_step, as the shim's slot-keeping walk must.
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <elf.h>

static int mode;
static long total;
static int regs;

static int reg_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size; (void)data;
    const ElfW(Phdr) *eh = NULL; uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_EH_FRAME) eh = ph;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < lo) lo = a;
            if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
        }
    }
    if (!eh || lo >= hi) return 0;
    const uint8_t *hdr = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
    /* version 1, eh_frame_ptr_enc, fde_count_enc, table_enc */
    if (hdr[0] != 1 || hdr[3] != (0x3b)) return 0;
    const uint8_t *p = hdr + 4;
    /* eh_frame_ptr (enc hdr[1]), then fde_count (enc hdr[2]) */
    if (hdr[1] != (0x1b) || hdr[2] != 0x03) return 0;
    p += 4;
    uint32_t count = *(const uint32_t *)p; p += 4;
    unw_dyn_info_t *di = calloc(1, sizeof *di);
    di->start_ip = lo; di->end_ip = hi;
    di->format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di->gp = 0;
    di->u.rti.name_ptr = 0;
    di->u.rti.segbase = (unw_word_t)hdr;
    di->u.rti.table_len = count * 8 / sizeof(unw_word_t);
    di->u.rti.table_data = (unw_word_t)p;
    _U_dyn_register(di);
    regs++;
    return 0;
}

__attribute__((noinline)) static void unwind(void)
{
    if (mode == 5) { void *ips[64]; total += unw_backtrace(ips, 64); return; }
    unw_context_t uc; unw_cursor_t cur;
    unw_getcontext(&uc); unw_init_local(&cur, &uc);
    int n = 0;
    while (unw_step(&cur) > 0 && n < 64) n++;
    total += n;
}
__attribute__((noinline)) static void rec(int d) { if (d == 0) unwind(); else rec(d - 1); __asm__ volatile(""); }

int main(int argc, char **argv)
{
    mode = atoi(argv[1]);
    int iters = argc > 2 ? atoi(argv[2]) : 100000;
    if (mode == 1) unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    if (mode == 2 || mode == 4) unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
    if (mode == 3 || mode == 4 || mode == 6) dl_iterate_phdr(reg_cb, NULL);
    if (mode == 6) unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < iters; i++) rec(10 + (i & 3));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("mode %d (%d modules registered): %.0f ns per unwind, %.1f frames, %.1f ns per frame\n", mode, regs, ns / iters,
           (double)total / iters, ns / total);
    return 0;
}
