// storefloor: what one memory store costs inside a cgo call on this machine, with no cgoscope.
//
// cgoscope's hook runs between runtime.asmcgocall and the C wrapper, so the cheapest exact
// per-site count is one store per call. This program times 20M cgo calls of C functions that
// differ only in that: one returns its argument, the others also store it to a global, to a
// thread-local variable, or to the stack. Variants run in rounds, interleaved; the median per
// variant is printed in ns per call, and as the added ns over the plain function.
//
//	go build -o storefloor ./storefloor && ./storefloor
package main

/*
static volatile int sink_global;
static __thread volatile int sink_tls;

__attribute__((noinline)) int sf_nothing(int x) { __asm__ volatile(""); return x; }
__attribute__((noinline)) int sf_global(int x) { sink_global = x; return x; }
__attribute__((noinline)) int sf_tls(int x) { sink_tls = x; return x; }
__attribute__((noinline)) int sf_stack(int x) { volatile int local = x; return local; }
*/
import "C"

import (
	"flag"
	"fmt"
	"sort"
	"time"
)

func main() {
	n := flag.Int("n", 20000000, "cgo calls per variant and round")
	rounds := flag.Int("rounds", 5, "rounds")
	flag.Parse()
	variants := []struct {
		name string
		run  func(int)
	}{
		{"plain (return x)", func(n int) {
			for i := 0; i < n; i++ {
				C.sf_nothing(C.int(i))
			}
		}},
		{"+ store to a global", func(n int) {
			for i := 0; i < n; i++ {
				C.sf_global(C.int(i))
			}
		}},
		{"+ store to a thread-local", func(n int) {
			for i := 0; i < n; i++ {
				C.sf_tls(C.int(i))
			}
		}},
		{"+ store to the stack", func(n int) {
			for i := 0; i < n; i++ {
				C.sf_stack(C.int(i))
			}
		}},
	}
	per := make([][]float64, len(variants))
	for r := 0; r < *rounds; r++ {
		for v := range variants {
			t0 := time.Now()
			variants[v].run(*n)
			per[v] = append(per[v], float64(time.Since(t0).Nanoseconds())/float64(*n))
		}
	}
	med := func(x []float64) float64 {
		s := append([]float64(nil), x...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	base := med(per[0])
	fmt.Printf("%-28s %10s %10s\n", "C function", "ns/call", "added ns")
	for v := range variants {
		m := med(per[v])
		fmt.Printf("%-28s %10.2f %10.2f\n", variants[v].name, m, m-base)
	}
}
