// calls: null cgo calls. Default 20M calls of a C function that does nothing; the program then
// ends through C's exit(0) like the other workloads.
package main

/*
#include <stdlib.h>

// Does nothing but return its argument. Not inlined, and with an argument and a result, so that
// the cgo wrapper has a few instructions before its call: uftrace's dynamic patching cannot
// patch a wrapper that is a lone `ret` (an empty inlined function) or a lone `jmp`.
__attribute__((noinline)) int cgobench_nothing(int x) { __asm__ volatile(""); return x; }
static void c_exit(int code) { exit(code); }
*/
import "C"

import "flag"

func main() {
	n := flag.Int("n", 20000000, "cgo calls")
	goexit := flag.Bool("goexit", false, "end by returning from main instead of C exit(0)")
	flag.Parse()
	for i := 0; i < *n; i++ {
		C.cgobench_nothing(C.int(i))
	}
	if !*goexit {
		C.c_exit(0)
	}
}
