#include "analysis/liveset.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Large slot arrays come straight from mmap and go straight back: an allocator that keeps freed
 * pages around (jemalloc's decay) would otherwise hold every outgrown table for a while, about
 * doubling the resident memory of a big live set. */
#define MMAP_FROM 4096u

static struct live_slot *slots_alloc(size_t n)
{
    size_t bytes = n * sizeof(struct live_slot);
    if (bytes < MMAP_FROM)
        return calloc(n, sizeof(struct live_slot));
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void slots_free(struct live_slot *p, size_t n)
{
    if (!p)
        return;
    size_t bytes = n * sizeof(struct live_slot);
    if (bytes < MMAP_FROM)
        free(p);
    else
        munmap(p, bytes);
}

void liveset_init(struct liveset *s)
{
    memset(s, 0, sizeof *s);
    u64map_init(&s->big_sizes);
    u64map_init(&s->pending);
    u64map_init(&s->stack_index);
}

void liveset_free(struct liveset *s)
{
    for (size_t i = 0; i < LIVESET_PARTS; i++)
        slots_free(s->part[i].slots, s->part[i].cap);
    u64map_free(&s->big_sizes);
    u64map_free(&s->pending);
    u64map_free(&s->stack_index);
    free(s->per_stack);
    free(s->changed);
    free(s->dups);
    free(s->pending_more);
    memset(s, 0, sizeof *s);
}

static inline uint64_t mix(uint64_t addr)
{
    addr ^= addr >> 33;
    addr *= 0xff51afd7ed558ccdull;
    addr ^= addr >> 29;
    return addr;
}

/* The table of an address: the top byte of its hash; the slot within: the low bits. */
static inline struct live_part *part_of(const struct liveset *s, uint64_t addr)
{
    return (struct live_part *)&s->part[mix(addr) >> 56];
}

static inline size_t home(uint64_t addr, size_t cap) { return (size_t)mix(addr) & (cap - 1); }

static struct live_slot *find(const struct liveset *s, uint64_t addr)
{
    const struct live_part *t = part_of(s, addr);
    if (!t->cap)
        return NULL;
    for (size_t i = home(addr, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].addr == addr)
            return &t->slots[i];
        if (!t->slots[i].addr)
            return NULL;
    }
}

int liveset_has(const struct liveset *s, uint64_t addr) { return find(s, addr) != NULL; }

size_t liveset_capacity(const struct liveset *s)
{
    size_t n = 0;
    for (size_t i = 0; i < LIVESET_PARTS; i++)
        n += s->part[i].cap;
    return n;
}

static void place(struct live_slot *slots, size_t cap, const struct live_slot *e)
{
    size_t i = home(e->addr, cap);
    while (slots[i].addr)
        i = (i + 1) & (cap - 1);
    slots[i] = *e;
}

static int grow(struct live_part *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 16;
    struct live_slot *n = slots_alloc(ncap);
    if (!n)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].addr)
            place(n, ncap, &t->slots[i]);
    slots_free(t->slots, t->cap);
    t->slots = n;
    t->cap = ncap;
    return 0;
}

/* Backward-shift deletion: later entries of the probe run move up, no tombstones. */
static void remove_slot(struct live_part *t, struct live_slot *e)
{
    size_t mask = t->cap - 1, i = (size_t)(e - t->slots), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slots[j].addr)
            break;
        size_t h = home(t->slots[j].addr, t->cap);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].addr = 0;
    t->used--;
}

static int push(void **v, size_t *n, size_t *cap, const void *e, size_t size)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *nv = realloc(*v, nc * size);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    memcpy((char *)*v + *n * size, e, size);
    (*n)++;
    return 0;
}

static struct stack_live *stack_entry(struct liveset *s, uint64_t stack, uint32_t *index)
{
    /* Allocations come in runs from one place: the last stack saves a map lookup. */
    if (s->last_index && s->last_stack == stack) {
        if (index)
            *index = (uint32_t)(s->last_index - 1);
        return &s->per_stack[s->last_index - 1];
    }
    int added;
    uint64_t *v = u64map_put(&s->stack_index, stack ? stack : 1, &added);
    if (!v)
        return NULL;
    if (added) {
        if (s->nstacks == s->capstacks) {
            size_t nc = s->capstacks ? s->capstacks * 2 : 256;
            struct stack_live *nv = realloc(s->per_stack, nc * sizeof *nv);
            if (!nv) {
                u64map_del(&s->stack_index, stack ? stack : 1);
                return NULL;
            }
            s->per_stack = nv;
            s->capstacks = nc;
        }
        s->per_stack[s->nstacks] = (struct stack_live){stack, 0, 0, 0, 0, 0};
        *v = ++s->nstacks;
    }
    s->last_stack = stack;
    s->last_index = *v;
    if (index)
        *index = (uint32_t)(*v - 1);
    return &s->per_stack[*v - 1];
}

static uint64_t slot_size(const struct liveset *s, const struct live_slot *e)
{
    if (e->size != UINT32_MAX)
        return e->size;
    uint64_t *v = u64map_get(&s->big_sizes, e->addr);
    return v ? *v : UINT32_MAX;
}

static struct live_block unpack(const struct liveset *s, const struct live_slot *e)
{
    return (struct live_block){e->addr, slot_size(s, e), s->per_stack[e->stack].stack, e->ts};
}

/* Puts sl in the list of changed stacks (growth.c's snapshots), once. */
static void mark_changed(struct liveset *s, struct stack_live *sl)
{
    if (sl->changed || s->changed_all)
        return;
    uint32_t index = (uint32_t)(sl - s->per_stack);
    if (push((void **)&s->changed, &s->nchanged, &s->capchanged, &index, sizeof index) != 0) {
        s->changed_all = 1;
        return;
    }
    sl->changed = 1;
}

static void account_at(struct liveset *s, struct stack_live *sl, uint64_t size, int sign)
{
    if (sl) {
        sl->bytes += sign > 0 ? size : -size;
        sl->blocks += sign > 0 ? 1 : (uint64_t)-1;
        mark_changed(s, sl);
    }
    s->live_count += sign > 0 ? 1 : (uint64_t)-1;
    s->live_bytes += sign > 0 ? size : -size;
}

static void account(struct liveset *s, uint64_t stack, uint64_t size, int sign)
{
    account_at(s, stack_entry(s, stack, NULL), size, sign);
}

/* A pending free of addr at or after ts, the earliest such; removes it. */
static int take_pending(struct liveset *s, uint64_t addr, uint64_t ts)
{
    uint64_t *p = u64map_get(&s->pending, addr);
    if (!p)
        return 0;
    size_t best = (size_t)-1;
    uint64_t best_ts = *p >= ts ? *p : UINT64_MAX;
    for (size_t i = 0; i < s->npending_more; i++) {
        struct ts_entry *e = &s->pending_more[i];
        if (e->addr == addr && e->ts >= ts && e->ts < best_ts) {
            best = i;
            best_ts = e->ts;
        }
    }
    if (best_ts == UINT64_MAX)
        return 0;
    if (best != (size_t)-1) {
        s->pending_more[best] = s->pending_more[--s->npending_more];
        return 1;
    }
    /* The map entry itself: replace it by a further one for the same address, if any. */
    for (size_t i = 0; i < s->npending_more; i++) {
        if (s->pending_more[i].addr == addr) {
            *p = s->pending_more[i].ts;
            s->pending_more[i] = s->pending_more[--s->npending_more];
            return 1;
        }
    }
    u64map_del(&s->pending, addr);
    return 1;
}

/* Puts a block in the table (its address is not there yet). */
static int insert_slot(struct liveset *s, uint64_t addr, uint64_t size, uint32_t index, uint64_t ts)
{
    struct live_part *t = part_of(s, addr);
    if ((t->used + 1) * 4 > t->cap * 3 && grow(t) != 0)
        return -1;
    struct live_slot e = {addr, ts, size < UINT32_MAX ? (uint32_t)size : UINT32_MAX, index};
    if (e.size == UINT32_MAX) {
        uint64_t *v = u64map_put(&s->big_sizes, addr, NULL);
        if (!v)
            return -1;
        *v = size;
    }
    place(t->slots, t->cap, &e);
    t->used++;
    return 0;
}

int liveset_alloc(struct liveset *s, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts)
{
    uint32_t index;
    struct stack_live *sl = stack_entry(s, stack, &index);
    if (!sl)
        return -1;
    sl->allocs++;
    sl->alloc_bytes += size;
    if (s->pending.len && take_pending(s, addr, ts))
        return 0; /* allocated and already freed */
    if (find(s, addr)) {
        struct live_block b = {addr, size, stack, ts};
        if (push((void **)&s->dups, &s->ndups, &s->capdups, &b, sizeof b) != 0)
            return -1;
    } else if (insert_slot(s, addr, size, index, ts) != 0) {
        return -1;
    }
    account_at(s, &s->per_stack[index], size, +1);
    return 0;
}

static void drop_slot(struct liveset *s, struct live_slot *e)
{
    uint64_t size = slot_size(s, e);
    if (e->size == UINT32_MAX)
        u64map_del(&s->big_sizes, e->addr);
    account_at(s, &s->per_stack[e->stack], size, -1);
    remove_slot(part_of(s, e->addr), e);
}

int liveset_free_block(struct liveset *s, uint64_t addr, uint64_t ts) { return liveset_free_block_ex(s, addr, ts, NULL); }

int liveset_free_block_ex(struct liveset *s, uint64_t addr, uint64_t ts, struct live_block *ended)
{
    struct live_slot *e = find(s, addr);
    if (e) {
        /* The latest allocation of addr made before this free. */
        const size_t MAIN = (size_t)-1;
        int have = 0;
        size_t best = MAIN;
        uint64_t best_ts = 0;
        if (e->ts <= ts) {
            have = 1;
            best_ts = e->ts;
        }
        for (size_t i = 0; i < s->ndups; i++) {
            const struct live_block *d = &s->dups[i];
            if (d->addr == addr && d->ts <= ts && (!have || d->ts > best_ts)) {
                have = 1;
                best = i;
                best_ts = d->ts;
            }
        }
        if (have && best != MAIN) {
            if (ended)
                *ended = s->dups[best];
            account(s, s->dups[best].stack, s->dups[best].size, -1);
            s->dups[best] = s->dups[--s->ndups];
            return 1;
        }
        if (have) {
            if (ended)
                *ended = unpack(s, e);
            drop_slot(s, e);
            /* A duplicate of the same address takes its place in the table. */
            for (size_t i = 0; i < s->ndups; i++) {
                if (s->dups[i].addr == addr) {
                    struct live_block d = s->dups[i];
                    s->dups[i] = s->dups[--s->ndups];
                    uint32_t index;
                    if (!stack_entry(s, d.stack, &index) || insert_slot(s, d.addr, d.size, index, d.ts) != 0)
                        return -1;
                    return 1;
                }
            }
            return 1;
        }
    }
    int added;
    uint64_t *p = u64map_put(&s->pending, addr, &added);
    if (!p)
        return -1;
    if (added) {
        *p = ts;
        return 0;
    }
    struct ts_entry t = {addr, ts, 0};
    if (push((void **)&s->pending_more, &s->npending_more, &s->cappending_more, &t, sizeof t) != 0)
        return -1;
    return 0;
}

size_t liveset_pending(const struct liveset *s) { return s->pending.len + s->npending_more; }

void liveset_each(const struct liveset *s, void (*fn)(const struct live_block *, void *), void *arg)
{
    for (size_t p = 0; p < LIVESET_PARTS; p++) {
        const struct live_part *t = &s->part[p];
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i].addr) {
                struct live_block b = unpack(s, &t->slots[i]);
                fn(&b, arg);
            }
        }
    }
    for (size_t i = 0; i < s->ndups; i++)
        fn(&s->dups[i], arg);
}

void liveset_clear_changed(struct liveset *s)
{
    for (size_t i = 0; i < s->nchanged; i++)
        s->per_stack[s->changed[i]].changed = 0;
    s->nchanged = 0;
    if (s->changed_all) /* every stack was taken as changed: none is in the list */
        for (size_t i = 0; i < s->nstacks; i++)
            s->per_stack[i].changed = 0;
    s->changed_all = 0;
}
