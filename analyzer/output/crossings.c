/*
 * The crossing report. Counts come straight from the threads' counters and are exact. Times
 * are in the shim's clock (the TSC when invariant), converted to nanoseconds with the rate
 * measured over the run. Quantiles come from a log-linear histogram (4 buckets per power of
 * two: within about 10%). The per-call crossing cost is measured in the run itself: the least
 * time seen between a cgo call returning to Go and the next cgo call entering C on the same
 * thread. That gap holds the whole round trip through runtime.cgocall (exitsyscall, return,
 * the next call, entersyscall, the stack switch), so it is an estimate from above: it is exact
 * for a loop of back-to-back calls and larger when Go does work between calls.
 */
#include "output/crossings.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/exports.h"
#include "output/report.h"

double crossings_quantile_ticks(const struct call_stats *s, double q)
{
    if (!s->timed)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)s->timed);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < CGS_HIST_BUCKETS; b++) {
        seen += s->hist[b];
        if (seen >= want) {
            double lo = (double)cgs_hist_lower(b);
            double hi = b + 1 < CGS_HIST_BUCKETS ? (double)cgs_hist_lower(b + 1) : lo * 1.19;
            double mid = (lo + hi) / 2;
            if (mid < (double)s->ticks_min)
                mid = (double)s->ticks_min;
            if (mid > (double)s->ticks_max)
                mid = (double)s->ticks_max;
            return mid;
        }
    }
    return (double)s->ticks_max;
}

/* Exactly timed calls count as they are; random samples stand for the other calls. */
static double sample_scale(const struct call_stats *s)
{
    uint64_t sampled = s->timed - s->exact_calls, rest = s->calls - s->exact_calls;
    return sampled ? (double)rest / (double)sampled : 0;
}

static double total_ticks(const struct call_stats *s)
{
    if (!s->timed)
        return 0;
    if (s->timed == s->exact_calls) /* nothing sampled: exact, or extrapolated from the mean */
        return (double)s->ticks_sum * ((double)s->calls / (double)s->timed);
    return (double)s->exact_ticks + (double)(s->ticks_sum - s->exact_ticks) * sample_scale(s);
}

static int cmp_site(const void *a, const void *b)
{
    const struct crossing_site *x = a, *y = b;
    double cx = x->c_time_ns + (x->crossing_ns > 0 ? x->crossing_ns : 0);
    double cy = y->c_time_ns + (y->crossing_ns > 0 ? y->crossing_ns : 0);
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return x->calls > y->calls ? -1 : x->calls < y->calls;
}

static int cmp_caller(const void *a, const void *b)
{
    const struct crossing_caller *x = a, *y = b;
    return x->calls > y->calls ? -1 : x->calls < y->calls;
}

/* The caller: the first of the sampled Go frames that is the program's, not cgo's glue. */
static int caller_of(struct symbolizer *sym, const struct caller_sample *c, struct crossing_caller *out)
{
    for (int i = 0; i < 4 && c->pcs[i]; i++) {
        size_t n;
        const struct frame *f = symbolize(sym, c->pcs[i], &n);
        if (!n || !f[0].function || f[0].lang != LANG_GO || report_frame_is_glue(f[0].function, 1))
            continue;
        out->function = f[0].function;
        out->file = f[0].file;
        out->line = f[0].line;
        return 1;
    }
    return 0;
}

static void add_callers(struct crossing_site *cs, const struct call_stats *st, const struct process *p,
                        struct symbolizer *sym)
{
    struct crossing_caller all[64];
    double est[64];
    size_t n = 0;
    double scale = sample_scale(st);
    for (size_t i = 0; i < p->cx.ncallers; i++) {
        const struct caller_sample *c = &p->cx.callers[i];
        if (c->site != st->site)
            continue;
        struct crossing_caller cc = {0};
        if (!caller_of(sym, c, &cc))
            continue;
        size_t k = 0;
        while (k < n && !(all[k].function == cc.function && all[k].line == cc.line && all[k].file == cc.file))
            k++;
        if (k == n) {
            if (n == 64)
                continue;
            est[n] = 0;
            all[n++] = cc;
        }
        /* Callers are seen on timed calls: exact ones count once, samples stand for the rest. */
        est[k] += (double)c->exact + (double)(c->count - c->exact) * scale;
    }
    cs->callers_estimated = st->exact_calls != st->calls || (st->flags & CGS_SF_CALLERS_SAMPLED);
    for (size_t k = 0; k < n; k++)
        all[k].calls = (uint64_t)llround(est[k]);
    qsort(all, n, sizeof *all, cmp_caller);
    cs->ncallers = n < 5 ? n : 5;
    memcpy(cs->callers, all, cs->ncallers * sizeof *all);
}

int crossings_build(struct crossings *x, const struct process *p, struct symbolizer *sym)
{
    memset(x, 0, sizeof *x);
    x->clock_calibrated = p->clock.source != CGS_CLOCK_TSC || (p->clock.end_ticks > p->clock.start_ticks && p->clock.end_ns > p->clock.start_ns);
    x->per_call_ns = p->cx.gap_count ? (double)llround(process_ticks_to_ns(p, (double)p->cx.gap_min)) : -1;
    /* No crossing takes microseconds: a least gap that long means the program never made two
     * calls back to back (a server handling a request now and then), not a slow crossing. */
    if (x->per_call_ns > CROSSING_PLAUSIBLE_NS) {
        x->implausible_gap_ns = x->per_call_ns;
        x->per_call_ns = -1;
    }
    x->gap_samples = p->cx.gap_count;
    x->store_free_calls = p->cx.store_free_calls;
    x->sites = calloc(p->cx.ncalls ? p->cx.ncalls : 1, sizeof *x->sites);
    x->callbacks = calloc(p->cx.ncallbacks ? p->cx.ncallbacks : 1, sizeof *x->callbacks);
    if (!x->sites || !x->callbacks)
        return -1;
    for (size_t i = 0; i < p->cx.ncalls; i++) {
        const struct call_stats *st = &p->cx.calls[i];
        if (!st->calls)
            continue;
        const struct site_info *si = process_site(p, st->site);
        struct crossing_site *cs = &x->sites[x->nsites++];
        cs->package = si ? si->package : "?";
        cs->function = si ? si->function : "?";
        cs->kind = si ? si->kind : 0;
        cs->calls = st->calls;
        cs->timed = st->timed;
        cs->c_time_ns = process_ticks_to_ns(p, total_ticks(st));
        cs->p50_ns = process_ticks_to_ns(p, crossings_quantile_ticks(st, 0.50));
        cs->p90_ns = process_ticks_to_ns(p, crossings_quantile_ticks(st, 0.90));
        cs->p99_ns = process_ticks_to_ns(p, crossings_quantile_ticks(st, 0.99));
        cs->max_ns = process_ticks_to_ns(p, (double)st->ticks_max);
        cs->min_ns = st->timed ? process_ticks_to_ns(p, (double)st->ticks_min) : 0;
        cs->crossing_ns = x->per_call_ns >= 0 ? x->per_call_ns * (double)st->calls : -1;
        /* Per call, against the median: a few preempted samples must not hide it. */
        cs->crossing_dominates = st->timed && x->per_call_ns >= 0 && x->per_call_ns > cs->p50_ns;
        add_callers(cs, st, p, sym);
    }
    qsort(x->sites, x->nsites, sizeof *x->sites, cmp_site);
    for (size_t i = 0; i < p->cx.ncallbacks; i++) {
        const struct call_stats *st = &p->cx.callbacks[i];
        struct crossing_callback *cb = &x->callbacks[x->ncallbacks++];
        size_t n;
        const struct frame *f = symbolize(sym, st->key, &n);
        /* The frame is inside the export's C wrapper, named like the Go function. */
        cb->function = n && f[n - 1].function ? f[n - 1].function : "?";
        cb->package = symbolizer_go_package_of(sym, cb->function);
        cb->calls = st->calls;
        cb->timed = st->timed;
        cb->time_ns = process_ticks_to_ns(p, total_ticks(st));
        cb->p50_ns = process_ticks_to_ns(p, crossings_quantile_ticks(st, 0.5));
        cb->max_ns = process_ticks_to_ns(p, (double)st->ticks_max);
    }
    return 0;
}

void crossings_free(struct crossings *x)
{
    free(x->sites);
    free(x->callbacks);
    memset(x, 0, sizeof *x);
}

const char *crossings_human_ns(double ns, char *buf, size_t len)
{
    if (ns < 0)
        snprintf(buf, len, "?");
    else if (ns < 1e3)
        snprintf(buf, len, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.1f us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, len, "%.1f ms", ns / 1e6);
    else
        snprintf(buf, len, "%.2f s", ns / 1e9);
    return buf;
}

void crossings_print_text(FILE *out, const struct crossings *x)
{
    if (!x->nsites && !x->ncallbacks)
        return;
    char a[32], b[32], c[32], d[32], e[32], f[32];
    fprintf(out, "\n== cgo crossings, most expensive first\n");
    if (x->per_call_ns >= 0)
        fprintf(out, "   crossing cost per call: %s (estimate: least gap between consecutive cgo calls on one thread, "
                     "%" PRIu64 " gaps measured)\n",
                crossings_human_ns(x->per_call_ns, a, sizeof a), x->gap_samples);
    else if (x->implausible_gap_ns > 0)
        fprintf(out, "   crossing cost per call: not measured (the least gap between two cgo calls was %s: they were "
                     "never back to back)\n",
                crossings_human_ns(x->implausible_gap_ns, a, sizeof a));
    else
        fprintf(out, "   crossing cost per call: not measured (no two timed cgo calls followed each other on a thread)\n");
    if (!x->clock_calibrated)
        fprintf(out, "   (times are in clock ticks: the clock's rate could not be measured)\n");
    fprintf(out, "   %12s %10s %9s %9s %9s %9s %12s  %s\n", "calls", "C total", "C p50", "C p90", "C p99", "C max",
            "crossing~", "C function");
    for (size_t i = 0; i < x->nsites; i++) {
        const struct crossing_site *s = &x->sites[i];
        fprintf(out, "   %12" PRIu64 " %10s %9s %9s %9s %9s %12s  %s.%s%s\n", s->calls,
                s->timed ? crossings_human_ns(s->c_time_ns, a, sizeof a) : "-", s->timed ? crossings_human_ns(s->p50_ns, b, sizeof b) : "-",
                s->timed ? crossings_human_ns(s->p90_ns, c, sizeof c) : "-", s->timed ? crossings_human_ns(s->p99_ns, d, sizeof d) : "-",
                s->timed ? crossings_human_ns(s->max_ns, e, sizeof e) : "-", crossings_human_ns(s->crossing_ns, f, sizeof f), s->package,
                s->function, s->crossing_dominates ? "   <- crossing costs more than the C work: batch these calls" : "");
        for (size_t k = 0; k < s->ncallers; k++)
            fprintf(out, "   %12s%" PRIu64 " from %s (%s:%d)\n", s->callers_estimated ? "~" : "", s->callers[k].calls,
                    s->callers[k].function, s->callers[k].file ? s->callers[k].file : "?", s->callers[k].line);
    }
    if (x->ncallbacks) {
        fprintf(out, "   callbacks (C -> Go):\n");
        for (size_t i = 0; i < x->ncallbacks; i++) {
            const struct crossing_callback *cb = &x->callbacks[i];
            fprintf(out, "   %12" PRIu64 " %10s in Go  %s.%s\n", cb->calls, cb->timed ? crossings_human_ns(cb->time_ns, a, sizeof a) : "-",
                    cb->package ? cb->package : "?", cb->function);
        }
    }
    fprintf(out, "   C times are measured on %s; crossing~ is calls x the per-call estimate.\n",
            "the timed calls (see --timing)");
}

static json_object *ns_json(double ns) { return json_object_new_int64((int64_t)llround(ns < 0 ? 0 : ns)); }

void crossings_add_json(json_object *proc, const struct crossings *x)
{
    json_object *calls = json_object_new_array();
    for (size_t i = 0; i < x->nsites; i++) {
        const struct crossing_site *s = &x->sites[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "function", json_object_new_string(s->function));
        json_object_object_add(o, "package", json_object_new_string(s->package));
        json_object_object_add(o, "kind", json_object_new_string(s->kind == CGS_SITE_C2FUNC ? "C2func"
                                                                  : s->kind == CGS_SITE_CMACRO ? "Cmacro" : "Cfunc"));
        json_object_object_add(o, "calls", json_object_new_int64((int64_t)s->calls));
        json_object_object_add(o, "timed_calls", json_object_new_int64((int64_t)s->timed));
        json_object_object_add(o, "c_time_ns", ns_json(s->c_time_ns));
        json_object_object_add(o, "c_time_estimated", json_object_new_boolean(s->timed != s->calls));
        json_object_object_add(o, "c_time_ns_p50", ns_json(s->p50_ns));
        json_object_object_add(o, "c_time_ns_p90", ns_json(s->p90_ns));
        json_object_object_add(o, "c_time_ns_p99", ns_json(s->p99_ns));
        json_object_object_add(o, "c_time_ns_max", ns_json(s->max_ns));
        json_object_object_add(o, "crossing_ns_estimate", s->crossing_ns < 0 ? NULL : ns_json(s->crossing_ns));
        json_object_object_add(o, "crossing_dominates", json_object_new_boolean(s->crossing_dominates));
        json_object *callers = json_object_new_array();
        for (size_t k = 0; k < s->ncallers; k++) {
            json_object *c = json_object_new_object();
            json_object_object_add(c, "function", json_object_new_string(s->callers[k].function));
            json_object_object_add(c, "file", s->callers[k].file ? json_object_new_string(s->callers[k].file) : NULL);
            json_object_object_add(c, "line", json_object_new_int(s->callers[k].line));
            json_object_object_add(c, "calls", json_object_new_int64((int64_t)s->callers[k].calls));
            json_object_object_add(c, "calls_estimated", json_object_new_boolean(s->callers_estimated));
            json_object_array_add(callers, c);
        }
        json_object_object_add(o, "callers", callers);
        json_object_array_add(calls, o);
    }
    json_object_object_add(proc, "cgo_calls", calls);
    json_object *cbs = json_object_new_array();
    for (size_t i = 0; i < x->ncallbacks; i++) {
        const struct crossing_callback *cb = &x->callbacks[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "function", json_object_new_string(cb->function));
        json_object_object_add(o, "package", cb->package ? json_object_new_string(cb->package) : NULL);
        json_object_object_add(o, "calls", json_object_new_int64((int64_t)cb->calls));
        json_object_object_add(o, "time_ns", ns_json(cb->time_ns));
        json_object_array_add(cbs, o);
    }
    json_object_object_add(proc, "cgo_callbacks", cbs);
    json_object *est = json_object_new_object();
    json_object_object_add(est, "per_call_ns_estimate", x->per_call_ns < 0 ? NULL : ns_json(x->per_call_ns));
    json_object_object_add(est, "gaps_measured", json_object_new_int64((int64_t)x->gap_samples));
    json_object_object_add(est, "calls_counted_store_free", json_object_new_int64((int64_t)x->store_free_calls));
    json_object_object_add(est, "method", json_object_new_string("least time between a cgo call returning and the "
                                                                 "next one entering C on the same thread"));
    json_object_object_add(proc, "cgo_crossing", est);
}

int crossings_write_timeline(const char *path, const struct process *p)
{
    FILE *f = export_create(path, "timeline");
    if (!f)
        return -1;
    fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"cgoscope\",\"events\":%zu,\"dropped\":%" PRIu64
               ",\"note\":\"timed cgo calls only (see --timing); past %d events, a uniform sample of them\"},\n\"traceEvents\":[\n",
            p->tl.n, p->tl.dropped, TIMELINE_CAP);
    uint32_t *tids = calloc(p->tl.n + 1, sizeof *tids);
    size_t ntids = 0;
    for (size_t i = 0; i < p->tl.n; i++) {
        const struct timeline_event *e = &p->tl.events[i];
        const struct site_info *si = process_site(p, e->site);
        double ts = process_ticks_to_ns(p, (double)(e->t0 - p->clock.start_ticks)) / 1e3;
        double dur = process_ticks_to_ns(p, (double)(e->t1 - e->t0)) / 1e3;
        fprintf(f, "{\"name\":\"C.%s\",\"cat\":\"cgo\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%u,\"tid\":%u,"
                   "\"args\":{\"package\":\"%s\"}},\n",
                si ? si->function : "?", ts, dur, p->pid, e->tid, si ? si->package : "?");
        size_t k = 0;
        while (tids && k < ntids && tids[k] != e->tid)
            k++;
        if (tids && k == ntids)
            tids[ntids++] = e->tid;
    }
    for (size_t k = 0; k < ntids; k++)
        fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":\"thread %u\"}},\n",
                p->pid, tids[k], tids[k]);
    fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"%s\"}}\n]}\n", p->pid,
            "cgo calls");
    free(tids);
    return export_finish(f, path, "timeline");
}
