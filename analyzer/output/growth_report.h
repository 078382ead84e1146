/* What grew while the program ran: sites, rates, a live table, a chart. */
#ifndef CGOSCOPE_GROWTH_REPORT_H
#define CGOSCOPE_GROWTH_REPORT_H

#include <json-c/json.h>
#include <stdio.h>

#include "analysis/growth.h"
#include "output/report.h"

struct growth_site {
    const struct growth_series *series;
    struct growth_verdict verdict;
    uint64_t live_bytes, live_blocks; /* at the last snapshot */
    const struct leak_group *group;   /* its frames, when the report has them */
};

/* The sites worth showing: the `max` with the most live bytes at the last snapshot, judged.
 * Returns how many were filled in. Times are converted with the process's clock. */
size_t growth_sites(const struct process *p, const struct report *r, struct growth_site *out, size_t max);
/* "grab ← main.handler (main.go:42)" for a site: its C function and the Go line of the cgo
 * call that reached it (leaksite_label). */
void growth_label(const struct growth_site *s, char *buf, size_t len);

void growth_print_text(FILE *out, const struct report *r);
void growth_add_json(json_object *proc, const struct report *r);
/* An SVG chart of live C memory over time: the total and the top sites. */
int growth_write_svg(const char *path, const struct report *r);

#endif
