#include "output/report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gobin/gobuild.h"
#include "output/growth_report.h"
#include "output/leaksite.h"
#include "output/symbolize.h"
#include "util/clock.h"
#include "util/u64map.h"
#include "util/version.h"
#include "cgoscope/record.h"

struct group_acc {
    struct u64map index[REACH_REACHABLE + 1]; /* per kind: stack id -> group index+1 */
    const struct reach *reach;
    struct leak_group *groups;
    size_t n, cap;
    int oom;
};

/* A held group names at most HELD_MAX roots: one per kind of root, and distinct globals. */
static void note_root(struct leak_group *g, const struct reach_entry *e)
{
    if (!e->root || g->nheld == HELD_MAX)
        return;
    for (size_t i = 0; i < g->nheld; i++)
        if (g->held[i].root == e->root && (e->root != ROOT_GLOBAL || g->held[i].addr == e->root_addr))
            return;
    g->held[g->nheld++] = (struct held_ref){.root = e->root, .addr = e->root_addr};
}

static void add_block(const struct live_block *b, void *arg)
{
    struct group_acc *a = arg;
    const struct reach_entry *e = a->reach->state == REACH_SCANNED ? reach_find(a->reach, b->addr) : NULL;
    int kind = e ? e->kind : REACH_UNCLASSIFIED;
    int added;
    uint64_t *slot = u64map_put(&a->index[kind], b->stack ? b->stack : 1, &added);
    if (!slot) {
        a->oom = 1;
        return;
    }
    if (added) {
        if (a->n == a->cap) {
            size_t nc = a->cap ? a->cap * 2 : 64;
            struct leak_group *nv = realloc(a->groups, nc * sizeof *nv);
            if (!nv) {
                a->oom = 1;
                return;
            }
            a->groups = nv;
            a->cap = nc;
        }
        a->groups[a->n] = (struct leak_group){.stack = b->stack, .kind = kind};
        *slot = ++a->n;
    }
    struct leak_group *g = &a->groups[*slot - 1];
    g->blocks++;
    g->bytes += b->size;
    if (e && (kind == REACH_REACHABLE || kind == REACH_POSSIBLE))
        note_root(g, e);
}

int leak_group_is_lost(const struct leak_group *g)
{
    return g->kind == REACH_DEFINITE || g->kind == REACH_INDIRECT || g->kind == REACH_UNCLASSIFIED;
}

int leak_group_rank(const struct leak_group *g)
{
    return leak_group_is_lost(g) ? 0 : g->kind == REACH_POSSIBLE ? 1 : 2;
}

int leak_order_cmp(struct leak_order x, struct leak_order y)
{
    if (x.origin != y.origin)
        return x.origin - y.origin;
    struct leak_group gx = {.kind = x.kind}, gy = {.kind = y.kind};
    if (leak_group_rank(&gx) != leak_group_rank(&gy))
        return leak_group_rank(&gx) - leak_group_rank(&gy);
    if (x.suppressed != y.suppressed)
        return x.suppressed - y.suppressed;
    if (x.bytes != y.bytes)
        return x.bytes > y.bytes ? -1 : 1;
    if (x.blocks != y.blocks)
        return x.blocks > y.blocks ? -1 : 1;
    return 0;
}

void report_count_group(struct report *r, const struct leak_group *g, int sign)
{
    uint64_t *blocks = &r->user_blocks, *bytes = &r->user_bytes;
    if (g->kind == REACH_POSSIBLE) {
        blocks = &r->possibly_blocks;
        bytes = &r->possibly_bytes;
    } else if (g->kind == REACH_REACHABLE) {
        blocks = &r->reachable_blocks;
        bytes = &r->reachable_bytes;
    }
    *blocks += (uint64_t)sign * g->blocks;
    *bytes += (uint64_t)sign * g->bytes;
}

/* Names what holds a held group: the global's symbol, and whether it is Go's or C's. */
static void name_roots(struct report *r, struct leak_group *g)
{
    for (size_t i = 0; i < g->nheld; i++) {
        struct held_ref *h = &g->held[i];
        if (h->root != ROOT_GLOBAL)
            continue;
        const struct module_info *m = NULL;
        h->symbol = symbolizer_data_symbol(r->sym, h->addr, &m);
        if (h->symbol) /* Go's symbols are package-qualified: "main.cache", "pkg/path.v" */
            h->c_global = !strchr(h->symbol, '.') || h->symbol[0] == '.' || h->symbol[0] == '_';
        else
            h->c_global = !m || !m->is_exe;
    }
    /* Globals of one symbol are one root. */
    size_t k = 0;
    for (size_t i = 0; i < g->nheld; i++) {
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++)
            dup = g->held[j].root == g->held[i].root && g->held[j].symbol && g->held[i].symbol &&
                  strcmp(g->held[j].symbol, g->held[i].symbol) == 0;
        if (!dup)
            g->held[k++] = g->held[i];
    }
    g->nheld = k;
}

const char *held_root_name(const struct held_ref *h)
{
    return h->root == ROOT_GLOBAL && h->c_global ? "c_global" : reach_root_name(h->root);
}

static int is_runtime_c(const struct report_frame *f)
{
    return (f->file && strstr(f->file, "runtime/cgo/")) ||
           (f->function && (strncmp(f->function, "x_cgo_", 6) == 0 || strncmp(f->function, "_cgo_sys_", 9) == 0));
}

/*
 * Whose allocation is this? (docs/cgo-facts.md §6: the Go runtime allocates through malloc too.)
 *  - made directly by the dynamic loader (thread-local storage): runtime;
 *  - made during a cgo call: the calling package decides (main and the user's modules, or the
 *    standard library such as net and os/user);
 *  - otherwise the innermost frame outside system libraries decides: Go code by its package,
 *    C code by whether it is runtime/cgo's.
 */
static int classify(const struct leak_group *g, const struct stack_info *st, const struct process *p,
                    const struct gobuild *gb, const int *ldso_first)
{
    if (*ldso_first)
        return ORIGIN_RUNTIME;
    if (st && st->site != CGS_NO_SITE) {
        const struct site_info *s = process_site(p, st->site);
        if (s)
            return gobuild_is_user_package(gb, s->package) ? ORIGIN_USER : ORIGIN_RUNTIME;
    }
    /* Code of the program without a name (a stripped binary's C functions) cannot tell whose it
     * is: the Go code that called it decides, past the cgo glue; with none, it counts as user C. */
    int unnamed = 0;
    for (size_t i = 0; i < g->nframes; i++) {
        const struct report_frame *f = &g->frames[i];
        if (!f->object || module_is_system(f->object))
            continue;
        if (!f->function) {
            unnamed = 1;
            continue;
        }
        if (f->lang == LANG_GO) {
            if (unnamed && report_frame_is_glue(f->function, 1))
                continue;
            return gobuild_is_user_package(gb, f->function) ? ORIGIN_USER : ORIGIN_RUNTIME;
        }
        return is_runtime_c(f) ? ORIGIN_RUNTIME : ORIGIN_USER;
    }
    return unnamed ? ORIGIN_USER : ORIGIN_RUNTIME;
}

/* The innermost frame of the program's own code: a Go function of the user's packages (not
 * cgo's generated stubs), or C code outside system libraries and runtime/cgo. */
static int user_frame_of(const struct leak_group *g, const struct gobuild *gb)
{
    for (size_t i = 0; i < g->nframes; i++) {
        const struct report_frame *f = &g->frames[i];
        if (!f->function || !f->object || module_is_system(f->object))
            continue;
        if (f->lang == LANG_GO) {
            if (gobuild_is_user_package(gb, f->function) && !report_frame_is_glue(f->function, 1))
                return (int)i;
        } else if (!is_runtime_c(f) && strncmp(f->function, "_cgo_", 5) != 0) {
            return (int)i;
        }
    }
    return -1;
}

int report_symbolize_stack(struct report *r, const struct stack_info *st, struct report_frame **out, size_t *nout,
                           int *ldso_first)
{
    *out = NULL;
    *nout = 0;
    if (ldso_first)
        *ldso_first = 0;
    if (!st)
        return 0;
    size_t cap = st->n + 8, nf = 0;
    struct report_frame *frames = calloc(cap, sizeof *frames);
    if (!frames)
        return -1;
    for (uint32_t i = 0; i < st->n; i++) {
        size_t n;
        static const struct frame omitted = {.pc = CGS_PC_OMITTED, .function = "(frames omitted)", .lang = LANG_GO};
        const struct frame *fs = st->pcs[i] == CGS_PC_OMITTED ? (n = 1, &omitted) : symbolize(r->sym, st->pcs[i], &n);
        if (i == 0 && n && ldso_first)
            *ldso_first = fs[0].ldso;
        for (size_t k = 0; k < n; k++) {
            if (nf == cap) {
                cap *= 2;
                struct report_frame *nv = realloc(frames, cap * sizeof *nv);
                if (!nv) {
                    free(frames);
                    return -1;
                }
                frames = nv;
            }
            struct report_frame *f = &frames[nf++];
            f->pc = fs[k].pc;
            f->function = fs[k].function;
            f->file = fs[k].file;
            f->line = fs[k].line;
            f->lang = fs[k].lang;
            f->object = fs[k].module ? fs[k].module->path : NULL;
        }
    }
    *out = frames;
    *nout = nf;
    return 0;
}

static int symbolize_group(struct report *r, struct leak_group *g, const struct stack_info *st, int *ldso_first)
{
    return report_symbolize_stack(r, st, &g->frames, &g->nframes, ldso_first);
}

static int cmp_group(const void *a, const void *b)
{
    const struct leak_group *x = a, *y = b;
    /* Suppressions are not known yet when the report is built: not part of this order. */
    int c = leak_order_cmp((struct leak_order){x->origin, x->kind, 0, x->bytes, x->blocks},
                           (struct leak_order){y->origin, y->kind, 0, y->bytes, y->blocks});
    if (c)
        return c;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

int report_build(struct report *r, const struct process *p, struct symbolizer *sym)
{
    memset(r, 0, sizeof *r);
    r->proc = p;
    struct group_acc acc = {.reach = &p->reach};
    for (int k = 0; k <= REACH_REACHABLE; k++)
        u64map_init(&acc.index[k]);
    liveset_each(&p->live, add_block, &acc);
    for (int k = 0; k <= REACH_REACHABLE; k++)
        u64map_free(&acc.index[k]);
    if (acc.oom) {
        free(acc.groups);
        symbolizer_free(sym);
        return -1;
    }
    r->groups = acc.groups;
    r->ngroups = acc.n;
    clock_phase("group unfreed blocks");

    struct gobuild gb;
    const struct module_info *exe = process_exe(p);
    int have_gb = exe && gobuild_read(exe->path, &gb) == 0;
    if (have_gb)
        snprintf(r->go_version, sizeof r->go_version, "%s", gb.go_version);
    r->is_go = have_gb;
    r->sym = sym ? sym : symbolizer_new(p);
    if (!r->sym) {
        if (have_gb)
            gobuild_free(&gb);
        return -1;
    }
    clock_phase("build info, symbolizer");
    for (size_t i = 0; i < r->ngroups; i++) {
        struct leak_group *g = &r->groups[i];
        const struct stack_info *st = process_stack(p, g->stack);
        int ldso_first;
        if (symbolize_group(r, g, st, &ldso_first) != 0)
            return -1;
        g->origin = classify(g, st, p, have_gb ? &gb : NULL, &ldso_first);
        g->user_frame = user_frame_of(g, have_gb ? &gb : NULL);
        name_roots(r, g);
        if (g->origin == ORIGIN_USER) {
            report_count_group(r, g, 1);
        } else {
            r->runtime_blocks += g->blocks;
            r->runtime_bytes += g->bytes;
        }
    }
    if (have_gb)
        gobuild_free(&gb);
    if (r->ngroups) /* groups is NULL when nothing is live (an untraced process) */
        qsort(r->groups, r->ngroups, sizeof *r->groups, cmp_group);
    clock_phase("symbolize leak groups");
    if (lifetime_report_build(r) != 0)
        return -1;
    return crossings_build(&r->crossings, p, r->sym);
}

void report_free(struct report *r)
{
    for (size_t i = 0; i < r->ngroups; i++)
        free(r->groups[i].frames);
    free(r->groups);
    crossings_free(&r->crossings);
    lifetime_report_free(&r->lifetime);
    symbolizer_free(r->sym);
    memset(r, 0, sizeof *r);
}

static const char *lang_name(int lang) { return lang == LANG_GO ? "go" : "c"; }

static void print_frame(FILE *out, size_t i, const struct report_frame *f, size_t repeat)
{
    const char *obj = f->object ? strrchr(f->object, '/') : NULL;
    obj = obj ? obj + 1 : f->object;
    fprintf(out, "    #%-2zu ", i);
    if (f->function)
        fprintf(out, "%s", f->function);
    else
        fprintf(out, "0x%" PRIx64, f->pc);
    if (f->file)
        fprintf(out, "  %s:%d", f->file, f->line);
    else if (obj)
        fprintf(out, "  (%s)", obj);
    if (repeat > 1)
        fprintf(out, "  (x%zu, recursion)", repeat);
    fprintf(out, "\n");
}

/* The Go name without its package path: "main._Cfunc_f" -> "_Cfunc_f". */
static const char *go_base(const char *fn)
{
    const char *slash = strrchr(fn, '/');
    const char *dot = strchr(slash ? slash : fn, '.');
    return dot ? dot + 1 : fn;
}

/* Frames that every cgo call has and that say nothing about the program: the runtime's call
 * machinery and the stubs cgo generates. The JSON report keeps them all. */
int report_frame_is_glue(const char *function, int is_go)
{
    if (!function || !is_go)
        return 0;
    static const char *const runtime[] = {"runtime.asmcgocall", "runtime.asmcgocall_landingpad",
                                          "runtime.cgocall", "runtime.goexit", "runtime.main",
                                          "runtime.cgocallbackg", "runtime.cgocallbackg1",
                                          "runtime.cgocallback", "runtime.systemstack"};
    for (size_t i = 0; i < sizeof runtime / sizeof runtime[0]; i++)
        if (strcmp(function, runtime[i]) == 0)
            return 1;
    const char *b = go_base(function);
    return strncmp(b, "_Cfunc_", 7) == 0 || strncmp(b, "_C2func_", 8) == 0 || strncmp(b, "_Cmacro_", 8) == 0 ||
           strncmp(b, "_cgo_", 5) == 0 || strncmp(b, "_cgoexp_", 8) == 0;
}

static int same_place(const struct report_frame *a, const struct report_frame *b)
{
    return a->function && b->function && strcmp(a->function, b->function) == 0 && a->line == b->line &&
           ((!a->file && !b->file) || (a->file && b->file && strcmp(a->file, b->file) == 0));
}

static void print_stack(FILE *out, const struct leak_group *g, int full)
{
    size_t hidden = 0, shown = 0;
    for (size_t k = 0; k < g->nframes; k++) {
        if (!full && report_frame_is_glue(g->frames[k].function, g->frames[k].lang == LANG_GO)) {
            hidden++;
            continue;
        }
        size_t repeat = 1;
        while (!full && k + repeat < g->nframes && same_place(&g->frames[k], &g->frames[k + repeat]))
            repeat++;
        print_frame(out, shown++, &g->frames[k], repeat);
        k += repeat - 1;
    }
    if (hidden)
        fprintf(out, "        (%zu cgo and runtime frame%s not shown; --full-stacks shows them)\n", hidden,
                hidden == 1 ? "" : "s");
}

/* ---- Sites grouped by the Go line of the cgo call ---------------------------------------- */

static int same_frame_place(const struct report_frame *a, const struct report_frame *b)
{
    if (!a || !b)
        return a == b;
    if ((a->function == NULL) != (b->function == NULL) || (a->file == NULL) != (b->file == NULL))
        return 0;
    if (!a->function)
        return a->pc == b->pc;
    return strcmp(a->function, b->function) == 0 && a->line == b->line && (!a->file || strcmp(a->file, b->file) == 0);
}

static void place(char *buf, size_t len, const struct report_frame *f)
{
    const char *file = leaksite_basename(f->file);
    const char *fn = f->function ? (f->lang == LANG_GO ? leaksite_short_go(f->function) : f->function) : "?";
    if (file)
        snprintf(buf, len, "%s (%s:%d)", fn, file, f->line);
    else
        snprintf(buf, len, "%s", fn);
}

/* "C path <- Go line <- the Go function that called it": the C frames (at most 4: the two
 * innermost, "...", the one Go called), the Go line, and the next Go frame of the program's own
 * code. */
static char *path_label(const struct leak_group *g)
{
    long at = leaksite_go_line(g->frames, g->nframes);
    char buf[1024], one[512];
    if (at < 1) {
        leaksite_label(g->frames, g->nframes, buf, sizeof buf);
        return strdup(buf);
    }
    leaksite_c_name(g->frames, g->nframes, buf, sizeof buf);
    /* The C frames between the innermost and the Go line, each name once (inlined frames and
     * recursion repeat them): the innermost two, then "..." and the function Go called. */
    const char *names[64];
    size_t nn = 0;
    for (long i = 1; i < at && nn < 64; i++) {
        const struct report_frame *f = &g->frames[i];
        if (f->lang == LANG_GO || !f->function || leaksite_frame_is_noise(f) || leaksite_frame_is_cgo_generated(f))
            continue;
        if ((nn && strcmp(names[nn - 1], f->function) == 0) || (!nn && strcmp(buf, f->function) == 0))
            continue;
        names[nn++] = f->function;
    }
    for (size_t i = 0; i < nn; i++) {
        if (nn > 2 && i == 1) {
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " " LEAKSITE_ARROW " ...");
            i = nn - 2;
            continue;
        }
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " " LEAKSITE_ARROW " %s", names[i]);
    }
    place(one, sizeof one, &g->frames[at]);
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " " LEAKSITE_ARROW " %s", one);
    long up = leaksite_go_line(g->frames + at + 1, g->nframes - (size_t)at - 1);
    if (up >= 0) {
        place(one, sizeof one, &g->frames[at + 1 + up]);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " " LEAKSITE_ARROW " %s", one);
    }
    return strdup(buf);
}

static int push_index(size_t **v, size_t *n, size_t x)
{
    if ((*n & (*n - 1)) == 0) { /* grows at powers of two */
        size_t *nv = realloc(*v, (*n ? *n * 2 : 1) * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int cmp_path(const void *a, const void *b)
{
    const struct line_path *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    if (x->blocks != y->blocks)
        return x->blocks > y->blocks ? -1 : 1;
    return strcmp(x->label, y->label);
}

static int cmp_line_group(const void *a, const void *b)
{
    const struct line_group *x = a, *y = b;
    int c = leak_order_cmp((struct leak_order){x->origin, x->kind, x->suppressed, x->bytes, x->blocks},
                           (struct leak_order){y->origin, y->kind, y->suppressed, y->bytes, y->blocks});
    if (c)
        return c;
    return x->sites[0] < y->sites[0] ? -1 : x->sites[0] > y->sites[0];
}

void report_line_groups_free(struct line_group *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < v[i].npaths; k++) {
            free(v[i].paths[k].label);
            free(v[i].paths[k].sites);
        }
        free(v[i].paths);
        free(v[i].sites);
    }
    free(v);
}

static uint64_t hash_key(const struct leak_group *g, const struct report_frame *at)
{
    uint64_t h = 1469598103934665603ull;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
    MIX(g->origin);
    MIX(g->kind);
    MIX(g->suppressed);
    if (at) {
        for (const char *c = at->function; c && *c; c++)
            MIX((unsigned char)*c);
        for (const char *c = at->file; c && *c; c++)
            MIX((unsigned char)*c);
        MIX(at->line);
        if (!at->function)
            MIX(at->pc);
    }
#undef MIX
    return h ? h : 1;
}

int report_line_groups(const struct report *r, struct line_group **out, size_t *nout)
{
    struct line_group *v = NULL;
    size_t n = 0, cap = 0;
    struct u64map index; /* key hash -> index+1 of the first group with it */
    u64map_init(&index);
    int err = 0;
    for (size_t i = 0; i < r->ngroups && !err; i++) {
        const struct leak_group *g = &r->groups[i];
        long at = leaksite_go_line(g->frames, g->nframes);
        const struct report_frame *f = at >= 0 ? &g->frames[at] : g->nframes ? &g->frames[0] : NULL;
        int added;
        uint64_t *slot = u64map_put(&index, hash_key(g, f), &added);
        if (!slot) {
            err = 1;
            break;
        }
        size_t k = n;
        if (!added) { /* a hash's groups: the one that matches, or a new one (a collision) */
            for (k = *slot - 1; k < n; k++)
                if (v[k].origin == g->origin && v[k].kind == g->kind && v[k].suppressed == g->suppressed &&
                    v[k].is_go_line == (at >= 0) && same_frame_place(v[k].at, f))
                    break;
        }
        if (k == n) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct line_group *nv = realloc(v, nc * sizeof *nv);
                if (!nv) {
                    err = 1;
                    break;
                }
                v = nv;
                cap = nc;
            }
            v[n] = (struct line_group){.origin = g->origin, .kind = g->kind, .suppressed = g->suppressed, .at = f,
                                       .is_go_line = at >= 0};
            if (added)
                *slot = n + 1;
            n++;
        }
        struct line_group *lg = &v[k];
        lg->bytes += g->bytes;
        lg->blocks += g->blocks;
        char *label = path_label(g);
        if (!label || push_index(&lg->sites, &lg->nsites, i) != 0) {
            free(label);
            err = 1;
            break;
        }
        size_t p = 0;
        while (p < lg->npaths && strcmp(lg->paths[p].label, label) != 0)
            p++;
        if (p == lg->npaths) {
            if ((lg->npaths & (lg->npaths - 1)) == 0) {
                struct line_path *np = realloc(lg->paths, (lg->npaths ? lg->npaths * 2 : 1) * sizeof *np);
                if (!np) {
                    free(label);
                    err = 1;
                    break;
                }
                lg->paths = np;
            }
            lg->paths[lg->npaths++] = (struct line_path){.label = label};
        } else {
            free(label);
        }
        struct line_path *lp = &lg->paths[p];
        lp->bytes += g->bytes;
        lp->blocks += g->blocks;
        if (push_index(&lp->sites, &lp->nsites, i) != 0)
            err = 1;
    }
    u64map_free(&index);
    if (err) {
        report_line_groups_free(v, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        qsort(v[i].paths, v[i].npaths, sizeof *v[i].paths, cmp_path);
    if (n)
        qsort(v, n, sizeof *v, cmp_line_group);
    *out = v;
    *nout = n;
    return 0;
}

static void describe_exit(FILE *out, const struct process *p)
{
    if (p->exit_kind == EXIT_CODE)
        fprintf(out, "exited with status %d", p->exit_value);
    else if (p->exit_kind == EXIT_SIGNAL)
        fprintf(out, "was killed by signal %d (%s)", p->exit_value, strsignal(p->exit_value));
    else if (p->exit_kind == EXIT_EXEC)
        fprintf(out, "replaced itself with another program (exec): what it had not freed by then is leaked");
    else
        fprintf(out, "ended; its exit status was not seen (its parent collected it, or no launcher ran)");
}

/* Long: the text report's sections in the order a reader meets them (errors, groups, summary lines,
 * crossings, growth), each a few lines of printing; split, they would pass the same dozen values. */
void report_print_text(FILE *out, const struct report *r, const struct report_options *o)
{
    const struct process *p = r->proc;
    fprintf(out, "\n== cgoscope: process %u (%s) ", p->pid, p->exe ? p->exe : "?");
    describe_exit(out, p);
    fprintf(out, "\n");
    if (!p->attached) {
        fprintf(out, "== cgoscope: the shim never started in this process, so nothing was recorded.\n");
        if (p->untraced_why[0])
            fprintf(out, "   Not traced: %s.\n", p->untraced_why);
        else
            fprintf(out, "   Is it a static binary, or does it unset LD_PRELOAD? (`file PROG` tells if it is static.)\n");
        return;
    }
    size_t nuser = 0, nrt = 0, nsupp = 0, nposs = 0, nheld = 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct leak_group *g = &r->groups[i];
        if (g->origin != ORIGIN_USER)
            nrt++;
        else if (g->suppressed)
            nsupp++;
        else
            leak_group_is_lost(g) ? nuser++ : g->kind == REACH_POSSIBLE ? nposs++ : nheld++;
    }
    lifetime_print_text(out, r, o); /* lifetime errors lead */
    if (!r->is_go && !o->show_runtime) {
        /* A shell or tool the program ran: not what cgoscope is for; one line is enough. */
        fprintf(out, "== not a Go program: %" PRIu64 " bytes in %" PRIu64 " blocks unfreed at exit "
                     "(--show-runtime lists them; the JSON report has them)\n",
                r->user_bytes + r->runtime_bytes + r->possibly_bytes + r->reachable_bytes,
                r->user_blocks + r->runtime_blocks + r->possibly_blocks + r->reachable_blocks);
        return;
    }
    struct line_group *lgs = NULL;
    size_t nlg = 0;
    if (report_line_groups(r, &lgs, &nlg) != 0) {
        fprintf(out, "== cgoscope: out of memory grouping the report; the JSON report has every site\n");
        nlg = 0;
    }
    /* The headline first: what the program leaked, and how many places in its Go code made it. */
    size_t nlost_lines = 0;
    for (size_t i = 0; i < nlg; i++)
        nlost_lines += lgs[i].origin == ORIGIN_USER && !lgs[i].suppressed && lgs[i].kind != REACH_POSSIBLE &&
                       lgs[i].kind != REACH_REACHABLE;
    fprintf(out, "== Leaked by the program: %" PRIu64 " bytes in %" PRIu64 " block%s from %zu Go line%s of cgo calls "
                 "(%zu site%s)\n",
            r->user_bytes, r->user_blocks, r->user_blocks == 1 ? "" : "s", nlost_lines, nlost_lines == 1 ? "" : "s",
            nuser, nuser == 1 ? "" : "s");
    size_t shown = 0, shown_poss = 0, shown_held = 0, printed = 0, more = 0, more_sites = 0;
    uint64_t more_bytes = 0;
    for (size_t i = 0; i < nlg; i++) {
        const struct line_group *lg = &lgs[i];
        if (lg->origin == ORIGIN_RUNTIME && !o->show_runtime)
            continue;
        if (lg->kind == REACH_REACHABLE && !o->show_reachable)
            continue;
        if (!o->full_report && printed == REPORT_TOP_GROUPS) {
            more++;
            more_sites += lg->nsites;
            more_bytes += lg->bytes;
            continue;
        }
        printed++;
        const struct leak_group *g = &r->groups[lg->sites[0]];
        const char *who = g->origin == ORIGIN_USER ? "User" : "Runtime";
        if (g->kind == REACH_POSSIBLE)
            fprintf(out, "\n%s possibly lost %zu: ", who, ++shown_poss);
        else if (g->kind == REACH_REACHABLE)
            fprintf(out, "\n%s still reachable %zu: ", who, ++shown_held);
        else
            fprintf(out, "\n%s leak %zu: ", who, ++shown);
        fprintf(out, "%" PRIu64 " bytes in %" PRIu64 " block%s", lg->bytes, lg->blocks, lg->blocks == 1 ? "" : "s");
        if (g->kind == REACH_DEFINITE || g->kind == REACH_INDIRECT)
            fprintf(out, " (%s)", g->kind == REACH_DEFINITE ? "definitely lost" : "indirectly lost: only lost blocks point to them");
        else if (g->kind == REACH_POSSIBLE)
            fprintf(out, " (only pointers into their middle)");
        if (lg->at) {
            char where[512];
            place(where, sizeof where, lg->at);
            fprintf(out, " %s %s", lg->is_go_line ? "from the cgo call in" : "in", where);
        }
        fprintf(out, ": %zu site%s, %zu path%s", lg->nsites, lg->nsites == 1 ? "" : "s", lg->npaths,
                lg->npaths == 1 ? "" : "s");
        if (g->suppressed)
            fprintf(out, "  (suppressed by leak:%s, %s)", g->suppressed_pattern, g->suppressed_source);
        fprintf(out, "\n");
        /* What holds them: the roots of its sites, each named once, at most HELD_MAX. */
        const struct held_ref *seen[HELD_MAX];
        size_t nseen = 0;
        for (size_t s = 0; s < lg->nsites && nseen < HELD_MAX; s++) {
            const struct leak_group *sg = &r->groups[lg->sites[s]];
            for (size_t k = 0; k < sg->nheld && nseen < HELD_MAX; k++) {
                const struct held_ref *h = &sg->held[k];
                int dup = 0;
                for (size_t j = 0; j < nseen && !dup; j++)
                    dup = seen[j]->root == h->root &&
                          (h->symbol && seen[j]->symbol ? strcmp(h->symbol, seen[j]->symbol) == 0 : seen[j]->addr == h->addr);
                if (dup)
                    continue;
                seen[nseen++] = h;
                if (h->symbol)
                    fprintf(out, "    held by %s (%s at 0x%" PRIx64 ")\n", h->symbol, held_root_name(h), h->addr);
                else
                    fprintf(out, "    held by %s memory at 0x%" PRIx64 "\n", held_root_name(h), h->addr);
            }
        }
        size_t npaths = o->full_report || lg->npaths <= REPORT_TOP_PATHS + 1 ? lg->npaths : REPORT_TOP_PATHS;
        for (size_t k = 0; k < npaths; k++) {
            const struct line_path *lp = &lg->paths[k];
            fprintf(out, "    %10" PRIu64 " bytes %8" PRIu64 " block%s  %s", lp->bytes, lp->blocks,
                    lp->blocks == 1 ? " " : "s", lp->label);
            if (lp->nsites > 1)
                fprintf(out, "  (%zu sites)", lp->nsites);
            fprintf(out, "\n");
        }
        if (npaths < lg->npaths) {
            uint64_t b = 0, n = 0;
            for (size_t k = npaths; k < lg->npaths; k++) {
                b += lg->paths[k].bytes;
                n += lg->paths[k].blocks;
            }
            fprintf(out, "    (%zu more paths: %" PRIu64 " bytes in %" PRIu64 " blocks; --full-report lists them)\n",
                    lg->npaths - npaths, b, n);
        }
        if (!g->nframes)
            fprintf(out, "    (stack not recorded)\n");
        if (o->full_report) {
            for (size_t s = 0; s < lg->nsites; s++) {
                const struct leak_group *sg = &r->groups[lg->sites[s]];
                fprintf(out, "  site %zu: %" PRIu64 " bytes in %" PRIu64 " block%s\n", s + 1, sg->bytes, sg->blocks,
                        sg->blocks == 1 ? "" : "s");
                print_stack(out, sg, o->full_stacks);
            }
        }
    }
    if (more)
        fprintf(out, "\n== %zu more group%s (%zu site%s, %" PRIu64 " bytes) in the JSON report (\"groups\"); "
                     "--full-report prints them\n",
                more, more == 1 ? "" : "s", more_sites, more_sites == 1 ? "" : "s", more_bytes);
    report_line_groups_free(lgs, nlg);
    fprintf(out, "\n== Summary: %" PRIu64 " bytes in %" PRIu64 " blocks leaked by the program (%zu site%s)%s\n",
            r->user_bytes, r->user_blocks, nuser, nuser == 1 ? "" : "s",
            p->reach.state == REACH_SCANNED ? ": definitely and indirectly lost" : "");
    if (nposs)
        fprintf(out, "== Possibly lost: %" PRIu64 " bytes in %" PRIu64 " block%s (%zu site%s): only pointers into their middle\n",
                r->possibly_bytes, r->possibly_blocks, r->possibly_blocks == 1 ? "" : "s", nposs, nposs == 1 ? "" : "s");
    if (p->reach.state == REACH_SCANNED) {
        fprintf(out, "== Still reachable: %" PRIu64 " bytes in %" PRIu64 " block%s (%zu site%s)", r->reachable_bytes,
                r->reachable_blocks, r->reachable_blocks == 1 ? "" : "s", nheld, nheld == 1 ? "" : "s");
        if (nheld && !o->show_reachable) {
            /* What holds the most: the roots of the largest groups. */
            size_t named = 0;
            const char *said[3];
            for (size_t i = 0; i < r->ngroups && named < 3; i++) {
                const struct leak_group *g = &r->groups[i];
                if (g->origin != ORIGIN_USER || g->suppressed || g->kind != REACH_REACHABLE || !g->nheld)
                    continue;
                const struct held_ref *h = &g->held[0];
                const char *name = h->symbol ? h->symbol : held_root_name(h);
                int dup = 0; /* each holder once: "held by go_heap", not three times */
                for (size_t k = 0; k < named && !dup; k++)
                    dup = strcmp(said[k], name) == 0;
                if (dup)
                    continue;
                fprintf(out, "%s%s", named ? ", " : ", held by ", name);
                said[named++] = name;
            }
            fprintf(out, "; --show-reachable lists them");
        }
        fprintf(out, "\n");
    } else if (p->reach.why[0]) {
        fprintf(out, "== note: unfreed blocks not classified as lost or held: %s; all are counted as leaked\n",
                p->reach.why);
    }
    if (nsupp)
        fprintf(out, "== Suppressed: %" PRIu64 " bytes in %" PRIu64 " blocks (%zu site%s), not counted above\n",
                r->suppressed_bytes, r->suppressed_blocks, nsupp, nsupp == 1 ? "" : "s");
    fprintf(out, "== Go runtime and system libraries: %" PRIu64 " bytes in %" PRIu64 " blocks (%zu site%s)%s\n",
            r->runtime_bytes, r->runtime_blocks, nrt, nrt == 1 ? "" : "s",
            o->show_runtime || !nrt ? "" : ", not shown: add --show-runtime");
    fprintf(out, "== %" PRIu64 " allocations, %" PRIu64 " frees, %" PRIu64 " events lost\n", p->allocations,
            p->frees, p->events_lost);
    if (p->corrupt_records)
        fprintf(out, "== WARNING: %" PRIu64 " corrupt record run%s skipped (first: %s); the report covers the rest\n",
                p->corrupt_records, p->corrupt_records == 1 ? "" : "s", p->corrupt_what);
    if (p->out_of_memory)
        fprintf(out, "== WARNING: the analyzer ran out of memory; some records were not processed\n");
    growth_print_text(out, r);
    crossings_print_text(out, &r->crossings);
    const char *w = symbolizer_warnings(r->sym);
    if (w && *w)
        fprintf(out, "== note: %s", w);
}

/* The frames of a JSON document, each made once: the same frame is in the stacks of many leak
 * sites (31,604 frames for ~2,000 distinct ones in go-sqlite3's suite), and an object per
 * occurrence made most of the document's time and memory. json-c prints a shared object at every
 * place it is added. Active while report_document builds (output is single-threaded). */
struct frame_json_cache {
    struct u64map index; /* hash of the frame's fields -> index+1 into v */
    struct {
        struct report_frame f;
        json_object *o;
    } *v;
    size_t n, cap;
};
static struct frame_json_cache *frame_cache;

static uint64_t frame_hash(const struct report_frame *f)
{
    uint64_t h = f->pc * 0x9e3779b97f4a7c15ull;
    const uint64_t parts[] = {(uint64_t)(uintptr_t)f->function, (uint64_t)(uintptr_t)f->file,
                              (uint64_t)(uint32_t)f->line, (uint64_t)(uint32_t)f->lang, (uint64_t)(uintptr_t)f->object};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = (h ^ parts[i]) * 0xff51afd7ed558ccdull;
    return h ? h : 1;
}

static int same_frame(const struct report_frame *a, const struct report_frame *b)
{
    return a->pc == b->pc && a->function == b->function && a->file == b->file && a->line == b->line &&
           a->lang == b->lang && a->object == b->object;
}

static json_object *frame_json_new(const struct report_frame *f)
{
    json_object *o = json_object_new_object();
    char buf[32];
    if (f->function) {
        json_object_object_add(o, "function", json_object_new_string(f->function));
    } else {
        snprintf(buf, sizeof buf, "0x%" PRIx64, f->pc);
        json_object_object_add(o, "function", json_object_new_string(buf));
    }
    json_object_object_add(o, "file", f->file ? json_object_new_string(f->file) : NULL);
    json_object_object_add(o, "line", json_object_new_int(f->line));
    json_object_object_add(o, "language", json_object_new_string(lang_name(f->lang)));
    json_object_object_add(o, "object", f->object ? json_object_new_string(f->object) : NULL);
    snprintf(buf, sizeof buf, "0x%" PRIx64, f->pc);
    json_object_object_add(o, "pc", json_object_new_string(buf));
    return o;
}

json_object *report_frame_json(const struct report_frame *f)
{
    struct frame_json_cache *c = frame_cache;
    if (!c)
        return frame_json_new(f);
    uint64_t h = frame_hash(f);
    uint64_t *slot = u64map_get(&c->index, h);
    if (slot && same_frame(&c->v[*slot - 1].f, f))
        return json_object_get(c->v[*slot - 1].o);
    json_object *o = frame_json_new(f);
    if (slot || !o) /* another frame with the same hash: not shared */
        return o;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        void *nv = realloc(c->v, nc * sizeof *c->v);
        if (!nv)
            return o;
        c->v = nv;
        c->cap = nc;
    }
    slot = u64map_put(&c->index, h, NULL);
    if (!slot)
        return o;
    c->v[c->n].f = *f;
    c->v[c->n].o = json_object_get(o); /* the cache's own reference */
    *slot = ++c->n;
    return o;
}


static json_object *go_line_json(const struct report_frame *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "function", f->function ? json_object_new_string(f->function) : NULL);
    json_object_object_add(o, "file", f->file ? json_object_new_string(f->file) : NULL);
    json_object_object_add(o, "line", json_object_new_int(f->line));
    return o;
}

static json_object *index_list(const size_t *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int64((int64_t)v[i]));
    return a;
}

/* Long: one JSON object per process, its fields in the documented order (docs/json-report.md), each
 * a line or two; read top to bottom against that document. */
json_object *report_process_json(const struct report *r)
{
    const struct process *p = r->proc;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pid", json_object_new_int64(p->pid));
    json_object_object_add(o, "ppid", json_object_new_int64(p->ppid));
    json_object_object_add(o, "exe", p->exe ? json_object_new_string(p->exe) : NULL);
    json_object *argv = json_object_new_array();
    for (int i = 0; i < p->argc; i++)
        json_object_array_add(argv, json_object_new_string(p->argv[i]));
    json_object_object_add(o, "argv", argv);
    if (r->go_version[0])
        json_object_object_add(o, "go_version", json_object_new_string(r->go_version));
    json_object_object_add(o, "go_program", json_object_new_boolean(r->is_go));
    json_object *ex = json_object_new_object();
    if (p->exit_kind == EXIT_CODE)
        json_object_object_add(ex, "code", json_object_new_int(p->exit_value));
    else if (p->exit_kind == EXIT_SIGNAL)
        json_object_object_add(ex, "signal", json_object_new_int(p->exit_value));
    json_object_object_add(o, "exit", ex);
    json_object_object_add(o, "traced", json_object_new_boolean(p->attached));
    if (!p->attached && p->untraced_why[0])
        json_object_object_add(o, "untraced_reason", json_object_new_string(p->untraced_why));
    if (p->exit_kind == EXIT_EXEC)
        json_object_object_add(o, "replaced_by_exec", json_object_new_boolean(1));
    json_object_object_add(o, "events_lost", json_object_new_int64((int64_t)p->events_lost));
    json_object_object_add(o, "corrupt_records", json_object_new_int64((int64_t)p->corrupt_records));

    json_object *t = json_object_new_object();
    json_object_object_add(t, "allocations", json_object_new_int64((int64_t)p->allocations));
    json_object_object_add(t, "frees", json_object_new_int64((int64_t)p->frees));
    json_object_object_add(t, "leaked_blocks", json_object_new_int64((int64_t)r->user_blocks));
    json_object_object_add(t, "leaked_bytes", json_object_new_int64((int64_t)r->user_bytes));
    json_object_object_add(t, "runtime_leaked_blocks", json_object_new_int64((int64_t)r->runtime_blocks));
    json_object_object_add(t, "runtime_leaked_bytes", json_object_new_int64((int64_t)r->runtime_bytes));
    json_object_object_add(t, "possibly_lost_blocks", json_object_new_int64((int64_t)r->possibly_blocks));
    json_object_object_add(t, "possibly_lost_bytes", json_object_new_int64((int64_t)r->possibly_bytes));
    json_object_object_add(t, "reachable_blocks", json_object_new_int64((int64_t)r->reachable_blocks));
    json_object_object_add(t, "reachable_bytes", json_object_new_int64((int64_t)r->reachable_bytes));
    json_object_object_add(t, "suppressed_blocks", json_object_new_int64((int64_t)r->suppressed_blocks));
    json_object_object_add(t, "suppressed_bytes", json_object_new_int64((int64_t)r->suppressed_bytes));
    json_object_object_add(o, "totals", t);
    json_object *rs = json_object_new_object();
    json_object_object_add(rs, "scanned", json_object_new_boolean(p->reach.state == REACH_SCANNED));
    if (p->reach.state != REACH_SCANNED && p->reach.why[0])
        json_object_object_add(rs, "why_not", json_object_new_string(p->reach.why));
    json_object_object_add(rs, "bytes_scanned", json_object_new_int64((int64_t)p->reach.scanned_bytes));
    json_object_object_add(rs, "seconds", json_object_new_double(p->reach.seconds));
    json_object_object_add(o, "reachability", rs);

    json_object *leaks = json_object_new_array();
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct leak_group *g = &r->groups[i];
        json_object *l = json_object_new_object();
        json_object_object_add(l, "blocks", json_object_new_int64((int64_t)g->blocks));
        json_object_object_add(l, "bytes", json_object_new_int64((int64_t)g->bytes));
        json_object_object_add(l, "origin", json_object_new_string(g->origin == ORIGIN_USER ? "user" : "runtime"));
        json_object_object_add(l, "kind", json_object_new_string(reach_kind_name(g->kind)));
        if (g->kind == REACH_REACHABLE || g->kind == REACH_POSSIBLE) {
            json_object *hb = json_object_new_array();
            for (size_t k = 0; k < g->nheld; k++) {
                json_object *h = json_object_new_object();
                char buf[32];
                json_object_object_add(h, "root", json_object_new_string(held_root_name(&g->held[k])));
                if (g->held[k].symbol)
                    json_object_object_add(h, "symbol", json_object_new_string(g->held[k].symbol));
                snprintf(buf, sizeof buf, "0x%" PRIx64, g->held[k].addr);
                json_object_object_add(h, "address", json_object_new_string(buf));
                json_object_array_add(hb, h);
            }
            json_object_object_add(l, "held_by", hb);
        }
        json_object_object_add(l, "suppressed", json_object_new_boolean(g->suppressed));
        if (g->suppressed) {
            json_object *sup = json_object_new_object();
            json_object_object_add(sup, "pattern", json_object_new_string(g->suppressed_pattern));
            json_object_object_add(sup, "source", json_object_new_string(g->suppressed_source));
            json_object_object_add(l, "suppression", sup);
        }
        json_object *st = json_object_new_array();
        for (size_t k = 0; k < g->nframes; k++)
            json_object_array_add(st, report_frame_json(&g->frames[k]));
        json_object_object_add(l, "stack", st);
        long at = leaksite_go_line(g->frames, g->nframes);
        json_object_object_add(l, "go_line", at >= 0 ? go_line_json(&g->frames[at]) : NULL);
        char label[1024];
        leaksite_label(g->frames, g->nframes, label, sizeof label);
        json_object_object_add(l, "label", json_object_new_string(label));
        json_object_array_add(leaks, l);
    }
    json_object_object_add(o, "leaks", leaks);
    /* The same sites grouped by the Go line of the cgo call, as the text report shows them. */
    struct line_group *lgs = NULL;
    size_t nlg = 0;
    if (report_line_groups(r, &lgs, &nlg) == 0) {
        json_object *groups = json_object_new_array();
        for (size_t i = 0; i < nlg; i++) {
            const struct line_group *lg = &lgs[i];
            json_object *j = json_object_new_object();
            json_object_object_add(j, "go_line", lg->is_go_line ? go_line_json(lg->at) : NULL);
            json_object_object_add(j, "origin", json_object_new_string(lg->origin == ORIGIN_USER ? "user" : "runtime"));
            json_object_object_add(j, "kind", json_object_new_string(reach_kind_name(lg->kind)));
            json_object_object_add(j, "suppressed", json_object_new_boolean(lg->suppressed));
            json_object_object_add(j, "bytes", json_object_new_int64((int64_t)lg->bytes));
            json_object_object_add(j, "blocks", json_object_new_int64((int64_t)lg->blocks));
            json_object_object_add(j, "leaks", index_list(lg->sites, lg->nsites));
            json_object *paths = json_object_new_array();
            for (size_t k = 0; k < lg->npaths; k++) {
                json_object *pj = json_object_new_object();
                json_object_object_add(pj, "label", json_object_new_string(lg->paths[k].label));
                json_object_object_add(pj, "bytes", json_object_new_int64((int64_t)lg->paths[k].bytes));
                json_object_object_add(pj, "blocks", json_object_new_int64((int64_t)lg->paths[k].blocks));
                json_object_object_add(pj, "leaks", index_list(lg->paths[k].sites, lg->paths[k].nsites));
                json_object_array_add(paths, pj);
            }
            json_object_object_add(j, "paths", paths);
            json_object_array_add(groups, j);
        }
        json_object_object_add(o, "groups", groups);
        report_line_groups_free(lgs, nlg);
    }
    lifetime_add_json(o, r);
    growth_add_json(o, r);
    crossings_add_json(o, &r->crossings);
    return o;
}

json_object *report_document(const struct report *reports, size_t n)
{
    struct frame_json_cache cache = {0};
    u64map_init(&cache.index);
    frame_cache = &cache;
    json_object *doc = json_object_new_object();
    json_object *tool = json_object_new_object();
    json_object_object_add(tool, "name", json_object_new_string("cgoscope"));
    json_object_object_add(tool, "version", json_object_new_string(CGOSCOPE_VERSION));
    json_object_object_add(doc, "tool", tool);
    json_object *procs = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(procs, report_process_json(&reports[i]));
    json_object_object_add(doc, "processes", procs);
    frame_cache = NULL;
    for (size_t i = 0; i < cache.n; i++)
        json_object_put(cache.v[i].o);
    free(cache.v);
    u64map_free(&cache.index);
    return doc;
}
