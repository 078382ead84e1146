// Package leaks is a cgo package whose tests leak C memory: under
// `go test -exec 'cgoscope run --fail-on-leak --'` its tests must fail with cgoscope's exit
// status and a report that names the Go line of the leak. (cgo is not allowed in _test.go
// files, so the C calls live here.)
package leaks

/*
#include <stdlib.h>
#include <string.h>

static char *copy_label(const char *s) {
	return strdup(s); // cgoscope:leak-c
}
*/
import "C"

import "unsafe"

// Name returns a C copy of s. The caller owns it and must Free it.
func Name(s string) unsafe.Pointer {
	return unsafe.Pointer(C.CString(s)) // cgoscope:leak-go
}

// Label returns a C copy of s made by C code. The caller must Free it.
func Label(s string) unsafe.Pointer {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return unsafe.Pointer(C.copy_label(cs))
}

// Free releases what Name and Label return.
func Free(p unsafe.Pointer) { C.free(p) }
