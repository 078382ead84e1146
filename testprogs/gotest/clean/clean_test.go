package clean

import (
	"fmt"
	"os"
	"testing"
)

func TestLabels(t *testing.T) {
	for i := 0; i < 100; i++ {
		Free(Label(fmt.Sprint("label ", i)))
	}
}

// TestParallel makes the runtime start threads (x_cgo_thread_start and the loader's
// thread-local storage allocate C memory that is never freed: the runtime's, not the test's).
func TestParallel(t *testing.T) {
	for i := 0; i < 8; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			for k := 0; k < 200; k++ {
				Free(Label("parallel"))
			}
		})
	}
}

// TestSetenv: os.Setenv goes through the C library's setenv in a cgo program.
func TestSetenv(t *testing.T) {
	if err := os.Setenv("CGOSCOPE_CLEAN_TEST", "1"); err != nil {
		t.Fatal(err)
	}
}
