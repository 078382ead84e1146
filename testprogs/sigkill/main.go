// sigkill leaks and then kills itself with SIGKILL: no handler, no flush, nothing runs after.
package main

/*
#include <stdlib.h>
static void *sk_leak(size_t n) { return malloc(n); }
*/
import "C"

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var keep []unsafe.Pointer

func main() {
	for i := 0; i < 5; i++ {
		keep = append(keep, truth.Held(unsafe.Pointer(C.sk_leak(C.size_t(1000+i))), int64(1000+i), "sk_leak"))
	}
	keep = append(keep, truth.Held(unsafe.Pointer(C.CString("killed")), 7))
	fmt.Println("sigkill: killing myself")
	truth.Write()
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
