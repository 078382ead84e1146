#define _GNU_SOURCE
#include "ingest/descendants.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "gobin/preflight.h"

#define SCAN_EVERY_S 0.05

void descendants_init(struct descendants *d, pid_t main_pid)
{
    memset(d, 0, sizeof *d);
    d->main_pid = main_pid;
    d->self = getpid();
    u64map_init(&d->ppid);
}

void descendants_free(struct descendants *d) { u64map_free(&d->ppid); }

/* The whole of a small /proc file, NUL-terminated; its length, or -1. */
static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == size - 1)
            break;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

static pid_t parent_of(pid_t pid)
{
    char buf[512];
    if (read_proc(pid, "stat", buf, sizeof buf) <= 0)
        return 0;
    const char *paren = strrchr(buf, ')'); /* "pid (comm) S ppid ...": comm may hold anything */
    int ppid;
    char state;
    if (!paren || sscanf(paren + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return (pid_t)ppid;
}

static void set_cmdline(struct process *p)
{
    char buf[4096];
    ssize_t n = read_proc((pid_t)p->pid, "cmdline", buf, sizeof buf);
    if (n <= 0)
        return;
    int count = 0;
    for (ssize_t i = 0; i < n; i++)
        count += buf[i] == 0;
    char **argv = calloc((size_t)count + 1, sizeof *argv);
    if (!argv)
        return;
    int k = 0;
    for (ssize_t off = 0; off < n && k < count;) {
        argv[k++] = strdup(buf + off);
        off += (ssize_t)strlen(buf + off) + 1;
    }
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    p->argv = argv;
    p->argc = k;
}

/* Why the shim did not start in this process, as far as can be told while it runs. */
static void note_why(struct process *p)
{
    char exe[64], path[4096];
    snprintf(exe, sizeof exe, "/proc/%u/exe", p->pid);
    ssize_t n = readlink(exe, path, sizeof path - 1);
    if (n <= 0)
        return; /* gone, or a kernel thread */
    path[n] = 0;
    if (!p->exe || strcmp(p->exe, path) != 0) {
        free(p->exe);
        p->exe = strdup(path);
    }
    static char env[1 << 16];
    ssize_t len = read_proc((pid_t)p->pid, "environ", env, sizeof env);
    if (len < 0)
        return;
    const char *preload = NULL;
    for (ssize_t off = 0; off < len; off += (ssize_t)strlen(env + off) + 1)
        if (strncmp(env + off, "LD_PRELOAD=", 11) == 0)
            preload = env + off + 11;
    struct preflight pf;
    preflight_check(exe, &pf);
    if (!preload)
        snprintf(p->untraced_why, sizeof p->untraced_why,
                 "its environment has no LD_PRELOAD: the process that started it removed it");
    else if (!strstr(preload, "libcgoscope"))
        snprintf(p->untraced_why, sizeof p->untraced_why,
                 "its LD_PRELOAD (\"%.80s\") does not name the shim: the process that started it changed it", preload);
    else if (pf.is_static)
        snprintf(p->untraced_why, sizeof p->untraced_why, "it is a static binary: LD_PRELOAD cannot load into it");
    else if (pf.is_setid)
        snprintf(p->untraced_why, sizeof p->untraced_why, "it is setuid or setgid: the loader ignores LD_PRELOAD");
    else
        p->untraced_why[0] = 0; /* it may yet attach (a child between fork and exec) */
    /* Its command line, for the report, only once it surely will not attach: one that does
     * brings its own, and a child read between fork and exec would show its parent's. */
    if (p->untraced_why[0])
        set_cmdline(p);
}

static struct process *newest(struct procset *ps, uint32_t pid)
{
    for (size_t i = ps->n; i-- > 0;)
        if (ps->v[i]->pid == pid)
            return ps->v[i];
    return NULL;
}

static int is_ours(const struct descendants *d, pid_t pid)
{
    for (int depth = 0; pid > 1 && depth < 4096; depth++) {
        if (pid == d->main_pid || pid == d->self)
            return 1;
        uint64_t *pp = u64map_get(&d->ppid, (uint64_t)pid);
        if (!pp)
            return 0;
        pid = (pid_t)(*pp - 1);
    }
    return 0;
}

/* The shim's exit helpers (shim/lean.c) outlive their programs until the reachability scan has
 * read them (docs/reachability.md): they are not processes the run waits for. */
static int is_exit_helper(const struct procset *ps, pid_t pid)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i]->helper_pid == (uint32_t)pid)
            return 1;
    /* One whose process record has not been read yet: a helper is made with no exit signal
     * (field 38 of /proc/PID/stat), which a process started by fork, vfork or posix_spawn has. */
    char buf[1024];
    if (read_proc(pid, "stat", buf, sizeof buf) <= 0)
        return 0;
    const char *c = strrchr(buf, ')');
    int field = 2;
    for (; c && *c && field < 38; c++)
        if (*c == ' ')
            field++;
    return c && field == 38 && c[0] == '0' && c[1] == ' ';
}

static int is_zombie(pid_t pid)
{
    char buf[512];
    if (read_proc(pid, "stat", buf, sizeof buf) <= 0)
        return 1;
    const char *paren = strrchr(buf, ')');
    return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

void descendants_scan(struct descendants *d, struct procset *ps)
{
    double t = clock_mono_s();
    if (t - d->last_scan < SCAN_EVERY_S)
        return;
    d->last_scan = t;
    DIR *dir = opendir("/proc");
    if (!dir)
        return;
    /* Parents change only when one dies (its children go to the subreaper): keep what was read,
     * for the processes still there. */
    struct u64map seen;
    u64map_init(&seen);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        uint64_t *old = u64map_get(&d->ppid, (uint64_t)pid);
        pid_t pp = old ? (pid_t)(*old - 1) : parent_of((pid_t)pid);
        uint64_t *slot = u64map_put(&seen, (uint64_t)pid, NULL);
        if (slot)
            *slot = (uint64_t)pp + 1;
    }
    closedir(dir);
    u64map_free(&d->ppid);
    d->ppid = seen;
    /* A process whose parent died was handed to us: read those parents again. */
    for (size_t i = 0; i < d->ppid.cap; i++) {
        uint64_t pid = d->ppid.keys[i];
        if (!pid || u64map_get(&d->ppid, d->ppid.vals[i] - 1) || d->ppid.vals[i] - 1 <= 1)
            continue;
        d->ppid.vals[i] = (uint64_t)parent_of((pid_t)pid) + 1;
    }
    for (size_t i = 0; i < d->ppid.cap; i++) {
        pid_t pid = (pid_t)d->ppid.keys[i];
        if (!pid || pid == d->self || !is_ours(d, pid) || is_exit_helper(ps, pid))
            continue;
        struct process *p = newest(ps, (uint32_t)pid);
        if (!p) {
            p = procset_get(ps, (uint32_t)pid, NULL);
            if (!p)
                return;
            p->ppid = (uint32_t)(d->ppid.vals[i] - 1);
        }
        if (!p->attached && pid != d->main_pid)
            note_why(p);
    }
}

/* Does a child of cgoscope still run, other than exit helpers and the dead not yet reaped? */
static int children_running(struct descendants *d, const struct procset *ps)
{
    DIR *dir = opendir("/proc");
    if (!dir)
        return 1;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == d->self)
            continue;
        if (parent_of((pid_t)pid) == d->self && !is_exit_helper(ps, (pid_t)pid) && !is_zombie((pid_t)pid))
            found = 1;
    }
    closedir(dir);
    return found;
}

static void note_exit(struct procset *ps, pid_t pid, int status)
{
    struct process *p = newest(ps, (uint32_t)pid);
    if (p)
        process_set_exit(p, status);
}

static void nap_ms(long ms) { clock_sleep_us(ms * 1000); }

void descendants_wait(struct descendants *d, size_t (*drain)(void *arg), void *arg, struct procset *ps,
                      volatile sig_atomic_t *stop)
{
    int told = 0;
    while (!*stop) {
        int status;
        pid_t w = waitpid(-1, &status, WNOHANG | __WALL);
        if (w > 0) {
            note_exit(ps, w, status);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break; /* no child left: nothing of the run runs any more */
        if (!children_running(d, ps))
            break; /* only exit helpers, waiting to be scanned */
        if (!told) {
            told = 1;
            fprintf(stderr, "cgoscope: the program has ended; waiting for the processes it left running:");
            d->last_scan = 0;
            descendants_scan(d, ps);
            for (size_t i = 0; i < d->ppid.cap; i++)
                if (d->ppid.keys[i] && d->ppid.vals[i] - 1 == (uint64_t)d->self)
                    fprintf(stderr, " %llu", (unsigned long long)d->ppid.keys[i]);
            fprintf(stderr, " (Ctrl-C reports now)\n");
        }
        size_t n = drain(arg);
        descendants_scan(d, ps);
        if (!n)
            nap_ms(5);
    }
}
