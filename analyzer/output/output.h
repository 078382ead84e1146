/* Writing what the user asked for: the text report and the JSON document. */
#ifndef CGOSCOPE_OUTPUT_H
#define CGOSCOPE_OUTPUT_H

#include <stddef.h>

#include "analysis/process.h"
#include "output/report.h"

struct gate;

struct output_options {
    const char *json_path;
    const char *timeline_path;
    const char *plot_path;
    int show_runtime;
    int full_stacks;
    int full_report; /* every leak group and path, and each site's stack */
    int quiet; /* no text report */
    struct gate *gate; /* suppressions, --fail-on-leak, exports (gate.h); NULL for none */
    struct symwarm *warm; /* symbolizers read ahead while the program ran (symwarm.h), or NULL */
};

/* Builds the report of p and writes it as asked. Returns 0, or -1 when something could not be
 * written or built (already told on stderr). */
int output_reports(struct process *procs, size_t n, const struct output_options *o);
/* Will output_reports build a report (else a run needs no symbolizer read ahead)? */
int output_wanted(const struct output_options *o);

#endif
