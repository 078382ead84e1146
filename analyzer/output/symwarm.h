/* The report's symbolizer, read ahead while the program runs.
 *
 * Symbolizing the few hundred addresses of a report is cheap; what costs is what the first
 * address of each module and compilation unit needs: libdwfl inflating libc's and ld.so's debug
 * info, the executable's table of units, the index of a unit's functions and its line table (the
 * SQLite amalgamation is one unit of 250,000 lines). That was ~200 ms of go-sqlite3's suite's
 * wait after its end. A thread at idle priority (SCHED_IDLE: it takes no CPU time the program
 * wants) does it for the addresses of every stack as the stacks arrive, and the report takes the
 * symbolizer over. It only reads ahead: every name, file and line is still resolved by the
 * report, from the process as it ended (symbolizer_sync), so the report is the same with or
 * without it. Each step holds go_dwarf_lock (golayout.h) while it reads; the loop that drains
 * the channel takes that lock only for a Go child of a release outside golayout.c's table and
 * for --interval's live table, and may then wait for the step in progress (at idle priority: if
 * the program keeps both CPUs busy, until it blocks on a full channel). */
#ifndef CGOSCOPE_SYMWARM_H
#define CGOSCOPE_SYMWARM_H

#include "analysis/process.h"
#include "output/symbolize.h"

struct symwarm;

/* NULL when the thread cannot start: the report then does it all itself. exe (or NULL): the
 * program's executable, whose DWARF the thread opens and inflates first (golayout.h keeps it), in
 * parallel with the program's start. */
struct symwarm *symwarm_start(const char *exe);
/* From the thread that feeds the processes (between passes): hands the thread what is new in
 * them since the last call, modules and stacks. The stacks' addresses are read in place: the
 * processes must outlive symwarm_stop. */
void symwarm_feed(struct symwarm *w, const struct procset *ps);
/* Stops the thread (whatever it has not read yet is left to the report) and joins it. */
void symwarm_stop(struct symwarm *w);
/* The symbolizer read ahead for p (a copy of a fed process, or the process itself), made ready
 * for it, or NULL (none, or it does not fit p: its modules changed). The caller owns it. Stops
 * the thread first. */
struct symbolizer *symwarm_take(struct symwarm *w, const struct process *p);
void symwarm_free(struct symwarm *w);

#endif
