/* Folded stacks ("collapsed" format of flame graph tools): "outer;...;inner BYTES" per line. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output/exports.h"
#include "output/leaksite.h"

struct folded_line {
    char *stack;
    uint64_t bytes;
};

/* A frame's name in a folded line: ';' separates frames and a newline ends the line. */
static void put_name(FILE *out, const struct report_frame *f)
{
    if (!f->function) {
        fprintf(out, "0x%" PRIx64, f->pc);
        return;
    }
    for (const char *c = f->function; *c; c++)
        fputc(*c == ';' ? ':' : *c == '\n' ? ' ' : *c, out);
}

static char *fold(const struct leak_group *g, int full_stacks)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    int first = 1;
    for (size_t k = g->nframes; k-- > 0;) {
        const struct report_frame *f = &g->frames[k];
        if (!full_stacks && leaksite_frame_is_noise(f))
            continue;
        if (!first)
            fputc(';', m);
        put_name(m, f);
        first = 0;
    }
    if (first)
        fputs("(stack not recorded)", m);
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(((const struct folded_line *)a)->stack, ((const struct folded_line *)b)->stack);
}

static int collect(const struct report *reports, size_t n, int all, int full, struct folded_line **out, size_t *nout)
{
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        cap += reports[i].ngroups;
    struct folded_line *v = calloc(cap ? cap : 1, sizeof *v);
    if (!v)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < reports[i].ngroups; j++) {
            const struct leak_group *g = &reports[i].groups[j];
            if (!all && (g->origin != ORIGIN_USER || g->suppressed || !leak_group_is_lost(g)))
                continue;
            v[k].bytes = g->bytes;
            if (!(v[k++].stack = fold(g, full))) {
                for (size_t x = 0; x < k; x++)
                    free(v[x].stack);
                free(v);
                return -1;
            }
        }
    }
    qsort(v, k, sizeof *v, cmp_line);
    *out = v;
    *nout = k;
    return 0;
}

int export_folded(const char *path, const struct report *reports, size_t n, int all_leaks, int full_stacks)
{
    struct folded_line *v;
    size_t nv;
    if (collect(reports, n, all_leaks, full_stacks, &v, &nv) != 0) {
        fprintf(stderr, "cgoscope: out of memory writing the folded stacks\n");
        return -1;
    }
    FILE *f = export_create(path, "folded stacks");
    if (f) {
        /* Stacks that fold to the same names (they differ only in lines) make one line. */
        for (size_t i = 0; i < nv; i++) {
            uint64_t bytes = v[i].bytes;
            while (i + 1 < nv && strcmp(v[i].stack, v[i + 1].stack) == 0)
                bytes += v[++i].bytes;
            fprintf(f, "%s %" PRIu64 "\n", v[i].stack, bytes);
        }
    }
    for (size_t i = 0; i < nv; i++)
        free(v[i].stack);
    free(v);
    return f ? export_finish(f, path, "folded stacks") : -1;
}
