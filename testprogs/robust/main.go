// robust does to its own process the things that break tracers, one mode at a time, and states
// what it leaked in each process it ends up being (testprogs/internal/truth):
//
//	robust threads N       C starts N threads, all alive at once; each allocates and frees, every
//	                       tenth leaks one block (100 + i%7 bytes)
//	robust gothreads N     N goroutines locked to their own OS threads, all alive at once; each
//	                       leaks one C.CString, then exits still locked, so its thread ends
//	robust closefds        closes every descriptor from 3 up, then leaks through cgo
//	robust reexec          leaks, then replaces itself (syscall.Exec) with "robust reexec-second",
//	                       which leaks too: one pid, two programs. The first writes its truth to
//	                       $CGOSCOPE_EXPECT.first
//	robust daemon          double fork + setsid from C: the daemon leaks 3 blocks 300 ms later and
//	                       exits; the foreground leaks and returns at once. Daemon truth:
//	                       $CGOSCOPE_EXPECT.daemon
//	robust unsetpreload    unsets LD_PRELOAD, then runs "robust untraced-child" (which leaks, untraced)
//	robust otherpreload    runs "robust untraced-child" with LD_PRELOAD naming another library
//	robust churn MS CODE   allocates and frees for MS milliseconds, then exits with CODE
package main

/*
#cgo LDFLAGS: -lpthread
#include <stdlib.h>
#include "robust.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var (
	mu   sync.Mutex
	keep []unsafe.Pointer
)

func hold(p unsafe.Pointer) {
	mu.Lock()
	keep = append(keep, p)
	mu.Unlock()
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: robust threads N|gothreads N|closefds|reexec|daemon|unsetpreload|otherpreload|churn MS CODE")
	os.Exit(2)
}

func argInt(i int) int {
	if len(os.Args) <= i {
		usage()
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil {
		usage()
	}
	return n
}

func cThreads(n int) {
	if C.robust_threads(C.int(n)) != 0 {
		fmt.Fprintln(os.Stderr, "robust: cannot start", n, "threads")
		os.Exit(1)
	}
	for i := 0; i < n; i += 10 {
		truth.HeldC("robust_thread_leak", int64(100+i%7))
	}
	fmt.Println("robust: threads joined:", n)
}

func goThread(start, done *sync.WaitGroup) {
	defer done.Done()
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	hold(truth.Held(unsafe.Pointer(C.CString("locked")), 7))
	start.Done()
	start.Wait() // every goroutine, and so every thread, is alive at once
	C.free(unsafe.Pointer(C.CString("freed")))
}

func goThreads(n int) {
	var start, done sync.WaitGroup
	start.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go goThread(&start, &done)
	}
	done.Wait()
	fmt.Println("robust: locked goroutines done:", n)
}

func closeFds() {
	C.robust_close_fds()
	hold(truth.Held(unsafe.Pointer(C.CString("after closing")), 14))
	for i := 0; i < 3; i++ {
		hold(truth.Held(C.robust_c_leak(C.size_t(300+i)), int64(300+i), "robust_c_leak"))
	}
	fmt.Println("robust: descriptors closed")
}

func reexec() {
	hold(truth.Held(unsafe.Pointer(C.CString("first image")), 12))
	hold(truth.Held(C.robust_c_leak(500), 500, "robust_c_leak"))
	env := os.Environ()
	if exp := os.Getenv("CGOSCOPE_EXPECT"); exp != "" {
		truth.WriteTo(exp + ".first")
	}
	self, err := os.Executable()
	if err == nil {
		err = syscall.Exec(self, []string{os.Args[0], "reexec-second"}, env)
	}
	fmt.Fprintln(os.Stderr, "robust: exec failed:", err)
	os.Exit(1)
}

func reexecSecond() {
	for i := 0; i < 2; i++ {
		hold(truth.Held(C.robust_c_leak(C.size_t(700+i)), int64(700+i), "robust_c_leak"))
	}
	fmt.Println("robust: second image done")
}

func daemon() {
	hold(truth.Held(unsafe.Pointer(C.CString("foreground")), 11))
	if C.robust_daemonize(3, 300) != 0 {
		fmt.Fprintln(os.Stderr, "robust: daemonize failed")
		os.Exit(1)
	}
	if exp := os.Getenv("CGOSCOPE_EXPECT"); exp != "" {
		// The daemon runs only C code: the foreground states its truth for it.
		// robust_sink (a C global) keeps the last block; the two before it are lost.
		data := `{"leaks":[{"frames":[{"function":"robust_daemon_leak"}],"kind":"lost","blocks":2,"bytes":401},` +
			`{"frames":[{"function":"robust_daemon_leak"}],"kind":"still_reachable","blocks":1,"bytes":202}],"absent":[]}`
		if err := os.WriteFile(exp+".daemon", []byte(data), 0o600); err != nil {
			panic(err)
		}
	}
	fmt.Println("robust: foreground done")
}

func runUntracedChild(env []string) {
	hold(truth.Held(unsafe.Pointer(C.CString("parent")), 7))
	cmd := exec.Command(os.Args[0], "untraced-child")
	cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdout, os.Stderr, env
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "robust: child failed:", err)
		os.Exit(1)
	}
	fmt.Println("robust: untraced child done")
}

func untracedChild() {
	for i := 0; i < 4; i++ {
		hold(C.robust_c_leak(64))
	}
	C.robust_churn_for(400) // long enough to be seen running
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "threads":
		cThreads(argInt(2))
	case "gothreads":
		goThreads(argInt(2))
	case "closefds":
		closeFds()
	case "reexec":
		reexec()
	case "reexec-second":
		reexecSecond()
	case "daemon":
		daemon()
	case "unsetpreload":
		os.Unsetenv("LD_PRELOAD")
		runUntracedChild(os.Environ())
	case "otherpreload":
		var env []string
		for _, e := range os.Environ() {
			if len(e) < 11 || e[:11] != "LD_PRELOAD=" {
				env = append(env, e)
			}
		}
		runUntracedChild(append(env, "LD_PRELOAD=libm.so.6"))
	case "untraced-child":
		untracedChild()
		return
	case "churn":
		ms, code := argInt(2), argInt(3)
		hold(truth.Held(unsafe.Pointer(C.CString("churn")), 6))
		truth.Write()
		n := C.robust_churn_for(C.int(ms))
		fmt.Println("robust: churned", n)
		os.Exit(code)
	default:
		usage()
	}
	truth.Write()
}
