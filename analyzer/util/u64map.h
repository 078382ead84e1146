/* An open-addressing hash map from nonzero 64-bit keys to 64-bit values. */
#ifndef CGOSCOPE_U64MAP_H
#define CGOSCOPE_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map {
    uint64_t *keys; /* 0 = empty */
    uint64_t *vals;
    size_t cap;     /* power of two */
    size_t len;
};

void u64map_init(struct u64map *m);
void u64map_free(struct u64map *m);
/* Returns a pointer to the value for key, or NULL. */
uint64_t *u64map_get(const struct u64map *m, uint64_t key);
/* Returns the value slot for key, inserting it with value 0 if absent; *added tells which.
 * NULL when memory runs out. */
uint64_t *u64map_put(struct u64map *m, uint64_t key, int *added);
/* Removes key; returns 1 if it was present. */
int u64map_del(struct u64map *m, uint64_t key);

#endif
