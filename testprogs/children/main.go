// children starts processes of its own, each of which leaks:
//
//	children exec   the program leaks, then runs itself as "children child" (os/exec), which
//	                leaks too: two Go processes
//	children fork   the program leaks, then C code calls fork() and the child (no exec) leaks
//	                from C and _exit()s
//
// Each process's ground truth goes to its own file: $CGOSCOPE_EXPECT for the first process,
// $CGOSCOPE_EXPECT.child for the child.
package main

/*
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile fork_keep[4];

__attribute__((noinline)) void forked_child_leak(int i) {
	fork_keep[i] = malloc(50 + i);
}

static int fork_and_leak(int n) {
	pid_t p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		for (int i = 0; i < n; i++)
			forked_child_leak(i);
		_exit(0);
	}
	int st;
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return 0;
}

static void *parent_alloc(size_t n) { return malloc(n); }
*/
import "C"

import (
	"fmt"
	"os"
	"os/exec"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var keep []unsafe.Pointer

func parentLeak() {
	keep = append(keep, truth.Held(C.parent_alloc(111), 111, "parent_alloc"))
}

func childLeak() {
	keep = append(keep, truth.Held(unsafe.Pointer(C.CString("from the child process")), 23))
	keep = append(keep, truth.Held(unsafe.Pointer(C.CString("and again")), 10))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: children exec|fork|child")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "child":
		childLeak()
		fmt.Println("children: child done")
		truth.Write()
		return
	case "exec":
		parentLeak()
		cmd := exec.Command(os.Args[0], "child")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if exp := os.Getenv("CGOSCOPE_EXPECT"); exp != "" {
			cmd.Env = append(os.Environ(), "CGOSCOPE_EXPECT="+exp+".child")
		}
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "children: child failed:", err)
			os.Exit(1)
		}
	case "fork":
		parentLeak()
		if C.fork_and_leak(3) != 0 {
			fmt.Fprintln(os.Stderr, "children: fork failed")
			os.Exit(1)
		}
		writeForkedExpectations()
	default:
		fmt.Fprintln(os.Stderr, "children: unknown mode", os.Args[1])
		os.Exit(2)
	}
	fmt.Println("children: parent done")
	truth.Write()
}

// The forked child runs only C code: the parent states its truth for it.
func writeForkedExpectations() {
	exp := os.Getenv("CGOSCOPE_EXPECT")
	if exp == "" {
		return
	}
	// fork_keep, a C global, holds them all.
	data := `{"leaks":[{"frames":[{"function":"forked_child_leak"}],"kind":"still_reachable","blocks":3,"bytes":153}],"absent":[]}`
	if err := os.WriteFile(exp+".child", []byte(data), 0o600); err != nil {
		panic(err)
	}
}
