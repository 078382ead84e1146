/*
 * `cgoscope test`: `go test` with cgoscope as -exec, and one report of every test binary it ran.
 *
 * Two halves in one command:
 *  - the parent (cgoscope test [options] [go test flags and packages]) makes a session
 *    directory, names it in CGOSCOPE_TEST_SESSION and runs `go test -exec 'cgoscope test
 *    --exec-child ...'` with go test's own stdout and stderr, so its output passes through
 *    untouched. When go test has ended it reads every trace the session holds into one set of
 *    processes and writes the reports from it exactly as `cgoscope run` does (output_reports),
 *    then removes the session.
 *  - each -exec invocation (the child: go test may run several at once, -p) takes a numbered
 *    directory of the session, keeps a hard link (or a copy) of the test binary there, since go
 *    test deletes its test binaries and the report reads their symbols afterwards, and runs the
 *    binary through `cgoscope run -q -o TRACE` (cmd_run), whose exit status is the test
 *    binary's own. A static test binary (a package without cgo) cannot be traced: it runs as it
 *    is, and its directory says so and how it ended.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis/process.h"
#include "cmd/commands.h"
#include "cmd/launch.h"
#include "gobin/preflight.h"
#include "ingest/trace.h"
#include "output/gate.h"
#include "output/output.h"

#define SESSION_ENV "CGOSCOPE_TEST_SESSION"
#define EXIT_TOOL_FAILED LAUNCH_EXIT_TOOL_FAILED
#define EXIT_GO_NOT_FOUND 127

static void test_usage(FILE *out)
{
    fprintf(out,
            "Usage: cgoscope test [options] [go test flags] [packages] [go test flags]\n"
            "\n"
            "Runs `go test` with every test binary under cgoscope (as `go test -exec` would), then\n"
            "prints ONE report of all of them to stderr, after go test's own output, which passes\n"
            "through unchanged. Example:\n"
            "\n"
            "  cgoscope test --fail-on-leak --json leaks.json ./...\n"
            "  cgoscope test --sarif leaks.sarif -- -run TestParse -count=1 -tags integration ./pkg/...\n"
            "\n"
            "cgoscope's options come first, spelled as below (two dashes); the first argument that\n"
            "is not one of them, or everything after `--`, goes to go test as it is. So `--json\n"
            "FILE` is cgoscope's JSON report, and go test's own `-json` keeps its single dash.\n"
            "\n"
            "What cgoscope adds to go test: -exec (so do not give your own), -count=1 unless you give\n"
            "-count (a cached test result runs no binary, so it would have no report), and\n"
            "-ldflags='-s=false -w=false' (go test strips its test binaries; the symbols name the C\n"
            "functions): appended to your own -ldflags unless they mention -s or -w or a package\n"
            "pattern, and left out when GOFLAGS sets -ldflags. The go command: $CGOSCOPE_GO, else\n"
            "`go` on PATH, else /usr/local/go/bin/go.\n"
            "\n"
            "Options (as for `cgoscope run`; output paths are relative to where you run cgoscope):\n"
            "  --json FILE        also write the report as JSON, every test binary a process in it\n"
            "  --timing MODE      how cgo calls are timed: sampled:N (default sampled:64), full, off\n"
            "  --timeline FILE    timed cgo calls as a Chrome/Perfetto trace (one test binary's)\n"
            "  --plot FILE.svg    live C memory over time (the first Go test binary)\n"
            "  --no-follow        trace only the test binaries, not the processes they start\n"
            "  --show-runtime     also list leaks of the Go runtime and system libraries\n"
            "  --full-stacks      also show cgo glue frames (runtime.cgocall, _Cfunc_ stubs)\n"
            "  --full-report      every leak group and path, and each site's stack (the text\n"
            "                     report shows the top 10 groups; the JSON report has all)\n"
            "  -q, --quiet        no text report (use with --json)\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit status: go test's own when it fails (1: a test failed or a package did not build);\n"
            "else 23 (--leak-exitcode) with --fail-on-leak when any test binary leaked (or, with\n"
            "--fail-on-leak or --fail-on-error, freed twice or wrongly); else 0. 2 bad usage;\n"
            "125 cgoscope failed (no shim, a trace it could not read); 127 the go command is not found.\n");
    gate_usage(out);
}

/* dir/name into out (PATH_MAX); -1 when it does not fit. */
static int join(char *out, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b + 1 > PATH_MAX)
        return -1;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return 0;
}

/* ---- the child: one test binary, run by go test through -exec ------------------------------ */

/* Writes len bytes of data into dir/name (mode 0600). */
static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    if (join(path, dir, name) != 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

/* from copied to to: a hard link when both are on one file system, else a copy. */
static int keep_binary(const char *from, const char *to)
{
    if (link(from, to) == 0)
        return 0;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t r;
    int rc = 0;
    while ((r = read(in, buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || write(out, buf, (size_t)r) != r) {
            rc = -1;
            break;
        }
    }
    close(in);
    if (close(out) != 0 || rc != 0) {
        unlink(to);
        return -1;
    }
    return 0;
}

/* A static test binary (a package without cgo): LD_PRELOAD cannot enter it. It runs as it is,
 * and its session directory says how it ended; cgoscope ends as it did. */
static int run_untraced(const char *dir, char **prog)
{
    pid_t pid = fork();
    if (pid < 0)
        return EXIT_TOOL_FAILED;
    if (pid == 0) {
        execvp(prog[0], prog);
        _exit(errno == ENOENT ? 127 : 126);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return EXIT_TOOL_FAILED;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%d %d\n", (int)pid, status);
    write_file(dir, "untraced", buf, (size_t)n);
    if (WIFSIGNALED(status)) { /* go test sees the same signal it would have seen */
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

static int test_child(int argc, char **argv)
{
    const char *session = getenv(SESSION_ENV);
    if (!session || !*session) {
        fprintf(stderr, "cgoscope: `test --exec-child` is what `cgoscope test` gives go test as -exec; "
                        "run `cgoscope test [options] [packages]` instead.\n");
        return 2;
    }
    char sess[PATH_MAX];
    snprintf(sess, sizeof sess, "%s", session);
    unsetenv(SESSION_ENV); /* the tests' own environment, as without cgoscope test */

    /* What the parent passes on: --timing MODE, --no-follow, --timeline. */
    const char *timing = NULL;
    int no_follow = 0, timeline = 0, i = 2;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--timing") == 0 && i + 1 < argc)
            timing = argv[++i];
        else if (strcmp(argv[i], "--no-follow") == 0)
            no_follow = 1;
        else if (strcmp(argv[i], "--timeline") == 0)
            timeline = 1;
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            fprintf(stderr, "cgoscope test --exec-child: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "cgoscope test --exec-child: no test binary given\n");
        return 2;
    }
    char **prog = argv + i;
    int nprog = argc - i;

    /* This binary's directory in the session: the first free number (go test runs several
     * test binaries at once). */
    char dir[PATH_MAX];
    for (unsigned n = 1;; n++) {
        char num[16];
        snprintf(num, sizeof num, "%u", n);
        if (join(dir, sess, num) != 0) {
            fprintf(stderr, "cgoscope test: the session directory's path is too long: %s\n", sess);
            return EXIT_TOOL_FAILED;
        }
        if (mkdir(dir, 0700) == 0)
            break;
        if (errno != EEXIST) {
            fprintf(stderr, "cgoscope test: cannot create %s: %s\n", dir, strerror(errno));
            return EXIT_TOOL_FAILED;
        }
    }

    /* argv, NUL-separated, and where it ran (the package's directory). */
    size_t alen = 0;
    for (int k = 0; k < nprog; k++)
        alen += strlen(prog[k]) + 1;
    char *abuf = malloc(alen ? alen : 1), *q = abuf;
    for (int k = 0; abuf && k < nprog; k++) {
        size_t l = strlen(prog[k]) + 1;
        memcpy(q, prog[k], l);
        q += l;
    }
    if (abuf)
        write_file(dir, "argv", abuf, alen);
    free(abuf);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd))
        write_file(dir, "cwd", cwd, strlen(cwd));

    struct preflight pf;
    preflight_check(prog[0], &pf);
    if (pf.found && pf.is_static)
        return run_untraced(dir, prog);

    /* The binary kept for the report (go test removes it once it has run), and the path the
     * trace knows it by (/proc/self/exe in the shim: the resolved path). */
    if (pf.found) {
        char real[PATH_MAX], kept[PATH_MAX];
        const char *base = strrchr(pf.path, '/');
        base = base ? base + 1 : pf.path;
        if (join(kept, dir, base) == 0 && realpath(pf.path, real) && keep_binary(real, kept) == 0)
            write_file(dir, "exe", real, strlen(real));
    }

    char trace[PATH_MAX], tl[PATH_MAX];
    if (join(trace, dir, "trace.cgs") != 0 || join(tl, dir, "timeline.json") != 0)
        return EXIT_TOOL_FAILED;
    char **rargv = calloc((size_t)nprog + 12, sizeof *rargv);
    if (!rargv)
        return EXIT_TOOL_FAILED;
    int r = 0;
    rargv[r++] = "run";
    rargv[r++] = "-q";
    rargv[r++] = "-o";
    rargv[r++] = trace;
    if (timing) {
        rargv[r++] = "--timing";
        rargv[r++] = (char *)timing;
    }
    if (no_follow)
        rargv[r++] = "--no-follow";
    if (timeline) { /* the shim records the calls; the parent writes the file */
        rargv[r++] = "--timeline";
        rargv[r++] = tl;
    }
    rargv[r++] = "--";
    for (int k = 0; k < nprog; k++)
        rargv[r++] = prog[k];
    int rc = cmd_run(r, rargv);
    free(rargv);
    return rc;
}

/* ---- the parent: go test, then the report ------------------------------------------------- */

/* The go command: $CGOSCOPE_GO, `go` on PATH, /usr/local/go/bin/go. */
static int find_go(char *out, size_t len)
{
    const char *env = getenv("CGOSCOPE_GO");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        if (access(out, X_OK) == 0)
            return 0;
        fprintf(stderr, "cgoscope test: CGOSCOPE_GO is %s, which is not an executable go command (%s).\n"
                        "  Point CGOSCOPE_GO at the go binary (e.g. /usr/local/go/bin/go), or unset it to use `go` on PATH.\n",
                env, strerror(errno));
        return -1;
    }
    const char *path = getenv("PATH");
    if (path) {
        const char *p = path;
        for (;;) {
            const char *end = strchr(p, ':');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            snprintf(out, len, "%.*s/go", (int)n, n ? p : ".");
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0;
            if (!end)
                break;
            p = end + 1;
        }
    }
    snprintf(out, len, "/usr/local/go/bin/go");
    if (access(out, X_OK) == 0)
        return 0;
    fprintf(stderr, "cgoscope test: cannot find the go command: no `go` on PATH, nor /usr/local/go/bin/go.\n"
                    "  Install Go (1.21 or later), then put its bin directory on PATH\n"
                    "  (export PATH=$PATH:/usr/local/go/bin) or set CGOSCOPE_GO=/path/to/go.\n");
    return -1;
}

/* s as one word of go's -exec value (cmd/internal/quoted: spaces split, quotes group, no escapes). */
static int append_word(char *buf, size_t len, const char *s)
{
    size_t at = strlen(buf);
    int plain = strpbrk(s, " \t\n\r'\"") == NULL && *s;
    int n;
    if (plain)
        n = snprintf(buf + at, len - at, "%s%s", at ? " " : "", s);
    else if (!strchr(s, '\''))
        n = snprintf(buf + at, len - at, "%s'%s'", at ? " " : "", s);
    else if (!strchr(s, '"'))
        n = snprintf(buf + at, len - at, "%s\"%s\"", at ? " " : "", s);
    else
        return -1;
    return n < 0 || (size_t)n >= len - at ? -1 : 0;
}

/* The name of a go flag ("-ldflags=x" and "--ldflags" give "ldflags"), or NULL for a non-flag. */
static const char *go_flag_name(const char *arg, char *name, size_t len)
{
    if (arg[0] != '-' || arg[1] == 0)
        return NULL;
    arg += arg[1] == '-' ? 2 : 1;
    size_t n = strcspn(arg, "=");
    if (n >= len)
        n = len - 1;
    memcpy(name, arg, n);
    name[n] = 0;
    return name;
}

/* ldflags with -s=false -w=false appended, or NULL to leave them as they are: they already say
 * what to do about symbols, or they are per package (pattern=flags). */
static char *ldflags_with_symbols(const char *v)
{
    const char *sp = strchr(v, ' '), *eq = strchr(v, '=');
    if (v[0] != '-' && v[0] != 0 && eq && (!sp || eq < sp))
        return NULL; /* pattern=flags */
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\'' || *p == '"')
            p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*w == '-') {
            w += w[1] == '-' ? 2 : 1;
            if ((*w == 's' || *w == 'w') && (w + 1 == p || w[1] == '=' || w[1] == '\'' || w[1] == '"'))
                return NULL;
        }
    }
    char *out;
    if (asprintf(&out, "%s%s-s=false -w=false", v, *v ? " " : "") < 0)
        return NULL;
    return out;
}

static volatile sig_atomic_t go_pid;

static void forward_to_go(int sig)
{
    if (go_pid > 0)
        kill((pid_t)go_pid, sig);
}

/* Runs go with argv, its stdio ours; returns its exit status (128+N for signal N), or -1. */
static int run_go(char **argv)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward_to_go}, old_int, old_quit, old_term,
                     old_hup;
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    /* The terminal's Ctrl-C reaches go test (and the tests) by itself: cgoscope stays to report
     * what ran. SIGTERM and SIGHUP sent to cgoscope are passed on. */
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigaction(SIGTERM, &fwd, &old_term);
    sigaction(SIGHUP, &fwd, &old_hup);
    pid_t pid = fork();
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "cgoscope test: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(EXIT_GO_NOT_FOUND);
    }
    int rc = -1, status;
    if (pid > 0) {
        go_pid = pid;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        go_pid = 0;
        rc = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    } else {
        fprintf(stderr, "cgoscope test: cannot start go: %s\n", strerror(errno));
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    return rc;
}

/* One -exec invocation's directory in the session. */
struct entry {
    unsigned seq;
    char *cwd;  /* the package's directory */
    uint32_t pid; /* of the test binary (the first process of its trace) */
    int traced;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->cwd ? x->cwd : "", y->cwd ? y->cwd : "");
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* The whole of dir/name (NUL-terminated; *len without it), or NULL. */
static char *read_small(const char *dir, const char *name, size_t *len)
{
    char path[PATH_MAX];
    if (join(path, dir, name) != 0)
        return NULL;
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 256, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

/* Moves the processes of from to the end of into. */
static int absorb(struct procset *into, struct procset *from)
{
    if (into->n + from->n > into->cap) {
        size_t nc = (into->n + from->n) * 2;
        struct process **nv = realloc(into->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        into->v = nv;
        into->cap = nc;
    }
    for (size_t i = 0; i < from->n; i++)
        into->v[into->n++] = from->v[i];
    from->n = 0;
    procset_free(from);
    return 0;
}

/* Paths of the test binary (where go test ran it, now gone) replaced by the kept copy. */
static void repoint(struct procset *ps, const char *gone, const char *kept)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct process *p = ps->v[i];
        if (p->exe && strcmp(p->exe, gone) == 0) {
            free(p->exe);
            p->exe = strdup(kept);
        }
        for (size_t k = 0; k < p->nmodules; k++)
            if (p->modules[k].path && strcmp(p->modules[k].path, gone) == 0) {
                free(p->modules[k].path);
                p->modules[k].path = strdup(kept);
            }
    }
}

/* The processes of one -exec invocation into all. Returns 0, or -1 when its trace could not be
 * read (already told). */
static int load_entry(const char *sess, struct entry *e, struct procset *all)
{
    char dir[PATH_MAX], num[16];
    snprintf(num, sizeof num, "%u", e->seq);
    join(dir, sess, num);
    size_t alen = 0;
    char *argv = read_small(dir, "argv", &alen);
    const char *what = argv ? argv : "a test binary";
    struct procset ps;
    procset_init(&ps);
    int rc = 0;
    char *untraced = read_small(dir, "untraced", NULL);
    if (untraced) {
        int pid = 0, status = 0;
        sscanf(untraced, "%d %d", &pid, &status);
        struct process *p = procset_add(&ps, (uint32_t)pid);
        if (p) {
            p->exe = strdup(what);
            if (argv)
                process_set_argv(p, argv, alen);
            process_set_exit(p, status);
            snprintf(p->untraced_why, sizeof p->untraced_why,
                     "it is a static test binary (its package uses no cgo): LD_PRELOAD cannot load into it, "
                     "and it has no C allocations of its own to check");
        }
        free(untraced);
    } else {
        char trace[PATH_MAX], err[512] = "";
        join(trace, dir, "trace.cgs");
        int r = trace_read(trace, &ps, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "cgoscope test: the test binary %s (in %s) left no readable trace: %s\n", what,
                    e->cwd ? e->cwd : "?", err);
            rc = -1;
        } else {
            if (r > 0)
                fprintf(stderr, "cgoscope test: warning: %s (in %s): %s\n", what, e->cwd ? e->cwd : "?", err);
            char *gone = read_small(dir, "exe", NULL);
            if (gone) {
                const char *base = strrchr(gone, '/');
                char kept[PATH_MAX];
                if (join(kept, dir, base ? base + 1 : gone) == 0)
                    repoint(&ps, gone, kept);
                free(gone);
            }
        }
    }
    free(argv);
    if (ps.n) {
        e->pid = ps.v[0]->pid;
        e->traced = ps.v[0]->attached;
    }
    if (absorb(all, &ps) != 0) {
        procset_free(&ps);
        fprintf(stderr, "cgoscope test: out of memory\n");
        rc = -1;
    }
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* What the command line asked for. */
struct test_options {
    struct output_options out;
    struct gate gate;
    const char *timing;
    int no_follow;
    char **goargs; /* for go test, as given */
    int ngoargs;
};

/* cgoscope's own options: the long options of `run` that make sense for a whole go test. */
enum { OPT_JSON = 'j', OPT_SHOW_RUNTIME = 'r', OPT_FULL = 'F', OPT_FULL_REPORT = 'A', OPT_QUIET = 'q', OPT_HELP = 'h', OPT_TIMING = 't',
       OPT_TIMELINE = 'T', OPT_NO_FOLLOW = 'N', OPT_PLOT = 'P', OPT_NOT_FOR_TEST = 'X' };

static const struct option test_opts[] = {
    {"json", required_argument, NULL, OPT_JSON},         {"show-runtime", no_argument, NULL, OPT_SHOW_RUNTIME},
    {"full-stacks", no_argument, NULL, OPT_FULL},        {"full-report", no_argument, NULL, OPT_FULL_REPORT},
           {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},               {"timing", required_argument, NULL, OPT_TIMING},
    {"timeline", required_argument, NULL, OPT_TIMELINE}, {"no-follow", no_argument, NULL, OPT_NO_FOLLOW},
    {"plot", required_argument, NULL, OPT_PLOT},         {"output", required_argument, NULL, OPT_NOT_FOR_TEST},
    {"duration", required_argument, NULL, OPT_NOT_FOR_TEST}, {"kill-after", required_argument, NULL, OPT_NOT_FOR_TEST},
    {"interval", required_argument, NULL, OPT_NOT_FOR_TEST}, GATE_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* How many of argv[from..] are cgoscope's options (with their values); *dashdash: a `--` ends them. */
static int own_options(int argc, char **argv, int from, int *dashdash)
{
    int i = from;
    *dashdash = 0;
    while (i < argc) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            *dashdash = 1;
            break;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "-h") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            break;
        size_t n = strcspn(a + 2, "=");
        const struct option *o = test_opts;
        while (o->name && (strlen(o->name) != n || strncmp(o->name, a + 2, n) != 0))
            o++;
        if (!o->name)
            break;
        i += o->has_arg == required_argument && a[2 + n] != '=' ? 2 : 1;
    }
    return (i > argc ? argc : i) - from;
}

static int test_parse(struct test_options *o, int argc, char **argv)
{
    int dashdash, n = own_options(argc, argv, 1, &dashdash);
    /* getopt_long over cgoscope's options alone: the rest is go test's. */
    char **mine = calloc((size_t)n + 2, sizeof *mine);
    if (!mine)
        return EXIT_TOOL_FAILED;
    mine[0] = argv[0];
    for (int i = 0; i < n; i++)
        mine[i + 1] = argv[1 + i];
    int c, rc = -1, li = -1;
    optind = 1;
    while (rc < 0 && (c = getopt_long(n + 1, mine, "+qh", test_opts, &li)) != -1) {
        switch (c) {
        case OPT_JSON: o->out.json_path = optarg; break;
        case OPT_SHOW_RUNTIME: o->out.show_runtime = 1; break;
        case OPT_FULL: o->out.full_stacks = 1; break;
        case OPT_FULL_REPORT: o->out.full_report = 1; break;
        case OPT_QUIET: o->out.quiet = 1; break;
        case OPT_TIMELINE: o->out.timeline_path = optarg; break;
        case OPT_PLOT: o->out.plot_path = optarg; break;
        case OPT_NO_FOLLOW: o->no_follow = 1; break;
        case OPT_HELP: test_usage(stdout); rc = 0; break;
        case OPT_TIMING:
            if (strcmp(optarg, "full") != 0 && strcmp(optarg, "off") != 0 &&
                (strncmp(optarg, "sampled:", 8) != 0 || strspn(optarg + 8, "0123456789") != strlen(optarg + 8) ||
                 !optarg[8] || atol(optarg + 8) < 1 || atol(optarg + 8) > 1 << 20)) {
                fprintf(stderr, "cgoscope test: --timing takes full, off or sampled:N (N from 1 to 1048576), not '%s'\n",
                        optarg);
                rc = 2;
            }
            o->timing = optarg;
            break;
        case OPT_NOT_FOR_TEST:
            fprintf(stderr, "cgoscope test: --%s is an option of `cgoscope run` only: go test's own -timeout limits\n"
                            "  how long tests run, and --json, --pprof, --sarif or --folded keep the report.\n",
                    li >= 0 ? test_opts[li].name : "?");
            rc = 2;
            break;
        default: {
            int g = gate_option(&o->gate, c, optarg);
            if (g == GATE_OK)
                break;
            if (g == GATE_NOT_MINE)
                test_usage(stderr);
            rc = g == GATE_EXIT_OK ? 0 : 2;
        }
        }
    }
    free(mine);
    if (rc >= 0)
        return rc;
    o->goargs = argv + 1 + n + dashdash;
    o->ngoargs = argc - 1 - n - dashdash;
    if (gate_prepare(&o->gate) != 0)
        return 2;
    return -1;
}

/* go test's command line: go test -exec CHILD [-count=1] [-ldflags=...] ARGS, with our
 * -s=false -w=false in the user's -ldflags. Returns the vector (NULL-terminated; strings it
 * made are in *owned), or NULL after telling why. */
static char **go_command(const struct test_options *o, const char *go, char ***owned, size_t *nowned)
{
    char self[PATH_MAX];
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sn <= 0) {
        fprintf(stderr, "cgoscope test: cannot tell where cgoscope is (/proc/self/exe): %s\n", strerror(errno));
        return NULL;
    }
    self[sn] = 0;
    char exec[PATH_MAX + 128] = "";
    if (append_word(exec, sizeof exec, self) != 0 || append_word(exec, sizeof exec, "test") != 0 ||
        append_word(exec, sizeof exec, "--exec-child") != 0 ||
        (o->timing && (append_word(exec, sizeof exec, "--timing") != 0 || append_word(exec, sizeof exec, o->timing) != 0)) ||
        (o->no_follow && append_word(exec, sizeof exec, "--no-follow") != 0) ||
        (o->out.timeline_path && append_word(exec, sizeof exec, "--timeline") != 0)) {
        fprintf(stderr, "cgoscope test: the path of cgoscope (%s) cannot be given to go test -exec "
                        "(it holds both kinds of quotes)\n", self);
        return NULL;
    }

    const char *goflags = getenv("GOFLAGS");
    int have_count = goflags && strstr(goflags, "-count"), have_ldflags = goflags && strstr(goflags, "-ldflags");
    char name[32];
    int end = o->ngoargs; /* -args: the rest is the test binary's */
    for (int i = 0; i < o->ngoargs; i++) {
        if (!go_flag_name(o->goargs[i], name, sizeof name))
            continue;
        if (strcmp(name, "args") == 0) {
            end = i;
            break;
        }
        if (strcmp(name, "exec") == 0) {
            fprintf(stderr, "cgoscope test: go test's -exec is cgoscope's here; leave it out "
                            "(or use `go test -exec 'cgoscope run --'` yourself).\n");
            return NULL;
        }
        if (strcmp(name, "count") == 0)
            have_count = 1;
    }
    char **v = calloc((size_t)o->ngoargs + 8, sizeof *v);
    *owned = calloc((size_t)o->ngoargs + 2, sizeof **owned);
    if (!v || !*owned) {
        free(v);
        return NULL;
    }
    int n = 0;
    v[n++] = (char *)go;
    v[n++] = "test";
    v[n++] = "-exec";
    (*owned)[(*nowned)++] = v[n++] = strdup(exec);
    if (!have_count)
        v[n++] = "-count=1";
    int ld_at = n;
    for (int i = 0; i < o->ngoargs; i++) {
        char *a = o->goargs[i];
        v[n++] = a;
        if (i >= end || !go_flag_name(a, name, sizeof name) || strcmp(name, "ldflags") != 0)
            continue;
        have_ldflags = 1;
        char *eq = strchr(a, '=');
        if (eq) {
            char *nv = ldflags_with_symbols(eq + 1), *na = NULL;
            if (nv && asprintf(&na, "%.*s%s", (int)(eq + 1 - a), a, nv) >= 0)
                (*owned)[(*nowned)++] = v[n - 1] = na;
            free(nv);
        } else if (i + 1 < o->ngoargs) {
            char *nv = ldflags_with_symbols(o->goargs[++i]);
            v[n++] = nv ? nv : o->goargs[i];
            if (nv)
                (*owned)[(*nowned)++] = nv;
        }
    }
    if (!have_ldflags) {
        memmove(v + ld_at + 1, v + ld_at, (size_t)(n - ld_at) * sizeof *v);
        v[ld_at] = "-ldflags=-s=false -w=false";
        n++;
    }
    v[n] = NULL;
    return v;
}

static int test_parent(int argc, char **argv)
{
    struct test_options o;
    memset(&o, 0, sizeof o);
    gate_init(&o.gate);
    o.out.gate = &o.gate;
    int rc = test_parse(&o, argc, argv);
    char **owned = NULL, **cmd = NULL;
    size_t nowned = 0;
    char sess[PATH_MAX] = "";
    struct procset all;
    procset_init(&all);
    struct entry *ents = NULL;
    size_t nents = 0;
    if (rc >= 0)
        goto out;

    char go[PATH_MAX], shim[PATH_MAX];
    if (find_go(go, sizeof go) != 0) {
        rc = EXIT_GO_NOT_FOUND;
        goto out;
    }
    if (cgoscope_find_shim(shim, sizeof shim) != 0) {
        fprintf(stderr, "cgoscope: cannot find the shim libcgoscope.so (looked at %s); "
                        "set CGOSCOPE_SHIM to its path or reinstall cgoscope\n", shim);
        rc = EXIT_TOOL_FAILED;
        goto out;
    }
    cmd = go_command(&o, go, &owned, &nowned);
    if (!cmd) {
        rc = 2;
        goto out;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(sess, sizeof sess, "%s/cgoscope-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(sess)) {
        fprintf(stderr, "cgoscope test: cannot create a session directory %s: %s (set TMPDIR to a writable directory)\n",
                sess, strerror(errno));
        sess[0] = 0;
        rc = EXIT_TOOL_FAILED;
        goto out;
    }
    setenv(SESSION_ENV, sess, 1);
    int go_rc = run_go(cmd);
    unsetenv(SESSION_ENV);
    if (go_rc < 0) {
        rc = EXIT_TOOL_FAILED;
        goto out;
    }

    /* Every test binary that ran, in the order of their packages' directories. */
    DIR *d = opendir(sess);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *endp;
        unsigned long seq = strtoul(de->d_name, &endp, 10);
        if (*endp || endp == de->d_name)
            continue;
        struct entry *ne = realloc(ents, (nents + 1) * sizeof *ents);
        if (!ne)
            break;
        ents = ne;
        char dir[PATH_MAX];
        join(dir, sess, de->d_name);
        ents[nents].seq = (unsigned)seq;
        ents[nents].pid = 0;
        ents[nents].traced = 0;
        ents[nents++].cwd = read_small(dir, "cwd", NULL);
    }
    if (d)
        closedir(d);
    if (nents)
        qsort(ents, nents, sizeof *ents, entry_cmp);
    int unreadable = 0;
    for (size_t i = 0; i < nents; i++)
        if (load_entry(sess, &ents[i], &all) != 0)
            unreadable++;

    if (!nents && !o.out.quiet)
        fprintf(stderr, "\n== cgoscope test: go test ran no test binary (no test files, -c or -list, or a build failure): "
                        "nothing to report.\n");
    struct process *flat = procset_flat(&all);
    int orc = flat ? output_reports(flat, all.n, &o.out) : -1;
    free(flat);
    if (nents && !o.out.quiet) {
        size_t traced = 0;
        for (size_t i = 0; i < all.n; i++)
            traced += all.v[i]->attached;
        fprintf(stderr, "\n== cgoscope test: %zu test binar%s run by go test, %zu process%s traced", nents,
                nents == 1 ? "y" : "ies", traced, traced == 1 ? "" : "es");
        if (o.gate.applied)
            fprintf(stderr, "; leaked by them in all: %llu bytes in %llu blocks", (unsigned long long)o.gate.leaked_bytes,
                    (unsigned long long)o.gate.leaked_blocks);
        fprintf(stderr, "\n");
        for (size_t i = 0; i < nents; i++)
            fprintf(stderr, "   process %u: the tests in %s%s\n", ents[i].pid, ents[i].cwd ? ents[i].cwd : "?",
                    ents[i].traced ? "" : " (not traced)");
    }
    if (go_rc != 0)
        rc = go_rc; /* failing tests (or a build) fail as they would without cgoscope */
    else if ((rc = gate_exit_status(&o.gate, 0)) == 0 && (unreadable || orc != 0))
        rc = EXIT_TOOL_FAILED;

out:
    for (size_t i = 0; i < nents; i++)
        free(ents[i].cwd);
    free(ents);
    procset_free(&all);
    if (sess[0])
        nftw(sess, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(cmd);
    gate_free(&o.gate);
    return rc;
}

int cmd_test(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--exec-child") == 0)
        return test_child(argc, argv);
    return test_parent(argc, argv);
}
