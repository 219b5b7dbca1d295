package platform

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// RemoveOrphanedFiles deletes the volumes and git repositories of apps the
// store no longer has. An app's delete removes its record first and its
// files after its containers; a rosti killed in between leaves files that
// no container label points to, which the reconciler would never find. It
// runs at start, before the reconciler: every app that exists then has its
// record already, since a record is written before its volume.
func (p *Platform) RemoveOrphanedFiles() error {
	apps, err := p.store.Apps()
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, a := range apps {
		live[strconv.FormatInt(a.ID, 10)] = true
	}
	var errs []error
	for _, dir := range []struct{ path, suffix string }{
		{filepath.Join(p.cfg.DataDir, "volumes"), ""},
		{filepath.Join(p.cfg.DataDir, "repos"), ".git"},
		{filepath.Join(p.cfg.DataDir, "disks"), ".ext4"},
	} {
		entries, err := os.ReadDir(dir.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if dir.suffix == ".ext4" {
				// and what a disk image leaves while it is made or grown
				name = strings.TrimSuffix(strings.TrimSuffix(name, ".new"), ".grow")
			}
			id, ok := strings.CutSuffix(name, dir.suffix)
			n, err := strconv.ParseInt(id, 10, 64)
			if !ok || err != nil || live[id] {
				continue // not an app's, or a live app's
			}
			p.log.Warn("removing the files of a deleted app", "path", filepath.Join(dir.path, e.Name()))
			if dir.suffix != ".git" {
				// A volume may be its disk's mount: unmounted, not emptied.
				errs = append(errs, p.removeVolume(store.App{ID: n}))
			}
			errs = append(errs, os.RemoveAll(filepath.Join(dir.path, e.Name())))
		}
	}
	return errors.Join(errs...)
}
