/*
 * The producer side of the shared-memory channel. The launcher creates a memfd, the shim maps
 * it and closes the descriptor, so the program's descriptor table is left as it was. Each thread
 * claims a chunk and appends whole records to it, publishing each with a release store of
 * `committed`: a record is visible to the analyzer before the call that made it returns, and
 * stays visible whatever happens to the process afterwards (exit_group, SIGKILL, a crash).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

static struct cgs_shm_header *hdr;
static struct cgs_chunk_desc *descs;
static uint8_t *chunks;
static uint32_t chunk_size, nchunks;
static pthread_key_t exit_key;
static int channel_dead; /* the analyzer is gone: stop waiting, count what is dropped */

static void on_thread_exit(void *unused)
{
    (void)unused;
    cgs_thread_done(&cgs_tls);
    cgs_callstats_thread_exit(&cgs_tls);
}

static int parse_channel(const char *s, int *fd, uint64_t *token)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != ':' || v < 0 || v > 1 << 20)
        return -1;
    *fd = (int)v;
    const char *t = end + 1;
    *token = strtoull(t, &end, 16);
    return end == t ? -1 : 0;
}

int cgs_channel_attach(void)
{
    const char *spec = getenv(CGS_ENV_CHANNEL);
    int fd;
    uint64_t token;
    if (!spec || parse_channel(spec, &fd, &token) != 0)
        return -1;

    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof *hdr)
        return -1;
    struct cgs_shm_header *h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return -1;
    uint64_t need = h->chunks_offset + (uint64_t)h->nchunks * h->chunk_size;
    if (h->magic != CGS_SHM_MAGIC || h->version != CGS_FORMAT_VERSION || h->token != token ||
        need > (uint64_t)st.st_size || h->chunk_size < 4096 || (h->chunk_size & 7)) {
        munmap(h, (size_t)st.st_size);
        return -1;
    }
    /* Only the first process to attach owns the channel; a child that inherited the variable
     * stays untraced rather than writing into its parent's chunks. */
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&h->owner_pid, &zero, (uint32_t)getpid())) {
        munmap(h, (size_t)st.st_size);
        return -1;
    }
    close(fd);

    hdr = h;
    descs = (struct cgs_chunk_desc *)((uint8_t *)h + h->header_size);
    chunks = (uint8_t *)h + h->chunks_offset;
    chunk_size = h->chunk_size;
    nchunks = h->nchunks;
    hdr->clock = (uint32_t)cgs_clock_kind;
    pthread_key_create(&exit_key, on_thread_exit);
    return 0;
}

void cgs_channel_detach_after_fork(void)
{
    /* The child shares the parent's mapping: writing there would corrupt the parent's chunks. */
    cgs_ready = 0;
    cgs_tls.chunk = -1;
    cgs_callstats_after_fork();
}

void cgs_count_lost(uint64_t n)
{
    if (hdr)
        atomic_fetch_add_explicit(&hdr->events_lost, n, memory_order_relaxed);
}

static int analyzer_alive(void)
{
    if (atomic_load_explicit(&hdr->analyzer_gone, memory_order_acquire))
        return 0;
    if (hdr->analyzer_pid && kill((pid_t)hdr->analyzer_pid, 0) != 0 && errno == ESRCH)
        return 0;
    return 1;
}

/* Claims a free chunk for this thread; returns its index, or -1 when the analyzer is gone. */
static int32_t claim(struct cgs_thread *t, uint32_t kind)
{
    for (unsigned spins = 0;; spins++) {
        for (uint32_t i = 0; i < nchunks; i++) {
            uint32_t expect = CGS_CHUNK_FREE;
            if (atomic_load_explicit(&descs[i].state, memory_order_relaxed) != CGS_CHUNK_FREE)
                continue;
            if (!atomic_compare_exchange_strong(&descs[i].state, &expect, CGS_CHUNK_CLAIMED))
                continue;
            if (!t->tid)
                t->tid = (uint32_t)syscall(SYS_gettid);
            descs[i].tid = t->tid;
            descs[i].kind = kind;
            atomic_store_explicit(&descs[i].committed, 0, memory_order_relaxed);
            atomic_store_explicit(&descs[i].seq,
                                  atomic_fetch_add(&hdr->chunk_seq, 1) + 1, memory_order_relaxed);
            atomic_store_explicit(&descs[i].state, CGS_CHUNK_WRITING, memory_order_release);
            if (!t->exit_key_set) {
                t->exit_key_set = 1;
                pthread_setspecific(exit_key, (void *)1);
            }
            return (int32_t)i;
        }
        /* Every chunk is in use: wait for the analyzer to drain one (invariant 1: wait, do
         * not drop), unless it is gone, in which case waiting would hang the program. */
        if (spins == 0)
            atomic_fetch_add_explicit(&hdr->producer_waits, 1, memory_order_relaxed);
        if ((spins & 255) == 255 && !analyzer_alive()) {
            channel_dead = 1;
            return -1;
        }
        struct timespec d = {0, 50 * 1000};
        nanosleep(&d, NULL);
    }
}

void *cgs_reserve(struct cgs_thread *t, uint32_t size)
{
    if (CGS_LIKELY(t->chunk >= 0 && t->off + size <= chunk_size))
        return chunks + (size_t)t->chunk * chunk_size + t->off;
    if (size > chunk_size || channel_dead) {
        cgs_count_lost(1);
        return NULL;
    }
    cgs_thread_done(t);
    int32_t i = claim(t, CGS_KIND_RECORDS);
    if (i < 0) {
        cgs_count_lost(1);
        return NULL;
    }
    t->chunk = i;
    t->off = 0;
    return chunks + (size_t)i * chunk_size;
}

void *cgs_claim_stats_chunk(struct cgs_thread *t)
{
    if (!descs || channel_dead || chunk_size < sizeof(struct cgs_stats_chunk))
        return NULL;
    int32_t i = claim(t, CGS_KIND_STATS);
    if (i < 0)
        return NULL;
    struct cgs_stats_chunk *c = (struct cgs_stats_chunk *)(chunks + (size_t)i * chunk_size);
    memset(c, 0, sizeof *c);
    c->tid = t->tid;
    c->gap_min = UINT64_MAX;
    c->magic = CGS_STATS_MAGIC;
    return c;
}

void cgs_commit(struct cgs_thread *t, uint32_t size)
{
    t->off += size;
    atomic_store_explicit(&descs[t->chunk].committed, t->off, memory_order_release);
}

void cgs_thread_done(struct cgs_thread *t)
{
    if (t->chunk < 0 || !descs)
        return;
    atomic_store_explicit(&descs[t->chunk].state, CGS_CHUNK_FULL, memory_order_release);
    t->chunk = -1;
    t->off = 0;
}
