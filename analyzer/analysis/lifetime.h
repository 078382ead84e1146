/*
 * Lifetime errors across the boundary: a free (or realloc) of an address that is not a live
 * block. docs/lifetime.md explains what is found, how, and what the bounds mean.
 *
 * The live set (liveset.h) keeps such a free "pending": records of different threads may arrive
 * out of order, and a free read before the allocation it ends waits for it. Whatever is still
 * pending when the process is finished (after the last cut) freed an address that was not live:
 *
 *  - double_free: the address was a block that was freed before (this module remembers the last
 *    LIFETIME_RECENT frees of each process: the block's allocation stack and size, and the
 *    free's stack);
 *  - invalid_free: the address was never returned by the allocator (Go memory, a stack address,
 *    a pointer into the middle of a block, which is told apart and given the block's stack).
 *
 * The pending frees are mirrored here with their stacks (the live set keeps only their stamps),
 * under the same rule the live set applies, so both always hold the same frees.
 */
#ifndef CGOSCOPE_LIFETIME_H
#define CGOSCOPE_LIFETIME_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/liveset.h"
#include "util/u64map.h"

/* Frees remembered per process to tell a double free from an invalid one: a double free whose
 * first free is more than this many frees older is reported as invalid_free (docs/lifetime.md). */
#define LIFETIME_RECENT 65536u
/* Errors kept per process; the rest are counted in errors_dropped. */
#define LIFETIME_MAX_ERRORS 1000u

enum lifetime_kind {
    LT_DOUBLE_FREE = 1,
    LT_INVALID_FREE = 2,
};

struct lt_recent {
    uint64_t addr, size, alloc_stack, free_stack, free_ts;
};

struct lt_pending {
    uint64_t addr, ts, stack;
    int realloc; /* the free half of a realloc */
    uint64_t next; /* index + 1 of the next pending free of the same address, 0: none */
    /* The latest free of the address before this one, when it went pending (a double free's
     * first free), copied: the ring may lose it before the process ends. */
    int have_first;
    struct lt_recent first;
};

/* A realloc seen begin (REALLOC_BEGIN) and not end, or one that failed: the old address, the
 * stamp before the real realloc, the realloc's stack. */
struct lt_realloc {
    uint32_t tid;
    uint64_t addr, ts, stack;
};

/* Reallocs to check when the process ends (failed ones, and those it died in), at most. */
#define LIFETIME_MAX_CHECKS 65536u

struct lifetime_error {
    int kind;    /* enum lifetime_kind */
    int realloc; /* the bad free was a realloc's */
    uint64_t addr;
    uint64_t size;   /* the block's (double free; interior: the enclosing block's), 0: unknown */
    uint64_t offset; /* interior pointer: bytes into the enclosing block (interior set) */
    int interior;
    uint64_t stack, alloc_stack, first_free_stack; /* 0: not known */
    uint64_t ts;
};

struct lifetime {
    struct lt_recent *ring; /* up to LIFETIME_RECENT entries, from the first free on */
    size_t ring_cap;
    uint64_t nseq;          /* frees noted so far (the newest is ring[(nseq - 1) % ring_cap]) */
    uint32_t scans;         /* searches of the ring so far (bounded) */
    struct lt_pending *pend;
    size_t npend, cappend;
    uint64_t free_list;     /* index + 1 of an unused pend slot, chained through next */
    struct u64map pend_head; /* addr -> index + 1 of its first pending free */
    struct u64map free_stack_of; /* tid + 1 -> the stack of its last FREE record */
    uint64_t fs_key, fs_stack;   /* the same for the thread read last (fs_key: tid + 1, 0: none) */
    struct lifetime_error *errors;
    size_t nerrors;
    uint64_t errors_dropped;
    int finished;
    int forked; /* a fork() child: a free of an unknown address may be of its parent's block */
    uint64_t unknown; /* frees of unknown addresses not reported (a fork() child's) */
    struct lt_realloc *open; /* reallocs begun and not ended yet: one per thread at most */
    size_t nopen, capopen;
    struct lt_realloc *checks; /* reallocs that failed or never returned, checked at the end */
    size_t nchecks, capchecks;
    uint64_t checks_dropped; /* past LIFETIME_MAX_CHECKS */
};

void lifetime_init(struct lifetime *lt);
void lifetime_free(struct lifetime *lt);

/* The live set's allocation and free, with the bookkeeping of this module (process.c calls these
 * instead of liveset_alloc and liveset_free_block). Return as those do. */
int lifetime_alloc(struct lifetime *lt, struct liveset *live, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts);
int lifetime_free_block(struct lifetime *lt, struct liveset *live, uint64_t addr, uint64_t ts, uint64_t stack,
                        int is_realloc);

/* A realloc of addr began on thread tid (a REALLOC_BEGIN record; docs/lifetime.md). -1: out of
 * memory. */
int lifetime_realloc_begin(struct lifetime *lt, uint32_t tid, uint64_t addr, uint64_t ts, uint64_t stack);
/* The next allocation event of thread tid after a REALLOC_BEGIN ends that realloc: failed (a
 * REALLOC_FAIL record of addr: the block was not touched, so whether it was one is checked at the
 * end), or not (a REALLOC or FREE record, which the live set takes as every other). Call only when
 * lt->nopen. */
void lifetime_realloc_end(struct lifetime *lt, uint32_t tid, int failed, uint64_t addr);

/* After the last cut: the frees still pending become errors. Idempotent. A realloc still open
 * (the process died in it) or one that failed is an error when its address was not a live block
 * then: not live at the end, and nothing freed at that address since (else it is left out).
 * (Records lost make them unreliable: an unknown address may be a block whose allocation was
 * lost; the report leaves them out then, docs/lifetime.md.) */
void lifetime_finish(struct lifetime *lt, const struct liveset *live);

/* The stack of a FREE record read from thread tid, in the thread's order: full (the record has a
 * stack field), or else same (CGS_FREE_SAME_STACK: the thread's previous FREE's) or none (0). */
uint64_t lifetime_free_stack(struct lifetime *lt, uint32_t tid, int full, int same, uint64_t stack);

const char *lifetime_kind_name(int kind);

#endif
