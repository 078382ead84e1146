#include "output/growth_report.h"

#include "output/exports.h"
#include "output/leaksite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void times_ns(const struct process *p, uint64_t *t_ns)
{
    const struct growth *g = &p->growth;
    for (uint32_t i = 0; i < g->n; i++)
        t_ns[i] = (uint64_t)process_ticks_to_ns(p, (double)(g->times[i] - g->times[0]));
}

static int by_live(const void *a, const void *b)
{
    const struct growth_site *x = a, *y = b;
    if (x->verdict.growing != y->verdict.growing)
        return y->verdict.growing - x->verdict.growing;
    return x->live_bytes > y->live_bytes ? -1 : x->live_bytes < y->live_bytes;
}

size_t growth_sites(const struct process *p, const struct report *r, struct growth_site *out, size_t max)
{
    const struct growth *g = &p->growth;
    if (!g->n || !max)
        return 0;
    uint64_t t_ns[GROWTH_POINTS];
    times_ns(p, t_ns);
    /* Candidates: every series with something live at the end; judged are the 256 biggest. */
    size_t cap = g->nseries, n = 0;
    struct growth_site *all = calloc(cap ? cap : 1, sizeof *all);
    if (!all)
        return 0;
    for (size_t i = 0; i < g->nseries; i++) {
        const struct growth_series *s = g->series[i];
        if (!s->n || s->first + s->n != g->n || !s->bytes[s->n - 1])
            continue;
        all[n].series = s;
        all[n].live_bytes = s->bytes[s->n - 1];
        all[n].live_blocks = s->blocks[s->n - 1];
        n++;
    }
    qsort(all, n, sizeof *all, by_live);
    if (n > 256)
        n = 256;
    for (size_t i = 0; i < n; i++) {
        const struct growth_series *s = all[i].series;
        all[i].verdict = growth_judge(t_ns + s->first, s->bytes, s->blocks, s->n);
        if (r)
            for (size_t k = 0; k < r->ngroups; k++)
                if (r->groups[k].stack == s->stack)
                    all[i].group = &r->groups[k];
    }
    /* The runtime's own blocks (thread-local storage of new threads, ...) are not the story. */
    if (r) {
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            if (!all[i].group || all[i].group->origin != ORIGIN_RUNTIME)
                all[kept++] = all[i];
        n = kept;
    }
    qsort(all, n, sizeof *all, by_live);
    size_t k = n < max ? n : max;
    memcpy(out, all, k * sizeof *out);
    free(all);
    return k;
}

void growth_label(const struct growth_site *s, char *buf, size_t len)
{
    const struct leak_group *g = s->group;
    if (!g || !g->nframes) {
        snprintf(buf, len, "stack %016" PRIx64, s->series->stack);
        return;
    }
    leaksite_label(g->frames, g->nframes, buf, len);
}

static const char *human_bytes(double b, char *buf, size_t len)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double a = fabs(b);
    while (a >= 1024 && u < 4) {
        a /= 1024;
        b /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
    return buf;
}

void growth_print_text(FILE *out, const struct report *r)
{
    struct growth_site sites[16];
    size_t n = growth_sites(r->proc, r, sites, 16);
    size_t growing = 0;
    for (size_t i = 0; i < n; i++)
        growing += sites[i].verdict.growing;
    if (!growing)
        return;
    char a[32], b[32], label[512];
    fprintf(out, "\n== Growing while the program ran (live C memory that kept increasing; docs/growth.md)\n");
    for (size_t i = 0; i < n && sites[i].verdict.growing; i++) {
        growth_label(&sites[i], label, sizeof label);
        fprintf(out, "   +%9s/s %+8.1f blocks/s   live at the end: %s in %" PRIu64 " blocks   %s\n",
                human_bytes(sites[i].verdict.bytes_per_s, a, sizeof a), sites[i].verdict.blocks_per_s,
                human_bytes((double)sites[i].live_bytes, b, sizeof b), sites[i].live_blocks, label);
    }
}

void growth_add_json(json_object *proc, const struct report *r)
{
    struct growth_site sites[64];
    size_t n = growth_sites(r->proc, r, sites, 64);
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        if (!sites[i].verdict.growing)
            continue;
        json_object *o = json_object_new_object();
        json_object *st = json_object_new_array();
        if (sites[i].group)
            for (size_t k = 0; k < sites[i].group->nframes; k++)
                json_object_array_add(st, report_frame_json(&sites[i].group->frames[k]));
        json_object_object_add(o, "stack", st);
        json_object_object_add(o, "live_bytes", json_object_new_int64((int64_t)sites[i].live_bytes));
        json_object_object_add(o, "live_blocks", json_object_new_int64((int64_t)sites[i].live_blocks));
        json_object_object_add(o, "bytes_per_second", json_object_new_double(sites[i].verdict.bytes_per_s));
        json_object_object_add(o, "blocks_per_second", json_object_new_double(sites[i].verdict.blocks_per_s));
        json_object_array_add(arr, o);
    }
    json_object_object_add(proc, "growth", arr);
    /* The total over time, for plotting elsewhere. */
    const struct growth *g = &r->proc->growth;
    uint64_t t_ns[GROWTH_POINTS];
    times_ns(r->proc, t_ns);
    json_object *series = json_object_new_array();
    for (uint32_t i = 0; i < g->n; i++) {
        json_object *pt = json_object_new_object();
        json_object_object_add(pt, "t", json_object_new_double((double)t_ns[i] / 1e9));
        json_object_object_add(pt, "live_bytes", json_object_new_int64((int64_t)g->total_bytes[i]));
        json_object_object_add(pt, "live_blocks", json_object_new_int64((int64_t)g->total_blocks[i]));
        json_object_array_add(series, pt);
    }
    json_object_object_add(proc, "live_over_time", series);
}

/* ---- SVG --------------------------------------------------------------------------------- */

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A "nice" step for about `want` ticks over [0, max]: 1, 2 or 5 times a power of ten (or of
 * 1024 for bytes). */
static double nice_step(double max, int want, int bytes)
{
    double raw = max / want, base = 1;
    if (bytes) {
        while (raw >= 1024 * base)
            base *= 1024;
    }
    double p = pow(10, floor(log10(raw / base)));
    double steps[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (steps[i] * p * base >= raw)
            return steps[i] * p * base;
    return 10 * p * base;
}

int growth_write_svg(const char *path, const struct report *r)
{
    const struct process *p = r->proc;
    const struct growth *g = &p->growth;
    FILE *f = export_create(path, "plot");
    if (!f)
        return -1;
    uint64_t t_ns[GROWTH_POINTS];
    times_ns(p, t_ns);
    struct growth_site sites[6];
    size_t ns = growth_sites(p, r, sites, 6);
    const int W = 960, H = 540, L = 90, R = 20, T = 50, B = 170;
    const int pw = W - L - R, ph = H - T - B;
    double tmax = g->n ? (double)t_ns[g->n - 1] / 1e9 : 1, ymax = 1;
    for (uint32_t i = 0; i < g->n; i++)
        if ((double)g->total_bytes[i] > ymax)
            ymax = (double)g->total_bytes[i];
    if (tmax <= 0)
        tmax = 1;
    double ystep = nice_step(ymax, 5, 1), xstep = nice_step(tmax, 8, 0);
    ymax = ceil(ymax / ystep) * ystep;
    static const char *colors[] = {"#111111", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    char buf[64], label[512];

    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">Live C memory over time: ", L);
    xml_text(f, p->exe ? p->exe : "?");
    fprintf(f, " (pid %u)</text>\n", p->pid);
    /* grid and axes */
    for (double y = 0; y <= ymax + ystep / 2; y += ystep) {
        double py = T + ph - y / ymax * ph;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py, L + pw, py);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 6, py + 4,
                human_bytes(y, buf, sizeof buf));
    }
    for (double x = 0; x <= tmax + xstep / 2; x += xstep) {
        double px = L + x / tmax * pw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>\n", px, T, px, T + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g s</text>\n", px, T + ph + 16, x);
    }
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + ph, L + pw, T + ph);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + ph);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time since the first snapshot (seconds)</text>\n",
            L + pw / 2, T + ph + 36);
    fprintf(f, "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">live C memory (bytes)</text>\n",
            T + ph / 2);
    /* lines: total first, then the sites */
    for (size_t s = 0; s <= ns; s++) {
        const uint64_t *v = s == 0 ? g->total_bytes : sites[s - 1].series->bytes;
        uint32_t first = s == 0 ? 0 : sites[s - 1].series->first, n = s == 0 ? g->n : sites[s - 1].series->n;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"", colors[s % 7], s ? "1.8" : "2.5");
        for (uint32_t i = 0; i < n; i++)
            fprintf(f, "%.1f,%.1f ", L + (double)t_ns[first + i] / 1e9 / tmax * pw, T + ph - (double)v[i] / ymax * ph);
        fprintf(f, "\"/>\n");
    }
    /* legend */
    for (size_t s = 0; s <= ns; s++) {
        int y = T + ph + 62 + (int)s * 16;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", L, y - 4,
                L + 24, y - 4, colors[s % 7]);
        fprintf(f, "<text x=\"%d\" y=\"%d\">", L + 30, y);
        if (s == 0) {
            fprintf(f, "all live C memory (%s at the end)", human_bytes(g->n ? (double)g->total_bytes[g->n - 1] : 0, buf, sizeof buf));
        } else {
            const struct growth_site *gs = &sites[s - 1];
            growth_label(gs, label, sizeof label);
            xml_text(f, label);
            fprintf(f, ": %s", human_bytes((double)gs->live_bytes, buf, sizeof buf));
            if (gs->verdict.growing)
                fprintf(f, ", growing %s/s", human_bytes(gs->verdict.bytes_per_s, buf, sizeof buf));
            else
                fprintf(f, ", steady");
        }
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return export_finish(f, path, "plot");
}
