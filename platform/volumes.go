package platform

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rosti-paas/rosti/store"
)

func (p *Platform) volumeDir(a store.App) string {
	return filepath.Join(p.cfg.DataDir, "volumes", strconv.FormatInt(a.ID, 10))
}

// ensureVolume creates the app's volume, and its app/ directory, owned by
// its uid. The directory above the volumes is root's, so apps cannot see
// each other's volumes. Inside the volume the app may put symlinks where
// we look, so nothing there is followed: Lstat and Lchown only.
func (p *Platform) ensureVolume(a store.App) (string, error) {
	dir := p.volumeDir(a)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", err
	}
	for _, d := range []string{dir, filepath.Join(dir, "app")} {
		if err := os.Mkdir(d, 0o750); err != nil && !os.IsExist(err) {
			return "", err
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
		}
	}
	return dir, nil
}
