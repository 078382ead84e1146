/*
 * Stacks: the C frames above an allocation (libunwind, from the caller of the allocation
 * function up to the cgo hook or the thread's entry), followed by the Go frames of the cgo call
 * in progress (captured from the frame-pointer chain when the call entered the hook).
 * Each distinct stack gets a 64-bit id (a hash of its content); the first thread that inserts
 * an id into the process-wide table sends the frames, every later use sends only the id.
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

/* 262,144 slots (2 MiB): the go-sqlite3 suite makes 19,394 distinct stacks. Ids are hashes, so
 * each lands on a random page: the 8 MiB table this was had all of its 2,048 pages faulted in by
 * that suite, at ~10 us a fault on a virtual machine. Past ~150k stacks probes start to run out
 * and frames are sent again (the analyzer keeps one copy). */
#define TABLE_BITS 18
#define TABLE_PROBES 32

static _Atomic uint64_t *table; /* open addressing; 0 = empty */
static uintptr_t self_lo, self_hi;   /* the shim's own code */
static uintptr_t go_lo, go_hi;       /* Go code of the executable (runtime.text..runtime.etext) */
static uintptr_t cb_lo, cb_hi;       /* runtime.cgocallback */
static int use_fast;                 /* unwind.c walks C frames; libunwind only where it cannot */
static int check_fast; /* CGOSCOPE_UNWIND=check: both walks, differences on stderr (a debugging aid) */

/* The hook through which every cgo call enters lives in its own section: a C unwind that
 * reaches it has reached the Go side. */
extern const char __start_cgoscope_hook[] __attribute__((visibility("hidden")));
extern const char __stop_cgoscope_hook[] __attribute__((visibility("hidden")));

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t want = (uintptr_t)data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (want >= lo && want < hi) {
        self_lo = lo;
        self_hi = hi;
        return 1;
    }
    return 0;
}

int cgs_stack_init(void)
{
    void *m = mmap(NULL, sizeof(uint64_t) << TABLE_BITS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    table = m;
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&cgs_stack_init);
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    const char *u = getenv("CGOSCOPE_UNWIND"); /* "libunwind": the baseline bench/ compares with */
    use_fast = !(u && strcmp(u, "libunwind") == 0) && cgs_unwind_init() == 0;
    check_fast = use_fast && u && strcmp(u, "check") == 0;
    return 0;
}

#define UC_SETS 64
/* Ways per set: one call site reached through several chains. An allocator wrapper (SQLite's
 * sqlite3MemMalloc, every allocation of the library) is one return address at one stack depth
 * for dozens of chains; with 4 ways, 28% of the go-sqlite3 suite's TestStress captures missed
 * and unwound again (bench/README.md, "Issue 14"). */
#define UC_WAYS 16
#define UC_FRAMES 20

struct uc_entry {
    uintptr_t ra, cfa;
    uint64_t id; /* the stack's id when no cgo call was in progress, or 0 */
    uint64_t gen; /* fills of this entry so far: an id remembered with (entry, gen) is still its own */
    uint64_t chash; /* hash_frames of ip[0..n) */
    /* The id this chain last made inside a cgo call, with what else went into it: the next
     * capture from the same chain under the same Go frames has it without hashing or asking the
     * table of ids sent (a cache miss: 28% of cgs_stack_capture's samples on TestStress). */
    uint64_t memo_ghash, memo_id;
    uint32_t memo_site, memo_n;
    uint32_t n;
    uintptr_t slot[UC_FRAMES];
    uint64_t ip[UC_FRAMES];
};

#define SEEN_SLOTS 4096 /* stack ids this thread found in (or put into) the process's table */

struct cgs_unwind_cache {
    /* uc_tag of each way's (ra, cfa), 0 when empty: a lookup scans 128 bytes for candidates
     * instead of touching every way's entry. */
    uint64_t tag[UC_SETS][UC_WAYS];
    struct uc_entry e[UC_SETS][UC_WAYS];
    uint8_t next[UC_SETS]; /* the way to replace next, round robin */
    /* Direct-mapped by id: a probe of the 2 MiB table is a cache and TLB miss (60% of
     * cgs_stack_capture's time on the go-sqlite3 suite); an id found here is known to be there. */
    uint64_t seen[SEEN_SLOTS];
};

/* A child of fork(): the stacks its parent sent belong to the parent's stream. */
void cgs_stack_reset(void)
{
    if (cgs_tls.ucache) { /* its ids were sent in the parent's stream; made again when needed */
        munmap(cgs_tls.ucache, sizeof *cgs_tls.ucache);
        cgs_tls.ucache = NULL;
    }
    cgs_tls.last_free_stack = 0; /* so was the last FREE record */
    void *m = mmap(NULL, sizeof(uint64_t) << TABLE_BITS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m != MAP_FAILED) {
        munmap((void *)table, sizeof(uint64_t) << TABLE_BITS);
        table = m;
    }
}

void cgs_set_go_text(uintptr_t lo, uintptr_t hi, uintptr_t cblo, uintptr_t cbhi)
{
    go_lo = lo;
    go_hi = hi;
    cb_lo = cblo;
    cb_hi = cbhi;
    cgs_callstats_set_go_text(lo, hi);
}

static inline int in_go(uintptr_t pc) { return pc >= go_lo && pc < go_hi; }

static inline uint64_t hash_frames(const uint64_t *pcs, uint32_t n);

/* Walk the frame-pointer chain from the hook's own frame into the goroutine that made the cgo
 * call. Only Go frames are followed (Go keeps frame pointers; C code usually does not), and
 * the walk ends at the first return address outside Go code, at a zero frame pointer, or at
 * runtime.cgocallback, beyond which lies the C code of an enclosing cgo call: its Go frames
 * were captured when that call entered and are appended instead. */
void cgs_capture_go_frames(struct cgs_thread *t, struct cgs_cgo_ctx *c, uintptr_t *fp)
{
    uint64_t tail[CGS_GO_TAIL];
    uint32_t total = 0, n = 0;
    int reached_callback = 0;
    if (go_hi) {
        while (total < 1000000 && fp && !((uintptr_t)fp & 7)) {
            uintptr_t pc = fp[1];
            if (!in_go(pc))
                break;
            if (total < CGS_GO_HEAD)
                c->go_pcs[total] = pc;
            else
                tail[(total - CGS_GO_HEAD) % CGS_GO_TAIL] = pc;
            total++;
            if (pc >= cb_lo && pc < cb_hi) {
                reached_callback = 1;
                break;
            }
            uintptr_t *next = (uintptr_t *)fp[0];
            if (next == fp)
                break;
            fp = next;
        }
    }
    n = total < CGS_GO_HEAD ? total : CGS_GO_HEAD;
    if (total > CGS_GO_HEAD) {
        uint32_t extra = total - CGS_GO_HEAD;
        uint32_t keep = extra < CGS_GO_TAIL ? extra : CGS_GO_TAIL;
        if (extra > keep)
            c->go_pcs[n++] = CGS_PC_OMITTED;
        for (uint32_t i = 0; i < keep; i++)
            c->go_pcs[n++] = tail[(extra - keep + i) % CGS_GO_TAIL];
    }
    uint32_t self = (uint32_t)(c - t->ctx); /* the outer call is the one below this one */
    if (reached_callback && self > 0 && self <= CGS_MAX_CTX) {
        struct cgs_cgo_ctx *outer = &t->ctx[self - 1];
        if (outer->ngo == CGS_GO_LAZY) /* only when callbacks are not seen: fp may be stale */
            outer->ngo = 0;
        for (uint32_t i = 0; i < outer->ngo && n < CGS_MAX_GO_FRAMES; i++)
            c->go_pcs[n++] = outer->go_pcs[i];
    }
    c->ngo = n;
    c->ghash = hash_frames(c->go_pcs, n);
}

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* One multiply per frame: ids only need to differ, not be secret. */
static inline uint64_t hash_frames(const uint64_t *pcs, uint32_t n)
{
    uint64_t h = n;
    for (uint32_t k = 0; k < n; k++)
        h = (h ^ pcs[k]) * 0x9e3779b97f4a7c15ull + (h >> 29);
    return h;
}

/* A stack's id from the hashes of its two parts, each computed once: the C part when the unwind
 * cache entry is filled, the Go part when a cgo call's frames are captured. */
static inline uint64_t stack_id(uint64_t c_hash, uint64_t go_hash, uint32_t site, uint32_t nc, uint32_t n)
{
    uint64_t h = mix(c_hash ^ (go_hash * 0xc2b2ae3d27d4eb4full) ^ ((uint64_t)site << 32) ^ ((uint64_t)nc << 16) ^ n);
    return h ? h : 1;
}

/* Returns 1 when this call inserted the id (so it must send the frames). */
static int table_insert(uint64_t id)
{
    uint64_t mask = ((uint64_t)1 << TABLE_BITS) - 1;
    for (uint64_t i = 0; i < TABLE_PROBES; i++) {
        _Atomic uint64_t *slot = &table[(id + i) & mask];
        uint64_t cur = atomic_load_explicit(slot, memory_order_relaxed);
        if (cur == id)
            return 0;
        if (cur == 0) {
            uint64_t expect = 0;
            if (atomic_compare_exchange_strong(slot, &expect, id))
                return 1;
            if (expect == id)
                return 0;
        }
    }
    return 1; /* table crowded here: send the frames again; the analyzer keeps one copy */
}

/* table_insert, asked only when this thread has not met the id lately. */
static inline int seen_insert(struct cgs_thread *t, uint64_t id)
{
    if (!t->ucache)
        return table_insert(id);
    uint64_t *slot = &t->ucache->seen[id & (SEEN_SLOTS - 1)];
    if (*slot == id)
        return 0;
    *slot = id;
    return table_insert(id);
}

/*
 * C frames cost a DWARF unwind (libunwind): about a microsecond-tenth per frame. Programs
 * allocate from the same few places over and over, so each thread remembers the unwinds it
 * made, keyed by where the allocation function was called from (return address and stack
 * pointer), with the stack slot that held each frame's return address. If every remembered slot
 * still holds the same return address, the call chain is the same one, and the unwind is
 * skipped. (A different chain would have to put the same return addresses at the same stack
 * addresses: only a function whose frame size varies between calls, with alloca, could
 * leave an old value in an old slot.)
 */
static inline int stop_here(uintptr_t pc)
{
    return (pc >= (uintptr_t)__start_cgoscope_hook && pc < (uintptr_t)__stop_cgoscope_hook) || in_go(pc);
}
static int stop_fn(uintptr_t pc) { return stop_here(pc); }

static uint32_t unwind_check(uintptr_t cfa, uint64_t *pcs, uintptr_t *slots, uint32_t max, uintptr_t *go_ip,
                             uintptr_t *go_bp, uintptr_t *go_slot);

/* The full unwind: frames from the caller of the allocation function up to the cgo hook, Go
 * code or the thread's entry; with the stack slot of each one's return address. When it stops
 * at Go code and go_ip is given, that frame's address and frame pointer go there. */
__attribute__((noinline)) static uint32_t unwind_slow(uintptr_t cfa, uint64_t *pcs, uintptr_t *slots, uint32_t max,
                                                      uintptr_t *go_ip, uintptr_t *go_bp, uintptr_t *go_slot)
{
    if (CGS_UNLIKELY(check_fast))
        return unwind_check(cfa, pcs, slots, max, go_ip, go_bp, go_slot);
    if (use_fast) {
        uint32_t got = 0;
        uintptr_t at[3] = {0, 0, 0};
        if (cgs_unwind_fast(cfa, pcs, slots, max, &got, stop_fn, at) == 0) {
            if (go_ip && at[0] && in_go(at[0])) {
                *go_ip = at[0];
                *go_bp = at[1];
                if (go_slot)
                    *go_slot = at[2];
            }
            return got;
        }
    }
    unw_context_t uc;
    unw_cursor_t cur;
    if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0)
        return 0;
    /* Step out of the shim to the caller's frame: the one whose stack pointer is c.cfa. */
    for (int guard = 0; guard < 32; guard++) {
        unw_word_t sp;
        if (unw_get_reg(&cur, UNW_REG_SP, &sp) == 0 && sp >= cfa)
            break;
        if (unw_step(&cur) <= 0)
            return 0;
    }
    uint32_t n = 0;
    uintptr_t slot = cfa - 8;
    for (;;) {
        unw_word_t ip, sp;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0 || n == max)
            break;
        if (stop_here(ip)) {
            unw_word_t bp;
            if (go_ip && in_go(ip) && unw_get_reg(&cur, UNW_X86_64_RBP, &bp) == 0) {
                *go_ip = ip;
                *go_bp = bp;
                if (go_slot)
                    *go_slot = slot;
            }
            break;
        }
        pcs[n] = ip;
        slots[n] = slot;
        n++;
        if (unw_step(&cur) <= 0 || unw_get_reg(&cur, UNW_REG_SP, &sp) != 0)
            break;
        slot = sp - 8; /* the frame we stepped out of kept its return address just below */
    }
    return n;
}

/* CGOSCOPE_UNWIND=check: libunwind's walk, and unwind.c's compared with it. */
__attribute__((noinline)) static uint32_t unwind_check(uintptr_t cfa, uint64_t *pcs, uintptr_t *slots, uint32_t max,
                                                       uintptr_t *go_ip, uintptr_t *go_bp, uintptr_t *go_slot)
{
    check_fast = 0;
    use_fast = 0;
    uintptr_t gi = 0, gb = 0, gs = 0;
    uint32_t n = unwind_slow(cfa, pcs, slots, max, &gi, &gb, &gs);
    use_fast = 1;
    check_fast = 1;
    uint64_t fp[CGS_MAX_C_FRAMES];
    uintptr_t fs[CGS_MAX_C_FRAMES], at[3] = {0, 0, 0};
    uint32_t m = 0;
    int rc = cgs_unwind_fast(cfa, fp, fs, max < CGS_MAX_C_FRAMES ? max : CGS_MAX_C_FRAMES, &m, stop_fn, at);
    int same = rc == 0 && m == n && (!in_go(at[0]) ? !gi : at[0] == gi && at[1] == gb && at[2] == gs);
    for (uint32_t i = 0; same && i < n; i++)
        same = fp[i] == pcs[i] && fs[i] == slots[i];
    char buf[160];
    int len = snprintf(buf, sizeof buf, "cgoscope unwind check: %s n=%u fast rc=%d n=%u first=%#lx go=%#lx/%#lx\n",
                       same ? "same" : "DIFFERENT", n, rc, m, n ? (unsigned long)pcs[0] : 0ul, (unsigned long)gi,
                       (unsigned long)at[0]);
    if (!same || getenv("CGOSCOPE_UNWIND_ALL"))
        if (write(2, buf, (size_t)len) < 0)
            n = n + 0;
    if (!same && rc == 0)
        for (uint32_t i = 0; i < n || i < m; i++) {
            len = snprintf(buf, sizeof buf, "   %u: lu %#lx @%#lx  fast %#lx @%#lx\n", i,
                           i < n ? (unsigned long)pcs[i] : 0ul, i < n ? (unsigned long)slots[i] : 0ul,
                           i < m ? (unsigned long)fp[i] : 0ul, i < m ? (unsigned long)fs[i] : 0ul);
            if (write(2, buf, (size_t)len) < 0)
                break;
        }
    if (go_ip && gi) {
        *go_ip = gi;
        *go_bp = gb;
        if (go_slot)
            *go_slot = gs;
    }
    return n;
}

/* The cgo call in progress on this thread, when its context is kept. */
static inline struct cgs_cgo_ctx *current_ctx(struct cgs_thread *t)
{
    return t->depth > 0 && t->depth <= CGS_MAX_CTX ? &t->ctx[t->depth - 1] : NULL;
}

static inline uint64_t uc_tag(uintptr_t ra, uintptr_t cfa)
{
    uint64_t tag = ra ^ (cfa * 0x9e3779b97f4a7c15ull);
    return tag ? tag : 1;
}

static uint32_t capture_c_frames(struct cgs_thread *t, uintptr_t ra, uintptr_t cfa, uint64_t *pcs,
                                 struct uc_entry **hit)
{
    /* Two scalars, never a struct: a 16-byte reload of a struct just stored as two halves
     * stalls store forwarding (seen in perf as the hottest instruction here, twice). */
    *hit = NULL;
    if (!t->ucache) {
        void *m = mmap(NULL, sizeof *t->ucache, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED)
            t->ucache = m;
    }
    if (!ra || !cfa || *(const uintptr_t *)(cfa - 8) != ra || !t->ucache) {
        cgs_scrub_note(t, (uintptr_t)__builtin_frame_address(0), CGS_SCRUB_UNWIND);
        /* No usable caller frame: the plain unwind. */
        void *ips[CGS_MAX_C_FRAMES + 8];
        int got = unw_backtrace(ips, CGS_MAX_C_FRAMES + 8);
        int i = 0;
        while (i < got && (uintptr_t)ips[i] >= self_lo && (uintptr_t)ips[i] < self_hi)
            i++;
        uint32_t nc = 0;
        for (; i < got && nc < CGS_MAX_C_FRAMES && !stop_here((uintptr_t)ips[i]); i++)
            pcs[nc++] = (uintptr_t)ips[i];
        return nc;
    }
    uint32_t set = (uint32_t)(((ra >> 3) ^ (cfa >> 4) ^ (cfa >> 12)) & (UC_SETS - 1));
    struct uc_entry *ways = t->ucache->e[set];
    uint64_t *tags = t->ucache->tag[set], tag = uc_tag(ra, cfa);
    for (int w = 0; w < UC_WAYS; w++) {
        if (tags[w] != tag)
            continue;
        struct uc_entry *e = &ways[w];
        if (e->ra != ra || e->cfa != cfa || !e->n)
            continue;
        uint32_t k = 1;
        while (k < e->n && *(const uintptr_t *)e->slot[k] == e->ip[k])
            k++;
        if (k == e->n) {
            *hit = e; /* the frames are in e: copied only if they have to be sent */
            return e->n;
        }
    }
    /* Called straight from the cgo hook or from Go: no C frames, so nothing to unwind or cache
     * (the unwind would stop at ra). cgo's wrapper for C.free tail-calls free, so every C.free
     * from Go comes here: it took a full unwind, and evicted a cached chain, each time. */
    if (stop_here(ra))
        return 0;
    uint32_t way = t->ucache->next[set]++ % UC_WAYS;
    struct uc_entry *e = &ways[way];
    cgs_scrub_note(t, (uintptr_t)__builtin_frame_address(0), CGS_SCRUB_UNWIND);
    uintptr_t slots[CGS_MAX_C_FRAMES];
    uint32_t nc = unwind_slow(cfa, pcs, slots, CGS_MAX_C_FRAMES, NULL, NULL, NULL);
    if (nc && nc <= UC_FRAMES) {
        *hit = e;
        e->ra = ra;
        e->cfa = cfa;
        e->id = 0;
        e->gen++;
        e->n = nc;
        memcpy(e->slot, slots, nc * sizeof *slots);
        memcpy(e->ip, pcs, nc * sizeof *pcs);
        e->chash = hash_frames(pcs, nc);
        e->memo_id = 0;
        tags[way] = tag;
    } else {
        e->n = 0;
        e->gen++;
        tags[way] = 0;
    }
    return nc;
}

/* Two words at fp, or 0 when they cannot be read: nothing vouches for a frame pointer that an
 * unwind recovered, so it is read the way a debugger would, never dereferenced. */
static int read_pair(uintptr_t fp, uintptr_t out[2])
{
    struct iovec local = {out, 2 * sizeof(uintptr_t)}, remote = {(void *)fp, 2 * sizeof(uintptr_t)};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)(2 * sizeof(uintptr_t));
}

/* A stripped executable, where no cgo call is hooked (gotext.c): the C unwind runs into Go code
 * (runtime.asmcgocall, which keeps the frame pointer of the Go code that called it), and the
 * frame-pointer chain from there gives the Go frames, as from the hook (docs/cgo-facts.md §3).
 * Returns the number of C frames; *total counts the Go ones too. No cache: the same C frames
 * are reached from many Go callers. */
__attribute__((noinline)) static uint32_t unhooked_frames(uintptr_t ra, uintptr_t cfa, uint64_t *pcs, uint32_t *total)
{
    uintptr_t slots[CGS_MAX_C_FRAMES], ip = 0, fp = 0, pair[2];
    uint32_t nc = ra && cfa ? unwind_slow(cfa, pcs, slots, CGS_MAX_C_FRAMES, &ip, &fp, NULL) : 0;
    uint32_t n = nc;
    if (ip) {
        /* As from the hook: a very deep stack keeps its innermost and outermost frames. */
        uint64_t tail[CGS_GO_TAIL];
        uint32_t depth = 0;
        for (uintptr_t pc = ip;;) {
            if (depth < CGS_GO_HEAD)
                pcs[n++] = pc;
            else
                tail[(depth - CGS_GO_HEAD) % CGS_GO_TAIL] = pc;
            depth++;
            if (depth >= 10000 || !fp || (fp & 7) || !read_pair(fp, pair) || !in_go(pair[1]))
                break;
            pc = pair[1];
            fp = pair[0] > fp ? pair[0] : 0; /* callers' frames lie above: anything else ends the chain */
        }
        if (depth > CGS_GO_HEAD) {
            uint32_t extra = depth - CGS_GO_HEAD, keep = extra < CGS_GO_TAIL ? extra : CGS_GO_TAIL;
            if (extra > keep)
                pcs[n++] = CGS_PC_OMITTED;
            for (uint32_t i = 0; i < keep; i++)
                pcs[n++] = tail[(extra - keep + i) % CGS_GO_TAIL];
        }
    }
    *total = n;
    return nc;
}

void cgs_lean_check(struct cgs_thread *t, uintptr_t ra, uintptr_t cfa)
{
    uint64_t pcs[CGS_MAX_C_FRAMES];
    uintptr_t slots[CGS_MAX_C_FRAMES], ip = 0, bp = 0, slot = 0, pair[2];
    int saved = t->guard++;
    if (ra && cfa)
        unwind_slow(cfa, pcs, slots, CGS_MAX_C_FRAMES, &ip, &bp, &slot);
    t->guard = saved;
    /* In a store-free call: the C frames end in runtime.asmcgocall, called by runtime.cgocall
     * (runtime/cgo's own calls through asmcgocall come from elsewhere). */
    if (!ip || !read_pair(bp, pair) || pair[1] < cgs_cgocall_lo || pair[1] >= cgs_cgocall_hi)
        slot = 0;
    cgs_lean_break(t, slot, ip, bp);
}

/* Zeroes the dead stack between what the cgo call in progress used (t->scrub_lo) and this
 * function's own frame: the call has returned, nothing there is live. Writes nothing else, calls
 * nothing, so it works below its own red zone only. */
__attribute__((noinline)) void cgs_scrub_stack(struct cgs_thread *t)
{
    uintptr_t lo = t->scrub_lo, sp;
    t->scrub_lo = 0;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    uintptr_t hi = sp - 256; /* under the red zone, with room to spare */
    if (lo >= hi || hi - lo > CGS_SCRUB_MAX)
        return;
    size_t n = hi - lo;
    __asm__ volatile("rep stosb" : "+D"(lo), "+c"(n) : "a"(0) : "memory");
}

uint64_t cgs_stack_capture(struct cgs_thread *t, uintptr_t ra, uintptr_t cfa)
{
    if (CGS_UNLIKELY(t->lean_open))
        cgs_lean_check(t, ra, cfa);
    uint64_t pcs[CGS_MAX_FRAMES];
    struct uc_entry *e = NULL;
    struct cgs_cgo_ctx *cx = NULL;
    uint32_t nc, n, site = CGS_NO_SITE;
    uint64_t ch, gh = 0;
    if (CGS_UNLIKELY(cgs_unhooked_go_frames) && t->depth == 0) {
        nc = unhooked_frames(ra, cfa, pcs, &n); /* pcs: C frames, then Go ones */
        ch = hash_frames(pcs, nc);
        gh = hash_frames(pcs + nc, n - nc);
    } else {
        nc = capture_c_frames(t, ra, cfa, pcs, &e); /* the frames are in e when it is given */
        if (e && e->id && t->depth == 0)
            return e->id; /* a chain seen before, outside any cgo call: its frames were sent */
        cx = current_ctx(t);
        ch = e ? e->chash : hash_frames(pcs, nc);
        n = nc;
        if (cx) {
            if (cx->ngo == CGS_GO_LAZY)
                cgs_capture_go_frames(t, cx, cx->fp);
            site = cx->site;
            gh = cx->ghash;
            n = nc + (cx->ngo < CGS_MAX_FRAMES - nc ? cx->ngo : CGS_MAX_FRAMES - nc);
        }
    }
    /* The same chain under the same Go frames (in this cgo call or an earlier one): the id it
     * made then, whose frames were sent then. */
    if (e && cx && e->memo_id && e->memo_ghash == gh && e->memo_site == site && e->memo_n == n)
        return e->memo_id;
    uint64_t h = stack_id(ch, gh, site, nc, n);
    if (e && t->depth == 0)
        e->id = h;
    if (e && cx) {
        e->memo_ghash = gh;
        e->memo_site = site;
        e->memo_n = n;
        e->memo_id = h; /* the frames go below, or went before */
    }

    if (seen_insert(t, h)) {
        /* New to this process: send the frames, gathered only now. */
        if (e)
            memcpy(pcs, e->ip, nc * sizeof *pcs);
        if (cx)
            memcpy(pcs + nc, cx->go_pcs, (n - nc) * sizeof *pcs);
        uint32_t size = (uint32_t)(sizeof(struct cgs_rec_stack) + n * sizeof(uint64_t));
        struct cgs_rec_stack *r = cgs_reserve(t, size);
        if (r) {
            r->h.type = CGS_REC_STACK;
            r->h.aux = (uint16_t)nc;
            r->h.size = size;
            r->id = h;
            r->site = site;
            r->nframes = n;
            memcpy(r->pcs, pcs, n * sizeof(uint64_t));
            cgs_commit(t, size);
        }
    }
    return h;
}

void cgs_stack_thread_exit(struct cgs_thread *t)
{
    if (t->ucache) {
        munmap(t->ucache, sizeof *t->ucache);
        t->ucache = NULL;
    }
}
