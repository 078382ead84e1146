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

/* A symbolizer for the modules of p, the wrappers of its cgo sites named after their C functions. */
struct symbolizer *symbolizer_new(const struct process *p);
/* One with no module yet, and the modules added to it (those it has not already: same path and
 * bias). The symbolizer keeps copies. */
struct symbolizer *symbolizer_new_empty(void);
int symbolizer_add_modules(struct symbolizer *s, const struct module_info *mods, size_t n);
/* Made ready for p as symbolizer_new would be: its modules added, its sites' wrappers, the
 * warnings of its modules. Returns -1 when memory ran out. */
int symbolizer_sync(struct symbolizer *s, const struct process *p);
/* Every module of s is one of p's (s was made from an earlier state of p). */
int symbolizer_matches(const struct symbolizer *s, const struct process *p);
/* Reads ahead what resolving pc will need (its module's symbols or DWARF, the index and line table
 * of its compilation unit) without resolving it: symwarm.h does this while the program runs. */
void symbolizer_warm(struct symbolizer *s, uint64_t pc);
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
