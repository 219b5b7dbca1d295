package diskimage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// hostFS is a small tmpfs standing for the host's data file system.
func hostFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	for _, tool := range []string{"mkfs.ext4", "resize2fs", "losetup", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (e2fsprogs, util-linux)", tool)
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount the test's file system: %v: %s (a volume left mounted?)", err, out)
		}
	})
	return dir
}

// loopsOf lists the loop devices backed by image, once the kernel had
// the time it takes to clear those whose mount is gone.
func loopsOf(t *testing.T, image string) string {
	t.Helper()
	if err := loopCleared(image); errors.Is(err, ErrInUse) {
		return err.Error()
	} else if err != nil {
		t.Fatal(err)
	}
	return ""
}

// fill writes into dir until the file system refuses, and returns the error.
func fill(t *testing.T, path string) error {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for range 1000 {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	return f.Sync()
}

func TestVolumeLife(t *testing.T) {
	host := hostFS(t, "96m")
	m := New(Config{})
	image, dir := filepath.Join(host, "1.ext4"), filepath.Join(host, "1")

	if err := m.Ensure(image, dir, 16e6); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := Mounted(dir); !mounted {
		t.Fatal("the volume is not mounted")
	}
	if _, err := os.Stat(filepath.Join(dir, "lost+found")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lost+found is left in the volume: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kept"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(image, dir, 16e6); err != nil {
		t.Fatalf("Ensure on a mounted volume: %v", err)
	}

	t.Run("writes stop at the size", func(t *testing.T) {
		err := fill(t, filepath.Join(dir, "big"))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("writing 1000 MB into 16 MB: %v, want ENOSPC", err)
		}
		u, err := UsageOf(dir)
		if err != nil {
			t.Fatal(err)
		}
		if u.Free > 1e6 || u.Used < 10e6 || u.Size > 16e6 {
			t.Fatalf("usage of a full 16 MB volume: %+v", u)
		}
		if err := os.Remove(filepath.Join(dir, "big")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("mounted again after a reboot, files kept", func(t *testing.T) {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if loops := loopsOf(t, image); loops != "" {
			t.Fatalf("a loop device outlived its mount: %s", loops)
		}
		if err := m.Ensure(image, dir, 16e6); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(b) != "data" {
			t.Fatalf("kept = %q, %v", b, err)
		}
	})

	t.Run("grows", func(t *testing.T) {
		before, _ := UsageOf(dir)
		err := m.Grow(image, dir, 32e6)
		if errors.Is(err, ErrGrowPending) {
			// No online resize on this host: it grows at the next mount.
			if !GrowPending(image) {
				t.Fatal("a pending growth is not marked")
			}
			if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			err = m.Ensure(image, dir, 32e6)
		}
		if err != nil {
			t.Fatal(err)
		}
		if GrowPending(image) {
			t.Fatal("still marked as pending after growing")
		}
		after, _ := UsageOf(dir)
		if after.Size < before.Size+14e6 {
			t.Fatalf("size %d after growing from %d to 32 MB", after.Size, before.Size)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(b) != "data" {
			t.Fatalf("kept = %q, %v", b, err)
		}
	})

	const sixteenMB = 16e6 - int64(16e6)%blockSize // sizes are whole blocks
	t.Run("shrinks when nothing uses it", func(t *testing.T) {
		before, _ := UsageOf(dir)
		if err := m.Shrink(image, dir, 16e6); err != nil {
			t.Fatal(err)
		}
		after, _ := UsageOf(dir)
		if mounted, _ := Mounted(dir); !mounted || after.Size > before.Size-14e6 || after.Size > 16e6 {
			t.Fatalf("after shrinking from %d to 16 MB: size %d, mounted %v", before.Size, after.Size, mounted)
		}
		if fi, _ := os.Stat(image); fi.Size() != sixteenMB {
			t.Fatalf("the image is %d bytes after shrinking to 16 MB", fi.Size())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(b) != "data" {
			t.Fatalf("kept = %q, %v", b, err)
		}
	})

	t.Run("does not shrink what is used elsewhere", func(t *testing.T) {
		elsewhere := filepath.Join(host, "elsewhere")
		if err := os.Mkdir(elsewhere, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "--bind", dir, elsewhere).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		defer func() {
			if out, err := exec.Command("umount", elsewhere).CombinedOutput(); err != nil {
				t.Errorf("%v: %s", err, out)
			}
		}()
		if err := m.Shrink(image, dir, 12e6); !errors.Is(err, ErrInUse) {
			t.Fatalf("shrinking a file system mounted elsewhere: %v, want ErrInUse", err)
		}
		if mounted, _ := Mounted(dir); !mounted {
			t.Fatal("not mounted again after a refused shrink")
		}
		if fi, _ := os.Stat(image); fi.Size() != sixteenMB {
			t.Fatalf("a refused shrink changed the image to %d bytes", fi.Size())
		}
	})

	t.Run("does not shrink below what it holds", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "ten"), make([]byte, 10e6), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(dir, "ten"))
		if err := m.Shrink(image, dir, 4e6); !errors.Is(err, ErrTooSmall) {
			t.Fatalf("shrinking 10 MB of files into 4 MB: %v, want ErrTooSmall", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(b) != "data" {
			t.Fatalf("kept = %q, %v", b, err)
		}
		if fi, _ := os.Stat(image); fi.Size() != sixteenMB {
			t.Fatalf("a refused shrink changed the image to %d bytes", fi.Size())
		}
	})

	t.Run("no image past the host's room", func(t *testing.T) {
		err := m.Ensure(filepath.Join(host, "2.ext4"), filepath.Join(host, "2"), 90e6)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("a 90 MB image with %s left: %v, want ENOSPC", "about 60 MB", err)
		}
		if left, _ := filepath.Glob(filepath.Join(host, "2*")); len(left) > 0 {
			t.Fatalf("a refused image left %v", left)
		}
		if err := m.Grow(image, dir, 200e6); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("growing past the host's room: %v, want ENOSPC", err)
		}
	})

	t.Run("removed", func(t *testing.T) {
		if err := m.Remove(image, dir); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{image, dir} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s is left: %v", p, err)
			}
		}
		if loops := loopsOf(t, image); loops != "" {
			t.Fatalf("a loop device outlived the volume: %s", loops)
		}
		if err := m.Remove(image, dir); err != nil {
			t.Fatalf("removing again: %v", err)
		}
	})
}

// TestSparseImages: a sparse image promises more than the host holds,
// takes only what is written, and still stops its writes at its size.
func TestSparseImages(t *testing.T) {
	host := hostFS(t, "64m")
	m := New(Config{Sparse: true})
	image, dir := filepath.Join(host, "1.ext4"), filepath.Join(host, "1")
	big, bigDir := filepath.Join(host, "2.ext4"), filepath.Join(host, "2")
	// 32 MB and 200 MB on a 64 MB host: allocated in full, the second
	// would be refused.
	if err := m.Ensure(image, dir, 32e6); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(big, bigDir, 200e6); err != nil {
		t.Fatalf("a sparse image larger than the host: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(big, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 20e6 {
		t.Errorf("an empty 200 MB sparse image takes %d MB of the host", used/1e6)
	}
	if err := fill(t, filepath.Join(dir, "fill")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing past the sparse image's 32 MB: %v, want ENOSPC", err)
	}
	for _, d := range []struct{ image, dir string }{{image, dir}, {big, bigDir}} {
		if err := m.Remove(d.image, d.dir); err != nil {
			t.Fatal(err)
		}
	}
}
