#define _GNU_SOURCE /* SCHED_IDLE */
#include "output/symwarm.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "gobin/golayout.h"
#include "util/thread.h"
#include "util/u64map.h"

struct stack_ref {
    const uint64_t *pcs;
    uint32_t n;
};

/* One process. The fields under "queued" are shared, with w->lock; sym and seen are the
 * thread's until it stops; key and the *_sent counts are the feeder's. */
struct warm_proc {
    const struct process *key;
    uint32_t pid;
    size_t mods_sent, stacks_sent;
    /* queued */
    struct module_info *mods;
    size_t nmods;
    struct stack_ref *stacks;
    size_t nstacks, capstacks;
    /* the thread's */
    struct symbolizer *sym;
    struct u64map seen; /* addresses read ahead */
    int taken;
};

struct symwarm {
    pthread_t thread;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic int stop;
    char *exe;
    struct warm_proc **v;
    size_t n;
};

static void free_mods(struct module_info *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].path);
    free(m);
}

/* With the lock held: a process with work queued, or NULL. */
static struct warm_proc *queued(struct symwarm *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i]->nmods || w->v[i]->nstacks)
            return w->v[i];
    return NULL;
}

static void *warm_thread(void *arg)
{
    struct symwarm *w = arg;
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp); /* not allowed: it just runs at normal priority */
    if (w->exe) {
        go_dwarf_lock();
        go_dwarf_open(w->exe);
        go_dwarf_unlock();
    }
    pthread_mutex_lock(&w->lock);
    while (!atomic_load(&w->stop)) {
        struct warm_proc *e = queued(w);
        if (!e) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        struct module_info *mods = e->mods;
        size_t nmods = e->nmods;
        struct stack_ref *stacks = e->stacks;
        size_t nstacks = e->nstacks;
        e->mods = NULL;
        e->nmods = 0;
        e->stacks = NULL;
        e->nstacks = e->capstacks = 0;
        pthread_mutex_unlock(&w->lock);

        if (!e->sym)
            e->sym = symbolizer_new_empty();
        if (e->sym && nmods)
            symbolizer_add_modules(e->sym, mods, nmods);
        free_mods(mods, nmods);
        for (size_t i = 0; e->sym && i < nstacks && !atomic_load(&w->stop); i++)
            for (uint32_t k = 0; k < stacks[i].n; k++) {
                int added = 0;
                if (stacks[i].pcs[k] != CGS_PC_OMITTED && u64map_put(&e->seen, stacks[i].pcs[k] | 1ull << 63, &added) &&
                    added)
                    symbolizer_warm(e->sym, stacks[i].pcs[k]);
            }
        free(stacks);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    if (getenv("CGOSCOPE_PHASES")) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        size_t pcs = 0;
        for (size_t i = 0; i < w->n; i++)
            pcs += w->v[i]->seen.len;
        fprintf(stderr, "cgoscope read-ahead: %zu addresses, %.3f s CPU\n", pcs, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    }
    return NULL;
}

struct symwarm *symwarm_start(const char *exe)
{
    struct symwarm *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->exe = exe ? strdup(exe) : NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->running = thread_start_quiet(&w->thread, warm_thread, w) == 0;
    if (!w->running) {
        symwarm_free(w);
        return NULL;
    }
    return w;
}

static struct warm_proc *entry(struct symwarm *w, const struct process *p)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i]->key == p)
            return w->v[i];
    struct warm_proc *e = calloc(1, sizeof *e);
    struct warm_proc **nv = e ? realloc(w->v, (w->n + 1) * sizeof *nv) : NULL;
    if (!nv) {
        free(e);
        return NULL;
    }
    e->key = p;
    e->pid = p->pid;
    u64map_init(&e->seen);
    w->v = nv;
    w->v[w->n++] = e; /* under the lock: the thread looks through v */
    return e;
}

/* With the lock held: queues what p has beyond what e was sent. */
static void send_new(struct warm_proc *e, const struct process *p)
{
    if (p->nmodules > e->mods_sent) {
        size_t add = p->nmodules - e->mods_sent;
        struct module_info *nv = realloc(e->mods, (e->nmods + add) * sizeof *nv);
        if (!nv)
            return;
        e->mods = nv;
        for (size_t i = e->mods_sent; i < p->nmodules; i++) {
            struct module_info m = p->modules[i];
            if (!(m.path = strdup(m.path)))
                return;
            e->mods[e->nmods++] = m;
            e->mods_sent = i + 1;
        }
    }
    if (p->nstacks > e->stacks_sent) {
        size_t need = e->nstacks + (p->nstacks - e->stacks_sent);
        if (need > e->capstacks) {
            size_t nc = need < 256 ? 256 : need * 2;
            struct stack_ref *nv = realloc(e->stacks, nc * sizeof *nv);
            if (!nv)
                return;
            e->stacks = nv;
            e->capstacks = nc;
        }
        for (size_t i = e->stacks_sent; i < p->nstacks; i++)
            e->stacks[e->nstacks++] = (struct stack_ref){p->stacks[i].pcs, p->stacks[i].n};
        e->stacks_sent = p->nstacks;
    }
}

void symwarm_feed(struct symwarm *w, const struct procset *ps)
{
    if (!w || !w->running)
        return;
    int sent = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const struct process *p = ps->v[i];
        if (!p->attached || p->nmodules == 0)
            continue; /* nothing to read ahead yet (and a process never attached may be dropped) */
        struct warm_proc *e = NULL;
        for (size_t k = 0; k < w->n && !e; k++)
            if (w->v[k]->key == p)
                e = w->v[k];
        if (e && p->nmodules == e->mods_sent && p->nstacks == e->stacks_sent)
            continue;
        pthread_mutex_lock(&w->lock);
        if (!e)
            e = entry(w, p);
        if (e) {
            send_new(e, p);
            sent = 1;
        }
        pthread_mutex_unlock(&w->lock);
    }
    if (sent)
        pthread_cond_signal(&w->cond);
}

void symwarm_stop(struct symwarm *w)
{
    if (!w || !w->running)
        return;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stop, 1);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->running = 0;
}

struct symbolizer *symwarm_take(struct symwarm *w, const struct process *p)
{
    if (!w)
        return NULL;
    symwarm_stop(w);
    for (size_t i = 0; i < w->n; i++) {
        struct warm_proc *e = w->v[i];
        if (e->taken || e->pid != p->pid || !e->sym || !symbolizer_matches(e->sym, p))
            continue;
        e->taken = 1;
        struct symbolizer *s = e->sym;
        e->sym = NULL;
        if (symbolizer_sync(s, p) != 0) {
            symbolizer_free(s);
            return NULL;
        }
        return s;
    }
    return NULL;
}

void symwarm_free(struct symwarm *w)
{
    if (!w)
        return;
    symwarm_stop(w);
    for (size_t i = 0; i < w->n; i++) {
        struct warm_proc *e = w->v[i];
        free_mods(e->mods, e->nmods);
        free(e->stacks);
        symbolizer_free(e->sym);
        u64map_free(&e->seen);
        free(e);
    }
    free(w->v);
    free(w->exe);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
