/*
 * The lifetime errors of one process in its report: symbolized, matched against suppressions
 * (`double_free:PATTERN`, `invalid_free:PATTERN`), printed first in the text report, listed as
 * "errors" in the JSON (docs/lifetime.md, docs/json-report.md).
 */
#ifndef CGOSCOPE_LIFETIME_REPORT_H
#define CGOSCOPE_LIFETIME_REPORT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct report;
struct report_frame;
struct report_options;
struct lifetime_error;
struct suppressions;

enum { LT_STACK_FREE = 0, LT_STACK_ALLOC = 1, LT_STACK_FIRST_FREE = 2, LT_NSTACKS = 3 };

struct lt_report_error {
    const struct lifetime_error *e;
    struct report_frame *frames[LT_NSTACKS]; /* this free's, the allocation's, the first free's */
    size_t nframes[LT_NSTACKS];
    int have[LT_NSTACKS]; /* the stack is known (recorded and found) */
    int suppressed;
    const char *suppressed_pattern, *suppressed_source;
};

struct lifetime_report {
    struct lt_report_error *v;
    size_t n;
    size_t unsuppressed; /* what --fail-on-error (and --fail-on-leak) fail on */
    uint64_t dropped;    /* errors beyond LIFETIME_MAX_ERRORS */
    uint64_t unknown;    /* frees of unknown addresses in a fork() child, not reported */
    int unreliable;      /* records were lost: the errors found are left out */
    uint64_t unreliable_n;
};

/* Builds r->lifetime from r->proc (the symbolizer of r is used). -1: out of memory. */
int lifetime_report_build(struct report *r);
void lifetime_report_free(struct lifetime_report *lr);
/* Marks the errors a suppression of their kind matches (any frame of any of their stacks). */
void lifetime_report_suppress(struct lifetime_report *lr, struct suppressions *s);
/* The errors, first in the text report. */
void lifetime_print_text(FILE *out, const struct report *r, const struct report_options *o);
/* "errors": [...] into the process's JSON object. */
void lifetime_add_json(json_object *o, const struct report *r);

#endif
