/*
 * The report as a pprof profile (gzipped profile.proto; `go tool pprof FILE`):
 *  - one sample per leak group (a stack and a kind, docs/reachability.md): leaked_objects and
 *    leaked_bytes for lost blocks (definitely or indirectly), possibly_lost_objects/_bytes and
 *    reachable_objects/_bytes for the others, labelled kind=definitely_lost|..., origin=user|runtime
 *    and suppressed=true|false;
 *  - one sample per cgo call site and caller: cgo_calls and c_time (nanoseconds, the site's C
 *    time shared out by calls), over the stack <pkg>._Cfunc_<name> <- caller.
 * Every location names its functions, files and lines: pprof needs no binary to show it.
 *  - allocation totals per stack (alloc_objects, alloc_bytes) for every stack, freed or not:
 *    the analyzer counts them per stack as it goes.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "output/exports.h"
#include "output/profile.pb-c.h"
#include "util/strtab.h"
#include "output/symbolize.h"
#include "util/u64map.h"
#include "util/version.h"

typedef Cgoscope__Pprof__Profile Profile;
typedef Cgoscope__Pprof__Sample Sample;
typedef Cgoscope__Pprof__Location Location;
typedef Cgoscope__Pprof__Line Line;
typedef Cgoscope__Pprof__Function Function;
typedef Cgoscope__Pprof__Label Label;
typedef Cgoscope__Pprof__ValueType ValueType;

enum {
    V_LEAKED_OBJECTS, V_LEAKED_BYTES, V_ALLOC_OBJECTS, V_ALLOC_BYTES, V_CGO_CALLS, V_C_TIME,
    V_POSSIBLY_OBJECTS, V_POSSIBLY_BYTES, V_REACHABLE_OBJECTS, V_REACHABLE_BYTES, NVALUES
};

struct pprof {
    Profile prof;
    struct strtab strings;
    struct strtab func_keys;  /* "name\x1f" "file" -> function index */
    struct strtab place_keys; /* locations with no address: "name\x1f" "file\x1f" "line" -> index */
    uint64_t *place_ids;      /* index in place_keys -> location id */
    size_t cap_place_ids;
    struct u64map loc_by_pc;  /* pc -> location id */
    struct u64map totals_given; /* stacks whose allocation totals a sample carries already */
    size_t cap_samples, cap_locations, cap_functions;
    int oom;
};

static int64_t str(struct pprof *pp, const char *s)
{
    long i = strtab_intern(&pp->strings, s ? s : "", NULL);
    if (i < 0)
        pp->oom = 1;
    return i < 0 ? 0 : i;
}

/* Grows *v (of *cap elements of size sz) to hold n+1. */
static int reserve(void *pv, size_t *cap, size_t n, size_t sz)
{
    void **v = pv;
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *nv = realloc(*v, nc * sz);
    if (!nv)
        return -1;
    *v = nv;
    *cap = nc;
    return 0;
}

static uint64_t function_id(struct pprof *pp, const char *name, const char *file)
{
    char *key;
    if (asprintf(&key, "%s\x1f%s", name, file ? file : "") < 0) {
        pp->oom = 1;
        return 0;
    }
    int added;
    long i = strtab_intern(&pp->func_keys, key, &added);
    free(key);
    if (i < 0 || (added && reserve(&pp->prof.function, &pp->cap_functions, pp->prof.n_function, sizeof(Function *)))) {
        pp->oom = 1;
        return 0;
    }
    if (added) {
        Function *f = malloc(sizeof *f);
        if (!f) {
            pp->oom = 1;
            return 0;
        }
        cgoscope__pprof__function__init(f);
        f->id = (uint64_t)i + 1;
        f->name = f->system_name = str(pp, name);
        f->filename = str(pp, file);
        pp->prof.function[pp->prof.n_function++] = f;
    }
    return (uint64_t)i + 1;
}

/* A new location with nlines lines, innermost first; its id. */
static Location *new_location(struct pprof *pp, uint64_t address, size_t nlines)
{
    Location *l = calloc(1, sizeof *l);
    Line **lines = calloc(nlines, sizeof *lines);
    if (!l || !lines || reserve(&pp->prof.location, &pp->cap_locations, pp->prof.n_location, sizeof(Location *))) {
        free(l);
        free(lines);
        pp->oom = 1;
        return NULL;
    }
    cgoscope__pprof__location__init(l);
    l->id = pp->prof.n_location + 1;
    l->address = address;
    l->line = lines;
    pp->prof.location[pp->prof.n_location++] = l;
    return l;
}

static void add_line(struct pprof *pp, Location *l, const char *fn, const char *file, int line)
{
    Line *ln = malloc(sizeof *ln);
    if (!ln) {
        pp->oom = 1;
        return;
    }
    cgoscope__pprof__line__init(ln);
    ln->function_id = function_id(pp, fn, file);
    ln->line = line;
    l->line[l->n_line++] = ln;
}

static const char *frame_name(const struct report_frame *f, char *buf, size_t len)
{
    if (f->function)
        return f->function;
    snprintf(buf, len, "0x%" PRIx64, f->pc);
    return buf;
}

/* The location of the frames at f[0..n): one return address, with the functions inlined at it
 * (the symbolizer gives them in one piece, innermost first). *used receives how many frames it
 * took. Recursion repeats a return address: that is the same location again. */
static uint64_t pc_location(struct pprof *pp, struct symbolizer *sym, const struct report_frame *f, size_t n,
                            size_t *used)
{
    size_t chain = 1;
    if (sym && f[0].pc != CGS_PC_OMITTED)
        symbolize(sym, f[0].pc, &chain);
    if (chain < 1)
        chain = 1;
    while (chain > 1 && (chain > n || f[chain - 1].pc != f[0].pc))
        chain--;
    *used = chain;
    uint64_t key = f[0].pc ? f[0].pc : 1;
    uint64_t *id = u64map_get(&pp->loc_by_pc, key);
    if (id)
        return *id;
    Location *l = new_location(pp, f[0].pc, chain);
    int added;
    uint64_t *slot = l ? u64map_put(&pp->loc_by_pc, key, &added) : NULL;
    if (!slot) {
        pp->oom = 1;
        return 0;
    }
    char buf[32];
    for (size_t k = 0; k < chain; k++)
        add_line(pp, l, frame_name(&f[k], buf, sizeof buf), f[k].file, f[k].line);
    return *slot = l->id;
}

/* A location with no address: a cgo site or a caller known by name and line only. */
static uint64_t place_location(struct pprof *pp, const char *fn, const char *file, int line)
{
    char *key;
    if (asprintf(&key, "%s\x1f%s\x1f%d", fn, file ? file : "", line) < 0) {
        pp->oom = 1;
        return 0;
    }
    int added;
    long i = strtab_intern(&pp->place_keys, key, &added);
    free(key);
    if (i < 0 || (added && reserve(&pp->place_ids, &pp->cap_place_ids, (size_t)i, sizeof *pp->place_ids))) {
        pp->oom = 1;
        return 0;
    }
    if (!added)
        return pp->place_ids[i];
    Location *l = new_location(pp, 0, 1);
    pp->place_ids[i] = l ? l->id : 0;
    if (l)
        add_line(pp, l, fn, file, line);
    return pp->place_ids[i];
}

static Label *label(struct pprof *pp, const char *key, const char *value, int64_t num)
{
    Label *l = malloc(sizeof *l);
    if (!l) {
        pp->oom = 1;
        return NULL;
    }
    cgoscope__pprof__label__init(l);
    l->key = str(pp, key);
    if (value)
        l->str = str(pp, value);
    else
        l->num = num;
    return l;
}

static Sample *add_sample(struct pprof *pp, const uint64_t *ids, size_t nids, const int64_t *values)
{
    Sample *s = calloc(1, sizeof *s);
    uint64_t *loc = malloc((nids ? nids : 1) * sizeof *loc);
    int64_t *val = malloc(NVALUES * sizeof *val);
    Label **labels = calloc(3, sizeof *labels);
    if (!s || !loc || !val || !labels || reserve(&pp->prof.sample, &pp->cap_samples, pp->prof.n_sample, sizeof s)) {
        free(s);
        free(loc);
        free(val);
        free(labels);
        pp->oom = 1;
        return NULL;
    }
    cgoscope__pprof__sample__init(s);
    memcpy(loc, ids, nids * sizeof *loc);
    memcpy(val, values, NVALUES * sizeof *val);
    s->location_id = loc;
    s->n_location_id = nids;
    s->value = val;
    s->n_value = NVALUES;
    s->label = labels;
    pp->prof.sample[pp->prof.n_sample++] = s;
    return s;
}

static void add_label(Sample *s, Label *l)
{
    if (s && l && s->n_label < 3)
        s->label[s->n_label++] = l;
    else
        free(l);
}

static const struct stack_live *stack_totals(const struct report *r, uint64_t stack)
{
    const struct liveset *ls = &r->proc->live;
    uint64_t *v = u64map_get(&ls->stack_index, stack ? stack : 1);
    return v ? &ls->per_stack[*v - 1] : NULL;
}

static void add_leak(struct pprof *pp, const struct report *r, const struct leak_group *g)
{
    uint64_t *ids = malloc((g->nframes ? g->nframes : 1) * sizeof *ids);
    if (!ids) {
        pp->oom = 1;
        return;
    }
    size_t nids = 0;
    for (size_t k = 0, used; k < g->nframes; k += used)
        ids[nids++] = pc_location(pp, r->sym, &g->frames[k], g->nframes - k, &used);
    if (!nids)
        ids[nids++] = place_location(pp, "(stack not recorded)", NULL, 0);
    /* A stack may hold groups of several kinds: its allocation totals go with the first. */
    int first = 0;
    uint64_t *given = u64map_put(&pp->totals_given, (g->stack ? g->stack : 1) ^ ((uint64_t)r->proc->pid << 40), &first);
    const struct stack_live *tot = first || !given ? stack_totals(r, g->stack) : NULL;
    int64_t v[NVALUES] = {[V_ALLOC_OBJECTS] = tot ? (int64_t)tot->allocs : 0,
                          [V_ALLOC_BYTES] = tot ? (int64_t)tot->alloc_bytes : 0};
    int at = leak_group_is_lost(g) ? V_LEAKED_OBJECTS : g->kind == REACH_POSSIBLE ? V_POSSIBLY_OBJECTS : V_REACHABLE_OBJECTS;
    v[at] = (int64_t)g->blocks;
    v[at + 1] = (int64_t)g->bytes;
    Sample *s = add_sample(pp, ids, nids, v);
    free(ids);
    add_label(s, label(pp, "kind", reach_kind_name(g->kind), 0));
    add_label(s, label(pp, "origin", g->origin == ORIGIN_USER ? "user" : "runtime", 0));
    add_label(s, label(pp, "suppressed", g->suppressed ? "true" : "false", 0));
    add_label(s, label(pp, "pid", NULL, r->proc->pid));
}

/* Stacks whose every block was freed: their allocation totals only. */
static void add_freed_stacks(struct pprof *pp, const struct report *r)
{
    const struct liveset *ls = &r->proc->live;
    for (size_t i = 0; i < ls->nstacks; i++) {
        const struct stack_live *sl = &ls->per_stack[i];
        if (sl->blocks || !sl->allocs)
            continue; /* still live: its leak sample carries the totals */
        struct report_frame *frames;
        size_t nf;
        if (report_symbolize_stack((struct report *)r, process_stack(r->proc, sl->stack), &frames, &nf, NULL) != 0) {
            pp->oom = 1;
            return;
        }
        uint64_t *ids = malloc((nf ? nf : 1) * sizeof *ids);
        if (!ids) {
            free(frames);
            pp->oom = 1;
            return;
        }
        size_t nids = 0;
        for (size_t k = 0, used; k < nf; k += used)
            ids[nids++] = pc_location(pp, r->sym, &frames[k], nf - k, &used);
        if (!nids)
            ids[nids++] = place_location(pp, "(stack not recorded)", NULL, 0);
        int64_t v[NVALUES] = {[V_ALLOC_OBJECTS] = (int64_t)sl->allocs, [V_ALLOC_BYTES] = (int64_t)sl->alloc_bytes};
        Sample *s = add_sample(pp, ids, nids, v);
        add_label(s, label(pp, "pid", NULL, r->proc->pid));
        free(ids);
        free(frames);
    }
}

static void add_call(struct pprof *pp, const struct report *r, uint64_t site, uint64_t caller, uint64_t calls,
                     double c_time)
{
    uint64_t ids[2] = {site, caller};
    int64_t v[NVALUES] = {[V_CGO_CALLS] = (int64_t)calls, [V_C_TIME] = llround(c_time)};
    Sample *s = add_sample(pp, ids, caller ? 2 : 1, v);
    add_label(s, label(pp, "pid", NULL, r->proc->pid));
}

/* Each site's calls by caller; the calls no listed caller made go on the site alone. C time is
 * shared out in proportion to calls. */
static void add_site(struct pprof *pp, const struct report *r, const struct crossing_site *cs)
{
    char *name;
    if (asprintf(&name, "%s.%s%s", cs->package, cs->kind == CGS_SITE_C2FUNC ? "_C2func_" : "_Cfunc_", cs->function) < 0) {
        pp->oom = 1;
        return;
    }
    uint64_t site = place_location(pp, name, NULL, 0);
    free(name);
    double per_call = cs->calls ? cs->c_time_ns / (double)cs->calls : 0;
    uint64_t rest = cs->calls;
    for (size_t k = 0; k < cs->ncallers; k++) {
        const struct crossing_caller *c = &cs->callers[k];
        uint64_t calls = c->calls < rest ? c->calls : rest;
        rest -= calls;
        add_call(pp, r, site, place_location(pp, c->function, c->file, c->line), calls, per_call * (double)calls);
    }
    if (rest)
        add_call(pp, r, site, 0, rest, per_call * (double)rest);
}

static ValueType *value_type(struct pprof *pp, const char *type, const char *unit)
{
    ValueType *vt = malloc(sizeof *vt);
    if (!vt) {
        pp->oom = 1;
        return NULL;
    }
    cgoscope__pprof__value_type__init(vt);
    vt->type = str(pp, type);
    vt->unit = str(pp, unit);
    return vt;
}

static void build(struct pprof *pp, const struct report *reports, size_t n)
{
    static const char *const types[NVALUES][2] = {
        {"leaked_objects", "count"}, {"leaked_bytes", "bytes"}, {"alloc_objects", "count"}, {"alloc_bytes", "bytes"},
        {"cgo_calls", "count"},      {"c_time", "nanoseconds"},
        {"possibly_lost_objects", "count"}, {"possibly_lost_bytes", "bytes"},
        {"reachable_objects", "count"}, {"reachable_bytes", "bytes"}};
    str(pp, ""); /* index 0 */
    pp->prof.sample_type = calloc(NVALUES, sizeof *pp->prof.sample_type);
    if (!pp->prof.sample_type) {
        pp->oom = 1;
        return;
    }
    for (size_t i = 0; i < NVALUES; i++)
        pp->prof.sample_type[pp->prof.n_sample_type++] = value_type(pp, types[i][0], types[i][1]);
    pp->prof.default_sample_type = str(pp, "leaked_bytes");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pp->prof.time_nanos = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < reports[i].ngroups; j++)
            add_leak(pp, &reports[i], &reports[i].groups[j]);
        add_freed_stacks(pp, &reports[i]);
        for (size_t j = 0; j < reports[i].crossings.nsites; j++)
            add_site(pp, &reports[i], &reports[i].crossings.sites[j]);
    }
    char *comment;
    if (asprintf(&comment, "cgoscope %s: C memory leaked by a Go program, and its cgo calls", CGOSCOPE_VERSION) >= 0) {
        pp->prof.comment = malloc(sizeof *pp->prof.comment);
        if (pp->prof.comment)
            pp->prof.comment[pp->prof.n_comment++] = str(pp, comment);
        free(comment);
    }
    pp->prof.string_table = pp->strings.v;
    pp->prof.n_string_table = pp->strings.n;
}

static void release(struct pprof *pp)
{
    Profile *p = &pp->prof;
    for (size_t i = 0; i < p->n_sample; i++) {
        for (size_t k = 0; k < p->sample[i]->n_label; k++)
            free(p->sample[i]->label[k]);
        free(p->sample[i]->label);
        free(p->sample[i]->location_id);
        free(p->sample[i]->value);
        free(p->sample[i]);
    }
    for (size_t i = 0; i < p->n_location; i++) {
        for (size_t k = 0; k < p->location[i]->n_line; k++)
            free(p->location[i]->line[k]);
        free(p->location[i]->line);
        free(p->location[i]);
    }
    for (size_t i = 0; i < p->n_function; i++)
        free(p->function[i]);
    for (size_t i = 0; i < p->n_sample_type; i++)
        free(p->sample_type[i]);
    free(p->sample);
    free(p->location);
    free(p->function);
    free(p->sample_type);
    free(p->comment);
    free(pp->place_ids);
    strtab_free(&pp->strings);
    strtab_free(&pp->func_keys);
    strtab_free(&pp->place_keys);
    u64map_free(&pp->loc_by_pc);
    u64map_free(&pp->totals_given);
}

static int write_gzip(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cgoscope: cannot write the pprof profile to %s: %s\n", path, strerror(errno));
        return -1;
    }
    gzFile gz = gzdopen(fd, "wb");
    if (!gz) {
        close(fd);
        fprintf(stderr, "cgoscope: cannot write the pprof profile to %s: out of memory\n", path);
        return -1;
    }
    int ok = len == 0 || gzwrite(gz, data, (unsigned)len) == (int)len;
    int e = errno;
    if (gzclose(gz) != Z_OK)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "cgoscope: writing the pprof profile to %s failed: %s\n", path, strerror(e ? e : EIO));
        return -1;
    }
    return 0;
}

int export_pprof(const char *path, const struct report *reports, size_t n)
{
    struct pprof pp;
    memset(&pp, 0, sizeof pp);
    cgoscope__pprof__profile__init(&pp.prof);
    strtab_init(&pp.strings);
    strtab_init(&pp.func_keys);
    strtab_init(&pp.place_keys);
    u64map_init(&pp.loc_by_pc);
    u64map_init(&pp.totals_given);
    build(&pp, reports, n);
    int rc = -1;
    uint8_t *buf = NULL;
    size_t len = pp.oom ? 0 : cgoscope__pprof__profile__get_packed_size(&pp.prof);
    if (!pp.oom && (buf = malloc(len ? len : 1)) != NULL) {
        cgoscope__pprof__profile__pack(&pp.prof, buf);
        rc = write_gzip(path, buf, len);
    } else {
        fprintf(stderr, "cgoscope: out of memory writing the pprof profile\n");
    }
    free(buf);
    release(&pp);
    return rc;
}
