#define _GNU_SOURCE
#include "analysis/reach.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "gobin/gobuild.h"
#include "gobin/goheap.h"
#include "analysis/liveset.h"
#include "analysis/process.h"

void reach_init(struct reach *r) { memset(r, 0, sizeof *r); }

void reach_free(struct reach *r)
{
    free(r->v);
    reach_init(r);
}

const char *reach_kind_name(int kind)
{
    switch (kind) {
    case REACH_DEFINITE: return "definitely_lost";
    case REACH_INDIRECT: return "indirectly_lost";
    case REACH_POSSIBLE: return "possibly_lost";
    case REACH_REACHABLE: return "still_reachable";
    default: return "unclassified";
    }
}

const char *reach_root_name(int root)
{
    switch (root) {
    case ROOT_GLOBAL: return "go_global"; /* the report tells C globals apart by their symbol */
    case ROOT_GO_HEAP: return "go_heap";
    case ROOT_GO_STACK: return "go_stack";
    case ROOT_C_STACK: return "c_stack";
    case ROOT_TLS: return "tls";
    case ROOT_C_HEAP: return "c_heap";
    default: return "unknown";
    }
}

const struct reach_entry *reach_find(const struct reach *r, uint64_t addr)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->v[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->v[lo].addr == addr ? &r->v[lo] : NULL;
}

/* ---- The scan ---------------------------------------------------------------------------------- */

enum { ST_UNREACHED = 0, ST_POSSIBLE, ST_REACHABLE, ST_INDIRECT };

struct rblock {
    uint64_t addr, end; /* [addr, end); a block of size 0 covers its first byte */
    uint64_t root_addr;
    uint64_t snap; /* offset of its contents in the snapshot, or UINT64_MAX: read when needed */
    uint8_t state, root;
    uint8_t len64; /* LEN64_*: whether the block starts with its length, as SQLite's do */
};

enum { LEN64_UNKNOWN = 0, LEN64_YES, LEN64_NO };

struct region {
    uint64_t lo, hi;
    int root; /* enum reach_root, or ROOT_NONE: not a root (malloc's heap) */
};

struct scan {
    pid_t task;
    struct rblock *b;
    size_t n;
    uint64_t lo, hi; /* lowest block start, highest block end */
    uint8_t *snap;
    size_t *stack;
    size_t nstack, capstack;
    uint8_t *buf; /* READ_PIECE bytes */
    uint64_t bytes_read;
    int oom;
    /* The Go heap, when its layout is known (goheap.h): every span, and the roots in it (spans
     * in use, and the live part of each goroutine's stack). */
    struct region *spans, *goroots;
    size_t nspans, ngoroots;
    /* Each M's system stack (g0): the part above where the runtime starts its work on it (g0's
     * saved stack pointer), or all of it while the M is in a cgo call; the thread's TLS above. */
    struct region *g0s;
    size_t ng0s;
    uint64_t threadentry; /* goheap.h */
    int pagemap;          /* /proc/TASK/pagemap, or -1 */
    /* Or the memory image the shim's helper wrote in file mode (lean.c, dump_memory): its runs,
     * by address, and the text of /proc/PID/maps it saved. */
    const uint8_t *image;
    struct image_run {
        uint64_t addr, len, off;
    } *runs;
    size_t nruns;
    const char *maps_text;
    size_t maps_len;
};

#define READ_PIECE (1u << 20)
#define SNAPSHOT_MAX (1ull << 30) /* live bytes copied at once; beyond that, blocks are read one by one */

static void add_live(const struct live_block *lb, void *arg)
{
    struct scan *s = arg;
    s->b[s->n++] = (struct rblock){.addr = lb->addr, .end = lb->addr + (lb->size ? lb->size : 1), .snap = UINT64_MAX};
}

static int by_addr(const void *a, const void *b)
{
    const struct rblock *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Reads len bytes at addr of the task into buf; what cannot be read (a page unmapped or
 * PROT_NONE) reads as zeros. */
static void read_image(struct scan *s, uint64_t addr, void *buf, size_t len)
{
    memset(buf, 0, len);
    size_t lo = 0, hi = s->nruns; /* the first run that ends after addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->runs[mid].addr + s->runs[mid].len <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < s->nruns && s->runs[i].addr < addr + len; i++) {
        const struct image_run *r = &s->runs[i];
        uint64_t a = r->addr > addr ? r->addr : addr;
        uint64_t b = r->addr + r->len < addr + len ? r->addr + r->len : addr + len;
        memcpy((uint8_t *)buf + (a - addr), s->image + r->off + (a - r->addr), (size_t)(b - a));
        s->bytes_read += b - a;
    }
}

static void read_mem(struct scan *s, uint64_t addr, void *buf, size_t len)
{
    if (s->image) {
        read_image(s, addr, buf, len);
        return;
    }
    struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
    ssize_t got = process_vm_readv(s->task, &l, 1, &r, 1, 0);
    if (got == (ssize_t)len) {
        s->bytes_read += len;
        return;
    }
    /* Page by page: a readable page may follow one that is not. */
    size_t done = got > 0 ? (size_t)got : 0;
    s->bytes_read += done;
    while (done < len) {
        uint64_t a = addr + done;
        size_t n = 4096 - (size_t)(a & 4095);
        if (n > len - done)
            n = len - done;
        struct iovec l2 = {(uint8_t *)buf + done, n}, r2 = {(void *)(uintptr_t)a, n};
        if (process_vm_readv(s->task, &l2, 1, &r2, 1, 0) != (ssize_t)n)
            memset((uint8_t *)buf + done, 0, n);
        else
            s->bytes_read += n;
        done += n;
    }
}

/* Index of the block that holds address w, or -1. */
static inline long find_block(const struct scan *s, uint64_t w)
{
    if (w < s->lo || w >= s->hi)
        return -1;
    size_t lo = 0, hi = s->n; /* the last block starting at or before w */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->b[mid].addr <= w)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct rblock *b = &s->b[lo - 1];
    return w < b->end ? (long)(lo - 1) : -1;
}

static void push(struct scan *s, size_t i)
{
    if (s->nstack == s->capstack) {
        size_t nc = s->capstack ? s->capstack * 2 : 1024;
        size_t *nv = realloc(s->stack, nc * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return;
        }
        s->stack = nv;
        s->capstack = nc;
    }
    s->stack[s->nstack++] = i;
}

/* glibc's malloc keeps pointers to chunk headers (the top chunk, free chunks in its bins): a
 * chunk starts 16 bytes before its block, and the header of the chunk after a block lies in the
 * block's last bytes when its size is not a multiple of 16 (the next chunk's prev_size field is
 * the block's to use). Such a word in main_arena looks like a pointer into the block's middle. */
static inline uint64_t glibc_next_chunk(const struct rblock *b)
{
    uint64_t size = b->end - b->addr, chunk = (size + 8 + 15) & ~15ull;
    return b->addr - 16 + (chunk < 32 ? 32 : chunk);
}

/* memcheck's length64 heuristic (on by default in valgrind): an allocator built on malloc that
 * keeps the length of what it hands out in the block's first 8 bytes (SQLite's sqlite3Malloc
 * does) and gives its callers block+8. A pointer to block+8 is then the block's real handle,
 * when the first word is the block's size less those 8 bytes. */
static int length_prefixed(struct scan *s, struct rblock *b)
{
    if (b->len64 == LEN64_UNKNOWN) {
        uint64_t size = b->end - b->addr, first = 0;
        if (size > 8) {
            if (b->snap != UINT64_MAX)
                memcpy(&first, s->snap + b->snap, sizeof first);
            else
                read_mem(s, b->addr, &first, sizeof first);
        }
        b->len64 = size > 8 && first == size - 8 ? LEN64_YES : LEN64_NO;
    }
    return b->len64 == LEN64_YES;
}

/* memcheck's rule for a pointer found on the way from a root: a pointer to a block's start
 * makes it reachable if everything before it on the way was; any other pointer makes it
 * possibly lost, unless it is reachable already. */
static inline void mark(struct scan *s, uint64_t w, int definite, uint8_t root, uint64_t root_addr)
{
    long j = find_block(s, w);
    if (j < 0)
        return;
    struct rblock *b = &s->b[j];
    if (b->state == ST_REACHABLE)
        return;
    if (w != b->addr && w == glibc_next_chunk(b))
        return; /* malloc's own pointer to the chunk after this one, not into this block */
    if ((w == b->addr || (w == b->addr + 8 && length_prefixed(s, b))) && definite) {
        b->state = ST_REACHABLE;
        b->root = root;
        b->root_addr = root_addr;
        push(s, (size_t)j);
    } else if (b->state == ST_UNREACHED) {
        b->state = ST_POSSIBLE;
        b->root = root;
        b->root_addr = root_addr;
        push(s, (size_t)j);
    }
}

/* The words of [base, base+len) held in buf, as seen from a root (root_addr 0: each word is its
 * own root address) or from a block. */
static void scan_words(struct scan *s, const uint8_t *buf, uint64_t base, size_t len, int definite, uint8_t root,
                       uint64_t root_addr)
{
    size_t skip = (size_t)((8 - (base & 7)) & 7);
    for (size_t off = skip; off + 8 <= len; off += 8) {
        uint64_t w;
        memcpy(&w, buf + off, sizeof w);
        if (w >= s->lo && w < s->hi)
            mark(s, w, definite, root, root_addr ? root_addr : base + off);
    }
}

/* The contents of block i: from the snapshot, or read now into s->buf piece by piece. */
typedef void (*words_fn)(struct scan *s, const uint8_t *buf, uint64_t base, size_t len, void *arg);

static void each_piece(struct scan *s, size_t i, words_fn fn, void *arg)
{
    const struct rblock *b = &s->b[i];
    uint64_t len = b->end - b->addr;
    if (b->snap != UINT64_MAX) {
        fn(s, s->snap + b->snap, b->addr, (size_t)len, arg);
        return;
    }
    for (uint64_t off = 0; off < len; off += READ_PIECE) {
        size_t n = len - off < READ_PIECE ? (size_t)(len - off) : READ_PIECE;
        read_mem(s, b->addr + off, s->buf, n);
        fn(s, s->buf, b->addr + off, n, arg);
    }
}

static void from_block(struct scan *s, const uint8_t *buf, uint64_t base, size_t len, void *arg)
{
    const struct rblock *src = arg;
    scan_words(s, buf, base, len, src->state == ST_REACHABLE, src->root, src->root_addr);
}

static void drain_marks(struct scan *s)
{
    while (s->nstack && !s->oom) {
        size_t i = s->stack[--s->nstack];
        struct rblock src = s->b[i]; /* a copy: marking may change the block's own entry */
        each_piece(s, i, from_block, &src);
    }
}

/* glibc's thread descriptor keeps the start routine's argument; runtime/cgo's threadentry frees
 * it (docs/cgo-facts.md §6), so the word after threadentry's address is a dangling pointer,
 * whose address malloc has often given to another block since. */
static void forget_thread_arg(struct scan *s, uint64_t base, size_t len)
{
    size_t skip = (size_t)((8 - (base & 7)) & 7);
    for (size_t off = skip; off + 16 <= len; off += 8) {
        uint64_t w;
        memcpy(&w, s->buf + off, sizeof w);
        if (w == s->threadentry)
            memset(s->buf + off + 8, 0, 8);
    }
}

/* Whether code address w follows a call instruction (CALL rel32, or CALL through a register):
 * a return address left by the top frames of a thread's stack, not a function's start. */
static int after_call(struct scan *s, uint64_t w)
{
    uint8_t c[5];
    read_mem(s, w - 5, c, sizeof c);
    return c[0] == 0xe8 || (c[3] == 0xff && (c[4] & 0xf8) == 0xd0) ||
           (c[2] == 0x41 && c[3] == 0xff && (c[4] & 0xf8) == 0xd0);
}

/* runtime/cgo's threadentry in an executable without symbols: the start routine glibc keeps in
 * the descriptor of every thread the Go runtime created, so the address of C code (in .text,
 * outside the Go code, not a return address) found in the most threads' TLS. 0 when no single
 * one is. */
static uint64_t guess_threadentry(struct scan *s, const struct region *regs, size_t nregs,
                                  const struct go_heap_layout *gl)
{
    enum { MAXC = 64 };
    uint64_t cand[MAXC] = {0}, in_region[MAXC];
    unsigned count[MAXC] = {0};
    size_t nc = 0;
    for (size_t i = 0; i < nregs; i++) {
        if (regs[i].root != ROOT_TLS || regs[i].hi - regs[i].lo > READ_PIECE)
            continue;
        size_t len = (size_t)(regs[i].hi - regs[i].lo), nin = 0;
        read_mem(s, regs[i].lo, s->buf, len);
        for (size_t off = (size_t)((8 - (regs[i].lo & 7)) & 7); off + 8 <= len; off += 8) {
            uint64_t w;
            memcpy(&w, s->buf + off, sizeof w);
            if (w < gl->text_lo || w >= gl->text_hi || (w >= gl->gotext_lo && w < gl->gotext_hi))
                continue;
            size_t k = 0;
            while (k < nin && in_region[k] != w)
                k++;
            if (k < nin || nin == MAXC)
                continue; /* once per thread */
            in_region[nin++] = w;
            if (after_call(s, w))
                continue;
            size_t c = 0;
            while (c < nc && cand[c] != w)
                c++;
            if (c == nc && nc < MAXC)
                cand[nc++] = w;
            if (c < nc)
                count[c]++;
        }
    }
    uint64_t best = 0;
    unsigned most = 0, ties = 0;
    for (size_t c = 0; c < nc; c++) {
        if (count[c] > most) {
            most = count[c];
            best = cand[c];
            ties = 0;
        } else if (count[c] == most) {
            ties++;
        }
    }
    return ties ? 0 : best;
}

/* Pages never touched read as zeros: they hold no pointer, and memory of the Go runtime and of
 * the shim is reserved in large, mostly untouched mappings. From [at, at+n), the first run of
 * pages that are present or swapped out (/proc/PID/pagemap): its length, and *start. 0: none. */
static size_t next_present(struct scan *s, uint64_t at, size_t n, uint64_t *start)
{
    if (s->pagemap < 0 || n < 2 * 4096) {
        *start = at;
        return n;
    }
    uint64_t first = at / 4096, last = (at + n - 1) / 4096, e[READ_PIECE / 4096 + 2];
    size_t np = (size_t)(last - first + 1);
    if (np > sizeof e / sizeof e[0] || pread(s->pagemap, e, np * 8, (off_t)(first * 8)) != (ssize_t)(np * 8)) {
        *start = at;
        return n;
    }
    const uint64_t PRESENT = 1ull << 63, SWAPPED = 1ull << 62;
    size_t i = 0;
    while (i < np && !(e[i] & (PRESENT | SWAPPED)))
        i++;
    if (i == np) {
        *start = at + n;
        return 0;
    }
    size_t j = i;
    while (j < np && (e[j] & (PRESENT | SWAPPED)))
        j++;
    uint64_t lo = (first + i) * 4096 > at ? (first + i) * 4096 : at;
    uint64_t hi = (first + j) * 4096 < at + n ? (first + j) * 4096 : at + n;
    *start = lo;
    return (size_t)(hi - lo);
}

/* Scans [lo, hi) as a root, leaving out the live blocks inside it (their words are edges of the
 * graph, not roots). */
static void scan_root(struct scan *s, uint64_t lo, uint64_t hi, uint8_t root)
{
    /* the first block that ends after lo */
    size_t k = 0, a = 0, z = s->n;
    while (a < z) {
        size_t mid = a + (z - a) / 2;
        if (s->b[mid].end <= lo)
            a = mid + 1;
        else
            z = mid;
    }
    k = a;
    uint64_t at = lo;
    while (at < hi && !s->oom) {
        while (k < s->n && s->b[k].end <= at)
            k++;
        uint64_t stop = hi;
        if (k < s->n && s->b[k].addr <= at) { /* inside a block: skip it */
            at = s->b[k].end;
            continue;
        }
        if (k < s->n && s->b[k].addr < stop)
            stop = s->b[k].addr;
        while (at < stop) {
            size_t n = stop - at < READ_PIECE ? (size_t)(stop - at) : READ_PIECE;
            n = next_present(s, at, n, &at);
            if (!n)
                break;
            read_mem(s, at, s->buf, n);
            if (root == ROOT_TLS && s->threadentry)
                forget_thread_arg(s, at, n);
            scan_words(s, s->buf, at, n, 1, root, 0);
            at += n;
        }
        at = at > stop ? at : stop;
        drain_marks(s);
    }
}

/* ---- Which memory is a root -------------------------------------------------------------------- */

/* glibc's heap of a secondary arena: a mapping aligned to HEAP_MAX_SIZE (64 MiB) that starts with
 * a heap_info {arena, prev, size, mprotect_size}. Its free chunks hold stale pointers: not a root. */
static int is_glibc_arena_heap(struct scan *s, uint64_t lo, uint64_t hi)
{
    if (lo & ((64ull << 20) - 1))
        return 0;
    uint64_t hi_[4];
    read_mem(s, lo, hi_, sizeof hi_);
    uint64_t arena = hi_[0], prev = hi_[1], size = hi_[2], mprot = hi_[3];
    return arena && (prev == 0 || (prev & ((64ull << 20) - 1)) == 0) && size && size <= mprot &&
           mprot <= (64ull << 20) && lo + mprot <= hi + 4096 && mprot + 4096 >= hi - lo;
}

/* Go's heap arenas: the runtime asks for them at hint addresses i<<40 | 0x00c0<<32. */
static int is_go_arena(uint64_t lo) { return ((lo >> 32) & 0xff) == 0xc0 && (lo >> 40) < 0x80; }

static int in_module(const struct process *p, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < p->nmodules; i++)
        if (lo < p->modules[i].hi && hi > p->modules[i].lo)
            return 1;
    return 0;
}

static int overlaps(const struct region *v, size_t n, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].lo < hi && v[i].hi > lo)
            return 1;
    return 0;
}

static int add_range(struct region **v, size_t *n, size_t *cap, uint64_t lo, uint64_t hi, int root)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        struct region *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = (struct region){lo, hi, root};
    return 0;
}

/* Reads a []*T slice header at addr: its array and length, within reason. */
static int read_slice(struct scan *s, uint64_t addr, uint64_t **out, uint64_t *len)
{
    uint64_t h[3];
    read_mem(s, addr, h, sizeof h);
    if (!h[0] || h[1] > (16u << 20) || h[1] > h[2])
        return -1;
    *len = h[1];
    *out = malloc((h[1] ? h[1] : 1) * sizeof **out);
    if (!*out)
        return -1;
    read_mem(s, h[0], *out, h[1] * sizeof **out);
    return 0;
}

/* Where the Go heap's spans and live goroutine stacks are (goheap.h). Returns 0 when known. */
static int go_heap(struct scan *s, const struct go_heap_layout *gl)
{
    uint64_t *spans = NULL, *gs = NULL, n, ng;
    size_t capspans = 0, capgo = 0, nheap = 0, nstacks = 0, nms = 0;
    if (read_slice(s, gl->mheap + gl->mheap_allspans, &spans, &n) != 0)
        return -1;
    uint32_t hi_off = gl->span_start > gl->span_npages ? gl->span_start : gl->span_npages;
    if (gl->span_state > hi_off)
        hi_off = gl->span_state;
    uint8_t buf[512];
    int rc = hi_off + 8 <= sizeof buf ? 0 : -1;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        if (!spans[i])
            continue;
        read_mem(s, spans[i], buf, hi_off + 8);
        uint64_t start, npages;
        memcpy(&start, buf + gl->span_start, 8);
        memcpy(&npages, buf + gl->span_npages, 8);
        uint8_t state = buf[gl->span_state];
        if (!start || !npages || npages > (1u << 24))
            continue;
        uint64_t end = start + npages * GO_PAGE_SIZE;
        nheap += state == GO_SPAN_IN_USE;
        if (add_range(&s->spans, &s->nspans, &capspans, start, end, ROOT_NONE) != 0 ||
            (state == GO_SPAN_IN_USE && add_range(&s->goroots, &s->ngoroots, &capgo, start, end, ROOT_GO_HEAP) != 0))
            rc = -1;
    }
    free(spans);
    if (rc == 0 && read_slice(s, gl->allgs, &gs, &ng) == 0) {
        for (uint64_t i = 0; i < ng && rc == 0; i++) {
            uint64_t lo, hi, sp, ssp;
            uint32_t st;
            if (!gs[i])
                continue;
            read_mem(s, gs[i] + gl->g_stack_lo, &lo, 8);
            read_mem(s, gs[i] + gl->g_stack_hi, &hi, 8);
            read_mem(s, gs[i] + gl->g_sched_sp, &sp, 8);
            read_mem(s, gs[i] + gl->g_syscallsp, &ssp, 8);
            read_mem(s, gs[i] + gl->g_status, &st, 4);
            st &= ~(uint32_t)GO_G_SCAN;
            if (st == GO_G_DEAD || !lo || hi <= lo || hi - lo > (1u << 30))
                continue;
            /* Below the stack pointer a goroutine saved when it stopped, nothing is live; a
             * goroutine that was running has no saved one: all of its stack counts. */
            uint64_t from = st == GO_G_RUNNING ? lo : st == GO_G_SYSCALL && ssp ? ssp : sp;
            if (from < lo || from > hi)
                from = lo;
            nstacks++;
            if (add_range(&s->goroots, &s->ngoroots, &capgo, from, hi, ROOT_GO_STACK) != 0)
                rc = -1;
        }
        free(gs);
    } else {
        rc = -1;
    }
    /* The Ms, for the thread stacks (read_maps). g0s[i] is the stack [lo, hi), root holding the
     * stack pointer from which it is live. */
    size_t capg0 = 0;
    uint64_t m = 0;
    if (rc == 0)
        read_mem(s, gl->allm, &m, 8);
    for (int k = 0; rc == 0 && m && k < 100000; k++) {
        uint64_t g0 = 0, curg = 0, lo = 0, hi = 0, sp = 0, next = 0;
        uint32_t cst = 0;
        read_mem(s, m + gl->m_g0, &g0, 8);
        read_mem(s, m + gl->m_curg, &curg, 8);
        read_mem(s, m + gl->m_alllink, &next, 8);
        if (g0) {
            read_mem(s, g0 + gl->g_stack_lo, &lo, 8);
            read_mem(s, g0 + gl->g_stack_hi, &hi, 8);
            read_mem(s, g0 + gl->g_sched_sp, &sp, 8);
        }
        if (curg)
            read_mem(s, curg + gl->g_status, &cst, 4);
        cst &= ~(uint32_t)GO_G_SCAN;
        /* Where the program's own data can be on the M's system stack: only in the frames of a
         * cgo call in progress (its goroutine in a system call), somewhere below the pointer the
         * runtime starts from. Otherwise the stack holds the runtime's own frames (the
         * scheduler), and below them what earlier calls left: nothing of it is a root. */
        if (cst == GO_G_SYSCALL || sp < lo || sp > hi)
            sp = lo;
        else
            sp = hi;
        if (lo && hi > lo && add_range(&s->g0s, &s->ng0s, &capg0, lo, hi, 0) == 0) {
            s->g0s[s->ng0s - 1].root = (int)(sp - lo); /* the offset of the live part */
            nms++;
        }
        m = next;
    }
    /* A layout from the table of releases and the code (no DWARF) is trusted only when what it
     * reads looks like a Go runtime: spans in use, goroutines with stacks, Ms. */
    if (gl->from_code && (!nheap || !nstacks || !nms))
        rc = -1;
    if (rc != 0) {
        free(s->spans);
        free(s->goroots);
        free(s->g0s);
        s->spans = s->goroots = s->g0s = NULL;
        s->nspans = s->ngoroots = s->ng0s = 0;
    }
    return rc;
}

static int read_maps(struct scan *s, const struct process *p, struct region **out, size_t *nout, char *why,
                     size_t whylen)
{
    int go = s->nspans > 0; /* the Go heap's layout was read: a Go program */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)s->task);
    FILE *f = s->image ? fmemopen((void *)s->maps_text, s->maps_len, "r") : fopen(path, "re");
    if (!f) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct region *v = NULL;
    size_t n = 0, cap = 0;
    char line[4352];
    uint64_t prev_hi = 0;
    int prev_guard = 0;
    while (fgets(line, sizeof line, f)) {
        uint64_t lo, hi;
        char perms[8] = "";
        int name_at = 0;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %n", &lo, &hi, perms, &name_at) < 3)
            continue;
        char *name = name_at ? line + name_at : line + strlen(line);
        name[strcspn(name, "\n")] = 0;
        /* glibc's guard below a thread's stack: a page or a few (pthread_attr_setguardsize); Go's
         * reserved but unused heap address space is PROT_NONE too, but far larger. */
        int guard = strcmp(perms, "---p") == 0 && !*name && hi - lo <= (64u << 10);
        int after_guard = prev_guard && prev_hi == lo;
        prev_guard = guard;
        prev_hi = hi;
        if (perms[0] != 'r' || perms[1] != 'w' || perms[3] == 's')
            continue; /* read-only, or shared (the channel among them) */
        int root;
        if (*name == '[') {
            if (strcmp(name, "[heap]") == 0)
                root = ROOT_NONE; /* malloc's main heap: only its live blocks are scanned */
            else if (strcmp(name, "[stack]") == 0)
                root = ROOT_C_STACK;
            else if (strncmp(name, "[anon", 5) == 0)
                root = ROOT_C_HEAP;
            else
                continue; /* [vvar], [vdso], [vsyscall] */
        } else if (*name) {
            if (strstr(name, "libcgoscope.so"))
                continue; /* the shim's own data */
            root = ROOT_GLOBAL;
        } else if (in_module(p, lo, hi)) {
            root = ROOT_GLOBAL; /* bss */
        } else if (overlaps(s->spans, s->nspans, lo, hi)) {
            root = ROOT_NONE; /* the Go heap: its spans in use and live stacks are scanned instead */
        } else if (is_go_arena(lo)) {
            root = ROOT_GO_HEAP;
        } else if (is_glibc_arena_heap(s, lo, hi)) {
            root = ROOT_NONE;
        } else if (after_guard) {
            root = ROOT_C_STACK; /* a thread's stack, below which its guard page lies */
        } else {
            /* Other anonymous memory: in a Go program mostly the Go heap (whose addresses are
             * randomized from Go 1.26 on), else what C code mapped itself. */
            root = go ? ROOT_GO_HEAP : ROOT_C_HEAP;
        }
        const struct region *g0 = NULL;
        for (size_t k = 0; root == ROOT_C_STACK && k < s->ng0s && !g0; k++)
            if (s->g0s[k].lo < hi && s->g0s[k].hi > lo)
                g0 = &s->g0s[k];
        int bad = 0;
        if (g0) {
            /* A Go M's thread: its stack from where it is live, the thread's TLS (and glibc's
             * thread descriptor) above the stack Go was told about. */
            uint64_t live = g0->lo + (uint64_t)g0->root;
            if (live < lo)
                live = lo;
            bad = (live < hi && add_range(&v, &n, &cap, live, g0->hi < hi ? g0->hi : hi, ROOT_C_STACK) != 0) ||
                  (g0->hi < hi && add_range(&v, &n, &cap, g0->hi > lo ? g0->hi : lo, hi, ROOT_TLS) != 0);
        } else {
            bad = add_range(&v, &n, &cap, lo, hi, root) != 0;
        }
        if (bad) {
            free(v);
            fclose(f);
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }
    fclose(f);
    if (!n) {
        free(v);
        snprintf(why, whylen, "the ended process's address space was already gone");
        return -1;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* Copies every live block's contents at once (a few large reads, up to 1024 blocks a call). */
static void snapshot(struct scan *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += s->b[i].end - s->b[i].addr;
    if (total > SNAPSHOT_MAX || s->image || !(s->snap = malloc(total ? total : 1)))
        return; /* a memory image is read in place */
    uint64_t off = 0;
    struct iovec l[1024], r[1024];
    for (size_t i = 0; i < s->n;) {
        size_t k = 0, first = i;
        uint64_t want = 0;
        for (; i < s->n && k < 1024; i++, k++) {
            uint64_t len = s->b[i].end - s->b[i].addr;
            s->b[i].snap = off;
            l[k] = (struct iovec){s->snap + off, len};
            r[k] = (struct iovec){(void *)(uintptr_t)s->b[i].addr, len};
            off += len;
            want += len;
        }
        ssize_t got = process_vm_readv(s->task, l, k, r, k, 0);
        if (got == (ssize_t)want) {
            s->bytes_read += want;
            continue;
        }
        /* Something in this batch could not be read: each block on its own. */
        for (size_t j = first; j < i; j++)
            read_mem(s, s->b[j].addr, s->snap + s->b[j].snap, (size_t)(s->b[j].end - s->b[j].addr));
    }
}

/* memcheck's cliques: each block nothing reached, in address order, leads a clique; the blocks
 * it reaches (start or middle) are indirectly lost, leaders of earlier cliques included. */
static void from_leader(struct scan *s, const uint8_t *buf, uint64_t base, size_t len, void *arg)
{
    size_t leader = *(const size_t *)arg;
    size_t skip = (size_t)((8 - (base & 7)) & 7);
    for (size_t off = skip; off + 8 <= len; off += 8) {
        uint64_t w;
        memcpy(&w, buf + off, sizeof w);
        long j = find_block(s, w);
        if (j >= 0 && (size_t)j != leader && s->b[j].state == ST_UNREACHED) {
            s->b[j].state = ST_INDIRECT;
            push(s, (size_t)j);
        }
    }
}

static void cliques(struct scan *s)
{
    for (size_t i = 0; i < s->n && !s->oom; i++) {
        if (s->b[i].state != ST_UNREACHED)
            continue;
        push(s, i);
        while (s->nstack && !s->oom) {
            size_t k = s->stack[--s->nstack];
            each_piece(s, k, from_leader, &i);
        }
    }
}

static int scan_with(struct process *p, struct scan s);

int reach_scan(struct process *p, pid_t task)
{
    struct scan s = {.task = task, .pagemap = -1};
    char pm[64];
    snprintf(pm, sizeof pm, "/proc/%d/pagemap", (int)task);
    s.pagemap = open(pm, O_RDONLY | O_CLOEXEC);
    return scan_with(p, s);
}

int reach_scan_image(struct process *p, const char *path)
{
    struct reach *r = &p->reach;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(r->why, sizeof r->why, "its memory image %s cannot be read: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    const uint8_t *m = size >= 16 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    struct scan s = {.pagemap = -1, .image = m == MAP_FAILED ? NULL : m};
    int ok = s.image && memcmp(m, "CGSMEM01", 8) == 0;
    uint64_t off = 16, mlen = 0;
    if (ok) {
        memcpy(&mlen, m + 8, 8);
        ok = mlen <= size - 16;
        s.maps_text = (const char *)m + 16;
        s.maps_len = (size_t)mlen;
        off = 16 + ((mlen + 7) & ~7ull);
    }
    size_t cap = 0;
    for (;;) { /* the runs, as written: in address order, each within the file */
        uint64_t h[2];
        if (!ok || off + 16 > size) {
            ok = 0;
            break;
        }
        memcpy(h, m + off, 16);
        off += 16;
        if (!h[1])
            break;
        if (h[1] > size - off || (s.nruns && h[0] < s.runs[s.nruns - 1].addr + s.runs[s.nruns - 1].len)) {
            ok = 0;
            break;
        }
        if (s.nruns == cap) {
            cap = cap ? cap * 2 : 256;
            struct image_run *nv = realloc(s.runs, cap * sizeof *nv);
            if (!nv) {
                ok = 0;
                break;
            }
            s.runs = nv;
        }
        s.runs[s.nruns++] = (struct image_run){h[0], h[1], off};
        off += h[1];
    }
    int rc = -1;
    if (ok) {
        rc = scan_with(p, s);
    } else {
        free(s.runs);
        snprintf(r->why, sizeof r->why, "its memory image %s is damaged or incomplete (the helper was killed "
                 "while writing it?)", path);
    }
    if (s.image)
        munmap((void *)s.image, size);
    return rc;
}

static int scan_with(struct process *p, struct scan s)
{
    struct reach *r = &p->reach;
    reach_free(r);
    double t0 = clock_mono_s();
    s.b = malloc((p->live.live_count + p->live.ndups + 1) * sizeof *s.b);
    s.buf = malloc(READ_PIECE);
    if (!s.b || !s.buf) {
        free(s.b);
        free(s.buf);
        snprintf(r->why, sizeof r->why, "out of memory");
        return -1;
    }
    liveset_each(&p->live, add_live, &s);
    qsort(s.b, s.n, sizeof *s.b, by_addr);
    s.lo = s.n ? s.b[0].addr : 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.b[i].end > s.hi)
            s.hi = s.b[i].end;
    struct region *regs = NULL;
    size_t nregs = 0;
    int rc = -1;
    const struct module_info *exe = process_exe(p);
    struct go_heap_layout gl;
    r->go_heap_precise = exe && go_heap_layout_read(exe->path, exe->bias, &gl) == 0 && go_heap(&s, &gl) == 0;
    struct gobuild gb;
    int is_go = exe && gobuild_read(exe->path, &gb) == 0;
    if (is_go)
        gobuild_free(&gb);
    if (!r->go_heap_precise && is_go) {
        /* A Go program whose heap cannot be read (no DWARF): all of the Go heap would be roots,
         * freed goroutine stacks included, where stale copies of pointers to lost blocks abound
         * (a test's goroutine ends, its stack stays). Calling lost blocks held would let a CI
         * gate pass a leak: leave them unclassified, counted as leaked. */
        snprintf(r->why, sizeof r->why, "no DWARF (stripped, as `go test` builds what it runs) and a runtime layout "
                 "cgoscope does not know (it knows Go 1.21 to 1.26): keep DWARF with -ldflags='-s=false -w=false'");
        if (s.pagemap >= 0)
            close(s.pagemap);
        free(s.runs);
        free(s.b);
        free(s.buf);
        return -1;
    }
    s.threadentry = r->go_heap_precise ? gl.threadentry : 0;
    if (read_maps(&s, p, &regs, &nregs, r->why, sizeof r->why) == 0) {
        if (r->go_heap_precise && !s.threadentry && gl.from_code)
            s.threadentry = guess_threadentry(&s, regs, nregs, &gl);
        snapshot(&s);
        for (size_t i = 0; i < nregs && !s.oom; i++)
            if (regs[i].root != ROOT_NONE)
                scan_root(&s, regs[i].lo, regs[i].hi, (uint8_t)regs[i].root);
        for (size_t i = 0; i < s.ngoroots && !s.oom; i++)
            scan_root(&s, s.goroots[i].lo, s.goroots[i].hi, (uint8_t)s.goroots[i].root);
        cliques(&s);
        if (s.oom) {
            snprintf(r->why, sizeof r->why, "out of memory");
        } else if ((r->v = malloc((s.n ? s.n : 1) * sizeof *r->v))) {
            for (size_t i = 0; i < s.n; i++) {
                const struct rblock *b = &s.b[i];
                int kind = b->state == ST_REACHABLE ? REACH_REACHABLE
                         : b->state == ST_POSSIBLE  ? REACH_POSSIBLE
                         : b->state == ST_INDIRECT  ? REACH_INDIRECT
                                                    : REACH_DEFINITE;
                r->v[i] = (struct reach_entry){.addr = b->addr, .root_addr = b->root_addr, .kind = (uint8_t)kind,
                                               .root = b->root};
            }
            r->n = s.n;
            r->state = REACH_SCANNED;
            rc = 0;
        } else {
            snprintf(r->why, sizeof r->why, "out of memory");
        }
    }
    r->scanned_bytes = s.bytes_read;
    r->seconds = clock_mono_s() - t0;
    if (s.pagemap >= 0)
        close(s.pagemap);
    free(s.runs);
    free(regs);
    free(s.spans);
    free(s.goroots);
    free(s.g0s);
    free(s.b);
    free(s.buf);
    free(s.snap);
    free(s.stack);
    return rc;
}

/* ---- In a saved trace ------------------------------------------------------------------------- */

struct saved_hdr {
    uint32_t magic, state;
    uint64_t n, scanned_bytes;
    double seconds;
    char why[200];
};
#define SAVED_MAGIC 0x48434552u /* "REACH" */

uint64_t reach_saved_max(uint64_t nblocks)
{
    struct reach r;
    return sizeof(struct saved_hdr) + nblocks * sizeof *r.v;
}

void *reach_serialize(const struct reach *r, size_t *len)
{
    size_t n = r->state == REACH_SCANNED ? r->n : 0;
    *len = sizeof(struct saved_hdr) + n * sizeof *r->v;
    uint8_t *out = calloc(1, *len);
    if (!out)
        return NULL;
    struct saved_hdr h = {SAVED_MAGIC, (uint32_t)r->state, n, r->scanned_bytes, r->seconds, {0}};
    memcpy(h.why, r->why, sizeof h.why);
    memcpy(out, &h, sizeof h);
    if (n)
        memcpy(out + sizeof h, r->v, n * sizeof *r->v);
    return out;
}

int reach_take_saved(struct reach *r, void *data, size_t len)
{
    struct saved_hdr h;
    if (len < sizeof h)
        return -1;
    memcpy(&h, data, sizeof h);
    if (h.magic != SAVED_MAGIC || h.state > REACH_SCANNED || h.n > (len - sizeof h) / sizeof *r->v)
        return -1;
    reach_free(r);
    h.why[sizeof h.why - 1] = 0;
    memcpy(r->why, h.why, sizeof r->why);
    r->scanned_bytes = h.scanned_bytes;
    r->seconds = h.seconds;
    if (h.state != REACH_SCANNED)
        return 0;
    /* The entries move to the start of the block, which becomes the table: no second copy of what
     * is 24 bytes an unfreed block (24 MB for a million). */
    struct reach_entry *v = data;
    memmove(v, (const uint8_t *)data + sizeof h, h.n * sizeof *v);
    for (size_t i = 0; i < h.n; i++) /* what a damaged trace says must stay within the enums */
        if (v[i].kind > REACH_REACHABLE || v[i].root > ROOT_MAX || (i && v[i].addr < v[i - 1].addr))
            return -1;
    struct reach_entry *shrunk = realloc(v, (h.n ? h.n : 1) * sizeof *v);
    r->v = shrunk ? shrunk : v;
    r->n = h.n;
    r->state = REACH_SCANNED;
    return 1;
}

/* ---- Every process of a run -------------------------------------------------------------------- */

/* Is pid still the exit helper it was (not a pid reused since)? The helper of a process that has
 * ended was handed to cgoscope, a child subreaper: a live child of cgoscope's, or of the program. (Not its name: a
 * helper the machine had no time to run yet still has the program's.) */
static int is_helper(pid_t pid, uint32_t program)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    char state;
    int ppid;
    /* Still the program's while its last threads exit: children move to the subreaper only then. */
    return paren && sscanf(paren + 1, " %c %d", &state, &ppid) == 2 && state != 'Z' && state != 'X' &&
           (ppid == (int)getpid() || ppid == (int)program);
}

void reach_scan_ended(struct process *p)
{
    if (!p->attached || p->reach_done)
        return;
    p->reach_done = 1;
    if (!p->helper_pid) {
        snprintf(p->reach.why, sizeof p->reach.why,
                 "its memory could not be kept after it ended (no exit helper: valgrind, or "
                 "CGOSCOPE_REACHABILITY=0)");
        return;
    }
    pid_t h = (pid_t)p->helper_pid;
    if (!is_helper(h, p->pid)) {
        snprintf(p->reach.why, sizeof p->reach.why, "its exit helper (pid %d) was gone before the scan", (int)h);
        return;
    }
    process_cut(p, UINT64_MAX); /* every record is read: every held event goes */
    reach_scan(p, h);
    /* Lets the address space go. Not waited for: tearing it down takes the helper a while
     * (~0.4 ms for a small program), and cgoscope reaps it later (cmd_run.c, reap_orphans). */
    kill(h, SIGKILL);
}

void reach_scan_procset(struct procset *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        reach_scan_ended(ps->v[i]);
}
