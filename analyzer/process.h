/* What the analyzer knows of one traced process, built from its records. */
#ifndef CGOSCOPE_PROCESS_H
#define CGOSCOPE_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "liveset.h"
#include "u64map.h"

struct module_info {
    char *path;
    uint64_t bias, lo, hi;
    int is_exe;
};

struct site_info {
    uint32_t id;
    int kind; /* enum cgs_site_kind */
    uint64_t wrapper;
    char *symbol;   /* "<pkgpath>._cgo_<hash>_Cfunc_<name>" */
    char *package;  /* "<pkgpath>" */
    char *function; /* "<name>" */
};

struct stack_info {
    uint64_t id;
    uint32_t site;
    uint32_t nc, n;
    uint64_t *pcs;
};

enum exit_kind { EXIT_UNKNOWN = 0, EXIT_CODE = 1, EXIT_SIGNAL = 2 };

struct process {
    int attached; /* a PROC record was seen: the shim ran in this process */
    uint32_t pid, ppid;
    char *exe;
    char **argv;
    int argc;
    int exit_kind, exit_value;
    uint64_t events_lost;
    uint64_t corrupt_records;
    char corrupt_what[160];

    struct module_info *modules;
    size_t nmodules;
    struct site_info *sites;
    size_t nsites;
    struct u64map stack_index; /* id -> index+1 into stacks */
    struct stack_info *stacks;
    size_t nstacks, capstacks;

    struct liveset live;
    uint64_t allocations, frees;
    int out_of_memory;
};

void process_init(struct process *p);
void process_free(struct process *p);
/* Feeds a run of whole records written by one thread. Bad records are counted and the rest of
 * the run is skipped; returns 0 when all was well, -1 otherwise. */
int process_feed(struct process *p, uint32_t tid, const uint8_t *data, size_t len);
const struct stack_info *process_stack(const struct process *p, uint64_t id);
const struct site_info *process_site(const struct process *p, uint32_t id);
const struct module_info *process_exe(const struct process *p);

#endif
