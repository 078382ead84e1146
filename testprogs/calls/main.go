// calls makes cgo calls whose number and duration it knows:
//
//	calls mix        2,000,000 calls of a trivial C function and 200 of one that sleeps 500 us
//	calls errno      r, err := C.f() calls (_C2func_), checking the errno Go sees
//	calls parallel   calls from 8 goroutines on 8 locked OS threads at once
//	calls null N     N null calls and nothing else (for benchmarks)
package main

/*
#include <errno.h>
#include <time.h>

static int add(int a, int b) { return a + b; }
static void nothing(void) {}

static void nap(void) {
	struct timespec ts = {0, 500 * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int fail_with(int e) {
	errno = e;
	return -1;
}

static int succeed(void) {
	errno = 0;
	return 7;
}

static long mul(long a, long b) { return a * b; }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"cgoscope.test/testprogs/internal/truth"
)

func mix() {
	sum := 0
	for i := 0; i < 2000000; i++ {
		sum += int(C.add(C.int(i), 1))
	}
	for i := 0; i < 200; i++ {
		C.nap()
	}
	truth.Calls("main", "add", 2000000)
	truth.Calls("main", "nap", 200)
	fmt.Println("calls mix: sum", sum)
}

func errnoCalls() {
	bad := 0
	for i := 0; i < 1000; i++ {
		r, err := C.fail_with(C.int(syscall.EDOM))
		if r != -1 || err != syscall.EDOM {
			bad++
		}
		r, err = C.succeed()
		if r != 7 || err != nil {
			bad++
		}
	}
	truth.Calls("main", "fail_with", 1000)
	truth.Calls("main", "succeed", 1000)
	if bad != 0 {
		fmt.Fprintf(os.Stderr, "calls errno: %d calls saw the wrong errno\n", bad)
		os.Exit(1)
	}
	fmt.Println("calls errno: every errno as set by C")
}

func parallel() {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			runtime.LockOSThread()
			for i := 0; i < 100000+g; i++ {
				C.mul(C.long(i), C.long(g))
			}
		}(g)
	}
	wg.Wait()
	truth.Calls("main", "mul", 8*100000+28)
	fmt.Println("calls parallel: done")
}

func null(n int) {
	for i := 0; i < n; i++ {
		C.nothing()
	}
	truth.Calls("main", "nothing", int64(n))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: calls mix|errno|parallel|null N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "mix":
		mix()
	case "errno":
		errnoCalls()
	case "parallel":
		parallel()
	case "null":
		n := 20000000
		if len(os.Args) > 2 {
			n, _ = strconv.Atoi(os.Args[2])
		}
		null(n)
	default:
		fmt.Fprintln(os.Stderr, "calls: unknown mode", os.Args[1])
		os.Exit(2)
	}
	truth.Write()
}
