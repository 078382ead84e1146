// storefree exercises cgoscope's store-free cgo calls (docs/crossings.md): a site called over and
// over with no allocation or callback inside is counted from the runtime's own count of cgo
// calls, and the hook stores nothing. Each mode then does what that shortcut must survive:
//
//	late      the site allocates after thousands of calls that did not: every leak must still
//	          name its Go line, and the count stay exact
//	callback  the site calls back into Go after thousands of calls that did not; the callback
//	          leaks through a nested cgo call (its stack must reach the Go code of the outer
//	          call), and the outer C function leaks once the callback returns
//	kill      thousands of calls, then SIGKILL: the count must still be exact (the calls since
//	          the last one the hook saw are added up after the process is gone)
//	switch    two sites in turns of uneven length, on several locked threads that exit
//	exec      thousands of calls, then syscall.Exec of itself in mode late: the first program's
//	          count must be exact though its address space is gone (CGOSCOPE_EXPECT.first)
//	random    4 goroutines, each switching among the sites above at random (fixed seeds): runs
//	          of 1 to 300 calls, now and then one that allocates or calls back
//	long      3M calls of one site: long enough for a program started through sh -c, whose
//	          runtime layout cgoscope reads only once it has started, to count store-free
//	setgid    runs interrupted by syscall.Setgid, which the runtime makes as a cgo call through no
//	          wrapper of the program (not to be counted as the site's)
package main

/*
#include <stdlib.h>
#include <string.h>

void sfCallback(int i);

static void *sf_maybe(int i) { return i % 1000 == 999 ? malloc(64) : NULL; }

static void *sf_cb(int i)
{
	if (i != 2500)
		return NULL;
	sfCallback(i);
	return malloc(48);
}

static int sf_inc(int i) { return i + 1; }
static int sf_dec(int i) { return i - 1; }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var keep []unsafe.Pointer

//export sfCallback
func sfCallback(i C.int) {
	keep = append(keep, truth.Held(unsafe.Pointer(C.CString("leaked in a callback")), 21, "main.callbackLoop"))
}

func late() {
	for i := 0; i < 5000; i++ {
		if i%1000 != 999 {
			C.sf_maybe(C.int(i))
			continue
		}
		keep = append(keep, truth.Held(C.sf_maybe(C.int(i)), 64, "sf_maybe"))
	}
	truth.Calls("main", "sf_maybe", 5000)
}

func callbackLoop() {
	for i := 0; i < 5000; i++ {
		if i != 2500 {
			C.sf_cb(C.int(i))
			continue
		}
		keep = append(keep, truth.Held(C.sf_cb(C.int(i)), 48, "sf_cb"))
	}
	truth.Calls("main", "sf_cb", 5000)
	truth.Calls("main", "_Cmalloc", 1) // C.CString, in the callback
	truth.Callbacks("main", "sfCallback", 1)
}

func switching() {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			for round := 0; round < 50; round++ {
				for i := 0; i < 300+round*7+g; i++ {
					C.sf_inc(C.int(i))
				}
				for i := 0; i < 100+g; i++ {
					C.sf_dec(C.int(i))
				}
			}
		}(g)
	}
	wg.Wait()
	inc, dec := 0, 0
	for g := 0; g < 4; g++ {
		for round := 0; round < 50; round++ {
			inc += 300 + round*7 + g
			dec += 100 + g
		}
	}
	truth.Calls("main", "sf_inc", int64(inc))
	truth.Calls("main", "sf_dec", int64(dec))
}

// randomMix: the counts of every site are known exactly in Go; the leaks too.
func randomMix() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int64{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			seed := uint64(g)*0x9e3779b97f4a7c15 + 1
			next := func(n int) int {
				seed ^= seed << 13
				seed ^= seed >> 7
				seed ^= seed << 17
				return int(seed % uint64(n))
			}
			local := map[string]int64{}
			for turn := 0; turn < 400; turn++ {
				n := 1 + next(300)
				switch next(4) {
				case 0:
					for i := 0; i < n; i++ {
						C.sf_inc(C.int(i))
					}
					local["sf_inc"] += int64(n)
				case 1:
					for i := 0; i < n; i++ {
						C.sf_dec(C.int(i))
					}
					local["sf_dec"] += int64(n)
				case 2:
					// sf_maybe allocates only for i % 1000 == 999: never here, but one call in a
					// while below does.
					for i := 0; i < n; i++ {
						C.sf_maybe(C.int(i))
					}
					local["sf_maybe"] += int64(n)
					if next(20) == 0 {
						keepLocked(&mu, truth.Held(C.sf_maybe(999), 64, "sf_maybe"))
						local["sf_maybe"]++
					}
				case 3:
					for i := 0; i < n; i++ {
						C.sf_cb(C.int(i)) // i != 2500: no callback
					}
					local["sf_cb"] += int64(n)
				}
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	for _, k := range []string{"sf_inc", "sf_dec", "sf_maybe", "sf_cb"} {
		truth.Calls("main", k, counts[k])
	}
}

func keepLocked(mu *sync.Mutex, p unsafe.Pointer) {
	mu.Lock()
	keep = append(keep, p)
	mu.Unlock()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: storefree late|callback|kill|switch|setgid|exec|random|long")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "late":
		late()
	case "callback":
		callbackLoop()
	case "switch":
		switching()
	case "exec":
		for i := 0; i < 100000; i++ {
			C.sf_inc(C.int(i))
		}
		truth.Calls("main", "sf_inc", 100000)
		if exp := os.Getenv("CGOSCOPE_EXPECT"); exp != "" {
			truth.WriteTo(exp + ".first")
		}
		self, err := os.Executable()
		if err == nil {
			err = syscall.Exec(self, []string{os.Args[0], "late"}, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "storefree: exec failed:", err)
		os.Exit(1)
	case "random":
		randomMix()
	case "long":
		for i := 0; i < 3000000; i++ {
			C.sf_inc(C.int(i))
		}
		truth.Calls("main", "sf_inc", 3000000)
	case "setgid":
		for round := 0; round < 20; round++ {
			for i := 0; i < 1000; i++ {
				C.sf_inc(C.int(i))
			}
			if err := syscall.Setgid(syscall.Getgid()); err != nil {
				fmt.Fprintln(os.Stderr, "storefree: setgid:", err)
				os.Exit(1)
			}
		}
		truth.Calls("main", "sf_inc", 20000)
	case "kill":
		for i := 0; i < 100000; i++ {
			C.sf_inc(C.int(i))
		}
		truth.Calls("main", "sf_inc", 100000)
		truth.Write()
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	default:
		fmt.Fprintln(os.Stderr, "storefree: unknown mode", os.Args[1])
		os.Exit(2)
	}
	truth.Write()
	fmt.Println("storefree", os.Args[1], "done")
}
