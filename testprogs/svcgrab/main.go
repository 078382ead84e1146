// svcgrab is a service whose steady cache and leaking handler allocate through one C helper,
// grab: at start fillCache keeps 100 blocks of 256 bytes; then every 10 ms handle keeps 1 KiB
// more. Both are held by Go globals (still reachable), so the innermost C frame is the same for
// both series and only the Go line of the cgo call tells them apart. It stops on SIGTERM or
// SIGINT and writes its ground truth (CGOSCOPE_EXPECT).
package main

/*
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *grab(int n) {
	void *p = malloc(n);
	memset(p, 3, n); // not a tail call: grab stays on the stack
	return p;
}
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

// What holds the blocks: Go globals.
var cache, kept []unsafe.Pointer

func fillCache() {
	for i := 0; i < 100; i++ {
		p := truth.Held(unsafe.Pointer(C.grab(256)), 256, "grab")
		cache = append(cache, p)
	}
}

func handle() {
	p := truth.Held(unsafe.Pointer(C.grab(1024)), 1024, "grab")
	kept = append(kept, p)
}

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	fillCache()
	fmt.Println("svcgrab: cache filled, serving")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			handle()
		case s := <-stop:
			fmt.Printf("svcgrab: %v received, shutting down\n", s)
			truth.Write()
			return
		}
	}
}
