/* `cgoscope run`: start the program with the shim, drain its records while it runs, report. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingest/channel.h"
#include "util/clock.h"
#include "util/thread.h"
#include "cmd/commands.h"
#include "ingest/descendants.h"
#include "output/gate.h"
#include "gobin/golayout.h"
#include "gobin/gobuild.h"
#include "ingest/images.h"
#include "cmd/launch.h"
#include "output/live_table.h"
#include "output/output.h"
#include "output/symwarm.h"
#include "gobin/preflight.h"
#include "analysis/process.h"
#include "analysis/reach.h"
#include "ingest/trace.h"

#define EXIT_TOOL_FAILED LAUNCH_EXIT_TOOL_FAILED
#define EXIT_CANNOT_TRACE 120
#define RUN_GO_ON (-1) /* a step of the session returns this, or the exit status to end with */

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
            "  --full-report      every leak group and path, and each site's stack (the text\n"
            "                     report shows the top 10 groups; the JSON report has all)\n"
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


/* The layouts published from golayout.h's table of releases, checked against the DWARF after the
 * program ends (check_layout_table). */
static struct {
    char *path;
    struct go_layout l;
} from_table[CGS_GO_LAYOUTS];
static size_t nfrom_table;

/* Where the Go runtime of executable path keeps what the shim's store-free cgo calls read
 * (golayout.h), from the table of Go releases or else its DWARF, into the channel's table: once
 * per file. Without either (or not Go) nothing is written, and the shim counts every call in the
 * hook. */
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
    if (n >= CGS_GO_LAYOUTS)
        return;
    /* The release's row when there is one: the DWARF is then inflated only when a reader needs it
     * (the symbolizer's read-ahead, in a thread of its own while the program runs). */
    struct go_layout gl;
    struct gobuild gb;
    if (gobuild_read(path, &gb) != 0)
        return; /* not Go (or before 1.18): no runtime to lay out, and its DWARF is not read: the
                 * read-ahead thread may hold the DWARF lock, and this loop must not wait for it */
    int known = go_layout_of_release(gb.go_version, &gl) == 0;
    gobuild_free(&gb);
    if (!known && go_layout_read(path, &gl) != 0)
        return;
    if (known && nfrom_table < CGS_GO_LAYOUTS && (from_table[nfrom_table].path = strdup(path)) != NULL)
        from_table[nfrom_table++].l = gl;
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

/* Every layout taken from the table, against the executable's DWARF (read by now for the report,
 * or read here): a release whose runtime moved a field would make store-free call counts wrong,
 * and the user must hear of it. */
static void check_layout_table(void)
{
    for (size_t i = 0; i < nfrom_table; i++) {
        struct go_layout d;
        if (go_layout_read(from_table[i].path, &d) == 0 &&
            (d.g_m != from_table[i].l.g_m || d.m_ncgocall != from_table[i].l.m_ncgocall ||
             d.m_procid != from_table[i].l.m_procid))
            fprintf(stderr,
                    "cgoscope: warning: the Go runtime of %s keeps g.m, m.ncgocall, m.procid at %u, %u, %u, not at "
                    "%u, %u, %u as cgoscope's table for its release says: its cgo call counts may be wrong. Run "
                    "again with CGOSCOPE_STORE_FREE_CALLS=0, and please report it.\n",
                    from_table[i].path, d.g_m, d.m_ncgocall, d.m_procid, from_table[i].l.g_m,
                    from_table[i].l.m_ncgocall, from_table[i].l.m_procid);
        free(from_table[i].path);
    }
    nfrom_table = 0;
}

/* Descendants whose parent died before them are reparented to cgoscope (a subreaper): reap
 * them, noting how they ended. The program itself may be reaped here too (its end seen before the
 * loop asked for it): its status goes to *main_status, and the return value says so. */
static int reap_orphans(struct procset *ps, pid_t main_pid, int *main_status)
{
    int status, main_reaped = 0;
    pid_t w;
    while ((w = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
        if (w == main_pid) {
            if (main_status)
                *main_status = status;
            main_reaped = 1;
            continue;
        }
        for (size_t i = 0; i < ps->n; i++)
            if (ps->v[i]->pid == (uint32_t)w)
                process_set_exit(ps->v[i], status);
    }
    return main_reaped;
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
    uint64_t tsc = clock_tsc_fenced(); /* read before any descriptor of this pass */
    c.tsc = tsc > CUT_MARGIN_TICKS ? tsc - CUT_MARGIN_TICKS : 0;
    uint64_t mono = clock_mono_ns();
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

/* Ticks of the shim's clock per nanosecond, measured over 2 ms: snapshots of live memory are
 * spaced with it until the exact rate over the whole run is known. */
static double measure_tick_rate(void)
{
    uint64_t t0, n0, t1, n1;
    clock_sample(&t0, &n0);
    clock_sleep_us(2000); /* only spaces snapshots: the exact rate comes from the whole run */
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

/* What the command line asked for. */
struct run_options {
    struct output_options out;
    struct gate gate;
    const char *trace_path; /* -o */
    const char *timing;     /* --timing, for the shim */
    double duration, kill_after, interval;
    int follow;
    char **prog; /* PROGRAM ARGS..., NULL-terminated */
    int nprog;
};

/* One run, from the options to the report. Every resource it holds is released by run_cleanup
 * alone, whichever step ended the run. */
struct run_session {
    struct run_options o;
    struct preflight pf;
    char shim[PATH_MAX];
    struct channel ch; /* destroyed once the program is gone (the shim sees analyzer_gone) */
    struct trace_writer tw;
    struct procset procs;
    struct run_sink sink; /* what each pass over the channel feeds */
    struct descendants desc;
    struct live_table lt;
    pid_t pid;
    int exec_errno;     /* the program could not be executed: why */
    struct process *main_proc;
    int status;         /* from waitpid */
    double term_sent_at; /* SIGTERM sent (--duration or Ctrl-C), or 0 */
    struct symwarm *warm; /* the report's symbolizer, read ahead while the program runs */
};

static void run_session_init(struct run_session *s)
{
    memset(s, 0, sizeof *s);
    s->ch.fd = -1;
    gate_init(&s->o.gate);
    s->o.out.gate = &s->o.gate;
    s->o.kill_after = 5;
    s->o.follow = 1;
    procset_init(&s->procs);
}

/* The command line into s->o. */
static int run_parse(struct run_session *s, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", required_argument, NULL, 'j'}, {"output", required_argument, NULL, 'o'},
        {"show-runtime", no_argument, NULL, 'r'}, {"full-stacks", no_argument, NULL, 'F'},
        {"full-report", no_argument, NULL, 'A'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},       {"timing", required_argument, NULL, 't'},
        {"timeline", required_argument, NULL, 'T'}, {"no-follow", no_argument, NULL, 'N'},
        {"duration", required_argument, NULL, 'D'}, {"kill-after", required_argument, NULL, 'K'},
        {"interval", required_argument, NULL, 'I'}, {"plot", required_argument, NULL, 'P'},
        GATE_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct run_options *o = &s->o;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': o->out.json_path = optarg; break;
        case 'o': o->trace_path = optarg; break;
        case 'r': o->out.show_runtime = 1; break;
        case 'F': o->out.full_stacks = 1; break;
        case 'A': o->out.full_report = 1; break;
        case 'q': o->out.quiet = 1; break;
        case 't':
            if (!valid_timing(optarg)) {
                fprintf(stderr, "cgoscope run: --timing takes full, off or sampled:N (N from 1 to 1048576), not '%s'\n", optarg);
                return 2;
            }
            o->timing = optarg;
            break;
        case 'T': o->out.timeline_path = optarg; break;
        case 'N': o->follow = 0; break;
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
            *(c == 'D' ? &o->duration : c == 'K' ? &o->kill_after : &o->interval) = v;
            break;
        }
        case 'P': o->out.plot_path = optarg; break;
        case 'h': run_usage(stdout); return 0;
        default: {
            int g = gate_option(&o->gate, c, optarg);
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
    o->prog = argv + optind;
    o->nprog = argc - optind;
    if (gate_prepare(&o->gate) != 0)
        return 2;
    return RUN_GO_ON;
}

/* Checks the program, sets up the channel and the trace, and starts the program. */
static int run_start(struct run_session *s)
{
    struct run_options *o = &s->o;
    preflight_check(o->prog[0], &s->pf);
    if (s->pf.found && s->pf.is_static) {
        int untraced = gate_run_untraced(&o->gate, o->prog, s->pf.path);
        if (untraced >= 0)
            return untraced;
        fprintf(stderr,
                "cgoscope: %s is a static binary: LD_PRELOAD cannot load into it, so nothing could be traced.\n"
                "  Rebuild it dynamically linked (drop -extldflags=-static / -static from the link flags;\n"
                "  cgo programs are dynamic by default) and run cgoscope again.\n",
                s->pf.path);
        return EXIT_CANNOT_TRACE;
    }
    if (s->pf.found && s->pf.is_setid)
        fprintf(stderr, "cgoscope: %s is setuid/setgid: the loader ignores LD_PRELOAD for it, so it runs untraced.\n",
                s->pf.path);

    if (cgoscope_find_shim(s->shim, sizeof s->shim) != 0) {
        fprintf(stderr, "cgoscope: cannot find the shim libcgoscope.so (looked at %s); "
                        "set CGOSCOPE_SHIM to its path or reinstall cgoscope\n", s->shim);
        return EXIT_TOOL_FAILED;
    }

    char err[512];
    if (channel_create(&s->ch, CGS_CHANNEL_CHUNKS, err, sizeof err) != 0) {
        fprintf(stderr, "cgoscope: %s\n", err);
        return EXIT_TOOL_FAILED;
    }
    if (o->trace_path) {
        if (trace_writer_open(&s->tw, o->trace_path) != 0) {
            fprintf(stderr, "cgoscope: cannot create the trace %s: %s\n", o->trace_path, strerror(errno));
            return EXIT_TOOL_FAILED;
        }
        s->sink.trace = &s->tw;
    }
    s->procs.reorder = 1; /* events applied in time order, at each pass's cut (reorder.h) */
    launch_prepare_parent();

    s->procs.ticks_per_ns = measure_tick_rate();
    if (s->sink.trace)
        trace_write_block(s->sink.trace, TRACE_RATE, 0, 0, &s->procs.ticks_per_ns, sizeof s->procs.ticks_per_ns);
    publish_go_layout(&s->ch, s->pf.found ? s->pf.path : NULL); /* before the program runs: its shim finds it */
    if (output_wanted(&o->out) && !getenv("CGOSCOPE_NO_READ_AHEAD")) /* bench/: the report without it */
        s->o.out.warm = s->warm = symwarm_start(s->pf.found ? s->pf.path : NULL);
    struct launch l = {s->shim, o->follow, o->timing, o->out.timeline_path ? "1" : NULL};
    s->pid = launch_program(&l, o->prog, &s->ch, &s->exec_errno, err, sizeof err);
    if (s->pid < 0) {
        fprintf(stderr, "cgoscope: %s\n", err);
        return EXIT_TOOL_FAILED;
    }

    /* The program's own record: its argv as given, its exit status from waitpid. */
    s->main_proc = procset_get(&s->procs, (uint32_t)s->pid, NULL);
    if (s->main_proc) {
        s->main_proc->argc = o->nprog;
        s->main_proc->argv = calloc((size_t)s->main_proc->argc + 1, sizeof *s->main_proc->argv);
        for (int i = 0; s->main_proc->argv && i < s->main_proc->argc; i++)
            s->main_proc->argv[i] = strdup(o->prog[i]);
    }

    s->sink.procs = &s->procs;
    s->sink.ch = &s->ch;
    channel_on_dead_stats(&s->ch, stats_sink, &s->sink);
    s->ch.reached = reached; /* a cut after every chunk a pass hands over */
    s->ch.reached_arg = &s->sink;
    descendants_init(&s->desc, s->pid);
    return RUN_GO_ON;
}

/* The program's end, seen without polling: a thread blocks in poll() on a pidfd of it (Linux 5.3
 * and later) and wakes the loop, which then reaps it. Without a pidfd the loop asks waitpid after
 * each sleep instead. */
struct exit_watch {
    int pidfd;
    int running;
    _Atomic int ended;
    pthread_t thread;
    struct channel *ch;
};

static void *watch_exit(void *arg)
{
    struct exit_watch *w = arg;
    struct pollfd p = {w->pidfd, POLLIN, 0};
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    atomic_store(&w->ended, 1);
    channel_wake(w->ch);
    return NULL;
}

static void exit_watch_start(struct exit_watch *w, pid_t pid, struct channel *ch)
{
    memset(w, 0, sizeof *w);
    w->ch = ch;
    w->pidfd = -1;
    if (getenv("CGOSCOPE_NO_PIDFD")) /* tests: the fallback */
        return;
#ifdef SYS_pidfd_open
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    if (w->pidfd < 0)
        return;
    w->running = thread_start_quiet(&w->thread, watch_exit, w) == 0; /* signals stay with the loop */
    if (!w->running) {
        close(w->pidfd);
        w->pidfd = -1;
    }
}

static void exit_watch_stop(struct exit_watch *w)
{
    if (w->running) {
        if (!atomic_load(&w->ended))
            pthread_cancel(w->thread); /* the loop ended otherwise: poll() is a cancellation point */
        pthread_join(w->thread, NULL);
        w->running = 0;
    }
    if (w->pidfd >= 0)
        close(w->pidfd);
    w->pidfd = -1;
}

/* How long the loop sleeps when a pass found no backlog: until a producer fills a chunk (the
 * shim rings the channel's doorbell), the program ends, or this much time passes, after which
 * the records of chunks still being written are read. Longer while nothing comes. */
#define WAIT_BUSY_NS 4000000ull  /* the last pass read records (and less than a backlog) */
#define WAIT_IDLE_MAX_NS 10000000ull
#define WAIT_POLL_MAX_NS 5000000ull /* without a pidfd: waitpid after each sleep */
#define WAIT_TIMER_NS 5000000ull    /* with --duration, --interval or a SIGTERM sent */

/* While the program runs: drain, look for what it started, stop it when asked, print the live
 * table. Returns when the program has ended. */
static void run_loop(struct run_session *s)
{
    const struct run_options *o = &s->o;
    uint64_t idle = WAIT_BUSY_NS;
    double started = clock_mono_s(), next_table = o->interval > 0 ? started + o->interval : 0;
    int killed = 0;
    struct exit_watch watch;
    exit_watch_start(&watch, s->pid, &s->ch);
    uint64_t idle_max = watch.running ? WAIT_IDLE_MAX_NS : WAIT_POLL_MAX_NS;
    live_table_init(&s->lt, isatty(2));
    for (;;) {
        size_t n = drain_pass(&s->sink);
        s->ch.drained_nothing = n == 0;
        if (n)
            symwarm_feed(s->warm, &s->procs);
        if (!watch.running || atomic_load(&watch.ended)) {
            pid_t w = waitpid(s->pid, &s->status, WNOHANG);
            if (w == s->pid || (w < 0 && errno == ECHILD))
                break;
        }
        if (reap_orphans(&s->procs, s->pid, &s->status))
            break; /* the program's end, and its status */
        if (o->follow)
            descendants_scan(&s->desc, &s->procs);
        double t = clock_mono_s();
        if ((o->duration > 0 && t - started >= o->duration) || launch_stop_requested) {
            if (!s->term_sent_at) {
                kill(s->pid, SIGTERM);
                s->term_sent_at = t;
            } else if (!killed && t - s->term_sent_at >= o->kill_after) {
                kill(s->pid, SIGKILL);
                killed = 1;
            }
        }
        if (next_table && t >= next_table && s->main_proc) {
            growth_settle(&s->main_proc->growth);
            live_table_print(&s->lt, stderr, s->main_proc, t - started);
            next_table += o->interval;
        }
        if (n >= DRAIN_BYTES)
            continue; /* a backlog: the next pass at once */
        idle = n ? WAIT_BUSY_NS : (idle * 2 < idle_max ? idle * 2 : idle_max);
        if (next_table || o->duration > 0 || s->term_sent_at)
            idle = idle < WAIT_TIMER_NS ? idle : WAIT_TIMER_NS; /* timers to keep */
        channel_wait(&s->ch, idle);
    }
    exit_watch_stop(&watch);
    live_table_free(&s->lt);
    clock_phase("(program ended)");
}

/* The program has ended: what it left running, the rest of the channel, the reachability scan,
 * the trace's end and the reports. Returns the exit status of cgoscope. */
static int run_finish(struct run_session *s)
{
    struct run_options *o = &s->o;
    char err[512];
    if (o->follow) /* a daemon it started is traced too: wait for it */
        descendants_wait(&s->desc, drain_pass, &s->sink, &s->procs, &launch_stop_requested);
    s->main_proc = procset_get(&s->procs, (uint32_t)s->pid, NULL); /* the newest image, after an exec */
    /* The program is gone; everything it committed is still in the channel. */
    while (drain_pass(&s->sink)) /* with cuts, as while it ran: what waits stays small */
        ;
    symwarm_feed(s->warm, &s->procs); /* it goes on while the end is read and scanned */
    clock_phase("drain the rest");
    for (size_t i = 0; i < s->procs.n; i++)
        process_finish(s->procs.v[i]);
    clock_phase("apply held events");
    channel_each_stats(&s->ch, stats_sink, &s->sink);
    reap_orphans(&s->procs, s->pid, NULL);
    uint64_t end_ticks, end_ns;
    clock_sample(&end_ticks, &end_ns);
    for (size_t i = 0; i < s->procs.n; i++) {
        s->procs.v[i]->clock.end_ticks = end_ticks;
        s->procs.v[i]->clock.end_ns = end_ns;
    }
    if (s->main_proc)
        s->main_proc->events_lost = s->ch.h->events_lost;
    channel_destroy(&s->ch);
    launch_done();

    if (s->exec_errno) {
        fprintf(stderr, "cgoscope: cannot run %s: %s\n", o->prog[0], strerror(s->exec_errno));
        return s->exec_errno == ENOENT ? 127 : 126;
    }
    int rc = WIFSIGNALED(s->status) ? 128 + WTERMSIG(s->status) : WEXITSTATUS(s->status);
    if (s->main_proc)
        process_set_exit(s->main_proc, s->status);
    if (s->term_sent_at)
        rc = 0; /* it ended because we asked it to (--duration or Ctrl-C), however it ended */

    procset_drop_unseen(&s->procs, (uint32_t)s->pid);
    reach_scan_procset(&s->procs); /* lost or held: what still points to each unfreed block */
    clock_phase("reachability scan");
    check_layout_table();
    if (s->sink.trace) {
        for (size_t i = 0; i < s->procs.n; i++)
            trace_write_end(s->sink.trace, s->procs.v[i]);
        s->sink.trace = NULL;
        if (trace_writer_close(&s->tw, err, sizeof err) != 0)
            fprintf(stderr, "cgoscope: %s\n", err);
        clock_phase("trace end");
    }
    struct process *flat = procset_flat(&s->procs);
    if (flat)
        output_reports(flat, s->procs.n, &o->out);
    free(flat);
    return gate_exit_status(&o->gate, rc);
}

/* Releases whatever the session holds, however far it got. */
static void run_cleanup(struct run_session *s)
{
    char err[512];
    live_table_free(&s->lt);
    descendants_free(&s->desc);
    channel_destroy(&s->ch);
    trace_writer_close(&s->tw, err, sizeof err); /* only when a step failed: the trace is incomplete */
    symwarm_free(s->warm); /* before the processes: it reads their stacks */
    s->warm = NULL;
    procset_free(&s->procs);
    gate_free(&s->o.gate);
}

int cmd_run(int argc, char **argv)
{
    struct run_session *s = malloc(sizeof *s);
    if (!s) {
        fprintf(stderr, "cgoscope: out of memory\n");
        return EXIT_TOOL_FAILED;
    }
    run_session_init(s);
    int rc = run_parse(s, argc, argv);
    if (rc == RUN_GO_ON)
        rc = run_start(s);
    if (rc == RUN_GO_ON) {
        run_loop(s);
        rc = run_finish(s);
    }
    run_cleanup(s);
    free(s);
    return rc;
}
