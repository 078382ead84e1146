/*
 * Live C memory over time, per stack, to tell a leak in a long-running program from memory
 * that is simply held: what leaks grows. Snapshots of every stack's live bytes and blocks are
 * kept in a bounded table: at most GROWTH_POINTS snapshots; when it is full, every other one is
 * dropped and snapshots are taken half as often, so older time is kept at coarser resolution and
 * memory stays bounded however long the program runs.
 */
#ifndef CGOSCOPE_GROWTH_H
#define CGOSCOPE_GROWTH_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/liveset.h"
#include "util/u64map.h"

#define GROWTH_POINTS 256
#define GROWTH_MAX_SERIES 4096

struct growth_series {
    uint64_t stack;
    uint32_t first; /* index in the time table of its first value */
    uint32_t n;
    uint64_t bytes[GROWTH_POINTS];
    uint64_t blocks[GROWTH_POINTS];
};

struct growth {
    uint64_t interval;  /* ticks between snapshots (doubles each time the table is thinned) */
    uint64_t next;      /* clock of the next snapshot; 0 before the first */
    uint64_t times[GROWTH_POINTS];
    uint64_t total_bytes[GROWTH_POINTS], total_blocks[GROWTH_POINTS];
    uint32_t n;
    struct growth_series **series;
    size_t nseries;
    struct u64map index; /* stack -> index+1 */
    uint64_t untracked_stacks; /* stacks beyond GROWTH_MAX_SERIES: only in the totals */
};

void growth_init(struct growth *g, uint64_t interval_ticks);
void growth_free(struct growth *g);
/* Takes a snapshot if `now` has reached the next one. */
void growth_tick(struct growth *g, struct liveset *live, uint64_t now);
/* Takes one unconditionally (the program ended). */
void growth_snapshot(struct growth *g, struct liveset *live, uint64_t now);
/* Writes out the values of series that lag (unchanged since their last value) and hold
 * something: before reading the series (growth_sites reads only those). process_finish does it
 * after the last snapshot. */
void growth_settle(struct growth *g);

/* The robust trend of a series: Theil-Sen slope (median of pairwise slopes) in units per
 * second, from times in ns. */
double growth_slope(const uint64_t *t_ns, const uint64_t *v, size_t n);

struct growth_verdict {
    int growing;
    double bytes_per_s, blocks_per_s;
};

/* Is this series growing? The rule (docs/growth.md): at least 5 snapshots spanning at least a
 * second; a positive Theil-Sen slope; the later half of the snapshots holds more than the
 * earlier half (by median); and the trend adds up, over the span, to at least 4 KiB and to at
 * least a fifth of the bytes the site holds at the end. Memory filled early and then held has a
 * zero slope; a cache that fills up and stops fails the later-half test. */
struct growth_verdict growth_judge(const uint64_t *t_ns, const uint64_t *bytes, const uint64_t *blocks, size_t n);

#endif
