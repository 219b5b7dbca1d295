package sandbox

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"
)

// TestHostFilesAreTheToolsAndWhatTheyLoad: the sandbox's view of the host
// holds each tool and the libraries it loads, and no other program.
func TestHostFilesAreTheToolsAndWhatTheyLoad(t *testing.T) {
	files, err := hostFiles()
	if err != nil {
		t.Fatal(err)
	}
	real := map[string]bool{}
	for _, f := range files {
		if r, err := filepath.EvalSymlinks(f); err == nil {
			real[r] = true
		}
	}
	for _, tc := range []struct {
		name string
		path string
		want bool
	}{
		{"tar", "/usr/bin/tar", true},
		{"rsync", "/usr/bin/rsync", true},
		{"git", "/usr/bin/git", true},
		{"the C library", "/usr/lib/x86_64-linux-gnu/libc.so.6", true},
		{"rsync's libpopt", "/usr/lib/x86_64-linux-gnu/libpopt.so.0", true},
		{"perl", "/usr/bin/perl", false},
		{"python3", "/usr/bin/python3", false},
		{"id", "/usr/bin/id", false},
		{"bash", "/usr/bin/bash", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := filepath.EvalSymlinks(tc.path)
			if err != nil {
				t.Skipf("not on this host: %v", err)
			}
			if real[r] != tc.want {
				t.Errorf("%s in the sandbox: %v, want %v (files: %v)", tc.path, real[r], tc.want, slices.Sorted(maps.Keys(real)))
			}
		})
	}
}
