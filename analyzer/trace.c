#define _GNU_SOURCE
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'C', 'G', 'S', 'T', 'R', 'A', 'C', 'E'};

struct block_hdr {
    uint32_t kind;
    uint32_t tid;
    uint64_t len;
};

struct end_block {
    int32_t exit_kind;
    int32_t exit_value;
    uint64_t events_lost;
    uint64_t end_ticks, end_ns; /* the clock's rate: see process_ticks_to_ns */
};

static void fail(struct trace_writer *w)
{
    if (!w->failed) {
        w->failed = 1;
        w->errno_saved = errno ? errno : EIO;
    }
}

static void put(struct trace_writer *w, const void *data, size_t len)
{
    if (w->failed || !len)
        return;
    if (fwrite(data, 1, len, w->f) != len)
        fail(w);
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
    put(w, magic, sizeof magic);
    put(w, v, sizeof v);
    return 0;
}

void trace_write_block(struct trace_writer *w, uint32_t kind, uint32_t tid, const void *data, uint64_t len)
{
    if (!w->f)
        return;
    struct block_hdr h = {kind, tid, len};
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
        trace_write_block(w, TRACE_ARGV, 0, buf, len);
        free(buf);
    }
    struct end_block e = {p->exit_kind, p->exit_value, p->events_lost, p->end_ticks, p->end_ns};
    trace_write_block(w, TRACE_END, 0, &e, sizeof e);
}

int trace_writer_close(struct trace_writer *w, char *err, size_t errlen)
{
    if (!w->f)
        return 0;
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

static void read_argv(struct process *p, const char *buf, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += buf[i] == 0;
    char **argv = calloc(count + 1, sizeof *argv);
    if (!argv)
        return;
    size_t k = 0;
    for (size_t off = 0; off < len && k < count;) {
        size_t l = strnlen(buf + off, len - off);
        argv[k++] = strndup(buf + off, l);
        off += l + 1;
    }
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    p->argv = argv;
    p->argc = (int)k;
}

int trace_read(const char *path, struct process *p, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    uint64_t fsize = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : 0;
    char m[8];
    uint32_t v[2];
    if (fread(m, 1, 8, f) != 8 || memcmp(m, magic, 8) != 0 || fread(v, sizeof v, 1, f) != 1) {
        snprintf(err, errlen, "%s is not a cgoscope trace (no CGSTRACE header)", path);
        fclose(f);
        return -1;
    }
    if (v[0] != TRACE_VERSION || v[1] != 16) {
        snprintf(err, errlen, "%s is a trace of format %u; this cgoscope reads format %u: use the cgoscope that wrote it",
                 path, v[0], TRACE_VERSION);
        fclose(f);
        return -1;
    }
    uint64_t pos = 16;
    int ended = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct block_hdr h;
        size_t got = fread(&h, 1, sizeof h, f);
        if (got == 0)
            break;
        if (got != sizeof h) {
            snprintf(err, errlen, "%s: cut short at byte %llu (a block header is incomplete)", path, (unsigned long long)pos);
            break;
        }
        pos += sizeof h;
        uint64_t padded = (h.len + 7) & ~7ull;
        if (h.len > fsize - pos || padded > fsize - pos || h.len > (1ull << 32)) {
            snprintf(err, errlen, "%s: cut short or corrupt at byte %llu (a block claims %llu bytes)", path,
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
        if (padded && fread(buf, 1, padded, f) != padded) {
            snprintf(err, errlen, "%s: cut short at byte %llu", path, (unsigned long long)pos);
            break;
        }
        pos += padded;
        if (h.kind == TRACE_RECORDS) {
            process_feed(p, h.tid, buf, h.len);
        } else if (h.kind == TRACE_ARGV) {
            read_argv(p, (const char *)buf, h.len);
        } else if (h.kind == TRACE_STATS) {
            if (h.len >= sizeof(struct cgs_stats_chunk)) {
                struct cgs_stats_chunk *c = malloc(sizeof *c);
                if (c) {
                    memcpy(c, buf, sizeof *c);
                    process_add_stats(p, c);
                    free(c);
                }
            }
        } else if (h.kind == TRACE_END && h.len >= sizeof(struct end_block)) {
            struct end_block e;
            memcpy(&e, buf, sizeof e);
            if (e.exit_kind == EXIT_CODE || e.exit_kind == EXIT_SIGNAL) {
                p->exit_kind = e.exit_kind;
                p->exit_value = e.exit_value;
            }
            p->events_lost = e.events_lost;
            p->end_ticks = e.end_ticks;
            p->end_ns = e.end_ns;
            ended = 1;
        }
    }
    free(buf);
    fclose(f);
    if (!ended && !err[0])
        snprintf(err, errlen, "%s ends early: the recording was interrupted; the report covers what was recorded", path);
    return ended ? 0 : 1;
}
