/* `cgoscope run`: start the program with the shim, drain its records while it runs, report. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "channel.h"
#include "commands.h"
#include "descendants.h"
#include "gate.h"
#include "golayout.h"
#include "images.h"
#include "live_table.h"
#include "output.h"
#include "preflight.h"
#include "process.h"
#include "reach.h"
#include "trace.h"
#include "version.h"

#define EXIT_TOOL_FAILED 125
#define EXIT_CANNOT_TRACE 120

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t stop_requested; /* Ctrl-C: stop the program, then report */

static void request_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

static void run_usage(FILE *out)
{
    fprintf(out,
            "Usage: cgoscope run [options] -- PROGRAM [ARGS...]\n"
            "\n"
            "Runs PROGRAM with the cgoscope shim preloaded and, when it ends, prints to stderr every\n"
            "C allocation it never freed, grouped by stack, with the Go function and line behind it.\n"
            "cgoscope exits with the program's own status (128+N if signal N ended it).\n"
            "\n"
            "Options:\n"
            "  --json FILE        also write the report as JSON (docs/json-report.md)\n"
            "  -o, --output FILE  also save the raw trace; `cgoscope report FILE` reads it later\n"
            "  --timing MODE      how cgo calls are timed: sampled:N (default sampled:64: the first\n"
            "                     calls of each site, then 1 in N at random), full (every call), off\n"
            "  --timeline FILE    the timed cgo calls per thread as a Chrome/Perfetto trace (JSON)\n"
            "  --no-follow        trace only PROGRAM, not the processes it starts\n"
            "  --duration S       stop the program after S seconds: SIGTERM, then SIGKILL after\n"
            "                     --kill-after S (default 5); exit 0 if it ended because of it\n"
            "                     (Ctrl-C on cgoscope does the same)\n"
            "  --interval S       every S seconds, a table of the sites holding the most live C\n"
            "                     memory and how fast it grows, on stderr\n"
            "  --plot FILE.svg    a chart of live C memory over time, total and top sites\n"
            "  --show-runtime     also list leaks of the Go runtime and system libraries\n"
            "  --full-stacks      also show cgo glue frames (runtime.cgocall, _Cfunc_ stubs)\n"
            "  -q, --quiet        no text report (use with --json)\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit status: the program's; 125 if cgoscope itself failed before the program ran;\n"
            "120 if the program cannot be traced (a static binary);\n"
            "126 if PROGRAM cannot be executed; 127 if it is not found.\n");
    gate_usage(out);
}

struct run_sink {
    struct procset *procs;
    struct trace_writer *trace;
    struct channel *ch;
    struct cut pass; /* the cut the pass in progress allows once it has read everything */
};

static struct process *process_of(struct run_sink *s, uint32_t pid)
{
    return procset_get(s->procs, pid, NULL);
}

static void sink(void *arg, uint32_t pid, uint32_t tid, const uint8_t *data, size_t len)
{
    struct run_sink *s = arg;
    if (s->trace)
        trace_write_block(s->trace, TRACE_RECORDS, pid, tid, data, len);
    procset_feed(s->procs, pid, tid, data, len);
}

static void stats_sink(void *arg, uint32_t pid, const struct cgs_stats_chunk *c)
{
    struct run_sink *s = arg;
    if (s->trace)
        trace_write_block(s->trace, TRACE_STATS, pid, c->tid, c, sizeof *c);
    struct process *p = process_of(s, pid);
    if (p)
        process_add_stats(p, c);
}


/* Where the Go runtime of executable path keeps what the shim's store-free cgo calls read
 * (golayout.h), from its DWARF (~10 ms), into the channel's table: once per file. Without DWARF
 * (or not Go) nothing is written, and the shim counts every call in the hook. */
static void publish_go_layout(struct channel *ch, const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return;
    struct cgs_shm_header *h = ch->h;
    uint32_t n = atomic_load(&h->go_layouts_n);
    for (uint32_t i = 0; i < n && i < CGS_GO_LAYOUTS; i++)
        if (h->go_layouts[i].exe_dev == (uint64_t)st.st_dev && h->go_layouts[i].exe_ino == (uint64_t)st.st_ino)
            return;
    struct go_layout gl;
    if (n >= CGS_GO_LAYOUTS || go_layout_read(path, &gl) != 0)
        return;
    struct cgs_go_layout *e = &h->go_layouts[n];
    e->g_m = gl.g_m;
    e->m_ncgocall = gl.m_ncgocall;
    e->m_procid = gl.m_procid;
    e->exe_dev = (uint64_t)st.st_dev;
    e->exe_ino = (uint64_t)st.st_ino;
    atomic_store_explicit(&e->ready, 1, memory_order_release);
    atomic_store(&h->go_layouts_n, n + 1);
}

/* The same for every process of the run that attached since the last look (a Go program the
 * program starts: through sh -c, os/exec, a test runner). */
static void publish_new_layouts(struct channel *ch, struct procset *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct process *p = ps->v[i];
        if (p->attached && p->exe && !p->layout_looked) {
            p->layout_looked = 1;
            publish_go_layout(ch, p->exe);
        }
    }
}

/* Descendants whose parent died before them are reparented to cgoscope (a subreaper): reap
 * them, noting how they ended. */
static void reap_orphans(struct procset *ps, pid_t main_pid)
{
    int status;
    pid_t w;
    while ((w = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
        if (w == main_pid)
            continue;
        for (size_t i = 0; i < ps->n; i++)
            if (ps->v[i]->pid == (uint32_t)w)
                process_set_exit(ps->v[i], status);
    }
}

/* Margins under the reading time for a cut (reorder.h): a stamp may be read a few hundred
 * cycles ahead of its event, and the TSCs of two CPUs may differ by a little. */
#define CUT_MARGIN_TICKS 100000ull /* ~20-50 us of the TSC */
#define CUT_MARGIN_NS 50000ull
/* Records handed over per pass at most: each pass begins with the clock, so shorter passes let
 * the cuts follow the program closely (what waits for them stays small). */
#define DRAIN_BYTES ((size_t)1 << 20)

/* c, lowered below bound (the least stamp of an event not read yet; UINT64_MAX: none). */
static struct cut cut_below(struct cut c, uint64_t bound)
{
    uint64_t b = bound ? bound - 1 : 0;
    if (b < c.tsc)
        c.tsc = b;
    if (b < c.mono)
        c.mono = b;
    return c;
}

/* One pass over the channel, and the cut it allows: everything stamped before the pass began
 * (less the margin) has been committed by now, so what was read of it can be applied in order. */
static size_t drain_pass(void *arg)
{
    struct run_sink *s = arg;
    struct cut c = {0, 0};
    struct timespec ts;
#if defined(__x86_64__)
    _mm_lfence();
    uint64_t tsc = __rdtsc();
    _mm_lfence(); /* read before any descriptor of this pass */
    c.tsc = tsc > CUT_MARGIN_TICKS ? tsc - CUT_MARGIN_TICKS : 0;
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    c.mono = mono > CUT_MARGIN_NS ? mono - CUT_MARGIN_NS : 0;
    s->pass = c;
    uint64_t bound;
    size_t n = channel_drain_some(s->ch, sink, s, DRAIN_BYTES, &bound);
    c = cut_below(c, bound); /* stopped early: the chunks not reached bound what is read */
    if (s->trace && n)
        trace_write_block(s->trace, TRACE_CUT, 0, 0, &c, sizeof c);
    procset_cut(s->procs, c);
    publish_new_layouts(s->ch, s->procs);
    /* Processes whose every record has been read: what still points to their blocks is read
     * now, and their memory let go (reach.h). */
    for (size_t i = 0; i < s->ch->nended; i++)
        for (size_t k = s->procs->n; k-- > 0;)
            if (s->procs->v[k]->pid == s->ch->ended[i]) {
                reach_scan_ended(s->procs->v[k]);
                break;
            }
    s->ch->nended = 0;
    return n;
}

/* Inside a pass, after each chunk: the events before `bound` (and before the pass began) are all
 * read, so they can go (reorder.h). Keeps what waits small when a pass reads a backlog. */
static void reached(void *arg, uint64_t bound)
{
    struct run_sink *s = arg;
    struct cut c = cut_below(s->pass, bound);
    if (s->trace)
        trace_write_block(s->trace, TRACE_CUT, 0, 0, &c, sizeof c);
    procset_cut(s->procs, c);
}

/* The shim's clock now, next to CLOCK_MONOTONIC: with the pair it sent at start-up, this gives
 * the TSC's rate. */
static void clock_sample(uint64_t *ticks, uint64_t *ns)
{
    struct timespec ts;
#if defined(__x86_64__)
    unsigned aux;
    *ticks = __rdtscp(&aux);
#else
    *ticks = 0;
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static void nap(long us);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ticks of the shim's clock per nanosecond, measured over 2 ms: snapshots of live memory are
 * spaced with it until the exact rate over the whole run is known. */
static double measure_tick_rate(void)
{
    uint64_t t0, n0, t1, n1;
    clock_sample(&t0, &n0);
    nap(2000); /* only spaces snapshots: the exact rate comes from the whole run */
    clock_sample(&t1, &n1);
    return n1 > n0 && t1 > t0 ? (double)(t1 - t0) / (double)(n1 - n0) : 1.0;
}

static int valid_timing(const char *m)
{
    if (strcmp(m, "full") == 0 || strcmp(m, "off") == 0)
        return 1;
    if (strncmp(m, "sampled:", 8) != 0)
        return 0;
    char *end;
    unsigned long n = strtoul(m + 8, &end, 10);
    return end != m + 8 && *end == 0 && n >= 1 && n <= 1u << 20;
}

static const char *child_timing, *child_timeline;

static int child_follow = 1;

static void exec_child(char **argv, const char *shim, const struct channel *ch, int errpipe)
{
    char val[128];
    if (!child_follow)
        setenv(CGS_ENV_FOLLOW, "0", 1);
    unsetenv(CGS_ENV_TRACE);
    if (child_timing)
        setenv(CGS_ENV_TIMING, child_timing, 1);
    if (child_timeline)
        setenv(CGS_ENV_TIMELINE, child_timeline, 1);
    /* The shim maps the channel and closes this descriptor at start-up. */
    int fd = fcntl(ch->fd, F_DUPFD, 3);
    channel_spec(ch, fd, val, sizeof val);
    setenv(CGS_ENV_CHANNEL, val, 1);
    const char *old = getenv("LD_PRELOAD");
    char *pre;
    if (old && strstr(old, shim)) {
        pre = (char *)old; /* already there (after `eval "$(cgoscope env)"`) */
    } else if (old && *old) {
        if (asprintf(&pre, "%s:%s", shim, old) < 0)
            _exit(EXIT_TOOL_FAILED);
    } else {
        pre = (char *)shim;
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

static void nap(long us)
{
    struct timespec d = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&d, NULL);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", required_argument, NULL, 'j'}, {"output", required_argument, NULL, 'o'},
        {"show-runtime", no_argument, NULL, 'r'}, {"full-stacks", no_argument, NULL, 'F'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},       {"timing", required_argument, NULL, 't'},
        {"timeline", required_argument, NULL, 'T'}, {"no-follow", no_argument, NULL, 'N'},
        {"duration", required_argument, NULL, 'D'}, {"kill-after", required_argument, NULL, 'K'},
        {"interval", required_argument, NULL, 'I'}, {"plot", required_argument, NULL, 'P'},
        GATE_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct output_options out = {0};
    struct gate gate;
    gate_init(&gate);
    out.gate = &gate;
    const char *trace_path = NULL;
    const char *timing = NULL;
    double duration = 0, kill_after = 5, interval = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': out.json_path = optarg; break;
        case 'o': trace_path = optarg; break;
        case 'r': out.show_runtime = 1; break;
        case 'F': out.full_stacks = 1; break;
        case 'q': out.quiet = 1; break;
        case 't':
            if (!valid_timing(optarg)) {
                fprintf(stderr, "cgoscope run: --timing takes full, off or sampled:N (N from 1 to 1048576), not '%s'\n", optarg);
                return 2;
            }
            timing = optarg;
            break;
        case 'T': out.timeline_path = optarg; break;
        case 'N': child_follow = 0; break;
        case 'D':
        case 'K':
        case 'I': {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0) || v > 1e7) {
                fprintf(stderr, "cgoscope run: --%s takes a number of seconds greater than 0, not '%s'\n",
                        c == 'D' ? "duration" : c == 'K' ? "kill-after" : "interval", optarg);
                return 2;
            }
            *(c == 'D' ? &duration : c == 'K' ? &kill_after : &interval) = v;
            break;
        }
        case 'P': out.plot_path = optarg; break;
        case 'h': run_usage(stdout); return 0;
        default: {
            int g = gate_option(&gate, c, optarg);
            if (g == GATE_OK)
                break;
            if (g == GATE_NOT_MINE)
                run_usage(stderr);
            return g == GATE_EXIT_OK ? 0 : 2;
        }
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "cgoscope run: no program given.\n");
        run_usage(stderr);
        return 2;
    }
    char **prog = argv + optind;
    if (gate_prepare(&gate) != 0)
        return 2;

    struct preflight pf;
    preflight_check(prog[0], &pf);
    if (pf.found && pf.is_static) {
        int untraced = gate_run_untraced(&gate, prog, pf.path);
        if (untraced >= 0)
            return untraced;
        fprintf(stderr,
                "cgoscope: %s is a static binary: LD_PRELOAD cannot load into it, so nothing could be traced.\n"
                "  Rebuild it dynamically linked (drop -extldflags=-static / -static from the link flags;\n"
                "  cgo programs are dynamic by default) and run cgoscope again.\n",
                pf.path);
        return EXIT_CANNOT_TRACE;
    }
    if (pf.found && pf.is_setid)
        fprintf(stderr, "cgoscope: %s is setuid/setgid: the loader ignores LD_PRELOAD for it, so it runs untraced.\n",
                pf.path);

    char shim[PATH_MAX];
    if (cgoscope_find_shim(shim, sizeof shim) != 0) {
        fprintf(stderr, "cgoscope: cannot find the shim libcgoscope.so (looked at %s); "
                        "set CGOSCOPE_SHIM to its path or reinstall cgoscope\n", shim);
        return EXIT_TOOL_FAILED;
    }

    struct channel ch;
    char err[512];
    if (channel_create(&ch, CGS_CHANNEL_CHUNKS, err, sizeof err) != 0) {
        fprintf(stderr, "cgoscope: %s\n", err);
        return EXIT_TOOL_FAILED;
    }
    struct trace_writer tw, *twp = NULL;
    if (trace_path) {
        if (trace_writer_open(&tw, trace_path) != 0) {
            fprintf(stderr, "cgoscope: cannot create the trace %s: %s\n", trace_path, strerror(errno));
            channel_destroy(&ch);
            return EXIT_TOOL_FAILED;
        }
        twp = &tw;
    }

    struct procset procs;
    procset_init(&procs);
    procs.reorder = 1; /* events applied in time order, at each pass's cut (reorder.h) */
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        fprintf(stderr, "cgoscope: pipe: %s\n", strerror(errno));
        return EXIT_TOOL_FAILED;
    }
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

    child_timing = timing;
    child_timeline = out.timeline_path ? "1" : NULL;
    procs.ticks_per_ns = measure_tick_rate();
    if (twp)
        trace_write_block(twp, TRACE_RATE, 0, 0, &procs.ticks_per_ns, sizeof procs.ticks_per_ns);
    publish_go_layout(&ch, pf.found ? pf.path : NULL); /* before the program runs: its shim finds it */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "cgoscope: fork: %s\n", strerror(errno));
        return EXIT_TOOL_FAILED;
    }
    if (pid == 0) {
        close(errpipe[0]);
        exec_child(prog, shim, &ch, errpipe[1]);
    }
    child_pid = pid;
    close(errpipe[1]);
    int exec_errno = 0;
    ssize_t got = read(errpipe[0], &exec_errno, sizeof exec_errno);
    close(errpipe[0]);

    /* The program's own record: its argv as given, its exit status from waitpid. */
    struct process *main_proc = procset_get(&procs, (uint32_t)pid, NULL);
    if (main_proc) {
        main_proc->argc = argc - optind;
        main_proc->argv = calloc((size_t)main_proc->argc + 1, sizeof *main_proc->argv);
        for (int i = 0; main_proc->argv && i < main_proc->argc; i++)
            main_proc->argv[i] = strdup(prog[i]);
    }

    struct run_sink s = {&procs, twp, &ch, {0, 0}};
    channel_on_dead_stats(&ch, stats_sink, &s);
    ch.reached = reached; /* a cut after every chunk a pass hands over */
    ch.reached_arg = &s;
    struct descendants desc;
    descendants_init(&desc, pid);
    int status = 0;
    long idle = 50;
    double started = now_s(), term_sent_at = 0, next_table = interval > 0 ? started + interval : 0;
    int killed = 0, tables = 0;
    struct live_table lt;
    live_table_init(&lt, isatty(2));
    for (;;) {
        size_t n = drain_pass(&s);
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD))
            break;
        reap_orphans(&procs, pid);
        if (child_follow)
            descendants_scan(&desc, &procs);
        double t = now_s();
        if ((duration > 0 && t - started >= duration) || stop_requested) {
            if (!term_sent_at) {
                kill(pid, SIGTERM);
                term_sent_at = t;
            } else if (!killed && t - term_sent_at >= kill_after) {
                kill(pid, SIGKILL);
                killed = 1;
            }
        }
        if (next_table && t >= next_table && main_proc) {
            live_table_print(&lt, stderr, main_proc, t - started);
            tables++;
            next_table += interval;
        }
        if (n) {
            idle = 50;
        } else {
            nap(idle);
            if (idle < 5000)
                idle *= 2;
        }
    }
    live_table_free(&lt);
    if (child_follow) /* a daemon it started is traced too: wait for it */
        descendants_wait(&desc, drain_pass, &s, &procs, &stop_requested);
    descendants_free(&desc);
    main_proc = procset_get(&procs, (uint32_t)pid, NULL); /* the newest image, after an exec */
    /* The program is gone; everything it committed is still in the channel. */
    while (drain_pass(&s)) /* with cuts, as while it ran: what waits stays small */
        ;
    for (size_t i = 0; i < procs.n; i++)
        process_finish(procs.v[i]);
    channel_each_stats(&ch, stats_sink, &s);
    reap_orphans(&procs, pid);
    uint64_t end_ticks, end_ns;
    clock_sample(&end_ticks, &end_ns);
    for (size_t i = 0; i < procs.n; i++) {
        procs.v[i]->end_ticks = end_ticks;
        procs.v[i]->end_ns = end_ns;
    }
    if (main_proc)
        main_proc->events_lost = ch.h->events_lost;
    channel_destroy(&ch);
    child_pid = 0;

    int rc;
    if (got == (ssize_t)sizeof exec_errno) {
        fprintf(stderr, "cgoscope: cannot run %s: %s\n", prog[0], strerror(exec_errno));
        rc = exec_errno == ENOENT ? 127 : 126;
        if (twp)
            trace_writer_close(twp, err, sizeof err);
        procset_free(&procs);
        return rc;
    }
    rc = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (main_proc)
        process_set_exit(main_proc, status);
    if (term_sent_at)
        rc = 0; /* it ended because we asked it to (--duration or Ctrl-C), however it ended */

    procset_drop_unseen(&procs, (uint32_t)pid);
    reach_scan_procset(&procs); /* lost or held: what still points to each unfreed block */
    if (twp) {
        for (size_t i = 0; i < procs.n; i++)
            trace_write_end(twp, procs.v[i]);
        if (trace_writer_close(twp, err, sizeof err) != 0)
            fprintf(stderr, "cgoscope: %s\n", err);
    }
    struct process *flat = procset_flat(&procs);
    if (flat)
        output_reports(flat, procs.n, &out);
    free(flat);
    procset_free(&procs);
    rc = gate_exit_status(&gate, rc);
    gate_free(&gate);
    return rc;
}
