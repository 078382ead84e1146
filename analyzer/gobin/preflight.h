/* What can be told about a program before running it: can the shim get into it at all? */
#ifndef CGOSCOPE_PREFLIGHT_H
#define CGOSCOPE_PREFLIGHT_H

#include <limits.h>

struct preflight {
    char path[PATH_MAX]; /* where execvp would find it; empty when not found */
    int found, is_elf, is_static, is_setid;
};

/* Resolves prog like execvp and reads its ELF headers. Never runs it. */
void preflight_check(const char *prog, struct preflight *pf);

#endif
