// leakfix is one program in two versions, before and after a fix, chosen by its argument; the
// tests of `cgoscope diff` compare their runs.
//
//	leakfix before   leaks three C.CString names, a table, and three scratch buffers, and
//	                 calls C.step 20,000 times with one item each
//	leakfix after    the fix: frees the names, leaks one scratch buffer only (the table is
//	                 still leaked, unchanged), and calls C.step 200 times with 100 items each
//
// So from before to after one leak site is fixed, one shrinks, one stays, and the cgo call
// site step costs 100 times fewer crossings; from after to before, the opposite.
package main

/*
#include <stdlib.h>

static void *make_table(size_t n) {
	return calloc(n, sizeof(long));
}

static void *make_scratch(void) {
	return malloc(128);
}

static long total;

static void step(int items) {
	total += items;
}

static long get_total(void) {
	return total;
}
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

func makeNames(fixed bool) {
	for _, name := range []string{"ada", "bob", "cy"} {
		if fixed {
			C.free(unsafe.Pointer(C.CString(name)))
			continue
		}
		truth.Drop(truth.Leak(unsafe.Pointer(C.CString(name)), int64(len(name)+1)))
	}
}

func makeTable() {
	truth.Drop(truth.Leak(unsafe.Pointer(C.make_table(8)), 64, "make_table"))
}

func makeScratch(n int) {
	for i := 0; i < n; i++ {
		truth.Drop(truth.Leak(unsafe.Pointer(C.make_scratch()), 128, "make_scratch"))
	}
}

func work(calls, items int) {
	for i := 0; i < calls; i++ {
		C.step(C.int(items))
	}
	truth.Calls("main", "step", int64(calls))
}

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "before" && os.Args[1] != "after") {
		fmt.Fprintln(os.Stderr, "usage: leakfix before|after")
		os.Exit(2)
	}
	fixed := os.Args[1] == "after"
	truth.Go(func() { // the leaks, on a goroutine of their own (truth.Go says why)
		makeNames(fixed)
		makeTable()
		if fixed {
			makeScratch(1)
		} else {
			makeScratch(3)
		}
	})
	if fixed {
		work(200, 100)
	} else {
		work(20000, 1)
	}
	fmt.Println("leakfix:", os.Args[1], C.get_total())
	truth.Write()
}
