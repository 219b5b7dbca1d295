package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFullDiskIsErrNoSpace: a write the disk has no room for is
// ErrNoSpace, the store stays usable for reads, and writes work again once
// space is freed.
func TestFullDiskIsErrNoSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	s, err := Open(filepath.Join(dir, "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustUser(t, s, "early")

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	// Each user is a few pages; the pages bbolt already has run out soon.
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		_, _, werr = s.CreateUser(User{Username: fmt.Sprintf("user%04d-%s", i, strings.Repeat("x", 200)), IsActive: true, Created: time.Now()})
	}
	if !errors.Is(werr, ErrNoSpace) {
		t.Fatalf("write on a full disk: %v, want ErrNoSpace", werr)
	}
	if _, err := s.UserByName("early"); err != nil {
		t.Fatalf("read on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateUser(User{Username: "later", IsActive: true, Created: time.Now()}); err != nil {
		t.Fatalf("write once space is freed: %v", err)
	}
}
