// allocfns exercises every interposed function: what it keeps must be reported with its exact
// live size, and what it frees (including through realloc) must not be.
package main

/*
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void *volatile af_sink;

static void *af_calloc(void) { return calloc(10, 12); }

static void *af_realloc_chain(void) {
	char *p = malloc(10);
	p = realloc(p, 100);
	p = realloc(p, 1000);
	p = realloc(p, 50);
	return p;
}

static void *af_posix_memalign(void) {
	void *p = NULL;
	if (posix_memalign(&p, 64, 200) != 0)
		return NULL;
	return p;
}

static void *af_aligned_alloc(void) { return aligned_alloc(128, 256); }
static void *af_memalign(void) { return memalign(32, 48); }
static void *af_valloc(void) { return valloc(100); }
static void *af_strndup(void) { return strndup("abcdefgh", 5); }
static void *af_reallocarray(void) { return reallocarray(NULL, 4, 25); }
static void *af_realloc_null(void) { return realloc(NULL, 20); }

static void af_realloc_then_free(void) {
	char *p = malloc(10);
	af_sink = p;
	p = realloc(p, 2000);
	af_sink = p;
	free(p);
}

static int af_realloc_zero(void) {
	char *p = malloc(30);
	af_sink = p;
	p = realloc(p, 0); // glibc frees the block and returns NULL
	free(NULL);
	return p == NULL;
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
	keep = append(keep,
		truth.Held(C.af_calloc(), 120, "af_calloc"),
		truth.Held(C.af_realloc_chain(), 50, "af_realloc_chain"),
		truth.Held(C.af_posix_memalign(), 200, "af_posix_memalign"),
		truth.Held(C.af_aligned_alloc(), 256, "af_aligned_alloc"),
		truth.Held(C.af_memalign(), 48, "af_memalign"),
		truth.Held(C.af_valloc(), 100, "af_valloc"),
		truth.Held(C.af_strndup(), 6, "af_strndup"),
		truth.Held(C.af_reallocarray(), 100, "af_reallocarray"),
		truth.Held(C.af_realloc_null(), 20, "af_realloc_null"),
	)
	C.af_realloc_then_free()
	if C.af_realloc_zero() != 1 {
		fmt.Fprintln(os.Stderr, "allocfns: realloc(p, 0) did not return NULL")
	}
	truth.Absent("af_realloc_then_free")
	truth.Absent("af_realloc_zero")
	fmt.Println("allocfns: done")
	truth.Write()
}
