#define _GNU_SOURCE
#include "ingest/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "util/clock.h"
#include "ingest/images.h"

static const char magic[8] = {'C', 'G', 'S', 'T', 'R', 'A', 'C', 'E'};

struct block_hdr {
    uint32_t kind;
    uint32_t tid;
    uint32_t pid;
    uint32_t reserved;
    uint64_t len;
};

struct end_block {
    int32_t exit_kind;
    int32_t exit_value;
    uint64_t events_lost;
    uint64_t end_ticks, end_ns; /* the clock's rate: see process_ticks_to_ns */
};

#define MAX_BLOCK (16u << 20) /* records come in chunks of 64 KiB: anything near this is corrupt */

static void fail(struct trace_writer *w)
{
    if (!w->failed) {
        w->failed = 1;
        w->errno_saved = errno ? errno : EIO;
    }
}

static void put_raw(struct trace_writer *w, const void *data, size_t len)
{
    if (w->failed || !len)
        return;
    if (fwrite(data, 1, len, w->f) != len)
        fail(w);
}

/* Everything after the header goes through one zstd stream: records compress well (ids,
 * addresses and timestamps repeat their high bytes). */
static void zput(struct trace_writer *w, const void *data, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {data, len, 0};
    int finished;
    do {
        ZSTD_outBuffer out = {w->zbuf, w->zcap, 0};
        size_t rem = ZSTD_compressStream2(w->zc, &out, &in, mode);
        if (ZSTD_isError(rem)) {
            errno = EIO;
            fail(w);
            return;
        }
        put_raw(w, w->zbuf, out.pos);
        finished = mode == ZSTD_e_continue ? in.pos == in.size : rem == 0;
    } while (!finished && !w->failed);
}

static void put(struct trace_writer *w, const void *data, size_t len)
{
    if (w->failed || !len)
        return;
    zput(w, data, len, ZSTD_e_continue);
}

int trace_writer_open(struct trace_writer *w, const char *path)
{
    memset(w, 0, sizeof *w);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    w->f = fdopen(fd, "w");
    w->path = strdup(path);
    if (!w->f || !w->path) {
        if (w->f)
            fclose(w->f);
        else
            close(fd);
        free(w->path);
        return -1;
    }
    uint32_t v[2] = {TRACE_VERSION, 16};
    w->zc = ZSTD_createCCtx();
    w->zcap = ZSTD_CStreamOutSize();
    w->zbuf = malloc(w->zcap);
    if (!w->zc || !w->zbuf) {
        errno = ENOMEM;
        fail(w);
        return 0;
    }
    ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, 3);
    put_raw(w, magic, sizeof magic);
    put_raw(w, v, sizeof v);
    return 0;
}

void trace_write_block(struct trace_writer *w, uint32_t kind, uint32_t pid, uint32_t tid, const void *data,
                       uint64_t len)
{
    if (!w->f)
        return;
    struct block_hdr h = {kind, tid, pid, 0, len};
    static const uint8_t zeros[8];
    put(w, &h, sizeof h);
    put(w, data, len);
    put(w, zeros, (8 - (len & 7)) & 7);
}

void trace_write_end(struct trace_writer *w, const struct process *p)
{
    if (!w->f)
        return;
    size_t len = 0;
    for (int i = 0; i < p->argc; i++)
        len += strlen(p->argv[i]) + 1;
    char *buf = malloc(len ? len : 1);
    if (buf) {
        size_t off = 0;
        for (int i = 0; i < p->argc; i++) {
            size_t l = strlen(p->argv[i]) + 1;
            memcpy(buf + off, p->argv[i], l);
            off += l;
        }
        trace_write_block(w, TRACE_ARGV, p->pid, 0, buf, len);
        free(buf);
    }
    size_t rlen;
    void *rb = reach_serialize(&p->reach, &rlen);
    if (rb)
        trace_write_block(w, TRACE_REACH, p->pid, 0, rb, rlen);
    free(rb);
    struct end_block e = {p->exit_kind, p->exit_value, p->events_lost, p->clock.end_ticks, p->clock.end_ns};
    trace_write_block(w, TRACE_END, p->pid, 0, &e, sizeof e);
}

void trace_flush(struct trace_writer *w)
{
    if (w->f && w->zc && !w->failed)
        zput(w, NULL, 0, ZSTD_e_flush);
}

int trace_writer_close(struct trace_writer *w, char *err, size_t errlen)
{
    if (!w->f)
        return 0;
    if (w->zc && !w->failed)
        zput(w, NULL, 0, ZSTD_e_end);
    ZSTD_freeCCtx(w->zc);
    free(w->zbuf);
    w->zc = NULL;
    w->zbuf = NULL;
    if (fflush(w->f) != 0)
        fail(w);
    if (fsync(fileno(w->f)) != 0 && errno != EINVAL)
        fail(w);
    if (fclose(w->f) != 0)
        fail(w);
    w->f = NULL;
    int rc = 0;
    if (w->failed) {
        snprintf(err, errlen, "writing the trace %s failed: %s%s", w->path, strerror(w->errno_saved),
                 w->errno_saved == ENOSPC ? " (the disk is full; the trace is incomplete)" : "");
        rc = -1;
    }
    free(w->path);
    w->path = NULL;
    return rc;
}


/* The trace after its header: a zstd stream, decompressed as it is read. */
struct tin {
    ZSTD_DStream *zd;
    uint8_t *outbuf;
    size_t outcap;
    ZSTD_inBuffer in;
    size_t out_pos, out_len;
    int bad;
};

/* Reads up to n bytes; fewer means the trace ended (or is corrupt: t->bad). */
static size_t tin_read(struct tin *t, void *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (t->out_pos < t->out_len) {
            size_t k = t->out_len - t->out_pos < n - got ? t->out_len - t->out_pos : n - got;
            memcpy((uint8_t *)dst + got, t->outbuf + t->out_pos, k);
            t->out_pos += k;
            got += k;
            continue;
        }
        /* With the input used up, zstd may still hold output when it last filled the buffer. */
        if (t->bad || (t->in.pos == t->in.size && t->out_len < t->outcap))
            break;
        ZSTD_outBuffer out = {t->outbuf, t->outcap, 0};
        size_t rc = ZSTD_decompressStream(t->zd, &out, &t->in);
        if (ZSTD_isError(rc))
            t->bad = 1;
        t->out_pos = 0;
        t->out_len = out.pos;
        if (!out.pos && t->in.pos == t->in.size)
            break; /* the input ends (perhaps inside a frame) */
    }
    return got;
}

/* Long: one loop over the blocks of the trace, one branch per block kind, with the errors each can meet. */
static int read_launcher_trace(const uint8_t *data, size_t size, const char *path, struct procset *ps, char *err,
                               size_t errlen)
{
    uint32_t v[2];
    if (size < 16) {
        snprintf(err, errlen, "%s is not a cgoscope trace (header cut short)", path);
        return -1;
    }
    memcpy(v, data + 8, sizeof v);
    if ((v[0] != TRACE_VERSION && v[0] != 4 && v[0] != 3) || v[1] != 16) {
        snprintf(err, errlen, "%s is a trace of format %u; this cgoscope reads format %u: use the cgoscope that wrote it",
                 path, v[0], TRACE_VERSION);
        return -1;
    }
    struct tin tin = {0};
    tin.zd = ZSTD_createDStream();
    tin.outcap = ZSTD_DStreamOutSize();
    tin.outbuf = malloc(tin.outcap);
    tin.in = (ZSTD_inBuffer){data + 16, size - 16, 0};
    if (!tin.zd || !tin.outbuf) {
        snprintf(err, errlen, "%s: out of memory", path);
        ZSTD_freeDStream(tin.zd);
        free(tin.outbuf);
        return -1;
    }
    ZSTD_initDStream(tin.zd);
    ps->reorder = v[0] >= 4; /* the cuts the live run made come with the records */
    uint64_t pos = 0; /* in the decompressed stream */
    int ended = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct block_hdr h;
        size_t got = tin_read(&tin, &h, sizeof h);
        if (got == 0 && !tin.bad)
            break;
        if (got != sizeof h) {
            snprintf(err, errlen, "%s: %s at byte %llu of its records (a block header is incomplete)", path,
                     tin.bad ? "corrupt" : "cut short", (unsigned long long)pos);
            break;
        }
        pos += sizeof h;
        uint64_t padded = (h.len + 7) & ~7ull;
        /* A process's reachability result grows with its unfreed blocks (24 bytes each: 1M blocks
         * make 24 MB), which cannot outnumber its allocations, all read before it. */
        int big_reach = 0;
        if (h.len > MAX_BLOCK && h.kind == TRACE_REACH) {
            struct process *rp = procset_get(ps, h.pid, NULL);
            big_reach = rp && h.len <= reach_saved_max(rp->allocations);
        }
        if (h.len > MAX_BLOCK && !big_reach) {
            snprintf(err, errlen, "%s: corrupt at byte %llu of its records (a block claims %llu bytes)", path,
                     (unsigned long long)pos, (unsigned long long)h.len);
            break;
        }
        if (padded > cap) {
            uint8_t *nb = realloc(buf, padded);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = padded;
        }
        if (padded && tin_read(&tin, buf, padded) != padded) {
            snprintf(err, errlen, "%s: %s at byte %llu of its records", path, tin.bad ? "corrupt" : "cut short",
                     (unsigned long long)pos);
            break;
        }
        pos += padded;
        if (h.kind == TRACE_RATE) {
            double rate;
            if (h.len >= sizeof rate) {
                memcpy(&rate, buf, sizeof rate);
                if (rate > 0 && rate < 1e3)
                    ps->ticks_per_ns = rate;
            }
            continue;
        }
        if (h.kind == TRACE_CUT) {
            struct cut c;
            if (h.len >= sizeof c) {
                memcpy(&c, buf, sizeof c);
                procset_cut(ps, c);
            }
            continue;
        }
        if (h.kind == TRACE_RECORDS) {
            if (procset_feed(ps, h.pid, h.tid, buf, h.len) != 0 && !procset_get(ps, h.pid, NULL)) {
                snprintf(err, errlen, "%s: out of memory", path);
                break;
            }
            continue;
        }
        struct process *p = procset_get(ps, h.pid, NULL);
        if (!p) {
            snprintf(err, errlen, "%s: out of memory", path);
            break;
        }
        if (h.kind == TRACE_ARGV) {
            process_set_argv(p, (const char *)buf, h.len);
        } else if (h.kind == TRACE_STATS) {
            if (h.len >= sizeof(struct cgs_stats_chunk)) {
                struct cgs_stats_chunk *c = malloc(sizeof *c);
                if (c) {
                    memcpy(c, buf, sizeof *c);
                    process_add_stats(p, c);
                    free(c);
                }
            }
        } else if (h.kind == TRACE_REACH) {
            int taken = reach_take_saved(&p->reach, buf, h.len);
            if (taken == 1) { /* the buffer is the process's table now */
                buf = NULL;
                cap = 0;
            } else if (taken < 0 && !err[0]) {
                snprintf(err, errlen, "%s: the reachability result of process %u is damaged; its blocks are "
                         "reported unclassified", path, h.pid);
            }
        } else if (h.kind == TRACE_END && h.len >= sizeof(struct end_block)) {
            struct end_block e;
            memcpy(&e, buf, sizeof e);
            if (e.exit_kind == EXIT_CODE || e.exit_kind == EXIT_SIGNAL) {
                p->exit_kind = e.exit_kind;
                p->exit_value = e.exit_value;
            }
            p->events_lost = e.events_lost;
            p->clock.end_ticks = e.end_ticks;
            p->clock.end_ns = e.end_ns;
            ended = 1;
        }
    }
    free(buf);
    ZSTD_freeDStream(tin.zd);
    free(tin.outbuf);
    for (size_t i = 0; i < ps->n; i++)
        process_finish(ps->v[i]);
    if (!ended && !err[0])
        snprintf(err, errlen, "%s ends early: the recording was interrupted; the report covers what was recorded", path);
    return ended && !err[0] ? 0 : 1;
}

/* ---- The shim's own trace file ------------------------------------------------------------ */

struct chunk_ref {
    uint64_t seq;
    uint32_t index;
    int done; /* stats: handed over */
};

static int by_seq(const void *a, const void *b)
{
    const struct chunk_ref *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands the statistics chunks of pid (of one program image, or of any when image is 0) to the
 * newest entry of that pid. */
static void add_stats_of(const uint8_t *m, const struct cgs_shm_header *h, struct chunk_ref *refs, size_t nrefs,
                         struct procset *ps, uint32_t pid, uint32_t image)
{
    const struct cgs_chunk_desc *d = (const void *)(m + h->header_size);
    for (size_t k = 0; k < nrefs; k++) {
        const struct cgs_chunk_desc *c = &d[refs[k].index];
        if (refs[k].done || c->kind != CGS_KIND_STATS || (pid && c->pid != pid) || (image && c->image != image))
            continue;
        refs[k].done = 1;
        struct process *p = procset_get(ps, c->pid, NULL);
        struct cgs_stats_chunk sc;
        memcpy(&sc, m + h->chunks_offset + (uint64_t)refs[k].index * h->chunk_size, sizeof sc);
        if (p)
            process_add_stats(p, &sc);
    }
}


static int read_shim_file(const uint8_t *m, uint64_t fsize, const char *path, struct procset *ps, char *err,
                          size_t errlen)
{
    if (fsize < sizeof(struct cgs_shm_header)) {
        snprintf(err, errlen, "%s: cut short (no complete header)", path);
        return -1;
    }
    const struct cgs_shm_header *h = (const void *)m;
    int rc = 0;
    switch (cgs_header_check(h, fsize, CGS_CHECK_FILE)) {
    case CGS_HEADER_OK: break;
    case CGS_HEADER_NOT_OURS: /* not reached: the magic was looked at first */
    case CGS_HEADER_FORMAT:
        snprintf(err, errlen, "%s is a trace of format %u; this cgoscope reads format %u: use the cgoscope that wrote it",
                 path, h->version, CGS_FORMAT_VERSION);
        return -1;
    case CGS_HEADER_CORRUPT:
        snprintf(err, errlen, "%s: corrupt header", path);
        return -1;
    case CGS_HEADER_CUT_SHORT:
        snprintf(err, errlen, "%s: cut short (the chunk descriptors end at byte %llu, the file at %llu)", path,
                 (unsigned long long)h->header_size + (unsigned long long)h->nchunks * sizeof(struct cgs_chunk_desc),
                 (unsigned long long)fsize);
        return -1;
    }
    const struct cgs_chunk_desc *d = (const void *)(m + h->header_size);
    uint32_t n = h->next_chunk < h->nchunks ? h->next_chunk : h->nchunks;
    /* Chunks that lie wholly inside the file. */
    uint64_t room = h->chunks_offset <= fsize ? (fsize - h->chunks_offset) / h->chunk_size : 0;
    if (room < n) {
        snprintf(err, errlen, "%s: cut short: chunk %llu lies past the end of the file", path, (unsigned long long)room);
        rc = 1;
        n = (uint32_t)room;
    }
    struct chunk_ref *refs = calloc(n ? n : 1, sizeof *refs);
    if (!refs) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t nrefs = 0;
    for (uint32_t i = 0; i < n; i++)
        if (d[i].state == CGS_CHUNK_WRITING || d[i].state == CGS_CHUNK_FULL)
            refs[nrefs++] = (struct chunk_ref){d[i].seq, i, 0};
    qsort(refs, nrefs, sizeof *refs, by_seq);
    uint64_t ticks, ns;
    clock_sample(&ticks, &ns);
    if (h->clock != CGS_CLOCK_TSC)
        ticks = ns;
    if (ticks > h->start_ticks && ns > h->start_ns)
        ps->ticks_per_ns = (double)(ticks - h->start_ticks) / (double)(ns - h->start_ns);
    /* Records in claim order. A pid whose chunks change program image was replaced by exec (or
     * reused): the statistics of the image that ended go to its entry before the next begins.
     * The threads' allocation events are put back in time order (reorder.h): the whole file is
     * here, so after each chunk every event stamped before the first event of the chunks still to
     * come has been read, which is a cut, and every event can wait for it (exact at any
     * interleaving, for a copy per event). */
    uint64_t *after = malloc((nrefs + 1) * sizeof *after); /* least first stamp of refs[k..] */
    if (!after) {
        free(refs);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    after[nrefs] = UINT64_MAX;
    for (size_t k = nrefs; k-- > 0;) {
        const struct cgs_chunk_desc *c = &d[refs[k].index];
        uint64_t first = UINT64_MAX;
        if (c->kind != CGS_KIND_STATS)
            first = reorder_first_stamp(m + h->chunks_offset + (uint64_t)refs[k].index * h->chunk_size,
                                        c->committed <= h->chunk_size ? c->committed : h->chunk_size);
        after[k] = first < after[k + 1] ? first : after[k + 1];
    }
    ps->reorder = 1;
    struct u64map images;
    u64map_init(&images);
    for (size_t k = 0; k < nrefs; k++) {
        const struct cgs_chunk_desc *c = &d[refs[k].index];
        if (c->kind == CGS_KIND_STATS)
            continue;
        int added;
        uint64_t *img = c->pid ? u64map_put(&images, c->pid, &added) : NULL;
        if (img && !added && *img != c->image && c->image)
            add_stats_of(m, h, refs, nrefs, ps, c->pid, (uint32_t)*img);
        if (img && c->image)
            *img = c->image;
        uint32_t len = c->committed <= h->chunk_size ? c->committed : h->chunk_size;
        if (procset_feed(ps, c->pid, c->tid, m + h->chunks_offset + (uint64_t)refs[k].index * h->chunk_size, len) != 0 &&
            !procset_get(ps, c->pid, NULL))
            break;
        uint64_t w = after[k + 1] ? after[k + 1] - 1 : 0;
        procset_cut(ps, (struct cut){w, w});
    }
    free(after);
    u64map_free(&images);
    add_stats_of(m, h, refs, nrefs, ps, 0, 0);
    /* No launcher saw the end: relate the clock to time with the sample taken above (valid
     * while the machine has not rebooted since). */
    for (size_t i = 0; i < ps->n; i++) {
        process_finish(ps->v[i]);
        ps->v[i]->clock.end_ticks = ticks;
        ps->v[i]->clock.end_ns = ns;
    }
    if (ps->n)
        ps->v[0]->events_lost += h->events_lost;
    if (h->disk_full && !h->nchunks) {
        snprintf(err, errlen, "%s: the disk was full when the program started: there was no room to record "
                              "anything, and the program ran untraced", path);
        rc = 1;
    } else if (h->disk_full) {
        snprintf(err, errlen, "%s: the disk filled up while the program ran; records after that were lost "
                              "(events_lost counts them)", path);
        rc = 1;
    } else if (h->next_chunk > h->nchunks) {
        snprintf(err, errlen, "%s: the trace reached its size limit; later records were lost", path);
        rc = 1;
    }
    free(refs);
    return rc;
}

int trace_read_mem(const uint8_t *data, size_t size, const char *name, struct procset *ps, char *err, size_t errlen)
{
    if (size < 8) {
        snprintf(err, errlen, "%s is not a cgoscope trace (%s)", name, size ? "too short" : "empty");
        return -1;
    }
    if (memcmp(data, magic, 8) == 0)
        return read_launcher_trace(data, size, name, ps, err, errlen);
    uint64_t m;
    memcpy(&m, data, 8);
    if (m == CGS_SHM_MAGIC) {
        if ((uintptr_t)data & 7) { /* the file's structures are read in place */
            snprintf(err, errlen, "%s: not 8-byte aligned in memory", name);
            return -1;
        }
        return read_shim_file(data, size, name, ps, err, errlen);
    }
    snprintf(err, errlen, "%s is not a cgoscope trace (no CGSTRACE header)", name);
    return -1;
}

int trace_read(const char *path, struct procset *ps, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return trace_read_mem((const uint8_t *)"", size, path, ps, err, errlen);
    }
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = trace_read_mem(m, size, path, ps, err, errlen);
    munmap(m, size);
    return rc;
}
