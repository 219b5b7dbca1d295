package sshd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gliderlabs/ssh"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/sshd/sandbox"
	"github.com/rosti-paas/rosti/store"
)

// gitReceive serves `git push`: receive-pack into the app's bare repo, then
// the deployment of the pushed branch, all reported on the pusher's stderr.
func (s *Server) gitReceive(sess ssh.Session, access platform.AppAccess) int {
	ctx := sess.Context()
	progress := newPrefixWriter(sess.Stderr(), "remote: ")
	fail := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		s.log.Error("git push failed", "app", access.AppName, "err", msg)
		fmt.Fprintln(progress, msg)
		return 1
	}
	if access.RepoDir == "" {
		return fail("this app has no git repository")
	}
	// Pushes to one app take turns, from receive-pack on, so that each
	// deploys the branch as its own push left it.
	unlock := s.pushes.Lock(access.AppID)
	defer unlock()

	if err := s.ensureRepo(ctx, access); err != nil {
		return fail("cannot create the repository: %v", err)
	}
	before, err := s.branches(ctx, access)
	if err != nil {
		return fail("cannot read the repository: %v", err)
	}
	code, err := s.runSandboxed(ctx, access, sandboxRun{
		args:     []string{"git", "-c", "core.hooksPath=/dev/null", "-c", "receive.maxInputSize=" + strconv.FormatInt(s.repoRoom(ctx, access), 10), "receive-pack", sandbox.RepoPath},
		withRepo: true,
		stdin:    sess,
		stdout:   sess,
		stderr:   sess.Stderr(),
	})
	if err != nil {
		return fail("receive-pack: %v", err)
	}
	if code != 0 {
		return code
	}
	after, err := s.branches(ctx, access)
	if err != nil {
		return fail("cannot read the repository: %v", err)
	}
	branch, ok := pushedBranch(before, after)
	if !ok {
		return 0
	}
	ref := "refs/heads/" + branch
	tree := &gitTree{
		s: s, access: access, progress: progress,
		branch: branch, previous: before[ref], commit: after[ref],
	}
	summary := fmt.Sprintf("git push of %s (%.12s)", branch, tree.commit)
	rel, err := s.platform.Deploy(ctx, access, tree, tree.commit, summary, progress)
	if err != nil {
		return fail("deploy failed: %s; /srv/app and the running version are unchanged. %s", store.Message(err), tree.rollBack(ctx))
	}
	// The deploy is done: what is left is housekeeping, reported but not a
	// reason to undo it.
	if err := tree.adoptIndex(); err != nil {
		s.log.Warn("git push: cannot record the deployed files in the repository", "app", access.AppName, "err", err)
		fmt.Fprintf(progress, "warning: cannot record the deployed files in the repository: %v\n", err)
	}
	fmt.Fprintf(progress, "deployed as v%d\n", rel.Version)
	return 0
}

// repoRoom is how large a pack a push may send: what the plan's disk
// leaves the repository, which lives outside the app's disk on the host's.
// A repository at its limit is first rid of objects no branch reaches (a
// deleted branch's); one still at its limit takes pushes without a pack
// (deleting branches) only.
func (s *Server) repoRoom(ctx context.Context, access platform.AppAccess) int64 {
	if access.DiskLimit <= 0 {
		return 0 // git's "no limit"
	}
	size := dirBytes(access.RepoDir)
	if size >= access.DiskLimit {
		if err := s.sandboxedGit(ctx, access, nil, "--git-dir="+sandbox.RepoPath, "gc", "--quiet", "--prune=now"); err != nil {
			s.log.Warn("git push: gc of a repository at its limit", "app", access.AppName, "err", err)
		}
		size = dirBytes(access.RepoDir)
	}
	return max(access.DiskLimit-size, 1)
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// ensureRepo creates the app's bare repository on first use, owned by the
// app's uid because only the sandbox, as that uid, ever runs git on it.
func (s *Server) ensureRepo(ctx context.Context, access platform.AppAccess) error {
	if _, err := os.Lstat(filepath.Join(access.RepoDir, "HEAD")); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(access.RepoDir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(access.RepoDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Lchown(access.RepoDir, int(access.UID), int(access.GID)); err != nil {
		return err
	}
	return s.sandboxedGit(ctx, access, nil, "init", "--quiet", "--bare", "--initial-branch=main", sandbox.RepoPath)
}

// branches lists the repo's branches as refname -> object id.
func (s *Server) branches(ctx context.Context, access platform.AppAccess) (map[string]string, error) {
	var out bytes.Buffer
	err := s.sandboxedGit(ctx, access, &out, "--git-dir="+sandbox.RepoPath,
		"for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for line := range strings.Lines(out.String()) {
		if id, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			refs[name] = id
		}
	}
	return refs, nil
}

// pushedBranch picks the branch to deploy among those the push created or
// moved: the only one, else main, else master, else the first by name.
func pushedBranch(before, after map[string]string) (string, bool) {
	var changed []string
	for ref, id := range after {
		if before[ref] != id {
			changed = append(changed, strings.TrimPrefix(ref, "refs/heads/"))
		}
	}
	if len(changed) == 0 {
		return "", false
	}
	slices.Sort(changed)
	for _, preferred := range []string{"main", "master"} {
		if slices.Contains(changed, preferred) {
			return preferred, true
		}
	}
	return changed[0], true
}

// sandboxedGit runs git on the app's repo in the sandbox; its output goes to
// out (discarded when nil) and its stderr is part of the returned error.
func (s *Server) sandboxedGit(ctx context.Context, access platform.AppAccess, out io.Writer, args ...string) error {
	return s.sandboxedGitEnv(ctx, access, nil, out, args...)
}

// sandboxedGitEnv is sandboxedGit with KEY=VALUE env for git.
func (s *Server) sandboxedGitEnv(ctx context.Context, access platform.AppAccess, env []string, out io.Writer, args ...string) error {
	if out == nil {
		out = io.Discard
	}
	var stderr bytes.Buffer
	code, err := s.runSandboxed(ctx, access, sandboxRun{
		args:     append([]string{"git", "-c", "core.hooksPath=/dev/null"}, args...),
		env:      env,
		withRepo: true,
		stdout:   out,
		stderr:   &stderr,
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("git %s: exit status %d: %s", args[len(args)-1], code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// prefixWriter starts every line written through it with a prefix, so that
// deploy output reads like git's own "remote:" lines.
type prefixWriter struct {
	mu          sync.Mutex
	w           *bufio.Writer
	prefix      string
	atLineStart bool
}

func newPrefixWriter(w io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{w: bufio.NewWriter(w), prefix: prefix, atLineStart: true}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for rest := b; len(rest) > 0; {
		if p.atLineStart {
			p.w.WriteString(p.prefix)
		}
		line, tail, found := bytes.Cut(rest, []byte("\n"))
		p.w.Write(line)
		if found {
			p.w.WriteByte('\n')
		}
		p.atLineStart = found
		rest = tail
	}
	return len(b), p.w.Flush()
}
