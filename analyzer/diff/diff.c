#define _GNU_SOURCE /* asprintf */
#include "diff/diff.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "output/leaksite.h"
#include "output/output.h"
#include "util/strtab.h"
#include "output/symbolize.h"
#include "ingest/trace.h"

void diff_side_init(struct diff_side *s, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name;
}

static void free_leak(struct diff_leak *l)
{
    for (size_t k = 0; k < l->nframes; k++) {
        free((char *)l->frames[k].function);
        free((char *)l->frames[k].file);
        free((char *)l->frames[k].object);
    }
    free(l->frames);
    free(l->key);
    free(l->key_nolines);
}

void diff_side_free(struct diff_side *s)
{
    for (size_t i = 0; i < s->nleaks; i++)
        free_leak(&s->leaks[i]);
    for (size_t i = 0; i < s->ncalls; i++) {
        free(s->calls[i].package);
        free(s->calls[i].function);
    }
    free(s->leaks);
    free(s->calls);
    memset(s, 0, sizeof *s);
}

/* ---- site keys ------------------------------------------------------------------------ */

/* A frame by name: a bare address says nothing across builds, so it counts as "?"; cgo's
 * generated code goes by its stable name, without lines. */
static void put_frame(FILE *m, const struct report_frame *f, int lines)
{
    char buf[512];
    const char *fn = f->function && strncmp(f->function, "0x", 2) != 0 ? f->function : "?";
    fprintf(m, "%s@%s", leaksite_stable_name(fn, buf, sizeof buf), f->file ? leaksite_basename(f->file) : "");
    if (lines && !leaksite_frame_is_cgo_generated(f))
        fprintf(m, ":%d", f->line);
    fputc(';', m);
}

static char *site_key(const struct report_frame *frames, size_t n, int lines)
{
    char *key = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&key, &len);
    if (!m)
        return NULL;
    for (size_t k = 0; k < n; k++)
        if (!leaksite_frame_is_noise(&frames[k]))
            put_frame(m, &frames[k], lines);
    if (fclose(m) != 0) {
        free(key);
        return NULL;
    }
    return key;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int copy_frames(struct diff_leak *l, const struct report_frame *frames, size_t n)
{
    l->frames = calloc(n ? n : 1, sizeof *l->frames);
    if (!l->frames)
        return -1;
    for (size_t k = 0; k < n; k++) {
        struct report_frame *f = &l->frames[l->nframes++];
        f->function = dup_or_null(frames[k].function);
        f->file = dup_or_null(frames[k].file);
        f->object = dup_or_null(frames[k].object);
        f->line = frames[k].line;
        f->lang = frames[k].lang;
        if ((frames[k].function && !f->function) || (frames[k].file && !f->file) || (frames[k].object && !f->object))
            return -1;
    }
    return 0;
}

int diff_add_leak(struct diff_side *s, const struct report_frame *frames, size_t n, uint64_t blocks, uint64_t bytes)
{
    char *key = site_key(frames, n, 1);
    if (!key)
        return -1;
    for (size_t i = 0; i < s->nleaks; i++) {
        if (strcmp(s->leaks[i].key, key) == 0) {
            s->leaks[i].blocks += blocks;
            s->leaks[i].bytes += bytes;
            free(key);
            return 0;
        }
    }
    if (s->nleaks == s->capleaks) {
        size_t nc = s->capleaks ? s->capleaks * 2 : 32;
        struct diff_leak *nv = realloc(s->leaks, nc * sizeof *nv);
        if (!nv) {
            free(key);
            return -1;
        }
        s->leaks = nv;
        s->capleaks = nc;
    }
    struct diff_leak *l = &s->leaks[s->nleaks++];
    memset(l, 0, sizeof *l);
    l->key = key;
    l->blocks = blocks;
    l->bytes = bytes;
    l->key_nolines = site_key(frames, n, 0);
    if (!l->key_nolines || copy_frames(l, frames, n) != 0)
        return -1;
    return 0;
}

/* ---- reading JSON reports ----------------------------------------------------------------- */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                               : NULL;
}

static int64_t jint(json_object *o, const char *key, int64_t dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return dflt;
    return json_object_get_int64(v);
}

static json_object *jarray(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v : NULL;
}

static int add_json_leak(struct diff_side *s, json_object *l, struct gate *g)
{
    const char *origin = jstr(l, "origin");
    json_object *sup;
    int suppressed = json_object_object_get_ex(l, "suppressed", &sup) && json_object_get_boolean(sup);
    if (suppressed || !origin || strcmp(origin, "user") != 0)
        return 0;
    /* Only lost blocks count (docs/reachability.md): held memory is never a regression, and a
     * block that went from held to lost shows as a new leak. Reports from before the kinds have
     * none: all they list was counted as leaked. */
    const char *kind = jstr(l, "kind");
    if (kind && strcmp(kind, "definitely_lost") != 0 && strcmp(kind, "indirectly_lost") != 0 &&
        strcmp(kind, "unclassified") != 0)
        return 0;
    json_object *st = jarray(l, "stack");
    size_t n = st ? json_object_array_length(st) : 0;
    struct report_frame *frames = calloc(n ? n : 1, sizeof *frames);
    if (!frames)
        return -1;
    for (size_t k = 0; k < n; k++) {
        json_object *f = json_object_array_get_idx(st, k);
        const char *lang = jstr(f, "language");
        frames[k] = (struct report_frame){.function = jstr(f, "function"), .file = jstr(f, "file"),
                                          .object = jstr(f, "object"), .line = (int)jint(f, "line", 0),
                                          .lang = lang && strcmp(lang, "go") == 0 ? LANG_GO : LANG_C};
    }
    int rc = 0;
    if (!(g && suppressions_match(&g->supp, frames, n)))
        rc = diff_add_leak(s, frames, n, (uint64_t)jint(l, "blocks", 0), (uint64_t)jint(l, "bytes", 0));
    free(frames);
    return rc;
}

static int add_json_call(struct diff_side *s, json_object *c)
{
    const char *pkg = jstr(c, "package"), *fn = jstr(c, "function");
    if (!pkg || !fn)
        return 0;
    json_object *x;
    double crossing = json_object_object_get_ex(c, "crossing_ns_estimate", &x) && x ? json_object_get_double(x) : -1;
    struct diff_call *d = NULL;
    for (size_t i = 0; i < s->ncalls && !d; i++)
        if (strcmp(s->calls[i].package, pkg) == 0 && strcmp(s->calls[i].function, fn) == 0)
            d = &s->calls[i];
    if (!d) {
        if (s->ncalls == s->capcalls) {
            size_t nc = s->capcalls ? s->capcalls * 2 : 16;
            struct diff_call *nv = realloc(s->calls, nc * sizeof *nv);
            if (!nv)
                return -1;
            s->calls = nv;
            s->capcalls = nc;
        }
        d = &s->calls[s->ncalls++];
        *d = (struct diff_call){.package = strdup(pkg), .function = strdup(fn), .crossing_ns = -1};
        if (!d->package || !d->function)
            return -1;
    }
    d->calls += (uint64_t)jint(c, "calls", 0);
    d->c_time_ns += (double)jint(c, "c_time_ns", 0);
    if (crossing >= 0)
        d->crossing_ns = (d->crossing_ns < 0 ? 0 : d->crossing_ns) + crossing;
    return 0;
}

int diff_add_document(struct diff_side *s, json_object *doc, struct gate *g, char *err, size_t errlen)
{
    json_object *procs = json_object_is_type(doc, json_type_object) ? jarray(doc, "processes") : NULL;
    if (!procs) {
        snprintf(err, errlen, "not a cgoscope JSON report (it has no \"processes\" array; docs/json-report.md)");
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(procs); i++) {
        json_object *p = json_object_array_get_idx(procs, i);
        json_object *leaks = jarray(p, "leaks"), *calls = jarray(p, "cgo_calls");
        for (size_t k = 0; leaks && k < json_object_array_length(leaks); k++)
            if (add_json_leak(s, json_object_array_get_idx(leaks, k), g) != 0)
                goto oom;
        for (size_t k = 0; calls && k < json_object_array_length(calls); k++)
            if (add_json_call(s, json_object_array_get_idx(calls, k)) != 0)
                goto oom;
        s->nprocesses++;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* ---- reading files and directories ------------------------------------------------------- */

static int looks_like_json(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\t' || c == '\r')
        ;
    fclose(f);
    return c == '{';
}

/* A trace: its report, built as `cgoscope report` would, then read like a JSON report. */
static int load_trace(struct diff_side *s, const char *path, struct gate *g, char *err, size_t errlen)
{
    struct procset ps;
    procset_init(&ps);
    char terr[512] = "";
    if (trace_read(path, &ps, terr, sizeof terr) < 0) {
        snprintf(err, errlen, "%s is neither a cgoscope JSON report nor a trace (%s)", path, terr);
        procset_free(&ps);
        return -1;
    }
    struct report *reports = calloc(ps.n ? ps.n : 1, sizeof *reports);
    int rc = reports ? 0 : -1;
    size_t built = 0;
    for (; rc == 0 && built < ps.n; built++)
        if (report_build(&reports[built], ps.v[built], NULL) != 0)
            rc = -1;
    if (rc == 0) {
        gate_apply(g, reports, ps.n);
        json_object *doc = report_document(reports, ps.n);
        rc = diff_add_document(s, doc, NULL, err, errlen);
        json_object_put(doc);
    } else {
        snprintf(err, errlen, "out of memory reading the trace %s", path);
    }
    for (size_t i = 0; i < built; i++)
        report_free(&reports[i]);
    free(reports);
    procset_free(&ps);
    return rc;
}

static int load_file(struct diff_side *s, const char *path, struct gate *g, char *err, size_t errlen)
{
    int json = looks_like_json(path, err, errlen);
    if (json < 0)
        return -1;
    if (!json)
        return load_trace(s, path, g, err, errlen);
    json_object *doc = json_object_from_file(path);
    if (!doc) {
        snprintf(err, errlen, "%s is not valid JSON: %s", path, json_util_get_last_err());
        return -1;
    }
    char derr[256];
    int rc = diff_add_document(s, doc, g, derr, sizeof derr);
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", path, derr);
    json_object_put(doc);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* JSON reports and traces; the SARIF, pprof and folded files written beside them are not. */
static int is_report_name(const struct dirent *d)
{
    return d->d_name[0] != '.' && (ends_with(d->d_name, ".json") || ends_with(d->d_name, ".cgs"));
}

/* The *.json reports and *.cgs traces of a directory, in name order: the reports of a whole
 * `go test ./...`. */
static int load_dir(struct diff_side *s, const char *path, struct gate *g, char *err, size_t errlen)
{
    struct dirent **names;
    int n = scandir(path, &names, is_report_name, by_name);
    if (n < 0) {
        snprintf(err, errlen, "cannot read the directory %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0, files = 0;
    for (int i = 0; i < n; i++) {
        char *full;
        struct stat st;
        if (rc == 0 && asprintf(&full, "%s/%s", path, names[i]->d_name) >= 0) {
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
                files++;
                rc = load_file(s, full, g, err, errlen);
            }
            free(full);
        }
        free(names[i]);
    }
    free(names);
    if (rc == 0 && !files) {
        snprintf(err, errlen, "the directory %s holds no report (*.json) or trace (*.cgs)", path);
        rc = -1;
    }
    return rc;
}

int diff_load(struct diff_side *s, const char *path, struct gate *g, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    return S_ISDIR(st.st_mode) ? load_dir(s, path, g, err, errlen) : load_file(s, path, g, err, errlen);
}
