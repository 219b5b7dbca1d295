// Package diskimage gives a directory a file system of its own and of a
// fixed size: an ext4 image file, preallocated, loop-mounted on the
// directory. rosti puts each app's volume on one, so that the app's writes
// (and those made for it: SFTP, rsync, git, deploys) stop at its plan's
// disk with ENOSPC, whatever uid writes them.
//
// Why images and not project quotas: project quotas need the data file
// system mounted with prjquota (ext4 also needs the quota feature set
// while unmounted), which a stock VPS root file system is not, and rosti
// does not remount the host's root. An image works on any file system
// that has fallocate (ext4, xfs, btrfs) and needs only the kernel's loop
// driver and e2fsprogs.
//
// Why preallocated: an image is allocated in full (fallocate) when it is
// made or grown, so a tenant filling its disk never takes a block more
// from the host file system, and the host's free space (what rosti's own
// store and logs need) moves only when an app is created or its plan
// grows. An image that cannot be allocated, or whose allocation would
// leave less than the reserve (5% of the host file system, at most 1 GiB)
// free, is refused with ENOSPC: the app is not created, the plan not
// changed, nothing is overcommitted. The cost is that a plan's disk is
// taken from the host when the app is made, used or not. Nothing ever
// discards blocks inside an image (mkfs runs with nodiscard, mounts have
// no discard), so the allocation stays. An operator who would rather
// overcommit (many small apps that write little, on a small disk) makes
// the images sparse (Config.Sparse, `rosti serve --sparse-disks`): they
// take blocks as they are written and give them back through discard,
// nothing is refused for want of room, and a full host disk is then
// everyone's, rosti's own writes included (answered with 507).
//
// Growing is online (resize2fs on the mounted device) where the kernel lets
// rosti: it needs CAP_SYS_RESOURCE, which some container hosts withhold
// even from root; there the image is allocated at once and its file system
// grows offline the next time it is mounted (after a reboot). Shrinking
// is offline only (ext4 cannot shrink mounted), so only a file system
// nothing uses shrinks: an app's, once it is stopped.
//
// Mounts use mount(8)'s loop option, which sets the loop device to clear
// itself when the file system is unmounted: no loop device outlives its
// mount. Mounts are not undone when rosti stops (running containers use
// them); Ensure mounts again what a reboot unmounted.
//
// The package owns the image files and the mounts on the directories it is
// given; it knows nothing of apps, and never reads what is inside a volume.
package diskimage

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosti-paas/rosti/internal/keyedmutex"
)

// maxReserve caps the free space kept on the host file system for rosti's
// own data (store, logs, container images).
const maxReserve = 1 << 30

// blockSize is ext4's block size for all but the smallest images; sizes
// are rounded down to it.
const blockSize = 4096

// Config chooses how images take the host's disk.
type Config struct {
	// Sparse images take host blocks only as their files are written
	// (and give them back as files are deleted: mounted with discard),
	// so the sum of the plans' disks may exceed the host's: no image is
	// refused for want of room, and a host whose disk fills up answers
	// every writer, rosti included, with ENOSPC. Not sparse (the default),
	// images are allocated in full and nothing is overcommitted.
	Sparse bool
}

// Manager makes, mounts, grows and removes images; calls about one
// directory take turns.
type Manager struct {
	cfg   Config
	locks keyedmutex.Map[string]
}

// New returns a Manager.
func New(cfg Config) *Manager { return &Manager{cfg: cfg} }

// Ensure makes dir the mount of image, first making image with size bytes
// when it does not exist. It is cheap when dir is already mounted.
func (m *Manager) Ensure(image, dir string, size int64) error {
	unlock := m.locks.Lock(dir)
	defer unlock()
	return m.ensure(image, dir, size)
}

func (m *Manager) ensure(image, dir string, size int64) error {
	if mounted, err := Mounted(dir); err != nil || mounted {
		return err
	}
	fresh := false
	if _, err := os.Stat(image); errors.Is(err, os.ErrNotExist) {
		if err := m.create(image, size); err != nil {
			return err
		}
		fresh = true
	} else if err != nil {
		return err
	}
	if err := growOffline(image); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	options := "loop,nosuid,nodev,noatime"
	if m.cfg.Sparse {
		options += ",discard"
	}
	if err := run("mount", "-t", "ext4", "-o", options, image, dir); err != nil {
		return err
	}
	if fresh {
		// mkfs's lost+found is root's and means nothing to an app; e2fsck
		// makes it again should it need one.
		_ = os.Remove(filepath.Join(dir, "lost+found"))
	}
	return nil
}

// create makes an ext4 image of size bytes, allocated in full unless
// sparse, under a temporary name renamed to image once complete.
func (m *Manager) create(image string, size int64) error {
	size -= size % blockSize
	tmp := image + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = m.allocate(f, image, 0, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// -m 0: no blocks reserved for root inside the image, since root
		// (the SSH gateway) writes there on the app's behalf. -i 8192: an
		// inode per 8 KiB, twice mkfs's default, since apps hold many
		// small files (node_modules, vendor/); the inode tables take 3%.
		err = run("mkfs.ext4", "-q", "-F", "-m", "0", "-i", "8192", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", tmp)
	}
	if err == nil {
		err = os.Rename(tmp, image)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("make a disk image of %d MB: %w", size/1e6, err)
	}
	return nil
}

// allocate makes f, the image file, size bytes long where it was from
// bytes: allocated in full, where that leaves the reserve free, or sparse.
func (m *Manager) allocate(f *os.File, image string, from, size int64) error {
	if m.cfg.Sparse {
		return f.Truncate(size)
	}
	if err := roomFor(filepath.Dir(image), size-from); err != nil {
		return err
	}
	return unix.Fallocate(int(f.Fd()), 0, 0, size)
}

// roomFor refuses an allocation of size bytes in dir's file system that
// would leave less than the reserve free.
func roomFor(dir string, size int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	free := int64(st.Bavail) * st.Bsize
	reserve := min(int64(st.Blocks)*st.Bsize/20, maxReserve)
	if free-size < reserve {
		return fmt.Errorf("no room for %d MB: %d MB free, of which %d MB are kept for rosti's own data: %w",
			size/1e6, free/1e6, reserve/1e6, syscall.ENOSPC)
	}
	return nil
}

// Grow makes image size bytes and grows its file system to match, while
// mounted; a size at or below the image's does nothing.
func (m *Manager) Grow(image, dir string, size int64) error {
	unlock := m.locks.Lock(dir)
	defer unlock()
	if err := m.ensure(image, dir, size); err != nil {
		return err
	}
	size -= size % blockSize
	fi, err := os.Stat(image)
	if err != nil {
		return err
	}
	if size <= fi.Size() {
		return nil
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = m.allocate(f, image, fi.Size(), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("grow the disk image to %d MB: %w", size/1e6, err)
	}
	// Should the online resize fail (it needs CAP_SYS_RESOURCE, which
	// some container hosts withhold even from root), the file system
	// grows offline the next time it is mounted.
	if err := os.WriteFile(image+pendingSuffix, nil, 0o600); err != nil {
		return err
	}
	dev, err := output("findmnt", "-n", "-o", "SOURCE", "--mountpoint", dir)
	if err == nil {
		err = run("losetup", "--set-capacity", dev)
	}
	if err == nil {
		err = run("resize2fs", dev)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrGrowPending, err)
	}
	return os.Remove(image + pendingSuffix)
}

// ErrGrowPending is a Grow that allocated the image but could not grow the
// mounted file system: it grows when next mounted.
var ErrGrowPending = errors.New("the file system grows when it is next mounted")

// pendingSuffix marks an image whose file system is smaller than the file.
const pendingSuffix = ".grow"

// GrowPending tells whether image's file system waits to grow.
func GrowPending(image string) bool {
	_, err := os.Stat(image + pendingSuffix)
	return err == nil
}

// growOffline grows the file system of an unmounted image to its file's
// size, as a Grow that could not do it online left it.
func growOffline(image string) error {
	if !GrowPending(image) {
		return nil
	}
	// e2fsck exits 1 when it fixed something, which is fine here.
	if err := exec.Command("e2fsck", "-f", "-p", image).Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() > 1 {
			return fmt.Errorf("e2fsck %s before growing it: %v", image, err)
		}
	}
	if err := run("resize2fs", image); err != nil {
		return err
	}
	return os.Remove(image + pendingSuffix)
}

// A Shrink that could not be done, with nothing changed.
var (
	ErrInUse    = errors.New("the file system is in use")
	ErrTooSmall = errors.New("what the file system holds does not fit in the size asked for")
)

// Shrink makes image and its file system size bytes. ext4 shrinks only
// unmounted, so dir is unmounted meanwhile: nothing may use it (ErrInUse
// when something does, a process in the host's mount namespace or another
// namespace's mount); the caller makes sure its files fit.
func (m *Manager) Shrink(image, dir string, size int64) error {
	unlock := m.locks.Lock(dir)
	defer unlock()
	size -= size % blockSize
	fi, err := os.Stat(image)
	if err != nil {
		return err
	}
	if size >= fi.Size() {
		return nil
	}
	mounted, err := Mounted(dir)
	if err != nil {
		return err
	}
	if mounted {
		if err := unix.Unmount(dir, 0); errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("%w: %v", ErrInUse, err)
		} else if err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	// The loop device clears itself with its last mount (the kernel does
	// it a moment later): one still there then is a mount elsewhere (a
	// container's namespace), and the file system is live.
	if err := loopCleared(image); err != nil {
		return errors.Join(err, m.ensure(image, dir, size))
	}
	err = shrinkOffline(image, size)
	return errors.Join(err, m.ensure(image, dir, size))
}

// loopDetachWait is how long the kernel gets to clear a loop device once
// its last mount is gone.
const loopDetachWait = 3 * time.Second

// loopCleared waits until no loop device is backed by image; ErrInUse when
// one stays.
func loopCleared(image string) error {
	deadline := time.Now().Add(loopDetachWait)
	for {
		loops, err := output("losetup", "-j", image)
		if err != nil || loops == "" {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrInUse, loops)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func shrinkOffline(image string, size int64) error {
	if err := exec.Command("e2fsck", "-f", "-p", image).Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() > 1 {
			return fmt.Errorf("e2fsck %s before shrinking it: %v", image, err)
		}
	}
	if err := run("resize2fs", image, strconv.FormatInt(size/1024, 10)+"K"); err != nil {
		return fmt.Errorf("%w: %v", ErrTooSmall, err)
	}
	if err := os.Truncate(image, size); err != nil {
		return err
	}
	if err := os.Remove(image + pendingSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Remove unmounts dir and deletes it and image. A file system still in use
// (a process with a file open on it) is detached: it goes when that ends.
func (m *Manager) Remove(image, dir string) error {
	unlock := m.locks.Lock(dir)
	defer unlock()
	mounted, err := Mounted(dir)
	if err != nil {
		return err
	}
	if mounted {
		err := unix.Unmount(dir, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(dir, unix.MNT_DETACH)
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	// The directory first: a directory without its image is what a
	// volume made before disk images looks like.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, f := range []string{image, image + pendingSuffix} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Mounted tells whether a file system is mounted on dir: whether dir is on
// another device than the directory that holds it.
func Mounted(dir string) (bool, error) {
	var here, above unix.Stat_t
	if err := unix.Lstat(dir, &here); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if err := unix.Lstat(filepath.Dir(dir), &above); err != nil {
		return false, &os.PathError{Op: "lstat", Path: filepath.Dir(dir), Err: err}
	}
	return here.Dev != above.Dev, nil
}

// Usage is what a mounted file system holds, in bytes.
type Usage struct {
	Size int64 // what files may use: the file system less its own metadata
	Used int64
	Free int64 // what can still be written
	// FilesFree is how many more files (inodes) fit.
	FilesFree int64
}

// UsageOf is the usage of the file system mounted on dir: one statfs, no
// walk of its files.
func UsageOf(dir string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Usage{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return Usage{
		Size:      int64(st.Blocks) * st.Bsize,
		Used:      int64(st.Blocks-st.Bfree) * st.Bsize,
		Free:      int64(st.Bavail) * st.Bsize,
		FilesFree: int64(st.Ffree),
	}, nil
}

func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
