/* `cgoscope inspect PROG`: before tracing, what will work on this binary and how to fix what
 * will not. Reads the file, never runs it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "gobin/golayout.h"
#include "gobin/inspect.h"

static void inspect_usage(FILE *out)
{
    fprintf(out, "Usage: cgoscope inspect [--json FILE|-] PROGRAM\n"
                 "\n"
                 "Reads PROGRAM (never runs it) and tells what cgoscope can do with it: the Go version\n"
                 "that built it, static or dynamic, PIE, stripped, DWARF, the cgo call sites per\n"
                 "package, and how to fix what stands in the way of tracing it.\n"
                 "\n"
                 "Options:\n"
                 "  --json FILE   also write the findings as JSON (`-`: JSON on stdout, no text)\n"
                 "  -h, --help    this help\n"
                 "\n"
                 "Exit status: 0 the program could be read (whatever was found in it); 1 it is missing,\n"
                 "unreadable or not ELF, or the JSON could not be written; 2 bad usage.\n");
}

static const char *sites_from_name(enum inspect_sites_from f)
{
    switch (f) {
    case INSPECT_SITES_SYMTAB: return "symtab";
    case INSPECT_SITES_PCLNTAB: return "gopclntab";
    default: return "none";
    }
}

/* ---- text ----------------------------------------------------------------------------------- */

static void print_sites(FILE *out, const struct inspect *in)
{
    if (in->sites_from == INSPECT_SITES_NONE) {
        fprintf(out, "  cgo call sites  unknown (no .symtab and no .gopclntab to find them in)\n");
        return;
    }
    fprintf(out, "  cgo call sites  %zu in %zu package%s", in->nsites, in->npackages, in->npackages == 1 ? "" : "s");
    if (in->sites_from == INSPECT_SITES_PCLNTAB)
        fprintf(out, " (found by the Go stubs in .gopclntab: stripped; %zu will be hooked)", in->hookable);
    fputc('\n', out);
    for (size_t i = 0; i < in->npackages; i++) {
        const struct inspect_package *p = &in->packages[i];
        fprintf(out, "    %s:", p->name);
        for (size_t j = 0; j < p->nfunctions; j++)
            fprintf(out, "%s %s", j ? "," : "", p->functions[j]);
        fputc('\n', out);
    }
}

static void print_verdict(FILE *out, const struct inspect *in)
{
    if (!in->traceable)
        fprintf(out, "\ncgoscope cannot trace it as it is:\n");
    else if (in->nwarnings)
        fprintf(out, "\ncgoscope can trace it, with these limits:\n");
    else
        fprintf(out, "\ncgoscope can trace it fully: each C leak is reported with its C frames and the Go\n"
                     "function and line of the cgo call behind it.\n");
    for (size_t i = 0; i < in->nwarnings; i++) {
        fprintf(out, "  - %s\n", in->warnings[i].what);
        if (in->warnings[i].fix)
            fprintf(out, "    fix: %s\n", in->warnings[i].fix);
    }
}

static void print_text(FILE *out, const struct inspect *in)
{
    fprintf(out, "cgoscope inspect: %s\n\n", in->path);
    fprintf(out, "  Go version      %s\n",
            in->go_version[0] ? in->go_version : in->is_go ? "unknown (no readable build info)" : "none: not a Go binary");
    fprintf(out, "  linking         %s%s\n", in->is_static ? "static" : "dynamic",
            in->is_static ? "" : in->is_pie ? ", PIE" : ", not PIE");
    fprintf(out, "  symbols         %s\n", in->stripped ? "stripped (no .symtab)" : ".symtab present");
    fprintf(out, "  debug info      %s\n",
            !in->dwarf ? "no DWARF" : in->dwarf_compressed ? "DWARF (compressed)" : "DWARF");
    if (in->is_setid)
        fprintf(out, "  permissions     setuid/setgid\n");
    if (in->is_go && !in->is_static) {
        struct go_layout gl;
        if (!in->stripped && go_layout_read(in->path, &gl) == 0)
            fprintf(out, "  call counting   store-free for repeated calls (runtime layout from DWARF: g.m %u, "
                         "m.ncgocall %u, m.procid %u)\n", gl.g_m, gl.m_ncgocall, gl.m_procid);
        else
            fprintf(out, "  call counting   in the hook on every call (%s: docs/crossings.md, \"Store-free calls\")\n",
                    in->stripped ? "no symbols" : "no runtime layout in DWARF");
    }
    print_sites(out, in);
    print_verdict(out, in);
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static json_object *json_packages(const struct inspect *in)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < in->npackages; i++) {
        const struct inspect_package *p = &in->packages[i];
        json_object *o = json_object_new_object(), *fns = json_object_new_array();
        for (size_t j = 0; j < p->nfunctions; j++)
            json_object_array_add(fns, json_object_new_string(p->functions[j]));
        json_object_object_add(o, "package", json_object_new_string(p->name));
        json_object_object_add(o, "call_sites", json_object_new_int64((int64_t)p->nsites));
        json_object_object_add(o, "functions", fns);
        json_object_array_add(arr, o);
    }
    return arr;
}

/* "warnings" holds each problem and its fix in one sentence; "problems" the same, split. */
static void json_warnings(json_object *doc, const struct inspect *in)
{
    json_object *warnings = json_object_new_array(), *problems = json_object_new_array();
    for (size_t i = 0; i < in->nwarnings; i++) {
        const struct inspect_warning *w = &in->warnings[i];
        char line[2048];
        snprintf(line, sizeof line, "%s%s%s", w->what, w->fix ? "; " : "", w->fix ? w->fix : "");
        json_object_array_add(warnings, json_object_new_string(line));
        json_object *p = json_object_new_object();
        json_object_object_add(p, "problem", json_object_new_string(w->what));
        json_object_object_add(p, "fix", w->fix ? json_object_new_string(w->fix) : NULL);
        json_object_array_add(problems, p);
    }
    json_object_object_add(doc, "warnings", warnings);
    json_object_object_add(doc, "problems", problems);
}

static json_object *json_document(const struct inspect *in)
{
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "path", json_object_new_string(in->path));
    json_object_object_add(doc, "go", json_object_new_boolean(in->is_go));
    json_object_object_add(doc, "go_version", in->go_version[0] ? json_object_new_string(in->go_version) : NULL);
    json_object_object_add(doc, "static", json_object_new_boolean(in->is_static));
    json_object_object_add(doc, "pie", json_object_new_boolean(in->is_pie));
    json_object_object_add(doc, "stripped", json_object_new_boolean(in->stripped));
    json_object_object_add(doc, "dwarf", json_object_new_boolean(in->dwarf));
    struct go_layout gl;
    json_object_object_add(doc, "store_free_calls",
                           json_object_new_boolean(in->is_go && !in->is_static && !in->stripped &&
                                                   go_layout_read(in->path, &gl) == 0));
    json_object_object_add(doc, "setid", json_object_new_boolean(in->is_setid));
    json_object_object_add(doc, "traceable", json_object_new_boolean(in->traceable));
    json_object_object_add(doc, "cgo_call_sites", json_object_new_int64((int64_t)in->nsites));
    json_object_object_add(doc, "hookable_call_sites", json_object_new_int64((int64_t)in->hookable));
    json_object_object_add(doc, "call_sites_from", json_object_new_string(sites_from_name(in->sites_from)));
    json_object_object_add(doc, "callbacks_counted",
                           json_object_new_boolean(in->traceable && (!in->exports || in->callbacks)));
    json_object_object_add(doc, "packages", json_packages(in));
    json_warnings(doc, in);
    return doc;
}

static int write_all(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t w = write(fd, s, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

static int write_json(const char *path, const struct inspect *in)
{
    int to_stdout = strcmp(path, "-") == 0;
    int fd = to_stdout ? STDOUT_FILENO : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cgoscope: cannot write the JSON to %s: %s\n", path, strerror(errno));
        return -1;
    }
    json_object *doc = json_document(in);
    const char *s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = write_all(fd, s, strlen(s)) == 0 && write_all(fd, "\n", 1) == 0 ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "cgoscope: writing the JSON to %s failed: %s%s\n", path, strerror(errno),
                errno == ENOSPC ? " (disk full)" : "");
    json_object_put(doc);
    if (!to_stdout && close(fd) != 0 && rc == 0) {
        fprintf(stderr, "cgoscope: writing the JSON to %s failed: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* ---- command -------------------------------------------------------------------------------- */

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *json_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_path = optarg; break;
        case 'h': inspect_usage(stdout); return 0;
        default: inspect_usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "cgoscope inspect: give exactly one program.\n");
        inspect_usage(stderr);
        return 2;
    }
    struct inspect in;
    char err[PATH_MAX + 256];
    if (inspect_read(argv[optind], &in, err, sizeof err) != 0) {
        fprintf(stderr, "cgoscope: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (!json_path || strcmp(json_path, "-") != 0) {
        print_text(stdout, &in);
        fflush(stdout);
    }
    if (json_path && write_json(json_path, &in) != 0)
        rc = 1;
    inspect_free(&in);
    return rc;
}
