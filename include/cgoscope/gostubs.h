/*
 * The cgo call sites of a Go executable without its symbol table (docs/cgo-facts.md §10), read
 * the same way by the shim (from its own memory) and the analyzer (from the file): Go's function
 * table `.gopclntab`, which stripping keeps, names each Go stub `<pkg>._Cfunc_f` with its
 * address range, and the stub loads the wrapper-pointer variable `<pkg>._cgo_<hash>_Cfunc_f`
 * with one RIP-relative `mov disp32(%rip),%rax` right before it calls runtime.cgocall.
 *
 * Static inline functions over plain bytes: no allocation, no libc but memcpy and strncmp, so
 * that the shim can run them in its constructor and the analyzer on a file it read. Nothing here
 * knows where the bytes came from; callers check what a decoded address holds.
 */
#ifndef CGOSCOPE_GOSTUBS_H
#define CGOSCOPE_GOSTUBS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cgoscope/record.h"

/* pcHeader (runtime/symtab.go, Go 1.18 to 1.26): magic, two zero bytes, minLC, ptrSize, then
 * nfunc, nfiles, textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset. */
#define CGS_PCLN_HEADER 72

struct cgs_pcln {
    uint64_t nfunc;
    const uint8_t *names; /* funcnametab */
    size_t nnames;
    const uint8_t *ftab; /* functab (nfunc + 1 pairs of entry offset, _func offset), then the _funcs */
    size_t nftab;
};

static inline uint32_t cgs_pcln_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t cgs_pcln_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A header of Go 1.18-1.19 (0xfffffff0) or 1.20 and later (0xfffffff1), 8-byte pointers. */
static inline int cgs_pcln_header_ok(const uint8_t *h)
{
    uint32_t magic = cgs_pcln_u32(h);
    return (magic == 0xfffffff0u || magic == 0xfffffff1u) && !h[4] && !h[5] && (h[6] == 1 || h[6] == 2 || h[6] == 4) &&
           h[7] == 8;
}

/* The table of n bytes at tab; 0 when it is one this code reads. */
static inline int cgs_pcln_init(struct cgs_pcln *p, const uint8_t *tab, size_t n)
{
    if (n < CGS_PCLN_HEADER || !cgs_pcln_header_ok(tab))
        return -1;
    uint64_t names = cgs_pcln_u64(tab + 32), cu = cgs_pcln_u64(tab + 40), ftab = cgs_pcln_u64(tab + 64);
    p->nfunc = cgs_pcln_u64(tab + 8);
    if (names >= n || cu > n || cu <= names || ftab >= n || p->nfunc >= (n - ftab) / 8)
        return -1;
    p->names = tab + names;
    p->nnames = (size_t)(cu - names);
    p->ftab = tab + ftab;
    p->nftab = (size_t)(n - ftab);
    return 0;
}

/* Function i (0 <= i < nfunc): its name (NULL when damaged) and its code as offsets [*lo, *hi)
 * from the start of Go text (runtime.text). */
static inline const char *cgs_pcln_func(const struct cgs_pcln *p, uint64_t i, uint32_t *lo, uint32_t *hi)
{
    if (i >= p->nfunc)
        return NULL;
    *lo = cgs_pcln_u32(p->ftab + i * 8);
    *hi = cgs_pcln_u32(p->ftab + (i + 1) * 8);
    uint32_t funcoff = cgs_pcln_u32(p->ftab + i * 8 + 4);
    if (*hi <= *lo || funcoff >= p->nftab || p->nftab - funcoff < 8)
        return NULL;
    uint32_t name = cgs_pcln_u32(p->ftab + funcoff + 4);
    if (name >= p->nnames || !memchr(p->names + name, 0, p->nnames - name))
        return NULL;
    return (const char *)p->names + name;
}

/* Index of the function called name, or -1 (a linear search). */
static inline int64_t cgs_pcln_find(const struct cgs_pcln *p, const char *name, uint32_t *lo, uint32_t *hi)
{
    for (uint64_t i = 0; i < p->nfunc; i++) {
        const char *n = cgs_pcln_func(p, i, lo, hi);
        if (n && strcmp(n, name) == 0)
            return (int64_t)i;
    }
    return -1;
}

/* A Go stub that calls a cgo wrapper: "<pkg>._Cfunc_f", "<pkg>._C2func_f", "<pkg>._Cmacro_f",
 * or "<pkg>._cgo_cmalloc" (C.CString, C.CBytes and C.malloc: the site _Cmalloc). Returns the
 * site's kind (enum cgs_site_kind) with the C function in *cname (not NUL-terminated when it
 * is "_Cmalloc": use *cname_len) and the length of the package path in *pkg_len; 0 for any
 * other name, and for the Go-side helpers cgo writes as _Cfunc_ stubs but which call no
 * wrapper of their own (C.GoString, C.CString, ...). */
static inline int cgs_stub_site(const char *name, size_t *pkg_len, const char **cname, size_t *cname_len)
{
    static const char *const go_side[] = {"GoString", "GoStringN", "GoBytes", "CString", "CBytes", "_CMalloc"};
    const char *dot = NULL;
    for (const char *s = name; *s; s++)
        if (*s == '.')
            dot = s;
    if (!dot || dot == name)
        return 0;
    const char *b = dot + 1;
    *pkg_len = (size_t)(dot - name);
    if (strcmp(b, "_cgo_cmalloc") == 0) {
        *cname = "_Cmalloc";
        *cname_len = 8;
        return CGS_SITE_CFUNC;
    }
    int kind = 0;
    size_t skip = 0;
    if (strncmp(b, "_Cfunc_", 7) == 0)
        kind = CGS_SITE_CFUNC, skip = 7;
    else if (strncmp(b, "_C2func_", 8) == 0)
        kind = CGS_SITE_C2FUNC, skip = 8;
    else if (strncmp(b, "_Cmacro_", 8) == 0)
        kind = CGS_SITE_CMACRO, skip = 8;
    else
        return 0;
    const char *f = b + skip;
    if (!*f)
        return 0;
    for (const char *s = f; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    for (size_t i = 0; i < sizeof go_side / sizeof *go_side; i++)
        if (strcmp(f, go_side[i]) == 0)
            return 0;
    *cname = f;
    *cname_len = strlen(f);
    return kind;
}

/* How far after the load the call to runtime.cgocall may come: Go 1.21 to 1.26 put 8 to 20
 * bytes between them (the frame argument into %rbx, %r14 reloaded from TLS). */
#define CGS_STUB_CALL_WINDOW 40

/* In the code[0..n) of a function at address pc, the first `mov disp32(%rip),%rax`
 * (48 8b 05 disp32) followed within CGS_STUB_CALL_WINDOW bytes by `call rel32` (e8) to the
 * address cgocall: the function pointer runtime.cgocall is handed in %rax. Returns the address
 * the mov loads from (the wrapper-pointer variable), or 0. The same pattern loads the setter's
 * pointer in runtime.SetCgoTraceback. */
static inline uint64_t cgs_stub_pointer(const uint8_t *code, size_t n, uint64_t pc, uint64_t cgocall)
{
    for (size_t k = 0; k + 7 <= n; k++) {
        if (code[k] != 0x48 || code[k + 1] != 0x8b || code[k + 2] != 0x05)
            continue;
        int32_t disp;
        memcpy(&disp, code + k + 3, 4);
        uint64_t var = pc + k + 7 + (uint64_t)(int64_t)disp;
        for (size_t j = k + 7; j + 5 <= n && j <= k + 7 + CGS_STUB_CALL_WINDOW; j++) {
            if (code[j] != 0xe8)
                continue;
            int32_t rel;
            memcpy(&rel, code + j + 1, 4);
            if (pc + j + 5 + (uint64_t)(int64_t)rel == cgocall)
                return var;
        }
    }
    return 0;
}

/* The thread-pointer offset of runtime.tlsg from a Go function's prologue, which loads g into
 * %r14: `mov %fs:disp32,%r14` (64 4c 8b 34 25 disp32) in an executable, or in a PIE
 * `mov $disp32,%r14; mov %fs:(%r14),%r14` (49 c7 c6 disp32 64 4d 8b 36). 1 when found. */
static inline int cgs_stub_tlsg(const uint8_t *code, size_t n, int64_t *off)
{
    static const uint8_t exe[5] = {0x64, 0x4c, 0x8b, 0x34, 0x25}, pie[3] = {0x49, 0xc7, 0xc6},
                         pie2[4] = {0x64, 0x4d, 0x8b, 0x36};
    int32_t d;
    if (n >= 9 && memcmp(code, exe, 5) == 0) {
        memcpy(&d, code + 5, 4);
    } else if (n >= 11 && memcmp(code, pie, 3) == 0 && memcmp(code + 7, pie2, 4) == 0) {
        memcpy(&d, code + 3, 4);
    } else {
        return 0;
    }
    *off = d;
    return 1;
}

/* The Go release in the build info section (.go.buildinfo, Go 1.18 and later: the version
 * string inline at offset 32, length-prefixed): its minor number, "go1.26.8" -> 26; 0 when
 * unknown. */
static inline int cgs_buildinfo_minor(const uint8_t *b, size_t n)
{
    if (n < 34 || memcmp(b, "\xff Go buildinf:", 14) != 0 || !(b[15] & 2))
        return 0;
    size_t len = b[32]; /* a varint; versions are short */
    const char *v = (const char *)b + 33;
    if ((len & 0x80) || len > n - 33 || len < 5)
        return 0;
    if (len > 6 && memcmp(v, "devel ", 6) == 0)
        v += 6, len -= 6;
    if (len < 5 || memcmp(v, "go1.", 4) != 0)
        return 0;
    int minor = 0;
    for (size_t i = 4; i < len && v[i] >= '0' && v[i] <= '9' && minor < 1000; i++)
        minor = minor * 10 + (v[i] - '0');
    return minor;
}

/* ---- callbacks without runtime.SetCgoTraceback ----------------------------------------------
 * An //export'ed Go function is entered from a C wrapper (named in .dynsym) that first calls
 * runtime/cgo's _cgo_wait_runtime_init_done and then crosscall2. That function reads
 * runtime/cgo's cgo_context_function and calls it when it is set: a RIP-relative load into a
 * register, and later an indirect call through that register (docs/cgo-facts.md §10). */

/* The target of the first `call rel32` (e8) in code[0..n) at pc; 0 when none. */
static inline uint64_t cgs_first_call(const uint8_t *code, size_t n, uint64_t pc)
{
    for (size_t j = 0; j + 5 <= n; j++)
        if (code[j] == 0xe8) {
            int32_t rel;
            memcpy(&rel, code + j + 1, 4);
            return pc + j + 5 + (uint64_t)(int64_t)rel;
        }
    return 0;
}

/* Whether code[0..n) at pc holds `call rel32` to target. */
static inline int cgs_calls(const uint8_t *code, size_t n, uint64_t pc, uint64_t target)
{
    for (size_t j = 0; j + 5 <= n; j++) {
        int32_t rel;
        memcpy(&rel, code + j + 1, 4);
        if (code[j] == 0xe8 && pc + j + 5 + (uint64_t)(int64_t)rel == target)
            return 1;
    }
    return 0;
}

/* The addresses of the variables a function code[0..n) at pc loads with `mov disp32(%rip),%r64`
 * (REX.W 8b, ModRM mod 00 rm 101) and then calls through (`call *%r64`, [41] ff d0+r), at most
 * max of them, each once. Returns how many. */
static inline size_t cgs_called_pointers(const uint8_t *code, size_t n, uint64_t pc, uint64_t *out, size_t max)
{
    size_t found = 0;
    for (size_t k = 0; k + 7 <= n; k++) {
        uint8_t rex = code[k];
        if ((rex != 0x48 && rex != 0x4c) || code[k + 1] != 0x8b || (code[k + 2] & 0xc7) != 0x05)
            continue;
        unsigned reg = (code[k + 2] >> 3) & 7;
        int32_t disp;
        memcpy(&disp, code + k + 3, 4);
        uint64_t var = pc + k + 7 + (uint64_t)(int64_t)disp;
        for (size_t j = k + 7; j + 2 <= n; j++) {
            int high = rex == 0x4c;
            if (code[j] != 0xff || code[j + 1] != (0xd0 | reg) || (j > k + 7 && code[j - 1] == 0x41) != high)
                continue;
            size_t i = 0;
            while (i < found && out[i] != var)
                i++;
            if (i == found && found < max)
                out[found++] = var;
            break;
        }
    }
    return found;
}

/* The start of the function after addr, from the binary-search table of .eh_frame_hdr (hdr, n
 * bytes, at address hdr_addr; the layout GNU ld writes: version 1, a 4-byte eh_frame pointer, a
 * udata4 count, then datarel sdata4 pairs sorted by start). 0 when unknown. */
static inline uint64_t cgs_eh_next_start(const uint8_t *hdr, size_t n, uint64_t hdr_addr, uint64_t addr)
{
    if (n < 12 || hdr[0] != 1 || ((hdr[1] & 0x0f) != 0x03 && (hdr[1] & 0x0f) != 0x0b) || hdr[2] != 0x03 ||
        hdr[3] != 0x3b)
        return 0;
    uint32_t count = cgs_pcln_u32(hdr + 8);
    if (count > (n - 12) / 8)
        return 0;
    size_t lo = 0, hi = count; /* the first start > addr */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int32_t loc;
        memcpy(&loc, hdr + 12 + 8 * mid, 4);
        if (hdr_addr + (uint64_t)(int64_t)loc <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == count)
        return 0;
    int32_t loc;
    memcpy(&loc, hdr + 12 + 8 * lo, 4);
    return hdr_addr + (uint64_t)(int64_t)loc;
}

#endif
