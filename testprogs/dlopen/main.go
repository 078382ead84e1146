// dlopen loads C libraries while it runs and allocates through them:
//
//   - libz.so.1, found by the loader: a deflate stream set up (deflateInit) and never ended,
//     its blocks counted by the program's own zalloc, and one set up and ended;
//   - the library named by its first argument (tests/dltest, built by the test suite), which
//     leaks from its own function and is then closed (dlclose): its frames must still be named.
package main

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void *dl_open(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static const char *dl_error(void) { const char *e = dlerror(); return e ? e : "?"; }
static int dl_close(void *h) { return dlclose(h); }

static void *call_leak(void *h, size_t n) {
	void *(*f)(size_t) = (void *(*)(size_t))dlsym(h, "dltest_leak");
	return f ? f(n) : NULL;
}

static int call_churn(void *h, int n) {
	void (*f)(int) = (void (*)(int))dlsym(h, "dltest_churn");
	if (!f)
		return -1;
	f(n);
	return 0;
}

// zlib allocates through these: they count what it asked for.
static long z_blocks, z_bytes;
void *volatile z_sink;
static voidpf counting_alloc(voidpf opaque, uInt items, uInt size) {
	(void)opaque;
	z_blocks++;
	z_bytes += (long)items * size;
	return z_sink = calloc(items, size);
}
static void counting_free(voidpf opaque, voidpf p) {
	(void)opaque;
	z_blocks--;
	free(p); // the size of what is freed is not known here: only whole streams are freed
}

typedef int (*init_fn)(z_streamp, int, const char *, int);
typedef int (*end_fn)(z_streamp);
static z_stream leaked;

// One stream set up and ended, one set up and left: returns 0, or -1 if zlib failed.
static int zlib_streams(void *h, long *blocks, long *bytes) {
	init_fn init = (init_fn)dlsym(h, "deflateInit_");
	end_fn end = (end_fn)dlsym(h, "deflateEnd");
	if (!init || !end)
		return -1;
	z_stream s;
	memset(&s, 0, sizeof s);
	s.zalloc = counting_alloc;
	s.zfree = counting_free;
	if (init(&s, 6, ZLIB_VERSION, (int)sizeof s) != Z_OK || end(&s) != Z_OK || z_blocks != 0)
		return -1;
	z_bytes = 0;
	memset(&leaked, 0, sizeof leaked);
	leaked.zalloc = counting_alloc;
	leaked.zfree = counting_free;
	if (init(&leaked, 6, ZLIB_VERSION, (int)sizeof leaked) != Z_OK)
		return -1;
	*blocks = z_blocks;
	*bytes = z_bytes;
	return 0;
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

func open(path string) unsafe.Pointer {
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	h := C.dl_open(p)
	if h == nil {
		fmt.Fprintf(os.Stderr, "dlopen: %s: %s\n", path, C.GoString(C.dl_error()))
		os.Exit(1)
	}
	return h
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dlopen LIBRARY.so")
		os.Exit(2)
	}
	z := open("libz.so.1")
	var blocks, bytes C.long
	if C.zlib_streams(z, &blocks, &bytes) != 0 || blocks == 0 {
		fmt.Fprintln(os.Stderr, "dlopen: zlib failed")
		os.Exit(1)
	}
	// zlib's blocks of the stream left open: their number and total size, from its zalloc.
	for i := int64(1); i < int64(blocks); i++ {
		truth.HeldC("deflateInit2_", 0)
	}
	truth.HeldC("deflateInit2_", int64(bytes))

	lib := open(os.Args[1])
	for i := 0; i < 3; i++ {
		keep = append(keep, truth.Held(C.call_leak(lib, C.size_t(640+i)), int64(640+i), "dltest_leak"))
	}
	if C.call_churn(lib, 500) != 0 {
		fmt.Fprintln(os.Stderr, "dlopen: dltest_churn missing")
		os.Exit(1)
	}
	truth.Absent("dltest_churn")
	C.dl_close(lib)
	fmt.Println("dlopen: done")
	truth.Write()
}
