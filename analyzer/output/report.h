/* The leak report of one process: unfreed blocks grouped by stack, symbolized, classified. */
#ifndef CGOSCOPE_REPORT_H
#define CGOSCOPE_REPORT_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "output/crossings.h"
#include "output/lifetime_report.h"
#include "analysis/process.h"

struct report_frame {
    uint64_t pc;
    const char *function, *file, *object;
    int line, lang;
};

enum origin { ORIGIN_USER = 0, ORIGIN_RUNTIME = 1 };

/* What holds a still-reachable group: the root of the first chain found to one of its blocks. */
struct held_ref {
    int root;           /* enum reach_root; ROOT_GLOBAL is told apart as go_global or c_global */
    int c_global;       /* a global of C code (by its symbol, or its object) */
    uint64_t addr;      /* the root word's address */
    const char *symbol; /* the global covering it, when known (the symbolizer's string) */
};
#define HELD_MAX 4

struct leak_group {
    uint64_t stack;
    int kind; /* enum reach_kind: a group holds blocks of one kind */
    struct held_ref held[HELD_MAX];
    size_t nheld;
    uint64_t blocks, bytes;
    int origin;
    struct report_frame *frames;
    size_t nframes;
    int suppressed; /* a suppression matched (gate.h); the strings are the rule's */
    const char *suppressed_pattern, *suppressed_source;
    int user_frame; /* index of the innermost frame of the program's own code, or -1 */
};

struct report {
    const struct process *proc;
    struct symbolizer *sym;
    struct leak_group *groups; /* user first, then by bytes */
    size_t ngroups;
    /* user_*: the program's lost blocks (definitely and indirectly, or unclassified when no scan
     * was made), not suppressed: what --fail-on-leak fails on. */
    uint64_t user_blocks, user_bytes, runtime_blocks, runtime_bytes;
    uint64_t possibly_blocks, possibly_bytes, reachable_blocks, reachable_bytes; /* user, unsuppressed */
    uint64_t suppressed_blocks, suppressed_bytes; /* user leaks a suppression matched: not in user_* */
    char go_version[64];
    int is_go; /* the executable has Go build info */
    struct crossings crossings;
    struct lifetime_report lifetime; /* double and invalid frees (lifetime_report.h) */
};

struct report_options {
    int show_runtime;
    int show_reachable; /* list the still-reachable groups, with what holds them */
    int full_stacks; /* also the cgo glue frames, and recursion unfolded */
    int full_report; /* every group, every path, and each site's stack (else the top REPORT_TOP_GROUPS) */
};
#define REPORT_TOP_GROUPS 10
#define REPORT_TOP_PATHS 3

/* Sites (leak_groups) of one origin, kind and suppression, made by the same Go line of a cgo call
 * (leaksite_go_line; the innermost frame when there is none): what a user acts on. */
struct line_path { /* sites alike as "C path <- Go line <- its Go caller" */
    char *label;
    uint64_t bytes, blocks;
    size_t *sites, nsites; /* indices into report.groups */
};
struct line_group {
    int origin, kind, suppressed;
    const struct report_frame *at; /* the Go line, or the innermost frame; NULL without frames */
    int is_go_line;
    uint64_t bytes, blocks;
    size_t *sites, nsites; /* indices into report.groups, largest first */
    struct line_path *paths; /* largest first */
    size_t npaths;
};
/* The report's sites grouped by Go line, in the report's order: user before runtime, lost before
 * possibly lost before still reachable, unsuppressed first, then by bytes. */
int report_line_groups(const struct report *r, struct line_group **out, size_t *n);
void report_line_groups_free(struct line_group *v, size_t n);

/* The report of p, symbolized with sym (which it then owns: symwarm.h reads one ahead) or, when
 * sym is NULL, with a symbolizer of its own. */
int report_build(struct report *r, const struct process *p, struct symbolizer *sym);
/* Is this group counted as leaked (lost, or unclassified when no scan was made)? */
int leak_group_is_lost(const struct leak_group *g);
/* Order of kinds in a report: lost first, then possibly lost, then still reachable. */
int leak_group_rank(const struct leak_group *g);
/* What orders leaks everywhere (sites, Go-line groups, the gate's list): user before runtime,
 * lost before possibly lost before still reachable, unsuppressed first, then most bytes, then
 * most blocks. 0 when those are equal: the caller breaks the tie. */
struct leak_order {
    int origin, kind, suppressed;
    uint64_t bytes, blocks;
};
int leak_order_cmp(struct leak_order x, struct leak_order y);
/* "go_global", "c_global", "go_heap", ...: the JSON name of a root. */
const char *held_root_name(const struct held_ref *h);
/* Adds (sign 1) or removes (-1) a user group's blocks to the report's total for its kind. */
void report_count_group(struct report *r, const struct leak_group *g, int sign);
/* Frames every cgo call has and that say nothing about the program (runtime.cgocall, the
 * _Cfunc_ stubs cgo generates, ...). */
int report_frame_is_glue(const char *function, int is_go);
json_object *report_frame_json(const struct report_frame *f);
/* The frames of a stack, symbolized with the report's symbolizer (*out is the caller's to free). */
int report_symbolize_stack(struct report *r, const struct stack_info *st, struct report_frame **out, size_t *nout,
                           int *ldso_first);
void report_free(struct report *r);
void report_print_text(FILE *out, const struct report *r, const struct report_options *o);
json_object *report_process_json(const struct report *r);
/* The whole JSON document for these processes' reports. */
json_object *report_document(const struct report *reports, size_t n);

#endif
