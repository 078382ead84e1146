/*
 * Where the Go runtime keeps what the shim's store-free cgo calls read (docs/crossings.md,
 * "Store-free calls"): the offsets of g.m, m.ncgocall and m.procid in an executable, from its DWARF.
 */
#ifndef CGOSCOPE_GOLAYOUT_H
#define CGOSCOPE_GOLAYOUT_H

#include <stdint.h>

struct go_layout {
    uint32_t g_m, m_ncgocall, m_procid;
};

/* 0 when all three were found in path's DWARF; -1 otherwise (no DWARF, not Go, a field missing). */
int go_layout_read(const char *path, struct go_layout *out);

#endif
