package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerd/errdefs"
)

// removeOldInits removes the init binaries matching Config.OldInits that
// are neither this rosti's nor mounted by any container. Each rosti
// version installs its init under a name of its own (so that an upgrade
// never rewrites a file running containers have mounted), and a container
// keeps the one it was made with until it is made again; without this
// every upgrade would leave one behind for good.
func (d *Driver) removeOldInits(ctx context.Context) error {
	if d.cfg.OldInits == "" {
		return nil
	}
	files, err := filepath.Glob(d.cfg.OldInits)
	if err != nil {
		return fmt.Errorf("runtime: old inits: %w", err)
	}
	// The current one always matches: the containers' specs are read
	// only when there is another.
	files = slices.DeleteFunc(files, func(f string) bool { return f == d.cfg.InitBinary })
	if len(files) == 0 {
		return nil
	}
	mounted, err := d.mountedInits(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if mounted[f] {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		d.log.Info("removed the init binary of an earlier version", "path", f)
	}
	return errors.Join(errs...)
}

// mountedInits are the host files the containers' specs mount as their
// init.
func (d *Driver) mountedInits(ctx context.Context) (map[string]bool, error) {
	list, err := d.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers: %w", err)
	}
	mounted := map[string]bool{}
	for _, c := range list {
		spec, err := c.Spec(ctx)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			// Unknown means kept: removing a file a container needs to
			// start would be worse than keeping one too many.
			return nil, fmt.Errorf("runtime: spec of %s: %w", c.ID(), err)
		}
		for _, m := range spec.Mounts {
			if m.Destination == InitPath {
				mounted[m.Source] = true
			}
		}
	}
	return mounted, nil
}
