#include "liveset.h"

#include <stdlib.h>
#include <string.h>

void liveset_init(struct liveset *s)
{
    memset(s, 0, sizeof *s);
    u64map_init(&s->by_addr);
    u64map_init(&s->pending);
    u64map_init(&s->stack_index);
}

void liveset_free(struct liveset *s)
{
    u64map_free(&s->by_addr);
    u64map_free(&s->pending);
    u64map_free(&s->stack_index);
    free(s->per_stack);
    free(s->blocks);
    free(s->dups);
    free(s->pending_more);
    memset(s, 0, sizeof *s);
}

static int push_ts(struct ts_entry **v, size_t *n, size_t *cap, struct ts_entry e)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct ts_entry *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = e;
    return 0;
}

static struct stack_live *stack_entry(struct liveset *s, uint64_t stack)
{
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
        s->per_stack[s->nstacks] = (struct stack_live){stack, 0, 0, 0, 0};
        *v = ++s->nstacks;
    }
    return &s->per_stack[*v - 1];
}

static int64_t new_block(struct liveset *s, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts)
{
    struct stack_live *sl = stack_entry(s, stack);
    if (!sl)
        return -1;
    sl->bytes += size;
    sl->blocks++;
    uint64_t idx;
    if (s->free_head) {
        idx = s->free_head - 1;
        s->free_head = s->blocks[idx].size;
    } else {
        if (s->nblocks == s->capblocks) {
            size_t nc = s->capblocks ? s->capblocks * 2 : 1024;
            struct live_block *nb = realloc(s->blocks, nc * sizeof *nb);
            if (!nb)
                return -1;
            s->blocks = nb;
            s->capblocks = nc;
        }
        idx = s->nblocks++;
    }
    s->blocks[idx] = (struct live_block){addr, size, stack, ts};
    s->live_count++;
    s->live_bytes += size;
    return (int64_t)idx;
}

static void drop_block(struct liveset *s, uint64_t idx)
{
    uint64_t *v = u64map_get(&s->stack_index, s->blocks[idx].stack ? s->blocks[idx].stack : 1);
    if (v) {
        struct stack_live *sl = &s->per_stack[*v - 1];
        sl->bytes -= s->blocks[idx].size;
        sl->blocks--;
    }
    s->live_count--;
    s->live_bytes -= s->blocks[idx].size;
    s->blocks[idx].addr = 0;
    s->blocks[idx].size = s->free_head;
    s->free_head = idx + 1;
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

int liveset_alloc(struct liveset *s, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts)
{
    struct stack_live *sl = stack_entry(s, stack);
    if (!sl)
        return -1;
    sl->allocs++;
    sl->alloc_bytes += size;
    if (s->pending.len && take_pending(s, addr, ts))
        return 0; /* allocated and already freed */
    int64_t idx = new_block(s, addr, size, stack, ts);
    if (idx < 0)
        return -1;
    int added;
    uint64_t *v = u64map_put(&s->by_addr, addr, &added);
    if (!v)
        return -1;
    if (added) {
        *v = (uint64_t)idx;
        return 0;
    }
    return push_ts(&s->dups, &s->ndups, &s->capdups, (struct ts_entry){addr, ts, (uint64_t)idx});
}

int liveset_free_block(struct liveset *s, uint64_t addr, uint64_t ts)
{
    uint64_t *v = u64map_get(&s->by_addr, addr);
    if (v) {
        /* The latest allocation of addr made before this free. */
        const size_t MAIN = (size_t)-1;
        int have = 0;
        size_t best = MAIN;
        uint64_t best_ts = 0;
        if (s->blocks[*v].ts <= ts) {
            have = 1;
            best_ts = s->blocks[*v].ts;
        }
        for (size_t i = 0; i < s->ndups; i++) {
            const struct ts_entry *e = &s->dups[i];
            if (e->addr == addr && e->ts <= ts && (!have || e->ts > best_ts)) {
                have = 1;
                best = i;
                best_ts = e->ts;
            }
        }
        if (have && best != MAIN) {
            drop_block(s, s->dups[best].idx);
            s->dups[best] = s->dups[--s->ndups];
            return 1;
        }
        if (have) {
            drop_block(s, *v);
            for (size_t i = 0; i < s->ndups; i++) {
                if (s->dups[i].addr == addr) {
                    *v = s->dups[i].idx;
                    s->dups[i] = s->dups[--s->ndups];
                    return 1;
                }
            }
            u64map_del(&s->by_addr, addr);
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
    if (push_ts(&s->pending_more, &s->npending_more, &s->cappending_more, (struct ts_entry){addr, ts, 0}) != 0)
        return -1;
    return 0;
}

size_t liveset_pending(const struct liveset *s) { return s->pending.len + s->npending_more; }

void liveset_each(const struct liveset *s, void (*fn)(const struct live_block *, void *), void *arg)
{
    for (size_t i = 0; i < s->nblocks; i++)
        if (s->blocks[i].addr)
            fn(&s->blocks[i], arg);
}
