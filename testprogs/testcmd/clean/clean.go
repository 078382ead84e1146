// Package clean is a cgo package whose tests free every C block they allocate: under
// `cgoscope test --fail-on-leak` it passes, whatever the Go runtime itself allocates.
package clean

/*
#include <stdlib.h>
#include <string.h>

static char *copy_label(const char *s) {
	return strdup(s);
}
*/
import "C"

import "unsafe"

// Label returns a C copy of s made by C code. The caller must Free it.
func Label(s string) unsafe.Pointer {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return unsafe.Pointer(C.copy_label(cs))
}

// Free releases what Label returns.
func Free(p unsafe.Pointer) { C.free(p) }
