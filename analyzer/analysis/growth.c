#include "analysis/growth.h"

#include <stdlib.h>
#include <string.h>

void growth_init(struct growth *g, uint64_t interval_ticks)
{
    memset(g, 0, sizeof *g);
    g->interval = interval_ticks ? interval_ticks : 1;
    u64map_init(&g->index);
}

void growth_free(struct growth *g)
{
    for (size_t i = 0; i < g->nseries; i++)
        free(g->series[i]);
    free(g->series);
    u64map_free(&g->index);
    memset(g, 0, sizeof *g);
}

/* Gives series a value at every snapshot taken: a series that lags kept its last value (its
 * stack's live memory did not change since). `all` = 0 leaves out the series whose last value
 * is 0: nothing live, so no report reads them (growth_sites), and writing them out would touch
 * memory for nothing. */
static void settle(struct growth *g, int all)
{
    for (size_t s = 0; s < g->nseries; s++) {
        struct growth_series *gs = g->series[s];
        if (!gs->n || (!all && !gs->bytes[gs->n - 1]))
            continue;
        uint64_t b = gs->bytes[gs->n - 1], k = gs->blocks[gs->n - 1];
        while (gs->first + gs->n < g->n && gs->n < GROWTH_POINTS) {
            gs->bytes[gs->n] = b;
            gs->blocks[gs->n] = k;
            gs->n++;
        }
    }
}

void growth_settle(struct growth *g) { settle(g, 0); }

/* Keeps every other snapshot (the even ones), in the time table and in every series. */
static void thin(struct growth *g)
{
    settle(g, 1); /* a lagging series' last value may be an odd one, about to go */
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n; i += 2, k++) {
        g->times[k] = g->times[i];
        g->total_bytes[k] = g->total_bytes[i];
        g->total_blocks[k] = g->total_blocks[i];
    }
    g->n = k;
    for (size_t s = 0; s < g->nseries; s++) {
        struct growth_series *gs = g->series[s];
        uint32_t out = 0, first = UINT32_MAX;
        for (uint32_t j = 0; j < gs->n; j++) {
            uint32_t global = gs->first + j;
            if (global & 1)
                continue;
            if (first == UINT32_MAX)
                first = global / 2;
            gs->bytes[out] = gs->bytes[j];
            gs->blocks[out] = gs->blocks[j];
            out++;
        }
        gs->first = first == UINT32_MAX ? g->n : first;
        gs->n = out;
    }
    g->interval *= 2;
}

static struct growth_series *series_for(struct growth *g, uint64_t stack, uint32_t at)
{
    uint64_t key = stack ? stack : 1;
    uint64_t *v = u64map_get(&g->index, key);
    if (v)
        return g->series[*v - 1];
    if (g->nseries >= GROWTH_MAX_SERIES) {
        g->untracked_stacks++;
        return NULL;
    }
    struct growth_series *gs = calloc(1, sizeof *gs);
    struct growth_series **nv = realloc(g->series, (g->nseries + 1) * sizeof *nv);
    if (!gs || !nv) {
        free(gs);
        if (nv)
            g->series = nv;
        return NULL;
    }
    g->series = nv;
    uint64_t *slot = u64map_put(&g->index, key, NULL);
    if (!slot) {
        free(gs);
        return NULL;
    }
    gs->stack = stack;
    gs->first = at;
    g->series[g->nseries++] = gs;
    *slot = g->nseries;
    return gs;
}

/* Appends sl's live memory at snapshot `at`, after repeating its last value over any it missed. */
static void append(struct growth_series *gs, const struct stack_live *sl, uint32_t at)
{
    if (gs->first + gs->n < at) {
        uint64_t b = gs->n ? gs->bytes[gs->n - 1] : 0, k = gs->n ? gs->blocks[gs->n - 1] : 0;
        while (gs->first + gs->n < at && gs->n < GROWTH_POINTS) {
            gs->bytes[gs->n] = b;
            gs->blocks[gs->n] = k;
            gs->n++;
        }
    }
    if (gs->first + gs->n == at && gs->n < GROWTH_POINTS) {
        gs->bytes[gs->n] = sl->bytes;
        gs->blocks[gs->n] = sl->blocks;
        gs->n++;
    }
}

/* A stack whose memory changed: its series gets the new value (after its last one, repeated over
 * the snapshots it missed); a new series when it has something live and none yet. */
static void visit(struct growth *g, const struct liveset *live, size_t i, uint32_t at)
{
    const struct stack_live *sl = &live->per_stack[i];
    uint64_t *v = u64map_get(&g->index, sl->stack ? sl->stack : 1);
    if (v) {
        append(g->series[*v - 1], sl, at);
        return;
    }
    if (!sl->bytes)
        return; /* nothing live and never seen */
    struct growth_series *gs = series_for(g, sl->stack, at);
    if (gs)
        append(gs, sl, at);
}

/* Only the stacks whose memory changed since the last snapshot are looked at: the other series
 * lag, their last value standing for the snapshots since, until growth_settle or their next
 * change writes it out. (Appending to every series at every snapshot was most of the growth
 * tables' cost on the go-sqlite3 suite: thousands of series, a cache miss each.) */
void growth_snapshot(struct growth *g, struct liveset *live, uint64_t now)
{
    if (g->n == GROWTH_POINTS)
        thin(g);
    uint32_t at = g->n++;
    g->times[at] = now;
    g->total_bytes[at] = live->live_bytes;
    g->total_blocks[at] = live->live_count;
    if (at == 0 || live->changed_all)
        for (size_t i = 0; i < live->nstacks; i++)
            visit(g, live, i, at);
    else
        for (size_t i = 0; i < live->nchanged; i++)
            visit(g, live, live->changed[i], at);
    liveset_clear_changed(live);
    g->next = now + g->interval;
}

void growth_tick(struct growth *g, struct liveset *live, uint64_t now)
{
    if (g->next == 0 || now >= g->next)
        growth_snapshot(g, live, now);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double growth_slope(const uint64_t *t_ns, const uint64_t *v, size_t n)
{
    if (n < 2)
        return 0;
    size_t cap = n * (n - 1) / 2, m = 0;
    double *s = malloc(cap * sizeof *s);
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (t_ns[j] > t_ns[i])
                s[m++] = ((double)v[j] - (double)v[i]) / ((double)(t_ns[j] - t_ns[i]) / 1e9);
    double r = 0;
    if (m) {
        qsort(s, m, sizeof *s, cmp_double);
        r = m & 1 ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
    }
    free(s);
    return r;
}

static double median_u64(const uint64_t *v, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (!d || !n) {
        free(d);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = (double)v[i];
    qsort(d, n, sizeof *d, cmp_double);
    double r = n & 1 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
    free(d);
    return r;
}

struct growth_verdict growth_judge(const uint64_t *t_ns, const uint64_t *bytes, const uint64_t *blocks, size_t n)
{
    struct growth_verdict v = {0, 0, 0};
    if (n < 2)
        return v;
    v.bytes_per_s = growth_slope(t_ns, bytes, n);
    v.blocks_per_s = growth_slope(t_ns, blocks, n);
    double span = (double)(t_ns[n - 1] - t_ns[0]) / 1e9;
    if (n < 5 || span < 1.0 || v.bytes_per_s <= 0)
        return v;
    double rise = v.bytes_per_s * span, end = (double)bytes[n - 1];
    double early = median_u64(bytes, n / 2), late = median_u64(bytes + n - n / 2, n / 2);
    v.growing = late > early && rise >= 4096 && rise >= end / 5;
    return v;
}
