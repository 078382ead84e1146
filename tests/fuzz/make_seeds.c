/*
 * Writes small valid traces of both kinds into a directory, as seeds for fuzz_trace: every
 * record type, an exec (two program images in one pid), a statistics chunk, and the blocks of
 * the launcher's trace (records, statistics, argv, end, clock rate).
 *
 *   make_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/recbuf.h"
#include "ingest/trace.h"

static void records(struct recbuf *b, uint32_t pid)
{
    static const uint64_t pcs[] = {0x401010, 0x401020, 0x402000};
    b->len = 0;
    rb_proc(b, pid, "/bin/prog");
    rb_module(b, "/bin/prog", 0, 0x400000, 0x500000, 1);
    rb_site(b, 0, "main._cgo_0123456789ab_Cfunc_leak");
    rb_stack(b, 77, 0, 2, pcs, 3);
    rb_alloc(b, 0x1000, 10, 77, 1);
    rb_alloc(b, 0x2000, 20, 77, 2);
    rb_realloc(b, 0x2000, 0x3000, 30, 77, 3, 4);
    rb_free(b, 0x1000, 5);
    struct cgs_rec_call *c = rb_take(b, CGS_REC_CALL, 0, sizeof *c);
    c->site = 0;
    c->t0 = 6;
    c->t1 = 9;
}

static void stats(struct cgs_stats_chunk *s)
{
    memset(s, 0, sizeof *s);
    s->magic = CGS_STATS_MAGIC;
    s->tid = 7;
    s->nsites = 1;
    s->gap_min = 5;
    s->gap_count = 1;
    s->sites[0].kind = CGS_STATS_CALL;
    s->sites[0].calls = 3;
    s->sites[0].timed = 3;
    s->sites[0].ticks_sum = 30;
    s->sites[0].ticks_min = 5;
    s->sites[0].ticks_max = 15;
    s->sites[0].hist[cgs_hist_bucket(10)] = 3;
    s->callers[0].count = 3;
    s->callers[0].pcs[0] = 0x402000;
    s->ncallers = 1;
}

static int launcher_trace(const char *path)
{
    static struct recbuf b;
    static struct cgs_stats_chunk s;
    struct trace_writer w;
    if (trace_writer_open(&w, path) != 0)
        return -1;
    double rate = 2.5;
    trace_write_block(&w, TRACE_RATE, 0, 0, &rate, sizeof rate);
    records(&b, 5);
    trace_write_block(&w, TRACE_RECORDS, 5, 7, b.data, b.len);
    records(&b, 5); /* the same pid again: the program replaced itself */
    trace_write_block(&w, TRACE_RECORDS, 5, 7, b.data, b.len);
    stats(&s);
    trace_write_block(&w, TRACE_STATS, 5, 7, &s, sizeof s);
    struct process p;
    process_init(&p);
    p.pid = 5;
    p.argc = 1;
    char *argv[] = {"prog", NULL};
    p.argv = argv;
    p.exit_kind = EXIT_CODE;
    p.exit_value = 3;
    trace_write_end(&w, &p);
    p.argv = NULL;
    p.argc = 0;
    process_free(&p);
    char err[256];
    return trace_writer_close(&w, err, sizeof err);
}

/* The shim's file with four chunks: two program images of one pid, and a statistics chunk. */
static int shim_file(const char *path)
{
    const uint32_t nchunks = 4, chunk = 64 * 1024;
    size_t descs = 4096, size = 4096 + descs + (size_t)nchunks * chunk;
    uint8_t *m = calloc(1, size);
    if (!m)
        return -1;
    struct cgs_shm_header *h = (struct cgs_shm_header *)m;
    h->magic = CGS_SHM_MAGIC;
    h->version = CGS_FORMAT_VERSION;
    h->header_size = 4096;
    h->nchunks = nchunks;
    h->chunk_size = chunk;
    h->chunks_offset = 4096 + descs;
    h->flags = CGS_HF_FILE;
    h->clock = CGS_CLOCK_MONO;
    h->next_chunk = 3;
    h->high_water = 3;
    struct cgs_chunk_desc *d = (struct cgs_chunk_desc *)(m + 4096);
    static struct recbuf b;
    for (uint32_t i = 0; i < 2; i++) {
        records(&b, 9);
        memcpy(m + h->chunks_offset + (size_t)i * chunk, b.data, b.len);
        d[i].state = CGS_CHUNK_WRITING;
        d[i].committed = (uint32_t)b.len;
        d[i].seq = i + 1;
        d[i].pid = 9;
        d[i].tid = 9;
        d[i].image = 100 + i;
        d[i].kind = CGS_KIND_RECORDS;
    }
    stats((struct cgs_stats_chunk *)(m + h->chunks_offset + 2 * (size_t)chunk));
    d[2].state = CGS_CHUNK_WRITING;
    d[2].seq = 3;
    d[2].pid = 9;
    d[2].image = 100;
    d[2].kind = CGS_KIND_STATS;
    FILE *f = fopen(path, "wb");
    int rc = f && fwrite(m, 1, size, f) == size ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/launcher.cgs", argv[1]);
    if (launcher_trace(path) != 0) {
        perror(path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/shim.cgs", argv[1]);
    if (shim_file(path) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}
