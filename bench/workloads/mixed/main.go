// mixed: many goroutines making cgo calls that allocate and free, with some leaks.
//
// Default: 32 goroutines x 4,000 iterations. Each iteration makes one cgo call into C that
// allocates 8 blocks (malloc, calloc, realloc, strdup) through a couple of C frames and frees
// them, except one block in 1,000 iterations, which it leaks; every 4th iteration also passes a
// C.CString to C and frees it from Go with C.free. The program ends through C's exit(0).
package main

/*
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

__attribute__((noinline)) static void *grab(size_t n) { void *p = malloc(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *grab_zero(size_t n) { void *p = calloc(1, n); __asm__ volatile("" ::: "memory"); return p; }

__attribute__((noinline)) static void step(unsigned seed, int leak)
{
	void *b[8];
	for (int i = 0; i < 6; i++)
		b[i] = (i & 1) ? grab_zero(24 + ((seed + i * 37) & 255)) : grab(16 + ((seed * 7 + i) & 511));
	b[6] = realloc(grab(40), 80 + (seed & 1023));
	b[7] = strdup("cgoscope benchmark string");
	sink = b[seed & 7];
	for (int i = 0; i < 8; i++)
		if (!(leak && i == 3))
			free(b[i]);
	__asm__ volatile("" ::: "memory");
}

static size_t take(const char *s) { return strlen(s); }
static void c_exit(int code) { exit(code); }
*/
import "C"

import (
	"flag"
	"sync"
	"unsafe"
)

func main() {
	workers := flag.Int("g", 32, "goroutines")
	iters := flag.Int("n", 4000, "iterations per goroutine")
	goexit := flag.Bool("goexit", false, "end by returning from main instead of C exit(0)")
	flag.Parse()
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < *iters; i++ {
				seed := uint32(w*1000003 + i)
				leak := 0
				if i%1000 == 999 {
					leak = 1
				}
				C.step(C.uint(seed), C.int(leak))
				if i%4 == 0 {
					s := C.CString("mixed workload")
					C.take(s)
					C.free(unsafe.Pointer(s))
				}
			}
		}(w)
	}
	wg.Wait()
	if !*goexit {
		C.c_exit(0)
	}
}
