/* Starting the traced program (launch.h). */
#define _GNU_SOURCE
#include "cmd/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cgoscope/record.h"
#include "util/version.h"

volatile sig_atomic_t launch_stop_requested;
static volatile sig_atomic_t child_pid; /* where SIGTERM and SIGHUP are passed on */

static void request_stop(int sig)
{
    (void)sig;
    launch_stop_requested = 1;
}

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

int cgoscope_find_shim(char *out, size_t outlen)
{
    const char *env = getenv("CGOSCOPE_SHIM");
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
    } else {
        char self[PATH_MAX - 64];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return -1;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = 0;
        snprintf(out, outlen, "%s/%s/libcgoscope.so", self, CGOSCOPE_BIN_TO_SHIM);
    }
    char *real = realpath(out, NULL);
    if (!real)
        return -1;
    snprintf(out, outlen, "%s", real);
    free(real);
    return access(out, R_OK) == 0 ? 0 : -1;
}

void launch_prepare_parent(void)
{
    /* The terminal's Ctrl-C and Ctrl-\ go to the program too; cgoscope stays to report. Ctrl-C
     * is also a request to stop (as --duration is): SIGTERM to the program, SIGKILL after
     * --kill-after, and exit 0 when it ended because of it. SIGTERM and SIGHUP are passed on. */
    struct sigaction stop = {0};
    stop.sa_handler = request_stop;
    sigaction(SIGINT, &stop, NULL);
    signal(SIGQUIT, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa = {0};
    sa.sa_handler = forward_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* In the forked child: the environment for the shim, the signals as the program expects them,
 * exec. Never returns; an exec that fails writes its errno into errpipe. */
static void exec_child(const struct launch *l, char **argv, const struct channel *ch, int errpipe)
{
    char val[128];
    if (!l->follow)
        setenv(CGS_ENV_FOLLOW, "0", 1);
    unsetenv(CGS_ENV_TRACE);
    if (l->timing)
        setenv(CGS_ENV_TIMING, l->timing, 1);
    if (l->timeline)
        setenv(CGS_ENV_TIMELINE, l->timeline, 1);
    /* The shim maps the channel and closes this descriptor at start-up. */
    int fd = fcntl(ch->fd, F_DUPFD, 3);
    channel_spec(ch, fd, val, sizeof val);
    setenv(CGS_ENV_CHANNEL, val, 1);
    const char *old = getenv("LD_PRELOAD");
    char *pre;
    if (old && strstr(old, l->shim)) {
        pre = (char *)old; /* already there (after `eval "$(cgoscope env)"`) */
    } else if (old && *old) {
        if (asprintf(&pre, "%s:%s", l->shim, old) < 0)
            _exit(LAUNCH_EXIT_TOOL_FAILED);
    } else {
        pre = (char *)l->shim;
    }
    setenv("LD_PRELOAD", pre, 1);
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    int e = errno;
    if (write(errpipe, &e, sizeof e) != sizeof e)
        _exit(127);
    _exit(e == ENOENT ? 127 : 126);
}

pid_t launch_program(const struct launch *l, char **argv, const struct channel *ch, int *exec_errno, char *err,
                     size_t errlen)
{
    *exec_errno = 0;
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(errpipe[0]);
        close(errpipe[1]);
        return -1;
    }
    if (pid == 0) {
        close(errpipe[0]);
        exec_child(l, argv, ch, errpipe[1]);
    }
    child_pid = pid;
    close(errpipe[1]);
    int e = 0;
    if (read(errpipe[0], &e, sizeof e) == (ssize_t)sizeof e)
        *exec_errno = e;
    close(errpipe[0]);
    return pid;
}

void launch_done(void) { child_pid = 0; }
