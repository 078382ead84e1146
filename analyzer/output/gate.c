#include "output/gate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/exports.h"

void gate_init(struct gate *g)
{
    memset(g, 0, sizeof *g);
    g->leak_exitcode = GATE_DEFAULT_LEAK_EXITCODE;
    suppressions_init(&g->supp);
}

void gate_free(struct gate *g)
{
    suppressions_free(&g->supp);
    for (size_t i = 0; i < g->npaths; i++)
        free(g->paths[i]);
    free(g->paths);
    memset(g, 0, sizeof *g);
}

void gate_usage(FILE *out)
{
    fprintf(out,
            "\n"
            "CI gate and exports (docs/ci.md):\n"
            "  --fail-on-leak     exit with status 23 when a user leak no suppression matched remains\n"
            "                     (definitely or indirectly lost: docs/reachability.md)\n"
            "  --fail-on KINDS    what fails the gate, comma-separated: lost (the default) and\n"
            "                     possibly (possibly lost too); implies --fail-on-leak\n"
            "  --fail-on-error    exit with status 23 on a double or invalid free no suppression matched\n"
            "                     (--fail-on-leak does too; docs/lifetime.md)\n"
            "  --show-reachable   list the blocks still reachable at exit, with what holds them\n"
            "  --leak-exitcode N  that status instead of 23 (1 to 255)\n"
            "  --suppressions FILE  LeakSanitizer-style `leak:PATTERN` lines: matching leaks are\n"
            "                     marked suppressed and left out of the headline (repeatable)\n"
            "  --no-default-suppressions   drop the built-in ones (Go runtime, ld.so, libc)\n"
            "  --list-default-suppressions print the built-in ones and exit\n"
            "  --pprof FILE       leaks and cgo calls as a gzipped pprof profile (go tool pprof)\n"
            "  --sarif FILE       user leak sites as SARIF 2.1.0, for code review and code scanning\n"
            "  --source-root DIR  in SARIF, give files under DIR relative to it (%%SRCROOT%%)\n"
            "  --folded FILE      leaked bytes as folded stacks, for flame graph tools\n"
            "  In --json, --pprof, --sarif and --folded paths, %%p is the process id.\n");
}

static int parse_exitcode(const char *arg, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < 1 || v > 255) {
        fprintf(stderr, "cgoscope: --leak-exitcode takes a number from 1 to 255, not '%s'\n", arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int gate_option(struct gate *g, int c, const char *arg)
{
    switch (c) {
    case GATE_OPT_SUPPRESSIONS:
        if (g->nsupp_files == GATE_MAX_SUPPRESSION_FILES) {
            fprintf(stderr, "cgoscope: at most %d --suppressions files\n", GATE_MAX_SUPPRESSION_FILES);
            return GATE_BAD;
        }
        g->supp_files[g->nsupp_files++] = arg;
        return GATE_OK;
    case GATE_OPT_NO_DEFAULT_SUPPRESSIONS: g->no_default_suppressions = 1; return GATE_OK;
    case GATE_OPT_LIST_DEFAULT_SUPPRESSIONS: fputs(suppressions_default_text(), stdout); return GATE_EXIT_OK;
    case GATE_OPT_FAIL_ON_LEAK: g->fail_on_leak = 1; return GATE_OK;
    case GATE_OPT_LEAK_EXITCODE: return parse_exitcode(arg, &g->leak_exitcode) == 0 ? GATE_OK : GATE_BAD;
    case GATE_OPT_PPROF: g->pprof_path = arg; return GATE_OK;
    case GATE_OPT_SARIF: g->sarif_path = arg; return GATE_OK;
    case GATE_OPT_FOLDED: g->folded_path = arg; return GATE_OK;
    case GATE_OPT_SOURCE_ROOT: g->source_root = arg; return GATE_OK;
    case GATE_OPT_SHOW_REACHABLE: g->show_reachable = 1; return GATE_OK;
    case GATE_OPT_FAIL_ON_ERROR: g->fail_on_error = 1; return GATE_OK;
    case GATE_OPT_FAIL_ON: {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", arg);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (strcmp(t, "possibly") == 0) {
                g->fail_on_possibly = 1;
            } else if (strcmp(t, "lost") != 0 && strcmp(t, "definitely") != 0 && strcmp(t, "indirectly") != 0) {
                fprintf(stderr, "cgoscope: --fail-on takes lost and possibly (comma-separated), not '%s'\n", t);
                return GATE_BAD;
            }
        }
        g->fail_on_leak = 1;
        return GATE_OK;
    }
    default: return GATE_NOT_MINE;
    }
}

int gate_prepare(struct gate *g)
{
    char err[1024];
    for (int i = 0; i < g->nsupp_files; i++) {
        if (suppressions_load(&g->supp, g->supp_files[i], err, sizeof err) != 0) {
            fprintf(stderr, "cgoscope: %s\n", err);
            return -1;
        }
    }
    if (!g->no_default_suppressions && suppressions_add_defaults(&g->supp) != 0) {
        fprintf(stderr, "cgoscope: out of memory reading the default suppressions\n");
        return -1;
    }
    if (g->source_root && access(g->source_root, X_OK) != 0) {
        fprintf(stderr, "cgoscope: --source-root %s: %s\n", g->source_root, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmp_group(const void *a, const void *b)
{
    const struct leak_group *x = a, *y = b;
    int c = leak_order_cmp((struct leak_order){x->origin, x->kind, x->suppressed, x->bytes, x->blocks},
                           (struct leak_order){y->origin, y->kind, y->suppressed, y->bytes, y->blocks});
    if (c)
        return c;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static void apply_one(struct gate *g, struct report *r)
{
    for (size_t i = 0; i < r->ngroups; i++) {
        struct leak_group *lg = &r->groups[i];
        struct suppression *s = suppressions_match(&g->supp, lg->frames, lg->nframes);
        if (!s || lg->suppressed)
            continue;
        s->hits++;
        lg->suppressed = 1;
        lg->suppressed_pattern = s->pattern;
        lg->suppressed_source = s->source;
        if (lg->origin == ORIGIN_USER) {
            report_count_group(r, lg, -1);
            r->suppressed_blocks += lg->blocks;
            r->suppressed_bytes += lg->bytes;
        }
    }
    if (r->ngroups) /* qsort(NULL, 0, ...) is undefined */
        qsort(r->groups, r->ngroups, sizeof *r->groups, cmp_group);
    lifetime_report_suppress(&r->lifetime, &g->supp); /* double_free:, invalid_free: rules */
    g->lifetime_errors += r->lifetime.unsuppressed + r->lifetime.dropped;
    g->leaked_blocks += r->user_blocks;
    g->leaked_bytes += r->user_bytes;
    if (g->fail_on_possibly) {
        g->leaked_blocks += r->possibly_blocks;
        g->leaked_bytes += r->possibly_bytes;
    }
}

void gate_apply(struct gate *g, struct report *reports, size_t n)
{
    if (!g)
        return;
    for (size_t i = 0; i < n; i++) {
        suppressions_memo_begin(&g->supp); /* each report's frames name its own symbolizer's strings */
        apply_one(g, &reports[i]);
        suppressions_memo_end(&g->supp);
    }
    g->applied = 1;
}

/* Frames of the executable shown as bare addresses: it was linked with -s -w, which `go test`
 * does to the test binaries it runs. Frames inside cgo wrappers are named anyway (symbolize.c);
 * C functions they call but did not inline are not. Say how to keep the symbols. */
static void note_unsymbolized(const struct report *r)
{
    const char *exe = r->proc->exe;
    for (size_t i = 0; exe && i < r->ngroups; i++) {
        const struct leak_group *lg = &r->groups[i];
        for (size_t k = 0; lg->origin == ORIGIN_USER && k < lg->nframes; k++) {
            if (lg->frames[k].function || !lg->frames[k].object || strcmp(lg->frames[k].object, exe) != 0)
                continue;
            fprintf(stderr,
                    "cgoscope: note: %s has no symbols, so some of its C frames are bare addresses. It was linked\n"
                    "  with -s -w; `go test` does that to the test binaries it runs: add -ldflags='-s=false -w=false'\n"
                    "  to go test to name them.\n",
                    exe);
            return;
        }
    }
}

int gate_export(struct gate *g, const struct report *reports, size_t n, int show_runtime, int full_stacks)
{
    if (!g)
        return 0;
    const struct process *first = n ? reports[0].proc : NULL;
    int rc = 0;
    if (g->pprof_path && export_pprof(gate_path(g, g->pprof_path, first, n), reports, n) != 0)
        rc = -1;
    if (g->sarif_path && export_sarif(gate_path(g, g->sarif_path, first, n), reports, n, g->source_root) != 0)
        rc = -1;
    if (g->folded_path &&
        export_folded(gate_path(g, g->folded_path, first, n), reports, n, show_runtime, full_stacks) != 0)
        rc = -1;
    for (size_t i = 0; i < n; i++)
        note_unsymbolized(&reports[i]);
    return rc;
}

const char *gate_path(struct gate *g, const char *path, const struct process *procs, size_t n)
{
    if (!g || !path || !strchr(path, '%'))
        return path;
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    if (!m)
        return path;
    for (const char *c = path; *c; c++) {
        if (c[0] == '%' && c[1] == 'p' && n) {
            fprintf(m, "%u", procs[0].pid);
            c++;
        } else if (c[0] == '%' && c[1] == '%') {
            fputc('%', m);
            c++;
        } else {
            fputc(*c, m);
        }
    }
    char **nv = fclose(m) == 0 ? realloc(g->paths, (g->npaths + 1) * sizeof *nv) : NULL;
    if (!nv) {
        free(out);
        return path;
    }
    g->paths = nv;
    g->paths[g->npaths++] = out;
    return out;
}

int gate_exit_status(const struct gate *g, int status)
{
    if ((g->fail_on_leak || g->fail_on_error) && g->applied && g->lifetime_errors) {
        fprintf(stderr, "cgoscope: %" PRIu64 " double or invalid free%s not suppressed: exit status %d (%s)\n",
                g->lifetime_errors, g->lifetime_errors == 1 ? "" : "s", g->leak_exitcode,
                g->fail_on_error ? "--fail-on-error" : "--fail-on-leak");
        return g->leak_exitcode;
    }
    if (!g->fail_on_leak || !g->applied || !g->leaked_blocks)
        return status;
    fprintf(stderr,
            "cgoscope: %" PRIu64 " bytes in %" PRIu64 " block%s leaked by the program%s and not suppressed: "
            "exit status %d (--fail-on-leak)\n",
            g->leaked_bytes, g->leaked_blocks, g->leaked_blocks == 1 ? "" : "s",
            g->fail_on_possibly ? " (lost or possibly lost)" : "", g->leak_exitcode);
    return g->leak_exitcode;
}

int gate_run_untraced(const struct gate *g, char **argv, const char *path)
{
    if (!g->fail_on_leak)
        return -1;
    fprintf(stderr, "cgoscope: %s is a static binary (a Go program without cgo): no C heap to check, running it as is\n",
            path);
    fflush(NULL);
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "cgoscope: cannot run %s: %s\n", argv[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}
