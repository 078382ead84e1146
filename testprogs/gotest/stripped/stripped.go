// Package stripped is a cgo package whose test runs as `go test` builds it: stripped, with no
// symbol table and no DWARF. Under `go test -exec 'cgoscope run --'` its cgo calls must still be
// counted exactly and its leak named after the C function (docs/cgo-facts.md §10).
package stripped

/*
#include <stdlib.h>
#include <string.h>

static char *make_name(int n) {
	char *p = malloc(16); // cgoscope:leak-c
	if (p) {
		memset(p, 'a' + n % 26, 15);
		p[15] = 0;
	}
	return p;
}
*/
import "C"

import "unsafe"

// Names is how many names TestNames makes: it frees all of them but the last.
const Names = 50

// Make returns a C string of 16 bytes made by C code. The caller must Free it.
func Make(n int) unsafe.Pointer {
	return unsafe.Pointer(C.make_name(C.int(n))) // cgoscope:leak-go
}

// Free releases what Make returns.
func Free(p unsafe.Pointer) { C.free(p) }
