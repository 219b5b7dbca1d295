package platform

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"syscall"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// processTypePattern is what a process type may be named: each runs as the
// containers "<app>-<type>-<n>", whose names are also host names.
var processTypePattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// withProcfile is a tree source that brings inner's tree (or a copy of
// /srv/app as it is, when inner is nil) with its Procfile replaced by
// procs: how a Drycc build's procfile reaches the release.
func (p *Platform) withProcfile(a store.App, inner TreeSource, procs map[string]string) (TreeSource, error) {
	var v ValidationError
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(procs)) {
		cmd := strings.TrimSpace(procs[t])
		switch {
		case !processTypePattern.MatchString(t):
			v.Add("procfile", "%q is not a process type: 1-16 lowercase letters and digits, starting with a letter", t)
		case cmd == "" || strings.ContainsAny(cmd, "\r\n\x00"):
			v.Add("procfile", "the command of %s must be one non-empty line", t)
		default:
			fmt.Fprintf(&b, "%s: %s\n", t, cmd)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	// An app that never ran has no volume yet to stage the tree in.
	if _, err := p.ensureVolume(a); err != nil {
		return nil, fmt.Errorf("volume of %s: %w", a.Name, err)
	}
	return procfileTree{trees: p.treesOf(a), inner: inner, procfile: b.String()}, nil
}

type procfileTree struct {
	trees    volumeTrees
	inner    TreeSource
	procfile string
}

func (t procfileTree) Stage(ctx context.Context, dir string) error {
	rel, ok := strings.CutPrefix(dir, rtm.VolumePath+"/")
	if !ok {
		return fmt.Errorf("staging dir %q is outside the volume", dir)
	}
	if t.inner != nil {
		if err := t.inner.Stage(ctx, dir); err != nil {
			return err
		}
	} else if err := t.trees.copyTree(appTreeDir, rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("copy /srv/app: %w", err)
	}
	root, err := t.trees.open()
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := root.Lstat(rel); errors.Is(err, fs.ErrNotExist) { // an app never deployed to has no /srv/app
		if err := t.trees.mkdirOwned(root, rel, 0o755); err != nil {
			return err
		}
	}
	name := path.Join(rel, "Procfile")
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace the Procfile: %w", err)
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("write the Procfile: %w", err)
	}
	if _, err := f.WriteString(t.procfile); err != nil {
		f.Close()
		return fmt.Errorf("write the Procfile: %w", err)
	}
	if err := f.Chown(t.trees.uid, t.trees.gid); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (t procfileTree) Refresh(ctx context.Context, dir string) error {
	if t.inner != nil {
		return t.inner.Refresh(ctx, dir)
	}
	return nil
}
