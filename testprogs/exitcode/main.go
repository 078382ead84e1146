// exitcode writes known lines to stdout and stderr, leaks, and ends with os.Exit(3): Go's
// exit_group, which runs no C destructors.
package main

/*
#include <stdlib.h>
static void *ec_leak(size_t n) { return malloc(n); }
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"

	"cgoscope.test/testprogs/internal/truth"
)

var keep []unsafe.Pointer

func main() {
	for i := 0; i < 3; i++ {
		fmt.Printf("stdout line %d\n", i)
		fmt.Fprintf(os.Stderr, "stderr line %d\n", i)
	}
	keep = append(keep, truth.Held(unsafe.Pointer(C.ec_leak(333)), 333, "ec_leak"))
	keep = append(keep, truth.Held(unsafe.Pointer(C.CString("exit code three")), 16))
	fmt.Print("no newline at the end")
	truth.Write()
	os.Exit(3)
}
