/*
 * Starting the traced program (`cgoscope run`): the shim first in LD_PRELOAD, the channel named
 * in CGOSCOPE_CHANNEL, and cgoscope set up as the parent of the run (docs/architecture.md, step 1;
 * invariant 3: the program's signals are its own).
 */
#ifndef CGOSCOPE_LAUNCH_H
#define CGOSCOPE_LAUNCH_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "ingest/channel.h"

/* cgoscope's exit status when it failed itself, before the program ran. */
#define LAUNCH_EXIT_TOOL_FAILED 125

/* What the program's environment tells its shim. */
struct launch {
    const char *shim;     /* libcgoscope.so, put first in LD_PRELOAD */
    int follow;           /* 0: CGOSCOPE_FOLLOW=0, only the program itself is traced */
    const char *timing;   /* CGOSCOPE_TIMING, or NULL */
    const char *timeline; /* CGOSCOPE_TIMELINE, or NULL */
};

/* Set by Ctrl-C (SIGINT) on cgoscope once launch_prepare_parent ran: stop the program, then report. */
extern volatile sig_atomic_t launch_stop_requested;

/* The shim libcgoscope.so: $CGOSCOPE_SHIM, or ../lib/cgoscope/ beside the cgoscope binary. */
int cgoscope_find_shim(char *out, size_t outlen);

/* cgoscope as the parent of the run: the subreaper of what the program starts; the terminal's
 * Ctrl-C and Ctrl-\ go to the program, and Ctrl-C also sets launch_stop_requested; SIGTERM and
 * SIGHUP are passed on to the program once it runs. */
void launch_prepare_parent(void);

/* Forks and execs argv with the shim and the channel ch. Returns the program's pid, or -1 when it
 * could not be started (message in err). *exec_errno is then 0, or the errno of an exec that
 * failed in the child (which has ended: wait for it as for the program). */
pid_t launch_program(const struct launch *l, char **argv, const struct channel *ch, int *exec_errno, char *err,
                     size_t errlen);

/* The program has ended and been waited for: signals are no longer passed on. */
void launch_done(void);

#endif
