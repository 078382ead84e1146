/* Lifetime errors: frees of addresses that are not live blocks (lifetime.h, docs/lifetime.md). */
#include "analysis/lifetime.h"

#include <stdlib.h>
#include <string.h>

#define RING_FIRST 256u /* the ring starts this small and doubles up to LIFETIME_RECENT */
#define CGS_UNLIKELY_LT(x) __builtin_expect(!!(x), 0)

void lifetime_init(struct lifetime *lt)
{
    memset(lt, 0, sizeof *lt);
    u64map_init(&lt->pend_head);
    u64map_init(&lt->free_stack_of);
}

uint64_t lifetime_free_stack(struct lifetime *lt, uint32_t tid, int full, int same, uint64_t stack)
{
    if (!full && !same)
        return 0;
    uint64_t key = (uint64_t)tid + 1;
    if (lt->fs_key != key) { /* another thread: the one-entry cache goes to the map */
        if (lt->fs_key) {
            uint64_t *v = u64map_put(&lt->free_stack_of, lt->fs_key, NULL);
            if (v) /* out of memory: that thread's stack is only lost */
                *v = lt->fs_stack;
        }
        uint64_t *v = u64map_get(&lt->free_stack_of, key);
        lt->fs_key = key;
        lt->fs_stack = v ? *v : 0;
    }
    if (full)
        lt->fs_stack = stack;
    return lt->fs_stack;
}

void lifetime_free(struct lifetime *lt)
{
    free(lt->ring);
    u64map_free(&lt->pend_head);
    u64map_free(&lt->free_stack_of);
    free(lt->pend);
    free(lt->errors);
    free(lt->open);
    free(lt->checks);
    memset(lt, 0, sizeof *lt);
}

const char *lifetime_kind_name(int kind)
{
    switch (kind) {
    case LT_DOUBLE_FREE: return "double_free";
    case LT_INVALID_FREE: return "invalid_free";
    default: return "unknown";
    }
}

/* ---- The ring of recent frees ------------------------------------------------------------- */
/* Every free costs one sequential store into the ring, nothing else: the ring is searched only
 * for a free that went pending (an error, in all but traces without cuts), from the newest entry
 * back, at most SCAN_BUDGET times per process. */

#define SCAN_BUDGET 2000u /* searches per process: beyond LIFETIME_MAX_ERRORS errors, counts only */

/* A block ended: remember it (its allocation's stack and size, and the free's). */
static int note_free(struct lifetime *lt, uint64_t addr, uint64_t size, uint64_t alloc_stack, uint64_t free_stack,
                     uint64_t ts)
{
    if (CGS_UNLIKELY_LT(lt->nseq == lt->ring_cap && lt->ring_cap < LIFETIME_RECENT)) {
        /* Before the first wrap, seq % cap == seq for both the old and the doubled size. */
        size_t cap = lt->ring_cap ? lt->ring_cap * 2 : RING_FIRST;
        struct lt_recent *nr = realloc(lt->ring, cap * sizeof *nr);
        if (!nr)
            return -1;
        lt->ring = nr;
        lt->ring_cap = cap;
    }
    lt->ring[lt->nseq++ % lt->ring_cap] = (struct lt_recent){addr, size, alloc_stack, free_stack, ts};
    return 0;
}

/* The latest remembered free of addr stamped at or before ts. */
static const struct lt_recent *recent_before(struct lifetime *lt, uint64_t addr, uint64_t ts)
{
    if (!lt->nseq || lt->scans >= SCAN_BUDGET)
        return NULL;
    lt->scans++;
    uint64_t n = lt->nseq < lt->ring_cap ? lt->nseq : lt->ring_cap;
    for (uint64_t k = 1; k <= n; k++) {
        const struct lt_recent *r = &lt->ring[(lt->nseq - k) % lt->ring_cap];
        if (r->addr == addr && r->free_ts <= ts)
            return r;
    }
    return NULL;
}

/* ---- Pending frees, mirrored ------------------------------------------------------------- */

static int add_pending(struct lifetime *lt, uint64_t addr, uint64_t ts, uint64_t stack, int is_realloc)
{
    size_t i;
    if (lt->free_list) {
        i = (size_t)(lt->free_list - 1);
        lt->free_list = lt->pend[i].next;
    } else {
        if (lt->npend == lt->cappend) {
            size_t nc = lt->cappend ? lt->cappend * 2 : 64;
            struct lt_pending *nv = realloc(lt->pend, nc * sizeof *nv);
            if (!nv)
                return -1;
            lt->pend = nv;
            lt->cappend = nc;
        }
        i = lt->npend++;
    }
    struct lt_pending *pe = &lt->pend[i];
    memset(pe, 0, sizeof *pe);
    pe->addr = addr;
    pe->ts = ts;
    pe->stack = stack;
    pe->realloc = is_realloc;
    const struct lt_recent *first = recent_before(lt, addr, ts);
    if (first) {
        pe->have_first = 1;
        pe->first = *first;
    }
    int added;
    uint64_t *h = u64map_put(&lt->pend_head, addr, &added);
    if (!h)
        return -1;
    if (added) {
        *h = i + 1;
    } else { /* at the tail: the chain keeps reading order */
        struct lt_pending *e = &lt->pend[*h - 1];
        while (e->next)
            e = &lt->pend[e->next - 1];
        e->next = i + 1;
    }
    return 0;
}

/* The live set gave the allocation at ts a pending free of addr: the earliest at or after ts
 * (liveset.c, take_pending). Removes it from the mirror; 0 when it is not there. */
static int take_pending(struct lifetime *lt, uint64_t addr, uint64_t ts, struct lt_pending *out)
{
    uint64_t *h = u64map_get(&lt->pend_head, addr);
    if (!h)
        return 0;
    uint64_t best = 0, best_prev = 0, prev = 0;
    for (uint64_t k = *h; k; prev = k, k = lt->pend[k - 1].next) {
        const struct lt_pending *e = &lt->pend[k - 1];
        if (e->ts >= ts && (!best || e->ts < lt->pend[best - 1].ts)) {
            best = k;
            best_prev = prev;
        }
    }
    if (!best)
        return 0;
    struct lt_pending *e = &lt->pend[best - 1];
    *out = *e;
    if (best_prev)
        lt->pend[best_prev - 1].next = e->next;
    else if (e->next)
        *h = e->next;
    else
        u64map_del(&lt->pend_head, addr);
    e->addr = 0; /* unused */
    e->next = lt->free_list;
    lt->free_list = best;
    return 1;
}

int lifetime_alloc(struct lifetime *lt, struct liveset *live, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts)
{
    size_t before = liveset_pending(live);
    int rc = liveset_alloc(live, addr, size, stack, ts);
    if (rc != 0 || liveset_pending(live) >= before)
        return rc;
    /* Allocated and already freed (the free was read first): that free ended this block. */
    struct lt_pending pe;
    if (take_pending(lt, addr, ts, &pe))
        return note_free(lt, addr, size, stack, pe.stack, pe.ts);
    return 0;
}

int lifetime_free_block(struct lifetime *lt, struct liveset *live, uint64_t addr, uint64_t ts, uint64_t stack,
                        int is_realloc)
{
    struct live_block b;
    int rc = liveset_free_block_ex(live, addr, ts, &b);
    if (rc == 1)
        return note_free(lt, addr, b.size, b.stack, stack, ts) == 0 ? 1 : -1;
    if (rc == 0)
        return add_pending(lt, addr, ts, stack, is_realloc) == 0 ? 0 : -1;
    return rc;
}

/* ---- Reallocs that may not have returned --------------------------------------------------- */

static int push_realloc(struct lt_realloc **v, size_t *n, size_t *cap, const struct lt_realloc *e)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct lt_realloc *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *e;
    return 0;
}

static struct lt_realloc *open_of(struct lifetime *lt, uint32_t tid)
{
    for (size_t i = 0; i < lt->nopen; i++)
        if (lt->open[i].tid == tid)
            return &lt->open[i];
    return NULL;
}

int lifetime_realloc_begin(struct lifetime *lt, uint32_t tid, uint64_t addr, uint64_t ts, uint64_t stack)
{
    struct lt_realloc e = {tid, addr, ts, stack};
    struct lt_realloc *o = open_of(lt, tid);
    if (o) { /* one at a time per thread: a stream that says otherwise keeps the newest */
        *o = e;
        return 0;
    }
    return push_realloc(&lt->open, &lt->nopen, &lt->capopen, &e);
}

void lifetime_realloc_end(struct lifetime *lt, uint32_t tid, int failed, uint64_t addr)
{
    struct lt_realloc *o = open_of(lt, tid);
    if (!o)
        return;
    struct lt_realloc e = *o;
    *o = lt->open[--lt->nopen];
    if (!failed || e.addr != addr)
        return;
    if (lt->nchecks == LIFETIME_MAX_CHECKS || push_realloc(&lt->checks, &lt->nchecks, &lt->capchecks, &e) != 0)
        lt->checks_dropped++;
}

/* Was something at addr freed after ts, or may it have been (the ring no longer reaches back to
 * ts, or may not be searched again)? Then a block may have been live there at ts. */
static int freed_since(struct lifetime *lt, uint64_t addr, uint64_t ts)
{
    if (!lt->nseq)
        return 0;
    if (lt->scans >= SCAN_BUDGET)
        return 1;
    lt->scans++;
    uint64_t n = lt->nseq < lt->ring_cap ? lt->nseq : lt->ring_cap;
    uint64_t oldest_ts = UINT64_MAX;
    for (uint64_t k = 1; k <= n; k++) {
        const struct lt_recent *r = &lt->ring[(lt->nseq - k) % lt->ring_cap];
        if (r->addr == addr && r->free_ts > ts)
            return 1;
        if (r->free_ts < oldest_ts)
            oldest_ts = r->free_ts;
    }
    return lt->nseq > lt->ring_cap && oldest_ts > ts; /* frees before the ring's oldest are gone */
}

/* ---- At the end ------------------------------------------------------------------------- */

static void add_error(struct lifetime *lt, const struct lifetime_error *e)
{
    if (lt->nerrors == LIFETIME_MAX_ERRORS) {
        lt->errors_dropped++;
        return;
    }
    if (!lt->errors) {
        lt->errors = malloc(LIFETIME_MAX_ERRORS * sizeof *lt->errors);
        if (!lt->errors) {
            lt->errors_dropped++;
            return;
        }
    }
    lt->errors[lt->nerrors++] = *e;
}

static int cmp_error_ts(const void *a, const void *b)
{
    const struct lifetime_error *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct interior_scan {
    struct lifetime_error **by_addr; /* invalid frees, by address */
    size_t n;
};

static int cmp_error_addr(const void *a, const void *b)
{
    const struct lifetime_error *x = *(struct lifetime_error *const *)a, *y = *(struct lifetime_error *const *)b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* A live block: the invalid frees of addresses inside it were of interior pointers. */
static void interior_of(const struct live_block *b, void *arg)
{
    struct interior_scan *s = arg;
    size_t lo = 0, hi = s->n; /* the first address above b->addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->by_addr[mid]->addr <= b->addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < s->n && s->by_addr[i]->addr - b->addr < b->size; i++) {
        struct lifetime_error *e = s->by_addr[i];
        if (e->interior || b->ts > e->ts)
            continue;
        e->interior = 1;
        e->offset = e->addr - b->addr;
        e->size = b->size;
        e->alloc_stack = b->stack;
    }
}

/* A free (or realloc) of addr, which was not a live block: a double free when first is the free
 * that ended the block there, else an invalid one. */
static void bad_free(struct lifetime *lt, uint64_t addr, uint64_t ts, uint64_t stack, int is_realloc,
                     const struct lt_recent *first)
{
    /* In a fork() child, an unknown address may be a block of its parent's. */
    if (!first && lt->forked) {
        lt->unknown++;
        return;
    }
    struct lifetime_error e = {.kind = first ? LT_DOUBLE_FREE : LT_INVALID_FREE,
                               .realloc = is_realloc,
                               .addr = addr,
                               .stack = stack,
                               .ts = ts};
    if (first) {
        e.size = first->size;
        e.alloc_stack = first->alloc_stack;
        e.first_free_stack = first->free_stack;
    }
    add_error(lt, &e);
}

void lifetime_finish(struct lifetime *lt, const struct liveset *live)
{
    if (lt->finished)
        return;
    lt->finished = 1;
    /* The reallocs the process died in, and those that failed: the address must have been a live
     * block when the realloc began. It was, if a block is live there now (that block, or one that
     * took its address after a realloc that moved it and did not get to say so), or if something
     * was freed there since. Otherwise it was not: an error, told apart like a pending free's. */
    for (size_t i = 0; i < lt->nopen; i++)
        if (lt->nchecks == LIFETIME_MAX_CHECKS ||
            push_realloc(&lt->checks, &lt->nchecks, &lt->capchecks, &lt->open[i]) != 0)
            lt->checks_dropped++;
    lt->nopen = 0;
    for (size_t i = 0; i < lt->nchecks; i++) {
        const struct lt_realloc *c = &lt->checks[i];
        if (!liveset_has(live, c->addr) && !freed_since(lt, c->addr, c->ts))
            bad_free(lt, c->addr, c->ts, c->stack, 1, recent_before(lt, c->addr, c->ts));
    }
    for (size_t i = 0; i < lt->npend; i++) {
        const struct lt_pending *pe = &lt->pend[i];
        if (pe->addr)
            bad_free(lt, pe->addr, pe->ts, pe->stack, pe->realloc,
                     pe->have_first ? &pe->first : recent_before(lt, pe->addr, pe->ts));
    }
    if (!lt->nerrors)
        return;
    size_t ninv = 0;
    for (size_t i = 0; i < lt->nerrors; i++)
        ninv += lt->errors[i].kind == LT_INVALID_FREE;
    struct interior_scan s = {ninv ? malloc(ninv * sizeof *s.by_addr) : NULL, 0};
    if (s.by_addr) {
        for (size_t i = 0; i < lt->nerrors; i++)
            if (lt->errors[i].kind == LT_INVALID_FREE)
                s.by_addr[s.n++] = &lt->errors[i];
        qsort(s.by_addr, s.n, sizeof *s.by_addr, cmp_error_addr);
        liveset_each(live, interior_of, &s);
        free(s.by_addr);
    }
    qsort(lt->errors, lt->nerrors, sizeof *lt->errors, cmp_error_ts);
}
