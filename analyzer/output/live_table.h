/* `run --interval`: the sites holding the most live C memory, and how fast, while it runs. */
#ifndef CGOSCOPE_LIVE_TABLE_H
#define CGOSCOPE_LIVE_TABLE_H

#include <stdio.h>

#include "gobin/gobuild.h"
#include "analysis/process.h"
#include "output/symbolize.h"

struct live_table {
    int tty;           /* redraw in place */
    int lines;         /* printed last time, to move back over */
    struct symbolizer *sym;
    size_t sym_modules; /* modules known when sym was made */
    struct gobuild gb;
    int have_gb;
};

void live_table_init(struct live_table *t, int tty);
void live_table_free(struct live_table *t);
void live_table_print(struct live_table *t, FILE *out, const struct process *p, double elapsed_s);

#endif
