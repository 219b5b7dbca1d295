package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Release sources: what made a release.
const (
	SourceCreate   = "create"
	SourceGit      = "git"
	SourceUpload   = "upload"
	SourceImage    = "image"
	SourceConfig   = "config"
	SourceRollback = "rollback"
)

// TreeSource brings a new tree of files for /srv/app: a face's part of a
// deploy (the SSH gateway checks a pushed commit out; an archive upload
// would unpack itself). Platform does the rest: the release step, the swap,
// the restart and the rollback when any of it fails.
type TreeSource interface {
	// Stage writes the new tree into dir, an empty directory of the app's
	// volume owned by the app (dir is its path in the app's containers).
	Stage(ctx context.Context, dir string) error
	// Refresh runs after the release step, just before the tree goes live,
	// to bring in what the running version changed in /srv/app meanwhile.
	Refresh(ctx context.Context, dir string) error
}

// DeployRequest is a deploy from any face: a new tree of files, a new
// image, or both. Revision and Summary describe it in the release.
type DeployRequest struct {
	Tree     TreeSource // nil: /srv/app as it is
	Image    string     // "": the image the app runs; else a runtime's name or image
	Revision string
	Summary  string
	Progress io.Writer // the deploy's steps, for the user; nil discards them
	// Procfile, when not nil, replaces the Procfile of the tree (the one
	// Tree brings, else /srv/app as it is): a Drycc build's procfile.
	Procfile map[string]string
}

// Deploy makes a release of what req brings and moves the app's containers
// to it without downtime; see deploy. A git push, a Drycc build, a tsuru
// archive or an upload from the web UI all come through here.
func (p *Platform) Deploy(ctx context.Context, actor store.User, ref AppRef, req DeployRequest) (store.Release, error) {
	a, unlock, err := p.lockApp(actor, ref)
	if err != nil {
		return store.Release{}, err
	}
	defer unlock()
	ch := change{tree: req.Tree, revision: req.Revision, summary: req.Summary, progress: req.Progress, source: SourceImage}
	if req.Tree != nil {
		ch.source = SourceGit
		if req.Revision == "" {
			ch.source = SourceUpload
		}
	}
	if req.Image != "" {
		rt, ok, err := p.runtimeByImage(req.Image)
		if err != nil {
			return store.Release{}, err
		}
		if !ok {
			return store.Release{}, FieldError("image", "%q is not a known runtime; pick one from the runtimes list", req.Image)
		}
		ch.image = rt.Image
	}
	if req.Procfile != nil {
		src, err := p.withProcfile(a, req.Tree, req.Procfile)
		if err != nil {
			return store.Release{}, err
		}
		ch.tree = src
	}
	if ch.tree == nil && ch.image == "" {
		return store.Release{}, FieldError("image", "a deploy needs files or an image")
	}
	if ch.summary == "" {
		ch.summary = actor.Username + " deployed"
	}
	return p.deploy(ctx, actor.Username, a.ID, ch)
}

// change is one deploy: what is new in the release it makes. Fields left
// zero keep what the current release has.
type change struct {
	source       string
	tree         TreeSource
	restore      *store.Release // a rollback: its image, config and files
	liveTree     bool           // /srv/app as it is now (files uploaded, then a restart)
	image        string
	config       map[string]string
	setConfig    bool
	revision     string
	summary      string
	progress     io.Writer
	rollbackFrom int64
}

// lockApp resolves ref for actor and locks the app against other deploys,
// restarts and scaling, then reads it again: what the caller sees is what
// no other change of the app can move until unlock.
func (p *Platform) lockApp(actor store.User, ref AppRef) (a store.App, unlock func(), err error) {
	if a, err = p.authorizeApp(actor, ref); err != nil {
		return store.App{}, nil, err
	}
	unlock = p.deploys.Lock(a.ID)
	if a, err = p.store.App(a.ID); err != nil {
		unlock()
		return store.App{}, nil, err
	}
	return a, unlock, nil
}

// currentRelease is the release an app runs; the zero Release for an app
// that has none yet (made before releases existed).
func (p *Platform) currentRelease(a store.App) (store.Release, error) {
	if a.Release == 0 {
		return store.Release{AppID: a.ID, Image: a.Image, Config: a.Config}, nil
	}
	return p.store.Release(a.ID, a.Release)
}

// deploy makes a release of the app and moves its containers to it without
// downtime. On any failure the app keeps running what it ran, /srv/app is
// the tree it was, and the release is recorded as failed with the reason.
// The caller holds the app's deploy lock.
func (p *Platform) deploy(ctx context.Context, author string, appID int64, ch change) (store.Release, error) {
	progress := ch.progress
	if progress == nil {
		progress = io.Discard
	}
	a, err := p.store.App(appID)
	if err != nil {
		return store.Release{}, err
	}
	prev, err := p.currentRelease(a)
	if err != nil {
		return store.Release{}, err
	}
	rel := store.Release{
		AppID: a.ID, Image: a.Image, Config: maps.Clone(a.Config), ProcessTypes: prev.ProcessTypes,
		Source: ch.source, Revision: ch.revision, Summary: ch.summary, Author: author,
		Created: p.now().UTC(), Status: store.ReleasePending, Tree: prev.Tree, TreeDigest: prev.TreeDigest,
		RolledBackTo: ch.rollbackFrom,
	}
	if ch.image != "" {
		rel.Image = ch.image
	}
	if ch.setConfig {
		rel.Config = ch.config
	}
	if ch.restore != nil {
		rel.Image, rel.Config, rel.ProcessTypes = ch.restore.Image, maps.Clone(ch.restore.Config), ch.restore.ProcessTypes
	}
	if rel, err = p.store.CreateRelease(rel); err != nil {
		return store.Release{}, err
	}
	d := &deployment{p: p, app: a, rel: rel, trees: p.treesOf(a), progress: progress}
	if err := d.run(ctx, ch, prev); err != nil {
		d.undo()
		failed, uerr := p.store.UpdateRelease(a.ID, rel.Version, func(r *store.Release) {
			r.Status, r.Message = store.ReleaseFailed, err.Error()
		})
		if uerr != nil {
			p.log.Error("record a failed release", "app", a.Name, "release", rel.Version, "err", uerr)
		}
		p.log.Warn("release failed", "app", a.Name, "release", rel.Version, "source", ch.source, "err", err)
		return failed, err
	}
	done, err := p.store.UpdateRelease(a.ID, rel.Version, func(r *store.Release) {
		r.Status, r.Tree, r.TreeDigest, r.ProcessTypes = store.ReleaseSucceeded, d.rel.Tree, d.rel.TreeDigest, d.rel.ProcessTypes
	})
	if err != nil {
		return store.Release{}, err
	}
	d.cleanUp()
	p.log.Info("released", "app", a.Name, "release", done.Version, "source", done.Source, "user", author)
	return done, nil
}

// deployment is one deploy on its way; see Platform.deploy.
type deployment struct {
	p        *Platform
	app      store.App // as it was before
	rel      store.Release
	trees    volumeTrees
	progress io.Writer
	staged   string // the new tree's path in the volume, once made
	swapped  bool   // the staged tree is /srv/app, the previous one is staged
	switched bool   // the app's description names the new release
}

func (d *deployment) run(ctx context.Context, ch change, prev store.Release) error {
	tree := "v" + strconv.FormatInt(d.rel.Version, 10)
	switch {
	case ch.tree != nil:
		if err := d.stageFrom(ctx, ch.tree); err != nil {
			return err
		}
		if err := d.keep(d.staged, tree); err != nil {
			return err
		}
		if err := d.swap(); err != nil {
			return err
		}
	case ch.restore != nil:
		if err := d.restore(ctx, *ch.restore); err != nil {
			return err
		}
	case ch.liveTree:
		digest, err := d.trees.digest(appTreeDir)
		if err != nil {
			return fmt.Errorf("read /srv/app: %w", err)
		}
		if digest != prev.TreeDigest {
			if err := d.keep(appTreeDir, tree); err != nil {
				return err
			}
		}
		if d.rel.ProcessTypes, err = d.p.procfileTypes(d.app, appTreeDir); err != nil {
			return err
		}
	}
	return d.switchTo(ctx)
}

// stageFrom has the source write the new tree, runs the release step in
// it, and lets the source bring in the latest of the app's own files.
func (d *deployment) stageFrom(ctx context.Context, src TreeSource) error {
	staged, err := d.trees.newStaging(d.rel.Version)
	if err != nil {
		return err
	}
	d.staged = staged
	dir := path.Join(rtm.VolumePath, staged)
	if err := src.Stage(ctx, dir); err != nil {
		return err
	}
	if d.rel.ProcessTypes, err = d.p.procfileTypes(d.app, staged); err != nil {
		return err
	}
	if err := d.p.runReleaseStep(ctx, d.app, d.rel.Config, staged, d.progress); err != nil {
		return err
	}
	return src.Refresh(ctx, dir)
}

// keep copies a tree to the kept tree name, for later rollbacks, and
// records it in the release.
func (d *deployment) keep(from, name string) error {
	digest, err := d.trees.digest(from)
	if err != nil {
		return fmt.Errorf("read the new tree: %w", err)
	}
	kept := path.Join(treesDir, name)
	if err := d.trees.copyTree(from, kept); err != nil {
		return fmt.Errorf("keep a copy of the tree for rollbacks: %w", err)
	}
	d.rel.Tree, d.rel.TreeDigest = kept, digest
	return nil
}

// restore puts a kept tree back at /srv/app, unless /srv/app already holds
// the same files.
func (d *deployment) restore(_ context.Context, target store.Release) error {
	live, err := d.trees.digest(appTreeDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // no volume yet: an app that never ran has no files
		return fmt.Errorf("read /srv/app: %w", err)
	}
	d.rel.Tree, d.rel.TreeDigest = target.Tree, target.TreeDigest
	if live == target.TreeDigest {
		fmt.Fprintf(d.progress, "/srv/app already holds the files of v%d\n", target.Version)
		return nil
	}
	if d.staged, err = d.trees.newStaging(d.rel.Version); err != nil {
		return err
	}
	if target.TreeDigest != "" {
		if target.Tree == "" || !d.trees.has(target.Tree) {
			return fmt.Errorf("the files of v%d are no longer kept (only the last %d trees are); deploy them again: %w", target.Version, keptTrees, store.ErrInvalid)
		}
		if err := d.trees.copyTree(target.Tree, d.staged); err != nil {
			return fmt.Errorf("restore the files of v%d: %w", target.Version, err)
		}
	}
	fmt.Fprintf(d.progress, "restored the files of v%d\n", target.Version)
	return d.swap()
}

func (d *deployment) swap() error {
	if err := d.trees.exchange(d.staged); err != nil {
		return fmt.Errorf("put the new tree at /srv/app: %w", err)
	}
	d.swapped = true
	fmt.Fprintf(d.progress, "/srv/app is now v%d\n", d.rel.Version)
	return nil
}

// switchTo points the app at the new release and waits until its
// containers run it (or, for a stopped app, records it for the next start).
func (d *deployment) switchTo(ctx context.Context) error {
	p := d.p
	_, err := p.store.UpdateApp(d.app.ID, func(a *store.App) error {
		a.Image, a.Config, a.Release = d.rel.Image, d.rel.Config, d.rel.Version
		a.Generation++
		return nil
	})
	if err != nil {
		return err
	}
	d.switched = true
	if !d.app.Enabled() {
		fmt.Fprintln(d.progress, "the app is stopped; it runs this release once started")
		return nil
	}
	fmt.Fprintln(d.progress, "restarting web...")
	return p.applied(ctx, d.app.ID)
}

// undo puts back what a failed deploy changed; what cannot be undone is
// logged and reported.
func (d *deployment) undo() {
	p := d.p
	if d.switched {
		_, err := p.store.UpdateApp(d.app.ID, func(a *store.App) error {
			a.Image, a.Config, a.Release, a.Generation = d.app.Image, d.app.Config, d.app.Release, d.app.Generation
			return nil
		})
		if err != nil {
			d.warn("cannot point the app back at its previous release", err)
		} else {
			p.changed(d.app.ID)
		}
	}
	if d.swapped {
		if err := d.trees.exchange(d.staged); err != nil {
			d.warn("cannot put the previous tree back at /srv/app", err)
			return // the staging area holds the previous tree: keep it
		}
		d.swapped = false
	}
	if d.staged != "" {
		if err := d.trees.remove(d.staged); err != nil {
			d.warn("cannot remove the staged tree", err)
		}
	}
	if d.rel.Tree != "" && d.rel.Tree == path.Join(treesDir, "v"+strconv.FormatInt(d.rel.Version, 10)) {
		if err := d.trees.remove(d.rel.Tree); err != nil {
			d.warn("cannot remove the kept copy of the tree", err)
		}
	}
}

// cleanUp removes the previous tree (the running processes used it until
// they were replaced) and the kept trees no recent release needs.
func (d *deployment) cleanUp() {
	if d.staged != "" {
		if err := d.trees.remove(d.staged); err != nil {
			d.warn("cannot remove the previous tree", err)
		}
	}
	releases, err := d.p.store.Releases(d.app.ID)
	if err != nil {
		d.warn("cannot list the releases", err)
		return
	}
	var keep []string
	for _, r := range releases {
		if r.Tree != "" && !slices.Contains(keep, r.Tree) && (r.Status == store.ReleaseSucceeded || r.Version == d.rel.Version) {
			keep = append(keep, r.Tree)
			if len(keep) == keptTrees {
				break
			}
		}
	}
	if err := d.trees.prune(keep); err != nil {
		d.warn("cannot remove old kept trees", err)
	}
}

func (d *deployment) warn(what string, err error) {
	d.p.log.Warn("deploy: "+what, "app", d.app.Name, "release", d.rel.Version, "err", err)
	fmt.Fprintf(d.progress, "warning: %s: %v\n", what, err)
}

// runReleaseStep runs the release: line of the Procfile of the tree at dir
// (a path in the volume) in the running container, with dir as its cwd and
// the release's config in its environment. An error means the release
// failed; the running version keeps serving.
func (p *Platform) runReleaseStep(ctx context.Context, a store.App, config map[string]string, dir string, progress io.Writer) error {
	release, err := p.releaseLine(a, dir)
	if err != nil || release == "" {
		return err
	}
	fmt.Fprintf(progress, "running release: %s\n", release)
	// `rosti init` (mounted in every container) picks the release line
	// exactly as it picks the web line: through /bin/sh when the image has
	// one, split into argv otherwise, in the tree --dir names.
	code, err := p.execIn(ctx, a, rtm.ExecSpec{
		Args:   []string{rtm.InitPath, "init", "--type", releaseProcess, "--dir", path.Join(rtm.VolumePath, dir)},
		Env:    configEnv(config),
		Stdout: progress, Stderr: progress,
	})
	switch {
	case errors.Is(err, ErrAppNotRunning):
		return fmt.Errorf("the release step runs in the app's container, and %w; deploy again once it runs", err)
	case err != nil:
		return fmt.Errorf("release step: %w", err)
	case code != 0:
		return fmt.Errorf("the release step exited with status %d: %w", code, store.ErrInvalid)
	}
	return nil
}
