// Package leaky is a cgo package whose tests leak C memory on purpose, for `cgoscope test`
// (tests/itest/cases_testcmd.go). Its tests state what they leak: with CGOSCOPE_EXPECT naming a
// file, each leaking test appends one JSON line to it (the Go function of the leak, blocks,
// bytes), so -run, -count and -ldflags change the truth and the truth follows. The marker
// comments give the lines.
package leaky

/*
#include <stdlib.h>

static void *make_block(size_t n) {
	return malloc(n); // cgoscope:testcmd-c
}
*/
import "C"

import "unsafe"

// Blocks is how many blocks TestBlocks leaks: a string, so that the linker can change it
// (go test -ldflags=-X=cgoscope.test/testcmd/leaky.Blocks=5).
var Blocks = "3"

// BlockSize is the size of each block TestBlocks leaks.
const BlockSize = 100

// Block returns n bytes from C's malloc. The caller must Free it.
func Block(n int) unsafe.Pointer {
	return C.make_block(C.size_t(n)) // cgoscope:testcmd-block
}

// Name returns a C copy of s. The caller must Free it.
func Name(s string) unsafe.Pointer {
	return unsafe.Pointer(C.CString(s)) // cgoscope:testcmd-name
}

// Free releases what Block and Name return.
func Free(p unsafe.Pointer) { C.free(p) }
