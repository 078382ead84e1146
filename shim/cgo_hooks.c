/*
 * Hooks every cgo wrapper pointer of the executable (docs/cgo-facts.md §1). For `C.f()` the Go
 * package holds a writable variable `<pkg>._cgo_<hash>_Cfunc_f` with the address of the C
 * wrapper `_cgo_<hash>_Cfunc_f`; the Go stub loads it on every call. After checking that the
 * variable really holds that wrapper's address, we store a stub of ours in it: every later
 * Go->C call enters cgs_cgo_enter first, on the thread's system stack.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "cgoscope/gostubs.h"
#include "shim.h"

#define WRAPPER_TABLE 16384

extern const char cgs_stubs[] __attribute__((visibility("hidden")));
/* The wrappers: void for _Cfunc_, int (errno) for _C2func_. Calling every one as returning int
 * is harmless on x86-64 and hands _C2func_'s errno back to runtime.asmcgocall unchanged. */
CGS_HIDDEN int (*cgs_site_real[CGS_NSTUBS])(void *);
#define site_real cgs_site_real

int cgs_cgo_enter(void *frame, uint32_t site);

CGS_HIDDEN int cgs_lazy_go_frames;

/*
 * Every hooked Go->C call comes here, on the thread's system stack, with the wrapper's
 * argument frame. The hot path: note where the Go frames start (they are walked only if an
 * allocation or a callback needs them), count the call, call the wrapper.
 */
/* The slow ways through the hook, kept out of its body so that the fast path saves no registers:
 * Go frames captured at once (when callbacks cannot be seen), the thread's first call of a site,
 * timed calls (`counted` 1: the call was counted and its countdown reached zero), and the call
 * after a timed one (`counted` 2: counted, the gap since the timed one is measured). The depth
 * was already raised by the caller. */
__attribute__((section("cgoscope_hook"), noinline)) static int enter_slow(void *frame, uint32_t site, uintptr_t *fp,
                                                                          int counted)
{
    struct cgs_thread *t = &cgs_tls;
    uint32_t d = t->depth - 1;
    if (!cgs_lazy_go_frames && d < CGS_MAX_CTX && t->ctx[d].ngo == CGS_GO_LAZY)
        cgs_capture_go_frames(t, &t->ctx[d], fp);
    struct cgs_site_stats *s = t->index ? t->index->site[site] : NULL;
    if (!s)
        s = cgs_site_stats_slow(t, site);
    int timed = 0;
    if (s && counted == 1) {
        timed = 1;
    } else if (s && !counted) {
        s->calls++;
        timed = --s->countdown == 0;
    }
    if (timed)
        return cgs_timed_call(t, s, site_real[site], frame, site, fp); /* it lowers the depth */
    if (s && t->gap_pending)
        cgs_note_gap(t);
    int rv = site_real[site](frame);
    cgs_tls.depth--;
    return cgs_call_done(&cgs_tls, rv);
}

__attribute__((section("cgoscope_hook"), noinline, used, visibility("hidden"))) int
cgs_cgo_enter(void *frame, uint32_t site)
{
    struct cgs_thread *t = &cgs_tls;
    uint32_t d = t->depth;
    uintptr_t *fp = __builtin_frame_address(0);
    t->depth = d + 1;
    if (CGS_LIKELY(d < CGS_MAX_CTX)) {
        struct cgs_cgo_ctx *c = &t->ctx[d];
        c->site = site;
        c->fp = fp;
        c->ngo = CGS_GO_LAZY;
        if (CGS_UNLIKELY(!cgs_lazy_go_frames))
            return enter_slow(frame, site, fp, 0);
    }
    struct cgs_site_stats *s = t->index ? t->index->site[site] : NULL;
    int counted = 0;
    if (CGS_UNLIKELY(t->lean_open)) {
        /* 0: the run (of another site) ended; 1: counted in it (the run's site, so s is set);
         * 3: counted and to be timed */
        int k = cgs_lean_enter(t, site);
        if (k == 3) {
            s->flags |= CGS_SF_SAMPLED;
            return cgs_timed_call(t, s, site_real[site], frame, site, fp);
        }
        counted = k;
    }
    if (!counted) {
        if (CGS_UNLIKELY(!s))
            return enter_slow(frame, site, fp, 0);
        s->calls++;
        if (CGS_UNLIKELY(--s->countdown == 0)) /* a timed call: straight to the clocks (a tail call) */
            return cgs_timed_call(t, s, site_real[site], frame, site, fp);
    }
    if (CGS_UNLIKELY(t->gap_pending))
        return enter_slow(frame, site, fp, 2); /* counted; measure the gap since the last timed call */
    int rv = site_real[site](frame);
    cgs_tls.depth--; /* the call in, balanced: no register kept across the call but the result */
    if (CGS_UNLIKELY(cgs_lean_wanted)) {
        /* Only a site called many times in a row may take a run (lean.c): where sites take turns
         * (C.CString, C.f, C.free), each call would end one run and start another. */
        struct cgs_thread *u = &cgs_tls;
        if (d < CGS_MAX_CTX && u->ctx[d].ngo != CGS_GO_LAZY) {
            cgs_lean_after(u, site, s, 0); /* it needed its context: never a run here */
        } else if (u->lean_last != site + 1) {
            u->lean_last = site + 1;
            u->lean_streak = 1;
        } else if (++u->lean_streak >= CGS_LEAN_STREAK) {
            cgs_lean_after(u, site, s, 1);
        }
    }
    return cgs_call_done(&cgs_tls, rv);
}

/* ---- C->Go callbacks (docs/cgo-facts.md §4) ----------------------------------------------------
 * Each exported Go function is entered from its C wrapper, which first asks runtime/cgo's
 * context function (cgo_context_function, NULL unless the program called
 * runtime.SetCgoTraceback) for a context and gives it back when Go returns. Ours counts and times
 * the callback, and before any Go code runs (which may move the goroutine's stack) captures the
 * Go frames of the cgo call in progress. A context function the program installs later is kept
 * and called from ours. */

struct cgo_context_arg {
    uintptr_t context;
};

static void (*user_context_fn)(struct cgo_context_arg *);
static char context_token; /* our context value when the program has no context function */
static void (*real_set_functions)(void *);
static int set_functions_layout; /* 1: {context}; 2: {traceback, context, symbolizer} */

static void context_fn(struct cgo_context_arg *arg)
{
    struct cgs_thread *t = &cgs_tls;
    if (arg->context == 0) {
        if (CGS_UNLIKELY(t->lean_open)) /* perhaps inside a store-free call: promote it first */
            cgs_lean_check(t, (uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0) + 16);
        uint32_t d = t->depth;
        if (d > 0 && d <= CGS_MAX_CTX && t->ctx[d - 1].ngo == CGS_GO_LAZY)
            cgs_capture_go_frames(t, &t->ctx[d - 1], t->ctx[d - 1].fp);
        /* ips: [this function, _cgo_wait_runtime_init_done, the export's C wrapper] */
        void *ips[3] = {0, 0, 0};
        int saved = t->guard++;
        int n = unw_backtrace(ips, 3);
        t->guard = saved;
        if (user_context_fn)
            user_context_fn(arg);
        else
            arg->context = (uintptr_t)&context_token;
        if (arg->context != 0 && cgs_ready) /* with 0 there is no "returning" call to pair with */
            cgs_callback_enter(t, n >= 3 ? (uint64_t)(uintptr_t)ips[2] : 0);
        return;
    }
    if (cgs_ready)
        cgs_callback_leave(t);
    if (user_context_fn && arg->context != (uintptr_t)&context_token)
        user_context_fn(arg);
}

/* runtime.SetCgoTraceback calls this (through the runtime's pointer to
 * x_cgo_set_traceback_functions, or x_cgo_set_context_function in Go 1.21-1.23). */
static void set_functions_hook(void *arg)
{
    cgs_lean_exclude(&cgs_tls); /* a runtime.cgocall of no hooked wrapper */
    if (set_functions_layout == 1) {
        /* Go 1.21-1.23: x_cgo_set_context_function(void (*context)(struct context_arg *)):
         * the argument is the function itself. */
        void (*theirs)(struct cgo_context_arg *) = (void (*)(struct cgo_context_arg *))arg;
        user_context_fn = theirs == context_fn ? NULL : theirs;
        real_set_functions((void *)context_fn);
        return;
    }
    void (**slot)(struct cgo_context_arg *) =
        set_functions_layout == 2 ? &((void (**)(struct cgo_context_arg *))arg)[1] : (void (**)(struct cgo_context_arg *))arg;
    void (*theirs)(struct cgo_context_arg *) = *slot;
    user_context_fn = theirs == context_fn ? NULL : theirs;
    *slot = context_fn;
    real_set_functions(arg);
    *slot = theirs;
}

/* Installs context_fn into runtime/cgo's static variable, and hooks the setter. */
static void hook_callbacks(uintptr_t ctx_var, uintptr_t setter_var, uintptr_t setter_fn, int layout)
{
    if (!ctx_var)
        return;
    _Atomic(uintptr_t) *v = (_Atomic(uintptr_t) *)ctx_var;
    uintptr_t cur = atomic_load(v);
    if (cur)
        user_context_fn = (void (*)(struct cgo_context_arg *))cur;
    if (setter_var && setter_fn && atomic_load((_Atomic(uintptr_t) *)setter_var) == setter_fn) {
        real_set_functions = (void (*)(void *))setter_fn;
        set_functions_layout = layout;
        atomic_store((_Atomic(uintptr_t) *)setter_var, (uintptr_t)set_functions_hook);
    }
    atomic_store(v, (uintptr_t)context_fn);
    cgs_lazy_go_frames = 1;
}

/* The same without the name of runtime/cgo's variable (a stripped executable): the real setter,
 * called before any Go code has run, installs context_fn, then its pointer is hooked as above.
 * Nothing was installed before, so there is no context function of the program's to keep. */
static void hook_callbacks_by_setter(uintptr_t setter_var, uintptr_t setter_fn, int layout)
{
    _Atomic(uintptr_t) *var = (_Atomic(uintptr_t) *)setter_var;
    if (atomic_load(var) != setter_fn)
        return;
    real_set_functions = (void (*)(void *))setter_fn;
    set_functions_layout = layout;
    if (layout == 1) {
        real_set_functions((void *)context_fn);
    } else {
        void (*fns[3])(struct cgo_context_arg *) = {NULL, context_fn, NULL}; /* traceback, context, symbolizer */
        real_set_functions(fns);
    }
    atomic_store(var, (uintptr_t)set_functions_hook);
    cgs_lazy_go_frames = 1;
}

struct wrapper {
    const char *name;
    uint64_t value;
};

/* Calls runtime.cgocall makes through no wrapper of the program: syscall's cgo_libc_* (Setuid,
 * Setgid, ...). They raise the M's count of cgo calls like any other, so a store-free run
 * (lean.c) must not count them as its site's: their pointers go through these first. */
#define EXCL_MAX 16
static int (*excl_real[EXCL_MAX])(void *);
#define EXCL_FN(i) \
    static int excl_##i(void *a) \
    { \
        cgs_lean_exclude(&cgs_tls); \
        return excl_real[i](a); \
    }
EXCL_FN(0)
EXCL_FN(1)
EXCL_FN(2)
EXCL_FN(3)
EXCL_FN(4)
EXCL_FN(5)
EXCL_FN(6)
EXCL_FN(7)
EXCL_FN(8)
EXCL_FN(9)
EXCL_FN(10)
EXCL_FN(11)
EXCL_FN(12)
EXCL_FN(13)
EXCL_FN(14)
EXCL_FN(15)
static int (*const excl_fns[EXCL_MAX])(void *) = {excl_0, excl_1, excl_2,  excl_3,  excl_4,  excl_5,  excl_6,  excl_7,
                                                   excl_8, excl_9, excl_10, excl_11, excl_12, excl_13, excl_14, excl_15};
static int nexcl;

/* syscall.cgo_libc_X pointing at _cgo_libc_X: sent through excl_fns. */
static void hook_excluded(const Elf64_Sym *syms, size_t nsyms, const char *strs, size_t strsize, uintptr_t bias)
{
    for (size_t i = 0; i < nsyms && nexcl < EXCL_MAX; i++) {
        if (ELF64_ST_TYPE(syms[i].st_info) != STT_OBJECT || syms[i].st_size != sizeof(void *) || syms[i].st_name >= strsize)
            continue;
        const char *name = strs + syms[i].st_name;
        if (strncmp(name, "syscall.cgo_libc_", 17) != 0)
            continue;
        uintptr_t fn = 0;
        for (size_t k = 0; k < nsyms && !fn; k++)
            if (syms[k].st_name < strsize && ELF64_ST_TYPE(syms[k].st_info) == STT_FUNC &&
                strncmp(strs + syms[k].st_name, "_cgo_libc_", 10) == 0 && strcmp(strs + syms[k].st_name + 10, name + 17) == 0)
                fn = bias + syms[k].st_value;
        _Atomic(uintptr_t) *var = (_Atomic(uintptr_t) *)(bias + syms[i].st_value);
        if (!fn || atomic_load(var) != fn)
            continue;
        excl_real[nexcl] = (int (*)(void *))fn;
        atomic_store(var, (uintptr_t)excl_fns[nexcl]);
        nexcl++;
    }
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int is_hex12(const char *s)
{
    for (int i = 0; i < 12; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

/* "_cgo_<12 hex>_Cfunc_x" and friends: returns the site kind, or 0. */
static int wrapper_kind(const char *s)
{
    if (strncmp(s, "_cgo_", 5) != 0 || !is_hex12(s + 5))
        return 0;
    const char *k = s + 17;
    if (strncmp(k, "_Cfunc_", 7) == 0)
        return CGS_SITE_CFUNC;
    if (strncmp(k, "_C2func_", 8) == 0)
        return CGS_SITE_C2FUNC;
    if (strncmp(k, "_Cmacro_", 8) == 0)
        return CGS_SITE_CMACRO;
    return 0;
}

static void send_site(uint32_t site, int kind, uint64_t wrapper, const char *symbol)
{
    struct cgs_thread *t = &cgs_tls;
    size_t len = strlen(symbol) + 1;
    if (len > 4096)
        return;
    uint32_t size = (uint32_t)CGS_ALIGN8(sizeof(struct cgs_rec_site) + len);
    struct cgs_rec_site *r = cgs_reserve(t, size);
    if (!r)
        return;
    memset(r, 0, size);
    r->h.type = CGS_REC_SITE;
    r->h.aux = (uint16_t)kind;
    r->h.size = size;
    r->site = site;
    r->wrapper = wrapper;
    memcpy(r->symbol, symbol, len);
    cgs_commit(t, size);
}

/* The thread-pointer offset of runtime.tlsg, where Go keeps the running g (docs/cgo-facts.md
 * §3): the executable's TLS block ends at the thread pointer (x86-64, TLS variant II). */
static void find_tlsg(const uint8_t *img, size_t fsize, const Elf64_Sym *tlsg)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > fsize ||
        (fsize - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        return;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_TLS)
            continue;
        uint64_t align = ph[i].p_align ? ph[i].p_align : 1;
        if ((align & (align - 1)) || (ph[i].p_vaddr & (align - 1)) || tlsg->st_value + 8 > ph[i].p_memsz)
            return;
        uint64_t block = (ph[i].p_memsz + align - 1) & ~(align - 1);
        cgs_lean_set_tlsg((intptr_t)tlsg->st_value - (intptr_t)block);
        return;
    }
}

/* ---- a stripped executable (docs/cgo-facts.md §10) ----------------------------------------------
 * No .symtab, but .gopclntab names every Go stub `<pkg>._Cfunc_f`, and the stub loads its
 * wrapper pointer with one `mov disp32(%rip),%rax` right before calling runtime.cgocall
 * (include/cgoscope/gostubs.h). The pointer is hooked only when it lies in the executable's
 * writable data and holds the address of C code of the executable (not Go code, not one of our
 * stubs): what a wrapper pointer holds by docs/cgo-facts.md §1. */

/* [a, a + 8) inside an initialized writable section (.data, where cgo's pointers are). */
static int in_writable_data(const uint8_t *img, size_t fsize, uintptr_t bias, uintptr_t a)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    if (a & 7)
        return 0;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_PROGBITS && (sh[i].sh_flags & (SHF_WRITE | SHF_ALLOC)) == (SHF_WRITE | SHF_ALLOC) &&
            a >= bias + sh[i].sh_addr && a - (bias + sh[i].sh_addr) + 8 <= sh[i].sh_size)
            return 1;
    (void)fsize;
    return 0;
}

static int is_c_code(const struct cgs_gotab *g, uintptr_t a)
{
    return a >= g->c_lo && a < g->c_hi && (a < g->text || a >= g->etext);
}

/* The pointer that the Go function [lo, hi) of the table hands to runtime.cgocall, or 0. */
static uintptr_t stub_pointer(const uint8_t *img, size_t fsize, uintptr_t bias, const struct cgs_gotab *g,
                              uint32_t lo, uint32_t hi, uintptr_t cgocall)
{
    if (g->text + hi > g->etext)
        return 0;
    uintptr_t var = (uintptr_t)cgs_stub_pointer((const uint8_t *)(g->text + lo), hi - lo, g->text + lo, cgocall);
    return var && in_writable_data(img, fsize, bias, var) ? var : 0;
}

/* [a, a + 8) in the writable data or .bss of the executable, 8-aligned. */
static int in_writable(const uint8_t *img, uintptr_t bias, uintptr_t a)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if ((sh[i].sh_type == SHT_PROGBITS || sh[i].sh_type == SHT_NOBITS) && !(a & 7) &&
            (sh[i].sh_flags & (SHF_WRITE | SHF_ALLOC)) == (SHF_WRITE | SHF_ALLOC) && a >= bias + sh[i].sh_addr &&
            a - (bias + sh[i].sh_addr) + 8 <= sh[i].sh_size)
            return 1;
    return 0;
}

/* runtime/cgo's cgo_context_function when runtime.SetCgoTraceback is not linked in: every
 * export's C wrapper (in .dynsym, calling crosscall2) first calls _cgo_wait_runtime_init_done,
 * which loads the variable and calls through it (gostubs.h). It must be the one such variable,
 * in writable memory, and still 0: no Go code has run. */
static uintptr_t find_context_var(const uint8_t *img, size_t fsize, uintptr_t bias, const struct cgs_gotab *g,
                                  uintptr_t crosscall2)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff), *dyn = NULL;
    const Elf64_Shdr *hdr = cgs_elf_section(img, fsize, ".eh_frame_hdr");
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_DYNSYM)
            dyn = &sh[i];
    if (!dyn || !hdr || dyn->sh_link >= eh->e_shnum || dyn->sh_offset > fsize || dyn->sh_size > fsize - dyn->sh_offset)
        return 0;
    const Elf64_Shdr *str = &sh[dyn->sh_link];
    if (str->sh_offset > fsize || str->sh_size > fsize - str->sh_offset || !str->sh_size)
        return 0;
    const Elf64_Sym *syms = (const Elf64_Sym *)(img + dyn->sh_offset);
    uintptr_t wait_fn = 0;
    for (size_t i = 0; i < dyn->sh_size / sizeof *syms; i++) {
        uintptr_t a = bias + syms[i].st_value;
        size_t len = syms[i].st_size && syms[i].st_size < 512 ? syms[i].st_size : 512;
        if (ELF64_ST_TYPE(syms[i].st_info) != STT_FUNC || syms[i].st_shndx == SHN_UNDEF || !is_c_code(g, a) ||
            g->c_hi - a < len || !cgs_calls((const uint8_t *)a, len, a, crosscall2))
            continue;
        uintptr_t w = (uintptr_t)cgs_first_call((const uint8_t *)a, len, a);
        if (!is_c_code(g, w) || (wait_fn && wait_fn != w))
            return 0; /* exports that disagree: not what we know */
        wait_fn = w;
    }
    uintptr_t end = wait_fn ? (uintptr_t)cgs_eh_next_start((const uint8_t *)(bias + hdr->sh_addr), hdr->sh_size,
                                                           bias + hdr->sh_addr, wait_fn)
                            : 0;
    if (!end || end <= wait_fn || end - wait_fn > 1024 || end > g->c_hi)
        return 0;
    uint64_t vars[4];
    size_t n = cgs_called_pointers((const uint8_t *)wait_fn, end - wait_fn, wait_fn, vars, 4);
    uintptr_t ctx = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_writable(img, bias, (uintptr_t)vars[i]) || atomic_load((_Atomic(uintptr_t) *)(uintptr_t)vars[i]) != 0)
            continue;
        if (ctx)
            return 0;
        ctx = (uintptr_t)vars[i];
    }
    return ctx;
}

static int hook_stripped(const uint8_t *img, size_t fsize, uintptr_t bias)
{
    struct cgs_gotab g;
    if (cgs_go_text_from_pclntab(img, fsize, bias, &g) != 0)
        return 0;
    cgs_unhooked_go_frames = 1; /* an allocation outside any hooked call: Go frames from the C unwind */
    struct cgs_pcln p;
    uint32_t lo, hi;
    uintptr_t cgocall = 0, cb_lo = 0, cb_hi = 0;
    int pcln = cgs_pcln_init(&p, g.tab, g.tab_size) == 0;
    if (pcln && cgs_pcln_find(&p, "runtime.cgocall", &lo, &hi) >= 0)
        cgocall = g.text + lo;
    if (pcln && cgs_pcln_find(&p, "runtime.cgocallback", &lo, &hi) >= 0) {
        cb_lo = g.text + lo;
        cb_hi = g.text + hi;
    }
    cgs_set_go_text(g.text, g.etext, cb_lo, cb_hi);
    if (!cgocall)
        return 0;

    /* Callbacks: runtime.SetCgoTraceback hands the setter's pointer to runtime.cgocall the same
     * way; what the setter takes depends on the Go release (docs/cgo-facts.md §4). */
    if (cgs_pcln_find(&p, "runtime.SetCgoTraceback", &lo, &hi) >= 0) {
        uintptr_t var = stub_pointer(img, fsize, bias, &g, lo, hi, cgocall);
        uintptr_t fn = var ? atomic_load((_Atomic(uintptr_t) *)var) : 0;
        const Elf64_Shdr *bi = cgs_elf_section(img, fsize, ".go.buildinfo");
        int minor = bi && bi->sh_type == SHT_PROGBITS && bi->sh_offset <= fsize && bi->sh_size <= fsize - bi->sh_offset
                        ? cgs_buildinfo_minor(img + bi->sh_offset, bi->sh_size)
                        : 0;
        if (var && is_c_code(&g, fn) && minor >= 21)
            hook_callbacks_by_setter(var, fn, minor >= 26 ? 2 : 1);
    }
    if (!cgs_lazy_go_frames && cgs_pcln_find(&p, "crosscall2", &lo, &hi) >= 0) {
        uintptr_t ctx = find_context_var(img, fsize, bias, &g, g.text + lo);
        if (ctx)
            hook_callbacks(ctx, 0, 0, 0); /* nothing can install another: no SetCgoTraceback */
    }

    int hooked = 0;
    for (uint64_t i = 0; i < p.nfunc && hooked < CGS_NSTUBS; i++) {
        const char *name = cgs_pcln_func(&p, i, &lo, &hi), *cname;
        size_t pkg_len, cname_len;
        int kind = name ? cgs_stub_site(name, &pkg_len, &cname, &cname_len) : 0;
        uintptr_t var = kind ? stub_pointer(img, fsize, bias, &g, lo, hi, cgocall) : 0;
        if (!var)
            continue;
        _Atomic(uintptr_t) *v = (_Atomic(uintptr_t) *)var;
        uintptr_t wrapper = atomic_load(v);
        if (!is_c_code(&g, wrapper))
            continue; /* not what docs/cgo-facts.md §1 promises (or hooked already): leave it alone */
        uint32_t site = (uint32_t)hooked++;
        site_real[site] = (int (*)(void *))wrapper;
        send_site(site, kind, wrapper, name); /* the stub's name: "<pkg>._Cfunc_f" */
        atomic_store(v, (uintptr_t)(cgs_stubs + 16 * site));
    }
    return hooked;
}

/* Long: the executable is mapped once and its symbol table read in two passes that share it. */
int cgs_hook_cgo_sites(uintptr_t bias)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        close(fd);
        return -1;
    }
    size_t fsize = (size_t)st.st_size;
    const uint8_t *img = mmap(NULL, fsize, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (img == MAP_FAILED)
        return -1;

    int hooked = 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    struct wrapper *wt = NULL;
    size_t wt_bytes = sizeof(struct wrapper) * WRAPPER_TABLE;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > fsize ||
        (fsize - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum)
        goto out;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    const Elf64_Shdr *symtab = NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB)
            symtab = &sh[i];
    if (!symtab) {
        /* Stripped: no names to find the wrapper pointers by; Go's own table has the stubs. */
        hooked = hook_stripped(img, fsize, bias);
        goto out;
    }
    if (symtab->sh_link >= eh->e_shnum)
        goto out;
    const Elf64_Shdr *strsh = &sh[symtab->sh_link];
    if (symtab->sh_offset > fsize || symtab->sh_size > fsize - symtab->sh_offset ||
        strsh->sh_offset > fsize || strsh->sh_size > fsize - strsh->sh_offset || strsh->sh_size == 0)
        goto out;
    const Elf64_Sym *syms = (const Elf64_Sym *)(img + symtab->sh_offset);
    size_t nsyms = symtab->sh_size / sizeof(Elf64_Sym);
    const char *strs = (const char *)(img + strsh->sh_offset);
    if (strs[strsh->sh_size - 1] != 0)
        goto out;

    wt = mmap(NULL, wt_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (wt == MAP_FAILED) {
        wt = NULL;
        goto out;
    }

    /* Pass 1: Go text bounds, runtime.cgocallback, and the C wrappers by name. */
    uintptr_t text = 0, etext = 0, cb = 0, cb_size = 0;
    const Elf64_Sym *tlsg = NULL;
    uintptr_t ctx_var = 0, set_var = 0, set_fn = 0;
    int set_layout = 0;
    for (size_t i = 0; i < nsyms; i++) {
        if (syms[i].st_name >= strsh->sh_size)
            continue;
        const char *name = strs + syms[i].st_name;
        if (strcmp(name, "runtime.text") == 0)
            text = syms[i].st_value;
        else if (strcmp(name, "runtime.etext") == 0)
            etext = syms[i].st_value;
        else if (strcmp(name, "runtime.cgocall") == 0 && ELF64_ST_TYPE(syms[i].st_info) == STT_FUNC && syms[i].st_size) {
            cgs_cgocall_lo = bias + syms[i].st_value;
            cgs_cgocall_hi = cgs_cgocall_lo + syms[i].st_size;
        } else if (strcmp(name, "runtime.tlsg") == 0 && ELF64_ST_TYPE(syms[i].st_info) == STT_TLS)
            tlsg = &syms[i];
        else if (strcmp(name, "runtime.cgocallback") == 0 || strcmp(name, "runtime.cgocallback.abi0") == 0) {
            cb = syms[i].st_value;
            cb_size = syms[i].st_size;
        } else if (strcmp(name, "cgo_context_function") == 0 && ELF64_ST_TYPE(syms[i].st_info) == STT_OBJECT) {
            ctx_var = bias + syms[i].st_value;
        } else if (strcmp(name, "_cgo_set_traceback_functions") == 0 && !set_var) {
            set_var = bias + syms[i].st_value;
            set_layout = 2;
        } else if (strcmp(name, "_cgo_set_context_function") == 0 && !set_var) {
            set_var = bias + syms[i].st_value;
            set_layout = 1;
        } else if (strcmp(name, "x_cgo_set_traceback_functions") == 0 || strcmp(name, "x_cgo_set_context_function") == 0) {
            set_fn = bias + syms[i].st_value;
        } else if (ELF64_ST_TYPE(syms[i].st_info) == STT_FUNC && wrapper_kind(name)) {
            uint64_t h = name_hash(name);
            for (size_t k = 0; k < WRAPPER_TABLE; k++) {
                struct wrapper *w = &wt[(h + k) % WRAPPER_TABLE];
                if (!w->name) {
                    w->name = name;
                    w->value = syms[i].st_value;
                    break;
                }
            }
        }
    }
    if (tlsg)
        find_tlsg(img, fsize, tlsg);
    if (text && etext > text) {
        cgs_set_go_text(bias + text, bias + etext, cb ? bias + cb : 0, cb ? bias + cb + (cb_size ? cb_size : 1) : 0);
        hook_callbacks(ctx_var, set_var, set_fn, set_layout);
    }

    hook_excluded(syms, nsyms, strs, strsh->sh_size, bias);

    /* Pass 2: the Go variables that point at those wrappers. */
    for (size_t i = 0; i < nsyms && hooked < CGS_NSTUBS; i++) {
        if (ELF64_ST_TYPE(syms[i].st_info) != STT_OBJECT || syms[i].st_size != sizeof(void *) ||
            syms[i].st_name >= strsh->sh_size)
            continue;
        const char *name = strs + syms[i].st_name;
        const char *w = strstr(name, "._cgo_");
        if (!w)
            continue;
        const char *next;
        while ((next = strstr(w + 1, "._cgo_")) != NULL)
            w = next;
        w++;
        int kind = wrapper_kind(w);
        if (!kind)
            continue;
        uint64_t h = name_hash(w);
        const struct wrapper *found = NULL;
        for (size_t k = 0; k < WRAPPER_TABLE; k++) {
            const struct wrapper *c = &wt[(h + k) % WRAPPER_TABLE];
            if (!c->name)
                break;
            if (strcmp(c->name, w) == 0) {
                found = c;
                break;
            }
        }
        if (!found)
            continue;
        _Atomic(uintptr_t) *var = (_Atomic(uintptr_t) *)(bias + syms[i].st_value);
        uintptr_t wrapper = bias + found->value;
        if (atomic_load(var) != wrapper)
            continue; /* not what docs/cgo-facts.md §1 promises: leave it alone */
        uint32_t site = (uint32_t)hooked++;
        site_real[site] = (int (*)(void *))wrapper;
        send_site(site, kind, wrapper, name);
        atomic_store(var, (uintptr_t)(cgs_stubs + 16 * site));
    }
out:
    if (wt)
        munmap(wt, wt_bytes);
    munmap((void *)img, fsize);
    return hooked;
}
