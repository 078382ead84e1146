/*
 * `cgoscope inspect`: what cgoscope can do with an executable, read from the file alone.
 *
 * The cgo call sites are the variables the shim hooks (docs/cgo-facts.md §1): a Go package
 * variable `<pkg>._cgo_<12 hex>_Cfunc_f` (or _C2func_, _Cmacro_), an STT_OBJECT of pointer size,
 * next to a C wrapper function of the same name without the package. The rules here are those of
 * shim/cgo_hooks.c, written again with gelf because the analyzer never includes shim code.
 * A stripped binary has no .symtab to find them by; its Go stubs `<pkg>._Cfunc_f`, which
 * load those variables, are still named in .gopclntab, so the sites are counted from there,
 * and the ones the shim will hook are those whose load decodes (gopclntab_cgo_sites, the same
 * code as the shim's: docs/cgo-facts.md §10).
 */
#include "gobin/inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gobin/gobuild.h"
#include "gobin/gopclntab.h"
#include "gobin/preflight.h"

struct site {
    char *package, *function;
};

struct sites {
    struct site *v;
    size_t n, cap;
};

static int sites_push(struct sites *s, char *package, char *function)
{
    if (!package || !function)
        goto fail;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct site *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            goto fail;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = (struct site){package, function};
    return 0;
fail:
    free(package);
    free(function);
    return -1;
}

static void sites_free(struct sites *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].package);
        free(s->v[i].function);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- names ---------------------------------------------------------------------------------- */

static int is_hex12(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A C name as cgo mangles it: an identifier up to the end of the string. */
static int is_c_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* "_Cfunc_f", "_C2func_f", "_Cmacro_f": returns f, or NULL. */
static const char *stub_c_name(const char *s)
{
    static const char *const kinds[] = {"_Cfunc_", "_C2func_", "_Cmacro_"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t n = strlen(kinds[i]);
        if (strncmp(s, kinds[i], n) == 0 && is_c_name(s + n))
            return s + n;
    }
    return NULL;
}

/* "_cgo_<12 hex>_Cfunc_f" and friends (the C wrapper's name): returns f, or NULL. */
static const char *wrapper_c_name(const char *s)
{
    if (strncmp(s, "_cgo_", 5) != 0 || !is_hex12(s + 5)) /* stops at the NUL of a short name */
        return NULL;
    return stub_c_name(s + 17);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Symbol names escape a package path's last element (cmd/internal/objabi.PathToPrefix):
 * "gopkg.in/yaml.v2" is spelled "gopkg.in/yaml%2ev2". Users know the path, so undo it. */
static char *package_path(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return out;
}

static const char *last_of(const char *s, const char *needle)
{
    const char *last = NULL;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        last = p;
    return last;
}

int inspect_parse_site_var(const char *symbol, char **package, char **function)
{
    /* The package path may hold dots and even "._cgo_"; the wrapper's name never holds a dot. */
    const char *w = last_of(symbol, "._cgo_");
    const char *f = w ? wrapper_c_name(w + 1) : NULL;
    if (!f || w == symbol)
        return -1;
    *package = package_path(symbol, (size_t)(w - symbol));
    *function = strdup(f);
    if (!*package || !*function) {
        free(*package);
        free(*function);
        return -1;
    }
    return 0;
}

/* ---- call sites from .symtab ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The C wrappers (STT_FUNC "_cgo_<hash>_Cfunc_f"), sorted: a variable only counts when its
 * wrapper is there, as in the shim. The names point into the ELF string table. */
static int symtab_wrappers(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, const char ***out, size_t *n)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    size_t nsyms = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0, cap = 0;
    const char **v = NULL;
    *n = 0;
    for (size_t i = 0; d && i < nsyms; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
            continue;
        const char *name = elf_strptr(e, sh->sh_link, sym.st_name);
        if (!name || !wrapper_c_name(name))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            const char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[(*n)++] = name;
    }
    if (*n)
        qsort(v, *n, sizeof *v, cmp_str);
    *out = v;
    return 0;
}

static int symtab_sites(Elf *e, Elf_Scn *scn, size_t ptrsize, struct sites *out)
{
    GElf_Shdr sh;
    const char **wrappers = NULL;
    size_t nwrappers = 0;
    if (!gelf_getshdr(scn, &sh) || symtab_wrappers(e, scn, &sh, &wrappers, &nwrappers) != 0)
        return -1;
    Elf_Data *d = elf_getdata(scn, NULL);
    size_t nsyms = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
    int rc = 0;
    for (size_t i = 0; d && i < nsyms && rc == 0; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_OBJECT || sym.st_size != ptrsize)
            continue;
        const char *name = elf_strptr(e, sh.sh_link, sym.st_name);
        const char *w = name ? last_of(name, "._cgo_") : NULL;
        if (!w || !wrapper_c_name(w + 1))
            continue;
        const char *key = w + 1;
        if (!nwrappers || !bsearch(&key, wrappers, nwrappers, sizeof *wrappers, cmp_str))
            continue; /* no C wrapper of that name: not what cgo made, the shim leaves it alone */
        char *pkg, *fn;
        if (inspect_parse_site_var(name, &pkg, &fn) != 0 || sites_push(out, pkg, fn) != 0)
            rc = -1;
    }
    free(wrappers);
    return rc;
}

/* ---- call sites from .gopclntab (stripped binaries) ----------------------------------------- */

static uint64_t read_uint(const uint8_t *p, size_t size, int big_endian)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++)
        v |= (uint64_t)p[big_endian ? size - 1 - i : i] << (8 * i);
    return v;
}

/* "<pkg>._Cfunc_f" (f not one of cgo's Go-side helpers) or "<pkg>._cgo_cmalloc", the stub of
 * C.CString, C.CBytes and C.malloc: each loads exactly one wrapper-pointer variable. */
static int stub_site(const char *name, struct sites *out)
{
    static const char *const go_side[] = {"GoString", "GoStringN", "GoBytes", "CString", "CBytes", "_CMalloc"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    const char *f = NULL;
    if (strcmp(dot + 1, "_cgo_cmalloc") == 0) {
        f = "_Cmalloc";
    } else if ((f = stub_c_name(dot + 1)) != NULL) {
        for (size_t i = 0; i < sizeof go_side / sizeof *go_side; i++)
            if (strcmp(f, go_side[i]) == 0)
                return 0;
    } else {
        return 0;
    }
    return sites_push(out, package_path(name, (size_t)(dot - name)), strdup(f));
}

/* pcHeader (runtime/symtab.go): magic, 2 pad bytes, minLC, ptrSize, then pointer-sized nfunc,
 * nfiles, [textStart from Go 1.18], funcnameOffset, cuOffset, ... funcnametab holds every
 * function name once, NUL-terminated, and ends where cutab begins. */
static int pclntab_sites(Elf_Scn *scn, int big_endian, struct sites *out)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || !d->d_buf || d->d_size < 8)
        return 0;
    const uint8_t *p = d->d_buf;
    uint32_t magic = (uint32_t)read_uint(p, 4, big_endian);
    size_t ptr = p[7];
    size_t first; /* index of funcnameOffset among the pointer-sized fields */
    if (magic == 0xfffffff0 || magic == 0xfffffff1)
        first = 3;
    else if (magic == 0xfffffffa)
        first = 2; /* Go 1.16, 1.17 */
    else
        return 0;
    if ((ptr != 4 && ptr != 8) || d->d_size < 8 + (first + 2) * ptr)
        return 0;
    uint64_t lo = read_uint(p + 8 + first * ptr, ptr, big_endian);
    uint64_t hi = read_uint(p + 8 + (first + 1) * ptr, ptr, big_endian);
    if (lo > hi || hi > d->d_size)
        return 0;
    for (uint64_t off = lo; off < hi;) {
        const char *name = (const char *)p + off;
        size_t len = strnlen(name, (size_t)(hi - off));
        if (len && len < (size_t)(hi - off) && stub_site(name, out) != 0)
            return -1;
        off += len + 1;
    }
    return 0;
}

/* ---- the ELF file --------------------------------------------------------------------------- */

struct elf_facts {
    Elf_Scn *symtab, *pclntab;
    int has_buildinfo;
};

static void read_sections(Elf *e, struct inspect *in, struct elf_facts *f)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(e, &shstrndx) != 0)
        return;
    for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        const char *name = elf_strptr(e, shstrndx, sh.sh_name);
        if (sh.sh_type == SHT_SYMTAB)
            f->symtab = scn;
        if (!name)
            continue;
        /* A separate-debuginfo split leaves .debug_info as NOBITS: no DWARF in this file. */
        int has_bits = sh.sh_type != SHT_NOBITS && sh.sh_size > 0;
        if (strcmp(name, ".debug_info") == 0 && has_bits) {
            in->dwarf = 1;
            in->dwarf_compressed |= (sh.sh_flags & SHF_COMPRESSED) != 0;
        } else if (strcmp(name, ".zdebug_info") == 0 && has_bits) {
            in->dwarf = in->dwarf_compressed = 1;
        } else if (strcmp(name, ".gopclntab") == 0 || strcmp(name, ".data.rel.ro.gopclntab") == 0) {
            f->pclntab = scn;
        } else if (strcmp(name, ".go.buildinfo") == 0) {
            f->has_buildinfo = 1;
        }
    }
    in->stripped = f->symtab == NULL;
}

static void read_headers(Elf *e, struct inspect *in)
{
    GElf_Ehdr eh;
    size_t n = 0;
    int interp = 0;
    if (elf_getphdrnum(e, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
                interp = 1;
        }
    }
    if (gelf_getehdr(e, &eh)) {
        in->is_pie = eh.e_type == ET_DYN && interp;
        in->is_x86_64 = eh.e_machine == EM_X86_64;
    }
}

static int read_sites(Elf *e, const struct elf_facts *f, struct sites *s, struct inspect *in)
{
    const char *ident = elf_getident(e, NULL);
    int big_endian = ident && ident[EI_DATA] == ELFDATA2MSB;
    size_t ptrsize = gelf_getclass(e) == ELFCLASS32 ? 4 : 8;
    if (f->symtab) {
        in->sites_from = INSPECT_SITES_SYMTAB;
        return symtab_sites(e, f->symtab, ptrsize, s);
    }
    if (f->pclntab) {
        in->sites_from = INSPECT_SITES_PCLNTAB;
        return pclntab_sites(f->pclntab, big_endian, s);
    }
    /* A PIE of Go 1.21 to 1.25 has its table inside .data.rel.ro, without a section of its own. */
    struct gopclntab *t = gopclntab_open(e);
    if (!t)
        return 0;
    in->sites_from = INSPECT_SITES_PCLNTAB;
    size_t len;
    const char *names = gopclntab_names(t, &len);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t n = strnlen(names + off, len - off);
        if (n && n < len - off)
            rc = stub_site(names + off, s);
        off += n + 1;
    }
    gopclntab_free(t);
    return rc;
}

/* ---- grouping ------------------------------------------------------------------------------- */

static int cmp_site(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    int c = strcmp(x->package, y->package);
    return c ? c : strcmp(x->function, y->function);
}

/* Moves the names of sorted sites into packages; what is not moved stays for sites_free. */
static int group_sites(struct sites *s, struct inspect *in)
{
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, cmp_site);
    in->nsites = s->n;
    for (size_t i = 0; i < s->n; i++) {
        struct inspect_package *pk = in->npackages ? &in->packages[in->npackages - 1] : NULL;
        if (!pk || strcmp(pk->name, s->v[i].package) != 0) {
            pk = realloc(in->packages, (in->npackages + 1) * sizeof *pk);
            if (!pk)
                return -1;
            in->packages = pk;
            pk = &in->packages[in->npackages++];
            *pk = (struct inspect_package){.name = s->v[i].package};
            s->v[i].package = NULL;
        }
        pk->nsites++;
        if (pk->nfunctions && strcmp(pk->functions[pk->nfunctions - 1], s->v[i].function) == 0)
            continue; /* C.f() and `r, err := C.f()`: two sites, one function */
        char **nf = realloc(pk->functions, (pk->nfunctions + 1) * sizeof *nf);
        if (!nf)
            return -1;
        pk->functions = nf;
        nf[pk->nfunctions++] = s->v[i].function;
        s->v[i].function = NULL;
    }
    return 0;
}

/* ---- warnings ------------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void warn(struct inspect *in, const char *fix, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct inspect_warning *nw = realloc(in->warnings, (in->nwarnings + 1) * sizeof *nw);
    if (!nw)
        return; /* a warning lost to an out-of-memory is not worth failing the command for */
    in->warnings = nw;
    nw[in->nwarnings].what = strdup(buf);
    nw[in->nwarnings].fix = fix ? strdup(fix) : NULL;
    if (nw[in->nwarnings].what)
        in->nwarnings++;
}

static void warn_go(struct inspect *in)
{
    if (!in->is_go) {
        warn(in, NULL,
             "not a Go binary (no Go build info, no .gopclntab): cgoscope still records its C "
             "allocations, but there are no cgo calls to hook and no Go frames to show");
        return;
    }
    int minor = in->go_version[0] ? gobuild_minor(in->go_version) : -1;
    if (!in->go_version[0])
        warn(in, "rebuild it with Go 1.21 or later",
             "Go version unknown (no readable .go.buildinfo; Go before 1.18 wrote it differently): "
             "cgoscope is tested with Go 1.21 and later");
    else if (minor >= 0 && minor < 21)
        warn(in, "rebuild it with Go 1.21 or later",
             "built with %s: cgoscope is tested with Go 1.21 and later, where the frame-pointer "
             "chain through cgo calls is kept intact; Go frames may be missing",
             in->go_version);
}

static void warn_linking(struct inspect *in)
{
    if (!in->is_x86_64)
        warn(in, "build it for linux/amd64 to trace it",
             "not an x86-64 executable: the cgoscope shim runs on Linux x86-64 only");
    if (in->is_static && in->is_go && in->sites_from != INSPECT_SITES_NONE && in->nsites == 0)
        warn(in, NULL,
             "static Go binary without cgo calls (built with CGO_ENABLED=0, or no package imports \"C\"): "
             "it has no C allocations of its own for cgoscope to find");
    else if (in->is_static)
        warn(in, "rebuild without -extldflags=-static to trace it (cgo programs link dynamically by default)",
             "static binary: LD_PRELOAD cannot load the shim into it, so nothing can be traced");
    if (in->is_setid)
        warn(in, "trace a copy without the setuid/setgid bit (cp PROG /tmp/prog, then cgoscope run /tmp/prog)",
             "setuid/setgid: the loader ignores LD_PRELOAD for it, so it runs untraced");
}

static void warn_symbols(struct inspect *in)
{
    if (in->stripped && in->is_go) {
        const char *fix = "rebuild without -ldflags=-s (go test: -ldflags='-s=false -w=false') to name every C function";
        if (in->traceable && in->hookable < in->nsites)
            warn(in, fix,
                 "stripped (no .symtab): %zu of the %zu cgo call sites were found in the code of their Go stubs "
                 "(.gopclntab), the others are not counted; C functions other than those the cgo wrappers call "
                 "have no names (leaks keep their Go frames, named from .gopclntab)",
                 in->hookable, in->nsites);
        else
            warn(in, fix,
                 "stripped (no .symtab): the cgo call sites are found from their Go stubs in .gopclntab, and "
                 "frames inside a cgo wrapper are named after its C function, but other C functions of the "
                 "executable have no names");
        if (in->exports && !in->callbacks)
            warn(in, "rebuild without -ldflags=-s to count them",
                 "stripped, and runtime/cgo's context function could not be found in the code: C->Go "
                 "callbacks (//export) are not counted");
    } else if (in->stripped)
        warn(in, "rebuild it without stripping it (no -s, no `strip`)",
             "stripped (no .symtab): functions of the executable itself have no names");
    if (!in->dwarf && in->stripped)
        warn(in, in->is_go ? "rebuild without -ldflags=-s and without -w" : "build it with -g and do not strip it",
             "no DWARF%s: frames have no file:line%s", in->is_go ? " (-ldflags=-s or -w removed it)" : "",
             in->is_go ? " but Go frames, which get theirs from .gopclntab" : "");
    else if (!in->dwarf)
        warn(in, in->is_go ? "rebuild without -ldflags=-w" : "build it with -g",
             "no DWARF%s: frames are named but have no file:line%s", in->is_go ? " (-ldflags=-w)" : "",
             in->is_go ? ", except Go frames, which get theirs from .gopclntab" : "");
    if (in->is_go && !in->is_static && in->sites_from != INSPECT_SITES_NONE && in->nsites == 0)
        warn(in, NULL,
             "no cgo call sites: no package of this program calls C (no import \"C\"), so cgoscope "
             "will only see the C allocations of the Go runtime and system libraries");
}

/* ---- entry point ---------------------------------------------------------------------------- */

static int read_elf(Elf *e, struct inspect *in, char *err, size_t errlen)
{
    struct elf_facts f = {0};
    struct sites s = {0};
    read_headers(e, in);
    read_sections(e, in, &f);
    in->is_go = in->go_version[0] || f.has_buildinfo || f.pclntab;
    int rc = read_sites(e, &f, &s, in);
    if (rc == 0)
        rc = group_sites(&s, in);
    sites_free(&s);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory reading the symbols of %s", in->path);
        return -1;
    }
    in->traceable = !in->is_static && !in->is_setid && in->is_x86_64;
    in->hookable = in->traceable && in->sites_from == INSPECT_SITES_SYMTAB ? in->nsites : 0;
    in->callbacks = in->sites_from == INSPECT_SITES_SYMTAB;
    if (in->sites_from == INSPECT_SITES_PCLNTAB) {
        struct gopclntab *t = gopclntab_open(e);
        if (t) {
            size_t hookable = gopclntab_cgo_sites(e, t, &in->callbacks, NULL, NULL);
            in->hookable = in->traceable ? (hookable < in->nsites ? hookable : in->nsites) : 0;
            size_t len;
            const char *names = gopclntab_names(t, &len);
            for (size_t off = 0; off < len && !in->exports; off += strnlen(names + off, len - off) + 1)
                in->exports = strncmp(names + off, "_cgoexp_", 8) == 0;
            gopclntab_free(t);
        }
    }
    warn_go(in);
    warn_linking(in);
    warn_symbols(in);
    return 0;
}

int inspect_read(const char *prog, struct inspect *in, char *err, size_t errlen)
{
    memset(in, 0, sizeof *in);
    struct preflight pf;
    preflight_check(prog, &pf);
    if (!pf.found) {
        snprintf(err, errlen, "%s: no such file%s", prog, strchr(prog, '/') ? "" : " (looked in $PATH)");
        return -1;
    }
    snprintf(in->path, sizeof in->path, "%s", pf.path);
    in->is_static = pf.is_static;
    in->is_setid = pf.is_setid;
    int fd = open(in->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", in->path, strerror(errno));
        return -1;
    }
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    int rc = -1;
    if (!e || elf_kind(e) != ELF_K_ELF || !pf.is_elf) {
        snprintf(err, errlen, "%s is not an ELF executable: cgoscope reads Linux executables only", in->path);
    } else {
        struct gobuild b;
        if (gobuild_read(in->path, &b) == 0)
            snprintf(in->go_version, sizeof in->go_version, "%s", b.go_version);
        gobuild_free(&b);
        rc = read_elf(e, in, err, errlen);
    }
    if (e)
        elf_end(e);
    close(fd);
    if (rc != 0)
        inspect_free(in);
    return rc;
}

void inspect_free(struct inspect *in)
{
    for (size_t i = 0; i < in->npackages; i++) {
        for (size_t j = 0; j < in->packages[i].nfunctions; j++)
            free(in->packages[i].functions[j]);
        free(in->packages[i].functions);
        free(in->packages[i].name);
    }
    free(in->packages);
    for (size_t i = 0; i < in->nwarnings; i++) {
        free(in->warnings[i].what);
        free(in->warnings[i].fix);
    }
    free(in->warnings);
    in->packages = NULL;
    in->warnings = NULL;
    in->npackages = in->nwarnings = 0;
}
