/* The cost of each Go->C crossing, per cgo call site, and of each C->Go callback. */
#ifndef CGOSCOPE_CROSSINGS_H
#define CGOSCOPE_CROSSINGS_H

#include <json-c/json.h>
#include <stdio.h>

#include "analysis/process.h"
#include "output/symbolize.h"

struct crossing_caller {
    const char *function, *file;
    int line;
    uint64_t calls;
};

struct crossing_site {
    const char *package, *function;
    int kind;
    uint64_t calls, timed;
    double c_time_ns; /* total over all calls (estimated from the timed ones when sampled) */
    double p50_ns, p90_ns, p99_ns, max_ns, min_ns;
    double crossing_ns;  /* calls x per-call crossing estimate, or -1 when not measured */
    int crossing_dominates;
    struct crossing_caller callers[5];
    size_t ncallers;
    int callers_estimated;
};

struct crossing_callback {
    const char *function, *package;
    uint64_t calls, timed;
    double time_ns, p50_ns, max_ns;
};

#define CROSSING_PLAUSIBLE_NS 5000.0

struct crossings {
    double per_call_ns; /* measured crossing cost of one call, or -1 */
    double implausible_gap_ns; /* the least gap, when too long to be a crossing */
    uint64_t gap_samples;
    uint64_t store_free_calls;
    int clock_calibrated;
    struct crossing_site *sites;
    size_t nsites;
    struct crossing_callback *callbacks;
    size_t ncallbacks;
};

int crossings_build(struct crossings *x, const struct process *p, struct symbolizer *sym);
/* Quantile q (0 to 1) of the timed calls' durations in ticks, from the histogram: the middle of
 * the bucket it falls in, held within the least and largest times seen; 0 with nothing timed. */
double crossings_quantile_ticks(const struct call_stats *s, double q);
/* "812 ns", "3.4 us", "1.2 ms", "2.05 s"; "?" when negative (unknown). */
const char *crossings_human_ns(double ns, char *buf, size_t len);
void crossings_free(struct crossings *x);
void crossings_print_text(FILE *out, const struct crossings *x);
void crossings_add_json(json_object *proc, const struct crossings *x);
/* Writes the timed calls per thread in the Chrome trace event format. */
int crossings_write_timeline(const char *path, const struct process *p);

#endif
