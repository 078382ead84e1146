package leaks

import "testing"

// TestNameLeaks forgets to free what Name returns: the leak cgoscope must find.
func TestNameLeaks(t *testing.T) {
	if p := Name("forgotten"); p == nil { // cgoscope:leak-test
		t.Fatal("Name returned nil")
	}
}

// TestLabelFreed frees everything: it must not appear in the report.
func TestLabelFreed(t *testing.T) {
	for i := 0; i < 100; i++ {
		Free(Label("label"))
		Free(Name("name"))
	}
}
