package platform

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// ensureImage makes an app's image present: the built-in static and shell
// images are built locally, anything else is pulled in the background
// (errPulling).
func (p *Platform) ensureImage(ctx context.Context, a store.App) error {
	ref := a.Image
	switch ref {
	case StaticRuntimeImage:
		_, err := p.containers.EnsureStaticImage(ctx)
		return err
	case ShellRuntimeImage:
		_, err := p.containers.EnsureShellImage(ctx)
		return err
	}
	have, err := p.containers.Images(ctx)
	if err != nil {
		return err
	}
	for _, img := range have {
		if img == ref {
			p.pulls.succeeded(ref)
			return nil
		}
	}
	return p.pulls.forApp(a)
}

// ImportImage loads images from an OCI or docker archive for apps to use,
// and returns their names.
func (p *Platform) ImportImage(ctx context.Context, actor store.User, archive io.Reader, progress func(string)) ([]string, error) {
	if err := requireSuperuser(actor); err != nil {
		return nil, err
	}
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	names, err := p.containers.Import(ctx, archive, progress)
	if err != nil {
		return nil, fmt.Errorf("import: %v: %w", err, store.ErrInvalid)
	}
	p.log.Info("images imported", "images", names)
	return names, nil
}

// PullImage fetches an image from its registry.
func (p *Platform) PullImage(ctx context.Context, actor store.User, ref string) error {
	if err := requireSuperuser(actor); err != nil {
		return err
	}
	if err := p.needRuntime(); err != nil {
		return err
	}
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return FieldError("ref", "must be an image reference such as docker.io/library/node:22-alpine")
	}
	if err := p.pulls.pull(ctx, ref); err != nil {
		return fmt.Errorf("pull %s: %v: %w", ref, err, store.ErrInvalid)
	}
	return nil
}

// StartImagePull starts fetching an image in the background, as a job of
// the actor's default company, and returns the job's id: its progress and
// outcome are there.
func (p *Platform) StartImagePull(ctx context.Context, actor store.User, ref string) (store.Job, error) {
	if err := requireSuperuser(actor); err != nil {
		return store.Job{}, err
	}
	if err := p.needRuntime(); err != nil {
		return store.Job{}, err
	}
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return store.Job{}, FieldError("ref", "must be an image reference such as docker.io/library/node:22-alpine")
	}
	company, err := p.DefaultCompany(ctx, actor)
	if err != nil {
		return store.Job{}, err
	}
	id, err := p.pulls.background(ref, company)
	if err != nil {
		return store.Job{}, err
	}
	return p.store.Job(id)
}

// Images lists the images present.
func (p *Platform) Images(ctx context.Context, actor store.User) ([]string, error) {
	if err := requireSuperuser(actor); err != nil {
		return nil, err
	}
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	return p.containers.Images(ctx)
}

// RemoveUnusedImages deletes images that neither an app nor a runtime of
// the catalogue refers to.
func (p *Platform) RemoveUnusedImages(ctx context.Context, actor store.User) ([]string, error) {
	if err := requireSuperuser(actor); err != nil {
		return nil, err
	}
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	apps, err := p.store.Apps()
	if err != nil {
		return nil, err
	}
	rts, err := p.store.Runtimes()
	if err != nil {
		return nil, err
	}
	var inUse []string
	for _, a := range apps {
		inUse = append(inUse, a.Image)
	}
	for _, rt := range rts {
		inUse = append(inUse, rt.Image)
	}
	removed, err := p.containers.RemoveUnusedImages(ctx, inUse)
	if len(removed) > 0 {
		p.log.Info("unused images removed", "images", removed)
	}
	return removed, err
}
