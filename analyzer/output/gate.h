/*
 * What makes cgoscope a CI gate, shared by `run` and `report`: suppressions, --fail-on-leak,
 * and the exports (pprof, SARIF, folded stacks). The commands hand their unknown options to
 * gate_option, and output_reports calls gate_apply and gate_export (docs/ci.md).
 */
#ifndef CGOSCOPE_GATE_H
#define CGOSCOPE_GATE_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "output/report.h"
#include "output/suppress.h"

#define GATE_DEFAULT_LEAK_EXITCODE 23

enum gate_opt {
    GATE_OPT_SUPPRESSIONS = 0x4701,
    GATE_OPT_NO_DEFAULT_SUPPRESSIONS,
    GATE_OPT_LIST_DEFAULT_SUPPRESSIONS,
    GATE_OPT_FAIL_ON_LEAK,
    GATE_OPT_LEAK_EXITCODE,
    GATE_OPT_PPROF,
    GATE_OPT_SARIF,
    GATE_OPT_FOLDED,
    GATE_OPT_SOURCE_ROOT,
    GATE_OPT_FAIL_ON,
    GATE_OPT_SHOW_REACHABLE,
    GATE_OPT_FAIL_ON_ERROR,
};

/* The long options of the gate, for a command's getopt_long table. */
#define GATE_LONG_OPTIONS                                                                                              \
    {"suppressions", required_argument, NULL, GATE_OPT_SUPPRESSIONS},                                                  \
        {"no-default-suppressions", no_argument, NULL, GATE_OPT_NO_DEFAULT_SUPPRESSIONS},                              \
        {"list-default-suppressions", no_argument, NULL, GATE_OPT_LIST_DEFAULT_SUPPRESSIONS},                          \
        {"fail-on-leak", no_argument, NULL, GATE_OPT_FAIL_ON_LEAK},                                                    \
        {"leak-exitcode", required_argument, NULL, GATE_OPT_LEAK_EXITCODE},                                            \
        {"pprof", required_argument, NULL, GATE_OPT_PPROF}, {"sarif", required_argument, NULL, GATE_OPT_SARIF},        \
        {"folded", required_argument, NULL, GATE_OPT_FOLDED},                                                          \
        {"source-root", required_argument, NULL, GATE_OPT_SOURCE_ROOT},                                                \
        {"fail-on", required_argument, NULL, GATE_OPT_FAIL_ON},                                                        \
        {"show-reachable", no_argument, NULL, GATE_OPT_SHOW_REACHABLE},                                                \
        {"fail-on-error", no_argument, NULL, GATE_OPT_FAIL_ON_ERROR}

#define GATE_MAX_SUPPRESSION_FILES 16

struct gate {
    const char *supp_files[GATE_MAX_SUPPRESSION_FILES];
    int nsupp_files;
    int no_default_suppressions;
    int fail_on_leak;
    int fail_on_possibly; /* --fail-on possibly: possibly lost blocks fail the gate too */
    int show_reachable;   /* the text report lists still-reachable groups (docs/reachability.md) */
    int leak_exitcode;
    const char *pprof_path, *sarif_path, *folded_path, *source_root;

    struct suppressions supp;
    int applied;                          /* gate_apply ran: the counts below are known */
    uint64_t leaked_blocks, leaked_bytes; /* user leaks no suppression matched, all processes */
    int fail_on_error;       /* --fail-on-error: lifetime errors fail the gate (--fail-on-leak too) */
    uint64_t lifetime_errors; /* double and invalid frees no suppression matched (docs/lifetime.md) */
    char **paths;                         /* expanded output paths, freed with the gate */
    size_t npaths;
};

enum gate_option_result {
    GATE_NOT_MINE = 0, /* not a gate option: the command handles it */
    GATE_OK = 1,       /* taken */
    GATE_EXIT_OK = 2,  /* done (it printed what was asked): exit 0 */
    GATE_BAD = -1,     /* bad value, already told: exit 2 */
};

void gate_init(struct gate *g);
void gate_free(struct gate *g);
/* One option from getopt_long (c and optarg). */
int gate_option(struct gate *g, int c, const char *arg);
/* After the options: reads the suppression files. Returns 0, or -1 after telling why. */
int gate_prepare(struct gate *g);
/* The options' help, for a command's usage. */
void gate_usage(FILE *out);

/* Marks the suppressed leak sites, moves them out of the headline numbers, counts what the
 * gate sees. */
void gate_apply(struct gate *g, struct report *reports, size_t n);
/* Writes the exports asked for (show_runtime, full_stacks: the folded stacks' options, as
 * output_options has them). Returns 0, or -1 when one failed (already told). */
int gate_export(struct gate *g, const struct report *reports, size_t n, int show_runtime, int full_stacks);
/* path with "%p" replaced by the (first) process id, "%%" by "%". The string lives as long
 * as the gate; path itself when there is nothing to replace or g is NULL. */
const char *gate_path(struct gate *g, const char *path, const struct process *procs, size_t n);
/* The exit status of the command: leak_exitcode when --fail-on-leak is on and a user leak no
 * suppression matched remains, else status. */
int gate_exit_status(const struct gate *g, int status);
/* With --fail-on-leak, a static binary has nothing cgoscope could trace (a Go program without
 * cgo): it runs as it is, and its status is the answer. Returns 126/127 if exec fails, and -1
 * at once without --fail-on-leak (the command then refuses the binary). */
int gate_run_untraced(const struct gate *g, char **argv, const char *path);

#endif
