// cgotraceback installs its own cgo context function with runtime.SetCgoTraceback, then C
// calls back into Go. The program's context function must still be called (twice per callback:
// when Go is entered and when it returns), and cgoscope must still count the callbacks.
package main

/*
#include <stdint.h>

struct ctx_arg { uintptr_t Context; };
struct tb_arg { uintptr_t Context; uintptr_t SigContext; uintptr_t *Buf; uintptr_t Max; };

static long context_calls;

static void my_context(void *p) {
	struct ctx_arg *a = p;
	context_calls++;
	if (a->Context == 0)
		a->Context = 42;
}

static void my_traceback(void *p) {
	struct tb_arg *a = p;
	if (a->Max > 0)
		a->Buf[0] = 0;
}

static void *context_fn(void) { return (void *)my_context; }
static void *traceback_fn(void) { return (void *)my_traceback; }
static long get_context_calls(void) { return context_calls; }

extern void goBack(int);
static void call_back(int n) {
	for (int i = 0; i < n; i++)
		goBack(i);
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"

	"cgoscope.test/testprogs/internal/truth"
)

var total int

//export goBack
func goBack(i C.int) { total += int(i) }

func main() {
	runtime.SetCgoTraceback(0, C.traceback_fn(), C.context_fn(), nil)
	C.call_back(100)
	C.call_back(23)
	truth.Calls("main", "call_back", 2)
	truth.Callbacks("main", "goBack", 123)
	got := int64(C.get_context_calls())
	if got != 2*123 {
		fmt.Fprintf(os.Stderr, "cgotraceback: my context function ran %d times, want %d\n", got, 2*123)
		os.Exit(1)
	}
	fmt.Println("cgotraceback: context function ran", got, "times; total", total)
	truth.Write()
}
