#include "util/strtab.h"

#include <stdlib.h>
#include <string.h>

void strtab_init(struct strtab *t) { memset(t, 0, sizeof *t); }

void strtab_free(struct strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int grow_slots(struct strtab *t)
{
    size_t ns = t->nslots ? t->nslots * 2 : 64;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = hash(t->v[i]) & (ns - 1);
        while (slots[k])
            k = (k + 1) & (ns - 1);
        slots[k] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = ns;
    return 0;
}

long strtab_intern(struct strtab *t, const char *s, int *added)
{
    if (added)
        *added = 0;
    if ((t->n + 1) * 2 > t->nslots && grow_slots(t) != 0)
        return -1;
    size_t k = hash(s) & (t->nslots - 1);
    for (; t->slots[k]; k = (k + 1) & (t->nslots - 1))
        if (strcmp(t->v[t->slots[k] - 1], s) == 0)
            return (long)t->slots[k] - 1;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        char **nv = realloc(t->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        t->v = nv;
        t->cap = nc;
    }
    char *copy = strdup(s);
    if (!copy)
        return -1;
    t->v[t->n] = copy;
    t->slots[k] = (uint32_t)++t->n;
    if (added)
        *added = 1;
    return (long)t->n - 1;
}
