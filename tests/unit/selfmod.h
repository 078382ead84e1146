/* Describes the test binary itself as a module record, as the shim would. */
#ifndef CGOSCOPE_TEST_SELFMOD_H
#define CGOSCOPE_TEST_SELFMOD_H

#define _GNU_SOURCE
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <unistd.h>

#include "recbuf.h"

struct selfmod {
    uint64_t bias, lo, hi;
    int done;
};

static inline int selfmod_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct selfmod *m = data;
    if (m->done)
        return 0;
    m->done = 1;
    m->bias = info->dlpi_addr;
    m->lo = UINT64_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_LOAD)
            continue;
        uint64_t a = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
        if (a < m->lo)
            m->lo = a;
        if (a + info->dlpi_phdr[i].p_memsz > m->hi)
            m->hi = a + info->dlpi_phdr[i].p_memsz;
    }
    return 0;
}

static inline void rb_self_module(struct recbuf *b)
{
    struct selfmod m = {0};
    dl_iterate_phdr(selfmod_cb, &m);
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    rb_module(b, path, m.bias, m.lo, m.hi, 1);
}

#endif
