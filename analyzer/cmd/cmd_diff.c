/* `cgoscope diff BASE HEAD`: what a change did to the leaks and the cgo calls of a program. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "diff/diff.h"
#include "output/gate.h"

static void diff_usage(FILE *out)
{
    fprintf(out,
            "Usage: cgoscope diff [options] BASE HEAD\n"
            "\n"
            "Compares two runs: BASE and HEAD are JSON reports (--json), traces (-o), or directories\n"
            "of them (their *.json and *.cgs files: one per test binary of `go test ./...`).\n"
            "Leak sites match by function, file and line, never by address; sites whose lines moved\n"
            "still match. Prints the new, grown, shrunk and fixed user leak sites, and per cgo call\n"
            "site the change in calls, C time and crossing cost.\n"
            "\n"
            "Options:\n"
            "  --format FORMAT            text (default) or markdown (a pull-request comment)\n"
            "  --max-leak-increase BYTES  a leak site new or grown by more than BYTES is a\n"
            "                             regression (default 0)\n"
            "  --max-crossing-increase PCT  a cgo call site whose total crossing time (calls x cost\n"
            "                             per call) grew by more than\n"
            "                             PCT percent is a regression (default: not checked)\n"
            "  --suppressions FILE        also leave out leaks these `leak:` lines match (repeatable)\n"
            "  --no-default-suppressions  for traces: drop the built-in suppressions\n"
            "  -h, --help                 this help\n"
            "\n"
            "Exit status: 0 no regression; 1 regression; 2 bad usage or unreadable input.\n");
}

static int parse_number(const char *opt, const char *arg, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !(v >= 0) || v > max) {
        fprintf(stderr, "cgoscope diff: %s takes a number from 0 to %.0f, not '%s'\n", opt, max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

struct diff_opts {
    int markdown;
    struct diff_limits lim;
};

static int parse(int argc, char **argv, struct diff_opts *o, struct gate *g)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"max-leak-increase", required_argument, NULL, 'L'},
        {"max-crossing-increase", required_argument, NULL, 'X'},
        {"suppressions", required_argument, NULL, GATE_OPT_SUPPRESSIONS},
        {"no-default-suppressions", no_argument, NULL, GATE_OPT_NO_DEFAULT_SUPPRESSIONS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    double v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") != 0 && strcmp(optarg, "markdown") != 0) {
                fprintf(stderr, "cgoscope diff: --format takes text or markdown, not '%s'\n", optarg);
                return 2;
            }
            o->markdown = strcmp(optarg, "markdown") == 0;
            break;
        case 'L':
            if (parse_number("--max-leak-increase", optarg, 1e18, &v) != 0)
                return 2;
            o->lim.max_leak_increase = (uint64_t)v;
            break;
        case 'X':
            if (parse_number("--max-crossing-increase", optarg, 1e9, &v) != 0)
                return 2;
            o->lim.max_crossing_increase = v;
            break;
        case 'h': diff_usage(stdout); return 0;
        default:
            if (gate_option(g, c, optarg) == GATE_OK)
                break;
            diff_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 2) {
        fprintf(stderr, "cgoscope diff: give two reports, BASE and HEAD.\n");
        diff_usage(stderr);
        return 2;
    }
    return gate_prepare(g) == 0 ? -1 : 2;
}

int cmd_diff(int argc, char **argv)
{
    struct diff_opts o = {.lim = {.max_leak_increase = 0, .max_crossing_increase = -1}};
    struct gate g;
    gate_init(&g);
    int rc = parse(argc, argv, &o, &g);
    if (rc >= 0) {
        gate_free(&g);
        return rc;
    }
    struct diff_side base, head;
    diff_side_init(&base, argv[optind]);
    diff_side_init(&head, argv[optind + 1]);
    char err[1024];
    struct diff_result r;
    if (diff_load(&base, base.name, &g, err, sizeof err) != 0 || diff_load(&head, head.name, &g, err, sizeof err) != 0) {
        fprintf(stderr, "cgoscope diff: %s\n", err);
        rc = 2;
    } else if (diff_compare(&base, &head, &o.lim, &r) != 0) {
        fprintf(stderr, "cgoscope diff: out of memory\n");
        rc = 2;
    } else {
        (o.markdown ? diff_print_markdown : diff_print_text)(stdout, &base, &head, &r, &o.lim);
        rc = r.leak_regressions || r.call_regressions ? 1 : 0;
        diff_result_free(&r);
    }
    diff_side_free(&base);
    diff_side_free(&head);
    gate_free(&g);
    return rc;
}
