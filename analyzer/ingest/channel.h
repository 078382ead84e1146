/* The analyzer's side of the shared-memory channel (see include/cgoscope/record.h). */
#ifndef CGOSCOPE_CHANNEL_H
#define CGOSCOPE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "cgoscope/record.h"
#include "util/u64map.h"

struct channel {
    int fd;
    size_t size;
    uint64_t token;
    struct cgs_shm_header *h;
    /* The sizes this analyzer chose, never read back from the header: the traced programs can
     * write to it, and every array here was sized with these (docs/architecture.md, invariant 7). */
    uint32_t nchunks, chunk_size;
    struct cgs_chunk_desc *desc;
    uint8_t *chunks;
    uint32_t *consumed; /* per chunk: bytes already handed to the sink */
    uint8_t *copy;      /* private copy of what is being read: the program cannot change it under us */
    uint32_t *order;
    uint32_t *retired; /* chunks of an ended process or image, sorted for delivery (retire) */
    /* Chunks of a process that ended, or of a program image that exec replaced, are never
     * marked FULL: the analyzer frees them itself (channel_drain). */
    struct u64map images;   /* pid -> the newest program image seen writing in it */
    struct u64map liveness; /* pid -> 1 alive, 2 gone: this round's answers */
    uint64_t last_reap_ns;
    void (*dead_stats)(void *arg, uint32_t pid, const struct cgs_stats_chunk *stats);
    void *dead_stats_arg;
    /* Called after each chunk a pass hands over, with the least stamp of an allocation event
     * still unread in the chunks the pass has yet to reach (UINT64_MAX: none). */
    void (*reached)(void *arg, uint64_t bound);
    void *reached_arg;
    uint64_t *bounds;  /* per pass: suffix minima of the first unread stamps, in claim order */
    uint64_t *rbounds; /* the same for the chunks of an ended process (retire) */
    /* Processes found ended since the caller last emptied this (all their records handed over):
     * cmd_run scans their memory then (reach.h). */
    uint32_t *ended;
    size_t nended, capended;
    /* The caller's last pass read nothing: channel_wait then sleeps even when the count of FULL
     * chunks says there is work (it can be ahead of their state, or off after a crash). */
    int drained_nothing;
};

/* Called with each run of new records, in claim order per thread. */
typedef void (*channel_sink)(void *arg, uint32_t pid, uint32_t tid, const uint8_t *data, size_t len);

/* A launcher's channel of nchunks chunks of CGS_CHUNK_SIZE (fewer under CGOSCOPE_CHANNEL_CHUNKS or
 * an address-space limit), its header laid out by cgs_header_init. */
int channel_create(struct channel *c, uint32_t nchunks, char *err, size_t errlen);
/* The CGOSCOPE_CHANNEL value for a program that inherits the descriptor as fd. */
void channel_spec(const struct channel *c, int fd, char *out, size_t outlen);
/* Hands every committed, unread record to sink and frees drained chunks. Returns bytes read.
 * Chunks of a process that has ended, and of a program image that exec replaced, are drained and
 * freed too; their threads' statistics go to the function given to channel_on_dead_stats (without
 * one, statistics chunks stay until channel_each_stats). A new program image in a pid is handed
 * to sink only after everything of the previous one. */
size_t channel_drain(struct channel *c, channel_sink sink, void *arg);
/* The same, stopping after the chunk that brings it past max_bytes; *bound is then the least stamp
 * of an allocation event still unread in the chunks it did not reach (else UINT64_MAX). */
size_t channel_drain_some(struct channel *c, channel_sink sink, void *arg, size_t max_bytes, uint64_t *bound);
void channel_destroy(struct channel *c);
/* Sleeps until a producer marks a chunk FULL or waits for a free one (the shim rings the doorbell,
 * record.h analyzer_sleeping), channel_wake is called, a signal arrives or timeout_ns pass;
 * returns at once when a FULL chunk is waiting. Returns 1 when it was woken. */
int channel_wait(struct channel *c, uint64_t timeout_ns);
/* Ends a channel_wait in progress (from another thread: a process ended). */
void channel_wake(struct channel *c);

typedef void (*channel_stats_fn)(void *arg, uint32_t pid, const struct cgs_stats_chunk *stats);
/* Where channel_drain hands the statistics of processes (and program images) that ended. */
void channel_on_dead_stats(struct channel *c, channel_stats_fn fn, void *arg);
/* Hands each thread's statistics chunk (a private copy) to fn. */
void channel_each_stats(struct channel *c, channel_stats_fn fn, void *arg);

#endif
