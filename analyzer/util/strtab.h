/* A table of distinct strings, each with its index in the order first added (for the pprof
 * string table, and as a map from string keys to dense indexes). */
#ifndef CGOSCOPE_STRTAB_H
#define CGOSCOPE_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct strtab {
    char **v; /* NUL-terminated copies, in index order */
    size_t n, cap;
    uint32_t *slots; /* open addressing: index+1, 0 empty */
    size_t nslots;   /* power of two */
};

void strtab_init(struct strtab *t);
void strtab_free(struct strtab *t);
/* The index of s, added if new (*added says so when not NULL); -1 when memory runs out. */
long strtab_intern(struct strtab *t, const char *s, int *added);

#endif
