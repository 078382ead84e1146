/* Addresses to functions, files and lines, for C and Go code alike (elfutils libdw). */
#ifndef CGOSCOPE_SYMBOLIZE_H
#define CGOSCOPE_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/process.h"

enum frame_lang { LANG_UNKNOWN = 0, LANG_C = 1, LANG_GO = 2 };

struct frame {
    uint64_t pc;          /* the return address as recorded */
    const char *function; /* NULL when unknown */
    const char *file;     /* NULL when unknown */
    int line;             /* 0 when unknown */
    int lang;
    int inlined;          /* this frame was inlined into the next one */
    const struct module_info *module; /* NULL when no module covers pc */
    int system;           /* the module is a system library (libc, ld.so, ...) */
    int ldso;             /* the module is the dynamic loader */
};

struct symbolizer;

struct symbolizer *symbolizer_new(const struct process *p);
void symbolizer_free(struct symbolizer *s);
/* Frames for the return address pc, innermost (inlined) first. *n receives their number. The
 * array belongs to the symbolizer and is valid until the next call: copy what you keep. The
 * strings in it live as long as the symbolizer. */
const struct frame *symbolize(struct symbolizer *s, uint64_t pc, size_t *n);
/* Problems worth telling the user (a module that could not be opened, no debug info). */
const char *symbolizer_warnings(const struct symbolizer *s);

/* The symbol whose object covers a data address (a global variable), or NULL; *module (if not
 * NULL) receives the module that holds addr, or NULL. */
const char *symbolizer_data_symbol(struct symbolizer *s, uint64_t addr, const struct module_info **module);

int module_is_system(const char *path);
/* The Go package of the exported function `name` (the package of the Go symbol "<pkg>.name"). */
const char *symbolizer_go_package_of(struct symbolizer *s, const char *name);

#endif
