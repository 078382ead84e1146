package leaky

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// expect appends what a test leaked to $CGOSCOPE_EXPECT (nothing when it is not set).
func expect(t *testing.T, function string, blocks, bytes int) {
	path := os.Getenv("CGOSCOPE_EXPECT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "{\"test\":%q,\"function\":%q,\"blocks\":%d,\"bytes\":%d}\n", t.Name(), function, blocks, bytes)
}

// TestBlocks leaks Blocks blocks of BlockSize bytes, from C code.
func TestBlocks(t *testing.T) {
	n, err := strconv.Atoi(Blocks)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		Block(BlockSize) // cgoscope:testcmd-test-blocks
	}
	expect(t, "cgoscope.test/testcmd/leaky.Block", n, n*BlockSize)
}

// TestName leaks one C.CString.
func TestName(t *testing.T) {
	Name("forgotten") // cgoscope:testcmd-test-name
	expect(t, "cgoscope.test/testcmd/leaky.Name", 1, len("forgotten")+1)
}

// TestFreed frees all it allocates: it must not appear in the report.
func TestFreed(t *testing.T) {
	for i := 0; i < 50; i++ {
		Free(Block(64))
		Free(Name("freed"))
	}
}
