// Package nocgo uses no cgo: its test binary is static, so nothing can be traced in it, and
// `cgoscope test` runs it as it is and lists it as not traced.
package nocgo

// Sum adds up xs.
func Sum(xs ...int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}
