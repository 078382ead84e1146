/* Matching the leak sites and cgo call sites of two runs (diff.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diff/diff.h"

/* The lines of a site's frames, for ordering sites that differ only in lines. */
static int cmp_lines(const struct diff_leak *a, const struct diff_leak *b)
{
    for (size_t k = 0; k < a->nframes && k < b->nframes; k++)
        if (a->frames[k].line != b->frames[k].line)
            return a->frames[k].line < b->frames[k].line ? -1 : 1;
    return (a->nframes > b->nframes) - (a->nframes < b->nframes);
}

static int cmp_unmatched(const void *x, const void *y)
{
    const struct diff_leak *a = *(const struct diff_leak *const *)x, *b = *(const struct diff_leak *const *)y;
    int c = strcmp(a->key_nolines, b->key_nolines);
    return c ? c : cmp_lines(a, b);
}

static void set_change(struct diff_leak_change *c, const struct diff_leak *base, const struct diff_leak *head,
                       const struct diff_limits *lim)
{
    c->base = base;
    c->head = head;
    c->delta_bytes = (int64_t)(head ? head->bytes : 0) - (int64_t)(base ? base->bytes : 0);
    c->delta_blocks = (int64_t)(head ? head->blocks : 0) - (int64_t)(base ? base->blocks : 0);
    if (!base)
        c->status = DIFF_NEW;
    else if (!head)
        c->status = DIFF_FIXED;
    else if (c->delta_bytes > 0 || (c->delta_bytes == 0 && c->delta_blocks > 0))
        c->status = DIFF_GROWN;
    else if (c->delta_bytes < 0 || c->delta_blocks < 0)
        c->status = DIFF_SHRUNK;
    else
        c->status = DIFF_SAME;
    c->regression = (c->status == DIFF_NEW || c->status == DIFF_GROWN) && c->delta_bytes > (int64_t)lim->max_leak_increase;
}

static const struct diff_leak *exact(const struct diff_side *s, const char *key, char *taken)
{
    for (size_t i = 0; i < s->nleaks; i++)
        if (!taken[i] && strcmp(s->leaks[i].key, key) == 0) {
            taken[i] = 1;
            return &s->leaks[i];
        }
    return NULL;
}

/* Leftovers of each side, sorted by key without lines, then by lines. */
static const struct diff_leak **leftovers(const struct diff_side *s, const char *taken, size_t *n)
{
    const struct diff_leak **v = calloc(s->nleaks ? s->nleaks : 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < s->nleaks; i++)
        if (!taken[i])
            v[(*n)++] = &s->leaks[i];
    if (v)
        qsort(v, *n, sizeof *v, cmp_unmatched);
    return v;
}

static int match_leaks(const struct diff_side *base, const struct diff_side *head, const struct diff_limits *lim,
                       struct diff_result *out)
{
    char *btaken = calloc(base->nleaks + 1, 1), *htaken = calloc(head->nleaks + 1, 1);
    out->leaks = calloc(base->nleaks + head->nleaks + 1, sizeof *out->leaks);
    const struct diff_leak **bl = NULL, **hl = NULL;
    size_t nb = 0, nh = 0;
    int rc = -1;
    if (!btaken || !htaken || !out->leaks)
        goto done;
    for (size_t i = 0; i < head->nleaks; i++) {
        const struct diff_leak *b = exact(base, head->leaks[i].key, btaken);
        if (b) {
            htaken[i] = 1;
            set_change(&out->leaks[out->nleaks++], b, &head->leaks[i], lim);
        }
    }
    bl = leftovers(base, btaken, &nb);
    hl = leftovers(head, htaken, &nh);
    if (!bl || !hl)
        goto done;
    /* Merge walk: within one key-without-lines, pair in line order. */
    size_t i = 0, k = 0;
    while (i < nb || k < nh) {
        int c = i == nb ? 1 : k == nh ? -1 : strcmp(bl[i]->key_nolines, hl[k]->key_nolines);
        const struct diff_leak *b = c <= 0 ? bl[i++] : NULL, *h = c >= 0 ? hl[k++] : NULL;
        set_change(&out->leaks[out->nleaks++], b, h, lim);
    }
    rc = 0;
done:
    free(btaken);
    free(htaken);
    free(bl);
    free(hl);
    return rc;
}

static double growth_pct(double base, double head)
{
    if (base < 0 || head < 0)
        return NAN;
    if (base == 0)
        return head > 0 ? INFINITY : 0;
    return (head - base) / base * 100.0;
}

static int match_calls(const struct diff_side *base, const struct diff_side *head, const struct diff_limits *lim,
                       struct diff_result *out)
{
    out->calls = calloc(base->ncalls + head->ncalls + 1, sizeof *out->calls);
    char *btaken = calloc(base->ncalls + 1, 1);
    if (!out->calls || !btaken) {
        free(btaken);
        return -1;
    }
    for (size_t i = 0; i < head->ncalls; i++) {
        const struct diff_call *h = &head->calls[i], *b = NULL;
        for (size_t k = 0; k < base->ncalls && !b; k++)
            if (!btaken[k] && strcmp(base->calls[k].package, h->package) == 0 &&
                strcmp(base->calls[k].function, h->function) == 0) {
                btaken[k] = 1;
                b = &base->calls[k];
            }
        struct diff_call_change *c = &out->calls[out->ncalls++];
        c->base = b;
        c->head = h;
        /* A new call site is shown as such, not judged: it did not grow, it came with the change
         * (a fix that frees what it leaked adds calls of free). An unmeasured one cannot be judged. */
        c->crossing_pct = growth_pct(b ? b->crossing_ns : 0, h->crossing_ns);
        /* The crossing cost per call is an estimate that moves by tens of nanoseconds between
         * runs; a site called a few times would swing by "+67%" on nothing. Below
         * DIFF_CROSSING_FLOOR_NS of added time a growth is shown but not judged. */
        c->regression = b && lim->max_crossing_increase >= 0 && !isnan(c->crossing_pct) &&
                        c->crossing_pct > lim->max_crossing_increase &&
                        h->crossing_ns - b->crossing_ns >= DIFF_CROSSING_FLOOR_NS;
    }
    for (size_t k = 0; k < base->ncalls; k++)
        if (!btaken[k])
            out->calls[out->ncalls++] = (struct diff_call_change){.base = &base->calls[k], .crossing_pct = -100};
    free(btaken);
    return 0;
}

int diff_compare(const struct diff_side *base, const struct diff_side *head, const struct diff_limits *lim,
                 struct diff_result *out)
{
    memset(out, 0, sizeof *out);
    if (match_leaks(base, head, lim, out) != 0 || match_calls(base, head, lim, out) != 0) {
        diff_result_free(out);
        return -1;
    }
    for (size_t i = 0; i < out->nleaks; i++)
        out->leak_regressions += out->leaks[i].regression;
    for (size_t i = 0; i < out->ncalls; i++)
        out->call_regressions += out->calls[i].regression;
    return 0;
}

void diff_result_free(struct diff_result *r)
{
    free(r->leaks);
    free(r->calls);
    memset(r, 0, sizeof *r);
}
