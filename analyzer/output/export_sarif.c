/* SARIF 2.1.0 (OASIS): one result per user leak site, for code review tools and code scanning.
 * The result is located at the innermost frame in the program's own source (leaksite.h); the
 * whole stack follows as a SARIF stack (innermost first) and a code flow (outermost first).
 * Then one result per lifetime error (docs/lifetime.md), by kind: rule cgo-double-free or
 * cgo-invalid-free, located at the bad free, with its stacks and the places of the allocation and
 * the first free as related locations. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/lifetime.h"
#include "output/exports.h"
#include "output/leaksite.h"
#include "output/lifetime_report.h"
#include "output/symbolize.h"
#include "util/version.h"

#define RULE_ID "cgo-leak"
/* Lifetime errors: the rule of each kind, and its index in the driver's rules. */
#define RULE_DOUBLE_FREE "cgo-double-free"
#define RULE_INVALID_FREE "cgo-invalid-free"
#define RULE_INDEX_DOUBLE_FREE 1
#define RULE_INDEX_INVALID_FREE 2
#define SRCROOT "%SRCROOT%"

static json_object *text(const char *s)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "text", json_object_new_string(s));
    return m;
}

/* RFC 3986: a path made a URI reference; '/' stays, anything not unreserved is %-escaped. */
static char *uri_escape(const char *prefix, const char *path)
{
    size_t plen = strlen(prefix), len = strlen(path);
    char *u = malloc(plen + len * 3 + 1);
    if (!u)
        return NULL;
    memcpy(u, prefix, plen);
    char *o = u + plen;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("-._~/", *c))
            *o++ = (char)*c;
        else
            o += sprintf(o, "%%%02X", *c);
    }
    *o = 0;
    return u;
}

/* Under the source root: relative to %SRCROOT%; else an absolute file: URI (or, for a path
 * that is relative already, the path itself). */
static json_object *artifact(const char *file, const char *root)
{
    json_object *a = json_object_new_object();
    size_t rl = root ? strlen(root) : 0;
    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    char *uri;
    if (rl && strncmp(file, root, rl) == 0 && file[rl] == '/') {
        uri = uri_escape("", file + rl + 1);
        json_object_object_add(a, "uriBaseId", json_object_new_string(SRCROOT));
    } else {
        uri = uri_escape(file[0] == '/' ? "file://" : "", file);
    }
    json_object_object_add(a, "uri", json_object_new_string(uri ? uri : file));
    free(uri);
    return a;
}

static json_object *location(const struct report_frame *f, const char *root)
{
    json_object *loc = json_object_new_object();
    if (f->file) {
        json_object *phys = json_object_new_object();
        json_object_object_add(phys, "artifactLocation", artifact(f->file, root));
        if (f->line > 0) {
            json_object *region = json_object_new_object();
            json_object_object_add(region, "startLine", json_object_new_int(f->line));
            json_object_object_add(phys, "region", region);
        }
        json_object_object_add(loc, "physicalLocation", phys);
    }
    json_object *logical = json_object_new_object();
    char buf[32];
    snprintf(buf, sizeof buf, "0x%" PRIx64, f->pc);
    json_object_object_add(logical, "fullyQualifiedName", json_object_new_string(f->function ? f->function : buf));
    json_object_object_add(logical, "kind", json_object_new_string("function"));
    json_object *ll = json_object_new_array();
    json_object_array_add(ll, logical);
    json_object_object_add(loc, "logicalLocations", ll);
    return loc;
}

static json_object *stack_json(const struct leak_group *g, const char *root)
{
    json_object *frames = json_object_new_array();
    for (size_t k = 0; k < g->nframes; k++) {
        json_object *fr = json_object_new_object();
        json_object_object_add(fr, "location", location(&g->frames[k], root));
        if (g->frames[k].object)
            json_object_object_add(fr, "module", json_object_new_string(g->frames[k].object));
        json_object_array_add(frames, fr);
    }
    json_object *st = json_object_new_object();
    json_object_object_add(st, "message", text("where the leaked blocks were allocated, innermost frame first"));
    json_object_object_add(st, "frames", frames);
    json_object *stacks = json_object_new_array();
    json_object_array_add(stacks, st);
    return stacks;
}

/* The stack as a path through the code, from the outermost frame to the allocation. Glue
 * frames are left out: the flow is for reading. */
static json_object *code_flow(const struct leak_group *g, const char *root)
{
    json_object *locs = json_object_new_array();
    for (size_t k = g->nframes; k-- > 0;) {
        if (leaksite_frame_is_noise(&g->frames[k]) || leaksite_frame_is_cgo_generated(&g->frames[k]))
            continue;
        json_object *tfl = json_object_new_object();
        json_object_object_add(tfl, "location", location(&g->frames[k], root));
        json_object_array_add(locs, tfl);
    }
    if (json_object_array_length(locs) == 0) {
        json_object_put(locs);
        return NULL;
    }
    json_object *tf = json_object_new_object();
    json_object_object_add(tf, "locations", locs);
    json_object *tfs = json_object_new_array();
    json_object_array_add(tfs, tf);
    json_object *cf = json_object_new_object();
    json_object_object_add(cf, "threadFlows", tfs);
    json_object *cfs = json_object_new_array();
    json_object_array_add(cfs, cf);
    return cfs;
}

/* A fingerprint of the site that survives rebuilds and moved lines: the names of its frames. */
static json_object *fingerprint(const struct leak_group *g)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < g->nframes; k++) {
        const struct report_frame *f = &g->frames[k];
        if (leaksite_frame_is_noise(f) || !f->function)
            continue;
        char buf[512];
        for (const char *c = leaksite_stable_name(f->function, buf, sizeof buf); *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        h = (h ^ ';') * 1099511628211ull;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%016" PRIx64, h);
    json_object *fp = json_object_new_object();
    json_object_object_add(fp, "cgoscopeStack/v1", json_object_new_string(buf));
    return fp;
}

static json_object *message(const struct leak_group *g, const struct report_frame *at)
{
    char buf[1024];
    const char *fn = at && at->function ? at->function : "an unknown function";
    int n = snprintf(buf, sizeof buf, "%" PRIu64 " bytes in %" PRIu64 " block%s of C memory allocated in %s", g->bytes,
                     g->blocks, g->blocks == 1 ? "" : "s", fn);
    if (at && at->file && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " (%s:%d)", leaksite_basename(at->file), at->line);
    if (n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " %s never freed",
                      at && at->lang == LANG_GO ? "through cgo are" : "are");
    if (n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n, "%s",
                 g->kind == REACH_POSSIBLE ? ", and only pointers into their middle remain (possibly lost)."
                 : g->kind == REACH_DEFINITE ? ", and nothing points to them any more (definitely lost)."
                 : g->kind == REACH_INDIRECT ? ", and only lost blocks point to them (indirectly lost)." : ".");
    return text(buf);
}

static json_object *result(const struct report *r, const struct leak_group *g, const char *root)
{
    long at = leaksite_location(g->frames, g->nframes);
    const struct report_frame *f = at >= 0 ? &g->frames[at] : NULL;
    for (size_t k = 0; !f && k < g->nframes; k++)
        if (g->frames[k].file)
            f = &g->frames[k];
    json_object *res = json_object_new_object();
    json_object_object_add(res, "ruleId", json_object_new_string(RULE_ID));
    json_object_object_add(res, "ruleIndex", json_object_new_int(0));
    json_object_object_add(res, "level", json_object_new_string(g->kind == REACH_POSSIBLE ? "warning" : "error"));
    json_object_object_add(res, "message", message(g, f));
    if (f) {
        json_object *locs = json_object_new_array();
        json_object_array_add(locs, location(f, root));
        json_object_object_add(res, "locations", locs);
    }
    json_object_object_add(res, "partialFingerprints", fingerprint(g));
    if (g->nframes) {
        json_object_object_add(res, "stacks", stack_json(g, root));
        json_object *cf = code_flow(g, root);
        if (cf)
            json_object_object_add(res, "codeFlows", cf);
    }
    if (g->suppressed) {
        json_object *s = json_object_new_object();
        json_object_object_add(s, "kind", json_object_new_string("external"));
        char just[600];
        snprintf(just, sizeof just, "leak:%s (%s)", g->suppressed_pattern, g->suppressed_source);
        json_object_object_add(s, "justification", json_object_new_string(just));
        json_object *ss = json_object_new_array();
        json_object_array_add(ss, s);
        json_object_object_add(res, "suppressions", ss);
    }
    json_object *props = json_object_new_object();
    json_object_object_add(props, "bytes", json_object_new_int64((int64_t)g->bytes));
    json_object_object_add(props, "blocks", json_object_new_int64((int64_t)g->blocks));
    json_object_object_add(props, "pid", json_object_new_int64(r->proc->pid));
    json_object_object_add(res, "properties", props);
    return res;
}

static json_object *rule_json(const char *id, const char *name, const char *brief, const char *full, const char *help)
{
    json_object *rule = json_object_new_object();
    json_object_object_add(rule, "id", json_object_new_string(id));
    json_object_object_add(rule, "name", json_object_new_string(name));
    json_object_object_add(rule, "shortDescription", text(brief));
    json_object_object_add(rule, "fullDescription", text(full));
    json_object_object_add(rule, "help", text(help));
    json_object *conf = json_object_new_object();
    json_object_object_add(conf, "level", json_object_new_string("error"));
    json_object_object_add(rule, "defaultConfiguration", conf);
    return rule;
}

static json_object *driver(void)
{
    json_object *rules = json_object_new_array();
    json_object_array_add(rules, rule_json(RULE_ID, "CgoMemoryLeak", "C memory allocated through cgo is never freed",
                                           "A block of C memory (malloc, C.CString, C.CBytes, strdup, ...) was still "
                                           "allocated when the program ended, and no suppression matched it.",
                                           "Free the block (C.free, or the C library's own release function) once the "
                                           "program is done with it, or suppress the site with a `leak:PATTERN` line "
                                           "in a --suppressions file."));
    /* In the order of RULE_INDEX_DOUBLE_FREE and RULE_INDEX_INVALID_FREE. */
    json_object_array_add(rules, rule_json(RULE_DOUBLE_FREE, "CgoDoubleFree", "A block of C memory is freed twice",
                                           "free or realloc of a block that was freed before and not allocated again "
                                           "since: two owners across the cgo boundary each freed it.",
                                           "Decide which side owns the block (a C API that takes ownership frees it "
                                           "itself) and free it there only, or suppress it with a "
                                           "`double_free:PATTERN` line in a --suppressions file."));
    json_object_array_add(rules, rule_json(RULE_INVALID_FREE, "CgoInvalidFree",
                                           "free or realloc of an address the C allocator never returned",
                                           "free or realloc of Go memory, a stack or global address, or a pointer into "
                                           "the middle of a block: glibc aborts, or its heap is corrupted.",
                                           "Pass C.free only what C.malloc, C.CString, C.CBytes or a C allocator "
                                           "returned, at its start, or suppress it with an `invalid_free:PATTERN` "
                                           "line in a --suppressions file."));
    json_object *d = json_object_new_object();
    json_object_object_add(d, "name", json_object_new_string("cgoscope"));
    json_object_object_add(d, "version", json_object_new_string(CGOSCOPE_VERSION));
    json_object_object_add(d, "rules", rules);
    json_object *tool = json_object_new_object();
    json_object_object_add(tool, "driver", d);
    return tool;
}

/* ---- Lifetime errors ----------------------------------------------------------------------- */

/* The frame an error's stack is reported at, as for a leak; NULL when the stack has no frame
 * with a source line. */
static const struct report_frame *place_of(const struct report_frame *f, size_t n)
{
    long at = leaksite_location(f, n);
    if (at >= 0)
        return &f[at];
    for (size_t k = 0; k < n; k++)
        if (f[k].file)
            return &f[k];
    return n ? &f[0] : NULL;
}

/* "fn (file:line)" into buf at *at. */
static void put_place(char *buf, size_t len, int *at, const struct report_frame *f)
{
    if (*at < 0 || (size_t)*at >= len)
        return;
    int n;
    if (!f)
        n = snprintf(buf + *at, len - (size_t)*at, "an unknown place");
    else if (f->file && f->line > 0)
        n = snprintf(buf + *at, len - (size_t)*at, "%s (%s:%d)", f->function ? f->function : "?",
                     leaksite_basename(f->file), f->line);
    else
        n = snprintf(buf + *at, len - (size_t)*at, "%s", f->function ? f->function : "?");
    *at = n < 0 ? -1 : *at + n;
}

static void put_text(char *buf, size_t len, int *at, const char *s)
{
    if (*at < 0 || (size_t)*at >= len)
        return;
    int n = snprintf(buf + *at, len - (size_t)*at, "%s", s);
    *at = n < 0 ? -1 : *at + n;
}

static json_object *error_stack(const struct report_frame *f, size_t n, const char *what, const char *root)
{
    json_object *frames = json_object_new_array();
    for (size_t k = 0; k < n; k++) {
        json_object *fr = json_object_new_object();
        json_object_object_add(fr, "location", location(&f[k], root));
        if (f[k].object)
            json_object_object_add(fr, "module", json_object_new_string(f[k].object));
        json_object_array_add(frames, fr);
    }
    json_object *st = json_object_new_object();
    json_object_object_add(st, "message", text(what));
    json_object_object_add(st, "frames", frames);
    return st;
}

/* The bad free's stack by the names of its frames, and the kind: stable across rebuilds. */
static json_object *error_fingerprint(const struct lt_report_error *re)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = lifetime_kind_name(re->e->kind); *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    const struct report_frame *f = re->frames[LT_STACK_FREE];
    for (size_t k = 0; k < re->nframes[LT_STACK_FREE]; k++) {
        if (leaksite_frame_is_noise(&f[k]) || !f[k].function)
            continue;
        char buf[512];
        for (const char *c = leaksite_stable_name(f[k].function, buf, sizeof buf); *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        h = (h ^ ';') * 1099511628211ull;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%016" PRIx64, h);
    json_object *fp = json_object_new_object();
    json_object_object_add(fp, "cgoscopeStack/v1", json_object_new_string(buf));
    return fp;
}

static json_object *error_result(const struct report *r, const struct lt_report_error *re, const char *root)
{
    const struct lifetime_error *e = re->e;
    int dbl = e->kind == LT_DOUBLE_FREE;
    const char *fn = e->realloc ? "realloc" : "free";
    const struct report_frame *at[LT_NSTACKS];
    for (int k = 0; k < LT_NSTACKS; k++)
        at[k] = place_of(re->frames[k], re->nframes[k]);
    char msg[1024];
    int n = 0;
    if (dbl) {
        n = snprintf(msg, sizeof msg, "double %s of %" PRIu64 " bytes of C memory: allocated at ", fn, e->size);
        put_place(msg, sizeof msg, &n, at[LT_STACK_ALLOC]);
        put_text(msg, sizeof msg, &n, ", freed at ");
        put_place(msg, sizeof msg, &n, at[LT_STACK_FIRST_FREE]);
        put_text(msg, sizeof msg, &n, e->realloc ? ", realloc'd again at " : ", freed again at ");
    } else if (e->interior) {
        n = snprintf(msg, sizeof msg, "invalid %s of a pointer %" PRIu64 " bytes into a block of %" PRIu64
                     " bytes of C memory allocated at ", fn, e->offset, e->size);
        put_place(msg, sizeof msg, &n, at[LT_STACK_ALLOC]);
        put_text(msg, sizeof msg, &n, e->realloc ? ", realloc'd at " : ", freed at ");
    } else {
        n = snprintf(msg, sizeof msg, "invalid %s of an address the C allocator never returned (Go memory, a stack "
                     "address, a block freed long before?), %s at ", fn, e->realloc ? "realloc'd" : "freed");
    }
    put_place(msg, sizeof msg, &n, at[LT_STACK_FREE]);
    put_text(msg, sizeof msg, &n, ".");

    json_object *res = json_object_new_object();
    json_object_object_add(res, "ruleId", json_object_new_string(dbl ? RULE_DOUBLE_FREE : RULE_INVALID_FREE));
    json_object_object_add(res, "ruleIndex", json_object_new_int(dbl ? RULE_INDEX_DOUBLE_FREE : RULE_INDEX_INVALID_FREE));
    json_object_object_add(res, "level", json_object_new_string("error"));
    json_object_object_add(res, "message", text(msg));
    if (at[LT_STACK_FREE]) {
        json_object *locs = json_object_new_array();
        json_object_array_add(locs, location(at[LT_STACK_FREE], root));
        json_object_object_add(res, "locations", locs);
    }
    /* The allocation and the first free, where known, as related locations with ids 1 and 2. */
    json_object *rel = json_object_new_array();
    static const char *const rel_what[LT_NSTACKS] = {NULL, "the block was allocated here", "the block was freed here first"};
    for (int k = LT_STACK_ALLOC; k < LT_NSTACKS; k++) {
        if (!re->nframes[k] || !at[k])
            continue;
        json_object *loc = location(at[k], root);
        json_object_object_add(loc, "id", json_object_new_int(k));
        json_object_object_add(loc, "message", text(rel_what[k]));
        json_object_array_add(rel, loc);
    }
    if (json_object_array_length(rel))
        json_object_object_add(res, "relatedLocations", rel);
    else
        json_object_put(rel);
    json_object_object_add(res, "partialFingerprints", error_fingerprint(re));
    static const char *const stack_what[LT_NSTACKS] = {
        "where the bad free was made, innermost frame first", "where the block was allocated, innermost frame first",
        "where the block was freed first, innermost frame first"};
    json_object *stacks = json_object_new_array();
    for (int k = 0; k < LT_NSTACKS; k++)
        if (re->nframes[k])
            json_object_array_add(stacks, error_stack(re->frames[k], re->nframes[k], stack_what[k], root));
    if (json_object_array_length(stacks))
        json_object_object_add(res, "stacks", stacks);
    else
        json_object_put(stacks);
    if (re->suppressed) {
        json_object *s = json_object_new_object();
        json_object_object_add(s, "kind", json_object_new_string("external"));
        char just[600];
        snprintf(just, sizeof just, "%s:%s (%s)", lifetime_kind_name(e->kind), re->suppressed_pattern,
                 re->suppressed_source);
        json_object_object_add(s, "justification", json_object_new_string(just));
        json_object *ss = json_object_new_array();
        json_object_array_add(ss, s);
        json_object_object_add(res, "suppressions", ss);
    }
    json_object *props = json_object_new_object();
    json_object_object_add(props, "kind", json_object_new_string(lifetime_kind_name(e->kind)));
    json_object_object_add(props, "function", json_object_new_string(fn));
    if (e->size)
        json_object_object_add(props, "size", json_object_new_int64((int64_t)e->size));
    if (e->interior)
        json_object_object_add(props, "offset", json_object_new_int64((int64_t)e->offset));
    json_object_object_add(props, "pid", json_object_new_int64(r->proc->pid));
    json_object_object_add(res, "properties", props);
    return res;
}

static json_object *document(const struct report *reports, size_t n, const char *root)
{
    json_object *run = json_object_new_object();
    json_object_object_add(run, "tool", driver());
    if (root) {
        char *dir = malloc(strlen(root) + 2);
        if (dir) {
            snprintf(dir, strlen(root) + 2, "%s%s", root, root[strlen(root) - 1] == '/' ? "" : "/");
            char *uri = uri_escape("file://", dir);
            json_object *base = json_object_new_object();
            json_object_object_add(base, "uri", json_object_new_string(uri ? uri : dir));
            json_object *bases = json_object_new_object();
            json_object_object_add(bases, SRCROOT, base);
            json_object_object_add(run, "originalUriBaseIds", bases);
            free(uri);
        }
        free(dir);
    }
    json_object *results = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < reports[i].ngroups; j++)
            if (reports[i].groups[j].origin == ORIGIN_USER && reports[i].groups[j].kind != REACH_REACHABLE)
                json_object_array_add(results, result(&reports[i], &reports[i].groups[j], root));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < reports[i].lifetime.n; j++)
            json_object_array_add(results, error_result(&reports[i], &reports[i].lifetime.v[j], root));
    json_object_object_add(run, "results", results);
    json_object *runs = json_object_new_array();
    json_object_array_add(runs, run);
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "$schema", json_object_new_string("https://json.schemastore.org/sarif-2.1.0.json"));
    json_object_object_add(doc, "version", json_object_new_string("2.1.0"));
    json_object_object_add(doc, "runs", runs);
    return doc;
}

int export_sarif(const char *path, const struct report *reports, size_t n, const char *source_root)
{
    /* Frames carry absolute paths: compare them with the root's absolute path. */
    char *root = source_root ? realpath(source_root, NULL) : NULL;
    if (source_root && !root) {
        fprintf(stderr, "cgoscope: --source-root %s: %s\n", source_root, strerror(errno));
        return -1;
    }
    json_object *doc = document(reports, n, root);
    free(root);
    FILE *f = export_create(path, "SARIF report");
    if (f) {
        fputs(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE), f);
        fputc('\n', f);
    }
    json_object_put(doc);
    return f ? export_finish(f, path, "SARIF report") : -1;
}
