// resolver looks up localhost through the net package's cgo resolver (run it with
// GODEBUG=netdns=cgo): getaddrinfo is a _C2func_ call of package net.
package main

import (
	"fmt"
	"net"
	"os"

	"cgoscope.test/testprogs/internal/truth"
)

// #include <stdlib.h>
import "C" // makes this a cgo binary, as the programs cgoscope traces are

func main() {
	for i := 0; i < 3; i++ {
		if _, err := net.LookupHost("localhost"); err != nil {
			fmt.Fprintln(os.Stderr, "resolver:", err)
			os.Exit(1)
		}
	}
	truth.CallsAtLeast("net", "getaddrinfo", 3)
	fmt.Println("resolver: localhost resolved 3 times")
	truth.Write()
}
