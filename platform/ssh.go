package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/initproc"
	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/sshd"
	"github.com/rosti-paas/rosti/store"
)

// SSHAccess is the platform as the SSH gateway needs it (sshd.Platform):
// who may log in to which app, and what a push deploys.
type SSHAccess struct{ p *Platform }

// SSH returns the gateway's view of the platform.
func (p *Platform) SSH() SSHAccess { return SSHAccess{p} }

var _ sshd.Platform = SSHAccess{}

// errSSHDenied is the one answer to every refused login, so that a client
// cannot tell an unknown app from a wrong credential.
var errSSHDenied = fmt.Errorf("no such app, or the credential does not open it: %w", ErrUnauthorized)

// dummyHash is compared against when there is no hash to check, so that a
// refused password costs the same time whatever the reason.
const dummyHash = "$2a$10$YV08YNNTnm3MK4pNCn5U2etQXn0nGUsSpg5hz9zsakKB.o.PV.Ppy"

// AuthorizeKey grants app to a key listed in its ssh_keys, or to a key of
// an active user who is a member of the app's company.
func (s SSHAccess) AuthorizeKey(_ context.Context, app string, key gossh.PublicKey) (sshd.AppAccess, error) {
	a, err := s.p.store.AppByName(app)
	if errors.Is(err, store.ErrNotFound) {
		return sshd.AppAccess{}, errSSHDenied
	}
	if err != nil {
		return sshd.AppAccess{}, err
	}
	offered := key.Marshal()
	for _, line := range a.SSHKeys {
		if pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line)); err == nil && bytes.Equal(pub.Marshal(), offered) {
			return s.p.sshAccess(a)
		}
	}
	holders, err := s.p.store.KeysByFingerprint(gossh.FingerprintSHA256(key))
	if err != nil {
		return sshd.AppAccess{}, err
	}
	for _, k := range holders {
		pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.PublicKey))
		if err != nil || !bytes.Equal(pub.Marshal(), offered) {
			continue
		}
		u, err := s.p.store.User(k.UserID)
		if err != nil || !u.IsActive {
			continue
		}
		if s.p.CheckMember(u, a.CompanyID) == nil {
			return s.p.sshAccess(a)
		}
	}
	return sshd.AppAccess{}, errSSHDenied
}

// AuthorizePassword grants app to its ssh_password.
func (s SSHAccess) AuthorizePassword(_ context.Context, app, password string) (sshd.AppAccess, error) {
	a, err := s.p.store.AppByName(app)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return sshd.AppAccess{}, err
	}
	hash := a.SSHPasswordHash
	if hash == "" {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || a.SSHPasswordHash == "" {
		return sshd.AppAccess{}, errSSHDenied
	}
	return s.p.sshAccess(a)
}

// sshAccess is what a login to a grants. The volume is made here too, so
// that files can be uploaded before the app first ran.
func (p *Platform) sshAccess(a store.App) (sshd.AppAccess, error) {
	volume, err := p.ensureVolume(a)
	if err != nil {
		return sshd.AppAccess{}, fmt.Errorf("volume of %s: %w", a.Name, err)
	}
	return sshd.AppAccess{
		AppID: strconv.FormatInt(a.ID, 10), AppName: a.Name, UID: a.UID, GID: a.UID,
		VolumeDir: volume, RepoDir: p.repoDir(a), Env: appEnv(a),
	}, nil
}

// repoDir is the app's bare git repository, outside its volume so that
// nothing in the container can rewrite it.
func (p *Platform) repoDir(a store.App) string {
	return filepath.Join(p.cfg.DataDir, "repos", strconv.FormatInt(a.ID, 10)+".git")
}

// Exec runs a command in the app's running web container.
func (s SSHAccess) Exec(ctx context.Context, appID string, req sshd.ExecRequest) (int, error) {
	a, err := s.p.appByID(appID)
	if err != nil {
		return -1, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the resize relay
	code, err := s.p.execIn(ctx, a, rtm.ExecSpec{
		Args: req.Args, Env: req.Env, TTY: req.TTY,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr,
		Resize: relaySizes(ctx, req.Resize),
	})
	if errors.Is(err, ErrAppStopped) {
		return code, fmt.Errorf("app %s: %w", a.Name, sshd.ErrAppStopped)
	}
	return code, err
}

func (p *Platform) appByID(appID string) (store.App, error) {
	id, err := strconv.ParseInt(appID, 10, 64)
	if err != nil {
		return store.App{}, fmt.Errorf("app %q: %w", appID, store.ErrNotFound)
	}
	return p.store.App(id)
}

// relaySizes converts the gateway's window sizes to the runtime's until in
// closes or ctx ends.
func relaySizes(ctx context.Context, in <-chan sshd.WindowSize) <-chan rtm.WindowSize {
	if in == nil {
		return nil
	}
	out := make(chan rtm.WindowSize, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case w, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- rtm.WindowSize{Width: uint32(max(w.Width, 0)), Height: uint32(max(w.Height, 0))}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// releaseProcess is the Procfile line run before a deploy restarts the app.
const releaseProcess = "release"

// Release runs the release: line of the Procfile in dir, the tree a push
// staged in the app's volume (a path in its containers, under /srv), in the
// running container with dir as its cwd. An error means the release failed;
// the gateway then drops the tree and the running version keeps serving.
func (s SSHAccess) Release(ctx context.Context, appID, dir string, progress io.Writer) error {
	p := s.p
	a, err := p.appByID(appID)
	if err != nil {
		return err
	}
	inVolume, ok := strings.CutPrefix(path.Clean(dir), rtm.VolumePath+"/")
	if !ok {
		return fmt.Errorf("release in %q: not a directory of the app volume: %w", dir, store.ErrInvalid)
	}
	release, err := p.releaseLine(a, inVolume)
	if err != nil || release == "" {
		return err
	}
	fmt.Fprintf(progress, "running release: %s\n", release)
	// `rosti init` (mounted in every container) picks the release line
	// exactly as it picks the web line: through /bin/sh when the image has
	// one, split into argv otherwise, in the tree --dir names.
	code, err := p.execIn(ctx, a, rtm.ExecSpec{
		Args:   []string{rtm.InitPath, "init", "--type", releaseProcess, "--dir", path.Join(rtm.VolumePath, inVolume)},
		Stdout: progress, Stderr: progress,
	})
	switch {
	case errors.Is(err, ErrAppStopped):
		return errors.New("the release step runs in the app's container, and the app is not running; start it and push again")
	case err != nil:
		return fmt.Errorf("release step: %w", err)
	case code != 0:
		return fmt.Errorf("the release step exited with status %d", code)
	}
	return nil
}

// Restart replaces the app's processes with zero downtime, once a pushed
// tree is its /srv/app; a stopped app runs it once started.
func (s SSHAccess) Restart(ctx context.Context, appID string, progress io.Writer) error {
	p := s.p
	a, err := p.appByID(appID)
	if err != nil {
		return err
	}
	if !a.Enabled() {
		fmt.Fprintln(progress, "the app is stopped; it runs this version once started")
		return nil
	}
	fmt.Fprintln(progress, "restarting web...")
	if _, err := p.store.UpdateApp(a.ID, func(a *store.App) error { a.Generation++; return nil }); err != nil {
		return err
	}
	if err := p.applied(ctx, a.ID); err != nil {
		return err
	}
	p.log.Info("app deployed over ssh", "app", a.Name)
	return nil
}

// maxProcfileSize bounds what is read of a Procfile.
const maxProcfileSize = 1 << 20

// releaseLine reads the release: line of the Procfile in dir (relative to
// the app's volume), "" if none. The file is read through an os.Root on the
// volume, so a Procfile that is a symlink cannot make rosti read a host
// file, and opened non-blocking so a FIFO cannot hang the deploy.
func (p *Platform) releaseLine(a store.App, dir string) (string, error) {
	root, err := os.OpenRoot(p.volumeDir(a))
	if err != nil {
		return "", fmt.Errorf("open the app volume: %w", err)
	}
	defer root.Close()
	name := path.Join(rtm.VolumePath, dir, "Procfile")
	f, err := root.OpenFile(path.Join(dir, "Procfile"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", name)
	}
	procs, err := initproc.ParseProcfile(io.LimitReader(f, maxProcfileSize))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return procs[releaseProcess], nil
}
