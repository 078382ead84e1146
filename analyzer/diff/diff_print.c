/* `cgoscope diff` output: plain text for a terminal or CI log, markdown for a pull request. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "output/crossings.h"
#include "diff/diff.h"
#include "output/leaksite.h"

static const char *const status_name[] = {[DIFF_SAME] = "same", [DIFF_NEW] = "new", [DIFF_GROWN] = "grown",
                                          [DIFF_SHRUNK] = "shrunk", [DIFF_FIXED] = "fixed"};

static const struct diff_leak *either(const struct diff_leak_change *c) { return c->head ? c->head : c->base; }

static int cmp_change(const void *x, const void *y)
{
    const struct diff_leak_change *a = *(const struct diff_leak_change *const *)x;
    const struct diff_leak_change *b = *(const struct diff_leak_change *const *)y;
    if (a->status != b->status)
        return a->status - b->status;
    int64_t da = llabs(a->delta_bytes), db = llabs(b->delta_bytes);
    if (da != db)
        return da > db ? -1 : 1;
    return strcmp(either(a)->key, either(b)->key);
}

/* The changed sites, new first, then grown, shrunk, fixed; unchanged ones counted. */
static const struct diff_leak_change **ordered(const struct diff_result *r, size_t *n, size_t *same)
{
    const struct diff_leak_change **v = calloc(r->nleaks + 1, sizeof *v);
    *n = *same = 0;
    for (size_t i = 0; v && i < r->nleaks; i++) {
        if (r->leaks[i].status == DIFF_SAME)
            (*same)++;
        else
            v[(*n)++] = &r->leaks[i];
    }
    if (v)
        qsort(v, *n, sizeof *v, cmp_change);
    return v;
}

static void put_escaped(FILE *out, const char *s, int md)
{
    for (; *s; s++) {
        if (md && (*s == '|' || *s == '`'))
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void put_frame(FILE *out, const struct report_frame *f, int md)
{
    if (md)
        fputc('`', out);
    put_escaped(out, f->function ? f->function : "?", 0);
    if (md)
        fputc('`', out);
    if (f->file)
        fprintf(out, " (%s:%d)", leaksite_basename(f->file), f->line);
}

/* "C function ← Go function (file:line) ← caller (file:line)": the site's label (leaksite_label)
 * and the Go function that called its Go line. */
static void put_site(FILE *out, const struct diff_leak *l, int md)
{
    if (!l->nframes) {
        fputs("(stack not recorded)", out);
        return;
    }
    char label[1024];
    leaksite_label(l->frames, l->nframes, label, sizeof label);
    if (md)
        fputc('`', out);
    put_escaped(out, label, md);
    if (md)
        fputc('`', out);
    long at = leaksite_go_line(l->frames, l->nframes);
    if (at < 0)
        return;
    long up = leaksite_go_line(l->frames + at + 1, l->nframes - (size_t)at - 1);
    if (up >= 0) {
        fputs(" " LEAKSITE_ARROW " ", out);
        put_frame(out, &l->frames[at + 1 + up], md);
    }
}

static const char *pct(double p, char *buf, size_t len)
{
    if (isnan(p))
        snprintf(buf, len, "not measured");
    else if (isinf(p))
        snprintf(buf, len, "new");
    else
        snprintf(buf, len, "%+.0f%%", p);
    return buf;
}

static void verdict(FILE *out, const struct diff_result *r, const struct diff_limits *lim, int md)
{
    if (!r->leak_regressions && !r->call_regressions) {
        fprintf(out, md ? "**No regression.**\n" : "== No regression.\n");
        return;
    }
    fprintf(out, md ? "**Regression:**" : "== REGRESSION:");
    if (r->leak_regressions)
        fprintf(out, " %zu leak site%s new or grown by more than %" PRIu64 " bytes (--max-leak-increase)%s",
                r->leak_regressions, r->leak_regressions == 1 ? "" : "s", lim->max_leak_increase,
                r->call_regressions ? ";" : "");
    if (r->call_regressions)
        fprintf(out, " %zu cgo call site%s whose total crossing time grew by more than %.0f%% (--max-crossing-increase)",
                r->call_regressions, r->call_regressions == 1 ? "" : "s", lim->max_crossing_increase);
    fprintf(out, md ? ".\n" : "\n");
}

static void text_leaks(FILE *out, const struct diff_result *r)
{
    size_t n, same;
    const struct diff_leak_change **v = ordered(r, &n, &same);
    fprintf(out, "\nLeak sites (user leaks no suppression matched):\n");
    for (size_t i = 0; v && i < n; i++) {
        const struct diff_leak_change *c = v[i];
        fprintf(out, "  %-7s %+10" PRId64 " B %+6" PRId64 " block%s  ", status_name[c->status], c->delta_bytes,
                c->delta_blocks, llabs(c->delta_blocks) == 1 ? " " : "s");
        put_site(out, either(c), 0);
        fprintf(out, "  [%" PRIu64 " -> %" PRIu64 " B]%s\n", c->base ? c->base->bytes : 0, c->head ? c->head->bytes : 0,
                c->regression ? "  REGRESSION" : "");
    }
    if (!n)
        fprintf(out, "  no change\n");
    if (same)
        fprintf(out, "  %zu site%s unchanged\n", same, same == 1 ? "" : "s");
    free(v);
}

static double per_call(double total, uint64_t calls) { return calls ? total / (double)calls : 0; }

static const char *ratio(double a, double b, char *buf, size_t len)
{
    if (a <= 0 || isnan(a) || isnan(b))
        snprintf(buf, len, "%s", b > 0 ? "new" : "same");
    else
        snprintf(buf, len, "%+.0f%%", (b - a) / a * 100);
    return buf;
}

/* One cgo call site: calls before and after (their change said apart), the cost per call (C time,
 * crossing), and the total crossing time, whose growth --max-crossing-increase judges. */
static void call_line(FILE *out, const struct diff_call_change *c, int md)
{
    const struct diff_call *any = c->head ? c->head : c->base;
    char a[32], b[32], x[32], y[32], p[32], q[32], u[32], v[32];
    const char *sep = md ? " | " : "  ";
    uint64_t bc = c->base ? c->base->calls : 0, hc = c->head ? c->head->calls : 0;
    fprintf(out, md ? "| `%s.%s`" : "  %s.%s", any->package, any->function);
    fprintf(out, "%s%s%" PRIu64 " -> %" PRIu64 "", sep, md ? "" : "calls ", bc, hc);
    if (!md && c->base && c->head && bc != hc)
        fprintf(out, " (calls %s)", bc ? (hc > bc ? "grew" : "fell") : "new");
    double bct = c->base ? per_call(c->base->c_time_ns, bc) : 0, hct = c->head ? per_call(c->head->c_time_ns, hc) : 0;
    fprintf(out, "%s%s%s -> %s (%s)", sep, md ? "" : "C per call ", crossings_human_ns(bct, a, sizeof a),
            crossings_human_ns(hct, b, sizeof b), c->head ? ratio(bct, hct, q, sizeof q) : "gone");
    int bm = c->base && c->base->crossing_ns >= 0, hm = c->head && c->head->crossing_ns >= 0;
    double bx = bm ? per_call(c->base->crossing_ns, bc) : 0, hx = hm ? per_call(c->head->crossing_ns, hc) : 0;
    fprintf(out, "%s%s%s -> %s", sep, md ? "" : "crossing per call ", bm ? crossings_human_ns(bx, x, sizeof x) : "?",
            hm ? crossings_human_ns(hx, y, sizeof y) : "?");
    fprintf(out, "%s%s%s -> %s (%s)%s", sep, md ? "" : "crossing total ",
            crossings_human_ns(c->base ? c->base->crossing_ns : 0, u, sizeof u),
            crossings_human_ns(c->head ? c->head->crossing_ns : 0, v, sizeof v), c->head ? pct(c->crossing_pct, p, sizeof p) : "gone",
            c->regression ? (md ? " **regression**" : "  REGRESSION") : "");
    fprintf(out, md ? " |\n" : "\n");
}

void diff_print_text(FILE *out, const struct diff_side *base, const struct diff_side *head,
                     const struct diff_result *r, const struct diff_limits *lim)
{
    fprintf(out, "== cgoscope diff: %s (%zu process%s) -> %s (%zu process%s)\n", base->name, base->nprocesses,
            base->nprocesses == 1 ? "" : "es", head->name, head->nprocesses, head->nprocesses == 1 ? "" : "es");
    text_leaks(out, r);
    if (r->ncalls) {
        fprintf(out, "\ncgo call sites (base -> head):\n");
        for (size_t i = 0; i < r->ncalls; i++)
            call_line(out, &r->calls[i], 0);
    }
    fprintf(out, "\n");
    verdict(out, r, lim, 0);
}

static void md_leaks(FILE *out, const struct diff_result *r)
{
    size_t n, same;
    const struct diff_leak_change **v = ordered(r, &n, &same);
    if (v && n) {
        fprintf(out, "\n| change | leak site | bytes | blocks |\n|---|---|--:|--:|\n");
        for (size_t i = 0; i < n; i++) {
            const struct diff_leak_change *c = v[i];
            fprintf(out, "| %s%s%s | ", c->regression ? "**" : "", status_name[c->status], c->regression ? "**" : "");
            put_site(out, either(c), 1);
            fprintf(out, " | %+" PRId64 " (%" PRIu64 " → %" PRIu64 ") | %+" PRId64 " |\n", c->delta_bytes,
                    c->base ? c->base->bytes : 0, c->head ? c->head->bytes : 0, c->delta_blocks);
        }
    } else {
        fprintf(out, "\nNo leak site changed.\n");
    }
    if (same)
        fprintf(out, "\n_%zu leak site%s unchanged._\n", same, same == 1 ? "" : "s");
    free(v);
}

void diff_print_markdown(FILE *out, const struct diff_side *base, const struct diff_side *head,
                         const struct diff_result *r, const struct diff_limits *lim)
{
    fprintf(out, "### cgoscope: C memory leaks and cgo calls, `%s` → `%s`\n\n", base->name, head->name);
    verdict(out, r, lim, 1);
    md_leaks(out, r);
    if (r->ncalls) {
        fprintf(out, "\n| cgo call | calls | C time per call | crossing per call | crossing total |\n|---|--:|--:|--:|--:|\n");
        for (size_t i = 0; i < r->ncalls; i++)
            call_line(out, &r->calls[i], 1);
    }
}
