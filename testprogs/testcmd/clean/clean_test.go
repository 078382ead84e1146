package clean

import (
	"fmt"
	"testing"
)

func TestLabels(t *testing.T) {
	for i := 0; i < 100; i++ {
		Free(Label(fmt.Sprint("label ", i)))
	}
}
