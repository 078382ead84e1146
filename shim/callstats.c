/*
 * Counting and timing every Go->C call, and every C->Go callback, at a cost close to nothing.
 *
 * Counts are exact: one increment in a per-thread entry that lives in a stats chunk of the
 * channel, so it survives exit_group. Reading a clock twice costs about as much as a null cgo
 * call on a virtual machine (docs/cgo-facts.md §7), so by default only some calls are timed: the
 * first few of each site on each thread, then one in N on average at random intervals (no
 * aliasing with periodic call patterns). A site whose calls turn out slow (where two clock
 * reads are noise) is timed on every call. --timing=full times every call.
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

enum { TIMING_OFF = 0, TIMING_SAMPLED = 1, TIMING_FULL = 2 };

#define FIRST_TIMED 8          /* calls of each site timed on each thread before sampling */
#define SLOW_TICKS 20000       /* mean above this (~10 us): time every call of the site */
#define GAPS_ALWAYS 256        /* gaps between cgo calls measured on each thread before thinning */

static int timing = TIMING_SAMPLED;
static uint64_t clock_cost; /* ticks two back-to-back clock reads take: taken off every duration */
static uint32_t sample_every = 64;
static int timeline;

static uintptr_t go_lo_cached, go_hi_cached;

/* Stats chunks of threads that ended, for the next threads to fill: a program that runs
 * thousands of short-lived threads would otherwise hold a chunk for each until it exits. The
 * analyzer reads stats chunks only when the process has ended, and adds entries of the same
 * site up, so which thread wrote an entry does not matter. Taken and given back only when a
 * thread starts and ends, never on the hot path. */
#define POOL_SIZE 4096
static struct cgs_stats_chunk *pool[POOL_SIZE];
static unsigned pool_n;
static atomic_flag pool_lock = ATOMIC_FLAG_INIT;

static void pool_put(struct cgs_stats_chunk *c)
{
    while (atomic_flag_test_and_set_explicit(&pool_lock, memory_order_acquire))
        ;
    if (pool_n < POOL_SIZE)
        pool[pool_n++] = c;
    atomic_flag_clear_explicit(&pool_lock, memory_order_release);
}

static struct cgs_stats_chunk *pool_take(void)
{
    struct cgs_stats_chunk *c = NULL;
    while (atomic_flag_test_and_set_explicit(&pool_lock, memory_order_acquire))
        ;
    while (pool_n > 0 && !c) {
        c = pool[--pool_n];
        if (c->nsites == CGS_STATS_SITES)
            c = NULL; /* no room left in it: it stays as it is */
    }
    atomic_flag_clear_explicit(&pool_lock, memory_order_release);
    return c;
}

static inline int go_pc(uintptr_t pc) { return pc >= go_lo_cached && pc < go_hi_cached; }

void cgs_callstats_init(void)
{
    const char *m = getenv(CGS_ENV_TIMING);
    if (m) {
        if (strcmp(m, "off") == 0) {
            timing = TIMING_OFF;
        } else if (strcmp(m, "full") == 0) {
            timing = TIMING_FULL;
        } else if (strncmp(m, "sampled:", 8) == 0) {
            unsigned long n = strtoul(m + 8, NULL, 10);
            if (n >= 1 && n <= 1u << 20)
                sample_every = (uint32_t)n;
        }
    }
    clock_cost = UINT64_MAX;
    for (int i = 0; i < 256; i++) {
        uint64_t a = cgs_now_start(), b = cgs_now_after(); /* the pair cgs_timed_call reads */
        if (b >= a && b - a < clock_cost)
            clock_cost = b - a;
    }
    if (clock_cost == UINT64_MAX)
        clock_cost = 0;
    const char *tl = getenv(CGS_ENV_TIMELINE);
    timeline = tl && *tl == '1' && timing != TIMING_OFF;
    cgs_lean_init(timing == TIMING_FULL, timeline, timing == TIMING_OFF ? 0 : sample_every);
}

void cgs_callstats_after_fork(void)
{
    /* The child shares the parent's stats chunks: it must not write there. */
    cgs_tls.stats = NULL;
    pool_n = 0;
    cgs_tls.index = NULL; /* the parent's copy stays mapped in the child: a few KiB */
    cgs_tls.cbdepth = 0;
    cgs_tls.gap_pending = 0;
    cgs_lean_after_fork();
}

void cgs_callstats_thread_exit(struct cgs_thread *t)
{
    cgs_lean_thread_exit(t);
    cgs_stack_thread_exit(t);
    if (t->index) {
        munmap(t->index, sizeof *t->index);
        t->index = NULL;
    }
    /* Its stats chunk stays (the analyzer reads it when the process ends) and takes the
     * entries of a thread that starts later. */
    if (t->stats) {
        pool_put(t->stats);
        t->stats = NULL;
    }
}

static inline uint32_t next_random(struct cgs_thread *t)
{
    if (!t->rng)
        t->rng = (cgs_now_after() | 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)t;
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return (uint32_t)(t->rng >> 32);
}

static uint32_t next_countdown(struct cgs_thread *t, struct cgs_site_stats *s)
{
    s->flags &= ~CGS_SF_SAMPLED;
    if (timing == TIMING_FULL || (s->flags & CGS_SF_ALWAYS) || s->timed < FIRST_TIMED || sample_every <= 1)
        return 1;
    if (timing == TIMING_OFF)
        return UINT32_MAX;
    s->flags |= CGS_SF_SAMPLED;
    return 1 + next_random(t) % (2 * sample_every - 1); /* uniform in [1, 2N-1]: mean N */
}

static struct cgs_site_stats *new_entry(struct cgs_thread *t, uint32_t kind)
{
    if (!cgs_ready)
        return NULL;
    if (!t->index) {
        void *m = mmap(NULL, sizeof *t->index, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        t->index = m;
    }
    if (!t->stats)
        t->stats = pool_take();
    if (!t->stats || t->stats->nsites == CGS_STATS_SITES) {
        struct cgs_stats_chunk *c = cgs_claim_stats_chunk(t);
        if (!c)
            return NULL;
        t->stats = c;
    }
    struct cgs_site_stats *s = &t->stats->sites[t->stats->nsites++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->ticks_min = UINT64_MAX;
    s->countdown = timing == TIMING_OFF ? UINT32_MAX : 1;
    return s;
}

struct cgs_site_stats *cgs_site_stats_slow(struct cgs_thread *t, uint32_t site)
{
    if (site >= CGS_NSTUBS)
        return NULL;
    if (t->index && t->index->site[site])
        return t->index->site[site];
    int saved_guard = t->guard++;
    struct cgs_site_stats *s = new_entry(t, CGS_STATS_CALL);
    t->guard = saved_guard;
    if (s) {
        s->site = site;
        t->index->site[site] = s;
    }
    return s;
}

static inline __attribute__((always_inline)) void add_time(struct cgs_thread *t, struct cgs_site_stats *s, uint64_t d)
{
    if (!(s->flags & CGS_SF_SAMPLED)) {
        s->exact_calls++;
        s->exact_ticks += d;
    }
    s->timed++;
    s->ticks_sum += d;
    if (d > s->ticks_max)
        s->ticks_max = d;
    if (d < s->ticks_min)
        s->ticks_min = d;
    s->hist[cgs_hist_bucket(d)]++;
    if (timing == TIMING_FULL) { /* every call timed: nothing to draw */
        s->countdown = 1;
        return;
    }
    if (s->timed == FIRST_TIMED && timing == TIMING_SAMPLED && s->ticks_sum / FIRST_TIMED > SLOW_TICKS)
        s->flags |= CGS_SF_ALWAYS;
    s->countdown = next_countdown(t, s);
}

void cgs_note_gap(struct cgs_thread *t)
{
    t->gap_pending = 0;
    uint64_t now = cgs_now_before();
    struct cgs_stats_chunk *c = t->stats;
    if (c && now > t->last_out) {
        uint64_t gap = now - t->last_out;
        if (gap < c->gap_min)
            c->gap_min = gap;
        c->gap_count++;
    }
}

/* The Go frames 1-4 out from the hook: the calling Go function is among them (the runtime's
 * own frames and cgo's generated stubs come first; the analyzer skips those). */
static void note_caller(struct cgs_thread *t, uint32_t site, uintptr_t *fp, int exact, uint64_t weight)
{
    uint64_t pcs[4] = {0, 0, 0, 0};
    for (int i = 0; i < 6 && fp && !((uintptr_t)fp & 7); i++) {
        uintptr_t pc = fp[1];
        if (!go_pc(pc))
            break;
        if (i >= 2)
            pcs[i - 2] = pc;
        fp = (uintptr_t *)fp[0];
    }
    struct cgs_stats_chunk *c = t->stats;
    uint64_t h = (pcs[0] ^ (pcs[1] * 31) ^ (pcs[2] * 131) ^ (pcs[3] * 257) ^ site) * 0x9e3779b97f4a7c15ull;
    uint32_t base = (uint32_t)((h >> 40) % CGS_STATS_CALLERS);
    for (uint32_t k = 0; k < 16; k++) {
        struct cgs_caller_stats *e = &c->callers[(base + k) % CGS_STATS_CALLERS];
        if (e->count == 0) {
            e->site = site;
            memcpy(e->pcs, pcs, sizeof pcs);
            e->count = weight;
            e->exact = exact ? weight : 0;
            c->ncallers++;
            return;
        }
        if (e->site == site && memcmp(e->pcs, pcs, sizeof pcs) == 0) {
            e->count += weight;
            e->exact += exact ? weight : 0;
            return;
        }
    }
    c->callers_dropped++;
}

static void timeline_record(struct cgs_thread *t, uint32_t site, uint64_t t0, uint64_t t1)
{
    struct cgs_rec_call *r = cgs_reserve(t, sizeof *r);
    if (!r)
        return;
    r->h.type = CGS_REC_CALL;
    r->h.aux = 0;
    r->h.size = sizeof *r;
    r->site = site;
    r->reserved = 0;
    r->t0 = t0;
    r->t1 = t1;
    cgs_commit(t, sizeof *r);
}

/* In the hook's section: a C unwind from inside the call stops here, as at cgs_cgo_enter. Ends
 * the call: lowers the depth the hook raised. */
__attribute__((section("cgoscope_hook"), noinline)) int cgs_timed_call(struct cgs_thread *t, struct cgs_site_stats *s,
                                                                       int (*fn)(void *), void *frame, uint32_t site,
                                                                       uintptr_t *fp)
{
    uint64_t t0 = cgs_now_start();
    if (t->gap_pending && t->stats && t0 > t->last_out) {
        uint64_t gap = t0 - t->last_out;
        if (gap < t->stats->gap_min)
            t->stats->gap_min = gap;
        t->stats->gap_count++;
    }
    if (t->gap_pending)
        t->gap_pending = 0;
    int rv = fn(frame);
    uint64_t t1 = cgs_now_after();
    int exact = !(s->flags & CGS_SF_SAMPLED);
    add_time(t, s, t1 - t0 > clock_cost ? t1 - t0 - clock_cost : 0);
    /* With every call timed (--timing=full), walking to the caller on every call would cost as
     * much as the two clock reads: past the first 64 calls of a site on a thread, one call in 64
     * stands for 64 (callers are then estimates). */
    int thin = timing == TIMING_FULL && s->timed > 64;
    if (!thin || (s->timed & 63) == 0) {
        if (thin)
            s->flags |= CGS_SF_CALLERS_SAMPLED;
        note_caller(t, site, fp, exact, thin ? 64 : 1);
        /* The gap to this thread's next cgo call (the crossing estimate is the least one seen):
         * two more clock reads, so past GAPS_ALWAYS gaps on a thread, on one such call in 16. */
        if (!t->stats || t->stats->gap_count < GAPS_ALWAYS || (++t->gap_skip & 15) == 0) {
            t->last_out = cgs_now_after();
            t->gap_pending = 1;
            cgs_lean_gate = 0; /* the next call goes the full way, to measure the gap */
        }
    }
    if (timeline && cgs_ready && !t->guard) {
        t->guard++;
        timeline_record(t, site, t0, t1);
        t->guard--;
    }
    t->depth--;
    return cgs_call_done(t, rv);
}

/* ---- Callbacks ------------------------------------------------------------------------------ */

static struct cgs_site_stats *callback_stats(struct cgs_thread *t, uint64_t pc)
{
    if (t->index) {
        for (unsigned i = 0; i < 64; i++) {
            if (t->index->callback[i].pc == pc)
                return t->index->callback[i].stats;
            if (!t->index->callback[i].pc)
                break;
        }
    }
    struct cgs_site_stats *s = new_entry(t, CGS_STATS_CALLBACK);
    if (!s)
        return NULL;
    s->key = pc;
    s->countdown = 1;
    for (unsigned i = 0; i < 64; i++) {
        if (!t->index->callback[i].pc) {
            t->index->callback[i].pc = pc;
            t->index->callback[i].stats = s;
            break;
        }
    }
    return s;
}

void cgs_callback_enter(struct cgs_thread *t, uint64_t pc)
{
    int saved_guard = t->guard++;
    struct cgs_site_stats *s = callback_stats(t, pc);
    t->guard = saved_guard;
    if (s)
        s->calls++;
    if (t->cbdepth < CGS_MAX_CB)
        t->cb[t->cbdepth] = (struct cgs_cb){cgs_now_after(), s};
    t->cbdepth++;
}

void cgs_callback_leave(struct cgs_thread *t)
{
    if (!t->cbdepth)
        return;
    t->cbdepth--;
    if (t->cbdepth >= CGS_MAX_CB)
        return;
    struct cgs_cb *c = &t->cb[t->cbdepth];
    if (c->stats && timing != TIMING_OFF) {
        uint64_t now = cgs_now_before();
        if (now >= c->t0)
            add_time(t, c->stats, now - c->t0);
    }
}

void cgs_callstats_set_go_text(uintptr_t lo, uintptr_t hi)
{
    go_lo_cached = lo;
    go_hi_cached = hi;
}
