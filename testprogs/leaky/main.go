// leaky is the demo program: it leaks C memory four ways, holds one block in a Go global until
// it exits (still reachable: not a leak), and frees everything else.
//
//   - C.CString at two Go call sites (leakNames, leakGreeting),
//   - malloc inside a C function (make_buffer),
//   - strdup inside a C function (copy_label),
//
// and a loop (churn) that allocates and frees 1,000 blocks, which must appear in no report.
package main

/*
#include <stdlib.h>
#include <string.h>

static void *make_buffer(size_t n) {
	char *p = malloc(n);
	if (p) memset(p, 0x5a, n);
	return p;
}

static char *copy_label(const char *s) {
	return strdup(s);
}

void *volatile churn_sink; // keeps the compiler from removing the malloc/free pair

static void churn_once(int i) {
	void *p = malloc(64 + i % 7);
	churn_sink = p;
	free(p);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

// config is held for the whole run and never freed: still reachable at exit, not a leak.
var config unsafe.Pointer

func leakNames() {
	for _, name := range []string{"alpha", "beta", "gamma"} {
		truth.Drop(truth.Leak(unsafe.Pointer(C.CString(name)), int64(len(name)+1)))
	}
}

func leakGreeting() {
	truth.Drop(truth.Leak(unsafe.Pointer(C.CString("hello, cgoscope")), 16))
}

func holdConfig() {
	config = truth.Held(unsafe.Pointer(C.CString("verbose=1")), 10)
}

func leakBuffers() {
	for i := 0; i < 4; i++ {
		truth.Drop(truth.Leak(unsafe.Pointer(C.make_buffer(256)), 256, "make_buffer"))
	}
}

func leakLabel() {
	label := C.CString("label-01")
	truth.Drop(truth.Leak(unsafe.Pointer(C.copy_label(label)), 9, "copy_label"))
	C.free(unsafe.Pointer(label))
}

func churn() {
	for i := 0; i < 1000; i++ {
		C.churn_once(C.int(i))
		s := C.CString("temporary")
		C.free(unsafe.Pointer(s))
	}
}

func leakAll(done chan struct{}) {
	leakNames()
	leakGreeting()
	holdConfig()
	leakBuffers()
	leakLabel()
	close(done) // not a WaitGroup: its inlined Done makes frames gopclntab and DWARF tell apart
}

func main() {
	truth.Absent("main.churn")
	truth.Absent("churn_once")
	done := make(chan struct{})
	go leakAll(done) // on a goroutine of its own: see truth.Go
	<-done
	churn()
	fmt.Println("leaky: done")
	truth.Write()
}
