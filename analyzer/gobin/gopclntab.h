/*
 * Go's own function table (.gopclntab), which `-ldflags=-s -w` and strip(1) leave in place:
 * names, files and lines of Go code, and the inlining tree, in a stripped binary. Layout from
 * runtime/symtab.go of Go 1.18 to 1.26 (header magic 0xfffffff0 for 1.18-1.19, 0xfffffff1 from
 * 1.20); the code base (runtime.text) is in the header up to Go 1.21 and in runtime.firstmoduledata
 * after, which is found by the pointer it holds to the table.
 */
#ifndef CGOSCOPE_GOPCLNTAB_H
#define CGOSCOPE_GOPCLNTAB_H

#include <libelf.h>
#include <stddef.h>
#include <stdint.h>

struct gopclntab;

struct go_frame {
    const char *function; /* inside the table: valid while the Elf is */
    const char *file;     /* NULL when unknown */
    int line;             /* 0 when unknown */
};

/* Reads the table of an ELF executable; NULL when it has none this code understands. */
struct gopclntab *gopclntab_open(Elf *elf);
void gopclntab_free(struct gopclntab *t);
/* Link-time bounds of the Go code it describes. */
void gopclntab_text(const struct gopclntab *t, uint64_t *lo, uint64_t *hi);
/* Frames for the link-time address addr, innermost (inlined) first, at most max; 0 when addr
 * is not in Go code. */
size_t gopclntab_lookup(const struct gopclntab *t, uint64_t addr, struct go_frame *out, size_t max);
/* The link-time bounds [entry, end) of the Go function called name (a linear search); 0 when
 * found. */
int gopclntab_func(const struct gopclntab *t, const char *name, uint64_t *entry, uint64_t *end);
/* Every function name of the table, functions inlined everywhere included: NUL-terminated
 * strings one after the other, *len bytes in all. */
const char *gopclntab_names(const struct gopclntab *t, size_t *len);
/* The cgo call sites of a stripped executable as the shim finds them (docs/cgo-facts.md §10,
 * include/cgoscope/gostubs.h): the Go stubs of the table whose load of a wrapper pointer
 * decodes, the pointer lying in writable data and holding C code of the executable. Returns how
 * many, and gives each to each (when not NULL) with the link-time addresses of the pointer and
 * of the wrapper it holds; *callbacks is set when the shim will see callbacks: through
 * runtime.SetCgoTraceback's setter, found the same way, or through runtime/cgo's context
 * variable, found from an export's C wrapper (shim/cgo_hooks.c). */
size_t gopclntab_cgo_sites(Elf *elf, const struct gopclntab *t, int *callbacks,
                           void (*each)(void *arg, const char *stub, uint64_t var, uint64_t wrapper), void *arg);
/* The bytes of the ELF's loaded section that holds link-time address addr, from addr on
 * (*avail of them); NULL when no section holds it. */
const uint8_t *gopclntab_bytes(Elf *elf, uint64_t addr, size_t *avail);

#endif
