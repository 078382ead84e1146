/* Turns records into process state. Every record is checked before it is believed: the
 * stream comes from inside the traced program and may be corrupt (docs/architecture.md,
 * invariant 7). */
#include "analysis/process.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cgoscope/record.h"
#include "cgoscope/gostubs.h"

void process_init(struct process *p)
{
    memset(p, 0, sizeof *p);
    u64map_init(&p->stack_index);
    liveset_init(&p->live);
    lifetime_init(&p->life);
    reorder_init(&p->order);
    process_set_rate(p, 1.0);
}

#define SNAPSHOT_NS 100000000.0 /* 100 ms */

void process_set_rate(struct process *p, double ticks_per_ns)
{
    if (ticks_per_ns <= 0)
        ticks_per_ns = 1.0;
    p->clock.est_ticks_per_ns = ticks_per_ns;
    growth_free(&p->growth);
    growth_init(&p->growth, (uint64_t)(SNAPSHOT_NS * ticks_per_ns));
}

void process_finish(struct process *p)
{
    process_cut(p, UINT64_MAX); /* nothing more will be read: every held event goes */
    if (p->clock.last_ts)
        growth_snapshot(&p->growth, &p->live, p->clock.last_ts);
    growth_settle(&p->growth);
    lifetime_finish(&p->life, &p->live); /* what is still pending freed no live block */
}

static void advance(struct process *p, uint64_t ts)
{
    if (ts > p->clock.last_ts)
        p->clock.last_ts = ts;
    growth_tick(&p->growth, &p->live, ts);
}

void process_free(struct process *p)
{
    reorder_free(&p->order);
    free(p->exe);
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    for (size_t i = 0; i < p->nmodules; i++)
        free(p->modules[i].path);
    free(p->modules);
    for (size_t i = 0; i < p->nsites; i++) {
        free(p->sites[i].symbol);
        free(p->sites[i].package);
        free(p->sites[i].function);
    }
    free(p->sites);
    for (size_t i = 0; i < p->nstacks; i++)
        free(p->stacks[i].pcs);
    free(p->stacks);
    u64map_free(&p->stack_index);
    liveset_free(&p->live);
    lifetime_free(&p->life);
    reach_free(&p->reach);
    growth_free(&p->growth);
    free(p->cx.calls);
    free(p->cx.callbacks);
    free(p->cx.callers);
    free(p->tl.events);
    memset(p, 0, sizeof *p);
}

static int corrupt(struct process *p, const char *what)
{
    if (!p->corrupt_records)
        snprintf(p->corrupt_what, sizeof p->corrupt_what, "%s", what);
    p->corrupt_records++;
    return -1;
}

/* A NUL-terminated string that fits inside the record, or NULL. */
static const char *rec_string(const uint8_t *rec, size_t size, size_t off)
{
    if (off >= size)
        return NULL;
    const char *s = (const char *)rec + off;
    return memchr(s, 0, size - off) ? s : NULL;
}

void process_set_argv(struct process *p, const char *buf, size_t len)
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

static int add_module(struct process *p, const struct cgs_rec_module *r, const char *path)
{
    for (size_t i = 0; i < p->nmodules; i++)
        if (p->modules[i].bias == r->bias && strcmp(p->modules[i].path, path) == 0)
            return 0;
    struct module_info *nm = realloc(p->modules, (p->nmodules + 1) * sizeof *nm);
    if (!nm)
        return -1;
    p->modules = nm;
    char *copy = strdup(path);
    if (!copy)
        return -1;
    nm[p->nmodules++] = (struct module_info){copy, r->bias, r->lo, r->hi, r->h.aux == 1};
    return 0;
}

static int add_site(struct process *p, const struct cgs_rec_site *r, const char *symbol)
{
    /* "<pkgpath>._cgo_<12 hex>_Cfunc_<name>" (or _C2func_, _Cmacro_), the variable's name; or,
     * from a stripped executable, the Go stub's: "<pkgpath>._Cfunc_<name>", "<pkgpath>._cgo_cmalloc"
     * (docs/cgo-facts.md §10). */
    const char *w = strstr(symbol, "._cgo_"), *next;
    const char *fn = NULL;
    size_t pkg_len = 0, fn_len = 0;
    if (w) {
        while ((next = strstr(w + 1, "._cgo_")) != NULL)
            w = next;
        pkg_len = (size_t)(w - symbol);
    }
    if (w && strlen(w + 1) >= 5 + 12 + 7 && strcmp(w + 1, "_cgo_cmalloc") != 0) {
        const char *k = w + 1 + 5 + 12;
        fn = strncmp(k, "_Cfunc_", 7) == 0 ? k + 7 : k + 8;
        fn_len = strlen(fn);
    } else if (!cgs_stub_site(symbol, &pkg_len, &fn, &fn_len)) {
        return corrupt(p, w ? "cgo site name too short" : "cgo site without a _cgo_ or stub name");
    }
    struct site_info *ns = realloc(p->sites, (p->nsites + 1) * sizeof *ns);
    if (!ns)
        return -1;
    p->sites = ns;
    struct site_info *s = &ns[p->nsites++];
    s->id = r->site;
    s->kind = r->h.aux;
    s->wrapper = r->wrapper;
    s->symbol = strdup(symbol);
    s->package = strndup(symbol, pkg_len);
    s->function = strndup(fn, fn_len);
    return s->symbol && s->package && s->function ? 0 : -1;
}

static int add_stack(struct process *p, const struct cgs_rec_stack *r)
{
    int added;
    uint64_t *slot = u64map_put(&p->stack_index, r->id, &added);
    if (!slot)
        return -1;
    if (!added)
        return 0; /* the same stack sent again (the shim's table was crowded) */
    if (p->nstacks == p->capstacks) {
        size_t nc = p->capstacks ? p->capstacks * 2 : 256;
        struct stack_info *nv = realloc(p->stacks, nc * sizeof *nv);
        if (!nv)
            return -1;
        p->stacks = nv;
        p->capstacks = nc;
    }
    struct stack_info *s = &p->stacks[p->nstacks];
    s->id = r->id;
    s->site = r->site;
    s->nc = r->h.aux;
    s->n = r->nframes;
    s->pcs = malloc((r->nframes ? r->nframes : 1) * sizeof(uint64_t));
    if (!s->pcs)
        return -1;
    memcpy(s->pcs, r->pcs, r->nframes * sizeof(uint64_t));
    *slot = ++p->nstacks;
    return 0;
}

/* An allocation event, checked: applied to the live set now, or held for the next cut. */
static int apply_event(void *arg, uint32_t tid, const uint8_t *rec, size_t size)
{
    struct process *p = arg;
    (void)tid;
    (void)size;
    const struct cgs_rec_hdr *h = (const struct cgs_rec_hdr *)rec;
    switch (h->type) {
    case CGS_REC_ALLOC: {
        const struct cgs_rec_alloc *r = (const void *)rec;
        int rc = lifetime_alloc(&p->life, &p->live, r->addr, r->size, r->stack, r->ts);
        advance(p, r->ts);
        return rc;
    }
    case CGS_REC_FREE: {
        const struct cgs_rec_free *r = (const void *)rec;
        int rc = lifetime_free_block(&p->life, &p->live, r->addr, r->ts, r->stack, 0) < 0 ? -1 : 0;
        advance(p, r->ts);
        return rc;
    }
    default: { /* CGS_REC_REALLOC */
        const struct cgs_rec_realloc *r = (const void *)rec;
        if (lifetime_free_block(&p->life, &p->live, r->old_addr, r->ts_free, r->stack, 1) < 0)
            return -1;
        int rc = lifetime_alloc(&p->life, &p->live, r->addr, r->size, r->stack, r->ts);
        advance(p, r->ts);
        return rc;
    }
    }
}

/* An event stamped at or before the last cut arrived late: committed after its chunk was read.
 * Everything that could come after it in time waits for the block it names, which is not
 * released before the record is committed; and two late events cannot depend on each other
 * (the second would have been stamped after the first's commit, after the cut). So it goes
 * at once, as does every event when the source gives no cuts. */
static int event(struct process *p, uint32_t tid, uint64_t ts, const uint8_t *rec, size_t size)
{
    if (!p->reorder_on || ts <= p->last_cut)
        return apply_event(p, tid, rec, size);
    return reorder_push(&p->order, tid, ts, rec, size);
}

void process_cut(struct process *p, uint64_t w)
{
    if (w > p->last_cut)
        p->last_cut = w;
    if (reorder_release(&p->order, w, apply_event, p) != 0)
        p->out_of_memory = 1;
}

void procset_cut(struct procset *s, struct cut c)
{
    for (size_t i = 0; i < s->n; i++) {
        struct process *p = s->v[i];
        if (p->attached) /* before its PROC record, which clock it stamps with is not known */
            process_cut(p, p->clock.source == CGS_CLOCK_TSC ? c.tsc : c.mono);
    }
}

static int set_proc(struct process *p, const uint8_t *rec, size_t size)
{
    const struct cgs_rec_hdr *h = (const struct cgs_rec_hdr *)rec;
    if (size < sizeof(struct cgs_rec_proc))
        return corrupt(p, "short process record");
    const struct cgs_rec_proc *r = (const void *)rec;
    const char *exe = rec_string(rec, size, sizeof *r);
    if (!exe)
        return corrupt(p, "process record without an executable name");
    p->attached = 1;
    p->clock.source = h->aux & CGS_PROC_CLOCK_MASK;
    p->life.forked = (h->aux & CGS_PROC_FORKED) != 0;
    p->clock.start_ticks = r->ts;
    p->clock.start_ns = r->mono_ns;
    p->pid = r->pid;
    p->ppid = r->ppid;
    p->helper_pid = r->helper_pid;
    free(p->exe);
    p->exe = strdup(exe);
    size_t args_at = sizeof *r + strlen(exe) + 1;
    if (r->argv_len && !p->argc && args_at + r->argv_len <= size)
        process_set_argv(p, (const char *)rec + args_at, r->argv_len);
    return 0;
}

static int add_call(struct process *p, uint32_t tid, const uint8_t *rec, size_t size)
{
    if (size < sizeof(struct cgs_rec_call))
        return corrupt(p, "short call record");
    const struct cgs_rec_call *r = (const void *)rec;
    struct timeline_event ev = {tid, r->site, r->t0, r->t1};
    if (!p->tl.events) {
        p->tl.events = malloc(TIMELINE_CAP * sizeof *p->tl.events);
        if (!p->tl.events)
            return -1;
    }
    /* Past the cap, keep a uniform sample of the whole run (reservoir sampling), so every
     * thread and every phase stays represented in a timeline of bounded size. */
    uint64_t seen = p->tl.n + p->tl.dropped;
    if (p->tl.n < TIMELINE_CAP) {
        p->tl.events[p->tl.n++] = ev;
        return 0;
    }
    p->tl.rng = p->tl.rng * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t j = (p->tl.rng >> 16) % (seen + 1);
    if (j < TIMELINE_CAP)
        p->tl.events[j] = ev;
    p->tl.dropped++;
    return 0;
}

static int feed_one(struct process *p, uint32_t tid, const uint8_t *rec, size_t size)
{
    const struct cgs_rec_hdr *h = (const struct cgs_rec_hdr *)rec;
    switch (h->type) {
    case CGS_REC_PROC:
        return set_proc(p, rec, size);
    case CGS_REC_MODULE: {
        if (size < sizeof(struct cgs_rec_module))
            return corrupt(p, "short module record");
        const struct cgs_rec_module *r = (const void *)rec;
        const char *path = rec_string(rec, size, sizeof *r);
        if (!path || r->lo > r->hi)
            return corrupt(p, "bad module record");
        return add_module(p, r, path);
    }
    case CGS_REC_SITE: {
        if (size < sizeof(struct cgs_rec_site))
            return corrupt(p, "short cgo site record");
        const struct cgs_rec_site *r = (const void *)rec;
        const char *sym = rec_string(rec, size, sizeof *r);
        if (!sym)
            return corrupt(p, "bad cgo site record");
        return add_site(p, r, sym);
    }
    case CGS_REC_STACK: {
        if (size < sizeof(struct cgs_rec_stack))
            return corrupt(p, "short stack record");
        const struct cgs_rec_stack *r = (const void *)rec;
        if (r->nframes > CGS_MAX_FRAMES || r->h.aux > r->nframes ||
            size < sizeof *r + (size_t)r->nframes * sizeof(uint64_t) || r->id == 0)
            return corrupt(p, "bad stack record");
        return add_stack(p, r);
    }
    case CGS_REC_ALLOC: {
        if (size < sizeof(struct cgs_rec_alloc))
            return corrupt(p, "short allocation record");
        const struct cgs_rec_alloc *r = (const void *)rec;
        if (!r->addr)
            return corrupt(p, "allocation of address 0");
        p->allocations++;
        return event(p, tid, r->ts, rec, sizeof *r);
    }
    case CGS_REC_FREE: {
        if (size < CGS_REC_FREE_V1_SIZE)
            return corrupt(p, "short free record");
        /* Format 1 had no stack: its record is shorter, and the stack reads as 0; since format 2 a
         * short record may say it has the stack of the thread's previous FREE record. */
        struct cgs_rec_free r;
        memcpy(&r, rec, CGS_REC_FREE_V1_SIZE); /* two fixed-size copies: this is the hot path */
        if (size >= sizeof r)
            memcpy(&r.stack, rec + CGS_REC_FREE_V1_SIZE, sizeof r.stack);
        r.h.size = sizeof r;
        r.stack = lifetime_free_stack(&p->life, tid, size >= sizeof r, r.h.aux & CGS_FREE_SAME_STACK, r.stack);
        if (!r.addr)
            return corrupt(p, "free of address 0");
        if (p->life.nopen) /* it may end a realloc (realloc(p, 0) frees p) */
            lifetime_realloc_end(&p->life, tid, 0, r.addr);
        p->frees++;
        return event(p, tid, r.ts, (const uint8_t *)&r, sizeof r);
    }
    case CGS_REC_REALLOC: {
        if (size < sizeof(struct cgs_rec_realloc))
            return corrupt(p, "short realloc record");
        const struct cgs_rec_realloc *r = (const void *)rec;
        if (!r->addr || !r->old_addr)
            return corrupt(p, "realloc of address 0");
        if (p->life.nopen)
            lifetime_realloc_end(&p->life, tid, 0, r->old_addr);
        p->frees++;
        p->allocations++;
        /* Ordered by its free's stamp: the new block is nobody else's before realloc returns. */
        return event(p, tid, r->ts_free, rec, sizeof *r);
    }
    case CGS_REC_REALLOC_BEGIN: {
        /* Not an event: the REALLOC (or FREE) record that ends it is. Only a realloc that failed,
         * or that the process died in, is checked, at the end (lifetime.h). */
        if (size < sizeof(struct cgs_rec_realloc_begin))
            return corrupt(p, "short realloc record");
        const struct cgs_rec_realloc_begin *r = (const void *)rec;
        if (!r->old_addr)
            return corrupt(p, "realloc of address 0");
        return lifetime_realloc_begin(&p->life, tid, r->old_addr, r->ts_free, r->stack);
    }
    case CGS_REC_REALLOC_FAIL: {
        if (size < sizeof(struct cgs_rec_realloc_fail))
            return corrupt(p, "short realloc record");
        const struct cgs_rec_realloc_fail *r = (const void *)rec;
        if (p->life.nopen)
            lifetime_realloc_end(&p->life, tid, 1, r->old_addr);
        return 0;
    }
    case CGS_REC_CALL:
        return add_call(p, tid, rec, size);
    default:
        return 0; /* a newer shim's record: skip it by its size */
    }
}

int process_feed(struct process *p, uint32_t tid, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < sizeof(struct cgs_rec_hdr))
            return corrupt(p, "record cut short");
        struct cgs_rec_hdr h;
        memcpy(&h, data + off, sizeof h);
        if (h.size < sizeof h || (h.size & 7) || h.size > len - off)
            return corrupt(p, "record with an impossible size");
        /* Records are 8-aligned in the chunk and in the trace file; copy if not. */
        const uint8_t *rec = data + off;
        uint64_t aligned[64];
        uint8_t *heap = NULL;
        if ((uintptr_t)rec & 7) {
            if (h.size <= sizeof aligned) {
                memcpy(aligned, rec, h.size);
                rec = (const uint8_t *)aligned;
            } else {
                heap = malloc(h.size);
                if (!heap)
                    return -1;
                memcpy(heap, rec, h.size);
                rec = heap;
            }
        }
        int rc = feed_one(p, tid, rec, h.size);
        free(heap);
        if (rc != 0) {
            if (!p->corrupt_records)
                p->out_of_memory = 1;
            return -1;
        }
        off += h.size;
    }
    return 0;
}

const struct stack_info *process_stack(const struct process *p, uint64_t id)
{
    uint64_t *v = u64map_get(&p->stack_index, id);
    return v ? &p->stacks[*v - 1] : NULL;
}

const struct site_info *process_site(const struct process *p, uint32_t id)
{
    for (size_t i = 0; i < p->nsites; i++)
        if (p->sites[i].id == id)
            return &p->sites[i];
    return NULL;
}

const struct module_info *process_exe(const struct process *p)
{
    for (size_t i = 0; i < p->nmodules; i++)
        if (p->modules[i].is_exe)
            return &p->modules[i];
    return NULL;
}

static void merge(struct call_stats *into, const struct cgs_site_stats *s)
{
    into->calls += s->calls;
    into->timed += s->timed;
    into->ticks_sum += s->ticks_sum;
    into->exact_calls += s->exact_calls;
    into->exact_ticks += s->exact_ticks;
    into->flags |= s->flags;
    if (s->timed) {
        if (s->ticks_max > into->ticks_max)
            into->ticks_max = s->ticks_max;
        if (!into->ticks_min || s->ticks_min < into->ticks_min)
            into->ticks_min = s->ticks_min;
    }
    for (unsigned b = 0; b < CGS_HIST_BUCKETS; b++)
        into->hist[b] += s->hist[b];
}

int process_add_stats(struct process *p, const struct cgs_stats_chunk *c)
{
    if (c->magic != CGS_STATS_MAGIC || c->nsites > CGS_STATS_SITES)
        return corrupt(p, "bad statistics chunk");
    p->cx.have_stats = 1;
    for (uint32_t i = 0; i < c->nsites; i++) {
        const struct cgs_site_stats *s = &c->sites[i];
        if (s->kind == CGS_STATS_CALL) {
            if (s->site >= CGS_NSTUBS)
                return corrupt(p, "statistics for an impossible cgo site");
            if (s->site >= p->cx.ncalls) {
                size_t n = (size_t)s->site + 1;
                struct call_stats *nv = realloc(p->cx.calls, n * sizeof *nv);
                if (!nv)
                    return -1;
                memset(nv + p->cx.ncalls, 0, (n - p->cx.ncalls) * sizeof *nv);
                for (size_t k = p->cx.ncalls; k < n; k++)
                    nv[k].site = (uint32_t)k;
                p->cx.calls = nv;
                p->cx.ncalls = n;
            }
            merge(&p->cx.calls[s->site], s);
        } else if (s->kind == CGS_STATS_CALLBACK) {
            size_t k = 0;
            while (k < p->cx.ncallbacks && p->cx.callbacks[k].key != s->key)
                k++;
            if (k == p->cx.ncallbacks) {
                struct call_stats *nv = realloc(p->cx.callbacks, (k + 1) * sizeof *nv);
                if (!nv)
                    return -1;
                p->cx.callbacks = nv;
                memset(&nv[k], 0, sizeof nv[k]);
                nv[k].key = s->key;
                p->cx.ncallbacks++;
            }
            merge(&p->cx.callbacks[k], s);
        }
    }
    for (uint32_t i = 0; i < CGS_STATS_CALLERS; i++) {
        const struct cgs_caller_stats *e = &c->callers[i];
        if (!e->count)
            continue;
        size_t k = 0;
        while (k < p->cx.ncallers && !(p->cx.callers[k].site == e->site && memcmp(p->cx.callers[k].pcs, e->pcs, sizeof e->pcs) == 0))
            k++;
        if (k == p->cx.ncallers) {
            struct caller_sample *nv = realloc(p->cx.callers, (k + 1) * sizeof *nv);
            if (!nv)
                return -1;
            p->cx.callers = nv;
            nv[k].site = e->site;
            memcpy(nv[k].pcs, e->pcs, sizeof e->pcs);
            nv[k].count = 0;
            nv[k].exact = 0;
            p->cx.ncallers++;
        }
        p->cx.callers[k].count += e->count;
        p->cx.callers[k].exact += e->exact;
    }
    p->cx.store_free_calls += c->lean_calls;
    if (c->gap_count) {
        if (!p->cx.gap_count || c->gap_min < p->cx.gap_min)
            p->cx.gap_min = c->gap_min;
        p->cx.gap_count += c->gap_count;
    }
    p->cx.callers_dropped += c->callers_dropped;
    return 0;
}

double process_ticks_to_ns(const struct process *p, double ticks)
{
    if (p->clock.source != CGS_CLOCK_TSC)
        return ticks;
    if (p->clock.end_ns > p->clock.start_ns && p->clock.end_ticks > p->clock.start_ticks)
        return ticks * (double)(p->clock.end_ns - p->clock.start_ns) / (double)(p->clock.end_ticks - p->clock.start_ticks);
    return ticks / p->clock.est_ticks_per_ns; /* the run is still going: the rate estimated at its start */
}

void procset_init(struct procset *s) { memset(s, 0, sizeof *s); }

void procset_free(struct procset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        process_free(s->v[i]);
        free(s->v[i]);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

struct process *procset_add(struct procset *s, uint32_t pid)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct process **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return NULL;
        s->v = nv;
        s->cap = nc;
    }
    struct process *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    process_init(p);
    if (s->ticks_per_ns > 0)
        process_set_rate(p, s->ticks_per_ns);
    p->reorder_on = s->reorder;
    p->pid = pid;
    s->v[s->n++] = p;
    return p;
}

struct process *procset_get(struct procset *s, uint32_t pid, int *created)
{
    if (created)
        *created = 0;
    for (size_t i = s->n; i-- > 0;) /* the newest: after exec, a pid has one entry per program */
        if (s->v[i]->pid == pid)
            return s->v[i];
    struct process *p = procset_add(s, pid);
    if (!p)
        return NULL;
    if (created)
        *created = 1;
    return p;
}

void procset_drop_unseen(struct procset *s, uint32_t keep_pid)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct process *p = s->v[i];
        if (p->pid != keep_pid && !p->attached && !p->untraced_why[0] && !p->allocations && !p->cx.have_stats) {
            process_free(p);
            free(p);
            continue;
        }
        s->v[k++] = p;
    }
    s->n = k;
}

struct process *procset_flat(const struct procset *s)
{
    struct process *flat = malloc((s->n ? s->n : 1) * sizeof *flat);
    if (!flat)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        flat[i] = *s->v[i]; /* shallow: the set still owns what the fields point to */
    return flat;
}

void process_set_exit(struct process *p, int status)
{
    if (WIFSIGNALED(status)) {
        p->exit_kind = EXIT_SIGNAL;
        p->exit_value = WTERMSIG(status);
    } else if (WIFEXITED(status)) {
        p->exit_kind = EXIT_CODE;
        p->exit_value = WEXITSTATUS(status);
    }
}
