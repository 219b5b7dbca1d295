package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rosti-paas/rosti/store"
)

// The app's files on its volume, as deploys see them:
//
//	app/                 the live tree, what the app's processes run
//	.rosti/staging/vN    a deploy's new tree, until it trades places with app/
//	.rosti/trees/vN      kept copies of the trees releases ran with, for rollback
//
// rosti runs as root and the volume is the app's to change, so everything
// here goes through an os.Root on the volume (no path leaves it) and never
// follows a symlink the app may have planted: links are copied as links,
// and only regular files and directories are read.
const (
	appTreeDir = "app"
	stagingDir = ".rosti/staging"
	treesDir   = ".rosti/trees"
	// keptTrees bounds the copies of past trees an app keeps: rollback
	// reaches this far back without a rebuild.
	keptTrees = 3
)

// volumeTrees works on one app's trees.
type volumeTrees struct {
	dir      string // host path of the volume
	uid, gid int
}

func (p *Platform) treesOf(a store.App) volumeTrees {
	return volumeTrees{dir: p.volumeDir(a), uid: int(a.UID), gid: int(a.UID)}
}

func (t volumeTrees) open() (*os.Root, error) {
	root, err := os.OpenRoot(t.dir)
	if err != nil {
		return nil, fmt.Errorf("open the app volume: %w", err)
	}
	return root, nil
}

// mkdirOwned makes a directory of the volume owned by the app, so that the
// app can change what rosti made for it.
func (t volumeTrees) mkdirOwned(root *os.Root, name string, mode fs.FileMode) error {
	if err := root.Mkdir(name, mode); err != nil {
		return fmt.Errorf("create /srv/%s: %w", name, err)
	}
	if err := root.Lchown(name, t.uid, t.gid); err != nil {
		return fmt.Errorf("create /srv/%s: %w", name, err)
	}
	// Mkdir's mode went through the umask.
	return root.Chmod(name, mode)
}

// ensureDirs makes .rosti/ and its parts. They are the app's, like
// everything in its volume (its disk quota counts them), though what is
// kept there is for rosti's deploys and rollbacks.
func (t volumeTrees) ensureDirs(root *os.Root) error {
	for _, d := range []string{".rosti", stagingDir, treesDir} {
		fi, err := root.Lstat(d)
		if errors.Is(err, fs.ErrNotExist) {
			if err := t.mkdirOwned(root, d, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			// The app replaced it (a link out of the volume, a file):
			// rosti's area is rosti's.
			if err := root.RemoveAll(d); err != nil {
				return err
			}
			if err := t.mkdirOwned(root, d, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// newStaging makes an empty staging tree for version, owned by the app with
// the live tree's mode, and returns its path in the volume.
func (t volumeTrees) newStaging(version int64) (string, error) {
	root, err := t.open()
	if err != nil {
		return "", err
	}
	defer root.Close()
	if err := t.ensureDirs(root); err != nil {
		return "", err
	}
	live, err := root.Lstat(appTreeDir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := t.mkdirOwned(root, appTreeDir, 0o755); err != nil {
			return "", err
		}
		live, err = root.Lstat(appTreeDir)
	}
	if err != nil {
		return "", fmt.Errorf("/srv/app: %w", err)
	}
	if !live.IsDir() {
		return "", fmt.Errorf("/srv/app is not a directory; remove it and deploy again: %w", store.ErrInvalid)
	}
	name := path.Join(stagingDir, "v"+strconv.FormatInt(version, 10))
	// Left by a deploy that never finished (deploys of an app take turns).
	if err := root.RemoveAll(name); err != nil {
		return "", err
	}
	return name, t.mkdirOwned(root, name, live.Mode().Perm())
}

// remove deletes a tree of the volume; a missing one is fine.
func (t volumeTrees) remove(name string) error {
	root, err := t.open()
	if err != nil {
		return err
	}
	defer root.Close()
	return root.RemoveAll(name)
}

// exchange makes staged the live tree and the live tree staged, in one
// rename(2): /srv/app always names a whole tree. Both sides are named
// relative to directories opened without following symlinks, since the app
// can have replaced any of them with a link out of its volume.
func (t volumeTrees) exchange(staged string) error {
	const dirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open(t.dir, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open the volume: %w", err)
	}
	defer unix.Close(fd)
	parent := fd
	for _, part := range []string{".rosti", path.Base(stagingDir)} {
		next, err := unix.Openat(parent, part, dirFlags, 0)
		if parent != fd {
			unix.Close(parent)
		}
		if err != nil {
			return fmt.Errorf("open /srv/%s: %w", stagingDir, err)
		}
		parent = next
	}
	defer unix.Close(parent)
	if err := unix.Renameat2(fd, appTreeDir, parent, path.Base(staged), unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchange /srv/app and /srv/%s: %w", staged, err)
	}
	return nil
}

// copyTree copies the tree from to a new tree to, as the app's files:
// directories, regular files and symlinks (as links); anything else (FIFOs,
// sockets, devices) is left out.
func (t volumeTrees) copyTree(from, to string) error {
	root, err := t.open()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := t.ensureDirs(root); err != nil {
		return err
	}
	if err := root.RemoveAll(to); err != nil {
		return err
	}
	top, err := root.Lstat(from)
	if err != nil {
		return fmt.Errorf("/srv/%s: %w", from, err)
	}
	if !top.IsDir() {
		return fmt.Errorf("/srv/%s is not a directory: %w", from, store.ErrInvalid)
	}
	if err := t.mkdirOwned(root, to, top.Mode().Perm()); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	return fs.WalkDir(root.FS(), from, func(src string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if src == from {
			return nil
		}
		dst := path.Join(to, src[len(from)+1:])
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return t.mkdirOwned(root, dst, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := root.Readlink(src)
			if err != nil {
				return err
			}
			if err := root.Symlink(target, dst); err != nil {
				return err
			}
			return root.Lchown(dst, t.uid, t.gid)
		case d.Type().IsRegular():
			return copyFile(root, src, dst, info.Mode().Perm(), t.uid, t.gid, buf)
		}
		return nil
	})
}

func copyFile(root *os.Root, src, dst string, mode fs.FileMode, uid, gid int, buf []byte) error {
	in, err := root.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil // swapped for something else since it was listed
	}
	out, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, buf); err != nil {
		out.Close()
		return err
	}
	if err := out.Chown(uid, gid); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// digest fingerprints a tree by its names, types, sizes, modes and
// modification times: enough to tell whether files were uploaded since the
// last release without reading them. An empty or missing tree is "".
func (t volumeTrees) digest(tree string) (string, error) {
	root, err := t.open()
	if err != nil {
		return "", err
	}
	defer root.Close()
	if _, err := root.Lstat(tree); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	h := sha256.New()
	entries := 0
	err = fs.WalkDir(root.FS(), tree, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == tree {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		entries++
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00%d\n", name[len(tree):], info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil || entries == 0 {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// prune removes the kept trees that none of keep names.
func (t volumeTrees) prune(keep []string) error {
	root, err := t.open()
	if err != nil {
		return err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), treesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if name := path.Join(treesDir, e.Name()); !slices.Contains(keep, name) {
			errs = append(errs, root.RemoveAll(name))
		}
	}
	return errors.Join(errs...)
}

// has tells whether a kept tree is there.
func (t volumeTrees) has(name string) bool {
	root, err := t.open()
	if err != nil {
		return false
	}
	defer root.Close()
	fi, err := root.Lstat(name)
	return err == nil && fi.IsDir()
}
