package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosti-paas/rosti/sshd/sandbox"
)

const (
	// stagingDir, in the volume, holds the tree of a deploy in progress.
	// It belongs to rosti: every deploy starts by emptying it.
	stagingDir = ".rosti"
	// stagedIndex, in the bare repo, is the staging tree's git index. It
	// becomes the repo's index once the tree is /srv/app, so that the index
	// always says which files of /srv/app are tracked.
	stagedIndex = "rosti-staged.index"
	// cleanupTimeout bounds rolling the branch back after a failed deploy,
	// which goes on when the pusher has hung up.
	cleanupTimeout = 2 * time.Minute
)

// deployment is one pushed commit on its way to /srv/app; see the package
// doc for the steps.
type deployment struct {
	s        *Server
	access   AppAccess
	progress io.Writer
	branch   string
	previous string // the branch's commit before the push, "" if the push created it
	commit   string

	staged  string // the staging tree's name in stagingDir, once made
	swapped bool   // the staging tree and /srv/app traded places
}

// run deploys the commit. On an error, /srv/app is the tree it was before
// and nothing is left in the staging area; the branch is rollBack's.
func (d *deployment) run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			d.undo()
		}
	}()
	if err := d.stage(ctx); err != nil {
		return err
	}
	fmt.Fprintf(d.progress, "checked out %s (%.12s) beside /srv/app\n", d.branch, d.commit)
	dir := path.Join(sandbox.VolumePath, stagingDir, d.staged)
	if err := d.s.platform.Release(ctx, d.access.AppID, dir, d.progress); err != nil {
		return err
	}
	if err := d.carryAppFiles(ctx); err != nil {
		return err
	}
	if err := d.exchange(); err != nil {
		return fmt.Errorf("put the new tree at /srv/app: %w", err)
	}
	d.swapped = true
	fmt.Fprintf(d.progress, "/srv/app is now %s (%.12s)\n", d.branch, d.commit)
	if err := d.s.platform.Restart(ctx, d.access.AppID, d.progress); err != nil {
		return err
	}
	// The deploy is done: what is left is housekeeping, reported but not a
	// reason to undo it.
	if err := d.adoptIndex(); err != nil {
		d.warn("cannot record the deployed files in the repository", err)
	}
	if err := d.removeStaged(); err != nil {
		d.warn("cannot remove the previous tree", err)
	}
	return nil
}

// stage checks the commit out into a fresh staging tree, then copies the
// app's own files of /srv/app into it.
func (d *deployment) stage(ctx context.Context) error {
	volume, err := os.OpenRoot(d.access.VolumeDir)
	if err != nil {
		return fmt.Errorf("open the volume: %w", err)
	}
	defer volume.Close()
	live, err := volume.Lstat("app")
	if errors.Is(err, fs.ErrNotExist) {
		if err := d.mkdir(volume, "app", 0o755); err != nil {
			return err
		}
		live, err = volume.Lstat("app")
	}
	if err != nil {
		return fmt.Errorf("/srv/app: %w", err)
	}
	if !live.IsDir() {
		return errors.New("/srv/app is not a directory; remove it and push again")
	}
	// Whatever is there was left by a deploy that never finished (pushes
	// to one app are serialized).
	if err := volume.RemoveAll(stagingDir); err != nil {
		return fmt.Errorf("empty /srv/%s: %w", stagingDir, err)
	}
	if err := d.mkdir(volume, stagingDir, 0o700); err != nil {
		return err
	}
	staged := "deploy-" + d.commit[:min(12, len(d.commit))]
	if err := d.mkdir(volume, path.Join(stagingDir, staged), live.Mode().Perm()); err != nil {
		return err
	}
	d.staged = staged
	if err := d.removeIndex(); err != nil {
		return err
	}
	err = d.s.sandboxedGitEnv(ctx, d.access, []string{"GIT_INDEX_FILE=" + path.Join(sandbox.RepoPath, stagedIndex)}, d.progress,
		"--git-dir="+sandbox.RepoPath, "--work-tree="+d.stagedPath(), "read-tree", "--reset", "-u", d.commit)
	if err != nil {
		return fmt.Errorf("check out %s: %w", d.branch, err)
	}
	return d.carryAppFiles(ctx)
}

// mkdir makes a directory in the volume owned by the app. rosti runs as
// root, and a root-owned directory would be one the app cannot change.
func (d *deployment) mkdir(volume *os.Root, name string, mode fs.FileMode) error {
	if err := volume.Mkdir(name, mode); err != nil {
		return fmt.Errorf("create /srv/%s: %w", name, err)
	}
	if err := volume.Lchown(name, int(d.access.UID), int(d.access.GID)); err != nil {
		return fmt.Errorf("create /srv/%s: %w", name, err)
	}
	// Mkdir's mode went through the umask.
	if err := volume.Chmod(name, mode); err != nil {
		return fmt.Errorf("create /srv/%s: %w", name, err)
	}
	return nil
}

func (d *deployment) stagedPath() string {
	return path.Join(sandbox.VolumePath, stagingDir, d.staged)
}

// carryAppFiles copies what /srv/app holds beyond the tracked files of the
// previous deploy (its index in the repo) into the staging tree, in the
// sandbox as the app uid. Files that are missing there or older are copied,
// so a file the commit tracks (checked out just now) or the release step
// wrote wins over the app's older one.
func (d *deployment) carryAppFiles(ctx context.Context) error {
	var untracked bytes.Buffer
	err := d.s.sandboxedGit(ctx, d.access, &untracked, "--git-dir="+sandbox.RepoPath,
		"--work-tree="+sandbox.VolumePath+"/app", "ls-files", "-z", "--others", "--directory")
	if err != nil {
		return fmt.Errorf("list the app's own files in /srv/app: %w", err)
	}
	var stderr bytes.Buffer
	code, err := d.s.runSandboxed(ctx, d.access, sandboxRun{
		args: []string{"env", "-C", sandbox.VolumePath + "/app", "xargs", "-0", "-r",
			"cp", "-a", "--update", "--parents", "-t", d.stagedPath(), "--"},
		stdin:  &untracked,
		stdout: io.Discard,
		stderr: &stderr,
	})
	switch {
	case err != nil:
		return fmt.Errorf("copy the app's own files from /srv/app: %w", err)
	case code != 0:
		return fmt.Errorf("copy the app's own files from /srv/app: exit status %d: %s", code, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// exchange makes the staging tree /srv/app and the previous /srv/app the
// staging tree, in one rename(2). It runs as root, so both sides are named
// relative to directories opened without following symlinks: the app can
// have replaced .rosti with a link out of its volume, and a rename never
// follows its last component.
func (d *deployment) exchange() error {
	const dirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	volume, err := unix.Open(d.access.VolumeDir, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open the volume: %w", err)
	}
	defer unix.Close(volume)
	area, err := unix.Openat(volume, stagingDir, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open /srv/%s: %w", stagingDir, err)
	}
	defer unix.Close(area)
	if err := unix.Renameat2(volume, "app", area, d.staged, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchange /srv/app and %s: %w", d.stagedPath(), err)
	}
	return nil
}

// adoptIndex makes the staging tree's index the repo's own, now that the
// tree is /srv/app.
func (d *deployment) adoptIndex() error {
	repo, err := os.OpenRoot(d.access.RepoDir)
	if err != nil {
		return err
	}
	defer repo.Close()
	return repo.Rename(stagedIndex, "index")
}

func (d *deployment) removeIndex() error {
	repo, err := os.OpenRoot(d.access.RepoDir)
	if err != nil {
		return fmt.Errorf("open the repository: %w", err)
	}
	defer repo.Close()
	if err := repo.Remove(stagedIndex); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the staged index: %w", err)
	}
	return nil
}

// removeStaged removes the staging area with what it holds: the new tree
// after a failure, the previous one after a deploy.
func (d *deployment) removeStaged() error {
	volume, err := os.OpenRoot(d.access.VolumeDir)
	if err != nil {
		return fmt.Errorf("open the volume: %w", err)
	}
	defer volume.Close()
	return volume.RemoveAll(stagingDir)
}

// undo puts the previous tree back at /srv/app and drops the staging tree
// and its index; what cannot be undone is reported to the pusher.
func (d *deployment) undo() {
	if d.swapped {
		if err := d.exchange(); err != nil {
			d.warn("cannot put the previous tree back at /srv/app", err)
			return // the staging area holds the previous tree: keep it, swapped stays set
		}
		d.swapped = false
	}
	if err := d.removeStaged(); err != nil {
		d.warn("cannot remove the staged tree", err)
	}
	if err := d.removeIndex(); err != nil {
		d.warn("cannot remove the staged index", err)
	}
}

// rollBack sets the pushed branch back to where it was before the push, so
// that pushing the same commit again deploys it, and says so.
func (d *deployment) rollBack(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	ref := "refs/heads/" + d.branch
	args := []string{"--git-dir=" + sandbox.RepoPath, "update-ref", "-m", "rosti: deploy failed"}
	if d.previous == "" {
		args = append(args, "-d", ref, d.commit)
	} else {
		args = append(args, ref, d.previous, d.commit)
	}
	if err := d.s.sandboxedGit(ctx, d.access, nil, args...); err != nil {
		d.s.log.Error("git push: cannot roll the branch back", "app", d.access.AppName, "branch", d.branch, "err", err)
		return fmt.Sprintf("The branch %s stays at %.12s (%v): push a new commit to deploy again.", d.branch, d.commit, err)
	}
	if d.previous == "" {
		return fmt.Sprintf("The branch %s was removed again: push again to retry.", d.branch)
	}
	return fmt.Sprintf("The branch %s is back at %.12s: push again to retry.", d.branch, d.previous)
}

func (d *deployment) warn(what string, err error) {
	d.s.log.Warn("git push: "+what, "app", d.access.AppName, "err", err)
	fmt.Fprintf(d.progress, "warning: %s: %v\n", what, err)
}
