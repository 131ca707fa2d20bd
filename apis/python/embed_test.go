package pyapi

import (
	"io/fs"
	"strings"
	"testing"
)

func TestFSHoldsThePackage(t *testing.T) {
	for _, f := range []string{"dora/__init__.py", "dora/_arrow.py", "dora/_host.py", "dora/_wire.py"} {
		b, err := fs.ReadFile(FS(), f)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	init, _ := fs.ReadFile(FS(), "dora/__init__.py")
	if !strings.Contains(string(init), "PROTOCOL_VERSION = 1") {
		t.Error("dora/__init__.py lacks PROTOCOL_VERSION = 1, which loaders/python expects")
	}
}

func TestHashIsStable(t *testing.T) {
	if a, b := Hash(), Hash(); a != b || len(a) != 64 {
		t.Errorf("Hash() = %q then %q", a, b)
	}
}
