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
/* The same three from a table of the Go releases checked (1.21 to 1.26), for an executable whose
 * build info gives go_version: 0 when the release is in it and runs no GOEXPERIMENT (runtime.Version
 * then ends in " X:..."), -1 otherwise. Costs nothing, where the DWARF costs its inflation (~90 ms for
 * go-sqlite3's test binary), which the program would otherwise wait for at its start. */
int go_layout_of_release(const char *go_version, struct go_layout *out);

/* path's DWARF, opened once and kept for the next reader of the same file (go_layout_read at the
 * start of a run, goheap.c's layout and the symbolizer at its end): inflating a large Go binary's
 * compressed DWARF takes ~70-100 ms (the go-sqlite3 test binary). The last 8 files asked for are
 * kept, and any file held. NULL when it has none. The caller must not dwarf_end it; it stays valid
 * until 8 other files have been asked for, unless held. Thread-safe. */
struct Dwarf;
struct Dwarf *go_dwarf_open(const char *path);
/* The same, and kept until go_dwarf_release (each hold is released once). */
struct Dwarf *go_dwarf_hold(const char *path);
void go_dwarf_release(struct Dwarf *dw);
/* Held while reading any of these files' DWARF when another thread may read it too (libdw's
 * readers share caches without locks; opening or holding may let an unheld file go): the report's
 * symbolizer reads ahead in a thread of its own while the program runs (output/symwarm.h). */
void go_dwarf_lock(void);
void go_dwarf_unlock(void);

#endif
