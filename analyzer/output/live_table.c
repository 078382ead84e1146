#include "output/live_table.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "output/growth_report.h"
#include "output/leaksite.h"
#include "output/report.h"

#define ROWS 10

void live_table_init(struct live_table *t, int tty)
{
    memset(t, 0, sizeof *t);
    t->tty = tty;
}

void live_table_free(struct live_table *t)
{
    symbolizer_free(t->sym);
    if (t->have_gb)
        gobuild_free(&t->gb);
    memset(t, 0, sizeof *t);
}

/* A stack's label, "C function ← Go function (file:line)" (leaksite_label). */
static void label_of(struct live_table *t, const struct process *p, uint64_t stack, char *buf, size_t len)
{
    const struct stack_info *st = process_stack(p, stack);
    snprintf(buf, len, "(stack not seen yet)");
    if (!st || !t->sym)
        return;
    struct report_frame frames[512];
    size_t nf = 0;
    for (uint32_t i = 0; i < st->n && nf < sizeof frames / sizeof frames[0]; i++) {
        size_t n;
        if (st->pcs[i] == CGS_PC_OMITTED)
            continue;
        const struct frame *f = symbolize(t->sym, st->pcs[i], &n);
        for (size_t k = 0; k < n && nf < sizeof frames / sizeof frames[0]; k++)
            frames[nf++] = (struct report_frame){.pc = f[k].pc, .function = f[k].function, .file = f[k].file,
                                                 .line = f[k].line, .lang = f[k].lang,
                                                 .object = f[k].module ? f[k].module->path : NULL};
    }
    if (nf)
        leaksite_label(frames, nf, buf, len);
}

static const char *kib(double b, char *buf, size_t len)
{
    if (fabs(b) >= 1024.0 * 1024.0)
        snprintf(buf, len, "%.1f MiB", b / 1048576.0);
    else
        snprintf(buf, len, "%.1f KiB", b / 1024.0);
    return buf;
}

void live_table_print(struct live_table *t, FILE *out, const struct process *p, double elapsed_s)
{
    if (!t->sym || t->sym_modules != p->nmodules) {
        symbolizer_free(t->sym);
        t->sym = symbolizer_new(p);
        t->sym_modules = p->nmodules;
        const struct module_info *exe = process_exe(p);
        if (!t->have_gb && exe)
            t->have_gb = gobuild_read(exe->path, &t->gb) == 0;
    }
    struct growth_site sites[ROWS];
    size_t n = growth_sites(p, NULL, sites, ROWS);
    if (t->tty && t->lines)
        fprintf(out, "\033[%dA\033[J", t->lines); /* back over the last table */
    char a[32], b[32], label[512];
    int lines = 0;
    fprintf(out, "== cgoscope: %.1f s, pid %u: live C memory %s in %" PRIu64 " blocks\n", elapsed_s, p->pid,
            kib((double)p->live.live_bytes, a, sizeof a), p->live.live_count);
    lines++;
    fprintf(out, "   %12s %10s %12s  %s\n", "live", "blocks", "growth/s", "site (C function ← Go line of the cgo call)");
    lines++;
    for (size_t i = 0; i < n; i++) {
        label_of(t, p, sites[i].series->stack, label, sizeof label);
        fprintf(out, "   %12s %10" PRIu64 " %12s  %s%s\n", kib((double)sites[i].live_bytes, a, sizeof a),
                sites[i].live_blocks, kib(sites[i].verdict.bytes_per_s, b, sizeof b), label,
                sites[i].verdict.growing ? "  <- growing" : "");
        lines++;
    }
    if (!t->tty) {
        fprintf(out, "\n");
        lines++;
    }
    fflush(out);
    t->lines = lines;
}
