/* Lifetime errors: frees of addresses that are not live blocks (lifetime.h, docs/lifetime.md). */
#include "lifetime.h"

#include <stdlib.h>
#include <string.h>

#define RING_FIRST 256u /* the ring starts this small and doubles up to LIFETIME_RECENT */
#define CHAIN_MAX 64     /* earlier frees of one address looked through */
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
    uint64_t *v = u64map_put(&lt->free_stack_of, (uint64_t)tid + 1, NULL);
    if (!v) /* out of memory: the stack is only lost */
        return full ? stack : 0;
    if (full)
        *v = stack;
    return *v;
}

void lifetime_free(struct lifetime *lt)
{
    free(lt->ring);
    free(lt->index);
    u64map_free(&lt->pend_head);
    u64map_free(&lt->free_stack_of);
    free(lt->pend);
    free(lt->errors);
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
/* The ring holds the last frees in order; an index finds the latest free of an address: a
 * 4-way set-associative table of (seq + 1, address) pairs, twice the ring's size, one cache line
 * per set. A free takes its address's way, else an unused or outdated one, else the oldest of the
 * set: no hashing map to keep up to date and no deletion, for every free of the run. */

#define WAYS 4

static int seq_valid(const struct lifetime *lt, uint64_t seq)
{
    return seq < lt->nseq && lt->nseq - seq <= lt->ring_cap;
}

/* The ring's entry seq, while it still holds it. */
static const struct lt_recent *ring_at(const struct lifetime *lt, uint64_t seq)
{
    return lt->ring && seq_valid(lt, seq) ? &lt->ring[seq % lt->ring_cap] : NULL;
}

static inline struct lt_way *set_of(const struct lifetime *lt, uint64_t addr)
{
    uint64_t h = addr * 0x9e3779b97f4a7c15ull;
    return &lt->index[((size_t)(h >> 32) & (lt->index_sets - 1)) * WAYS];
}

/* The way of addr in its set, or NULL. */
static struct lt_way *way_of(const struct lifetime *lt, uint64_t addr)
{
    if (!lt->index)
        return NULL;
    struct lt_way *w = set_of(lt, addr);
    for (int k = 0; k < WAYS; k++)
        if (w[k].addr == addr && w[k].seq1 && seq_valid(lt, w[k].seq1 - 1))
            return &w[k];
    return NULL;
}

/* Where the latest free of addr goes in its set: the address's own way (*prev: its previous
 * free's seq + 1, to chain), else an unused or outdated way, else the oldest. */
static struct lt_way *way_for(const struct lifetime *lt, uint64_t addr, uint64_t *prev)
{
    struct lt_way *w = set_of(lt, addr), *victim = w;
    uint64_t best = UINT64_MAX;
    *prev = 0;
    for (int k = 0; k < WAYS; k++) {
        uint64_t key = w[k].seq1 && seq_valid(lt, w[k].seq1 - 1) ? w[k].seq1 : 0;
        if (key && w[k].addr == addr) {
            *prev = key;
            return &w[k];
        }
        if (key < best) {
            best = key;
            victim = &w[k];
        }
    }
    return victim;
}

/* Sizes the ring and its index for cap entries (the ring has not wrapped yet). */
static int ring_grow(struct lifetime *lt, size_t cap)
{
    struct lt_recent *nr = realloc(lt->ring, cap * sizeof *nr);
    if (!nr)
        return -1;
    lt->ring = nr;
    struct lt_way *ni = calloc(cap * 2, sizeof *ni);
    if (!ni)
        return -1;
    free(lt->index);
    lt->index = ni;
    lt->index_sets = cap * 2 / WAYS;
    lt->ring_cap = cap;
    for (uint64_t q = 0; q < lt->nseq; q++) { /* oldest first: the latest of an address wins */
        uint64_t prev;
        struct lt_way *w = way_for(lt, lt->ring[q].addr, &prev);
        w->addr = lt->ring[q].addr;
        w->seq1 = q + 1;
    }
    return 0;
}

/* A block ended: remember it (its allocation's stack and size, and the free's). */
static int note_free(struct lifetime *lt, uint64_t addr, uint64_t size, uint64_t alloc_stack, uint64_t free_stack,
                     uint64_t ts)
{
    if (CGS_UNLIKELY_LT(!lt->ring || (lt->nseq == lt->ring_cap && lt->ring_cap < LIFETIME_RECENT))) {
        /* Before the first wrap, seq % cap == seq for both the old and the doubled size. */
        if (ring_grow(lt, lt->ring ? lt->ring_cap * 2 : RING_FIRST) != 0)
            return -1;
    }
    uint64_t seq = lt->nseq++, prev;
    struct lt_way *victim = way_for(lt, addr, &prev);
    victim->addr = addr;
    victim->seq1 = seq + 1;
    lt->ring[seq % lt->ring_cap] = (struct lt_recent){addr, size, alloc_stack, free_stack, ts, prev};
    return 0;
}

/* The latest remembered free of addr stamped at or before ts. */
static const struct lt_recent *recent_before(const struct lifetime *lt, uint64_t addr, uint64_t ts)
{
    const struct lt_way *w = way_of(lt, addr);
    uint64_t s1 = w ? w->seq1 : 0;
    for (int k = 0; s1 && k < CHAIN_MAX; k++) {
        const struct lt_recent *r = ring_at(lt, s1 - 1);
        if (!r || r->addr != addr)
            return NULL;
        if (r->free_ts <= ts)
            return r;
        s1 = r->prev;
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

void lifetime_finish(struct lifetime *lt, const struct liveset *live)
{
    if (lt->finished)
        return;
    lt->finished = 1;
    for (size_t i = 0; i < lt->npend; i++) {
        const struct lt_pending *pe = &lt->pend[i];
        if (!pe->addr)
            continue;
        const struct lt_recent *first = pe->have_first ? &pe->first : recent_before(lt, pe->addr, pe->ts);
        /* In a fork() child, an unknown address may be a block of its parent's. */
        if (!first && lt->forked) {
            lt->unknown++;
            continue;
        }
        struct lifetime_error e = {.kind = first ? LT_DOUBLE_FREE : LT_INVALID_FREE,
                                   .realloc = pe->realloc,
                                   .addr = pe->addr,
                                   .stack = pe->stack,
                                   .ts = pe->ts};
        if (first) {
            e.size = first->size;
            e.alloc_stack = first->alloc_stack;
            e.first_free_stack = first->free_stack;
        }
        add_error(lt, &e);
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
