// lost leaks C memory that nothing points to any more: C code drops the blocks it allocates,
// and Go code drops C.CString's result and collects its garbage. valgrind calls such blocks
// "definitely lost", which makes it a second opinion on cgoscope's report (the test
// valgrind.lost compares the two, site by site). Everything else is freed.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

volatile uintptr_t lost_hash;

// Uses a block and forgets it: only a hash of its address survives.
__attribute__((noinline)) static void forget(char *p, size_t n) {
	memset(p, 0x42, n);
	lost_hash ^= (uintptr_t)p * 0x9e3779b97f4a7c15u;
}

__attribute__((noinline)) void lost_buffers(int n) {
	for (int i = 0; i < n; i++)
		forget(malloc(100 + (size_t)i), 100 + (size_t)i);
}

__attribute__((noinline)) void lost_copies(const char *s, int n) {
	for (int i = 0; i < n; i++) {
		char *p = strdup(s);
		forget(p, strlen(p));
	}
}

__attribute__((noinline)) void lost_zeroed(size_t n) {
	forget(calloc(n, 4), n * 4);
}

// Clears what this thread's earlier C calls left below them on its stack (malloc's frames
// hold copies of the blocks it returned), as later, deeper calls of a real program would.
// valgrind scans that dead part of the stacks the Go runtime's threads run C on.
__attribute__((noinline)) static void scrub_c_stack(void) {
	char buf[16384];
	explicit_bzero(buf, sizeof buf);
}

static void churn(int n) {
	for (int i = 0; i < n; i++) {
		char *p = malloc(40 + (size_t)(i % 9));
		memset(p, 1, 40);
		free(p);
	}
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

//go:noinline
func dropStrings() {
	for i := 0; i < 3; i++ {
		p := truth.Leak(unsafe.Pointer(C.CString("dropped")), 8)
		C.lost_hash ^= C.uintptr_t(uintptr(p))
	}
}

// copies keeps its label in a frame of its own: freed, the label's 8 bytes go back to malloc,
// which hands them out again for the first of dropStrings' strings; a copy of the label's
// address left in main's frame would then be a real pointer to a dropped block (valgrind,
// which does not reuse freed blocks at once, would still call it lost). truth.Scrubbed clears it.
//
//go:noinline
func copies() {
	label := C.CString("a label")
	C.lost_copies(label, 2)
	C.free(unsafe.Pointer(label))
	truth.LeakC("lost_copies", 8)
	truth.LeakC("lost_copies", 8)
}

func main() {
	C.lost_buffers(4)
	for i := 0; i < 4; i++ {
		truth.LeakC("lost_buffers", int64(100+i))
	}
	copies()
	C.lost_zeroed(25)
	truth.LeakC("lost_zeroed", 100)
	runtime.LockOSThread() // the strings and the scrubs on one thread
	truth.Scrubbed(dropStrings)
	C.scrub_c_stack()
	runtime.UnlockOSThread()
	C.churn(500)
	truth.Absent("churn")
	runtime.GC()
	runtime.GC()
	fmt.Println("lost: done")
	truth.Write()
}
