/* `cgoscope report TRACE`: the same report as `run`, from a saved trace. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "output/gate.h"
#include "output/output.h"
#include "analysis/reach.h"
#include "ingest/trace.h"

static void report_usage(FILE *out)
{
    fprintf(out, "Usage: cgoscope report [options] TRACE\n"
                 "\n"
                 "Prints the leak report of a trace saved by `cgoscope run -o TRACE`.\n"
                 "The executables and libraries it names must still be where they were.\n"
                 "\n"
                 "Options:\n"
                 "  --json FILE      also write the report as JSON\n"
                 "  --show-runtime   also list leaks of the Go runtime and system libraries\n"
            "  --full-stacks      also show cgo glue frames (runtime.cgocall, _Cfunc_ stubs)\n"
            "  --full-report      every leak group and path, and each site's stack (the text\n"
            "                     report shows the top 10 groups; the JSON report has all)\n"
                 "  -q, --quiet      no text report (use with --json)\n"
                 "  -h, --help       this help\n"
                 "\n"
                 "Exit status: 0 report written; 1 the trace is unreadable or incomplete (what could be\n"
                 "trusted is still reported); 2 bad usage; 23 (--leak-exitcode) with --fail-on-leak.\n");
    gate_usage(out);
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", required_argument, NULL, 'j'}, {"show-runtime", no_argument, NULL, 'r'}, {"full-stacks", no_argument, NULL, 'F'},
        {"full-report", no_argument, NULL, 'A'},
        {"quiet", no_argument, NULL, 'q'},      {"help", no_argument, NULL, 'h'},
        GATE_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct output_options out = {0};
    struct gate gate;
    gate_init(&gate);
    out.gate = &gate;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': out.json_path = optarg; break;
        case 'r': out.show_runtime = 1; break;
        case 'F': out.full_stacks = 1; break;
        case 'A': out.full_report = 1; break;
        case 'q': out.quiet = 1; break;
        case 'h': report_usage(stdout); return 0;
        default: {
            int g = gate_option(&gate, c, optarg);
            if (g == GATE_OK)
                break;
            if (g == GATE_NOT_MINE)
                report_usage(stderr);
            return g == GATE_EXIT_OK ? 0 : 2;
        }
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "cgoscope report: give exactly one trace file.\n");
        report_usage(stderr);
        return 2;
    }
    if (gate_prepare(&gate) != 0)
        return 2;
    struct procset ps;
    procset_init(&ps);
    char err[512] = "";
    int rc = trace_read(argv[optind], &ps, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "cgoscope: %s\n", err);
        procset_free(&ps);
        gate_free(&gate);
        return 1;
    }
    if (rc > 0)
        fprintf(stderr, "cgoscope: warning: %s\n", err);
    /* A trace the shim wrote itself (`cgoscope env`): each process's memory image, written by its
     * exit helper beside the trace, says what still pointed to its blocks (reach.h). A trace of
     * `run -o` carries the classification already. */
    for (size_t i = 0; i < ps.n; i++) {
        struct process *p = ps.v[i];
        if (!p->attached || p->reach.state == REACH_SCANNED || p->reach.why[0])
            continue;
        if (!p->helper_pid) {
            snprintf(p->reach.why, sizeof p->reach.why, "no memory image was kept when it ended (no exit helper: "
                     "valgrind, or CGOSCOPE_REACHABILITY=0)");
            continue;
        }
        char image[PATH_MAX], part[PATH_MAX + 8];
        snprintf(image, sizeof image, "%s.%u.mem", argv[optind], p->helper_pid);
        snprintf(part, sizeof part, "%s.part", image);
        /* A report run right after the program may find the helper still writing: wait for it
         * (up to 10 s) while it is there or its image is in progress. */
        for (int ms = 0; ms < 10000 && access(image, F_OK) != 0 &&
                         (access(part, F_OK) == 0 || kill((pid_t)p->helper_pid, 0) == 0);
             ms += 20)
            usleep(20000);
        reach_scan_image(p, image);
    }
    struct process *flat = procset_flat(&ps);
    int orc = flat ? output_reports(flat, ps.n, &out) : -1;
    free(flat);
    procset_free(&ps);
    int status = gate_exit_status(&gate, rc > 0 || orc != 0 ? 1 : 0);
    gate_free(&gate);
    return status;
}
