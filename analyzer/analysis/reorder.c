/* Allocation events put back in time order across threads: see reorder.h. */
#include "analysis/reorder.h"

#include <stdlib.h>
#include <string.h>

#include "cgoscope/record.h"

void reorder_init(struct reorder *r)
{
    memset(r, 0, sizeof *r);
    u64map_init(&r->index);
}

void reorder_free(struct reorder *r)
{
    for (size_t i = 0; i < r->ns; i++)
        free(r->s[i].q);
    u64map_free(&r->index);
    free(r->s);
    free(r->heap);
    reorder_init(r);
}

static struct reorder_stream *stream_of(struct reorder *r, uint32_t tid)
{
    /* Records come in runs from one thread: the last stream saves a map lookup. */
    if (r->last && r->last <= r->ns && r->s[r->last - 1].tid == tid)
        return &r->s[r->last - 1];
    uint64_t *v = u64map_get(&r->index, (uint64_t)tid + 1);
    if (v) {
        r->last = (size_t)*v;
        return &r->s[*v - 1];
    }
    if (r->ns == r->caps) {
        size_t nc = r->caps ? r->caps * 2 : 16;
        struct reorder_stream *n = realloc(r->s, nc * sizeof *n);
        if (!n)
            return NULL;
        r->s = n;
        r->caps = nc;
    }
    v = u64map_put(&r->index, (uint64_t)tid + 1, NULL);
    if (!v)
        return NULL;
    *v = r->ns + 1;
    r->last = r->ns + 1;
    struct reorder_stream *s = &r->s[r->ns++];
    memset(s, 0, sizeof *s);
    s->tid = tid;
    return s;
}

static int grow(struct reorder_stream *s)
{
    size_t nc = s->cap ? s->cap * 2 : 64;
    struct reorder_event *q = malloc(nc * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        q[i] = s->q[(s->head + i) & (s->cap - 1)];
    free(s->q);
    s->q = q;
    s->cap = nc;
    s->head = 0;
    return 0;
}

int reorder_push(struct reorder *r, uint32_t tid, uint64_t ts, const uint8_t *rec, size_t size)
{
    if (size > sizeof(((struct reorder_event *)0)->rec))
        return -1;
    struct reorder_stream *s = stream_of(r, tid);
    if (!s || (s->n == s->cap && grow(s) != 0))
        return -1;
    struct reorder_event *e = &s->q[(s->head + s->n) & (s->cap - 1)]; /* cap: a power of two */
    e->ts = ts;
    e->seq = r->seq++;
    memcpy(e->rec, rec, size);
    s->n++;
    r->held++;
    return 0;
}

static inline const struct reorder_event *head_of(const struct reorder_stream *s) { return &s->q[s->head]; }

static inline int before(const struct reorder_stream *a, const struct reorder_stream *b)
{
    const struct reorder_event *x = head_of(a), *y = head_of(b);
    return x->ts < y->ts || (x->ts == y->ts && x->seq < y->seq);
}

/* A binary heap of stream indices, by their head event. */
static void sift_down(const struct reorder *r, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && before(&r->s[h[l]], &r->s[h[m]]))
            m = l;
        if (l + 1 < n && before(&r->s[h[l + 1]], &r->s[h[m]]))
            m = l + 1;
        if (m == i)
            return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

int reorder_release(struct reorder *r, uint64_t w, reorder_apply_fn apply, void *arg)
{
    if (!r->held)
        return 0;
    if (r->caph < r->ns) {
        uint32_t *nh = realloc(r->heap, r->caps * sizeof *nh);
        if (!nh)
            return -1;
        r->heap = nh;
        r->caph = r->caps;
    }
    uint32_t *h = r->heap;
    size_t n = 0;
    for (size_t i = 0; i < r->ns; i++)
        if (r->s[i].n && head_of(&r->s[i])->ts <= w)
            h[n++] = (uint32_t)i;
    for (size_t i = n; i-- > 0;)
        sift_down(r, h, n, i);
    int rc = 0;
    while (n > 1) {
        struct reorder_stream *s = &r->s[h[0]];
        const struct reorder_event *e = head_of(s);
        const struct { uint16_t type, aux; uint32_t size; } *hd = (const void *)e->rec;
        rc = apply(arg, s->tid, e->rec, hd->size); /* the slot stays valid until the next push */
        s->head = (s->head + 1) & (s->cap - 1);
        s->n--;
        r->held--;
        if (!s->n || head_of(s)->ts > w)
            h[0] = h[--n];
        sift_down(r, h, n, 0);
        if (rc != 0)
            return rc;
    }
    if (n == 1) { /* one thread left: its events in order, no merging */
        struct reorder_stream *s = &r->s[h[0]];
        while (s->n && head_of(s)->ts <= w) {
            const struct reorder_event *e = head_of(s);
            const struct { uint16_t type, aux; uint32_t size; } *hd = (const void *)e->rec;
            rc = apply(arg, s->tid, e->rec, hd->size);
            s->head = (s->head + 1) & (s->cap - 1);
            s->n--;
            r->held--;
            if (rc != 0)
                return rc;
        }
    }
    return rc;
}

uint64_t reorder_first_stamp(const uint8_t *recs, size_t len)
{
    size_t off = 0;
    while (len - off >= sizeof(struct cgs_rec_hdr) + sizeof(uint64_t)) {
        struct cgs_rec_hdr h;
        memcpy(&h, recs + off, sizeof h);
        if (h.size < sizeof h || (h.size & 7) || h.size > len - off)
            break;
        if (h.type == CGS_REC_ALLOC || h.type == CGS_REC_FREE || h.type == CGS_REC_REALLOC ||
            h.type == CGS_REC_REALLOC_BEGIN) { /* BEGIN: the stamp of the REALLOC that ends it */
            uint64_t ts;
            memcpy(&ts, recs + off + sizeof h, sizeof ts);
            return ts;
        }
        off += h.size;
    }
    return UINT64_MAX;
}
