#define _GNU_SOURCE
#include "channel.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

int channel_create(struct channel *c, uint32_t nchunks, uint32_t chunk_size, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    size_t header = 4096;
    size_t descs = ((size_t)nchunks * sizeof(struct cgs_chunk_desc) + 4095) & ~(size_t)4095;
    c->size = header + descs + (size_t)nchunks * chunk_size;
    /* A memfd: nobody outside this process tree can open it (architecture invariant 7). */
    c->fd = memfd_create("cgoscope-channel", MFD_CLOEXEC);
    if (c->fd < 0 || ftruncate(c->fd, (off_t)c->size) != 0) {
        snprintf(err, errlen, "cannot create the shared-memory channel: %s", strerror(errno));
        channel_destroy(c);
        return -1;
    }
    void *m = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    c->consumed = calloc(nchunks, sizeof *c->consumed);
    c->copy = malloc(chunk_size);
    c->order = malloc(nchunks * sizeof *c->order);
    if (m == MAP_FAILED || !c->consumed || !c->copy || !c->order) {
        snprintf(err, errlen, "cannot map the shared-memory channel (%zu MiB): %s", c->size >> 20, strerror(errno));
        if (m != MAP_FAILED)
            munmap(m, c->size);
        channel_destroy(c);
        return -1;
    }
    c->h = m;
    if (getrandom(&c->token, sizeof c->token, 0) != sizeof c->token)
        c->token = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)m;
    c->h->magic = CGS_SHM_MAGIC;
    c->h->version = CGS_FORMAT_VERSION;
    c->h->header_size = (uint32_t)header;
    c->h->token = c->token;
    c->h->nchunks = nchunks;
    c->h->chunk_size = chunk_size;
    c->h->chunks_offset = header + descs;
    c->h->analyzer_pid = (uint32_t)getpid();
    c->desc = (struct cgs_chunk_desc *)((uint8_t *)m + header);
    c->chunks = (uint8_t *)m + header + descs;
    return 0;
}

void channel_spec(const struct channel *c, int fd, char *out, size_t outlen)
{
    /* the analyzer's pid, not getpid(): this runs in the forked child before exec */
    snprintf(out, outlen, "%d:%llx:%u:%d", fd, (unsigned long long)c->token, c->h->analyzer_pid, c->fd);
}

void channel_destroy(struct channel *c)
{
    if (c->h) {
        atomic_store(&c->h->analyzer_gone, 1);
        munmap(c->h, c->size);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->consumed);
    free(c->copy);
    free(c->order);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static struct cgs_chunk_desc *sort_desc;

static int by_seq(const void *a, const void *b)
{
    uint64_t x = atomic_load_explicit(&sort_desc[*(const uint32_t *)a].seq, memory_order_relaxed);
    uint64_t y = atomic_load_explicit(&sort_desc[*(const uint32_t *)b].seq, memory_order_relaxed);
    return x < y ? -1 : x > y;
}

size_t channel_drain(struct channel *c, channel_sink sink, void *arg)
{
    uint32_t n = c->h->nchunks, chunk_size = c->h->chunk_size, active = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t st = atomic_load_explicit(&c->desc[i].state, memory_order_acquire);
        if ((st == CGS_CHUNK_WRITING || st == CGS_CHUNK_FULL) && c->desc[i].kind == CGS_KIND_RECORDS)
            c->order[active++] = i;
    }
    sort_desc = c->desc;
    qsort(c->order, active, sizeof *c->order, by_seq);
    size_t total = 0;
    for (uint32_t k = 0; k < active; k++) {
        uint32_t i = c->order[k];
        struct cgs_chunk_desc *d = &c->desc[i];
        /* State first: once FULL, `committed` is final (the producer stored it before). */
        uint32_t st = atomic_load_explicit(&d->state, memory_order_acquire);
        uint32_t end = atomic_load_explicit(&d->committed, memory_order_acquire);
        if (end > chunk_size)
            end = chunk_size; /* a corrupt count: read no further than the chunk */
        if (end > c->consumed[i]) {
            size_t len = end - c->consumed[i];
            memcpy(c->copy, c->chunks + (size_t)i * chunk_size + c->consumed[i], len);
            sink(arg, d->pid, d->tid, c->copy, len);
            c->consumed[i] = end;
            total += len;
        }
        if (st == CGS_CHUNK_FULL) {
            c->consumed[i] = 0;
            atomic_store_explicit(&d->committed, 0, memory_order_relaxed);
            atomic_store_explicit(&d->state, CGS_CHUNK_FREE, memory_order_release);
        }
    }
    return total;
}

void channel_each_stats(struct channel *c, channel_stats_fn fn, void *arg)
{
    uint32_t n = c->h->nchunks, chunk_size = c->h->chunk_size;
    if (chunk_size < sizeof(struct cgs_stats_chunk))
        return;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t st = atomic_load_explicit(&c->desc[i].state, memory_order_acquire);
        if (st != CGS_CHUNK_WRITING || c->desc[i].kind != CGS_KIND_STATS)
            continue;
        memcpy(c->copy, c->chunks + (size_t)i * chunk_size, sizeof(struct cgs_stats_chunk));
        fn(arg, c->desc[i].pid, (const struct cgs_stats_chunk *)c->copy);
    }
}
