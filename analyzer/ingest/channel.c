#define _GNU_SOURCE
#include "ingest/channel.h"
#include "util/clock.h"
#include "analysis/reorder.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define REAP_EVERY_NS 100000000ull /* look for processes that ended at most every 100 ms */

int channel_create(struct channel *c, uint32_t nchunks, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    const char *small = getenv("CGOSCOPE_CHANNEL_CHUNKS"); /* tests: a channel that runs dry */
    if (small && atol(small) >= 16 && (uint32_t)atol(small) < nchunks)
        nchunks = (uint32_t)atol(small);
    /* Every traced process maps the whole channel: under an address-space limit (ulimit -v),
     * which they inherit, take no more than an eighth of it (but not under 2,048 chunks). */
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
        uint64_t fit = (uint64_t)as.rlim_cur / 8 / CGS_CHUNK_SIZE;
        if (fit < nchunks)
            nchunks = fit > 2048 ? (uint32_t)fit : (nchunks < 2048 ? nchunks : 2048);
    }
    c->size = (size_t)cgs_channel_size(nchunks);
    /* A memfd: nobody outside this process tree can open it (docs/architecture.md, invariant 7). */
    c->fd = memfd_create("cgoscope-channel", MFD_CLOEXEC);
    if (c->fd < 0 || ftruncate(c->fd, (off_t)c->size) != 0) {
        snprintf(err, errlen, "cannot create the shared-memory channel: %s", strerror(errno));
        channel_destroy(c);
        return -1;
    }
    void *m = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    c->consumed = calloc(nchunks, sizeof *c->consumed);
    c->copy = malloc(CGS_CHUNK_SIZE);
    c->order = malloc(nchunks * sizeof *c->order);
    c->retired = malloc(nchunks * sizeof *c->retired);
    c->bounds = malloc((nchunks + 1) * sizeof *c->bounds);
    c->rbounds = malloc((nchunks + 1) * sizeof *c->rbounds);
    if (m == MAP_FAILED || !c->consumed || !c->copy || !c->order || !c->retired || !c->bounds || !c->rbounds) {
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
    cgs_header_init(c->h, nchunks, 0);
    c->h->token = c->token;
    c->h->analyzer_pid = (uint32_t)getpid();
    c->nchunks = nchunks;
    c->chunk_size = CGS_CHUNK_SIZE;
    c->desc = (struct cgs_chunk_desc *)((uint8_t *)m + c->h->header_size);
    c->chunks = (uint8_t *)m + c->h->chunks_offset;
    u64map_init(&c->images);
    u64map_init(&c->liveness);
    return 0;
}

void channel_on_dead_stats(struct channel *c, channel_stats_fn fn, void *arg)
{
    c->dead_stats = fn;
    c->dead_stats_arg = arg;
}

/* Chunks at or past this index were never claimed. */
static uint32_t high_water(const struct channel *c)
{
    uint32_t hw = atomic_load_explicit(&c->h->high_water, memory_order_acquire);
    return hw < c->nchunks ? hw : c->nchunks;
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
    free(c->retired);
    free(c->bounds);
    free(c->rbounds);
    free(c->ended);
    u64map_free(&c->images);
    u64map_free(&c->liveness);
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

/* Hands the unread records of chunk i to sink. */
static size_t deliver(struct channel *c, uint32_t i, channel_sink sink, void *arg)
{
    struct cgs_chunk_desc *d = &c->desc[i];
    uint32_t chunk_size = c->chunk_size;
    uint32_t end = atomic_load_explicit(&d->committed, memory_order_acquire);
    if (end > chunk_size)
        end = chunk_size; /* a corrupt count: read no further than the chunk */
    if (end <= c->consumed[i])
        return 0;
    size_t len = end - c->consumed[i];
    memcpy(c->copy, c->chunks + (size_t)i * chunk_size + c->consumed[i], len);
    sink(arg, d->pid, d->tid, c->copy, len);
    c->consumed[i] = end;
    return len;
}

static void release(struct channel *c, uint32_t i)
{
    if (atomic_load_explicit(&c->desc[i].state, memory_order_acquire) == CGS_CHUNK_FULL) {
        uint32_t n = atomic_load_explicit(&c->h->undrained, memory_order_relaxed);
        while (n && !atomic_compare_exchange_weak(&c->h->undrained, &n, n - 1))
            ;
    }
    c->consumed[i] = 0;
    atomic_store_explicit(&c->desc[i].committed, 0, memory_order_relaxed);
    atomic_store_explicit(&c->desc[i].state, CGS_CHUNK_FREE, memory_order_release);
}

/* Nobody will write again into the chunks of this pid and program image: the process ended, or
 * exec replaced the program. Hands over what they hold and frees them. */


/* Has this process ended? A zombie has: it writes nothing any more. */
static int process_gone(uint32_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT || errno == ESRCH;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')'); /* the state follows the command name */
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

static size_t retire(struct channel *c, uint32_t pid, uint32_t image, channel_sink sink, void *arg, int with_cuts);

static void note_ended(struct channel *c, uint32_t pid)
{
    for (size_t i = 0; i < c->nended; i++)
        if (c->ended[i] == pid)
            return;
    if (c->nended == c->capended) {
        size_t nc = c->capended ? c->capended * 2 : 16;
        uint32_t *nv = realloc(c->ended, nc * sizeof *nv);
        if (!nv)
            return; /* scanned at the end instead */
        c->ended = nv;
        c->capended = nc;
    }
    c->ended[c->nended++] = pid;
}

static size_t reap_dead(struct channel *c, channel_sink sink, void *arg)
{
    uint64_t now = clock_mono_ns();
    if (now - c->last_reap_ns < REAP_EVERY_NS)
        return 0;
    c->last_reap_ns = now;
    u64map_free(&c->liveness);
    u64map_init(&c->liveness);
    size_t total = 0;
    uint32_t hw = high_water(c);
    for (uint32_t i = 0; i < hw; i++) {
        struct cgs_chunk_desc *d = &c->desc[i];
        if (atomic_load_explicit(&d->state, memory_order_acquire) != CGS_CHUNK_WRITING || !d->pid)
            continue;
        int added;
        uint64_t *v = u64map_put(&c->liveness, d->pid, &added);
        if (!v)
            return total;
        if (added)
            *v = process_gone(d->pid) ? 2 : 1;
        if (*v == 2) {
            total += retire(c, d->pid, d->image, sink, arg, 1);
            note_ended(c, d->pid);
        }
    }
    return total;
}

/* The stamp of the first allocation event in chunk i not handed over yet, or UINT64_MAX. */
static uint64_t first_unread_stamp(const struct channel *c, uint32_t i)
{
    uint32_t chunk_size = c->chunk_size, off = c->consumed[i];
    uint32_t end = atomic_load_explicit(&c->desc[i].committed, memory_order_acquire);
    if (end > chunk_size)
        end = chunk_size;
    if (off >= end)
        return UINT64_MAX;
    return reorder_first_stamp(c->chunks + (size_t)i * chunk_size + off, end - off);
}

/* A stats chunk whose thread counted calls in store-free runs: the shim's exit helper adds the
 * runs still open when the program ended (or ran exec) and marks the chunk; its counts are read
 * after that, or after LEAN_WAIT_MS without it (then they may miss the last calls). */
#define LEAN_WAIT_MS 3000
static void wait_lean(struct channel *c, uint32_t i, uint32_t pid)
{
    const struct cgs_stats_chunk *sc = (const struct cgs_stats_chunk *)(c->chunks + (size_t)i * c->chunk_size);
    for (int ms = 0; atomic_load_explicit(&sc->lean, memory_order_acquire) == CGS_LEAN_OPEN; ms++) {
        if (ms == LEAN_WAIT_MS) {
            fprintf(stderr, "cgoscope: process %u: the helper that counts its last cgo calls did not finish; "
                            "its call counts may miss some (set CGOSCOPE_STORE_FREE_CALLS=0 to count in the hook)\n", pid);
            return;
        }
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
}

/* with_cuts: nothing else is left to read in this pass (reap_dead), so the sink may be told, after
 * each chunk, how far the rest reaches (channel.h, reached). */
static size_t retire(struct channel *c, uint32_t pid, uint32_t image, channel_sink sink, void *arg, int with_cuts)
{
    size_t total = 0;
    uint32_t hw = high_water(c), n = 0;
    for (uint32_t i = 0; i < hw; i++) {
        struct cgs_chunk_desc *d = &c->desc[i];
        uint32_t st = atomic_load_explicit(&d->state, memory_order_acquire);
        if ((st != CGS_CHUNK_WRITING && st != CGS_CHUNK_FULL) || d->pid != pid || d->image != image)
            continue;
        if (d->kind == CGS_KIND_RECORDS) {
            c->retired[n++] = i;
        } else if (d->kind == CGS_KIND_STATS && c->dead_stats && c->chunk_size >= sizeof(struct cgs_stats_chunk)) {
            wait_lean(c, i, pid);
            memcpy(c->copy, c->chunks + (size_t)i * c->chunk_size, sizeof(struct cgs_stats_chunk));
            c->dead_stats(c->dead_stats_arg, pid, (const struct cgs_stats_chunk *)c->copy);
            release(c, i);
        }
    }
    /* In claim order, as channel_drain does: a thread's chunks must reach the sink in the order
     * it wrote them. (In index order, which reuses freed slots, a process that ended with a
     * backlog handed its threads' chunks over shuffled, and frees were matched to the wrong
     * allocations: false leaks.) */
    sort_desc = c->desc;
    qsort(c->retired, n, sizeof *c->retired, by_seq);
    with_cuts = with_cuts && c->reached;
    if (with_cuts) {
        c->rbounds[n] = UINT64_MAX;
        for (uint32_t k = n; k-- > 0;) {
            uint64_t ts = first_unread_stamp(c, c->retired[k]);
            c->rbounds[k] = ts < c->rbounds[k + 1] ? ts : c->rbounds[k + 1];
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        if (with_cuts && k > 0)
            c->reached(c->reached_arg, c->rbounds[k]);
        total += deliver(c, c->retired[k], sink, arg);
        release(c, c->retired[k]);
    }
    return total;
}

size_t channel_drain(struct channel *c, channel_sink sink, void *arg)
{
    uint64_t bound;
    return channel_drain_some(c, sink, arg, SIZE_MAX, &bound);
}

size_t channel_drain_some(struct channel *c, channel_sink sink, void *arg, size_t max_bytes, uint64_t *bound)
{
    uint32_t n = high_water(c), chunk_size = c->chunk_size, active = 0;
    *bound = UINT64_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t st = atomic_load_explicit(&c->desc[i].state, memory_order_acquire);
        if ((st == CGS_CHUNK_WRITING || st == CGS_CHUNK_FULL) && c->desc[i].kind == CGS_KIND_RECORDS)
            c->order[active++] = i;
    }
    sort_desc = c->desc;
    qsort(c->order, active, sizeof *c->order, by_seq);
    (void)chunk_size;
    if (c->reached || max_bytes != SIZE_MAX) {
        c->bounds[active] = UINT64_MAX;
        for (uint32_t k = active; k-- > 0;) {
            uint64_t ts = first_unread_stamp(c, c->order[k]);
            c->bounds[k] = ts < c->bounds[k + 1] ? ts : c->bounds[k + 1];
        }
    }
    size_t total = 0;
    for (uint32_t k = 0; k < active; k++) {
        uint32_t i = c->order[k];
        struct cgs_chunk_desc *d = &c->desc[i];
        if (k > 0 && total >= max_bytes) { /* enough for one pass: the rest from bounds[k] on */
            *bound = c->bounds[k];
            break;
        }
        if (c->reached && k > 0)
            c->reached(c->reached_arg, c->bounds[k]);
        /* State first: once FULL, `committed` is final (the producer stored it before). */
        uint32_t st = atomic_load_explicit(&d->state, memory_order_acquire);
        if (st != CGS_CHUNK_WRITING && st != CGS_CHUNK_FULL)
            continue; /* freed meanwhile: its image was retired */
        /* Chunks are taken in claim order, so the first chunk of a new program image in a pid
         * comes after every chunk of the one before: hand all of that over first. */
        int added;
        uint64_t *img = d->pid ? u64map_put(&c->images, d->pid, &added) : NULL;
        if (img && !added && *img != d->image && d->image)
            total += retire(c, d->pid, (uint32_t)*img, sink, arg, 0);
        if (img && d->image)
            *img = d->image;
        total += deliver(c, i, sink, arg);
        if (st == CGS_CHUNK_FULL)
            release(c, i);
    }
    return total + reap_dead(c, sink, arg);
}

void channel_each_stats(struct channel *c, channel_stats_fn fn, void *arg)
{
    uint32_t n = high_water(c), chunk_size = c->chunk_size;
    if (chunk_size < sizeof(struct cgs_stats_chunk))
        return;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t st = atomic_load_explicit(&c->desc[i].state, memory_order_acquire);
        if (st != CGS_CHUNK_WRITING || c->desc[i].kind != CGS_KIND_STATS)
            continue;
        /* A process that has ended may still have its exit helper adding its open store-free
         * runs: wait for it, as retire() does. (Reached here when the process's end was seen
         * before the periodic look for ended processes retired its chunks.) */
        const struct cgs_stats_chunk *sc = (const struct cgs_stats_chunk *)(c->chunks + (size_t)i * chunk_size);
        if (atomic_load_explicit(&sc->lean, memory_order_acquire) == CGS_LEAN_OPEN && process_gone(c->desc[i].pid))
            wait_lean(c, i, c->desc[i].pid);
        memcpy(c->copy, c->chunks + (size_t)i * chunk_size, sizeof(struct cgs_stats_chunk));
        fn(arg, c->desc[i].pid, (const struct cgs_stats_chunk *)c->copy);
    }
}

int channel_wait(struct channel *c, uint64_t timeout_ns)
{
    struct cgs_shm_header *h = c->h;
    atomic_store_explicit(&h->analyzer_sleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    /* A chunk marked FULL before the doorbell was set: its producer may not have looked at it. */
    if (atomic_load_explicit(&h->undrained, memory_order_relaxed) && !c->drained_nothing) {
        atomic_store_explicit(&h->analyzer_sleeping, 0, memory_order_relaxed);
        return 1;
    }
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    long rc = syscall(SYS_futex, &h->analyzer_sleeping, FUTEX_WAIT, 1, &ts, NULL, 0);
    int woken = rc == 0 && !atomic_load_explicit(&h->analyzer_sleeping, memory_order_relaxed);
    atomic_store_explicit(&h->analyzer_sleeping, 0, memory_order_relaxed);
    return woken;
}

void channel_wake(struct channel *c)
{
    if (atomic_exchange_explicit(&c->h->analyzer_sleeping, 0, memory_order_seq_cst))
        syscall(SYS_futex, &c->h->analyzer_sleeping, FUTEX_WAKE, 1, NULL, NULL, 0);
}
