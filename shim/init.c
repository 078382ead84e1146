/* Start-up of the shim: attach the channel, describe the process, hook the cgo wrappers. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

CGS_HIDDEN int cgs_ready;
CGS_HIDDEN int cgs_startup_log_on;

#define STARTUP_LOG_SIZE (1u << 20)
static uint8_t *startup_log;
static size_t startup_log_len;

void cgs_startup_log(const void *rec, uint32_t size)
{
    if (!startup_log) {
        void *m = mmap(NULL, STARTUP_LOG_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return;
        startup_log = m;
    }
    if (startup_log_len + size > STARTUP_LOG_SIZE)
        return;
    memcpy(startup_log + startup_log_len, rec, size);
    startup_log_len += size;
}

static void replay_startup_log(void)
{
    struct cgs_thread *t = &cgs_tls;
    for (size_t off = 0; off < startup_log_len;) {
        const struct cgs_rec_hdr *h = (const struct cgs_rec_hdr *)(startup_log + off);
        void *r = cgs_reserve(t, h->size);
        if (r) {
            memcpy(r, h, h->size);
            cgs_commit(t, h->size);
        }
        off += h->size;
    }
}

static int proc_forked; /* this process is a child of fork() (its heap began as its parent's) */

static void send_proc(void)
{
    struct cgs_thread *t = &cgs_tls;
    char exe[4096], args[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        n = 0;
    exe[n] = 0;
    ssize_t na = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        na = read(fd, args, sizeof args);
        close(fd);
        if (na < 0)
            na = 0;
        while (na > 0 && args[na - 1] != 0) /* a cut-off last argument is dropped */
            na--;
    }
    uint32_t size = (uint32_t)CGS_ALIGN8(sizeof(struct cgs_rec_proc) + (size_t)n + 1 + (size_t)na);
    struct cgs_rec_proc *r = cgs_reserve(t, size);
    if (!r)
        return;
    memset(r, 0, size);
    r->h.type = CGS_REC_PROC;
    r->h.aux = (uint16_t)(cgs_clock_kind | (proc_forked ? CGS_PROC_FORKED : 0));
    r->h.size = size;
    r->pid = (uint32_t)getpid();
    r->ppid = (uint32_t)getppid();
    r->ts = cgs_now_after();
    r->mono_ns = cgs_mono_ns();
    r->argv_len = (uint32_t)na;
    r->helper_pid = cgs_lean_helper_pid();
    memcpy(r->exe, exe, (size_t)n + 1);
    memcpy(r->exe + n + 1, args, (size_t)na);
    cgs_commit(t, size);
}

static void send_proc(void);

/* fork() without exec: the child is a process of its own, with its own records. */
static void after_fork_in_child(void)
{
    struct cgs_thread *t = &cgs_tls;
    t->guard++;
    cgs_channel_after_fork();
    cgs_callstats_after_fork();
    if (cgs_ready) {
        cgs_stack_reset();
        cgs_lean_start_early();
        proc_forked = 1;
        send_proc();
        replay_startup_log();
    }
    t->guard--;
}

/* cgoscope's own analyzer defines this: the shim never traces the tool itself (a shell that
 * ran `eval "$(cgoscope env)"` preloads the shim into `cgoscope report` too). */
extern const int cgoscope_analyzer_marker __attribute__((weak));

__attribute__((constructor(101))) static void cgs_init(void)
{
    struct cgs_thread *t = &cgs_tls;
    if (&cgoscope_analyzer_marker != NULL)
        return;
    t->guard++;
    if (!cgs_real_malloc)
        cgs_resolve_real();
    cgs_clock_init();
    cgs_callstats_init();
    if (cgs_channel_attach() == 0 && cgs_stack_init() == 0) {
        cgs_lean_start_early();
        send_proc();
        cgs_startup_log_on = 1;
        uintptr_t bias = cgs_send_modules();
        cgs_hook_cgo_sites(bias);
        cgs_startup_log_on = 0;
        pthread_atfork(NULL, NULL, after_fork_in_child);
        cgs_ready = 1;
    }
    t->guard--;
}
