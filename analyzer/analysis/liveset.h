/*
 * The blocks a process holds right now. Records from different threads reach the analyzer in
 * no particular order across threads, so an address can show up allocated twice (another
 * thread's free of it has not been read yet) or freed before its allocation has been read.
 * Timestamps settle both: a free ends the latest allocation of its address made before it,
 * and a free read early waits until the allocation it ends is read.
 *
 * Memory: one 24-byte slot per live block in open-addressing tables (kept at most 3/4 full),
 * so about 32-48 bytes per live allocation whatever the number of events. The blocks are spread
 * over 256 tables by address hash, each growing on its own: when one doubles, the old and the
 * new copy of only that 1/256th coexist, so the peak stays close to the steady state.
 */
#ifndef CGOSCOPE_LIVESET_H
#define CGOSCOPE_LIVESET_H

#include <stddef.h>
#include <stdint.h>

#include "util/u64map.h"

struct live_block {
    uint64_t addr;
    uint64_t size;
    uint64_t stack;
    uint64_t ts;
};

/* Live bytes and blocks of one stack, kept up to date with every allocation and free. */
struct stack_live {
    uint64_t stack;
    uint64_t bytes, blocks;       /* live now */
    uint64_t allocs, alloc_bytes; /* every allocation ever made from this stack */
    uint32_t changed;             /* in liveset.changed */
};

struct live_slot {
    uint64_t addr; /* 0: empty */
    uint64_t ts;
    uint32_t size;  /* UINT32_MAX: the size is in big_sizes */
    uint32_t stack; /* index into per_stack */
};

struct ts_entry {
    uint64_t addr;
    uint64_t ts;
    uint64_t idx; /* duplicates: index into dup_blocks */
};

#define LIVESET_PARTS 256

struct live_part {
    struct live_slot *slots;
    size_t cap, used; /* cap is a power of two (or 0) */
};

struct liveset {
    struct live_part part[LIVESET_PARTS];
    struct u64map big_sizes; /* addr -> size, for blocks of 4 GiB or more */
    struct u64map stack_index; /* stack -> index+1 into per_stack */
    uint64_t last_stack;       /* the stack looked up last, and its index+1 (0: none) */
    uint64_t last_index;
    struct stack_live *per_stack;
    size_t nstacks, capstacks;
    struct live_block *dups;   /* further live blocks at an address already in the table */
    size_t ndups, capdups;
    struct u64map pending;     /* addr -> ts of a free read before its allocation */
    struct ts_entry *pending_more;
    size_t npending_more, cappending_more;
    uint64_t live_count, live_bytes;
    /* per_stack indices whose live memory changed since liveset_clear_changed: growth.c's
     * snapshots visit these, not every stack (tens of thousands in a real test suite). */
    uint32_t *changed;
    size_t nchanged, capchanged;
    int changed_all; /* the list could not grow: take every stack as changed */
};

void liveset_init(struct liveset *s);
void liveset_free(struct liveset *s);
/* Returns -1 when memory runs out. */
int liveset_alloc(struct liveset *s, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts);
/* Returns 1 if a live block ended, 0 if the free was kept pending, -1 on memory exhaustion. */
int liveset_free_block(struct liveset *s, uint64_t addr, uint64_t ts);
/* The same; when a live block ended, *ended (if given) is that block (lifetime.c). */
int liveset_free_block_ex(struct liveset *s, uint64_t addr, uint64_t ts, struct live_block *ended);
size_t liveset_pending(const struct liveset *s);
/* Empties the list of changed stacks. */
void liveset_clear_changed(struct liveset *s);
/* Is a block live at addr (in the table proper)? */
int liveset_has(const struct liveset *s, uint64_t addr);
/* Slots allocated over all the tables (for tests and memory figures). */
size_t liveset_capacity(const struct liveset *s);
/* Calls fn for every live block. */
void liveset_each(const struct liveset *s, void (*fn)(const struct live_block *, void *), void *arg);

#endif
