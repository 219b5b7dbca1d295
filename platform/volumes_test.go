package platform

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rosti-paas/rosti/internal/diskimage"
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

// TestAppDisks: with Disks, an app's volume is its own file system of the
// plan's size, made with the app (an app the host has no room for is
// refused with nothing left behind), grown with its plan, shrunk only
// while the app is stopped and never under what it holds; a volume made
// before disk quotas stays as it is.
func TestAppDisks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		volumes, _ := filepath.Glob(filepath.Join(dir, "volumes", "*"))
		for _, v := range volumes {
			_ = exec.Command("umount", v).Run()
		}
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	st, err := store.Open(filepath.Join(dir, "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := New(Config{DataDir: dir, AppsDomain: "apps.test"}, Deps{Store: st, Disks: diskimage.New(diskimage.Config{}), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := p.SeedCatalog(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plans := map[string]int64{}
	for name, disk := range map[string]int64{"tiny": 10, "small": 20, "more": 30, "huge": 500} {
		pl, err := p.PutPlan(ctx, Operator(), store.Plan{Name: name, MemoryMB: 128, Pids: 128, CPUMillis: 100, DiskMB: disk})
		if err != nil {
			t.Fatal(err)
		}
		plans[name] = pl.ID
	}
	u, err := p.CreateUser(ctx, Operator(), NewUser{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := p.Companies(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, plan string) (store.App, error) {
		return p.CreateApp(ctx, u, cs[0].ID, AppInput{Name: ptr(name), Image: ptr("static"), Plan: ptr(plans[plan])})
	}

	if _, err := create("toobig", "huge"); !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("an app the host has no room for: %v, want ErrNoSpace", err)
	}
	if apps, _ := p.Apps(ctx, u, cs[0].ID); len(apps) != 0 {
		t.Fatalf("a refused app is kept: %+v", apps)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "disks", "*")); len(left) != 0 {
		t.Fatalf("a refused app left %v", left)
	}

	a, err := create("site", "small")
	if err != nil {
		t.Fatal(err)
	}
	vol := p.volumeDir(a)
	if mounted, _ := diskimage.Mounted(vol); !mounted {
		t.Fatal("the app's volume is not its own file system")
	}
	if fi, err := os.Stat(vol); err != nil || owner(t, vol) != a.UID || fi.Mode().Perm() != 0o750 {
		t.Fatalf("the volume's root: %v, %v, uid %d", fi.Mode(), err, owner(t, vol))
	}

	plan := func(name string) error {
		_, err := p.UpdateApp(ctx, u, AppByID(cs[0].ID, a.ID), AppInput{Plan: ptr(plans[name])})
		return err
	}
	if err := plan("tiny"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "only while the app is stopped") {
		t.Fatalf("a plan with less disk for a running app: %v", err)
	}
	if err := os.WriteFile(filepath.Join(vol, "app", "data"), make([]byte, 15e6), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := plan("tiny"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "delete files first") {
		t.Fatalf("a plan with less disk than the app uses: %v", err)
	}
	if err := plan("more"); err != nil {
		t.Fatalf("a plan with more disk: %v", err)
	}
	if got, _ := p.App(ctx, u, AppByID(cs[0].ID, a.ID)); got.PlanID != plans["more"] {
		t.Fatalf("plan %d after moving to a bigger one", got.PlanID)
	}
	more, err := p.store.Plan(plans["more"])
	if err != nil {
		t.Fatal(err)
	}
	more.DiskMB = 40
	if _, err := p.PutPlan(ctx, Operator(), more); err != nil {
		t.Fatal(err)
	}
	if a, err = p.store.App(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ensureVolume(a); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p.diskImage(a)); err != nil || fi.Size() < 40e6-diskRounding {
		t.Fatalf("the disk after its plan got 40 MB: %v, %v", fi.Size(), err)
	}
	if a, err = p.store.UpdateApp(a.ID, func(a *store.App) error { a.DesiredState = store.StateStopped; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := plan("tiny"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "delete files first") {
		t.Fatalf("a plan with less disk than a stopped app uses: %v", err)
	}
	if err := os.Remove(filepath.Join(vol, "app", "data")); err != nil {
		t.Fatal(err)
	}
	if err := plan("tiny"); err != nil {
		t.Fatalf("a plan with less disk for a stopped app: %v", err)
	}
	if use, err := diskimage.UsageOf(vol); err != nil || use.Size > 10e6 {
		t.Fatalf("the disk after moving to a 10 MB plan: %+v, %v", use, err)
	}

	t.Run("a volume made before disk quotas stays", func(t *testing.T) {
		if err := p.removeVolume(a); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(vol, "app"), 0o750); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ensureVolume(a); err != nil {
			t.Fatal(err)
		}
		if mounted, _ := diskimage.Mounted(vol); mounted {
			t.Fatal("an old plain volume was mounted over")
		}
		if _, _, note, err := p.volumeUsage(a, 20); err != nil || !strings.Contains(note, "before disk quotas") {
			t.Fatalf("usage of a plain volume: %q, %v", note, err)
		}
	})
}
