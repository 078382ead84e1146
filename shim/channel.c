/*
 * The producer side of the channel. Two ways in (docs/record-format.md):
 *
 *  - launcher mode: `cgoscope run` created a memfd and named it in CGOSCOPE_CHANNEL. The first
 *    process inherits the descriptor, maps it and closes it, so the program's descriptor table
 *    is left as it was; a process the program starts later opens the analyzer's descriptor
 *    through /proc/<analyzer>/fd/<n>, which only the same user may. The analyzer drains chunks
 *    and frees them for reuse.
 *  - file mode: `cgoscope env -o FILE` named a trace file in CGOSCOPE_TRACE. The shim maps the
 *    file itself; chunks are never freed, the file grows a chunk at a time. Pages of a shared
 *    file mapping outlive the process, so a trace survives exit_group, SIGKILL and crashes.
 *
 * Either way each thread claims a chunk and appends whole records to it, publishing each with a
 * release store of `committed`: a record is visible before the call that made it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define RETRY_NS 50000000ull   /* 50 ms: a thread that found no chunk looks again after this */

static struct cgs_shm_header *hdr;
static size_t map_size;
static struct cgs_chunk_desc *descs;
static uint8_t *chunks;
static uint32_t chunk_size, nchunks;
static pthread_key_t exit_key;
static int key_created;
static int channel_dead; /* the analyzer is gone, or the file cannot grow: count what is dropped */
static int file_mode;
static _Atomic int file_fd = -1;
static char file_path[4096]; /* file mode: to open the file again if the program closes our descriptor */
static dev_t file_dev;
static ino_t file_ino;
static atomic_flag reopen_lock = ATOMIC_FLAG_INIT;
static uint32_t my_pid;
static uint32_t my_image; /* random per program image: after exec the same pid is another program */
static long analyzer_fd = -1; /* the analyzer's descriptor of the channel, for analyzer_alive() */

static uint32_t new_image_id(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (uint32_t)(cgs_mono_ns() * 0x9e3779b97f4a7c15ull >> 32) ^ (uint32_t)getpid();
    return v ? v : 1;
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    cgs_thread_done(&cgs_tls);
    cgs_callstats_thread_exit(&cgs_tls);
}

/* "<fd>:<token>[:<analyzer pid>:<analyzer fd>]" */
static int parse_channel(const char *s, int *fd, uint64_t *token, long *apid, long *afd)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != ':' || v < 0 || v > 1 << 20)
        return -1;
    *fd = (int)v;
    const char *t = end + 1;
    *token = strtoull(t, &end, 16);
    if (end == t)
        return -1;
    *apid = *afd = -1;
    if (*end == ':') {
        *apid = strtol(end + 1, &end, 10);
        if (*end == ':')
            *afd = strtol(end + 1, &end, 10);
    }
    return 0;
}

static int use_mapping(struct cgs_shm_header *h, size_t size)
{
    hdr = h;
    map_size = size;
    descs = (struct cgs_chunk_desc *)((uint8_t *)h + h->header_size);
    chunks = (uint8_t *)h + h->chunks_offset;
    chunk_size = h->chunk_size;
    nchunks = h->nchunks;
    my_pid = (uint32_t)getpid();
    my_image = new_image_id();
    if (!key_created && pthread_key_create(&exit_key, on_thread_exit) == 0)
        key_created = 1;
    atomic_fetch_add(&h->attached, 1);
    return 0;
}

static void debug(const char *what, int fd)
{
    const char *d = getenv("CGOSCOPE_DEBUG");
    if (d && *d == '1') {
        char buf[200];
        int n = snprintf(buf, sizeof buf, "cgoscope shim [%d]: %s (fd %d, errno %d)\n", (int)getpid(), what, fd, errno);
        if (write(2, buf, (size_t)n) < 0)
            return;
    }
}

/* Maps a launcher channel from fd if it is one with our token. */
static struct cgs_shm_header *map_memfd(int fd, uint64_t token, size_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        debug("not a channel: fstat failed", fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(struct cgs_shm_header)) {
        errno = (int)st.st_mode;
        debug("not a channel: not a regular file of a channel's size (errno: mode)", fd);
        return NULL;
    }
    struct cgs_shm_header *h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        debug("cannot map the channel", fd);
        return NULL;
    }
    if (cgs_header_check(h, (uint64_t)st.st_size, CGS_CHECK_WRITE) != CGS_HEADER_OK || h->token != token) {
        debug("not our channel: header or token differs", fd);
        munmap(h, (size_t)st.st_size);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return h;
}

static int attach_launcher(const char *spec)
{
    int fd;
    uint64_t token;
    long apid, afd;
    if (parse_channel(spec, &fd, &token, &apid, &afd) != 0)
        return -1;
    size_t size = 0;
    struct cgs_shm_header *h = map_memfd(fd, token, &size);
    if (h) {
        close(fd); /* inherited from the launcher: the program never sees it */
    } else if (apid > 0 && afd >= 0) {
        /* A process the program started: the descriptor was not inherited (the first process
         * closed it). Open the analyzer's own, which only the same user can. */
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/fd/%ld", apid, afd);
        int pfd = open(path, O_RDWR | O_CLOEXEC);
        if (pfd < 0)
            return -1;
        h = map_memfd(pfd, token, &size);
        close(pfd);
    }
    if (!h)
        return -1;
    uint32_t owner = 0;
    int first = atomic_compare_exchange_strong(&h->owner_pid, &owner, (uint32_t)getpid());
    if (!first && owner == (uint32_t)getpid())
        first = 1; /* the program replaced itself (exec): still the process being traced */
    const char *follow = getenv(CGS_ENV_FOLLOW);
    if (!first && follow && strcmp(follow, "0") == 0) {
        munmap(h, size);
        return -1; /* --no-follow: only the first process is traced */
    }
    h->clock = (uint32_t)cgs_clock_kind;
    analyzer_fd = afd;
    return use_mapping(h, size);
}

/* ---- File mode ------------------------------------------------------------------------------ */

static int wait_for_header(const struct cgs_shm_header *h)
{
    for (int i = 0; i < 2000; i++) { /* the creator is writing it: at most 2 s */
        if (atomic_load_explicit((_Atomic uint64_t *)&h->magic, memory_order_acquire) == CGS_SHM_MAGIC)
            return 0;
        struct timespec d = {0, 1000 * 1000};
        nanosleep(&d, NULL);
    }
    return -1;
}

/* Gives the header and the chunk descriptors of a new trace file real blocks, so that no store
 * into them can fault (SIGBUS) on a full disk. When there is no room for them, leaves a header
 * alone that says so, and the program runs untraced. Returns 1 when the file is ready. */
static int file_reserve_header(int fd, size_t chunks_off)
{
    if (ftruncate(fd, (off_t)chunks_off) != 0)
        return 0;
    int rc = fallocate(fd, 0, 0, (off_t)chunks_off);
    if (rc == 0 || errno == EOPNOTSUPP)
        return 1;
    if (ftruncate(fd, CGS_HEADER_SIZE) != 0 || fallocate(fd, 0, 0, CGS_HEADER_SIZE) != 0)
        return 0;
    struct cgs_shm_header h;
    memset(&h, 0, sizeof h);
    cgs_header_init(&h, 0, CGS_HF_FILE); /* no chunks: the header alone, saying why */
    h.magic = CGS_SHM_MAGIC;
    h.disk_full = 1;
    h.clock = (uint32_t)cgs_clock_kind;
    ssize_t written = pwrite(fd, &h, sizeof h, 0);
    (void)written; /* written or not, the program runs untraced; the header, if there, says why */
    return 0;
}

static int attach_file(const char *path)
{
    size_t chunks_off = (size_t)cgs_chunks_offset(CGS_FILE_MAX_CHUNKS);
    size_t size = (size_t)cgs_channel_size(CGS_FILE_MAX_CHUNKS);
    int created = 1;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    /* Keep the descriptor out of the way of the program's own low numbers. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    if (created && !file_reserve_header(fd, chunks_off)) {
        close(fd);
        return -1;
    }
    /* Map the largest the file may grow to; pages past its end are touched only after the
     * file has grown to hold them. */
    struct cgs_shm_header *h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (h == MAP_FAILED) {
        close(fd);
        return -1;
    }
    if (created) {
        cgs_header_init(h, CGS_FILE_MAX_CHUNKS, CGS_HF_FILE);
        h->clock = (uint32_t)cgs_clock_kind;
        h->start_ticks = cgs_now_after();
        h->start_ns = cgs_mono_ns();
        atomic_store_explicit((_Atomic uint64_t *)&h->magic, CGS_SHM_MAGIC, memory_order_release);
    } else {
        struct stat st;
        if (wait_for_header(h) != 0 || fstat(fd, &st) != 0 ||
            cgs_header_check(h, size, CGS_CHECK_WRITE | CGS_CHECK_FILE) != CGS_HEADER_OK ||
            h->nchunks != CGS_FILE_MAX_CHUNKS || h->chunk_size != CGS_CHUNK_SIZE || h->chunks_offset != chunks_off) {
            munmap(h, size);
            close(fd);
            return -1; /* not a cgoscope trace file: leave it alone */
        }
    }
    struct stat st;
    char self_fd[64];
    snprintf(self_fd, sizeof self_fd, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(self_fd, file_path, sizeof file_path - 1);
    file_path[n > 0 ? n : 0] = 0;
    if (fstat(fd, &st) == 0) {
        file_dev = st.st_dev;
        file_ino = st.st_ino;
    }
    file_mode = 1;
    file_fd = fd;
    return use_mapping(h, size);
}

int cgs_channel_attach(void)
{
    const char *spec = getenv(CGS_ENV_CHANNEL);
    if (spec && *spec)
        return attach_launcher(spec);
    const char *path = getenv(CGS_ENV_TRACE);
    if (path && *path)
        return attach_file(path);
    return -1;
}

void cgs_channel_after_fork(void)
{
    /* A child of fork() without exec: a process of its own. It keeps the mapping (shared with
     * the parent), but must never touch the parent's chunks. */
    cgs_tls.chunk = -1;
    cgs_tls.off = 0;
    cgs_tls.tid = 0;
    cgs_tls.retry_at = 0;
    my_pid = (uint32_t)getpid();
    my_image = new_image_id();
    const char *follow = getenv(CGS_ENV_FOLLOW);
    if (!hdr || (follow && strcmp(follow, "0") == 0))
        cgs_ready = 0;
    else
        atomic_fetch_add(&hdr->attached, 1);
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
    if (!hdr->analyzer_pid)
        return 1;
    if (kill((pid_t)hdr->analyzer_pid, 0) != 0 && errno == ESRCH)
        return 0;
    if (analyzer_fd < 0)
        return 1;
    /* A killed analyzer that nobody has reaped yet is a zombie: kill() still finds it, but its
     * descriptors are closed, the channel's among them. (A pid reused by another process has
     * no such descriptor either.) */
    char path[64], target[64];
    snprintf(path, sizeof path, "/proc/%u/fd/%ld", hdr->analyzer_pid, analyzer_fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0)
        return errno != ENOENT && errno != ESRCH;
    target[n] = 0;
    return strstr(target, "cgoscope-channel") != NULL;
}

/* Wakes the analyzer if it said it is sleeping (record.h, analyzer_sleeping). Called after a
 * chunk was marked FULL (its undrained count taken first) or while waiting for a free chunk; a
 * load, and a system call only when the analyzer sleeps. */
static void wake_analyzer(void)
{
    atomic_thread_fence(memory_order_seq_cst); /* the FULL state before the look at the doorbell */
    if (!atomic_load_explicit(&hdr->analyzer_sleeping, memory_order_relaxed) ||
        !atomic_exchange_explicit(&hdr->analyzer_sleeping, 0, memory_order_seq_cst))
        return;
    int saved = errno;
    syscall(SYS_futex, &hdr->analyzer_sleeping, FUTEX_WAKE, 1, NULL, NULL, 0);
    errno = saved;
}

static void setup_chunk(struct cgs_thread *t, uint32_t i, uint32_t kind)
{
    if (!t->tid)
        t->tid = (uint32_t)syscall(SYS_gettid);
    descs[i].tid = t->tid;
    descs[i].pid = my_pid;
    descs[i].image = my_image;
    descs[i].kind = kind;
    atomic_store_explicit(&descs[i].committed, 0, memory_order_relaxed);
    atomic_store_explicit(&descs[i].seq, atomic_fetch_add(&hdr->chunk_seq, 1) + 1, memory_order_relaxed);
    uint32_t hw = atomic_load_explicit(&hdr->high_water, memory_order_relaxed);
    while (hw < i + 1 && !atomic_compare_exchange_weak(&hdr->high_water, &hw, i + 1))
        ;
    atomic_store_explicit(&descs[i].state, CGS_CHUNK_WRITING, memory_order_release);
    if (!t->exit_key_set && key_created) {
        t->exit_key_set = 1;
        pthread_setspecific(exit_key, (void *)1);
    }
}

/* File mode: our descriptor of the trace file. A program may close every descriptor it did not
 * open, or reuse the number for a file of its own: then open the trace again by name, after
 * checking it is still the same file. */
static int file_descriptor(void)
{
    struct stat st;
    int fd = atomic_load(&file_fd);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == file_dev && st.st_ino == file_ino)
        return fd;
    while (atomic_flag_test_and_set_explicit(&reopen_lock, memory_order_acquire))
        ;
    int cur = atomic_load(&file_fd);
    if (cur != fd) { /* another thread already did it */
        atomic_flag_clear_explicit(&reopen_lock, memory_order_release);
        return cur;
    }
    int nfd = file_path[0] ? open(file_path, O_RDWR | O_CLOEXEC) : -1;
    if (nfd >= 0 && (fstat(nfd, &st) != 0 || st.st_dev != file_dev || st.st_ino != file_ino)) {
        close(nfd);
        nfd = -1;
    }
    if (nfd >= 0) {
        int high = fcntl(nfd, F_DUPFD_CLOEXEC, 1000);
        if (high >= 0) {
            close(nfd);
            nfd = high;
        }
    }
    atomic_store(&file_fd, nfd); /* the old number is not ours any more: never close it */
    atomic_flag_clear_explicit(&reopen_lock, memory_order_release);
    return nfd;
}

/* File mode: the next chunk of the file, which grows to hold it. */
static int32_t claim_file(struct cgs_thread *t, uint32_t kind)
{
    uint32_t i = atomic_fetch_add(&hdr->next_chunk, 1);
    if (i >= nchunks) {
        channel_dead = 1;
        return -1;
    }
    off_t off = (off_t)(hdr->chunks_offset + (uint64_t)i * chunk_size);
    int fd = file_descriptor();
    int rc = fd < 0 ? -1 : fallocate(fd, 0, off, chunk_size);
    if (rc != 0 && errno == EOPNOTSUPP)
        rc = pwrite(fd, "", 1, off + chunk_size - 1) == 1 ? 0 : -1;
    if (rc != 0) {
        /* The disk is full (or the file is gone): stop here; what is already in the file
         * stays valid. */
        atomic_store(&hdr->disk_full, 1);
        channel_dead = 1;
        return -1;
    }
    setup_chunk(t, i, kind);
    return (int32_t)i;
}

/* The lowest free chunk, claimed; -1 if there is none. Lowest first keeps the chunks in use,
 * and so the memory they hold, as few as the threads need at once. */
static int32_t try_claim(struct cgs_thread *t, uint32_t kind)
{
    for (uint32_t i = 0; i < nchunks; i++) {
        uint32_t expect = CGS_CHUNK_FREE;
        if (atomic_load_explicit(&descs[i].state, memory_order_relaxed) != CGS_CHUNK_FREE)
            continue;
        if (!atomic_compare_exchange_strong(&descs[i].state, &expect, CGS_CHUNK_CLAIMED))
            continue;
        setup_chunk(t, i, kind);
        return (int32_t)i;
    }
    return -1;
}

/* Is any chunk waiting for the analyzer to drain and free it? */
static int any_full(void)
{
    uint32_t hw = atomic_load_explicit(&hdr->high_water, memory_order_relaxed);
    for (uint32_t i = 0; i < hw && i < nchunks; i++)
        if (atomic_load_explicit(&descs[i].state, memory_order_relaxed) == CGS_CHUNK_FULL)
            return 1;
    return 0;
}

/* Claims a free chunk for this thread; returns its index, or -1 when the analyzer is gone or
 * every chunk stayed held by live writers for CGS_EXHAUSTED_WAIT_MS. */
static int32_t claim(struct cgs_thread *t, uint32_t kind)
{
    if (file_mode)
        return claim_file(t, kind);
    uint64_t stuck_since = 0;
    for (unsigned spins = 0;; spins++) {
        /* Backpressure: with too much waiting to be drained, wait like when nothing is free. */
        int32_t i = kind == CGS_KIND_RECORDS &&
                            atomic_load_explicit(&hdr->undrained, memory_order_relaxed) >= CGS_MAX_UNDRAINED
                        ? -1
                        : try_claim(t, kind);
        if (i >= 0) {
            t->retry_at = 0;
            return i;
        }
        if (t->retry_at) { /* none free since the last long wait: do not wait again yet */
            t->retry_at = cgs_mono_ns() + RETRY_NS;
            return -1;
        }
        /* Every chunk is in use: wait for the analyzer to drain one (docs/architecture.md,
         * invariant 1: wait, do not drop), unless it is gone, in which case waiting would hang
         * the program. */
        if (spins == 0)
            atomic_fetch_add_explicit(&hdr->producer_waits, 1, memory_order_relaxed);
        if ((spins & 15) == 0)
            wake_analyzer(); /* it may be asleep with our chunks to drain */
        if ((spins & 255) == 255) {
            if (!analyzer_alive()) {
                channel_dead = 1;
                return -1;
            }
            /* Chunks held by threads that are alive but write nothing are never freed (the
             * analyzer frees those of processes that ended). With none waiting to be drained
             * for a long while, waiting on would hang the program: go on without a chunk. */
            uint64_t now = cgs_mono_ns();
            if (any_full() || !stuck_since) {
                stuck_since = now;
            } else if (now - stuck_since > CGS_EXHAUSTED_WAIT_MS * 1000000ull) {
                atomic_fetch_add_explicit(&hdr->exhausted, 1, memory_order_relaxed);
                t->retry_at = now + RETRY_NS;
                return -1;
            }
        }
        struct timespec d = {0, 50 * 1000};
        nanosleep(&d, NULL);
    }
}

void *cgs_reserve(struct cgs_thread *t, uint32_t size)
{
    if (CGS_LIKELY(t->chunk >= 0 && t->off + size <= chunk_size))
        return chunks + (size_t)t->chunk * chunk_size + t->off;
    if (size > chunk_size || channel_dead || !hdr) {
        cgs_count_lost(1);
        return NULL;
    }
    if (CGS_UNLIKELY(t->retry_at) && t->chunk < 0 && cgs_mono_ns() < t->retry_at) {
        cgs_count_lost(1); /* the channel was exhausted a moment ago: do not scan it again yet */
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
    if (CGS_UNLIKELY(cgs_startup_log_on))
        cgs_startup_log(chunks + (size_t)t->chunk * chunk_size + t->off, size);
    t->off += size;
    atomic_store_explicit(&descs[t->chunk].committed, t->off, memory_order_release);
}

void cgs_thread_done(struct cgs_thread *t)
{
    if (t->chunk < 0 || !descs)
        return;
    uint32_t undrained = 0;
    if (!file_mode)
        undrained = atomic_fetch_add_explicit(&hdr->undrained, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&descs[t->chunk].state, CGS_CHUNK_FULL, memory_order_release);
    t->chunk = -1;
    t->off = 0;
    if (!file_mode && undrained >= CGS_WAKE_UNDRAINED)
        wake_analyzer();
}

const struct cgs_shm_header *cgs_channel_header(void) { return file_mode ? NULL : hdr; }
const char *cgs_channel_file_path(void) { return file_mode && file_path[0] ? file_path : NULL; }

struct cgs_stats_chunk *cgs_stats_chunk_of(const void *p)
{
    if (!chunks || !chunk_size || (const uint8_t *)p < chunks)
        return NULL;
    size_t i = (size_t)((const uint8_t *)p - chunks) / chunk_size;
    return i < nchunks ? (struct cgs_stats_chunk *)(chunks + i * chunk_size) : NULL;
}
