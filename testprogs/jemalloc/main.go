// jemalloc is linked with jemalloc (#cgo LDFLAGS: -ljemalloc), whose library exports malloc,
// free and the rest under their usual names: every C allocation of the program, and Go's
// C.CString, goes to jemalloc. It leaks through each standard function and frees everything
// else, and checks that jemalloc really served those calls (its per-thread byte counter grew).
// A block allocated and freed through jemalloc's own API (mallocx, dallocx) is neither seen nor
// a leak.
package main

/*
#cgo LDFLAGS: -ljemalloc
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jemalloc/jemalloc.h>

void *volatile je_sink;

static uint64_t thread_allocated(void) {
	uint64_t v = 0;
	size_t sz = sizeof v;
	if (mallctl("thread.allocated", &v, &sz, NULL, 0) != 0)
		return 0;
	return v;
}

// Each stores what it got before returning, so the allocation is not a tail call and the
// function stays on the stack.
__attribute__((noinline)) void *je_leak_malloc(size_t n) { return je_sink = malloc(n); }
__attribute__((noinline)) void *je_leak_calloc(size_t n) { return je_sink = calloc(n, 1); }
__attribute__((noinline)) void *je_leak_realloc(size_t n) {
	void *p = malloc(8);
	return je_sink = realloc(p, n); // the 8-byte block is freed by the move
}
__attribute__((noinline)) void *je_leak_memalign(size_t n) {
	void *p = NULL;
	return je_sink = posix_memalign(&p, 64, n) == 0 ? p : NULL;
}

static void churn(int n) {
	for (int i = 0; i < n; i++) {
		void *p = malloc(16 + i % 100);
		je_sink = p;
		p = realloc(p, 200 + i % 50);
		free(p);
		void *q = mallocx(32, 0); // jemalloc's own API: not seen by cgoscope
		je_sink = q;
		dallocx(q, 0);
	}
}
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var keep []unsafe.Pointer

func main() {
	before := C.thread_allocated()
	for i := 0; i < 3; i++ {
		keep = append(keep, truth.Held(C.je_leak_malloc(C.size_t(1000+i)), int64(1000+i), "je_leak_malloc"))
	}
	keep = append(keep, truth.Held(C.je_leak_calloc(333), 333, "je_leak_calloc"))
	keep = append(keep, truth.Held(C.je_leak_realloc(4444), 4444, "je_leak_realloc"))
	keep = append(keep, truth.Held(C.je_leak_memalign(555), 555, "je_leak_memalign"))
	keep = append(keep, truth.Held(unsafe.Pointer(C.CString("through jemalloc")), 17))
	C.churn(2000)
	truth.Absent("churn")
	if after := C.thread_allocated(); after < before+1000+1001+1002+333+4444+555 {
		fmt.Fprintf(os.Stderr, "jemalloc: jemalloc did not serve the allocations (thread.allocated %d -> %d)\n", before, after)
		os.Exit(1)
	}
	fmt.Println("jemalloc: done, jemalloc served malloc")
	truth.Write()
}
