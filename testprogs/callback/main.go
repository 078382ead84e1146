// callback: Go calls C, C calls back into Go, and the callback recurses deep enough to grow
// (move) the goroutine stack before it leaks through a cgo call. After the callback returns,
// the C function leaks too. Both leaks must name the right Go function and line.
package main

/*
#include <stdlib.h>
void *run_with_callback(int depth);
*/
import "C"

import (
	"fmt"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var keep []unsafe.Pointer

//export goCallback
func goCallback(depth C.int) {
	goRecurse(int(depth))
}

//go:noinline
func goRecurse(n int) int {
	var pad [512]byte // each level takes real stack: 300 levels outgrow the initial 8 KiB
	pad[n%512] = byte(n)
	if n == 0 {
		keep = append(keep, truth.Held(unsafe.Pointer(C.CString("from deep inside a callback")), 28))
		return int(pad[0])
	}
	return goRecurse(n-1) + int(pad[n%512])
}

func main() {
	keep = append(keep, truth.Held(C.run_with_callback(300), 77, "run_with_callback"))
	truth.Calls("main", "run_with_callback", 1)
	truth.Callbacks("main", "goCallback", 1)
	fmt.Println("callback: done")
	truth.Write()
}
