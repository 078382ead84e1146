/* Internal interfaces of the shim. Nothing here is seen by the analyzer. */
#ifndef CGOSCOPE_SHIM_H
#define CGOSCOPE_SHIM_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#include "cgoscope/record.h"

#define CGS_HIDDEN __attribute__((visibility("hidden")))
#define CGS_LIKELY(x) __builtin_expect(!!(x), 1)
#define CGS_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define CGS_MAX_C_FRAMES 64
#define CGS_MAX_GO_FRAMES 64
#define CGS_GO_HEAD 32 /* a deeper stack keeps this many innermost frames... */
#define CGS_GO_TAIL 16 /* ...and this many outermost ones */
#define CGS_MAX_CTX 6

/* One Go->C call in progress on this thread: its site and the Go frames that made it,
 * captured as return addresses at entry (they stay valid if a callback moves the stack). */
#define CGS_GO_LAZY 0xffffffffu /* ngo: not captured yet; fp says where to start */

struct cgs_cgo_ctx {
    uint32_t site;
    uint32_t ngo;
    uintptr_t *fp; /* the hook's frame: the chain into the goroutine starts here */
    uintptr_t frame[2]; /* a promoted store-free call (lean.c): its frame, as the hook's would be */
    uint64_t ghash; /* hash of go_pcs[0..ngo) */
    uint64_t go_pcs[CGS_MAX_GO_FRAMES];
};

#define CGS_MAX_CB 8
#define CGS_LEAN_RET 16

/* A C->Go callback in progress on this thread. */
struct cgs_cb {
    uint64_t t0;
    struct cgs_site_stats *stats;
};

struct cgs_thread {
    int guard;     /* > 0 while the shim itself runs on this thread: nested calls pass through */
    int resolving; /* inside dlsym bootstrap: allocations come from the static arena */
    int32_t chunk; /* chunk this thread writes into, or -1 */
    uint32_t off;  /* write offset inside that chunk */
    uint64_t retry_at; /* no chunk was free for long: until this clock (ns) records are dropped */
    uint32_t tid;
    uint32_t depth; /* cgo calls in progress (may exceed CGS_MAX_CTX; extra ones are not kept) */
    int exit_key_set;
    struct cgs_unwind_cache *ucache; /* private: C stacks seen before (stack.c) */
    uint64_t last_free_stack; /* the stack of this thread's last FREE record (CGS_FREE_SAME_STACK) */
    struct cgs_cgo_ctx ctx[CGS_MAX_CTX];

    /* cgo call statistics (callstats.c) */
    struct cgs_stats_chunk *stats;       /* where new entries go */
    struct cgs_thread_index *index;      /* private: site -> entry */
    uint64_t rng;
    uint64_t last_out;                   /* clock when the last timed call returned */
    int gap_pending;
    uint32_t gap_skip; /* timed calls whose gap to the next call was not measured */
    uint32_t cbdepth;
    struct cgs_cb cb[CGS_MAX_CB];

    /* store-free cgo calls (lean.c) */
    int lean_open;              /* this thread's run is open */
    uint32_t lean_last; /* site + 1 of the last full call */
    int32_t lean_streak; /* calls of it in a row (negative: lean.c asked to be left alone a while) */
    struct cgs_lean_run *lean;  /* this thread's run */
    uintptr_t lean_ret[CGS_LEAN_RET]; /* promoted calls, by depth: where their wrapper returns */

    /* The lowest stack address where the shim's work (and malloc's) during the cgo call in
     * progress may have left a block's address, or 0: scrubbed when the call returns (stack.c,
     * cgs_scrub_stack). */
    uintptr_t scrub_lo;
};

/* A thread's store-free run (lean.c): calls of `site` on M `m` after m.ncgocall == base are
 * counted in s->calls only when the run ends or is brought up to date. */
struct cgs_lean_run {
    _Alignas(16) uint64_t base; /* m.ncgocall of the last call s->calls includes */
    uint64_t calls_at_open;     /* s->calls then (base and this: one 16-byte store) */
    struct cgs_site_stats *_Atomic s; /* while the run is open, else NULL */
    uintptr_t m;
    struct cgs_stats_chunk *chunk; /* the stats chunk holding s */
    uint32_t tid, site;
    int used;
};

/* Private to the thread (not shared with the analyzer): where its statistics live. */
struct cgs_thread_index {
    struct cgs_site_stats *site[CGS_NSTUBS];
    struct {
        uint64_t pc;
        struct cgs_site_stats *stats;
    } callback[64];
    uint16_t clean[CGS_NSTUBS]; /* calls in a row that needed no call context (lean.c) */
};

extern CGS_HIDDEN __thread struct cgs_thread cgs_tls __attribute__((tls_model("initial-exec")));
/* What the store-free way into a cgo call (stubs_x86_64.S, lean.c) reads: the site + 1 whose
 * calls take it (0: none), and the runtime.m the thread's run counts on. */
extern CGS_HIDDEN __thread uint32_t cgs_lean_gate __attribute__((tls_model("initial-exec")));
extern CGS_HIDDEN __thread uintptr_t cgs_lean_m __attribute__((tls_model("initial-exec")));

/* Set once the channel is attached and start-up records are written. */
extern CGS_HIDDEN int cgs_ready;
extern CGS_HIDDEN int cgs_clock_kind;

/* init.c: the start-up records (modules, cgo sites) are kept to be sent again by a child of
 * fork(), which is a process of its own. */
extern CGS_HIDDEN int cgs_startup_log_on;
CGS_HIDDEN void cgs_startup_log(const void *rec, uint32_t size);

/* interpose.c */
CGS_HIDDEN void cgs_resolve_real(void);
extern CGS_HIDDEN void *(*cgs_real_malloc)(size_t);

/* channel.c */
CGS_HIDDEN int cgs_channel_attach(void);
CGS_HIDDEN void *cgs_claim_stats_chunk(struct cgs_thread *t);
CGS_HIDDEN void *cgs_reserve(struct cgs_thread *t, uint32_t size);
CGS_HIDDEN void cgs_commit(struct cgs_thread *t, uint32_t size);
CGS_HIDDEN void cgs_thread_done(struct cgs_thread *t);
CGS_HIDDEN void cgs_channel_after_fork(void);
CGS_HIDDEN void cgs_count_lost(uint64_t n);
CGS_HIDDEN const struct cgs_shm_header *cgs_channel_header(void); /* launcher mode only, else NULL */
CGS_HIDDEN const char *cgs_channel_file_path(void);                /* file mode only: the trace's path */
CGS_HIDDEN struct cgs_stats_chunk *cgs_stats_chunk_of(const void *p);

/* stack.c */
/* The reachability scan (docs/reachability.md) reads thread stacks whole, dead part included: a
 * block's address left below the stack pointer by malloc or by the shim's own frames would hold
 * the block. A cgo call that allocated or freed scrubs what lies below its hook when it returns. */
#define CGS_SCRUB_SHALLOW 2048u /* below record_alloc's frame: malloc's frames, the stack id's */
#define CGS_SCRUB_UNWIND 4608u  /* below capture_c_frames' frame when it unwinds with libunwind */
#define CGS_SCRUB_MAX (64u << 10)
static inline void cgs_scrub_note(struct cgs_thread *t, uintptr_t frame, uintptr_t below)
{
    uintptr_t lo = frame - below;
    if (t->depth && (!t->scrub_lo || lo < t->scrub_lo))
        t->scrub_lo = lo;
}
CGS_HIDDEN void cgs_scrub_stack(struct cgs_thread *t);
/* stubs_x86_64.S: zeroes [lo, its own stack pointer) and returns rv. Tail-called as a hook's
 * last act, it runs with the hook's frame gone: everything below asmcgocall's frame is dead. */
CGS_HIDDEN int cgs_scrub_return(int rv, uintptr_t lo);
/* The end of a hooked cgo call: scrubs what it left below (cgs_scrub_note), if anything. */
static inline int cgs_call_done(struct cgs_thread *t, int rv)
{
    uintptr_t lo = t->scrub_lo;
    if (CGS_LIKELY(!lo))
        return rv;
    t->scrub_lo = 0;
    return cgs_scrub_return(rv, lo);
}
/* unwind.c: C frames from the caller whose stack pointer after the call is cfa (below it: its
 * return address, then its RBP as the shim's interposer saved it), up to a return address for
 * which stop() says yes (then stopped[] = that address, RBP and the slot that held it). Fills pcs
 * and slots as libunwind's walk in stack.c does; returns -1 when a frame needs libunwind. */
CGS_HIDDEN int cgs_unwind_init(void);
CGS_HIDDEN int cgs_unwind_fast(uintptr_t cfa, uint64_t *pcs, uintptr_t *slots, uint32_t max, uint32_t *nout,
                               int (*stop)(uintptr_t), uintptr_t stopped[3]);
CGS_HIDDEN int cgs_stack_init(void);
CGS_HIDDEN void cgs_stack_reset(void);
CGS_HIDDEN void cgs_stack_thread_exit(struct cgs_thread *t);
struct cgs_caller {
    uintptr_t ra;  /* return address into the caller of the allocation function */
    uintptr_t cfa; /* the caller's stack pointer once that call returns */
};
CGS_HIDDEN uint64_t cgs_stack_capture(struct cgs_thread *t, uintptr_t ra, uintptr_t cfa);
CGS_HIDDEN void cgs_set_go_text(uintptr_t lo, uintptr_t hi, uintptr_t cb_lo, uintptr_t cb_hi);
CGS_HIDDEN void cgs_capture_go_frames(struct cgs_thread *t, struct cgs_cgo_ctx *c, uintptr_t *fp);

/* gotext.c: Go text bounds of a stripped executable, and its function table, from .gopclntab
 * and the runtime's module data (in memory). cgo_hooks.c finds the cgo call sites in the table;
 * allocations outside any hooked call get their Go frames from the C unwind (stack.c). */
struct cgs_gotab {
    const uint8_t *tab; /* .gopclntab, in memory */
    size_t tab_size;
    uintptr_t text, etext; /* Go text (runtime.text, runtime.etext) */
    uintptr_t c_lo, c_hi;  /* .text: Go text and the C code linked with it */
};
CGS_HIDDEN int cgs_go_text_from_pclntab(const uint8_t *img, size_t fsize, uintptr_t bias, struct cgs_gotab *out);
/* The section header called name of the ELF file image img, or NULL. */
CGS_HIDDEN const Elf64_Shdr *cgs_elf_section(const uint8_t *img, size_t fsize, const char *name);
extern CGS_HIDDEN int cgs_unhooked_go_frames;

/* cgo_hooks.c */
CGS_HIDDEN int cgs_hook_cgo_sites(uintptr_t exe_bias);
extern CGS_HIDDEN int cgs_lazy_go_frames; /* callbacks are seen: Go frames can wait until needed */

/* callstats.c */
CGS_HIDDEN void cgs_callstats_init(void);
CGS_HIDDEN struct cgs_site_stats *cgs_site_stats_slow(struct cgs_thread *t, uint32_t site);
CGS_HIDDEN int cgs_timed_call(struct cgs_thread *t, struct cgs_site_stats *s, int (*fn)(void *), void *frame,
                              uint32_t site, uintptr_t *fp);
CGS_HIDDEN void cgs_note_gap(struct cgs_thread *t);
CGS_HIDDEN void cgs_callback_enter(struct cgs_thread *t, uint64_t pc);
CGS_HIDDEN void cgs_callback_leave(struct cgs_thread *t);
CGS_HIDDEN void cgs_callstats_after_fork(void);
CGS_HIDDEN void cgs_callstats_thread_exit(struct cgs_thread *t);
CGS_HIDDEN void cgs_callstats_set_go_text(uintptr_t lo, uintptr_t hi);

/* lean.c: store-free cgo calls */
extern CGS_HIDDEN intptr_t cgs_lean_tlsg;
extern CGS_HIDDEN uint32_t cgs_lean_g_m, cgs_lean_m_ncgocall;
extern CGS_HIDDEN uint64_t cgs_lean_threshold;
extern CGS_HIDDEN uintptr_t cgs_cgocall_lo, cgs_cgocall_hi;
extern CGS_HIDDEN int cgs_lean_wanted;
CGS_HIDDEN void cgs_lean_set_tlsg(intptr_t off);
CGS_HIDDEN void cgs_lean_init(int full_timing, int timeline, uint32_t sample_every);
CGS_HIDDEN int cgs_lean_enter(struct cgs_thread *t, uint32_t site);
CGS_HIDDEN void cgs_lean_after(struct cgs_thread *t, uint32_t site, struct cgs_site_stats *s, int clean);
#define CGS_LEAN_STREAK 16 /* calls of a site in a row on a thread before cgs_lean_after is asked */
CGS_HIDDEN void cgs_lean_break(struct cgs_thread *t, uintptr_t slot, uintptr_t ip, uintptr_t bp);
CGS_HIDDEN void cgs_lean_exclude(struct cgs_thread *t);
CGS_HIDDEN void cgs_lean_thread_exit(struct cgs_thread *t);
CGS_HIDDEN void cgs_lean_after_fork(void);
CGS_HIDDEN void cgs_lean_start_early(void);
CGS_HIDDEN uint32_t cgs_lean_helper_pid(void);
extern const char cgs_lean_return[] __attribute__((visibility("hidden")));
CGS_HIDDEN uintptr_t cgs_lean_returned(void);
/* stack.c: an allocation or callback made while this thread's run is open (ra, cfa: as for
 * cgs_stack_capture) ends the run, and promotes the store-free call it is made in, if any. */
CGS_HIDDEN void cgs_lean_check(struct cgs_thread *t, uintptr_t ra, uintptr_t cfa);

/* modules.c */
CGS_HIDDEN uintptr_t cgs_send_modules(void);

/* clock.c */
CGS_HIDDEN void cgs_clock_init(void);
CGS_HIDDEN uint64_t cgs_mono_ns(void);

#if defined(__x86_64__)
#include <x86intrin.h>
/* Read before an event whose effect others could observe (a free): nothing after it starts early. */
static inline uint64_t cgs_now_before(void)
{
    if (CGS_LIKELY(cgs_clock_kind == CGS_CLOCK_TSC)) {
        uint64_t v = __rdtsc();
        _mm_lfence();
        return v;
    }
    return cgs_mono_ns();
}
/* The start of a timed cgo call: no fence after it. A fence there (lfence) cost ~12 ns per call
 * in place, far more than the few cycles of the call the CPU may start before the read, which the
 * calibration (the same pair of reads back to back) takes off anyway. */
static inline uint64_t cgs_now_start(void)
{
    if (CGS_LIKELY(cgs_clock_kind == CGS_CLOCK_TSC))
        return __rdtsc();
    return cgs_mono_ns();
}
/* The stamp of a free, read before the block is handed back: no store of the free can be seen
 * by another thread before this instruction has executed (stores become visible only after
 * they retire, in order), so no fence is needed: the block's next allocation, stamped with
 * cgs_now_after() once its loads have completed, cannot get an earlier stamp. */
static inline uint64_t cgs_stamp_free(void)
{
    if (CGS_LIKELY(cgs_clock_kind == CGS_CLOCK_TSC))
        return __rdtsc();
    return cgs_mono_ns();
}
/* The stamp of an allocation, read once the allocator's loads (that found the block, perhaps
 * freed by another thread) have completed: lfence lets nothing start before all before it has. */
static inline uint64_t cgs_stamp_alloc(void)
{
    if (CGS_LIKELY(cgs_clock_kind == CGS_CLOCK_TSC)) {
        _mm_lfence();
        return __rdtsc();
    }
    return cgs_mono_ns();
}
/* Read after an event (an allocation): everything before it has finished. */
static inline uint64_t cgs_now_after(void)
{
    if (CGS_LIKELY(cgs_clock_kind == CGS_CLOCK_TSC)) {
        unsigned aux;
        return __rdtscp(&aux);
    }
    return cgs_mono_ns();
}
#else
static inline uint64_t cgs_now_before(void) { return cgs_mono_ns(); }
static inline uint64_t cgs_now_after(void) { return cgs_mono_ns(); }
static inline uint64_t cgs_stamp_free(void) { return cgs_mono_ns(); }
static inline uint64_t cgs_now_start(void) { return cgs_mono_ns(); }
static inline uint64_t cgs_stamp_alloc(void) { return cgs_mono_ns(); }
#endif

#endif
