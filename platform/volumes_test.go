package platform

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rosti-paas/rosti/store"
)

// TestEnsureVolumeFollowsNoSymlink: an app that replaces its app/ directory
// with a symlink to a host file must not be handed that file.
func TestEnsureVolumeFollowsNoSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	p := &Platform{cfg: Config{DataDir: t.TempDir()}}
	a := store.App{ID: 7, UID: 200007}
	vol, err := p.ensureVolume(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{vol, filepath.Join(vol, "app")} {
		if owner(t, d) != a.UID {
			t.Fatalf("%s is not the app's", d)
		}
	}
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(vol, "app")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(vol, "app")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ensureVolume(a); err != nil {
		t.Fatal(err)
	}
	if owner(t, secret) != 0 {
		t.Fatal("the symlink's target was chowned to the app")
	}
}

func owner(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}
