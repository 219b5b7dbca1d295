package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/sshd/sandbox"
)

const (
	// stagedIndex, in the bare repo, is the staged tree's git index. It
	// becomes the repo's index once the tree is /srv/app, so that the index
	// always says which files of /srv/app are tracked.
	stagedIndex = "rosti-staged.index"
	// cleanupTimeout bounds rolling the branch back after a failed deploy,
	// which goes on when the pusher has hung up.
	cleanupTimeout = 2 * time.Minute
)

// gitTree is a pushed commit as the tree platform deploys (a
// platform.TreeSource); see the package doc for the steps.
type gitTree struct {
	s        *Server
	access   platform.AppAccess
	progress io.Writer
	branch   string
	previous string // the branch's commit before the push, "" if the push created it
	commit   string
}

// Stage checks the commit out into dir, then copies the app's own files of
// /srv/app into it.
func (g *gitTree) Stage(ctx context.Context, dir string) error {
	if err := g.removeIndex(); err != nil {
		return err
	}
	err := g.s.sandboxedGitEnv(ctx, g.access, []string{"GIT_INDEX_FILE=" + sandbox.RepoPath + "/" + stagedIndex}, g.progress,
		"--git-dir="+sandbox.RepoPath, "--work-tree="+dir, "read-tree", "--reset", "-u", g.commit)
	if err != nil {
		return fmt.Errorf("check out %s: %w", g.branch, err)
	}
	fmt.Fprintf(g.progress, "checked out %s (%.12s) beside /srv/app\n", g.branch, g.commit)
	return g.carryAppFiles(ctx, dir)
}

// Refresh copies again what the running version made or changed in
// /srv/app during the release step.
func (g *gitTree) Refresh(ctx context.Context, dir string) error { return g.carryAppFiles(ctx, dir) }

// carryAppFiles copies what /srv/app holds beyond the tracked files of the
// previous deploy (its index in the repo) into dir, in the sandbox as the
// app uid. Files that are missing there or older are copied, so a file the
// commit tracks (checked out just now) or the release step wrote wins over
// the app's older one.
func (g *gitTree) carryAppFiles(ctx context.Context, dir string) error {
	var untracked bytes.Buffer
	err := g.s.sandboxedGit(ctx, g.access, &untracked, "--git-dir="+sandbox.RepoPath,
		"--work-tree="+sandbox.VolumePath+"/app", "ls-files", "-z", "--others", "--directory")
	if err != nil {
		return fmt.Errorf("list the app's own files in /srv/app: %w", err)
	}
	var stderr bytes.Buffer
	code, err := g.s.runSandboxed(ctx, g.access, sandboxRun{
		args: []string{"env", "-C", sandbox.VolumePath + "/app", "xargs", "-0", "-r",
			"cp", "-a", "--update", "--parents", "-t", dir, "--"},
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

// adoptIndex makes the staged tree's index the repo's own, now that the
// tree is /srv/app.
func (g *gitTree) adoptIndex() error {
	repo, err := os.OpenRoot(g.access.RepoDir)
	if err != nil {
		return err
	}
	defer repo.Close()
	return repo.Rename(stagedIndex, "index")
}

func (g *gitTree) removeIndex() error {
	repo, err := os.OpenRoot(g.access.RepoDir)
	if err != nil {
		return fmt.Errorf("open the repository: %w", err)
	}
	defer repo.Close()
	if err := repo.Remove(stagedIndex); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the staged index: %w", err)
	}
	return nil
}

// rollBack sets the pushed branch back to where it was before the push, so
// that pushing the same commit again deploys it, and says so.
func (g *gitTree) rollBack(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := g.removeIndex(); err != nil {
		g.s.log.Warn("git push: cannot remove the staged index", "app", g.access.AppName, "err", err)
	}
	ref := "refs/heads/" + g.branch
	args := []string{"--git-dir=" + sandbox.RepoPath, "update-ref", "-m", "rosti: deploy failed"}
	if g.previous == "" {
		args = append(args, "-d", ref, g.commit)
	} else {
		args = append(args, ref, g.previous, g.commit)
	}
	if err := g.s.sandboxedGit(ctx, g.access, nil, args...); err != nil {
		g.s.log.Error("git push: cannot roll the branch back", "app", g.access.AppName, "branch", g.branch, "err", err)
		return fmt.Sprintf("The branch %s stays at %.12s (%v): push a new commit to deploy again.", g.branch, g.commit, err)
	}
	if g.previous == "" {
		return fmt.Sprintf("The branch %s was removed again: push again to retry.", g.branch)
	}
	return fmt.Sprintf("The branch %s is back at %.12s: push again to retry.", g.branch, g.previous)
}
