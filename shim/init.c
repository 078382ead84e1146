/* Start-up of the shim: attach the channel, describe the process, hook the cgo wrappers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

CGS_HIDDEN int cgs_ready;

static void send_proc(void)
{
    struct cgs_thread *t = &cgs_tls;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        n = 0;
    exe[n] = 0;
    uint32_t size = (uint32_t)CGS_ALIGN8(sizeof(struct cgs_rec_proc) + (size_t)n + 1);
    struct cgs_rec_proc *r = cgs_reserve(t, size);
    if (!r)
        return;
    memset(r, 0, size);
    r->h.type = CGS_REC_PROC;
    r->h.aux = (uint16_t)cgs_clock_kind;
    r->h.size = size;
    r->pid = (uint32_t)getpid();
    r->ppid = (uint32_t)getppid();
    r->ts = cgs_now_after();
    r->mono_ns = cgs_mono_ns();
    memcpy(r->exe, exe, (size_t)n + 1);
    cgs_commit(t, size);
}

static void after_fork_in_child(void) { cgs_channel_detach_after_fork(); }

__attribute__((constructor(101))) static void cgs_init(void)
{
    struct cgs_thread *t = &cgs_tls;
    t->guard++;
    if (!cgs_real_malloc)
        cgs_resolve_real();
    cgs_clock_init();
    cgs_callstats_init();
    if (cgs_channel_attach() == 0 && cgs_stack_init() == 0) {
        send_proc();
        uintptr_t bias = cgs_send_modules();
        cgs_hook_cgo_sites(bias);
        pthread_atfork(NULL, NULL, after_fork_in_child);
        cgs_ready = 1;
    }
    t->guard--;
}
