// reach leaves C blocks unfreed in every way memcheck and LeakSanitizer tell apart, each made by
// a C function of its own so that valgrind's stacks (which stop at the cgo boundary) and
// cgoscope's name the same site:
//
//   - reach_drop: blocks nothing points to (definitely lost);
//   - reach_head / reach_child: a lost head block that points to a child block (the head
//     definitely lost, the child indirectly lost);
//   - reach_middle: a block a C global points into the middle of (possibly lost);
//   - reach_for_go: a block a Go global holds (still reachable);
//   - reach_for_map: blocks a Go map holds (still reachable);
//   - reach_for_c: a block a C global holds (still reachable).
//
// The test valgrind.reach compares the classes with valgrind's, site by site; leaks.reach checks
// them against the truth below, and that what holds each held block is named.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *child; char pad[24]; };

void *c_root;        // holds reach_for_c's block
char *c_middle;      // points 16 bytes into reach_middle's block
volatile uintptr_t reach_hash;

__attribute__((noinline)) static void forget(void *p) { reach_hash ^= (uintptr_t)p * 0x9e3779b97f4a7c15u; }

__attribute__((noinline)) void reach_drop(int n) {
	for (int i = 0; i < n; i++) {
		char *p = malloc(40);
		memset(p, 'd', 40);
		forget(p);
	}
}

__attribute__((noinline)) static struct node *reach_child(void) {
	struct node *c = calloc(1, sizeof *c);
	memset(c->pad, 'c', sizeof c->pad); // not a tail call: reach_child stays in the stack
	return c;
}

__attribute__((noinline)) void reach_head(void) {
	struct node *h = malloc(sizeof *h);
	memset(h, 0, sizeof *h);
	h->child = reach_child();
	forget(h);
}

__attribute__((noinline)) void reach_middle(void) {
	char *p = malloc(64);
	memset(p, 'm', 64);
	c_middle = p + 16;
}

// Each touches its block after calloc: no tail call, so the function stays in the stack.
__attribute__((noinline)) void *reach_for_go(size_t n) {
	char *p = calloc(1, n);
	p[0] = 'g';
	return p;
}

__attribute__((noinline)) void *reach_for_map(size_t n) {
	char *p = calloc(1, n);
	p[0] = 'm';
	return p;
}

__attribute__((noinline)) void reach_for_c(void) {
	char *p = calloc(1, 72);
	p[0] = 'c';
	c_root = p;
}

// Overwrites what this thread's C stack below here held (as the stack of a C function that runs
// later would): a copy of a dropped pointer left there by malloc would look live to a
// conservative scan, to valgrind's as to cgoscope's.
__attribute__((noinline)) void reach_scrub(void) {
	volatile char buf[32768];
	memset((char *)buf, 0, sizeof buf);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

// goHeld and goMap hold C blocks until the program ends.
var (
	goHeld unsafe.Pointer
	goMap  = map[string]unsafe.Pointer{}
)

func lose() {
	C.reach_drop(3)
	for i := 0; i < 3; i++ {
		truth.LeakCKind(truth.DefinitelyLost, "reach_drop", 40)
	}
	C.reach_head()
	truth.LeakCKind(truth.DefinitelyLost, "reach_head", 32)
	truth.LeakCKind(truth.IndirectlyLost, "reach_child", 32)
	C.reach_middle()
	truth.LeakCKind(truth.PossiblyLost, "reach_middle", 64)
	C.reach_scrub()
}

func hold() {
	goHeld = truth.Held(C.reach_for_go(48), 48, "reach_for_go")
	for _, k := range []string{"a", "b"} {
		goMap[k] = truth.Held(C.reach_for_map(24), 24, "reach_for_map")
	}
	C.reach_for_c()
	truth.HeldC("reach_for_c", 72)
}

func main() {
	truth.Go(lose)
	hold()
	runtime.KeepAlive(goMap)
	fmt.Println("reach: done")
	truth.Write()
}
