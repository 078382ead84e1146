/*
 * `cgoscope diff`: two runs compared by symbols, never by address. A leak site is the symbolic
 * stack of a user leak no suppression matched, of lost blocks (held ones are not leaks): each frame's function, file name and line, cgo
 * glue and the shim left out. Sites match exactly first; sites left over match when only their
 * lines differ (code moved), in line order. cgo call sites match by package and C function.
 */
#ifndef CGOSCOPE_DIFF_H
#define CGOSCOPE_DIFF_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "output/gate.h"
#include "output/report.h"

struct diff_leak {
    char *key;         /* function@file:line;... (innermost first) */
    char *key_nolines; /* function@file;... */
    struct report_frame *frames; /* owned copies (pc 0) */
    size_t nframes;
    uint64_t blocks, bytes;
};

struct diff_call {
    char *package, *function;
    uint64_t calls;
    double c_time_ns;
    double crossing_ns; /* -1 when not measured */
};

/* One side of the comparison: every process of every report it was read from. */
struct diff_side {
    const char *name;
    struct diff_leak *leaks;
    size_t nleaks, capleaks;
    struct diff_call *calls;
    size_t ncalls, capcalls;
    size_t nprocesses;
};

enum diff_status { DIFF_SAME, DIFF_NEW, DIFF_GROWN, DIFF_SHRUNK, DIFF_FIXED };

struct diff_leak_change {
    const struct diff_leak *base, *head; /* either may be NULL (new, fixed) */
    int status;
    int64_t delta_bytes, delta_blocks;
    int regression;
};

struct diff_call_change {
    const struct diff_call *base, *head;
    double crossing_pct; /* growth of the crossing cost in percent; INFINITY from nothing; NAN unknown */
    int regression;
};

/* A call site's crossing cost must grow by at least this much (in all, over the run) to be a
 * regression, whatever the percentage: less is within the run-to-run spread of the estimate. */
#define DIFF_CROSSING_FLOOR_NS 100000.0

struct diff_limits {
    uint64_t max_leak_increase;   /* bytes */
    double max_crossing_increase; /* percent; < 0: crossings never regress */
};

struct diff_result {
    struct diff_leak_change *leaks;
    size_t nleaks;
    struct diff_call_change *calls;
    size_t ncalls;
    size_t leak_regressions, call_regressions;
};

void diff_side_init(struct diff_side *s, const char *name);
void diff_side_free(struct diff_side *s);
/* Adds a JSON report (docs/json-report.md). Leaks that g's suppressions match count as
 * suppressed. Returns 0, or -1 with the reason in err. */
int diff_add_document(struct diff_side *s, json_object *doc, struct gate *g, char *err, size_t errlen);
/* Adds what path holds: a JSON report or a trace (told apart by content), or a directory of
 * them (its *.json and *.cgs files). Returns 0, or -1 with the reason in err. */
int diff_load(struct diff_side *s, const char *path, struct gate *g, char *err, size_t errlen);
/* Adds one leak site (frames innermost first); exported for tests. Returns 0 or -1 (memory). */
int diff_add_leak(struct diff_side *s, const struct report_frame *frames, size_t n, uint64_t blocks, uint64_t bytes);

int diff_compare(const struct diff_side *base, const struct diff_side *head, const struct diff_limits *lim,
                 struct diff_result *out);
void diff_result_free(struct diff_result *r);

void diff_print_text(FILE *out, const struct diff_side *base, const struct diff_side *head,
                     const struct diff_result *r, const struct diff_limits *lim);
void diff_print_markdown(FILE *out, const struct diff_side *base, const struct diff_side *head,
                         const struct diff_result *r, const struct diff_limits *lim);

#endif
