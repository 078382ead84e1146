#include "output/output.h"

#include "output/growth_report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/gate.h"
#include "output/jsonout.h"
#include "output/symwarm.h"
#include "util/clock.h"

static int write_json(const char *path, json_object *doc)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cgoscope: cannot write the JSON report to %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (jsonout_write_fd(fd, doc) != 0) {
        fprintf(stderr, "cgoscope: writing the JSON report to %s failed: %s%s\n", path, strerror(errno),
                errno == ENOSPC ? " (disk full)" : "");
        close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        fprintf(stderr, "cgoscope: writing the JSON report to %s failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Nothing asked for needs the report (run -q with no output file and no gate): skip building it,
 * which for a Go binary is mostly decompressing its DWARF. */
static int nothing_wanted(const struct output_options *o)
{
    const struct gate *g = o->gate;
    return o->quiet && !o->json_path && !o->plot_path && !o->timeline_path &&
           (!g || (!g->fail_on_leak && !g->fail_on_error && !g->pprof_path && !g->sarif_path && !g->folded_path));
}

int output_wanted(const struct output_options *o) { return !nothing_wanted(o); }

int output_reports(struct process *procs, size_t n, const struct output_options *o)
{
    if (nothing_wanted(o))
        return 0;
    struct report *reports = calloc(n ? n : 1, sizeof *reports);
    if (!reports) {
        fprintf(stderr, "cgoscope: out of memory building the report\n");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (report_build(&reports[i], &procs[i], symwarm_take(o->warm, &procs[i])) != 0) {
            fprintf(stderr, "cgoscope: out of memory building the report of process %u\n", procs[i].pid);
            rc = -1;
        }
    }
    clock_phase("report build (symbolize)");
    gate_apply(o->gate, reports, n);
    clock_phase("suppressions");
    if (!o->quiet) {
        struct report_options ro = {.show_runtime = o->show_runtime, .full_stacks = o->full_stacks,
                                    .full_report = o->full_report,
                                    .show_reachable = o->gate && o->gate->show_reachable};
        for (size_t i = 0; i < n; i++)
            report_print_text(stderr, &reports[i], &ro);
        fflush(stderr);
        clock_phase("text report");
    }
    if (o->plot_path) {
        /* The first Go program of the run (the program itself, unless it is a wrapper). */
        size_t k = 0;
        while (k < n && !reports[k].is_go)
            k++;
        if (n && growth_write_svg(o->plot_path, &reports[k < n ? k : 0]) != 0)
            rc = -1;
    }
    if (o->timeline_path) {
        for (size_t i = 0; i < n; i++)
            if (crossings_write_timeline(o->timeline_path, &procs[i]) != 0)
                rc = -1;
    }
    if (o->json_path) {
        json_object *doc = report_document(reports, n);
        clock_phase("JSON build");
        if (write_json(gate_path(o->gate, o->json_path, procs, n), doc) != 0)
            rc = -1;
        clock_phase("JSON write");
        json_object_put(doc);
        clock_phase("JSON free");
    }
    if (gate_export(o->gate, reports, n, o->show_runtime, o->full_stacks) != 0)
        rc = -1;
    for (size_t i = 0; i < n; i++)
        report_free(&reports[i]);
    free(reports);
    clock_phase("report free");
    return rc;
}
