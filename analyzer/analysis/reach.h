/*
 * Reachability of the blocks a process left unfreed (docs/reachability.md): lost or held.
 *
 * When a traced process ends, the shim's exit helper still shares its address space
 * (docs/cgo-facts.md §9), so the analyzer can read the memory exactly as the program left it.
 * The scan is conservative, as memcheck's and LeakSanitizer's are: every aligned word that
 * points into a live block is a pointer to it. Roots are the writable memory of the process that
 * is not malloc's heap: globals of every loaded object, the Go heap and goroutine stacks, thread
 * stacks and thread-local storage. Each unfreed block gets memcheck's classes:
 *  - definitely lost: nothing points to its start, and no lost block leads to it;
 *  - indirectly lost: reached only from lost blocks;
 *  - possibly lost: reached from a root, but only through a pointer into its middle somewhere;
 *  - still reachable: a chain of pointers to block starts leads to it from a root.
 */
#ifndef CGOSCOPE_REACH_H
#define CGOSCOPE_REACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum reach_kind {
    REACH_UNCLASSIFIED = 0, /* no scan was made (see struct reach's why) */
    REACH_DEFINITE = 1,
    REACH_INDIRECT = 2,
    REACH_POSSIBLE = 3,
    REACH_REACHABLE = 4,
};

/* Where the root of a held block's chain lies. GLOBAL is an object's data or bss: the report
 * names the symbol and tells Go globals from C globals by it. */
enum reach_root {
    ROOT_NONE = 0,
    ROOT_GLOBAL = 1,
    ROOT_GO_HEAP = 2,
    ROOT_GO_STACK = 3,
    ROOT_C_STACK = 4,
    ROOT_TLS = 5,
    ROOT_C_HEAP = 6, /* other anonymous memory the program mapped itself */
    ROOT_MAX = 6,
};

struct reach_entry {
    uint64_t addr;      /* the block */
    uint64_t root_addr; /* the root word that starts its chain (held and possibly lost blocks) */
    uint8_t kind;       /* enum reach_kind */
    uint8_t root;       /* enum reach_root */
    uint8_t pad[6];
};

enum reach_state { REACH_NOT_SCANNED = 0, REACH_SCANNED = 1 };

struct reach {
    int state;
    char why[200]; /* not scanned: why */
    struct reach_entry *v; /* by address */
    size_t n;
    uint64_t scanned_bytes; /* root memory and block contents read */
    int go_heap_precise;    /* the Go heap's spans and stacks were known (goheap.h) */
    double seconds;
};

struct process;

void reach_init(struct reach *r);
void reach_free(struct reach *r);
/* Scans the memory of the address space that task (the exit helper) shares with the ended
 * process p, and classifies every block p->live holds. On failure r->why says why. */
int reach_scan(struct process *p, pid_t task);
struct procset;
/* After a run: scans every ended process of ps whose exit helper holds its memory, then lets the
 * helper go. */
void reach_scan_procset(struct procset *ps);
/* The same from the memory image the shim's helper wrote when the process ended in file mode
 * (`cgoscope env`): "<trace>.<helper pid>.mem". */
int reach_scan_image(struct process *p, const char *path);
/* The same for one process whose records have all been read (once; then the helper goes). */
void reach_scan_ended(struct process *p);
/* The entry of the block at addr, or NULL. */
const struct reach_entry *reach_find(const struct reach *r, uint64_t addr);
const char *reach_kind_name(int kind);
const char *reach_root_name(int root);
/* Sets a process's classification from a saved trace's block (trace.c), a malloc'ed buffer of at
 * least len bytes. Returns 1 when the reach took the buffer over (the caller lets it go), 0 when
 * it was read and is still the caller's, -1 when it is damaged (still the caller's, its content
 * changed). */
int reach_take_saved(struct reach *r, void *data, size_t len);
/* The bytes a trace keeps of it; *len set. Caller frees. */
void *reach_serialize(const struct reach *r, size_t *len);
/* The largest reach_serialize gives for a process of nblocks blocks unfreed (a bound for readers). */
uint64_t reach_saved_max(uint64_t nblocks);

#endif
