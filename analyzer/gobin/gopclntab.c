#include "gobin/gopclntab.h"

#include "cgoscope/gostubs.h"

#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_118 0xfffffff0u
#define MAGIC_120 0xfffffff1u
#define HEADER_SIZE 72
#define PCDATA_INLTREEINDEX 2
#define FUNCDATA_INLTREE 3
/* runtime.moduledata, in pointer-sized words: pcHeader, six slices of three words, findfunctab,
 * minpc, maxpc, then text and etext; gofunc further on (Go 1.20 to 1.26). */
#define MD_TEXT 22
#define MD_ETEXT 23
#define MD_GOFUNC 40

struct span {
    const uint8_t *p;
    size_t n;
};

struct gopclntab {
    struct span tab; /* the whole section */
    int v120;        /* 1.20 layout (startLine in _func, inlining tree we can find) */
    unsigned min_lc;
    uint64_t nfunc;
    struct span funcnames, cutab, filetab, pctab, pcln;
    uint64_t text, etext;
    struct span gofunc; /* from go:func.* to the end of its section; empty when unknown */
};

static uint32_t u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The bytes of the section holding link-time address a, from a on. */
static struct span at_vaddr(Elf *elf, uint64_t a)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_ALLOC))
            continue;
        if (a < sh.sh_addr || a >= sh.sh_addr + sh.sh_size)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf || d->d_size != sh.sh_size)
            return (struct span){NULL, 0};
        return (struct span){(const uint8_t *)d->d_buf + (a - sh.sh_addr), sh.sh_size - (a - sh.sh_addr)};
    }
    return (struct span){NULL, 0};
}

/* The addend of an R_X86_64_RELATIVE relocation of a position-independent executable: where a
 * pointer stored at a (0 in the file) will point once loaded. With want set, the other way
 * round: the first place that will point to want. */
static uint64_t relative(Elf *elf, uint64_t a, uint64_t want)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t n = d ? d->d_size / sh.sh_entsize : 0;
        for (size_t i = 0; i < n; i++) {
            GElf_Rela r;
            if (!gelf_getrela(d, (int)i, &r) || GELF_R_TYPE(r.r_info) != R_X86_64_RELATIVE)
                continue;
            if (want ? (uint64_t)r.r_addend == want : r.r_offset == a)
                return want ? r.r_offset : (uint64_t)r.r_addend;
        }
    }
    return 0;
}

/* The pointer stored at link-time address a, as it will be once loaded. */
static uint64_t read_ptr(Elf *elf, uint64_t a)
{
    struct span s = at_vaddr(elf, a);
    if (s.n < 8)
        return 0;
    uint64_t v = u64(s.p);
    return v ? v : relative(elf, a, 0);
}

/* runtime.firstmoduledata: the one place in writable data that points to the table. */
static uint64_t find_moduledata(Elf *elf, uint64_t tab_addr)
{
    uint64_t md = relative(elf, 0, tab_addr); /* position-independent: a relocation says it */
    if (md)
        return md;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_WRITE))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            continue;
        for (size_t off = 0; off + 8 <= d->d_size; off += 8)
            if (u64((const uint8_t *)d->d_buf + off) == tab_addr)
                return sh.sh_addr + off;
    }
    return 0;
}

static struct span sub(struct span s, uint64_t off)
{
    if (off >= s.n)
        return (struct span){NULL, 0};
    return (struct span){s.p + off, s.n - off};
}

static int header_ok(const uint8_t *h)
{
    uint32_t magic = u32(h);
    return (magic == MAGIC_118 || magic == MAGIC_120) && !h[4] && !h[5] && (h[6] == 1 || h[6] == 2 || h[6] == 4) &&
           h[7] == 8;
}

/* The table: its own section .gopclntab, or (position-independent executables of Go 1.25 and
 * older) a header inside .data.rel.ro that the runtime's module data points to. */
static int locate(Elf *elf, struct span *tab, uint64_t *addr)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(elf, scn)) != NULL) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_ALLOC))
                continue;
            const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
            int named = name && strcmp(name, ".gopclntab") == 0;
            if (pass == 0 ? !named : (named || !(sh.sh_flags & SHF_WRITE)))
                continue;
            Elf_Data *d = elf_getdata(scn, NULL);
            if (!d || !d->d_buf || d->d_size != sh.sh_size)
                continue;
            const uint8_t *p = d->d_buf;
            size_t limit = pass == 0 ? 8 : d->d_size; /* a section of its own starts with the header */
            for (size_t off = 0; off < limit && off + HEADER_SIZE <= d->d_size; off += 8) {
                if (!header_ok(p + off) || (pass == 1 && !find_moduledata(elf, sh.sh_addr + off)))
                    continue;
                *tab = (struct span){p + off, d->d_size - off};
                *addr = sh.sh_addr + off;
                return 1;
            }
        }
    }
    return 0;
}

struct gopclntab *gopclntab_open(Elf *elf)
{
    struct span tab;
    uint64_t tab_addr;
    if (!elf || !locate(elf, &tab, &tab_addr))
        return NULL;
    struct gopclntab *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->tab = tab;
    const uint8_t *h = t->tab.p;
    t->min_lc = h[6];
    t->v120 = u32(h) == MAGIC_120;
    t->nfunc = u64(h + 8);
    t->funcnames = sub(t->tab, u64(h + 32));
    t->cutab = sub(t->tab, u64(h + 40));
    t->filetab = sub(t->tab, u64(h + 48));
    t->pctab = sub(t->tab, u64(h + 56));
    t->pcln = sub(t->tab, u64(h + 64));
    if (!t->funcnames.n || !t->cutab.n || !t->filetab.n || !t->pctab.n || !t->pcln.n ||
        t->nfunc >= t->pcln.n / 8) {
        free(t);
        return NULL;
    }
    uint64_t end_off = u32(t->pcln.p + t->nfunc * 8); /* the functab's last entry: end of the code */
    uint64_t md = find_moduledata(elf, tab_addr);
    uint64_t text = md ? read_ptr(elf, md + MD_TEXT * 8) : 0, etext = md ? read_ptr(elf, md + MD_ETEXT * 8) : 0;
    if (!text || etext <= text || etext - text < end_off) {
        /* Up to Go 1.21 the header holds the base; the functab gives the end. */
        text = read_ptr(elf, tab_addr + 24);
        etext = text + end_off;
        md = 0;
    }
    if (!text) {
        free(t);
        return NULL;
    }
    t->text = text;
    t->etext = etext;
    if (md && t->v120) {
        uint64_t gofunc = read_ptr(elf, md + MD_GOFUNC * 8);
        if (gofunc)
            t->gofunc = at_vaddr(elf, gofunc);
    }
    return t;
}

void gopclntab_free(struct gopclntab *t) { free(t); }

void gopclntab_text(const struct gopclntab *t, uint64_t *lo, uint64_t *hi)
{
    *lo = t->text;
    *hi = t->etext;
}

static int uvarint(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    uint32_t v = 0;
    for (unsigned shift = 0; shift < 35 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* The value a pc-value table (at off in pctab) gives for target, runtime/symtab.go:pcvalue. */
static int pcvalue(const struct gopclntab *t, uint32_t off, uint64_t entry, uint64_t target, int32_t *out)
{
    if (!off || off >= t->pctab.n)
        return 0;
    const uint8_t *p = t->pctab.p + off, *end = t->pctab.p + t->pctab.n;
    int32_t val = -1;
    uint64_t pc = entry;
    for (int first = 1;; first = 0) {
        uint32_t uv, pcd;
        if (!uvarint(&p, end, &uv) || (uv == 0 && !first))
            return 0;
        val += (int32_t)(-(uv & 1) ^ (uv >> 1));
        if (!uvarint(&p, end, &pcd))
            return 0;
        pc += (uint64_t)pcd * t->min_lc;
        if (target < pc) {
            *out = val;
            return 1;
        }
    }
}

static const char *string_at(struct span s, uint64_t off)
{
    if (off >= s.n || !memchr(s.p + off, 0, s.n - off))
        return NULL;
    return (const char *)s.p + off;
}

struct func {
    const uint8_t *f;
    uint64_t entry; /* link-time */
    uint32_t npcdata, nfuncdata;
    size_t fixed; /* size of _func before its pcdata */
};

static int find_func(const struct gopclntab *t, uint64_t addr, struct func *fn)
{
    if (addr < t->text || addr >= t->etext)
        return 0;
    uint64_t off = addr - t->text;
    const uint8_t *ftab = t->pcln.p;
    if (off >= u32(ftab + t->nfunc * 8))
        return 0;
    uint64_t lo = 0, hi = t->nfunc; /* the last entry whose start is <= off */
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        if (u32(ftab + mid * 8) <= off)
            lo = mid;
        else
            hi = mid;
    }
    uint32_t funcoff = u32(ftab + lo * 8 + 4);
    fn->fixed = t->v120 ? 44 : 40;
    if (funcoff >= t->pcln.n || t->pcln.n - funcoff < fn->fixed)
        return 0;
    fn->f = t->pcln.p + funcoff;
    fn->entry = t->text + u32(fn->f);
    fn->npcdata = u32(fn->f + 28);
    fn->nfuncdata = fn->f[fn->fixed - 1];
    if (t->pcln.n - funcoff - fn->fixed < 4 * ((uint64_t)fn->npcdata + fn->nfuncdata))
        return 0;
    return fn->entry <= addr;
}

static void position(const struct gopclntab *t, const struct func *fn, uint64_t pc, struct go_frame *fr)
{
    int32_t fileno, line;
    fr->file = NULL;
    fr->line = 0;
    if (pcvalue(t, u32(fn->f + 20), fn->entry, pc, &fileno) && fileno >= 0) {
        uint64_t i = (uint64_t)u32(fn->f + 32) + (uint64_t)fileno;
        if (i < t->cutab.n / 4) {
            uint32_t foff = u32(t->cutab.p + i * 4);
            if (foff != UINT32_MAX)
                fr->file = string_at(t->filetab, foff);
        }
    }
    if (pcvalue(t, u32(fn->f + 24), fn->entry, pc, &line) && line > 0)
        fr->line = line;
}

size_t gopclntab_lookup(const struct gopclntab *t, uint64_t addr, struct go_frame *out, size_t max)
{
    struct func fn;
    if (!max || !find_func(t, addr, &fn))
        return 0;
    const char *outer = string_at(t->funcnames, (uint32_t)u32(fn.f + 4));
    if (!outer)
        return 0;
    size_t n = 0;
    /* Inlined calls (Go >= 1.20): the tree is in go:func.*, the index of the innermost call at
     * each pc in a pc-value table; each call knows a pc of its call site in the caller. */
    uint32_t idx_tab = fn.npcdata > PCDATA_INLTREEINDEX ? u32(fn.f + fn.fixed + 4 * PCDATA_INLTREEINDEX) : 0;
    uint32_t tree_off = fn.nfuncdata > FUNCDATA_INLTREE ? u32(fn.f + fn.fixed + 4 * fn.npcdata + 4 * FUNCDATA_INLTREE)
                                                       : UINT32_MAX;
    uint64_t pc = addr;
    int32_t ix;
    if (t->gofunc.n && idx_tab && tree_off != UINT32_MAX && tree_off < t->gofunc.n) {
        struct span tree = sub(t->gofunc, tree_off);
        while (n + 1 < max && pcvalue(t, idx_tab, fn.entry, pc, &ix) && ix >= 0 && (uint64_t)ix < tree.n / 16) {
            const uint8_t *call = tree.p + (uint64_t)ix * 16;
            const char *name = string_at(t->funcnames, (uint32_t)u32(call + 4));
            if (!name)
                break;
            out[n].function = name;
            position(t, &fn, pc, &out[n]);
            n++;
            int32_t parent = (int32_t)u32(call + 8);
            if (parent < 0)
                break;
            pc = fn.entry + (uint64_t)parent; /* n < max ends a corrupt tree's cycle */
        }
    }
    out[n].function = outer;
    position(t, &fn, pc, &out[n]);
    return n + 1;
}

int gopclntab_func(const struct gopclntab *t, const char *name, uint64_t *entry, uint64_t *end)
{
    const uint8_t *ftab = t->pcln.p;
    for (uint64_t i = 0; i < t->nfunc; i++) {
        uint32_t funcoff = u32(ftab + i * 8 + 4);
        if (funcoff >= t->pcln.n || t->pcln.n - funcoff < 8)
            continue;
        const char *n = string_at(t->funcnames, u32(t->pcln.p + funcoff + 4));
        if (n && strcmp(n, name) == 0) {
            *entry = t->text + u32(ftab + i * 8);
            *end = t->text + u32(ftab + (i + 1) * 8);
            return *end > *entry ? 0 : -1;
        }
    }
    return -1;
}

const char *gopclntab_names(const struct gopclntab *t, size_t *len)
{
    /* funcnametab ends where cutab begins */
    *len = t->cutab.p > t->funcnames.p ? (size_t)(t->cutab.p - t->funcnames.p) : 0;
    return (const char *)t->funcnames.p;
}

/* [a, a + 8) in an initialized writable section; the flags of the section holding a otherwise. */
static int in_writable_data(Elf *elf, uint64_t a)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_PROGBITS && (sh.sh_flags & SHF_WRITE) &&
            (sh.sh_flags & SHF_ALLOC) && !(a & 7) && a >= sh.sh_addr && a - sh.sh_addr + 8 <= sh.sh_size)
            return 1;
    }
    return 0;
}

/* The pointer function [lo, hi) hands to runtime.cgocall (at cgocall), into *var, when it holds
 * C code of the executable (in .text, outside Go text): returns that code's address, else 0. */
static uint64_t stub_target(Elf *elf, const struct gopclntab *t, uint64_t lo, uint64_t hi, uint64_t cgocall,
                            uint64_t c_lo, uint64_t c_hi, uint64_t *var_out)
{
    size_t avail;
    const uint8_t *code = gopclntab_bytes(elf, lo, &avail);
    if (!code || hi <= lo)
        return 0;
    uint64_t var = cgs_stub_pointer(code, hi - lo < avail ? hi - lo : avail, lo, cgocall);
    if (!var || !in_writable_data(elf, var))
        return 0;
    uint64_t fn = read_ptr(elf, var);
    *var_out = var;
    return fn >= c_lo && fn < c_hi && (fn < t->text || fn >= t->etext) ? fn : 0;
}

/* [a, a + 8) in writable data or .bss, and 0 when the program starts. */
static int zero_at_start(Elf *elf, uint64_t a)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_WRITE) || !(sh.sh_flags & SHF_ALLOC) || (a & 7) ||
            a < sh.sh_addr || a - sh.sh_addr + 8 > sh.sh_size)
            continue;
        if (sh.sh_type == SHT_NOBITS)
            return 1;
        return sh.sh_type == SHT_PROGBITS && read_ptr(elf, a) == 0;
    }
    return 0;
}

/* runtime/cgo's context-function variable, found as the shim finds it without
 * runtime.SetCgoTraceback (shim/cgo_hooks.c, find_context_var): 1 when found. */
static int context_var_found(Elf *elf, const struct gopclntab *t, uint64_t c_lo, uint64_t c_hi)
{
    uint64_t crosscall2, end, wait_fn = 0;
    if (gopclntab_func(t, "crosscall2", &crosscall2, &end) != 0)
        return 0;
    Elf_Scn *scn = NULL;
    const uint8_t *hdr = NULL;
    size_t hdr_n = 0, shstrndx;
    uint64_t hdr_addr = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name = gelf_getshdr(scn, &sh) ? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
        if (name && strcmp(name, ".eh_frame_hdr") == 0) {
            hdr = gopclntab_bytes(elf, sh.sh_addr, &hdr_n);
            hdr_addr = sh.sh_addr;
        }
        if (sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            size_t avail;
            if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
                sym.st_value < c_lo || sym.st_value >= c_hi || (sym.st_value >= t->text && sym.st_value < t->etext))
                continue;
            const uint8_t *code = gopclntab_bytes(elf, sym.st_value, &avail);
            size_t len = sym.st_size && sym.st_size < 512 ? sym.st_size : 512;
            if (!code || avail < len || !cgs_calls(code, len, sym.st_value, crosscall2))
                continue;
            uint64_t w = cgs_first_call(code, len, sym.st_value);
            if (w < c_lo || w >= c_hi || (w >= t->text && w < t->etext) || (wait_fn && wait_fn != w))
                return 0;
            wait_fn = w;
        }
    }
    end = wait_fn && hdr ? cgs_eh_next_start(hdr, hdr_n, hdr_addr, wait_fn) : 0;
    size_t avail;
    const uint8_t *code = end > wait_fn && end - wait_fn <= 1024 ? gopclntab_bytes(elf, wait_fn, &avail) : NULL;
    if (!code || avail < end - wait_fn)
        return 0;
    uint64_t vars[4];
    size_t n = cgs_called_pointers(code, end - wait_fn, wait_fn, vars, 4), found = 0;
    for (size_t i = 0; i < n; i++)
        found += zero_at_start(elf, vars[i]);
    return found == 1;
}

size_t gopclntab_cgo_sites(Elf *elf, const struct gopclntab *t, int *callbacks,
                           void (*each)(void *arg, const char *stub, uint64_t var, uint64_t wrapper), void *arg)
{
    struct cgs_pcln p;
    uint64_t c_lo = 0, c_hi = 0, cgocall, end;
    *callbacks = 0;
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name = gelf_getshdr(scn, &sh) ? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
        if (name && strcmp(name, ".text") == 0) {
            c_lo = sh.sh_addr;
            c_hi = sh.sh_addr + sh.sh_size;
        }
    }
    if (!c_hi || cgs_pcln_init(&p, t->tab.p, t->tab.n) != 0 || gopclntab_func(t, "runtime.cgocall", &cgocall, &end) != 0)
        return 0;
    uint64_t lo, hi, var;
    if (gopclntab_func(t, "runtime.SetCgoTraceback", &lo, &hi) == 0)
        *callbacks = stub_target(elf, t, lo, hi, cgocall, c_lo, c_hi, &var) != 0;
    if (!*callbacks)
        *callbacks = context_var_found(elf, t, c_lo, c_hi);
    size_t n = 0;
    uint64_t last = 0;
    for (uint64_t i = 0; i < p.nfunc; i++) {
        uint32_t off_lo, off_hi;
        size_t pkg_len, cname_len;
        const char *name = cgs_pcln_func(&p, i, &off_lo, &off_hi), *cname;
        if (!name || !cgs_stub_site(name, &pkg_len, &cname, &cname_len))
            continue;
        uint64_t w = stub_target(elf, t, t->text + off_lo, t->text + off_hi, cgocall, c_lo, c_hi, &var);
        if (!w || w == last)
            continue; /* as in the shim, a pointer is hooked once */
        last = w;
        n++;
        if (each)
            each(arg, name, var, w);
    }
    return n;
}

const uint8_t *gopclntab_bytes(Elf *elf, uint64_t addr, size_t *avail)
{
    struct span s = at_vaddr(elf, addr);
    *avail = s.n;
    return s.p;
}
