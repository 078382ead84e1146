// goroutines leaks from 16 goroutines at once, each on its own OS thread while the others
// allocate and free, so records of many threads interleave in the channel.
package main

/*
#include <stdlib.h>

void *volatile gr_sink;

static void *gr_leak(size_t n) { return malloc(n); }

static void gr_churn(int n) {
	for (int i = 0; i < n; i++) {
		void *p = malloc(32 + i % 13);
		gr_sink = p;
		free(p);
	}
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var (
	mu   sync.Mutex
	keep []unsafe.Pointer
)

func worker(id int, start *sync.WaitGroup, done *sync.WaitGroup) {
	defer done.Done()
	runtime.LockOSThread()
	start.Wait()
	for i := 0; i < 50; i++ {
		p := truth.Held(unsafe.Pointer(C.gr_leak(C.size_t(100+id))), int64(100+id), "gr_leak")
		s := truth.Held(unsafe.Pointer(C.CString("goroutine")), 10)
		C.gr_churn(20)
		mu.Lock()
		keep = append(keep, p, s)
		mu.Unlock()
	}
}

func main() {
	var start, done sync.WaitGroup
	start.Add(1)
	for id := 0; id < 16; id++ {
		done.Add(1)
		go worker(id, &start, &done)
	}
	start.Done()
	done.Wait()
	fmt.Println("goroutines: 16 workers done")
	truth.Write()
}
