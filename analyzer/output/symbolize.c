/*
 * Symbolization with elfutils. Two things need care (docs/cgo-facts.md §5):
 *  - .debug_aranges of a Go executable covers only its C objects, so for Go code the
 *    compilation unit is found through a table of every CU's address ranges instead;
 *  - a static function of the cgo preamble is usually inlined into its wrapper, and Go inlines
 *    too: inlined calls are expanded into frames of their own from DW_TAG_inlined_subroutine.
 * Every address is a return address, so `pc - 1` is looked up: the line of the call.
 */
#include "output/symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gobin/golayout.h"
#include "gobin/gopclntab.h"
#include "util/u64map.h"

struct cu_range {
    uint64_t lo, hi;
    Dwarf_Off cu_off;
};

struct sym_module {
    struct module_info *info; /* the symbolizer's own copy: frames point to it */
    int unreadable;           /* no file to open at its path */
    int vdso;                 /* the kernel's: nothing to open, nothing to say */
    int symtab_read;          /* symbolizer_warm loaded its symbol table */
    Dwfl_Module *mod;
    Dwarf *dw;
    Dwarf_Addr dwbias;
    struct cu_range *cus;
    size_t ncus;
    int cus_built;
    int system, ldso;
    struct gopclntab *pcln; /* Go's own table: names and lines of Go code without symbols or DWARF */
    uint64_t *starts; /* function starts from .eh_frame_hdr, link-time, sorted */
    size_t nstarts;
    int starts_built;
    int pcln_tried;
    struct fn_index *fnidx; /* per compilation unit looked into: its functions by address */
    size_t nfnidx;
    int dw_held; /* dw is golayout.h's copy of the file's DWARF, held */
};

/* The functions of one compilation unit by address, read once: finding the function of an
 * address by libdw's dwarf_getscopes walks the whole unit (twice more for an inlined body), which
 * in a large one (SQLite's amalgamation) cost most of a report's time. */
struct fn_range {
    Dwarf_Addr lo, hi;
    Dwarf_Off die;
};
struct fn_index {
    Dwarf_Off cu;
    struct fn_range *v;
    size_t n;
};

/* A cgo wrapper of the executable and the C function it calls: what names its code when the
 * executable has no symbols (docs/cgo-facts.md §10). */
struct wrapper_name {
    uint64_t addr; /* in the process */
    const char *function;
};

struct symbolizer {
    Dwfl *dwfl;
    struct wrapper_name *wrappers;
    size_t nwrappers;
    struct sym_module *mods;
    size_t nmods;
    struct u64map cache; /* pc -> index+1 of first frame in frames, count in high bits */
    struct frame *frames;
    size_t nframes, capframes;
    char **strings; /* owned copies of names */
    size_t nstrings, capstrings;
    char warnings[4096];
};

static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

int module_is_system(const char *path)
{
    static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/cgoscope/"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (strncmp(path, dirs[i], strlen(dirs[i])) == 0)
            return 1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "linux-vdso", 10) == 0 ||
           strncmp(base, "libcgoscope", 11) == 0;
}

static void warn(struct symbolizer *s, const char *fmt, const char *arg)
{
    size_t used = strlen(s->warnings);
    if (used + 200 > sizeof s->warnings)
        return;
    snprintf(s->warnings + used, sizeof s->warnings - used, fmt, arg);
}

/* Symbols and DWARF an executable lacks, and what the report loses with them. */
static void warn_stripped(struct symbolizer *s, struct sym_module *sm)
{
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(sm->mod, &bias);
    size_t shstrndx;
    if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
        return;
    int symtab = 0, debug = 0, pcln = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
        symtab |= sh.sh_type == SHT_SYMTAB;
        debug |= name && (strcmp(name, ".debug_info") == 0 || strcmp(name, ".zdebug_info") == 0);
    }
    if (symtab && debug)
        return;
    if (!sm->pcln_tried) { /* its own section, or (PIE, Go <= 1.21) inside .data.rel.ro */
        sm->pcln_tried = 1;
        sm->pcln = gopclntab_open(elf);
    }
    pcln = sm->pcln != NULL;
    char msg[900];
    size_t len = 0;
    if (!symtab && s->nwrappers)
        len += (size_t)snprintf(msg + len, sizeof msg - len,
                                "%s is stripped (no symbol table): its cgo calls were found from the Go stubs in its "
                                ".gopclntab (docs/cgo-facts.md §10), and frames inside a cgo wrapper are named after "
                                "the C function it calls; its other C functions are shown as addresses",
                                sm->info->path);
    else if (!symtab)
        len += (size_t)snprintf(msg + len, sizeof msg - len,
                                "%s is stripped (no symbol table) and no cgo call of it was hooked: there are no cgo "
                                "call counts or times and no callbacks, its own C functions are shown as addresses, "
                                "and the Go frames of an allocation come only from walking out of its C frames (none "
                                "when C code without unwind tables is in between)",
                                sm->info->path);
    if (!debug && len < sizeof msg)
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s has no DWARF: no file or line for its C functions",
                                len ? "; " : "", len ? "it" : sm->info->path);
    if (pcln && len < sizeof msg)
        len += (size_t)snprintf(msg + len, sizeof msg - len,
                                "; Go functions, files and lines come from its .gopclntab");
    if (len < sizeof msg)
        snprintf(msg + len, sizeof msg - len,
                 ". Build without -ldflags='-s -w' (and do not strip) for the names and lines of all C code.\n");
    warn(s, "%s", msg);
}

struct symbolizer *symbolizer_new_empty(void)
{
    struct symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    u64map_init(&s->cache);
    s->dwfl = dwfl_begin(&offline_callbacks);
    if (!s->dwfl) {
        symbolizer_free(s);
        return NULL;
    }
    return s;
}

static int has_module(const struct symbolizer *s, const struct module_info *m)
{
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].info->bias == m->bias && strcmp(s->mods[i].info->path, m->path) == 0)
            return 1;
    return 0;
}

int symbolizer_add_modules(struct symbolizer *s, const struct module_info *mods, size_t n)
{
    size_t add = 0;
    for (size_t i = 0; i < n; i++)
        add += !has_module(s, &mods[i]);
    if (!add)
        return 0;
    struct sym_module *nv = realloc(s->mods, (s->nmods + add) * sizeof *nv);
    if (!nv)
        return -1;
    s->mods = nv;
    int rc = 0;
    dwfl_report_begin_add(s->dwfl); /* the modules already reported stay */
    for (size_t i = 0; i < n; i++) {
        const struct module_info *m = &mods[i];
        if (has_module(s, m))
            continue;
        struct module_info *own = malloc(sizeof *own);
        char *path = strdup(m->path);
        if (!own || !path) {
            free(own);
            free(path);
            rc = -1;
            break;
        }
        *own = *m;
        own->path = path;
        struct sym_module *sm = &s->mods[s->nmods++];
        memset(sm, 0, sizeof *sm);
        sm->info = own;
        const char *base = strrchr(m->path, '/');
        base = base ? base + 1 : m->path;
        sm->ldso = strncmp(base, "ld-linux", 8) == 0;
        sm->system = module_is_system(m->path);
        sm->vdso = strncmp(base, "linux-vdso", 10) == 0;
        if (sm->vdso)
            continue;
        if (access(m->path, R_OK) != 0) {
            sm->unreadable = 1;
            continue;
        }
        sm->mod = dwfl_report_elf(s->dwfl, base, m->path, -1, m->bias, false);
    }
    dwfl_report_end(s->dwfl, NULL, NULL);
    return rc;
}

int symbolizer_sync(struct symbolizer *s, const struct process *p)
{
    struct wrapper_name *w = calloc(p->nsites ? p->nsites : 1, sizeof *w);
    if (!w)
        return -1;
    free(s->wrappers);
    s->wrappers = w;
    s->nwrappers = 0;
    for (size_t i = 0; i < p->nsites; i++)
        if (p->sites[i].wrapper && p->sites[i].function)
            s->wrappers[s->nwrappers++] = (struct wrapper_name){p->sites[i].wrapper, p->sites[i].function};
    int rc = symbolizer_add_modules(s, p->modules, p->nmodules);
    /* What the report says of its modules, in their order, from what is known now. */
    s->warnings[0] = 0;
    for (size_t i = 0; i < s->nmods; i++) {
        struct sym_module *sm = &s->mods[i];
        if (sm->unreadable)
            warn(s, "cannot read %s: its frames are shown as addresses\n", sm->info->path);
        else if (!sm->mod && !sm->vdso)
            warn(s, "cannot load %s: its frames are shown as addresses\n", sm->info->path);
        else if (sm->mod && sm->info->is_exe)
            warn_stripped(s, sm);
    }
    return rc;
}

int symbolizer_matches(const struct symbolizer *s, const struct process *p)
{
    if (!s->nmods)
        return 0;
    for (size_t i = 0; i < s->nmods; i++) {
        const struct module_info *m = s->mods[i].info;
        size_t k = 0;
        while (k < p->nmodules && !(p->modules[k].bias == m->bias && p->modules[k].is_exe == m->is_exe &&
                                    strcmp(p->modules[k].path, m->path) == 0))
            k++;
        if (k == p->nmodules)
            return 0;
    }
    return 1;
}

struct symbolizer *symbolizer_new(const struct process *p)
{
    struct symbolizer *s = symbolizer_new_empty();
    if (s && symbolizer_sync(s, p) != 0) {
        symbolizer_free(s);
        return NULL;
    }
    return s;
}

void symbolizer_free(struct symbolizer *s)
{
    if (!s)
        return;
    if (s->dwfl)
        dwfl_end(s->dwfl);
    for (size_t i = 0; i < s->nmods; i++) {
        free(s->mods[i].cus);
        free(s->mods[i].starts);
        for (size_t k = 0; k < s->mods[i].nfnidx; k++)
            free(s->mods[i].fnidx[k].v);
        free(s->mods[i].fnidx);
        gopclntab_free(s->mods[i].pcln);
        if (s->mods[i].dw_held)
            go_dwarf_release(s->mods[i].dw);
        free(s->mods[i].info->path);
        free(s->mods[i].info);
    }
    free(s->mods);
    free(s->wrappers);
    free(s->frames);
    for (size_t i = 0; i < s->nstrings; i++)
        free(s->strings[i]);
    free(s->strings);
    u64map_free(&s->cache);
    free(s);
}

const char *symbolizer_warnings(const struct symbolizer *s) { return s->warnings; }

static const char *keep(struct symbolizer *s, const char *str)
{
    if (!str)
        return NULL;
    if (s->nstrings == s->capstrings) {
        size_t nc = s->capstrings ? s->capstrings * 2 : 256;
        char **nv = realloc(s->strings, nc * sizeof *nv);
        if (!nv)
            return NULL;
        s->strings = nv;
        s->capstrings = nc;
    }
    char *c = strdup(str);
    if (c)
        s->strings[s->nstrings++] = c;
    return c;
}

static int cmp_range(const void *a, const void *b)
{
    const struct cu_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void build_cu_table(struct sym_module *m)
{
    m->cus_built = 1;
    if (!m->dw)
        return;
    size_t cap = 0;
    Dwarf_Off off = 0, next;
    size_t hsize;
    while (dwarf_nextcu(m->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu;
        if (dwarf_offdie(m->dw, off + hsize, &cu)) {
            Dwarf_Addr base, start, end;
            ptrdiff_t it = 0;
            while ((it = dwarf_ranges(&cu, it, &base, &start, &end)) > 0) {
                if (end <= start)
                    continue;
                if (m->ncus == cap) {
                    cap = cap ? cap * 2 : 256;
                    struct cu_range *nv = realloc(m->cus, cap * sizeof *nv);
                    if (!nv)
                        return;
                    m->cus = nv;
                }
                m->cus[m->ncus++] = (struct cu_range){start, end, off + hsize};
            }
        }
        off = next;
    }
    qsort(m->cus, m->ncus, sizeof *m->cus, cmp_range);
}

static int find_cu(struct sym_module *m, Dwarf_Addr addr, Dwarf_Die *cu)
{
    if (dwarf_addrdie(m->dw, addr, cu) && dwarf_haspc(cu, addr) == 1)
        return 1;
    if (!m->cus_built)
        build_cu_table(m);
    size_t lo = 0, hi = m->ncus;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->cus[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Ranges may nest or overlap a little; look back over a few candidates. */
    for (size_t i = lo; i > 0 && lo - i < 8; i--) {
        const struct cu_range *r = &m->cus[i - 1];
        if (addr >= r->lo && addr < r->hi && dwarf_offdie(m->dw, r->cu_off, cu))
            return 1;
    }
    return 0;
}

static int cmp_fn(const void *a, const void *b)
{
    const struct fn_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The index of cu's functions (its DW_TAG_subprogram children with code), built on first use. */
static const struct fn_index *fn_index_of(struct sym_module *m, Dwarf_Die *cu)
{
    Dwarf_Off off = dwarf_dieoffset(cu);
    for (size_t i = 0; i < m->nfnidx; i++)
        if (m->fnidx[i].cu == off)
            return &m->fnidx[i];
    struct fn_index *nv = realloc(m->fnidx, (m->nfnidx + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    m->fnidx = nv;
    struct fn_index *x = &m->fnidx[m->nfnidx++];
    memset(x, 0, sizeof *x);
    x->cu = off;
    size_t cap = 0;
    Dwarf_Die child;
    if (dwarf_child(cu, &child) != 0)
        return x;
    do {
        if (dwarf_tag(&child) != DW_TAG_subprogram)
            continue;
        Dwarf_Addr base, start, end;
        ptrdiff_t it = 0;
        while ((it = dwarf_ranges(&child, it, &base, &start, &end)) > 0) {
            if (end <= start)
                continue;
            if (x->n == cap) {
                cap = cap ? cap * 2 : 64;
                struct fn_range *v = realloc(x->v, cap * sizeof *v);
                if (!v)
                    return x;
                x->v = v;
            }
            x->v[x->n++] = (struct fn_range){start, end, dwarf_dieoffset(&child)};
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    qsort(x->v, x->n, sizeof *x->v, cmp_fn);
    return x;
}

/* The function of cu whose code holds a, by the index. */
static int find_function(struct sym_module *m, Dwarf_Die *cu, Dwarf_Addr a, Dwarf_Die *fn)
{
    const struct fn_index *x = fn_index_of(m, cu);
    if (!x || !x->n)
        return 0;
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->v[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i > 0 && lo - i < 8; i--) {
        const struct fn_range *r = &x->v[i - 1];
        if (a >= r->lo && a < r->hi)
            return dwarf_offdie(m->dw, r->die, fn) != NULL;
    }
    return 0;
}

/* What dwarf_getscopes and dwarf_getscopes_die gave together, from inside fn alone: the inlined
 * bodies that hold a, innermost first, then fn. Descends through lexical blocks and inlined
 * bodies whose code holds a. Returns the count, in a malloc'ed array. */
static int function_scopes(Dwarf_Die *fn, Dwarf_Addr a, Dwarf_Die **out)
{
    Dwarf_Die chain[64], cur = *fn, child;
    int n = 0;
    chain[n++] = *fn;
    for (int depth = 0; depth < 256 && dwarf_child(&cur, &child) == 0; depth++) {
        int found = 0;
        do {
            int tag = dwarf_tag(&child);
            if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block || tag == DW_TAG_try_block ||
                 tag == DW_TAG_catch_block || tag == DW_TAG_with_stmt) &&
                dwarf_haspc(&child, a) == 1) {
                found = 1;
                break;
            }
        } while (dwarf_siblingof(&child, &child) == 0);
        if (!found)
            break;
        cur = child;
        if (dwarf_tag(&cur) == DW_TAG_inlined_subroutine && n < 64)
            chain[n++] = cur;
    }
    *out = malloc((size_t)n * sizeof **out);
    if (!*out)
        return -1;
    for (int i = 0; i < n; i++)
        (*out)[i] = chain[n - 1 - i];
    return n;
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *n = NULL;
    if (dwarf_attr_integrate(die, DW_AT_name, &attr))
        n = dwarf_formstring(&attr);
    return n;
}

static int push_frame(struct symbolizer *s, struct frame f)
{
    if (s->nframes == s->capframes) {
        size_t nc = s->capframes ? s->capframes * 2 : 1024;
        struct frame *nv = realloc(s->frames, nc * sizeof *nv);
        if (!nv)
            return -1;
        s->frames = nv;
        s->capframes = nc;
    }
    s->frames[s->nframes++] = f;
    return 0;
}

static struct sym_module *module_for(struct symbolizer *s, uint64_t pc)
{
    for (size_t i = 0; i < s->nmods; i++)
        if (pc >= s->mods[i].info->lo && pc < s->mods[i].info->hi)
            return &s->mods[i];
    return NULL;
}

/* The module's DWARF, read on first use. An executable's comes from golayout.h's copy, inflated
 * once in the run (before the program started, for the Go runtime's layout) where libdwfl would
 * inflate every compressed debug section again: ~100 ms of a Go test binary's report. Its
 * addresses are link-time, like those of dwfl_module_getdwarf's, and the module was reported at
 * the process's bias. */
static void load_dwarf(struct sym_module *m)
{
    if (m->dw || m->cus_built)
        return;
    if (m->info->is_exe && (m->dw = go_dwarf_hold(m->info->path)) != NULL) {
        m->dw_held = 1;
        m->dwbias = m->info->bias;
        return;
    }
    m->dw = dwfl_module_getdwarf(m->mod, &m->dwbias);
}

/* Go code of an executable without DWARF: its .gopclntab names the function (and what was
 * inlined into it), the file and the line. Returns the frames appended. */
static size_t resolve_go_table(struct symbolizer *s, struct sym_module *m, uint64_t addr, struct frame base)
{
    if (!m->pcln_tried) {
        m->pcln_tried = 1;
        GElf_Addr bias;
        m->pcln = gopclntab_open(dwfl_module_getelf(m->mod, &bias));
    }
    if (!m->pcln)
        return 0;
    struct go_frame fr[32];
    size_t n = gopclntab_lookup(m->pcln, addr - m->info->bias, fr, sizeof fr / sizeof fr[0]);
    for (size_t i = 0; i < n; i++) {
        struct frame f = base;
        f.lang = LANG_GO;
        f.function = keep(s, fr[i].function);
        f.file = keep(s, fr[i].file);
        f.line = fr[i].line;
        f.inlined = i + 1 < n;
        push_frame(s, f);
    }
    return n;
}

/* Where the functions of a module start, link-time and sorted, from the binary-search table of
 * .eh_frame_hdr (which stripping keeps: unwinding needs it). Only the layout GNU ld writes is
 * read (a 4-byte count, then pairs of 4-byte offsets from the table's own address); any other
 * leaves the list empty. */
static void build_starts(struct sym_module *m)
{
    m->starts_built = 1;
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(m->mod, &bias);
    size_t shstrndx;
    if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
        return;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name = gelf_getshdr(scn, &sh) ? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
        if (!name || strcmp(name, ".eh_frame_hdr") != 0 || sh.sh_type != SHT_PROGBITS)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        const uint8_t *p = d ? d->d_buf : NULL;
        /* version 1; eh_frame_ptr 4 bytes (pcrel or datarel, sdata4 or udata4); the count
         * udata4; the table datarel sdata4 */
        if (!p || d->d_size < 12 || p[0] != 1 || ((p[1] & 0x0f) != 0x03 && (p[1] & 0x0f) != 0x0b) || p[2] != 0x03 ||
            p[3] != 0x3b)
            return;
        uint32_t count;
        memcpy(&count, p + 8, 4);
        if (count > (d->d_size - 12) / 8 || !(m->starts = malloc((count ? count : 1) * sizeof *m->starts)))
            return;
        for (uint32_t i = 0; i < count; i++) {
            int32_t loc;
            memcpy(&loc, p + 12 + 8 * (size_t)i, 4);
            m->starts[m->nstarts++] = sh.sh_addr + (uint64_t)(int64_t)loc;
        }
        return;
    }
}

/* The C function whose cgo wrapper holds addr, in an executable without symbols: the call-frame
 * information gives the start of the function around addr, and a wrapper the shim hooked starts
 * there. The C function itself is usually inlined into its wrapper (a static function of the
 * preamble), so this names the frame that called malloc too. */
static const char *wrapper_function(struct symbolizer *s, struct sym_module *m, uint64_t addr)
{
    if (!s->nwrappers)
        return NULL;
    if (!m->starts_built)
        build_starts(m);
    uint64_t a = addr - m->info->bias;
    size_t lo = 0, hi = m->nstarts; /* the last start <= a */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->starts[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return NULL;
    uint64_t start = m->starts[lo - 1] + m->info->bias;
    for (size_t i = 0; i < s->nwrappers; i++)
        if (s->wrappers[i].addr == start)
            return s->wrappers[i].function;
    return NULL;
}

/* The symbol table's name for addr. Asked only when DWARF has no name: libdwfl searches the
 * table linearly (~130 us an address in a Go test binary). */
static const char *symbol_name(struct sym_module *m, uint64_t addr)
{
    GElf_Off off;
    GElf_Sym sym;
    return dwfl_module_addrinfo(m->mod, addr, &off, &sym, NULL, NULL, NULL);
}

/* Appends the frames for one address to s->frames; returns how many. */
static size_t resolve(struct symbolizer *s, uint64_t pc)
{
    uint64_t addr = pc ? pc - 1 : 0;
    struct sym_module *m = module_for(s, addr);
    struct frame base = {.pc = pc, .lang = LANG_UNKNOWN};
    if (m) {
        base.module = m->info;
        base.system = m->system;
        base.ldso = m->ldso;
    }
    if (!m || !m->mod) {
        push_frame(s, base);
        return 1;
    }

    load_dwarf(m);
    if (!m->dw)
        m->cus_built = 1;

    Dwarf_Die cu;
    if (m->dw && find_cu(m, addr - m->dwbias, &cu)) {
        Dwarf_Addr a = addr - m->dwbias;
        int lang = dwarf_srclang(&cu) == DW_LANG_Go ? LANG_GO : LANG_C;
        const char *file = NULL;
        int line = 0;
        Dwarf_Line *dl = dwarf_getsrc_die(&cu, a);
        if (dl) {
            file = dwarf_linesrc(dl, NULL, NULL);
            dwarf_lineno(dl, &line);
        }
        Dwarf_Files *files = NULL;
        size_t nfiles = 0;
        dwarf_getsrcfiles(&cu, &files, &nfiles);

        /* The innermost function scope holding the address, then its physical nesting in the
         * DIE tree: inlined bodies inside the function they were inlined into. */
        Dwarf_Die *scopes = NULL, fnd;
        int ns;
        if (find_function(m, &cu, a, &fnd)) {
            ns = function_scopes(&fnd, a, &scopes); /* the same chain, from inside the function */
        } else {
            ns = dwarf_getscopes(&cu, a, &scopes);
            for (int i = 0; i < ns; i++) {
                int tag = dwarf_tag(&scopes[i]);
                if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram) {
                    Dwarf_Die fn = scopes[i];
                    free(scopes);
                    scopes = NULL;
                    ns = dwarf_getscopes_die(&fn, &scopes);
                    break;
                }
            }
        }
        size_t made = 0;
        for (int i = 0; i < ns; i++) {
            int tag = dwarf_tag(&scopes[i]);
            if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
                continue;
            struct frame f = base;
            f.lang = lang;
            f.file = keep(s, file);
            f.line = line;
            const char *name = die_name(&scopes[i]);
            if (!name)
                name = symbol_name(m, addr); /* DWARF's name is the source's: no .constprop.0 clone suffixes */
            f.function = keep(s, name);
            f.inlined = tag == DW_TAG_inlined_subroutine;
            push_frame(s, f);
            made++;
            if (tag == DW_TAG_subprogram)
                break;
            /* The next frame out is at the call site of this inlined body. */
            Dwarf_Attribute attr;
            Dwarf_Word cf = 0, cl = 0;
            file = NULL;
            line = 0;
            if (dwarf_attr(&scopes[i], DW_AT_call_file, &attr) && dwarf_formudata(&attr, &cf) == 0 && files)
                file = dwarf_filesrc(files, cf, NULL, NULL);
            if (dwarf_attr(&scopes[i], DW_AT_call_line, &attr) && dwarf_formudata(&attr, &cl) == 0)
                line = (int)cl;
        }
        free(scopes);
        if (made)
            return made;
        base.lang = lang;
        base.file = keep(s, file);
        base.line = line;
    } else if (m->info->is_exe) {
        size_t made = resolve_go_table(s, m, addr, base);
        if (made)
            return made;
    }
    const char *symname = symbol_name(m, addr);
    if (!symname && m->info->is_exe) {
        const char *c = wrapper_function(s, m, addr);
        if (c) {
            base.function = keep(s, c);
            base.lang = LANG_C;
            push_frame(s, base);
            return 1;
        }
    }
    base.function = keep(s, symname);
    if (base.lang == LANG_UNKNOWN && symname)
        base.lang = (m->info->is_exe && strchr(symname, '.') && strncmp(symname, "_cgo_", 5) != 0) ? LANG_GO : LANG_C;
    push_frame(s, base);
    return 1;
}

const struct frame *symbolize(struct symbolizer *s, uint64_t pc, size_t *n)
{
    uint64_t key = pc ? pc : 1;
    uint64_t *v = u64map_get(&s->cache, key);
    if (v) {
        *n = (size_t)(*v >> 48);
        return &s->frames[(*v & ((1ull << 48) - 1))];
    }
    size_t first = s->nframes;
    go_dwarf_lock();
    size_t made = resolve(s, pc);
    go_dwarf_unlock();
    if (s->nframes < first + made) { /* out of memory */
        *n = 0;
        return NULL;
    }
    uint64_t *slot = u64map_put(&s->cache, key, NULL);
    if (slot)
        *slot = ((uint64_t)made << 48) | first;
    *n = made;
    return &s->frames[first];
}

static void warm(struct symbolizer *s, uint64_t pc);

void symbolizer_warm(struct symbolizer *s, uint64_t pc)
{
    go_dwarf_lock();
    warm(s, pc);
    go_dwarf_unlock();
}

static void warm(struct symbolizer *s, uint64_t pc)
{
    uint64_t addr = pc ? pc - 1 : 0;
    struct sym_module *m = module_for(s, addr);
    if (!m || !m->mod)
        return;
    load_dwarf(m);
    if (!m->dw) { /* the symbol table, or for Go code .gopclntab, will name it */
        m->cus_built = 1;
        if (!m->symtab_read) {
            m->symtab_read = 1;
            dwfl_module_getsymtab(m->mod);
        }
        if (m->info->is_exe && !m->pcln_tried) {
            m->pcln_tried = 1;
            GElf_Addr bias;
            m->pcln = gopclntab_open(dwfl_module_getelf(m->mod, &bias));
        }
        return;
    }
    Dwarf_Die cu;
    if (!find_cu(m, addr - m->dwbias, &cu))
        return;
    Dwarf_Off off = dwarf_dieoffset(&cu);
    for (size_t i = 0; i < m->nfnidx; i++)
        if (m->fnidx[i].cu == off)
            return; /* this unit is ready */
    fn_index_of(m, &cu);
    Dwarf_Lines *lines;
    size_t nlines;
    dwarf_getsrclines(&cu, &lines, &nlines); /* libdw keeps both in the unit */
    Dwarf_Files *files;
    size_t nfiles;
    dwarf_getsrcfiles(&cu, &files, &nfiles);
}

static const char *go_package_from_table(struct symbolizer *s, struct sym_module *m, const char *name);

/* The export's Go function is "_cgoexp_<12 hex>_<name>", without a package prefix; the DWARF
 * unit that holds it is named after its package. */
static const char *go_package_of(struct symbolizer *s, const char *name);

const char *symbolizer_go_package_of(struct symbolizer *s, const char *name)
{
    go_dwarf_lock();
    const char *pkg = go_package_of(s, name);
    go_dwarf_unlock();
    return pkg;
}

static const char *go_package_of(struct symbolizer *s, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < s->nmods; i++) {
        struct sym_module *m = &s->mods[i];
        if (!m->info->is_exe || !m->mod)
            continue;
        int n = dwfl_module_getsymtab(m->mod);
        for (int k = 0; k < n; k++) {
            GElf_Sym sym;
            GElf_Addr addr;
            const char *sn = dwfl_module_getsym_info(m->mod, k, &sym, &addr, NULL, NULL, NULL);
            if (!sn || strncmp(sn, "_cgoexp_", 8) != 0 || strlen(sn) != 8 + 12 + 1 + nlen || sn[20] != '_' ||
                strcmp(sn + 21, name) != 0)
                continue;
            load_dwarf(m);
            Dwarf_Die cu;
            if (m->dw && find_cu(m, addr - m->dwbias, &cu)) {
                const char *pkg = dwarf_diename(&cu);
                if (pkg)
                    return keep(s, pkg);
            }
        }
        const char *pkg = go_package_from_table(s, m, name); /* no symbol table to find it in */
        if (pkg)
            return pkg;
    }
    return NULL;
}

/* The same from .gopclntab, for an executable without symbols: the export's Go function is
 * named "_cgoexp_<12 hex>_<name>" there too, with no package; it calls the exported function
 * "<pkg>.<name>" (often inlined into it: the table still names it), whose package is the answer
 * when exactly one package has a function of that name. */
static const char *go_package_from_table(struct symbolizer *s, struct sym_module *m, const char *name)
{
    if (!m->pcln_tried) {
        m->pcln_tried = 1;
        GElf_Addr bias;
        m->pcln = gopclntab_open(dwfl_module_getelf(m->mod, &bias));
    }
    if (!m->pcln)
        return NULL;
    size_t nlen = strlen(name);
    const char *found = NULL;
    int exported = 0, many = 0;
    size_t total;
    const char *names = gopclntab_names(m->pcln, &total);
    for (size_t off = 0; off < total;) {
        const char *fn = names + off;
        size_t len = strnlen(fn, total - off);
        off += len + 1;
        if (len <= nlen + 1 || off > total)
            continue;
        if (strncmp(fn, "_cgoexp_", 8) == 0 && len == 8 + 12 + 1 + nlen && fn[20] == '_' && strcmp(fn + 21, name) == 0)
            exported = 1;
        const char *slash = strrchr(fn, '/');
        const char *dot = strchr(slash ? slash : fn, '.');
        if (dot && dot == fn + len - nlen - 1 && strcmp(dot + 1, name) == 0) {
            many |= found != NULL;
            found = fn;
        }
    }
    if (!exported || !found || many)
        return NULL;
    char *pkg = strndup(found, strlen(found) - nlen - 1);
    const char *kept = keep(s, pkg);
    free(pkg);
    return kept;
}

const char *symbolizer_data_symbol(struct symbolizer *s, uint64_t addr, const struct module_info **module)
{
    struct sym_module *m = module_for(s, addr);
    if (module)
        *module = m ? m->info : NULL;
    if (!m || !m->mod)
        return NULL;
    GElf_Off off;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(m->mod, addr, &off, &sym, NULL, NULL, NULL);
    if (!name || (sym.st_size && off >= sym.st_size))
        return NULL;
    return keep(s, name);
}
