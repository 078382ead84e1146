/*
 * What the reachability scan (reach.h) needs to know of the Go runtime's heap in an ended
 * process: where its spans and goroutine stacks are. Read from the executable's DWARF (the
 * offsets move between Go versions: docs/cgo-facts.md §3) and from the dead process's memory.
 *
 * Without it the scan treats all of the Go heap's memory as roots, freed spans and the dead
 * part of every goroutine stack included, where stale copies of a pointer to a lost block can
 * make it look held.
 */
#ifndef CGOSCOPE_GOHEAP_H
#define CGOSCOPE_GOHEAP_H

#include <stdint.h>

struct go_heap_layout {
    uint64_t mheap;  /* address of runtime.mheap_ (load bias added) */
    uint64_t allgs;  /* address of runtime.allgs, a []*g */
    uint64_t allm;   /* address of runtime.allm, the first *m of the list */
    uint32_t m_g0, m_curg, m_alllink;
    uint64_t threadentry; /* runtime/cgo's thread start routine (load bias added), or 0 */
    uint32_t mheap_allspans; /* []*mspan */
    uint32_t span_start, span_npages, span_state;
    uint32_t g_stack_lo, g_stack_hi, g_sched_sp, g_syscallsp, g_status;
    int from_code; /* no DWARF: offsets from the table of Go releases, addresses from the code */
    /* With from_code (load bias added): the executable's .text, and the Go code in it; the rest
     * is C code, where threadentry lies (then unknown: reach.c finds it in the threads' TLS). */
    uint64_t text_lo, text_hi, gotext_lo, gotext_hi;
};

/* 0 when everything was found: in path's DWARF, or, in an executable without DWARF by a Go
 * release goheap.c knows, in its code; -1 otherwise. bias: the executable's load bias. */
int go_heap_layout_read(const char *path, uint64_t bias, struct go_heap_layout *out);

#define GO_PAGE_SIZE 8192u /* runtime._PageSize, the same on every platform */
enum { GO_SPAN_IN_USE = 1, GO_SPAN_MANUAL = 2 };
enum { GO_G_RUNNING = 2, GO_G_SYSCALL = 3, GO_G_DEAD = 6, GO_G_SCAN = 0x1000 };

#endif
