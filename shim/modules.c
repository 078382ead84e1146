/* Tells the analyzer which ELF objects are loaded where, so it can symbolize addresses. */
#define _GNU_SOURCE
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct scan {
    uintptr_t exe_bias;
    int seen_exe;
};

static void send_module(const char *path, int is_exe, uintptr_t bias, uintptr_t lo, uintptr_t hi)
{
    struct cgs_thread *t = &cgs_tls;
    size_t len = strlen(path) + 1;
    uint32_t size = (uint32_t)CGS_ALIGN8(sizeof(struct cgs_rec_module) + len);
    struct cgs_rec_module *r = cgs_reserve(t, size);
    if (!r)
        return;
    memset(r, 0, size);
    r->h.type = CGS_REC_MODULE;
    r->h.aux = (uint16_t)is_exe;
    r->h.size = size;
    r->bias = bias;
    r->lo = lo;
    r->hi = hi;
    memcpy(r->path, path, len);
    cgs_commit(t, size);
}

static int each_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct scan *s = data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (hi == 0)
        return 0;
    const char *name = info->dlpi_name;
    char exe[4096];
    int is_exe = 0;
    if (!s->seen_exe && (!name || !*name)) {
        /* The first object without a name is the executable itself. */
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return 0;
        exe[n] = 0;
        name = exe;
        is_exe = 1;
        s->seen_exe = 1;
        s->exe_bias = info->dlpi_addr;
    }
    if (!name || !*name)
        return 0;
    send_module(name, is_exe, info->dlpi_addr, lo, hi);
    return 0;
}

uintptr_t cgs_send_modules(void)
{
    struct scan s = {0, 0};
    dl_iterate_phdr(each_object, &s);
    return s.exe_bias;
}
