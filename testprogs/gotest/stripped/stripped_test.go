package stripped

import "testing"

// TestNames makes Names names through C.make_name and frees all but the last: exactly Names
// calls of make_name, Names-1 of free, and one leaked block of 16 bytes.
func TestNames(t *testing.T) {
	for i := 0; i < Names-1; i++ {
		Free(Make(i))
	}
	if p := Make(Names - 1); p == nil { // cgoscope:leak-test
		t.Fatal("make_name returned NULL")
	}
}
