/* What cgoscope can do with an executable, told from the file alone (it is never run). */
#ifndef CGOSCOPE_INSPECT_H
#define CGOSCOPE_INSPECT_H

#include <limits.h>
#include <stddef.h>

/* One Go package that calls C: the C functions it calls, each name once. */
struct inspect_package {
    char *name;        /* import path, unescaped ("gopkg.in/yaml.v2", not "yaml%2ev2") */
    char **functions;  /* sorted */
    size_t nfunctions;
    size_t nsites;     /* >= nfunctions: C.f() and `r, err := C.f()` are two sites */
};

/* Where the call sites were read from. */
enum inspect_sites_from {
    INSPECT_SITES_NONE,
    INSPECT_SITES_SYMTAB,   /* the wrapper-pointer variables the shim hooks */
    INSPECT_SITES_PCLNTAB,  /* stripped: the Go stubs `<pkg>._Cfunc_f` that call them */
};

/* A problem found, and what to do about it. */
struct inspect_warning {
    char *what;
    char *fix; /* NULL when there is nothing the user can do */
};

struct inspect {
    char path[PATH_MAX];
    char go_version[64]; /* empty when the build info is unreadable */
    int is_go;           /* build info or .gopclntab present */
    int is_static, is_pie, is_setid, is_x86_64;
    int stripped;        /* no .symtab */
    int dwarf, dwarf_compressed;
    int traceable;       /* LD_PRELOAD can get in: dynamic and not setuid */
    enum inspect_sites_from sites_from;
    size_t nsites;       /* cgo call sites, over all packages */
    size_t hookable;     /* of those, how many the shim will hook when traced */
    int exports;         /* C->Go callbacks: some package //exports a Go function */
    int callbacks;       /* the shim will see them (stripped: runtime.SetCgoTraceback is linked in) */
    struct inspect_package *packages; /* sorted by name */
    size_t npackages;
    struct inspect_warning *warnings;
    size_t nwarnings;
};

/* Reads prog (found like execvp finds it) without running it. Returns 0 when it is an ELF file
 * that could be read, whatever was found in it; -1 with a message in err when it is missing,
 * unreadable or not ELF, or memory ran out. */
int inspect_read(const char *prog, struct inspect *in, char *err, size_t errlen);
void inspect_free(struct inspect *in);

/* "x._cgo_0123456789ab_Cfunc_f" (a wrapper-pointer variable): the package path, unescaped,
 * and the C name, as malloc'ed strings. Returns 0, or -1 when it is no such name. Exposed for
 * unit tests. */
int inspect_parse_site_var(const char *symbol, char **package, char **function);

#endif
