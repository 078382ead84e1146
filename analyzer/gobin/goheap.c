/*
 * The Go runtime's heap layout, from the executable's DWARF (goheap.h). Only the compilation
 * unit named "runtime" is read: its structure types and its two variables.
 */
#include "gobin/goheap.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The member called name of a structure DIE: its offset, and its type's DIE if type is given. */
static int member(Dwarf_Die *st, const char *name, uint32_t *off, Dwarf_Die *type)
{
    Dwarf_Die m;
    if (dwarf_child(st, &m) != 0)
        return -1;
    do {
        const char *n = dwarf_tag(&m) == DW_TAG_member ? dwarf_diename(&m) : NULL;
        if (!n || strcmp(n, name) != 0)
            continue;
        Dwarf_Attribute a;
        Dwarf_Word w;
        if (!dwarf_attr(&m, DW_AT_data_member_location, &a) || dwarf_formudata(&a, &w) != 0 || w > 1u << 20)
            return -1;
        *off = (uint32_t)w;
        if (!type)
            return 0;
        if (!dwarf_attr(&m, DW_AT_type, &a) || !dwarf_formref_die(&a, type))
            return -1;
        /* Go names its types with typedefs: the structure is behind them. */
        for (int k = 0; k < 8 && dwarf_tag(type) == DW_TAG_typedef; k++)
            if (!dwarf_attr(type, DW_AT_type, &a) || !dwarf_formref_die(&a, type))
                return -1;
        return 0;
    } while (dwarf_siblingof(&m, &m) == 0);
    return -1;
}

/* A member of a member: st.outer.inner. */
static int nested(Dwarf_Die *st, const char *outer, const char *inner, uint32_t *off)
{
    uint32_t a, b;
    Dwarf_Die t;
    if (member(st, outer, &a, &t) != 0 || member(&t, inner, &b, NULL) != 0)
        return -1;
    *off = a + b;
    return 0;
}

/* A variable's address: DW_OP_addr. Go writes the expression as a plain block (DW_FORM_block1),
 * which libdw's dwarf_getlocation refuses in a DWARF 4 unit: read the block itself. */
static int var_addr(Dwarf_Die *v, uint64_t *out)
{
    Dwarf_Attribute a;
    Dwarf_Block b;
    if (!dwarf_attr(v, DW_AT_location, &a) || dwarf_formblock(&a, &b) != 0 || b.length != 9 || b.data[0] != DW_OP_addr)
        return -1;
    uint64_t x = 0;
    for (int i = 8; i >= 1; i--)
        x = x << 8 | b.data[i];
    *out = x;
    return 0;
}

enum { F_G = 1, F_SPAN = 2, F_MHEAP = 4, F_VMHEAP = 8, F_VALLGS = 16, F_M = 32, F_VALLM = 64, F_ALL = 127 };

static int take(Dwarf_Die *d, uint64_t bias, struct go_heap_layout *o)
{
    const char *n = dwarf_diename(d);
    if (!n)
        return 0;
    int tag = dwarf_tag(d);
    if (tag == DW_TAG_variable) {
        if (strcmp(n, "runtime.mheap_") == 0 && var_addr(d, &o->mheap) == 0) {
            o->mheap += bias;
            return F_VMHEAP;
        }
        if (strcmp(n, "runtime.allgs") == 0 && var_addr(d, &o->allgs) == 0) {
            o->allgs += bias;
            return F_VALLGS;
        }
        if (strcmp(n, "runtime.allm") == 0 && var_addr(d, &o->allm) == 0) {
            o->allm += bias;
            return F_VALLM;
        }
        return 0;
    }
    if (tag == DW_TAG_subprogram && strcmp(n, "threadentry") == 0) {
        Dwarf_Addr lo;
        if (dwarf_lowpc(d, &lo) == 0)
            o->threadentry = lo + bias;
        return 0;
    }
    if (tag != DW_TAG_structure_type)
        return 0;
    if (strcmp(n, "runtime.g") == 0) {
        uint32_t st;
        Dwarf_Die stt;
        if (member(d, "stack", &st, &stt) == 0 && member(&stt, "lo", &o->g_stack_lo, NULL) == 0 &&
            member(&stt, "hi", &o->g_stack_hi, NULL) == 0 && nested(d, "sched", "sp", &o->g_sched_sp) == 0 &&
            member(d, "syscallsp", &o->g_syscallsp, NULL) == 0 && member(d, "atomicstatus", &o->g_status, NULL) == 0) {
            o->g_stack_lo += st;
            o->g_stack_hi += st;
            return F_G;
        }
    } else if (strcmp(n, "runtime.mspan") == 0) {
        if (member(d, "startAddr", &o->span_start, NULL) == 0 && member(d, "npages", &o->span_npages, NULL) == 0 &&
            member(d, "state", &o->span_state, NULL) == 0)
            return F_SPAN;
    } else if (strcmp(n, "runtime.m") == 0) {
        if (member(d, "g0", &o->m_g0, NULL) == 0 && member(d, "curg", &o->m_curg, NULL) == 0 &&
            member(d, "alllink", &o->m_alllink, NULL) == 0)
            return F_M;
    } else if (strcmp(n, "runtime.mheap") == 0) {
        if (member(d, "allspans", &o->mheap_allspans, NULL) == 0)
            return F_MHEAP;
    }
    return 0;
}

/* Layouts already read, by executable (a run may start the same program many times). */
#define CACHE 16
static struct {
    dev_t dev;
    ino_t ino;
    int rc;
    struct go_heap_layout l; /* without the bias */
} cache[CACHE];
static int ncache;

static int read_uncached(const char *path, struct go_heap_layout *out);

int go_heap_layout_read(const char *path, uint64_t bias, struct go_heap_layout *out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    int i = 0;
    while (i < ncache && (cache[i].dev != st.st_dev || cache[i].ino != st.st_ino))
        i++;
    if (i == ncache) {
        i = ncache < CACHE ? ncache++ : (int)(st.st_ino % CACHE);
        cache[i].dev = st.st_dev;
        cache[i].ino = st.st_ino;
        cache[i].rc = read_uncached(path, &cache[i].l);
    }
    *out = cache[i].l;
    if (cache[i].rc != 0)
        return -1;
    out->mheap += bias;
    out->allgs += bias;
    out->allm += bias;
    if (out->threadentry)
        out->threadentry += bias;
    return 0;
}

static int read_uncached(const char *path, struct go_heap_layout *out)
{
    const uint64_t bias = 0;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
    int found = 0;
    if (dw) {
        Dwarf_Off off = 0, next;
        size_t hsize;
        while ((found != F_ALL || !out->threadentry) && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
            Dwarf_Die cu, d;
            if (dwarf_offdie(dw, off + hsize, &cu)) {
                const char *cn = dwarf_diename(&cu);
                if (cn && strcmp(cn, "runtime") == 0 && dwarf_child(&cu, &d) == 0) {
                    do
                        found |= take(&d, bias, out);
                    while (found != F_ALL && dwarf_siblingof(&d, &d) == 0);
                } else if (cn && strstr(cn, "gcc_linux") && !out->threadentry && dwarf_child(&cu, &d) == 0) {
                    do /* runtime/cgo's C code: the thread entry point */
                        take(&d, bias, out);
                    while (!out->threadentry && dwarf_siblingof(&d, &d) == 0);
                }
            }
            off = next;
        }
        dwarf_end(dw);
    }
    close(fd);
    return found == F_ALL ? 0 : -1;
}
