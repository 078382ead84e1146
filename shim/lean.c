/*
 * Store-free cgo calls (docs/crossings.md, "Store-free calls").
 *
 * On this kind of machine the first store a hook makes between runtime.asmcgocall and the C
 * wrapper costs as much as the rest of the hook (bench/README.md, hook-floor), so a site whose
 * calls need nothing from the hook but their count is counted without one: the runtime already
 * counts every call a thread makes through runtime.cgocall (m.ncgocall), and a thread that calls
 * the same site over and over keeps a *run*: the site, and the value of m.ncgocall when the run's
 * count was last brought up to date. A call of that site only reads (the gate, g, m, ncgocall)
 * and jumps on to the wrapper; any other call ends the run first, adding its length to the site's
 * count; one call in N (chosen by a hash of ncgocall, so no countdown is stored) goes the full
 * way to be timed, and brings the run's count up to date.
 *
 * A run still open when the process ends is counted by a helper: a process made with
 * clone(CLONE_VM) at the first run, which shares the program's memory, outlives its exit
 * (exit_group, SIGKILL, a crash) or exec, reads each open run's m.ncgocall from the memory the
 * program left behind, adds it up, and marks the thread's stats chunk done; the analyzer waits for
 * that before it reads the counts. The helper runs no libc code and touches no thread-local
 * storage: it shares the thread pointer of the thread that made it.
 *
 * A site takes runs only after LEAN_AFTER calls on the thread that needed no call context (no
 * allocation, no callback inside). If one later does, the allocation or callback finds its call
 * in progress with no context (stack.c, cgs_lean_check): the run ends, the site never takes runs
 * again on this thread, and the call is promoted: given a context, as if it had come through the
 * full hook, and its return address (in runtime.asmcgocall) replaced by cgs_lean_return, which
 * ends the context when the wrapper returns.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "shim.h"

#define LEAN_RUNS 4096    /* threads with a run at once */
#define LEAN_AFTER 64     /* context-free calls of a site on a thread before it takes runs */
#define LEAN_BLOCKED 0xffffu

CGS_HIDDEN __thread uint32_t cgs_lean_gate __attribute__((tls_model("initial-exec")));
CGS_HIDDEN __thread uintptr_t cgs_lean_m __attribute__((tls_model("initial-exec")));
CGS_HIDDEN intptr_t cgs_lean_tlsg;     /* %fs offset of runtime.tlsg: the thread's g */
CGS_HIDDEN uint32_t cgs_lean_g_m, cgs_lean_m_ncgocall;
CGS_HIDDEN uint64_t cgs_lean_threshold; /* a call whose hash is below this is timed */
CGS_HIDDEN uintptr_t cgs_cgocall_lo, cgs_cgocall_hi; /* runtime.cgocall */

static uint32_t m_procid;
static int tlsg_known;
/* 0: not decided yet; 1: runs allowed; -1: never in this process */
static int lean_mode;
static int timing_full, timeline_on;
CGS_HIDDEN int cgs_lean_wanted; /* cgs_lean_after is worth calling */

static struct cgs_lean_run runs[LEAN_RUNS];
static atomic_flag runs_lock = ATOMIC_FLAG_INIT;

/* The helper: 0 none, 1 starting, 2 watching, -1 failed. */
static _Atomic int helper_state;
static pid_t helper_target;
static pid_t helper_pid;
/* Keep the address space for the analyzer's reachability scan: after the program ends, the
 * helper waits until the analyzer has read it (the analyzer kills it) or is gone. */
static int helper_linger;
static pid_t helper_analyzer;
/* File mode (no analyzer to read the memory after the end): the helper writes what the scan
 * needs next to the trace, "<trace>.<helper pid>.mem" (docs/reachability.md). */
static char dump_prefix[4096];
static int helper_dump;
static uintptr_t helper_stack_lo, helper_stack_hi;
static int helper_no_kcmp; /* CGOSCOPE_HELPER_NO_KCMP=1: as where kcmp is not allowed (tests) */

void cgs_lean_set_tlsg(intptr_t off)
{
    cgs_lean_tlsg = off;
    tlsg_known = 1;
}

void cgs_lean_init(int full_timing, int timeline, uint32_t sample_every)
{
    timing_full = full_timing;
    timeline_on = timeline;
    cgs_lean_threshold = sample_every ? UINT64_MAX / sample_every : 0;
    const char *e = getenv("CGOSCOPE_STORE_FREE_CALLS");
    if (e && strcmp(e, "0") == 0)
        lean_mode = -1;
    /* Under valgrind, which refuses clone() without CLONE_THREAD (the helper). */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload"))
        lean_mode = -1;
    cgs_lean_wanted = lean_mode == 0 && !full_timing && !timeline;
    const char *nk = getenv("CGOSCOPE_HELPER_NO_KCMP");
    helper_no_kcmp = nk && *nk == '1';
}

static inline uintptr_t current_m(void)
{
    uintptr_t g;
    __asm__ volatile("movq %%fs:(%1), %0" : "=r"(g) : "r"(cgs_lean_tlsg));
    return g ? *(const uintptr_t *)(g + cgs_lean_g_m) : 0;
}

static inline uint64_t ncgocall(uintptr_t m) { return *(const volatile uint64_t *)(m + cgs_lean_m_ncgocall); }

/* Both words in one instruction: a process killed between two stores would leave a run that
 * is counted twice or not at all. */
static inline void store_pair(struct cgs_lean_run *r, uint64_t base, uint64_t calls_at_open)
{
    __m128i v = _mm_set_epi64x((long long)calls_at_open, (long long)base);
    _mm_store_si128((__m128i *)&r->base, v);
}

/* ---- The helper -------------------------------------------------------------------------------
 * Raw system calls only: no errno, no stack protector, nothing thread-local. */

static inline long raw5(long n, long a, long b, long c, long d, long e)
{
    long r;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
    return r;
}

/* Adds what an open run counted up to m.ncgocall == final. The run's thread is gone or is this
 * one: nothing changes it meanwhile. */
__attribute__((no_stack_protector)) static void flush_run(struct cgs_lean_run *r, uint64_t final)
{
    struct cgs_site_stats *s = r->s;
    if (!s)
        return;
    /* s->calls differs from calls_at_open only if the thread died between bringing it up to
     * date and storing the pair that says so: then it is up to date. */
    if (s->calls == r->calls_at_open && final >= r->base) {
        s->calls = r->calls_at_open + (final - r->base);
        if (r->chunk)
            r->chunk->lean_calls += final - r->base;
    }
    r->s = NULL;
}

/* Field 28 (startstack) of /proc/<pid>/stat (pid 0: self), or 0. The address space's own: the
 * same for every process that shares it, new (randomized) after exec. */
__attribute__((no_stack_protector)) static unsigned long start_stack(long pid)
{
    char path[32] = "/proc/", buf[1024];
    int n = 6;
    if (pid == 0) {
        const char *self = "self";
        for (int i = 0; self[i]; i++)
            path[n++] = self[i];
    } else {
        char digits[24];
        int k = 0;
        for (long v = pid; v > 0 && k < 20; v /= 10)
            digits[k++] = (char)('0' + v % 10);
        while (k > 0)
            path[n++] = digits[--k];
    }
    const char *tail = "/stat";
    for (int i = 0; tail[i]; i++)
        path[n++] = tail[i];
    path[n] = 0;
    long fd = raw5(SYS_open, (long)path, 0 /* O_RDONLY */, 0, 0, 0);
    if (fd < 0)
        return 0;
    long len = raw5(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0);
    raw5(SYS_close, fd, 0, 0, 0, 0);
    if (len <= 0)
        return 0;
    buf[len] = 0;
    long at = -1;
    for (long i = 0; i < len; i++)
        if (buf[i] == ')')
            at = i; /* the last ')': the command name may hold anything */
    if (at < 0)
        return 0;
    long i = at + 2; /* field 3, the state */
    for (int field = 3; field < 28 && i < len; i++)
        if (buf[i] == ' ')
            field++;
    unsigned long v = 0;
    for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++)
        v = v * 10 + (unsigned long)(buf[i] - '0');
    return v;
}

/* Is the program still running in the address space this helper shares? kcmp says so exactly;
 * where it is not allowed (containers without CAP_SYS_PTRACE), the address space's stack start,
 * which exec draws anew. */
__attribute__((no_stack_protector)) static int same_space(long self, int use_kcmp, unsigned long stack0)
{
    if (use_kcmp)
        return raw5(SYS_kcmp, self, helper_target, 1 /* KCMP_VM */, 0, 0) == 0;
    unsigned long now = start_stack(helper_target);
    return now != 0 && now == stack0;
}

/* ---- The memory image of file mode ----------------------------------------------------------
 * The format (read by analyzer/analysis/reach.c): "CGSMEM01", u64 length of /proc/self/maps' text, the
 * text padded to 8, then runs: u64 address, u64 length, the bytes (length is a multiple of 4096),
 * and a run of length 0 at the end. Only private writable mappings, only pages present or
 * swapped out: a page never touched reads as zeros anyway. */

static char maps_buf[1 << 20];
static uint64_t pm_buf[512];

__attribute__((no_stack_protector)) static int put(long fd, const void *p, unsigned long n)
{
    const char *c = p;
    while (n) {
        long w = raw5(SYS_write, fd, (long)c, (long)n, 0, 0);
        if (w <= 0)
            return -1;
        c += w;
        n -= (unsigned long)w;
    }
    return 0;
}

__attribute__((no_stack_protector)) static unsigned long hex(const char **s)
{
    unsigned long v = 0;
    for (;; (*s)++) {
        char c = **s;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v << 4 | (unsigned long)d;
    }
}

__attribute__((no_stack_protector)) static void dump_memory(long self)
{
    char path[4200];
    int n = 0;
    for (; dump_prefix[n] && n < 4096; n++)
        path[n] = dump_prefix[n];
    path[n++] = '.';
    char digits[24];
    int k = 0;
    for (long v = self; v > 0 && k < 20; v /= 10)
        digits[k++] = (char)('0' + v % 10);
    while (k > 0)
        path[n++] = digits[--k];
    const char *tail = ".mem";
    for (int i = 0; tail[i]; i++)
        path[n++] = tail[i];
    path[n] = 0;
    /* Written under "<name>.part", renamed when complete: a report never reads half an image. */
    char part[4210];
    for (int i = 0; i <= n; i++)
        part[i] = path[i];
    const char *ptail = ".part";
    for (int i = 0; ptail[i]; i++)
        part[n + i] = ptail[i];
    part[n + 5] = 0;
    long mf = raw5(SYS_open, (long)"/proc/self/maps", 0, 0, 0, 0);
    long pm = raw5(SYS_open, (long)"/proc/self/pagemap", 0, 0, 0, 0);
    long fd = raw5(SYS_open, (long)part, 01 | 0100 | 0200 | 02000000 /* O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC */, 0600, 0, 0);
    unsigned long len = 0;
    for (long r; mf >= 0 && len < sizeof maps_buf - 1 &&
                 (r = raw5(SYS_read, mf, (long)(maps_buf + len), (long)(sizeof maps_buf - 1 - len), 0, 0)) > 0;)
        len += (unsigned long)r;
    maps_buf[len] = 0;
    if (mf >= 0)
        raw5(SYS_close, mf, 0, 0, 0, 0);
    if (fd < 0 || pm < 0) {
        if (fd >= 0)
            raw5(SYS_close, fd, 0, 0, 0, 0);
        if (pm >= 0)
            raw5(SYS_close, pm, 0, 0, 0, 0);
        return;
    }
    static const char magic[8] = "CGSMEM01";
    static const uint64_t zero = 0;
    uint64_t hlen = len;
    int bad = put(fd, magic, 8) || put(fd, &hlen, 8) || put(fd, maps_buf, len) || put(fd, &zero, (8 - len % 8) % 8);
    for (const char *line = maps_buf; !bad && *line;) {
        const char *s = line;
        unsigned long lo = hex(&s);
        s++;
        unsigned long hi = hex(&s);
        s++;
        int rw = s[0] == 'r' && s[1] == 'w' && s[3] == 'p';
        while (*line && *line != '\n')
            line++;
        if (*line)
            line++;
        if (!rw || hi <= lo)
            continue;
        for (unsigned long at = lo; !bad && at < hi;) {
            if (at >= helper_stack_lo && at < helper_stack_hi) { /* its own frames: of no interest */
                at = helper_stack_hi;
                continue;
            }
            unsigned long pages = (hi - at) / 4096, first = at / 4096;
            if (pages > 512)
                pages = 512;
            if (at < helper_stack_lo && at + pages * 4096 > helper_stack_lo)
                pages = (helper_stack_lo - at) / 4096;
            if (raw5(SYS_pread64, pm, (long)pm_buf, (long)(pages * 8), (long)(first * 8), 0) != (long)(pages * 8))
                break;
            for (unsigned long i = 0; !bad && i < pages;) {
                if (!(pm_buf[i] >> 62)) {
                    i++;
                    continue;
                }
                unsigned long j = i;
                while (j < pages && (pm_buf[j] >> 62))
                    j++;
                uint64_t run[2] = {at + i * 4096, (j - i) * 4096};
                bad = put(fd, run, 16) || put(fd, (const void *)run[0], run[1]);
                i = j;
            }
            at += pages * 4096;
        }
    }
    static const uint64_t end[2] = {0, 0};
    if (!bad)
        bad = put(fd, end, 16);
    raw5(SYS_close, fd, 0, 0, 0, 0);
    if (!bad)
        raw5(SYS_rename, (long)part, (long)path, 0, 0, 0);
    else
        raw5(SYS_unlink, (long)part, 0, 0, 0, 0);
    raw5(SYS_close, pm, 0, 0, 0, 0);
}

__attribute__((no_stack_protector)) static int helper_main(void *arg)
{
    (void)arg;
    /* Its own copy of the program's signal handlers: back to the defaults, so that not even a
     * signal the kernel forces through the blocked mask (a fault) can run the program's code here. */
    struct {
        long handler, flags, restorer, mask;
    } dfl = {0, 0, 0, 0};
    for (long sig = 1; sig <= 64; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            raw5(SYS_rt_sigaction, sig, (long)&dfl, 0, 8, 0);
    /* Hold none of the program's files open (a pipe it writes to must see its end). */
    if (raw5(SYS_close_range, 0, ~0L, 0, 0, 0) != 0)
        for (long fd = 0; fd < 4096; fd++)
            raw5(SYS_close, fd, 0, 0, 0, 0);
    static const char name[16] = "cgoscope-exit";
    raw5(SYS_prctl, 15 /* PR_SET_NAME */, (long)name, 0, 0, 0);
    long self = raw5(SYS_getpid, 0, 0, 0, 0, 0);
    long k = helper_no_kcmp ? -1 : raw5(SYS_kcmp, self, helper_target, 1 /* KCMP_VM */, 0, 0);
    int use_kcmp = k == 0;
    unsigned long stack0 = use_kcmp ? 0 : start_stack(0);
    /* A short-lived program may be gone before its helper first runs: its memory is still here. */
    int gone = k == -3 /* ESRCH */ || k > 0 /* a zombie, or exec already: not the space it was */;
    if (!gone && ((k != 0 && k != -1 /* EPERM */ && k != -38 /* ENOSYS */) ||
                  (!use_kcmp && (!stack0 || start_stack(helper_target) != stack0)))) {
        atomic_store(&helper_state, -1); /* cannot tell when the program ends or runs exec */
        raw5(SYS_exit, 0, 0, 0, 0, 0);
    }
    long pidfd = gone ? -1 : raw5(434 /* SYS_pidfd_open */, helper_target, 0, 0, 0, 0);
    atomic_store(&helper_state, 2);
    while (!gone) {
        if (pidfd >= 0) {
            struct {
                int fd;
                short events, revents;
            } p = {(int)pidfd, 1 /* POLLIN */, 0};
            struct timespec t = {0, 10 * 1000 * 1000};
            raw5(SYS_ppoll, (long)&p, 1, (long)&t, 0, 8);
        } else {
            struct timespec t = {0, 2 * 1000 * 1000};
            raw5(SYS_nanosleep, (long)&t, 0, 0, 0, 0);
        }
        /* Another address space there: the program ended or ran exec. */
        if (!same_space(self, use_kcmp, stack0))
            break;
    }
    for (int i = 0; i < LEAN_RUNS; i++) {
        struct cgs_lean_run *r = &runs[i];
        if (!r->s)
            continue;
        /* procid is 0 if the thread was on its way out (its M is not freed before it is gone). */
        const uint64_t *proc = (const uint64_t *)(r->m + m_procid);
        if (*proc == r->tid || *proc == 0)
            flush_run(r, *(const uint64_t *)(r->m + cgs_lean_m_ncgocall));
    }
    for (int i = 0; i < LEAN_RUNS; i++) /* every chunk a run ever counted into */
        if (runs[i].chunk)
            atomic_store(&runs[i].chunk->lean, CGS_LEAN_FLUSHED);
    if (helper_dump)
        dump_memory(self);
    if (helper_linger && helper_analyzer > 0) {
        /* The address space stays as the program left it while this task shares it
         * (docs/cgo-facts.md §9): the analyzer scans it, then kills this task. Should the
         * analyzer die first, its pidfd says so. */
        long afd = raw5(434 /* SYS_pidfd_open */, helper_analyzer, 0, 0, 0, 0);
        for (;;) {
            if (afd >= 0) {
                struct {
                    int fd;
                    short events, revents;
                } p = {(int)afd, 1 /* POLLIN */, 0};
                if (raw5(SYS_ppoll, (long)&p, 1, 0, 0, 8) == 1)
                    break;
            } else {
                struct timespec t = {0, 100 * 1000 * 1000};
                raw5(SYS_nanosleep, (long)&t, 0, 0, 0, 0);
                if (raw5(SYS_kill, helper_analyzer, 0, 0, 0, 0) == -3 /* ESRCH */)
                    break;
            }
        }
    }
    raw5(SYS_exit, 0, 0, 0, 0, 0);
    return 0;
}

static void start_helper(int wait)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&helper_state, &expect, 1))
        return;
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        atomic_store(&helper_state, -1);
        return;
    }
    helper_target = getpid();
    helper_stack_lo = (uintptr_t)stack;
    helper_stack_hi = (uintptr_t)stack + size;
    /* Every signal blocked in the helper (it inherits this mask): the program's handlers, which
     * it shares, must never run there. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int saved_errno = errno;
    long pid = clone(helper_main, stack + size, CLONE_VM | CLONE_UNTRACED, NULL);
    errno = saved_errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        atomic_store(&helper_state, -1);
        return;
    }
    helper_pid = (pid_t)pid;
    /* Runs start once it watches: wait for that (well under a millisecond), so that when they
     * start does not depend on how busy the machine is. */
    for (int i = 0; wait && i < 2000 && atomic_load(&helper_state) == 1; i++) {
        struct timespec d = {0, 20000};
        nanosleep(&d, NULL);
    }
    errno = saved_errno;
}

/* ---- Deciding -------------------------------------------------------------------------------- */

/* Reads a word the way a debugger would: nothing vouches for the layout until it is checked. */
static int peek(uintptr_t addr, uint64_t *out)
{
    struct iovec local = {out, sizeof *out}, remote = {(void *)addr, sizeof *out};
    return addr && process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof *out;
}

static int decide(void)
{
    if (!tlsg_known || timing_full || timeline_on || !cgs_lazy_go_frames || !cgs_cgocall_lo)
        return -1;
    const struct cgs_shm_header *h = cgs_channel_header();
    if (!h)
        return -1; /* no analyzer (trace file mode): no layout, no helper's result is waited for */
    struct stat st;
    if (stat("/proc/self/exe", &st) != 0)
        return -1;
    const struct cgs_go_layout *e = NULL;
    uint32_t n = atomic_load(&h->go_layouts_n);
    for (uint32_t i = 0; i < n && i < CGS_GO_LAYOUTS && !e; i++)
        if (atomic_load_explicit(&h->go_layouts[i].ready, memory_order_acquire) == 1 &&
            h->go_layouts[i].exe_dev == (uint64_t)st.st_dev && h->go_layouts[i].exe_ino == (uint64_t)st.st_ino)
            e = &h->go_layouts[i];
    if (!e) /* may still come: the analyzer reads it once this process has attached */
        return n >= CGS_GO_LAYOUTS ? -1 : 0;
    cgs_lean_g_m = e->g_m;
    cgs_lean_m_ncgocall = e->m_ncgocall;
    m_procid = e->m_procid;
    /* The layout must fit what this thread sees: its g's m has it as procid. */
    uintptr_t g;
    uint64_t m, procid;
    __asm__ volatile("movq %%fs:(%1), %0" : "=r"(g) : "r"(cgs_lean_tlsg));
    if (!peek(g + cgs_lean_g_m, &m) || !peek(m + m_procid, &procid) || procid != (uint64_t)syscall(SYS_gettid))
        return -1;
    return 1;
}

/* ---- Runs ------------------------------------------------------------------------------------ */

static struct cgs_lean_run *take_run(struct cgs_thread *t)
{
    struct cgs_lean_run *r = NULL;
    while (atomic_flag_test_and_set_explicit(&runs_lock, memory_order_acquire))
        ;
    for (int i = 0; i < LEAN_RUNS && !r; i++)
        if (!runs[i].used) {
            r = &runs[i];
            memset(r, 0, sizeof *r);
            r->used = 1;
        }
    atomic_flag_clear_explicit(&runs_lock, memory_order_release);
    if (r)
        r->tid = t->tid ? t->tid : (uint32_t)syscall(SYS_gettid);
    return r;
}

/* Brings the run's site's count up to call number upto (m.ncgocall), store_free of those calls
 * having been counted without a store; returns the count. */
static uint64_t bring_up(struct cgs_lean_run *r, uint64_t upto, uint64_t store_free)
{
    uint64_t calls = r->calls_at_open + (upto - r->base);
    if (upto > r->base) {
        r->s->calls = calls;
        r->chunk->lean_calls += store_free;
    }
    return calls;
}

/* Ends the open run after call number upto and closes the gate. */
static void close_run(struct cgs_thread *t, uint64_t upto)
{
    struct cgs_lean_run *r = t->lean;
    bring_up(r, upto, upto - r->base);
    r->s = NULL;
    t->lean_open = 0;
    cgs_lean_gate = 0;
}

int cgs_lean_enter(struct cgs_thread *t, uint32_t site)
{
    struct cgs_lean_run *r = t->lean;
    uintptr_t m = current_m();
    if (r->site == site && m == r->m) {
        /* The run's own site: this call is counted in the run, which stays open. */
        uint64_t n = ncgocall(m);
        store_pair(r, n, bring_up(r, n, n - r->base - 1 /* all but this one */));
        cgs_lean_gate = site + 1;
        return n * 0x9e3779b97f4a7c15ull < cgs_lean_threshold ? 3 : 1;
    }
    /* Another site (or the thread's M changed: then the old M's count ends the run). */
    close_run(t, m == r->m ? ncgocall(m) - 1 : ncgocall(r->m));
    return 0;
}

/* Calls in a row before a site that could not start a run asks again: a hot loop whose runs are
 * not possible (no layout, a site that allocated once) must not pay a call here each time. */
#define LEAN_BACKOFF 65536

static void not_now(struct cgs_thread *t) { t->lean_streak = -LEAN_BACKOFF; }
/* The layout not there yet (the analyzer reads it once the process has attached): sooner. */
#define LEAN_BACKOFF_LAYOUT 4096

void cgs_lean_after(struct cgs_thread *t, uint32_t site, struct cgs_site_stats *s, int clean)
{
    if (!t->index || site >= CGS_NSTUBS)
        return;
    uint16_t *c = &t->index->clean[site];
    if (!clean) {
        *c = LEAN_BLOCKED;
        return;
    }
    if (t->lean_open)
        return;
    if (*c == LEAN_BLOCKED) {
        not_now(t);
        return;
    }
    if (++*c < LEAN_AFTER)
        return;
    *c = LEAN_AFTER;
    if (lean_mode == 0) {
        int saved_errno = errno;
        lean_mode = decide();
        errno = saved_errno;
        if (lean_mode < 0)
            cgs_lean_wanted = 0;
    }
    if (lean_mode != 1) {
        not_now(t);
        if (lean_mode == 0)
            t->lean_streak = -LEAN_BACKOFF_LAYOUT;
        return;
    }
    if (atomic_load(&helper_state) == 0)
        start_helper(1);
    for (int i = 0; i < 2000 && atomic_load(&helper_state) == 1; i++) { /* started early: watching yet? */
        struct timespec d = {0, 20000};
        nanosleep(&d, NULL);
    }
    if (atomic_load(&helper_state) != 2) { /* runs start once the helper watches */
        not_now(t);
        return;
    }
    if (!t->lean && !(t->lean = take_run(t))) {
        not_now(t);
        return;
    }
    struct cgs_lean_run *r = t->lean;
    uintptr_t m = current_m();
    struct cgs_stats_chunk *chunk = cgs_stats_chunk_of(s);
    if (!m || !chunk) {
        not_now(t);
        return;
    }
    if (atomic_load(&chunk->lean) != CGS_LEAN_OPEN)
        atomic_store(&chunk->lean, CGS_LEAN_OPEN);
    r->chunk = chunk;
    r->site = site;
    r->m = m;
    cgs_lean_m = m;
    store_pair(r, ncgocall(m), s->calls);
    atomic_store_explicit(&r->s, s, memory_order_release);
    t->lean_open = 1;
    cgs_lean_gate = site + 1;
}

/* An allocation or a callback on a thread with an open run: the run ends, its site takes no runs
 * again here, and if the event is inside one of its calls (the C unwind reached Go code at slot,
 * in runtime.asmcgocall called from runtime.cgocall), that call is promoted. */
void cgs_lean_break(struct cgs_thread *t, uintptr_t slot, uintptr_t ip, uintptr_t bp)
{
    struct cgs_lean_run *r = t->lean;
    uint32_t site = r->site;
    uintptr_t m = current_m();
    /* A call in progress on this M is the run's (or it would have ended the run on entry). */
    close_run(t, m == r->m ? ncgocall(m) : ncgocall(r->m));
    if (t->index && site < CGS_NSTUBS)
        t->index->clean[site] = LEAN_BLOCKED;
    uint32_t d = t->depth;
    if (!slot || d >= CGS_LEAN_RET || *(const uintptr_t *)slot != ip)
        return;
    if (d < CGS_MAX_CTX) {
        struct cgs_cgo_ctx *c = &t->ctx[d];
        c->site = site;
        c->frame[0] = bp;
        c->frame[1] = ip;
        c->fp = c->frame;
        c->ngo = CGS_GO_LAZY;
    }
    t->lean_ret[d] = ip;
    t->depth = d + 1;
    *(uintptr_t *)slot = (uintptr_t)cgs_lean_return;
}

/* Reached from cgs_lean_return when a promoted call's wrapper returns: where to go on to. */
__attribute__((section("cgoscope_hook"), used)) uintptr_t cgs_lean_returned(void)
{
    struct cgs_thread *t = &cgs_tls;
    uint32_t d = --t->depth;
    if (t->scrub_lo)
        cgs_scrub_stack(t);
    return t->lean_ret[d < CGS_LEAN_RET ? d : 0];
}

void cgs_lean_thread_exit(struct cgs_thread *t)
{
    struct cgs_lean_run *r = t->lean;
    if (!r)
        return;
    /* The runtime clears m.procid as the thread leaves (unminit); the M is not freed before the
     * thread is gone. */
    uint64_t procid = *(const uint64_t *)(r->m + m_procid);
    if (t->lean_open && (procid == r->tid || procid == 0))
        flush_run(r, ncgocall(r->m));
    r->s = NULL;
    t->lean_open = 0;
    cgs_lean_gate = 0;
    if (r->chunk) /* nothing of this thread is left to count in it */
        atomic_store(&r->chunk->lean, CGS_LEAN_FLUSHED);
    r->chunk = NULL;
    r->used = 0;
    t->lean = NULL;
}

/* Excludes the call in progress (one runtime.cgocall makes without a hooked wrapper) from the
 * open run: it must not be counted as the run's site. */
void cgs_lean_exclude(struct cgs_thread *t)
{
    if (!t->lean_open)
        return;
    struct cgs_lean_run *r = t->lean;
    uintptr_t m = current_m();
    if (m != r->m) {
        close_run(t, ncgocall(r->m));
        return;
    }
    uint64_t n = ncgocall(m);
    store_pair(r, n, bring_up(r, n - 1, n - 1 - r->base));
}

/* At start-up, in launcher mode: a helper from the start, so that whatever way the process ends
 * its memory can be scanned (docs/reachability.md). Not under valgrind (which refuses the
 * clone), nor with CGOSCOPE_REACHABILITY=0. */
void cgs_lean_start_early(void)
{
    const struct cgs_shm_header *h = cgs_channel_header();
    const char *file = cgs_channel_file_path();
    const char *e = getenv("CGOSCOPE_REACHABILITY");
    const char *pre = getenv("LD_PRELOAD");
    if ((e && strcmp(e, "0") == 0) || (pre && strstr(pre, "vgpreload")))
        return;
    if (h && h->analyzer_pid) {
        helper_linger = 1;
        helper_analyzer = (pid_t)h->analyzer_pid;
    } else if (file && strlen(file) < sizeof dump_prefix) {
        strcpy(dump_prefix, file);
        helper_dump = 1;
    } else {
        return;
    }
    start_helper(0);
}

uint32_t cgs_lean_helper_pid(void) { return atomic_load(&helper_state) >= 1 ? (uint32_t)helper_pid : 0; }

void cgs_lean_after_fork(void)
{
    /* The child has no helper, and its parent's runs are the parent's. */
    memset(runs, 0, sizeof runs);
    helper_pid = 0;
    atomic_store(&helper_state, 0);
    struct cgs_thread *t = &cgs_tls;
    t->lean = NULL;
    t->lean_open = 0;
    cgs_lean_gate = 0;
}
