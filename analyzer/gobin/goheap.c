/*
 * The Go runtime's heap layout, from the executable's DWARF (goheap.h). Only the compilation
 * unit named "runtime" is read: its structure types and its two variables.
 */
#include "gobin/goheap.h"
#include "gobin/golayout.h"

#include "gobin/gobuild.h"
#include "gobin/gopclntab.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
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
    if (out->from_code) {
        out->text_lo += bias;
        out->text_hi += bias;
        out->gotext_lo += bias;
        out->gotext_hi += bias;
    }
    return 0;
}

/* ---- Without DWARF -----------------------------------------------------------------------------
 *
 * `go test` and `go run` link what they run with -s -w: no DWARF, no symbol table, only Go's own
 * function table (.gopclntab). The offsets then come from this table, one row per Go release,
 * each read from the DWARF of a build by that release's toolchain (docs/cgo-facts.md §3 says how
 * to check a new one); the variables' addresses come from the runtime's code, where a function
 * that .gopclntab names refers to them with a RIP-relative operand. reach.c checks what it then
 * reads in the process (go_heap) before trusting it. */

static const struct release_offsets {
    int minor; /* Go 1.minor */
    uint32_t m_curg, m_alllink, g_syscallsp, g_status, span_state;
} releases[] = {
    {21, 192, 336, 112, 144, 107}, {22, 192, 328, 112, 144, 99}, {23, 192, 328, 112, 152, 99},
    {24, 192, 328, 112, 152, 99},  {25, 184, 344, 104, 144, 99}, {26, 184, 352, 104, 144, 99},
};

/* What every release above shares. */
static void common_offsets(struct go_heap_layout *o)
{
    o->m_g0 = 0;
    o->mheap_allspans = 65864;
    o->span_start = 24;
    o->span_npages = 32;
    o->g_stack_lo = 0;
    o->g_stack_hi = 8;
    o->g_sched_sp = 56;
}

struct code {
    const uint8_t *p;
    uint64_t lo, hi; /* link-time [lo, hi) of the function */
};

static int code_of(Elf *elf, const struct gopclntab *t, const char *fn, struct code *c)
{
    size_t avail;
    if (gopclntab_func(t, fn, &c->lo, &c->hi) != 0 || !(c->p = gopclntab_bytes(elf, c->lo, &avail)) ||
        avail < c->hi - c->lo)
        return -1;
    return 0;
}

static int32_t s32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* A 64-bit MOV (load) or LEA with a RIP-relative operand at offset i: REX.W, 8B or 8D, ModRM
 * with mod 00 and r/m 101. Its target, or 0. */
static uint64_t rip_operand(const struct code *c, uint64_t i, uint8_t opcode)
{
    if (i + 7 > c->hi - c->lo || (c->p[i] & 0xfb) != 0x48 || c->p[i + 1] != opcode || (c->p[i + 2] & 0xc7) != 0x05)
        return 0;
    return c->lo + i + 7 + (uint64_t)(int64_t)s32(c->p + i + 3);
}

/* runtime.mallocinit calls mheap_.init(): LEA mheap_(RIP), AX; CALL (*mheap).init. */
static uint64_t find_mheap(Elf *elf, const struct gopclntab *t)
{
    struct code c;
    uint64_t init, init_end;
    if (code_of(elf, t, "runtime.mallocinit", &c) != 0 || gopclntab_func(t, "runtime.(*mheap).init", &init, &init_end) != 0)
        return 0;
    for (uint64_t i = 0; i + 12 <= c.hi - c.lo; i++) {
        uint64_t a = rip_operand(&c, i, 0x8d);
        if (a && c.p[i + 7] == 0xe8 && c.lo + i + 12 + (uint64_t)(int64_t)s32(c.p + i + 8) == init)
            return a;
    }
    return 0;
}

/* Targets of the function's RIP-relative operands of one opcode, in code order. */
static size_t rip_targets(const struct code *c, uint8_t opcode, uint64_t *out, size_t max)
{
    size_t n = 0;
    for (uint64_t i = 0; i < c->hi - c->lo && n < max; i++) {
        uint64_t a = rip_operand(c, i, opcode);
        if (a)
            out[n++] = a;
    }
    return n;
}

static int has(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* runtime.allgadd appends to allgs: it loads the slice's three words. */
static uint64_t find_allgs(Elf *elf, const struct gopclntab *t)
{
    struct code c;
    uint64_t v[256];
    if (code_of(elf, t, "runtime.allgadd", &c) != 0)
        return 0;
    size_t n = rip_targets(&c, 0x8b, v, 256);
    uint64_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (has(v, n, v[i] + 8) && has(v, n, v[i] + 16) && (!best || v[i] < best))
            best = v[i];
    return best;
}

/* runtime.mcommoninit links the new m in: mp.alllink = allm (a load), then stores the m with
 * atomicstorep(&allm, mp) (an LEA of the same address). */
static uint64_t find_allm(Elf *elf, const struct gopclntab *t)
{
    struct code c;
    uint64_t loads[256], leas[256];
    if (code_of(elf, t, "runtime.mcommoninit", &c) != 0)
        return 0;
    size_t nl = rip_targets(&c, 0x8b, loads, 256), na = rip_targets(&c, 0x8d, leas, 256);
    for (size_t i = 0; i < nl; i++)
        if (has(leas, na, loads[i]))
            return loads[i];
    return 0;
}

static void text_section(Elf *elf, uint64_t *lo, uint64_t *hi)
{
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    *lo = *hi = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name;
        if (gelf_getshdr(scn, &sh) && (name = elf_strptr(elf, shstrndx, sh.sh_name)) && strcmp(name, ".text") == 0) {
            *lo = sh.sh_addr;
            *hi = sh.sh_addr + sh.sh_size;
            return;
        }
    }
}

static int from_code(const char *path, struct go_heap_layout *out)
{
    struct gobuild gb;
    if (gobuild_read(path, &gb) != 0)
        return -1;
    int minor = gobuild_minor(gb.go_version);
    gobuild_free(&gb);
    const struct release_offsets *r = NULL;
    for (size_t i = 0; i < sizeof releases / sizeof releases[0]; i++)
        if (releases[i].minor == minor)
            r = &releases[i];
    if (!r)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    struct gopclntab *t = elf ? gopclntab_open(elf) : NULL;
    int rc = -1;
    if (t) {
        common_offsets(out);
        out->m_curg = r->m_curg;
        out->m_alllink = r->m_alllink;
        out->g_syscallsp = r->g_syscallsp;
        out->g_status = r->g_status;
        out->span_state = r->span_state;
        out->mheap = find_mheap(elf, t);
        out->allgs = find_allgs(elf, t);
        out->allm = find_allm(elf, t);
        out->from_code = 1;
        gopclntab_text(t, &out->gotext_lo, &out->gotext_hi);
        text_section(elf, &out->text_lo, &out->text_hi);
        rc = out->mheap && out->allgs && out->allm ? 0 : -1;
        gopclntab_free(t);
    }
    if (elf)
        elf_end(elf);
    close(fd);
    return rc;
}

static int read_uncached(const char *path, struct go_heap_layout *out)
{
    const uint64_t bias = 0;
    memset(out, 0, sizeof *out);
    if (access(path, R_OK) != 0)
        return -1;
    go_dwarf_lock();
    Dwarf *dw = go_dwarf_open(path); /* kept from the start of the run (golayout.h) */
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
    }
    go_dwarf_unlock();
    if (found == F_ALL)
        return 0;
    memset(out, 0, sizeof *out);
    return from_code(path, out);
}
