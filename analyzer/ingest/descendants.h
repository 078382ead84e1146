/*
 * The processes of a run that cgoscope did not start itself: what the program started, and
 * what those started. The traced ones announce themselves (a PROC record); the others would go
 * unseen, so cgoscope looks for them in /proc and says in the report why they were not traced
 * (LD_PRELOAD removed from their environment, a static binary, ...). And since cgoscope is the
 * subreaper of the run, a process the program leaves running (a daemon) becomes its child: the
 * run ends when the last of them has.
 */
#ifndef CGOSCOPE_DESCENDANTS_H
#define CGOSCOPE_DESCENDANTS_H

#include <signal.h>
#include <sys/types.h>

#include "ingest/channel.h"
#include "analysis/process.h"
#include "util/u64map.h"

struct descendants {
    pid_t main_pid, self;
    struct u64map ppid; /* pid -> ppid + 1, for every process of the system seen in /proc */
    double last_scan;
};

void descendants_init(struct descendants *d, pid_t main_pid);
void descendants_free(struct descendants *d);
/* At most every 50 ms: gives each process the traced ones started an entry in ps (if it has
 * none yet) and, while it has not attached, notes why it is not traced. A process that lives
 * less than that may go unseen. */
void descendants_scan(struct descendants *d, struct procset *ps);
/* The program has ended: while processes it left running remain, keeps draining the channel,
 * reaps them (noting how each ended) and waits, until none is left or *stop is set. Says on
 * stderr which processes it waits for. */
void descendants_wait(struct descendants *d, size_t (*drain)(void *arg), void *arg, struct procset *ps,
                      volatile sig_atomic_t *stop);

#endif
