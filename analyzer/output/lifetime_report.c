/* Lifetime errors in the reports (lifetime_report.h, docs/lifetime.md). */
#include "output/lifetime_report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/lifetime.h"
#include "output/report.h"
#include "output/suppress.h"
#include "output/symbolize.h"

int lifetime_report_build(struct report *r)
{
    struct lifetime_report *lr = &r->lifetime;
    const struct process *p = r->proc;
    const struct lifetime *lt = &p->life;
    memset(lr, 0, sizeof *lr);
    lr->dropped = lt->errors_dropped;
    lr->unknown = lt->unknown;
    if (p->events_lost) {
        /* An address not known may be a block whose allocation record was lost. */
        lr->unreliable = lt->nerrors || lt->errors_dropped;
        lr->unreliable_n = lt->nerrors + lt->errors_dropped;
        lr->dropped = 0;
        return 0;
    }
    if (!lt->nerrors)
        return 0;
    lr->v = calloc(lt->nerrors, sizeof *lr->v);
    if (!lr->v)
        return -1;
    for (size_t i = 0; i < lt->nerrors; i++) {
        struct lt_report_error *re = &lr->v[lr->n++];
        re->e = &lt->errors[i];
        uint64_t ids[LT_NSTACKS] = {re->e->stack, re->e->alloc_stack, re->e->first_free_stack};
        for (int k = 0; k < LT_NSTACKS; k++) {
            const struct stack_info *st = ids[k] ? process_stack(p, ids[k]) : NULL;
            re->have[k] = st != NULL;
            if (st && report_symbolize_stack(r, st, &re->frames[k], &re->nframes[k], NULL) != 0)
                return -1;
        }
    }
    lr->unsuppressed = lr->n;
    return 0;
}

void lifetime_report_free(struct lifetime_report *lr)
{
    for (size_t i = 0; i < lr->n; i++)
        for (int k = 0; k < LT_NSTACKS; k++)
            free(lr->v[i].frames[k]);
    free(lr->v);
    memset(lr, 0, sizeof *lr);
}

void lifetime_report_suppress(struct lifetime_report *lr, struct suppressions *s)
{
    for (size_t i = 0; i < lr->n; i++) {
        struct lt_report_error *re = &lr->v[i];
        if (re->suppressed)
            continue;
        int type = re->e->kind == LT_DOUBLE_FREE ? SUPP_DOUBLE_FREE : SUPP_INVALID_FREE;
        for (int k = 0; k < LT_NSTACKS && !re->suppressed; k++) {
            struct suppression *m = suppressions_match_type(s, type, re->frames[k], re->nframes[k]);
            if (!m)
                continue;
            m->hits++;
            re->suppressed = 1;
            re->suppressed_pattern = m->pattern;
            re->suppressed_source = m->source;
            lr->unsuppressed--;
        }
    }
}

/* ---- Text --------------------------------------------------------------------------------- */

/* The frame that names the place: the innermost Go frame that is not cgo glue, else the
 * innermost frame with a source line, else the innermost one. */
static const struct report_frame *place_of(const struct report_frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].lang == LANG_GO && f[i].file && !report_frame_is_glue(f[i].function, 1))
            return &f[i];
    for (size_t i = 0; i < n; i++)
        if (f[i].file)
            return &f[i];
    return n ? &f[0] : NULL;
}

static void print_place(FILE *out, const struct lt_report_error *re, int k)
{
    const struct report_frame *f = re->have[k] ? place_of(re->frames[k], re->nframes[k]) : NULL;
    if (!f) {
        fprintf(out, "(stack not recorded)");
        return;
    }
    const char *base = f->file ? strrchr(f->file, '/') : NULL;
    if (f->file)
        fprintf(out, "%s (%s:%d)", f->function ? f->function : "?", base ? base + 1 : f->file, f->line);
    else if (f->function)
        fprintf(out, "%s", f->function);
    else
        fprintf(out, "0x%" PRIx64, f->pc);
}

static void print_frames(FILE *out, const char *title, const struct report_frame *f, size_t n, int have, int full)
{
    fprintf(out, "  %s:\n", title);
    if (!have) {
        fprintf(out, "    (stack not recorded)\n");
        return;
    }
    size_t hidden = 0, shown = 0;
    for (size_t k = 0; k < n; k++) {
        if (!full && report_frame_is_glue(f[k].function, f[k].lang == LANG_GO)) {
            hidden++;
            continue;
        }
        const char *obj = f[k].object ? strrchr(f[k].object, '/') : NULL;
        obj = obj ? obj + 1 : f[k].object;
        fprintf(out, "    #%-2zu ", shown++);
        if (f[k].function)
            fprintf(out, "%s", f[k].function);
        else
            fprintf(out, "0x%" PRIx64, f[k].pc);
        if (f[k].file)
            fprintf(out, "  %s:%d", f[k].file, f[k].line);
        else if (obj)
            fprintf(out, "  (%s)", obj);
        fprintf(out, "\n");
    }
    if (hidden)
        fprintf(out, "        (%zu cgo and runtime frame%s not shown)\n", hidden, hidden == 1 ? "" : "s");
}

#define TEXT_MAX 20

void lifetime_print_text(FILE *out, const struct report *r, const struct report_options *o)
{
    const struct lifetime_report *lr = &r->lifetime;
    if (lr->unreliable)
        fprintf(out, "== note: %" PRIu64 " free%s of addresses that were not live blocks left out: records were lost, "
                     "so their allocations may not have been seen\n",
                lr->unreliable_n, lr->unreliable_n == 1 ? "" : "s");
    size_t shown = 0;
    for (size_t i = 0; i < lr->n; i++) {
        const struct lt_report_error *re = &lr->v[i];
        const struct lifetime_error *e = re->e;
        if (shown == TEXT_MAX) {
            fprintf(out, "\n== %zu more lifetime error%s: the JSON report lists them\n", lr->n - i,
                    lr->n - i == 1 ? "" : "s");
            break;
        }
        shown++;
        const char *what = e->realloc ? "realloc" : "free";
        fprintf(out, "\nError %zu: ", shown);
        if (e->kind == LT_DOUBLE_FREE) {
            fprintf(out, "double %s of %" PRIu64 " bytes: allocated at ", what, e->size);
            print_place(out, re, LT_STACK_ALLOC);
            fprintf(out, ", freed at ");
            print_place(out, re, LT_STACK_FIRST_FREE);
            fprintf(out, ", %s again at ", e->realloc ? "realloc'd" : "freed");
            print_place(out, re, LT_STACK_FREE);
        } else if (e->interior) {
            fprintf(out, "invalid %s: 0x%" PRIx64 " is %" PRIu64 " bytes into a block of %" PRIu64
                         " bytes allocated at ",
                    what, e->addr, e->offset, e->size);
            print_place(out, re, LT_STACK_ALLOC);
            fprintf(out, "; %s at ", e->realloc ? "realloc'd" : "freed");
            print_place(out, re, LT_STACK_FREE);
        } else {
            fprintf(out, "invalid %s of 0x%" PRIx64 ", never returned by the allocator (Go memory, a stack "
                         "address, a block freed long before?): %s at ",
                    what, e->addr, e->realloc ? "realloc'd" : "freed");
            print_place(out, re, LT_STACK_FREE);
        }
        if (re->suppressed)
            fprintf(out, "  (suppressed by %s:%s, %s)", lifetime_kind_name(e->kind), re->suppressed_pattern,
                    re->suppressed_source);
        fprintf(out, "\n");
        if (e->kind == LT_DOUBLE_FREE || e->interior)
            print_frames(out, "allocated at", re->frames[LT_STACK_ALLOC], re->nframes[LT_STACK_ALLOC],
                         re->have[LT_STACK_ALLOC], o->full_stacks);
        if (e->kind == LT_DOUBLE_FREE)
            print_frames(out, "freed at", re->frames[LT_STACK_FIRST_FREE], re->nframes[LT_STACK_FIRST_FREE],
                         re->have[LT_STACK_FIRST_FREE], o->full_stacks);
        print_frames(out, e->kind == LT_DOUBLE_FREE ? (e->realloc ? "realloc'd again at" : "freed again at")
                                                    : (e->realloc ? "realloc'd at" : "freed at"),
                     re->frames[LT_STACK_FREE], re->nframes[LT_STACK_FREE], re->have[LT_STACK_FREE],
                     o->full_stacks);
    }
    if (lr->n || lr->dropped)
        fprintf(out, "\n== Lifetime errors: %zu (%zu not suppressed)%s\n", lr->n + (size_t)lr->dropped,
                lr->unsuppressed + (size_t)lr->dropped, lr->dropped ? "; the first 1000 are listed" : "");
}

/* ---- JSON --------------------------------------------------------------------------------- */

static json_object *stack_json(const struct report_frame *f, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t k = 0; k < n; k++)
        json_object_array_add(a, report_frame_json(&f[k]));
    return a;
}

void lifetime_add_json(json_object *o, const struct report *r)
{
    const struct lifetime_report *lr = &r->lifetime;
    json_object *errs = json_object_new_array();
    for (size_t i = 0; i < lr->n; i++) {
        const struct lt_report_error *re = &lr->v[i];
        const struct lifetime_error *e = re->e;
        json_object *j = json_object_new_object();
        char buf[32];
        json_object_object_add(j, "kind", json_object_new_string(lifetime_kind_name(e->kind)));
        snprintf(buf, sizeof buf, "0x%" PRIx64, e->addr);
        json_object_object_add(j, "address", json_object_new_string(buf));
        if (e->size)
            json_object_object_add(j, "size", json_object_new_int64((int64_t)e->size));
        if (e->interior)
            json_object_object_add(j, "offset", json_object_new_int64((int64_t)e->offset));
        json_object_object_add(j, "function", json_object_new_string(e->realloc ? "realloc" : "free"));
        json_object_object_add(j, "stack", stack_json(re->frames[LT_STACK_FREE], re->nframes[LT_STACK_FREE]));
        json_object_object_add(j, "alloc_stack", stack_json(re->frames[LT_STACK_ALLOC], re->nframes[LT_STACK_ALLOC]));
        json_object_object_add(j, "first_free_stack",
                               stack_json(re->frames[LT_STACK_FIRST_FREE], re->nframes[LT_STACK_FIRST_FREE]));
        json_object_object_add(j, "suppressed", json_object_new_boolean(re->suppressed));
        if (re->suppressed) {
            json_object *sup = json_object_new_object();
            json_object_object_add(sup, "pattern", json_object_new_string(re->suppressed_pattern));
            json_object_object_add(sup, "source", json_object_new_string(re->suppressed_source));
            json_object_object_add(j, "suppression", sup);
        }
        json_object_array_add(errs, j);
    }
    json_object_object_add(o, "errors", errs);
}
