// handoff moves C blocks between goroutines, and so between threads (goroutines also move from
// thread to thread as they block on the channel): producers make C strings and hand them over a
// channel to consumers, which free them. Every 500th string is kept (a leak). Each producer also churns C memory of other
// sizes, so that the program writes records faster than the analyzer reads them and ends
// (exit_group) with chunks still waiting. Nothing but the kept strings may be reported: a free
// read before the allocation it ends, or a thread's chunks read out of order, shows up here as a
// leak that is not there.
package main

/*
#include <stdlib.h>

void *volatile ho_sink;

// Sizes of other malloc bins than the strings' (so a churned block does not take a string's
// address on the producer's thread).
static void ho_churn(int n) {
	for (int i = 0; i < n; i++) {
		void *p = malloc(160 + (i & 63));
		ho_sink = p;
		free(p);
	}
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

const (
	producers = 8
	consumers = 8
	perProd   = 3000
	keepEvery = 500
)

func main() {
	truth.Absent("main.consume")
	truth.Absent("ho_churn")
	var (
		mu   sync.Mutex
		keep []unsafe.Pointer
		wg   sync.WaitGroup
		cwg  sync.WaitGroup
	)
	ch := make(chan *C.char, 64)
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for p := range ch {
				C.free(unsafe.Pointer(p))
			}
		}()
	}
	for g := 0; g < producers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perProd; i++ {
				if i%keepEvery == keepEvery-1 {
					p := truth.Held(unsafe.Pointer(C.CString("handoff")), 8)
					mu.Lock()
					keep = append(keep, p)
					mu.Unlock()
				} else {
					ch <- C.CString("handoff")
				}
				C.ho_churn(64)
			}
		}(g)
	}
	wg.Wait()
	close(ch)
	cwg.Wait()
	fmt.Printf("handoff: %d strings handed over, %d kept\n", producers*perProd-len(keep), len(keep))
	truth.Write()
	os.Exit(0) // exit_group at once, with whatever the analyzer has not read yet
}
