/*
 * One tiny entry per hooked cgo wrapper. runtime.asmcgocall calls the wrapper pointer with
 * the argument frame in %rdi; the stub adds its own index in %esi and jumps to the common
 * hook, which therefore returns straight into asmcgocall and leaves the frame-pointer chain
 * into the goroutine intact.
 */
#include "cgoscope/sites.h"

    .text
    .globl cgs_stubs
    .hidden cgs_stubs
    .type cgs_stubs, @function
    .balign 16
cgs_stubs:
    .set i, 0
    .rept CGS_NSTUBS
    .balign 16
    movl $i, %esi
    jmp cgs_lean_fast
    .set i, i + 1
    .endr
    .size cgs_stubs, . - cgs_stubs

/*
 * The store-free way (lean.c): a call of the site this thread's run counts, on the M it counts
 * on, whose m.ncgocall does not hash below the sampling threshold, goes straight on to its
 * wrapper having stored nothing (not even a frame). Anything else goes to cgs_cgo_enter with
 * %rdi and %esi as the stub set them.
 */
    .text
    .globl cgs_lean_fast
    .hidden cgs_lean_fast
    .type cgs_lean_fast, @function
    .balign 64
cgs_lean_fast:
    movq cgs_lean_gate@gottpoff(%rip), %rax
    leal 1(%rsi), %ecx
    cmpl %ecx, %fs:(%rax)
    jne cgs_cgo_enter
    movq cgs_lean_tlsg(%rip), %rax
    movq %fs:(%rax), %rax
    movl cgs_lean_g_m(%rip), %ecx
    movq (%rax,%rcx), %rax
    movq cgs_lean_m@gottpoff(%rip), %rcx
    cmpq %rax, %fs:(%rcx)
    jne cgs_cgo_enter
    movl cgs_lean_m_ncgocall(%rip), %ecx
    movq (%rax,%rcx), %rax
    movabsq $0x9e3779b97f4a7c15, %rcx
    imulq %rcx, %rax
    cmpq cgs_lean_threshold(%rip), %rax
    jb cgs_cgo_enter
    movl %esi, %eax
    leaq cgs_site_real(%rip), %rcx
    jmp *(%rcx,%rax,8)
    .size cgs_lean_fast, . - cgs_lean_fast

/*
 * Where a promoted store-free call (lean.c) returns to instead of runtime.asmcgocall: ends the
 * call's context and goes on to asmcgocall, the wrapper's result (%rax) untouched. In the hook's
 * section, so a C unwind from inside the call stops here as at the hook. The nop before it keeps
 * "return address - 1" inside the section too.
 */
    .section cgoscope_hook, "ax", @progbits
    nop
    .globl cgs_lean_return
    .hidden cgs_lean_return
    .type cgs_lean_return, @function
cgs_lean_return:
    pushq %rax
    pushq %rdx
    call cgs_lean_returned
    movq %rax, %r11
    popq %rdx
    popq %rax
    jmp *%r11
    .size cgs_lean_return, . - cgs_lean_return

/*
 * cgs_scrub_return(int rv, uintptr_t lo): the last act of a hook whose cgo call allocated or
 * freed (shim.h, cgs_call_done), tail-called, so that the hook's own frame is gone too: zeroes
 * the dead stack from lo up to 128 bytes under this routine's stack pointer (the return address
 * into runtime.asmcgocall), at most 64 KiB, then returns rv. A block's address left there by
 * malloc or by the shim must not look like a live pointer to the reachability scan
 * (docs/reachability.md). Only registers a C function may clobber are used.
 */
    .section cgoscope_hook, "ax", @progbits
    .globl cgs_scrub_return
    .hidden cgs_scrub_return
    .type cgs_scrub_return, @function
cgs_scrub_return:
    movl %edi, %r8d
    leaq -128(%rsp), %rcx
    movq %rsi, %rdi
    cmpq %rcx, %rdi
    jae 1f
    subq %rdi, %rcx
    cmpq $65536, %rcx
    ja 1f
    xorl %eax, %eax
    rep stosb
1:
    movl %r8d, %eax
    ret
    .size cgs_scrub_return, . - cgs_scrub_return

    .section .note.GNU-stack, "", @progbits
