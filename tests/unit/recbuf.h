/* Builds record streams the way the shim writes them (the layouts of cgoscope/record.h). */
#ifndef CGOSCOPE_TEST_RECBUF_H
#define CGOSCOPE_TEST_RECBUF_H

#include <stdint.h>
#include <string.h>

#include "cgoscope/record.h"

struct recbuf {
    _Alignas(8) uint8_t data[1 << 16];
    size_t len;
};

static inline void *rb_take(struct recbuf *b, uint16_t type, uint16_t aux, size_t size)
{
    size = CGS_ALIGN8(size);
    struct cgs_rec_hdr *h = (struct cgs_rec_hdr *)(b->data + b->len);
    memset(h, 0, size);
    h->type = type;
    h->aux = aux;
    h->size = (uint32_t)size;
    b->len += size;
    return h;
}

static inline void rb_proc(struct recbuf *b, uint32_t pid, const char *exe)
{
    struct cgs_rec_proc *r = rb_take(b, CGS_REC_PROC, 0, sizeof *r + strlen(exe) + 1);
    r->pid = pid;
    r->ppid = 1;
    strcpy(r->exe, exe);
}

static inline void rb_module(struct recbuf *b, const char *path, uint64_t bias, uint64_t lo, uint64_t hi, int exe)
{
    struct cgs_rec_module *r = rb_take(b, CGS_REC_MODULE, (uint16_t)exe, sizeof *r + strlen(path) + 1);
    r->bias = bias;
    r->lo = lo;
    r->hi = hi;
    strcpy(r->path, path);
}

static inline void rb_site(struct recbuf *b, uint32_t site, const char *symbol)
{
    struct cgs_rec_site *r = rb_take(b, CGS_REC_SITE, CGS_SITE_CFUNC, sizeof *r + strlen(symbol) + 1);
    r->site = site;
    strcpy(r->symbol, symbol);
}

static inline void rb_stack(struct recbuf *b, uint64_t id, uint32_t site, uint16_t nc, const uint64_t *pcs, uint32_t n)
{
    struct cgs_rec_stack *r = rb_take(b, CGS_REC_STACK, nc, sizeof *r + n * sizeof(uint64_t));
    r->id = id;
    r->site = site;
    r->nframes = n;
    memcpy(r->pcs, pcs, n * sizeof(uint64_t));
}

static inline void rb_alloc(struct recbuf *b, uint64_t addr, uint64_t size, uint64_t stack, uint64_t ts)
{
    struct cgs_rec_alloc *r = rb_take(b, CGS_REC_ALLOC, CGS_FN_MALLOC, sizeof *r);
    r->addr = addr;
    r->size = size;
    r->stack = stack;
    r->ts = ts;
}

static inline void rb_free(struct recbuf *b, uint64_t addr, uint64_t ts)
{
    struct cgs_rec_free *r = rb_take(b, CGS_REC_FREE, 0, sizeof *r);
    r->addr = addr;
    r->ts = ts;
}

static inline void rb_realloc(struct recbuf *b, uint64_t old, uint64_t addr, uint64_t size, uint64_t stack,
                              uint64_t ts_free, uint64_t ts)
{
    struct cgs_rec_realloc *r = rb_take(b, CGS_REC_REALLOC, CGS_FN_REALLOC, sizeof *r);
    r->old_addr = old;
    r->addr = addr;
    r->size = size;
    r->stack = stack;
    r->ts_free = ts_free;
    r->ts = ts;
}

static inline void rb_realloc_begin(struct recbuf *b, uint64_t old, uint64_t stack, uint64_t ts_free)
{
    struct cgs_rec_realloc_begin *r = rb_take(b, CGS_REC_REALLOC_BEGIN, CGS_FN_REALLOC, sizeof *r);
    r->old_addr = old;
    r->stack = stack;
    r->ts_free = ts_free;
}

static inline void rb_realloc_fail(struct recbuf *b, uint64_t old)
{
    struct cgs_rec_realloc_fail *r = rb_take(b, CGS_REC_REALLOC_FAIL, 0, sizeof *r);
    r->old_addr = old;
}

#endif
