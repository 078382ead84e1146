// held: a program that ends holding a lot of memory, for the cost of the reachability scan
// (bench/reach.sh). It allocates -blocks C blocks of -size bytes, each pointing to the one
// before (a chain the scan must follow block by block), keeps the newest in a Go global, and
// builds -gomb MB of Go heap holding pointers; one block in 100 is dropped (lost).
package main

/*
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void **link_block(size_t n, void **prev) {
	void **p = malloc(n);
	memset(p, 0, n);
	p[0] = prev;
	return p;
}
*/
import "C"

import (
	"flag"
	"fmt"
	"unsafe"
)

var (
	head   unsafe.Pointer
	goHeap [][]*int
)

func main() {
	blocks := flag.Int("blocks", 200000, "C blocks")
	size := flag.Int("size", 256, "bytes per C block")
	gomb := flag.Int("gomb", 64, "MB of Go heap")
	flag.Parse()
	var prev unsafe.Pointer
	for i := 0; i < *blocks; i++ {
		p := unsafe.Pointer(C.link_block(C.size_t(*size), (*unsafe.Pointer)(prev)))
		if i%100 == 99 {
			continue // dropped: nothing points to it (the next block links to the one before)
		}
		prev = p
	}
	head = prev
	x := 0
	for mb := 0; mb < *gomb; mb++ {
		s := make([]*int, 1<<17) // 1 MB of pointers
		for i := range s {
			s[i] = &x
		}
		goHeap = append(goHeap, s)
	}
	fmt.Println("held: done")
}
