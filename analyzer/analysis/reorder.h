/*
 * Allocation events of all threads of a process, put back in the order they happened.
 *
 * The analyzer reads each thread's records in order, but the threads one after another, so a
 * free made on one thread can be read before the allocation, on another thread, that it ends:
 * an address that moved between threads then looks live twice, and matching a free to "the
 * latest allocation of its address read so far" can pick the wrong lifetime (a false leak).
 * Here events wait, one queue per thread (each already in time order), until a cut says that
 * every event stamped at or before time W has been read; the events up to W then go out merged
 * by their stamps. The analyzer makes a cut after every chunk a pass hands over (the least first
 * unread stamp of the chunks still to come, and the pass's start), so little waits at a time.
 *
 * Why a cut is safe: the shim commits an event's record before the block can reach another
 * thread (a free's record before the block goes back to the allocator, an allocation's before
 * malloc returns), so whatever another thread did to the same address afterwards was stamped
 * later and was committed later. An event stamped before W but committed after the cut was
 * read arrives in a later round; nothing that depends on it can have happened before it was
 * committed, so applying it late changes nothing. W is the reader's clock when it began reading,
 * minus a margin for the few hundred cycles a stamp can be read ahead of its event.
 */
#ifndef CGOSCOPE_REORDER_H
#define CGOSCOPE_REORDER_H

#include <stddef.h>
#include <stdint.h>

#include "util/u64map.h"

struct reorder_event {
    uint64_t ts;  /* the time the event is ordered by (a realloc: its allocation's stamp) */
    uint64_t seq; /* arrival order: ties keep the reading order */
    uint8_t rec[56]; /* the record itself (ALLOC, FREE or REALLOC, at most 56 bytes; the rest unset) */
};

struct reorder_stream {
    uint32_t tid;
    struct reorder_event *q; /* ring buffer */
    size_t head, n, cap;
};

struct reorder {
    struct reorder_stream *s;
    size_t ns, caps;
    struct u64map index; /* tid + 1 -> stream index + 1 */
    size_t last;         /* the stream pushed to last, + 1 (0: none) */
    uint64_t seq;
    size_t held;    /* events waiting, over all streams */
    uint32_t *heap; /* stream indices, for merging (reorder_release) */
    size_t caph;
};

typedef int (*reorder_apply_fn)(void *arg, uint32_t tid, const uint8_t *rec, size_t size);

/* The stamp of the first allocation event (ALLOC, FREE, REALLOC: the field after the header,
 * REALLOC's being its free's, as REALLOC_BEGIN's, which the REALLOC record follows) in len bytes of records, or UINT64_MAX: what bounds a cut for a chunk
 * not read yet. Stops at a record that does not fit. */
uint64_t reorder_first_stamp(const uint8_t *recs, size_t len);

void reorder_init(struct reorder *r);
void reorder_free(struct reorder *r);
/* Queues one record (size <= 56) read from thread tid, stamped ts. -1: out of memory. */
int reorder_push(struct reorder *r, uint32_t tid, uint64_t ts, const uint8_t *rec, size_t size);
/* Hands every queued event stamped at or before w to apply, in stamp order. Returns the first
 * non-zero result of apply (and stops there), else 0. */
int reorder_release(struct reorder *r, uint64_t w, reorder_apply_fn apply, void *arg);

#endif
