/* What the analyzer knows of one traced process, built from its records. */
#ifndef CGOSCOPE_PROCESS_H
#define CGOSCOPE_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "cgoscope/record.h"
#include "analysis/growth.h"
#include "analysis/lifetime.h"
#include "analysis/liveset.h"
#include "analysis/reach.h"
#include "analysis/reorder.h"
#include "util/u64map.h"

struct module_info {
    char *path;
    uint64_t bias, lo, hi;
    int is_exe;
};

struct site_info {
    uint32_t id;
    int kind; /* enum cgs_site_kind */
    uint64_t wrapper;
    char *symbol;   /* "<pkgpath>._cgo_<hash>_Cfunc_<name>", or the stub "<pkgpath>._Cfunc_<name>" */
    char *package;  /* "<pkgpath>" */
    char *function; /* "<name>" */
};

struct stack_info {
    uint64_t id;
    uint32_t site;
    uint32_t nc, n;
    uint64_t *pcs;
};

/* Go->C calls of one cgo site, or C->Go calls of one exported function, over all threads. */
struct call_stats {
    uint32_t site;      /* cgo site index (calls) */
    uint64_t key;       /* return address in the export's C wrapper (callbacks) */
    uint64_t calls, timed, ticks_sum, ticks_max, ticks_min;
    uint64_t exact_calls, exact_ticks; /* calls timed because every call was (not sampled) */
    uint32_t flags; /* CGS_SF_* of any thread */
    uint64_t hist[CGS_HIST_BUCKETS];
};

struct caller_sample {
    uint32_t site;
    uint64_t pcs[4];
    uint64_t count; /* timed calls seen from here */
    uint64_t exact; /* of which exact (not sampled) */
};

struct timeline_event {
    uint32_t tid, site;
    uint64_t t0, t1;
};

#define TIMELINE_CAP 200000

/* Ticks of the shim's clock, related to CLOCK_MONOTONIC at start and end. */
struct proc_clock {
    int source; /* the clock the shim stamps with: CGS_CLOCK_TSC or CGS_CLOCK_MONO */
    uint64_t start_ticks, start_ns, end_ticks, end_ns;
    /* the clock rate estimated when the run started, for spacing snapshots of live memory
     * before the exact rate is known (process_set_rate) */
    double est_ticks_per_ns;
    uint64_t last_ts; /* the latest stamp of an event applied */
};

/* cgo crossings, from the threads' statistics chunks (process_add_stats). */
struct proc_crossings {
    struct call_stats *calls; /* by site index */
    size_t ncalls;
    struct call_stats *callbacks;
    size_t ncallbacks;
    struct caller_sample *callers;
    size_t ncallers;
    uint64_t gap_min, gap_count, callers_dropped;
    uint64_t store_free_calls; /* of the cgo calls counted, those counted with no store in the hook */
    int have_stats;
};

/* Cgo calls of --timeline, at most TIMELINE_CAP of them. */
struct proc_timeline {
    struct timeline_event *events;
    size_t n;
    uint64_t dropped; /* events seen beyond the cap (a uniform sample is kept) */
    uint64_t rng;
};

enum exit_kind {
    EXIT_UNKNOWN = 0,
    EXIT_CODE = 1,
    EXIT_SIGNAL = 2,
    EXIT_EXEC = 3, /* the program replaced itself (exec): the next entry of the same pid goes on */
};

struct process {
    int attached; /* a PROC record was seen: the shim ran in this process */
    char untraced_why[200]; /* not attached: why, when cgoscope could tell (descendants.c) */
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
    struct lifetime life; /* frees of addresses that are not live blocks (lifetime.h) */
    uint64_t allocations, frees;
    uint32_t helper_pid;  /* the shim's exit helper, which keeps the address space after the end */
    struct reach reach;   /* what still points to each unfreed block (reach.h) */
    int reach_done;       /* scanned, or found not scannable: its helper is gone */
    int out_of_memory;
    /* With reorder_on, allocation events wait in `order` until a cut (process_cut) says every
     * event up to a time has been read, and are applied in time order (reorder.h). */
    int reorder_on;
    struct reorder order;
    uint64_t last_cut; /* events stamped at or before it need not wait (reorder.h) */

    struct proc_clock clock;
    struct proc_crossings cx;
    int layout_looked; /* cgoscope run looked for its executable's Go layout (cmd_run.c) */

    struct growth growth; /* live memory over time (growth.h) */

    struct proc_timeline tl;
};

/* The processes of one traced run, by pid, in the order they first appeared. */
struct procset {
    struct process **v;
    size_t n, cap;
    double ticks_per_ns; /* given to each new process (process_set_rate) */
    int reorder;         /* given to each new process: hold events for cuts (reorder.h) */
};

/* A cut: every event stamped at or before these times (in the TSC's ticks and in
 * CLOCK_MONOTONIC nanoseconds, for processes on either clock) has been read. */
struct cut {
    uint64_t tsc, mono;
};

void procset_init(struct procset *s);
void procset_free(struct procset *s);
/* The process with this pid, created (empty, pid set) if new; NULL when memory runs out. */
struct process *procset_get(struct procset *s, uint32_t pid, int *created);
/* A new, empty entry for pid after all the others (a pid that exec'd gets one per program). */
struct process *procset_add(struct procset *s, uint32_t pid);
/* Forgets the processes that never attached and gave no reason why (a fork seen in /proc for a
 * moment, like the short-lived probes Go's runtime starts). */
void procset_drop_unseen(struct procset *s, uint32_t keep_pid);
/* A contiguous copy of the processes, for output (the set keeps ownership). */
struct process *procset_flat(const struct procset *s);

void process_init(struct process *p);
void process_free(struct process *p);
/* Feeds a run of whole records written by one thread. Bad records are counted and the rest of
 * the run is skipped; returns 0 when all was well, -1 otherwise. */
int process_feed(struct process *p, uint32_t tid, const uint8_t *data, size_t len);
/* Applies the held events stamped at or before w (the process's own clock). */
void process_cut(struct process *p, uint64_t w);
void procset_cut(struct procset *s, struct cut c);
const struct stack_info *process_stack(const struct process *p, uint64_t id);
const struct site_info *process_site(const struct process *p, uint32_t id);
const struct module_info *process_exe(const struct process *p);
/* How it ended, from a waitpid status. */
void process_set_exit(struct process *p, int status);
/* Replaces argv with NUL-separated arguments. */
void process_set_argv(struct process *p, const char *buf, size_t len);
/* Adds one thread's statistics chunk (copied out of the channel). Returns -1 if it is corrupt. */
int process_add_stats(struct process *p, const struct cgs_stats_chunk *c);
/* The clock rate as estimated at start (ticks per ns; 1 for CLOCK_MONOTONIC): snapshots of live
 * memory are taken every 100 ms of it. */
void process_set_rate(struct process *p, double ticks_per_ns);
/* A last snapshot of live memory: the program ended. */
void process_finish(struct process *p);
/* Nanoseconds for a duration in the shim's clock ticks. */
double process_ticks_to_ns(const struct process *p, double ticks);

#endif
