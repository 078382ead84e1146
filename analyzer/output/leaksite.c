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

long leaksite_location(const struct report_frame *frames, size_t n)
{
    const char *root = NULL;
    size_t rootlen = goroot_src(frames, n, &root);
    for (size_t i = 0; i < n; i++)
        if (is_users(&frames[i], root, rootlen))
            return (long)i;
    return -1;
}
