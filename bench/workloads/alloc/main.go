// alloc: malloc/free pairs made by C inside cgo calls, a few C frames deep.
//
// Default: 2,000 cgo calls, each making 1,000 malloc/free pairs (2M pairs) at C stack depth 6
// (the cgo wrapper, churn, level1..level4, which calls malloc). The program ends through C's
// exit(0), so that heaptrack's exit handlers run and it sees the allocations too.
//
// -leak N adds N blocks of 32 bytes allocated from 4 stacks at the end; -leakmode keep leaves
// them live (leaked), -leakmode free frees each one right after allocating it. The bench uses
// the pair to measure the analyzer's memory per live allocation.
//
// -gopairs N adds N pairs of C.malloc and C.free called from Go, one cgo call each: the way Go
// code frees C memory (cgo's wrapper for C.free tail-calls free, so free is called from the cgo
// call itself, with no C frame between).
package main

/*
#include <stdlib.h>

// Stores keep the compiler from removing a malloc/free pair; the empty asm after each call
// keeps the calls real calls (no tail jumps), so every level is a frame on the stack.
static void *volatile sink;

__attribute__((noinline)) static void *level4(size_t n)
{
	char *p = malloc(n);
	if (p)
		p[0] = 1;
	__asm__ volatile("" ::: "memory");
	return p;
}
__attribute__((noinline)) static void *level3(size_t n) { void *p = level4(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *level2(size_t n) { void *p = level3(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *level1(size_t n) { void *p = level2(n); __asm__ volatile("" ::: "memory"); return p; }

__attribute__((noinline)) static void churn(int pairs)
{
	for (int i = 0; i < pairs; i++) {
		void *p = level1(16 + (size_t)(i & 127) * 8);
		sink = p;
		free(p);
	}
	__asm__ volatile("" ::: "memory");
}

// Four distinct stacks for the blocks left live.
__attribute__((noinline)) static void *leak_a(void) { void *p = level1(32); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *leak_b(void) { void *p = level1(32); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *leak_c(void) { void *p = level1(32); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *leak_d(void) { void *p = level1(32); __asm__ volatile("" ::: "memory"); return p; }

static void leak(int n, int keep)
{
	for (int i = 0; i < n; i++) {
		void *p;
		switch (i & 3) {
		case 0: p = leak_a(); break;
		case 1: p = leak_b(); break;
		case 2: p = leak_c(); break;
		default: p = leak_d(); break;
		}
		sink = p;
		if (!keep)
			free(p);
	}
}

static void c_exit(int code) { exit(code); }
*/
import "C"

import (
	"flag"
	"fmt"
	"os"
	"unsafe"
)

func main() {
	calls := flag.Int("calls", 2000, "cgo calls")
	pairs := flag.Int("pairs", 1000, "malloc/free pairs per call")
	nleak := flag.Int("leak", 0, "extra blocks allocated at the end")
	mode := flag.String("leakmode", "keep", "keep: leave the extra blocks live; free: free each at once")
	goexit := flag.Bool("goexit", false, "end by returning from main instead of C exit(0)")
	gopairs := flag.Int("gopairs", 0, "C.malloc/C.free pairs called from Go")
	flag.Parse()
	if *mode != "keep" && *mode != "free" {
		fmt.Fprintln(os.Stderr, "alloc: -leakmode is keep or free")
		os.Exit(2)
	}
	for i := 0; i < *calls; i++ {
		C.churn(C.int(*pairs))
	}
	for i := 0; i < *gopairs; i++ {
		p := C.malloc(C.size_t(16 + (i&127)*8))
		C.free(unsafe.Pointer(p))
	}
	// In slices of 1,000 so that the leak is made by many cgo calls, like the churn.
	keep := C.int(0)
	if *mode == "keep" {
		keep = 1
	}
	for left := *nleak; left > 0; left -= 1000 {
		n := left
		if n > 1000 {
			n = 1000
		}
		C.leak(C.int(n), keep)
	}
	if !*goexit {
		C.c_exit(0)
	}
}
