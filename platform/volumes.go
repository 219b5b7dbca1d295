package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rosti-paas/rosti/internal/diskimage"
	"github.com/rosti-paas/rosti/store"
)

// Disks give each app's volume a file system of its own, of its plan's
// size, so that its writes stop there (internal/diskimage: a preallocated
// ext4 image; its doc says why images and how rosti's own share of the
// disk is kept). Every call is idempotent.
type Disks interface {
	// Ensure mounts image on dir, making image of size bytes first when
	// there is none.
	Ensure(image, dir string, size int64) error
	// Grow grows image and its file system to size bytes; an error that
	// is diskimage.ErrGrowPending means it grows at its next mount.
	Grow(image, dir string, size int64) error
	// Shrink shrinks image and its file system to size bytes, unmounted
	// meanwhile: diskimage.ErrInUse when something uses it,
	// diskimage.ErrTooSmall when its files do not fit.
	Shrink(image, dir string, size int64) error
	// Remove unmounts dir and deletes it and image.
	Remove(image, dir string) error
}

func (p *Platform) volumeDir(a store.App) string {
	return filepath.Join(p.cfg.DataDir, "volumes", strconv.FormatInt(a.ID, 10))
}

// diskImage is the file holding the app's volume, outside the volumes
// directory so that no app's mount can reach it.
func (p *Platform) diskImage(a store.App) string {
	return filepath.Join(p.cfg.DataDir, "disks", strconv.FormatInt(a.ID, 10)+".ext4")
}

// plainVolume tells whether the app's volume is a plain directory of the
// data dir without a limit: every volume when rosti runs without Disks,
// and the volumes of apps made before disk quotas, which are kept as they
// are (their files stay where they are, the plan's disk is shown but not
// enforced, and the status says so) rather than copied into an image
// while the app runs.
func (p *Platform) plainVolume(a store.App) bool {
	if p.disks == nil {
		return true
	}
	if _, err := os.Stat(p.diskImage(a)); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	_, err := os.Lstat(p.volumeDir(a))
	return err == nil
}

// ensureVolume creates the app's volume, and its app/ directory, owned by
// its uid, and mounts it on its disk image. The directory above the
// volumes is root's, so apps cannot see each other's volumes. Inside the
// volume the app may put symlinks where we look, so nothing there is
// followed: Lstat and Lchown only.
func (p *Platform) ensureVolume(a store.App) (string, error) {
	dir := p.volumeDir(a)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", err
	}
	if !p.plainVolume(a) {
		if err := p.mountVolume(a); err != nil {
			return "", err
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "app")} {
		if err := os.Mkdir(d, 0o750); err != nil && !os.IsExist(err) {
			return "", p.noSpace(err, "the app's volume could not be made")
		}
		fi, err := os.Lstat(d)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			continue // the app's own doing; its own business
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != a.UID {
			if err := os.Lchown(d, int(a.UID), int(a.UID)); err != nil {
				return "", err
			}
			// A fresh file system's root is 0755.
			if err := os.Chmod(d, 0o750); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// mountVolume mounts the app's disk image, made of its plan's size if new.
func (p *Platform) mountVolume(a store.App) error {
	plan, err := p.store.Plan(a.PlanID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.diskImage(a)), 0o700); err != nil {
		return p.noSpace(err, "the app's disk could not be made")
	}
	size := plan.DiskMB * 1e6
	if err := p.disks.Ensure(p.diskImage(a), p.volumeDir(a), size); err != nil {
		return p.noSpace(err, fmt.Sprintf("no room for the plan's %d MB of disk", plan.DiskMB))
	}
	// An operator may give a plan more disk: its apps' disks follow. The
	// app runs on with the disk it has should that fail.
	if fi, err := os.Stat(p.diskImage(a)); err == nil && fi.Size() < size-diskRounding {
		err := p.disks.Grow(p.diskImage(a), p.volumeDir(a), size)
		if err != nil && !errors.Is(err, diskimage.ErrGrowPending) {
			p.log.Warn("growing an app's disk to its plan's", "app", a.Name, "err", err)
		}
	}
	return nil
}

// diskRounding is how much smaller than asked a disk may be (it is a whole
// number of blocks).
const diskRounding = 64 << 10

// resizeVolume makes the app's volume fit a plan of diskMB: it grows at
// once, and shrinks only while the app is stopped, since an ext4 file
// system shrinks only unmounted.
func (p *Platform) resizeVolume(a store.App, diskMB int64) error {
	if p.plainVolume(a) {
		return nil
	}
	if err := p.mountVolume(a); err != nil {
		return err
	}
	fi, err := os.Stat(p.diskImage(a))
	if err != nil {
		return err
	}
	if size := diskMB * 1e6; size < fi.Size() {
		use, err := diskimage.UsageOf(p.volumeDir(a))
		if err != nil {
			return err
		}
		if use.Used > size {
			return FieldError("plan", "the app uses %d MB of disk, more than the plan's %d MB; delete files first", use.Used/1e6, diskMB)
		}
		if a.Enabled() {
			return FieldError("plan", "the app's disk shrinks from %d MB to the plan's %d MB only while the app is stopped: stop it, change the plan, then start it", fi.Size()/1e6, diskMB)
		}
		err = p.disks.Shrink(p.diskImage(a), p.volumeDir(a), size)
		switch {
		case errors.Is(err, diskimage.ErrInUse):
			return fmt.Errorf("the app's disk is in use (an SSH session or a one-off command still runs); try again once it ends: %w", store.ErrConflict)
		case errors.Is(err, diskimage.ErrTooSmall):
			return FieldError("plan", "the app's files and its file system's own data do not fit in the plan's %d MB of disk; delete files first", diskMB)
		}
		return err
	}
	err = p.disks.Grow(p.diskImage(a), p.volumeDir(a), diskMB*1e6)
	if errors.Is(err, diskimage.ErrGrowPending) {
		p.log.Warn("an app's disk grows at its next mount", "app", a.Name, "err", err)
		return nil
	}
	return p.noSpace(err, fmt.Sprintf("no room to grow the app's disk to the plan's %d MB", diskMB))
}

// removeVolume removes the volume of a deleted app, and its disk image.
func (p *Platform) removeVolume(a store.App) error {
	if p.disks == nil {
		return os.RemoveAll(p.volumeDir(a))
	}
	return p.disks.Remove(p.diskImage(a), p.volumeDir(a))
}

// mountVolumes mounts the disk of every app, as after a reboot, so that
// what reaches into volumes (SSH, deploys) finds them in place.
func (p *Platform) mountVolumes() {
	if p.disks == nil {
		return
	}
	apps, err := p.store.Apps()
	if err != nil {
		p.log.Error("listing apps to mount their disks", "err", err)
		return
	}
	for _, a := range apps {
		if _, err := p.ensureVolume(a); err != nil {
			p.log.Error("mounting an app's disk", "app", a.Name, "err", err)
		}
	}
}

// volumeUsage is the app's disk usage and whether it is full: one statfs
// of its disk, or a walk of a plain volume.
func (p *Platform) volumeUsage(a store.App, limitMB float64) (usedMB float64, full bool, note string, err error) {
	if p.plainVolume(a) {
		used, err := p.probes.volumeSizeMB(p.volumeDir(a))
		if p.disks != nil {
			note = "the app's volume was made before disk quotas: its usage is counted but not limited"
		}
		return used, used >= limitMB, note, err
	}
	if mounted, err := diskimage.Mounted(p.volumeDir(a)); err != nil || !mounted {
		return 0, false, "", errors.Join(err, errors.New("the app's disk is not mounted yet"))
	}
	use, err := diskimage.UsageOf(p.volumeDir(a))
	if err != nil {
		return 0, false, "", err
	}
	if diskimage.GrowPending(p.diskImage(a)) {
		note = fmt.Sprintf("the app's disk grows to the plan's %.0f MB when rosti next mounts it (after a restart of the server)", limitMB)
	}
	// Full: what is left would not hold a small file, or no file at all.
	return float64(use.Used) / 1e6, use.Free < 1e6 || use.FilesFree == 0, note, nil
}

// noSpace makes a full disk the vocabulary's ErrNoSpace, saying what could
// not be done; the details (paths, the host's free space) go to the log,
// not to the client.
func (p *Platform) noSpace(err error, what string) error {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && !errors.Is(err, store.ErrNoSpace) {
		p.log.Warn("the disk is full", "err", err)
		return fmt.Errorf("%s: %w", what, store.ErrNoSpace)
	}
	return err
}
