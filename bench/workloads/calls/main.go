// calls: null cgo calls. Default 20M calls of a C function that does nothing; the program then
// ends through C's exit(0) like the other workloads. With -turns, two such functions are called
// in turns (the same number of calls in all): the pattern where no site is called twice in a row.
package main

/*
#include <stdlib.h>

// Does nothing but return its argument. Not inlined, and with an argument and a result, so that
// the cgo wrapper has a few instructions before its call: uftrace's dynamic patching cannot
// patch a wrapper that is a lone `ret` (an empty inlined function) or a lone `jmp`.
__attribute__((noinline)) int cgobench_nothing(int x) { __asm__ volatile(""); return x; }
__attribute__((noinline)) int cgobench_other(int x) { __asm__ volatile(""); return x + 1; }
static void c_exit(int code) { exit(code); }
*/
import "C"

import "flag"

func main() {
	n := flag.Int("n", 20000000, "cgo calls")
	goexit := flag.Bool("goexit", false, "end by returning from main instead of C exit(0)")
	turns := flag.Bool("turns", false, "call two C functions in turns")
	flag.Parse()
	if *turns {
		for i := 0; i < *n; i += 2 {
			C.cgobench_nothing(C.int(i))
			C.cgobench_other(C.int(i))
		}
	} else {
		for i := 0; i < *n; i++ {
			C.cgobench_nothing(C.int(i))
		}
	}
	if !*goexit {
		C.c_exit(0)
	}
}
