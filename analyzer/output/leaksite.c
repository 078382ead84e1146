#include "output/leaksite.h"

#include <stdio.h>
#include <string.h>

#include "output/symbolize.h"

const char *leaksite_basename(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path;
}

int leaksite_frame_is_noise(const struct report_frame *f)
{
    const char *obj = leaksite_basename(f->object);
    if (obj && strncmp(obj, "libcgoscope", 11) == 0)
        return 1;
    return report_frame_is_glue(f->function, f->lang == LANG_GO);
}

/* Files cgo writes for each package: _cgo_export.c, _cgo_gotypes.go, cgo-gcc-prolog, all
 * under Go's work directory (shown as /tmp/go-build). */
static int is_cgo_generated(const char *file)
{
    if (!file)
        return 0;
    const char *b = leaksite_basename(file);
    return strncmp(b, "_cgo_", 5) == 0 || strcmp(b, "cgo-gcc-prolog") == 0 || strncmp(file, "/tmp/go-build", 13) == 0;
}

int leaksite_frame_is_cgo_generated(const struct report_frame *f) { return is_cgo_generated(f->file); }

const char *leaksite_stable_name(const char *name, char *buf, size_t len)
{
    const char *p = name ? strstr(name, "_cgo_") : NULL;
    if (!p || strspn(p + 5, "0123456789abcdef") != 12 || p[17] != '_')
        return name;
    snprintf(buf, len, "%.*s_cgo_%s", (int)(p - name), name, p + 18);
    return buf;
}

/* GOROOT, from the file of a runtime frame (every goroutine's stack ends in runtime.goexit):
 * "/usr/local/go/src/runtime/asm_amd64.s" -> "/usr/local/go/src/". Length 0 when unknown. */
static size_t goroot_src(const struct report_frame *frames, size_t n, const char **root)
{
    for (size_t i = 0; i < n; i++) {
        const struct report_frame *f = &frames[i];
        if (!f->function || !f->file || strncmp(f->function, "runtime.", 8) != 0)
            continue;
        const char *p = strstr(f->file, "/src/runtime/");
        if (p) {
            *root = f->file;
            return (size_t)(p - f->file) + 5;
        }
    }
    return 0;
}

static int is_users(const struct report_frame *f, const char *root, size_t rootlen)
{
    if (!f->file || f->line <= 0 || leaksite_frame_is_noise(f))
        return 0;
    if (f->object && module_is_system(f->object))
        return 0;
    if (is_cgo_generated(f->file) || strncmp(f->file, "runtime/", 8) == 0)
        return 0;
    return !(rootlen && strncmp(f->file, root, rootlen) == 0);
}

/* The index of the first frame pred accepts, given where the Go toolchain's sources are; -1. */
static long first_frame(const struct report_frame *frames, size_t n,
                        int (*pred)(const struct report_frame *, const char *, size_t))
{
    const char *root = NULL;
    size_t rootlen = goroot_src(frames, n, &root);
    for (size_t i = 0; i < n; i++)
        if (pred(&frames[i], root, rootlen))
            return (long)i;
    return -1;
}

long leaksite_location(const struct report_frame *frames, size_t n)
{
    return first_frame(frames, n, is_users);
}

/* A package of the standard library, by name alone: its path's first element has no dot
 * ("testing", "database/sql"); "main" is the program's. */
static int stdlib_by_name(const char *fn)
{
    const char *slash = strchr(fn, '/');
    if (slash) /* "database/sql.(*DB).Query" or "github.com/a/b.F": the path's first element */
        return memchr(fn, '.', (size_t)(slash - fn)) == NULL;
    return strncmp(fn, "main.", 5) != 0;
}

static int is_program_go(const struct report_frame *f, const char *root, size_t rootlen)
{
    if (f->lang != LANG_GO || !f->function || leaksite_frame_is_noise(f) || strcmp(f->function, "(frames omitted)") == 0)
        return 0;
    if (strncmp(f->function, "runtime.", 8) == 0 || strncmp(f->function, "runtime/", 8) == 0)
        return 0;
    if (f->file && (is_cgo_generated(f->file) || strncmp(f->file, "runtime/", 8) == 0))
        return 0;
    if (f->file && rootlen)
        return strncmp(f->file, root, rootlen) != 0;
    return !stdlib_by_name(f->function);
}

long leaksite_go_line(const struct report_frame *frames, size_t n)
{
    return first_frame(frames, n, is_program_go);
}

const char *leaksite_short_go(const char *function)
{
    const char *slash = function ? strrchr(function, '/') : NULL;
    return slash ? slash + 1 : function;
}

void leaksite_c_name(const struct report_frame *frames, size_t n, char *buf, size_t len)
{
    size_t i = 0;
    while (i + 1 < n && frames[i].object && strncmp(leaksite_basename(frames[i].object), "libcgoscope", 11) == 0)
        i++;
    if (!n) {
        snprintf(buf, len, "?");
        return;
    }
    const struct report_frame *f = &frames[i];
    if (!f->function) {
        snprintf(buf, len, "0x%llx", (unsigned long long)f->pc);
        return;
    }
    const char *c = strstr(f->function, "_Cfunc_");
    if (c && f->lang != LANG_GO) { /* cgo's C stub: _cgo_<hash>_Cfunc__Cmalloc is C.malloc */
        c += 7;
        snprintf(buf, len, "%s%s", c[0] == '_' && c[1] == 'C' ? "C." : "", c[0] == '_' && c[1] == 'C' ? c + 2 : c);
        return;
    }
    snprintf(buf, len, "%s", f->lang == LANG_GO ? leaksite_short_go(f->function) : f->function);
}

void leaksite_label(const struct report_frame *frames, size_t n, char *buf, size_t len)
{
    char c[256];
    leaksite_c_name(frames, n, c, sizeof c);
    long g = leaksite_go_line(frames, n);
    const struct report_frame *at = g >= 0 ? &frames[g] : n ? &frames[0] : NULL;
    const char *file = at ? leaksite_basename(at->file) : NULL;
    if (g > 0)
        snprintf(buf, len, "%s " LEAKSITE_ARROW " %s (%s:%d)", c, leaksite_short_go(frames[g].function),
                 file ? file : "?", frames[g].line);
    else if (file)
        snprintf(buf, len, "%s (%s:%d)", c, file, at->line);
    else
        snprintf(buf, len, "%s", c);
}
