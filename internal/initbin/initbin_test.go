package initbin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstall(t *testing.T) {
	saved := embedded
	t.Cleanup(func() { embedded = saved })

	embedded = ""
	if path, err := Install(t.TempDir()); err != nil || path != "" {
		t.Errorf("without an embedded binary: %q, %v; want \"\", nil", path, err)
	}

	dir := filepath.Join(t.TempDir(), "bin")
	embedded = "#!/bin/sh\necho one\n"
	first, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(first)
	if err != nil || string(got) != embedded {
		t.Fatalf("installed %q, %v", got, err)
	}
	if fi, _ := os.Stat(first); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	if again, err := Install(dir); err != nil || again != first {
		t.Errorf("installing the same again: %q, %v; want %q", again, err, first)
	}

	// Another build's binary goes beside it: containers started with the
	// first keep the file they mounted.
	embedded = "#!/bin/sh\necho two\n"
	second, err := Install(dir)
	if err != nil || second == first {
		t.Fatalf("another binary: %q, %v", second, err)
	}
	if got, _ := os.ReadFile(first); string(got) != "#!/bin/sh\necho one\n" {
		t.Errorf("the first binary changed to %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d files, want the 2 binaries and no temporary ones", len(entries))
	}
}
