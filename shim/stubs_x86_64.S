/*
 * One tiny entry per hooked cgo wrapper. runtime.asmcgocall calls the wrapper pointer with
 * the argument frame in %rdi; the stub adds its own index in %esi and jumps to the common
 * hook, which therefore returns straight into asmcgocall and leaves the frame-pointer chain
 * into the goroutine intact.
 */
#define CGS_NSTUBS 4096

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
    jmp cgs_cgo_enter
    .set i, i + 1
    .endr
    .size cgs_stubs, . - cgs_stubs

    .section .note.GNU-stack, "", @progbits
