// lifetime makes one lifetime error across the cgo boundary, chosen by its argument, and dies of
// it the way glibc makes it die (docs/lifetime.md):
//
//	double    a C.CString freed with C.free from Go, then again by C (free_again)
//	owner     the shape a real cgo library shipped: a C API takes ownership of a buffer, with
//	          free as its destructor (owner_new / owner_destroy), and the Go code frees it too
//	gomem     Go memory passed to C.free
//	interior  C.free of a pointer 8 bytes into a C.malloc'd block
//	realloc   C.realloc of a C.malloc'd block freed before (glibc: "double free or corruption")
//	regomem   Go memory passed to C.realloc (glibc: "realloc(): invalid pointer")
//	clean     the same calls without the error: no error may be reported
//
// Before the bad free it writes its ground truth (truth.Lifetime), with the Go lines of the
// allocation, the first free and the bad free, since the process does not outlive that free.
package main

/*
#include <stdlib.h>
#include <string.h>

// free_again frees a block it was handed: from C, as a library that owns it would.
__attribute__((noinline)) static void free_again(void *p)
{
	free(p);
	__asm__ volatile("" ::: "memory");
}

// An object that owns a buffer and frees it with its destructor.
struct owner {
	char *buf;
	void (*destroy)(void *);
};

static struct owner *owner_new(char *buf)
{
	struct owner *o = malloc(sizeof *o);
	if (o) {
		o->buf = buf;
		o->destroy = free;
	}
	return o;
}

__attribute__((noinline)) static void owner_destroy(struct owner *o)
{
	o->destroy(o->buf);
	free(o);
	__asm__ volatile("" ::: "memory");
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

// The strings are of sizes nothing else in the process allocates, so that no allocation between
// the two frees takes the block back from glibc's cache (then the second free would free a live
// block, and glibc would not abort).
var (
	text    = strings.Repeat("t", 999)
	payload = strings.Repeat("p", 776)
)

func doubleFree() {
	alloc := truth.Next()
	cs := C.CString(text)
	first := truth.Next()
	C.free(unsafe.Pointer(cs))
	e := truth.LifetimeError{Kind: truth.DoubleFree, Size: int64(len(text) + 1), Alloc: []truth.Frame{alloc},
		FirstFree: []truth.Frame{first}, Free: []truth.Frame{{Function: "free_again"}}}
	truth.LifetimeNext(e)
	C.free_again(unsafe.Pointer(cs))
}

func owner(buggy bool) {
	alloc := truth.Next()
	cs := C.CString(payload)
	o := C.owner_new(cs)
	if buggy {
		first := truth.Next()
		C.free(unsafe.Pointer(cs)) // the bug: o owns cs now
		e := truth.LifetimeError{Kind: truth.DoubleFree, Size: int64(len(payload) + 1), Alloc: []truth.Frame{alloc},
			FirstFree: []truth.Frame{first}, Free: []truth.Frame{{Function: "owner_destroy"}}}
		truth.LifetimeNext(e)
		C.owner_destroy(o) // frees cs again
		return
	}
	C.owner_destroy(o)
}

// goBuf is Go memory: 8 zero bytes before what is passed to C.free, where glibc looks for a
// chunk header, so that glibc's check fails the same way every run.
var goBuf [128]byte

func goMemory() {
	p := unsafe.Pointer(&goBuf[64])
	truth.LifetimeNext(truth.LifetimeError{Kind: truth.InvalidFree})
	C.free(p)
}

func interior() {
	alloc := truth.Next()
	p := C.malloc(32)
	C.memset(p, 0, 32) // glibc reads a zero size where it expects the header
	e := truth.LifetimeError{Kind: truth.InvalidFree, Size: 32, Offset: 8, Alloc: []truth.Frame{alloc}}
	truth.LifetimeNext(e)
	C.free(unsafe.Add(p, 8))
	C.free(p)
}

// reallocFreed frees a block that glibc keeps in a bin (too large for its per-thread cache), with
// a block in use after it, then reallocs it larger: glibc copies it and frees it again, finds the
// next block's "previous in use" bit clear, and aborts. No other block is 1600 bytes.
func reallocFreed() {
	alloc := truth.Next()
	p := C.malloc(1600)
	guard := C.malloc(64)
	first := truth.Next()
	C.free(p)
	e := truth.LifetimeError{Kind: truth.DoubleFree, Function: "realloc", Size: 1600, Alloc: []truth.Frame{alloc},
		FirstFree: []truth.Frame{first}}
	truth.LifetimeNext(e)
	p = C.realloc(p, 4000)
	C.free(p)
	C.free(guard)
}

func reallocGoMemory() {
	p := unsafe.Pointer(&goBuf[64])
	truth.LifetimeNext(truth.LifetimeError{Kind: truth.InvalidFree, Function: "realloc"})
	C.realloc(p, 16)
}

func clean() {
	cs := C.CString("hello")
	C.free(unsafe.Pointer(cs))
	owner(false)
	p := C.malloc(32)
	p = C.realloc(p, 1600)
	p = C.realloc(p, 64)
	C.free(p)
	truth.Write()
}

// One thread for main: glibc finds a double free in the freeing thread's cache only, so a
// goroutine that moved to another thread between the two frees would not abort (cgoscope
// finds it either way), and the test compares with the untraced run's abort.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lifetime double|owner|gomem|interior|realloc|regomem|clean")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "double":
		doubleFree()
	case "owner":
		owner(true)
	case "gomem":
		goMemory()
	case "interior":
		interior()
	case "realloc":
		reallocFreed()
	case "regomem":
		reallocGoMemory()
	case "clean":
		clean()
	default:
		fmt.Fprintln(os.Stderr, "lifetime: unknown case", os.Args[1])
		os.Exit(2)
	}
	fmt.Println("lifetime: no abort")
}
