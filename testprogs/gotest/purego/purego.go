// Package purego has no cgo: its test binary is static, with no C heap for cgoscope to check.
// Under `go test -exec 'cgoscope run --fail-on-leak --' ./...` it must run and pass as it is.
package purego

// Sum adds up xs.
func Sum(xs ...int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}
