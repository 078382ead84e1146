// grouped leaks through one C function, make_obj, from one Go line (leakShared) that three
// callers reach, each by both C paths (make_obj -> grab, make_obj -> wrap -> grab): six stacks,
// one Go line of a cgo call. Twelve more Go lines leak a small block each through grab, so the
// text report has more groups than it shows. Every leak is stated (CGOSCOPE_EXPECT).
package main

/*
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *grab(int n) {
	void *p = malloc(n);
	memset(p, 7, n); // no tail calls below: every C frame stays on the stack
	return p;
}
__attribute__((noinline)) void *wrap(int n) {
	void *p = grab(n);
	__asm__ volatile("" : : "r"(p) : "memory"); // keeps the call above from being a tail call
	return p;
}
__attribute__((noinline)) void *make_obj(int n, int via_wrap) {
	void *p = via_wrap ? wrap(n) : grab(n);
	__asm__ volatile("" : : "r"(p) : "memory"); // keeps the call above from being a tail call
	return p;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

//go:noinline
func leakShared(n, viaWrap int) {
	truth.Drop(truth.Leak(unsafe.Pointer(C.make_obj(C.int(n), C.int(viaWrap))), int64(n), "make_obj", "grab"))
}

//go:noinline
func testAlpha() { leakShared(1000, 0); leakShared(1000, 1) }

//go:noinline
func testBeta() { leakShared(1000, 0); leakShared(1000, 1) }

//go:noinline
func testGamma() { leakShared(1000, 0); leakShared(1000, 1) }

func leakAll() {
	testAlpha()
	testBeta()
	testGamma()
	small := []func(){ // one Go line each
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(16)), 16, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(17)), 17, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(18)), 18, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(19)), 19, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(20)), 20, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(21)), 21, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(22)), 22, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(23)), 23, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(24)), 24, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(25)), 25, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(26)), 26, "grab")) },
		func() { truth.Drop(truth.Leak(unsafe.Pointer(C.grab(27)), 27, "grab")) },
	}
	for _, f := range small {
		f()
	}
}

func main() {
	truth.Go(leakAll)
	fmt.Println("grouped: done")
	truth.Write()
}
