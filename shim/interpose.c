/*
 * The allocation functions the program sees. Each forwards to the next definition (glibc's,
 * or jemalloc's when the program brings it) and records what became live or stopped being so.
 * errno is the real function's: recording saves and restores it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

__thread struct cgs_thread cgs_tls __attribute__((tls_model("initial-exec"))) = {.chunk = -1};

CGS_HIDDEN void *(*cgs_real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

/* ---- Bootstrap arena: serves dlsym's own allocations before the real functions are known. */

static _Alignas(16) unsigned char arena[64 * 1024];
static _Atomic size_t arena_used;

static void *arena_alloc(size_t n)
{
    size_t need = (n + 16 + 15) & ~(size_t)15;
    size_t at = atomic_fetch_add(&arena_used, need);
    if (at + need > sizeof arena)
        return NULL;
    *(size_t *)(arena + at) = n;
    return arena + at + 16;
}

static int in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

static size_t arena_size(const void *p) { return *(const size_t *)((const unsigned char *)p - 16); }

void cgs_resolve_real(void)
{
    struct cgs_thread *t = &cgs_tls;
    t->resolving++;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_valloc = dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    void *m = dlsym(RTLD_NEXT, "malloc");
    atomic_store((_Atomic(void *) *)&cgs_real_malloc, m); /* last: it is the "resolved" flag */
    t->resolving--;
}

/* ---- Recording ---------------------------------------------------------------------------- */

/* Where the interposed function was called from: its return address, and the caller's stack
 * pointer after the call returns (the interposer's canonical frame address). The shim is built
 * with frame pointers, so both are two loads. */
#define CALLER()                                                                                   \
    ((struct cgs_caller){(uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0) + 16})

static void record_alloc(struct cgs_thread *t, int fn, void *p, size_t size, struct cgs_caller c)
{
    int saved = errno;
    cgs_scrub_note(t, (uintptr_t)__builtin_frame_address(0), CGS_SCRUB_SHALLOW);
    uint64_t stack = cgs_stack_capture(t, c.ra, c.cfa);
    struct cgs_rec_alloc *r = cgs_reserve(t, sizeof *r);
    if (r) {
        r->h.type = CGS_REC_ALLOC;
        r->h.aux = (uint16_t)fn;
        r->h.size = sizeof *r;
        r->ts = cgs_stamp_alloc();
        r->addr = (uintptr_t)p;
        r->size = size;
        r->stack = stack;
        cgs_commit(t, sizeof *r);
    }
    errno = saved;
}

/* The stamp is read after the room is reserved: a reservation may wait for the analyzer (a new
 * chunk under backpressure), and a record must not carry a stamp older than the chunk it lands in
 * by that wait (the analyzer orders threads by stamps, chunk by chunk: reorder.h). */
static void record_free(struct cgs_thread *t, void *p, struct cgs_caller c)
{
    cgs_scrub_note(t, (uintptr_t)__builtin_frame_address(0), CGS_SCRUB_SHALLOW);
#ifdef CGS_BENCH_NO_FREE_STACK
    /* Only in libcgoscope-nofreestack.so, which bench/run.sh measures against: the free without
     * its stack (format 1's record, read as stack 0), so that the cost of the stack is measured
     * within one run (bench/README.md, "The free's stack"). */
    (void)c;
    struct cgs_rec_free *r1 = cgs_reserve(t, CGS_REC_FREE_V1_SIZE);
    if (r1) {
        r1->h.type = CGS_REC_FREE;
        r1->h.aux = 0;
        r1->h.size = CGS_REC_FREE_V1_SIZE;
        r1->ts = cgs_stamp_free();
        r1->addr = (uintptr_t)p;
        cgs_commit(t, CGS_REC_FREE_V1_SIZE);
    }
    return;
#endif
    /* The free's stack, so that a double or invalid free names its Go line (docs/lifetime.md).
     * The same capture as an allocation's: a free repeated from one place under the same Go
     * frames costs a check of the unwind cache, whose entry keeps the id it made last. */
    uint64_t stack = cgs_stack_capture(t, c.ra, c.cfa);
    if (stack && stack == t->last_free_stack) {
        /* The same stack as this thread's last free: the short record says so. */
        struct cgs_rec_free *r = cgs_reserve(t, CGS_REC_FREE_V1_SIZE);
        if (r) {
            r->h.type = CGS_REC_FREE;
            r->h.aux = CGS_FREE_SAME_STACK;
            r->h.size = CGS_REC_FREE_V1_SIZE;
            r->ts = cgs_stamp_free();
            r->addr = (uintptr_t)p;
            cgs_commit(t, CGS_REC_FREE_V1_SIZE);
        }
        return;
    }
    struct cgs_rec_free *r = cgs_reserve(t, sizeof *r);
    if (r) {
        r->h.type = CGS_REC_FREE;
        r->h.aux = 0;
        r->h.size = sizeof *r;
        r->ts = cgs_stamp_free();
        r->addr = (uintptr_t)p;
        r->stack = stack;
        cgs_commit(t, sizeof *r);
        t->last_free_stack = stack;
    }
}

/* realloc of a block. The REALLOC_BEGIN record (the old address, the free's stamp, the stack) is
 * committed before the real realloc, which aborts on an address that is not a live block: the
 * record survives the abort, and the error is reported with the realloc's stack
 * (docs/lifetime.md). Room for the record that ends it is reserved with it, in the same chunk, so
 * that the REALLOC record (ordered by that stamp) lands where it did when it was the only one. */
static void *realloc_recorded(struct cgs_thread *t, int fn, void *old, size_t n, struct cgs_caller c)
{
    int saved = errno;
    uint64_t stack = cgs_stack_capture(t, c.ra, c.cfa);
    struct cgs_rec_realloc_begin *b = cgs_reserve(t, sizeof *b + sizeof(struct cgs_rec_realloc));
    uint64_t ts_free = 0;
    if (b) {
        b->h.type = CGS_REC_REALLOC_BEGIN;
        b->h.aux = (uint16_t)fn;
        b->h.size = sizeof *b;
        b->ts_free = ts_free = cgs_stamp_free();
        b->old_addr = (uintptr_t)old;
        b->stack = stack;
        cgs_commit(t, sizeof *b);
    }
    errno = saved;
    void *p = real_realloc(old, n);
    saved = errno;
    /* The rest of the room reserved above: nothing else records on this thread meanwhile (its
     * guard is held), so this is the same room, found again without a new chunk. */
    void *room = b ? cgs_reserve(t, sizeof(struct cgs_rec_realloc)) : NULL;
    if (room && p) {
        struct cgs_rec_realloc *r = room;
        r->h.type = CGS_REC_REALLOC;
        r->h.aux = (uint16_t)fn;
        r->h.size = sizeof *r;
        r->ts_free = ts_free;
        r->ts = cgs_stamp_alloc();
        r->old_addr = (uintptr_t)old;
        r->addr = (uintptr_t)p;
        r->size = n;
        r->stack = stack;
        cgs_commit(t, sizeof *r);
    } else if (room && n == 0) {
        /* glibc frees the block and returns NULL */
        struct cgs_rec_free *f = room;
        f->h.type = CGS_REC_FREE;
        f->h.aux = 0;
        f->h.size = sizeof *f;
        f->ts = ts_free;
        f->addr = (uintptr_t)old;
        f->stack = stack;
        cgs_commit(t, sizeof *f);
        t->last_free_stack = stack;
    } else if (room) {
        /* NULL: out of memory, and the block is still the program's */
        struct cgs_rec_realloc_fail *f = room;
        f->h.type = CGS_REC_REALLOC_FAIL;
        f->h.aux = 0;
        f->h.size = sizeof *f;
        f->old_addr = (uintptr_t)old;
        cgs_commit(t, sizeof *f);
    }
    errno = saved;
    return p;
}

static inline int resolved(void) { return CGS_LIKELY(cgs_real_malloc != NULL); }

/* True when this call should be recorded; the caller then must call leave(). */
static inline int enter(struct cgs_thread *t)
{
    if (!cgs_ready || t->guard)
        return 0;
    t->guard++;
    return 1;
}

static inline void leave(struct cgs_thread *t) { t->guard--; }

/* ---- The interposed functions ---------------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
    struct cgs_thread *t = &cgs_tls;
    if (!resolved()) {
        if (t->resolving)
            return arena_alloc(n);
        cgs_resolve_real();
    }
    if (!enter(t))
        return cgs_real_malloc(n);
    void *p = cgs_real_malloc(n);
    if (p)
        record_alloc(t, CGS_FN_MALLOC, p, n, CALLER());
    leave(t);
    return p;
}

EXPORT void *calloc(size_t n, size_t m)
{
    struct cgs_thread *t = &cgs_tls;
    if (!resolved()) {
        if (t->resolving) {
            size_t total;
            if (__builtin_mul_overflow(n, m, &total))
                return NULL;
            return arena_alloc(total); /* static storage: already zero */
        }
        cgs_resolve_real();
    }
    if (!enter(t))
        return real_calloc(n, m);
    void *p = real_calloc(n, m);
    if (p)
        record_alloc(t, CGS_FN_CALLOC, p, n * m, CALLER());
    leave(t);
    return p;
}

EXPORT void free(void *p)
{
    if (!p || in_arena(p))
        return;
    struct cgs_thread *t = &cgs_tls;
    if (!resolved())
        cgs_resolve_real();
    if (!enter(t)) {
        real_free(p);
        return;
    }
    int saved = errno;
    record_free(t, p, CALLER()); /* committed before the real free, which may abort (a double free) */
    errno = saved;
    real_free(p);
    leave(t);
}

static void *do_realloc(struct cgs_thread *t, int fn, void *old, size_t n, struct cgs_caller c)
{
    if (old && in_arena(old)) {
        /* A block from the bootstrap arena moves into the real heap; the arena keeps its copy. */
        void *p = malloc(n);
        if (p) {
            size_t have = arena_size(old);
            memcpy(p, old, have < n ? have : n);
        }
        return p;
    }
    if (!resolved())
        cgs_resolve_real();
    if (!enter(t))
        return real_realloc(old, n);
    void *p;
    if (!old) {
        p = real_realloc(NULL, n);
        if (p)
            record_alloc(t, fn, p, n, c);
    } else {
        p = realloc_recorded(t, fn, old, n, c);
    }
    leave(t);
    return p;
}

EXPORT void *realloc(void *old, size_t n) { return do_realloc(&cgs_tls, CGS_FN_REALLOC, old, n, CALLER()); }

EXPORT void *reallocarray(void *old, size_t n, size_t m)
{
    size_t total;
    if (__builtin_mul_overflow(n, m, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(&cgs_tls, CGS_FN_REALLOCARRAY, old, total, CALLER());
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    struct cgs_thread *t = &cgs_tls;
    if (!resolved())
        cgs_resolve_real();
    if (!enter(t))
        return real_posix_memalign(out, align, n);
    int rc = real_posix_memalign(out, align, n);
    if (rc == 0)
        record_alloc(t, CGS_FN_POSIX_MEMALIGN, *out, n, CALLER());
    leave(t);
    return rc;
}

#define ALIGNED_FN(name, fn_id, real, params, args, size)                                          \
    EXPORT void *name params                                                                       \
    {                                                                                              \
        struct cgs_thread *t = &cgs_tls;                                                           \
        if (!resolved())                                                                           \
            cgs_resolve_real();                                                                    \
        if (!enter(t))                                                                             \
            return real args;                                                                      \
        void *p = real args;                                                                       \
        if (p)                                                                                     \
            record_alloc(t, fn_id, p, size, CALLER());                                             \
        leave(t);                                                                                  \
        return p;                                                                                  \
    }

ALIGNED_FN(aligned_alloc, CGS_FN_ALIGNED_ALLOC, real_aligned_alloc, (size_t align, size_t n), (align, n), n)
ALIGNED_FN(memalign, CGS_FN_MEMALIGN, real_memalign, (size_t align, size_t n), (align, n), n)
ALIGNED_FN(valloc, CGS_FN_VALLOC, real_valloc, (size_t n), (n), n)
ALIGNED_FN(pvalloc, CGS_FN_PVALLOC, real_pvalloc, (size_t n), (n), n)

/* strdup and strndup are recorded as themselves: they allocate through the real malloc
 * directly, so the malloc inside them is not seen a second time. */
static char *dup_n(const char *s, size_t len, int fn, struct cgs_caller c)
{
    struct cgs_thread *t = &cgs_tls;
    if (!resolved())
        cgs_resolve_real();
    int rec = enter(t);
    char *p = cgs_real_malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
        if (rec)
            record_alloc(t, fn, p, len + 1, c);
    }
    if (rec)
        leave(t);
    return p;
}

EXPORT char *strdup(const char *s) { return dup_n(s, strlen(s), CGS_FN_STRDUP, CALLER()); }

EXPORT char *strndup(const char *s, size_t n) { return dup_n(s, strnlen(s, n), CGS_FN_STRNDUP, CALLER()); }

/* A library loaded later: tell the analyzer where it is, so its frames get names. */
EXPORT void *dlopen(const char *file, int mode)
{
    static void *(*real_dlopen)(const char *, int);
    if (!real_dlopen)
        real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    if (!real_dlopen)
        return NULL;
    void *h = real_dlopen(file, mode);
    struct cgs_thread *t = &cgs_tls;
    if (h && cgs_ready && !t->guard) {
        int saved = errno;
        t->guard++;
        cgs_send_modules();
        t->guard--;
        errno = saved;
    }
    return h;
}
