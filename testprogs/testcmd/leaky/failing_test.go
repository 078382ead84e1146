//go:build failing

package leaky

import "testing"

// TestFailing fails when the tests are built with -tags failing: go test's own status must
// come through cgoscope test.
func TestFailing(t *testing.T) {
	t.Fatal("fails on purpose: built with -tags failing")
}
