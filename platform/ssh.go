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
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/initproc"
	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// AppAccess is what an SSH login grants: one app, its uid and its
// directories on the host. Only platform makes one.
type AppAccess struct {
	AppID     int64
	AppName   string
	UID, GID  uint32   // the app's own non-root uid and gid
	VolumeDir string   // host path of the app volume (mounted at /srv in containers)
	RepoDir   string   // host path of the app's bare git repo, outside the volume
	Env       []string // the app's environment, for builds
	Limits    Limits   // the app's plan, which the sandbox's tools run under
	// DiskLimit is the plan's disk in bytes; the repository, outside the
	// app's disk, is held to it too. 0: no limit.
	DiskLimit int64
}

// Limits are a plan's per-process-group limits: MemoryMB (swap included
// where the kernel accounts it), CPUMillis of CPU time per second and Pids
// processes and threads; 0 means none.
type Limits struct {
	MemoryMB, CPUMillis, Pids int64
}

// WindowSize is a terminal size in character cells.
type WindowSize = rtm.WindowSize

// ExecRequest is a command to run inside the app's running container.
type ExecRequest struct {
	Args   []string
	Env    []string
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // with TTY, everything comes on Stdout
	Resize <-chan WindowSize
}

// ErrOutOfMemory: an Exec's command was killed for using more than the
// plan's memory; the exit code comes with it.
var ErrOutOfMemory = rtm.ErrOutOfMemory

// VolumePath is where an app's volume is in its containers.
const VolumePath = rtm.VolumePath

// SSHAccess is the platform as the SSH gateway needs it: who may log in to
// which app, what runs there, and what a push deploys. The grant a login
// returns stands for the actor of the calls that follow.
type SSHAccess struct{ p *Platform }

// SSH returns the gateway's view of the platform.
func (p *Platform) SSH() SSHAccess { return SSHAccess{p} }

// errSSHDenied is the one answer to every refused login, so that a client
// cannot tell an unknown app from a wrong credential.
var errSSHDenied = fmt.Errorf("no such app, or the credential does not open it: %w", ErrUnauthorized)

// dummyHash is compared against when there is no hash to check, so that a
// refused password costs the same time whatever the reason.
const dummyHash = "$2a$10$YV08YNNTnm3MK4pNCn5U2etQXn0nGUsSpg5hz9zsakKB.o.PV.Ppy"

// AuthorizeKey grants app to a key listed in its ssh_keys, or to a key of
// a user who may manage the app.
func (s SSHAccess) AuthorizeKey(_ context.Context, app string, key gossh.PublicKey) (AppAccess, error) {
	a, err := s.p.store.AppByName(app)
	if errors.Is(err, store.ErrNotFound) {
		return AppAccess{}, errSSHDenied
	}
	if err != nil {
		return AppAccess{}, err
	}
	offered := key.Marshal()
	for _, line := range a.SSHKeys {
		if pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line)); err == nil && bytes.Equal(pub.Marshal(), offered) {
			return s.p.sshAccess(a)
		}
	}
	holders, err := s.p.store.KeysByFingerprint(gossh.FingerprintSHA256(key))
	if err != nil {
		return AppAccess{}, err
	}
	for _, k := range holders {
		pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.PublicKey))
		if err != nil || !bytes.Equal(pub.Marshal(), offered) {
			continue
		}
		u, err := s.p.store.User(k.UserID)
		if err != nil {
			continue
		}
		if _, err := s.p.authorizeApp(u, AppRef{ID: a.ID}); err == nil {
			return s.p.sshAccess(a)
		}
	}
	return AppAccess{}, errSSHDenied
}

// AuthorizePassword grants app to its ssh_password.
func (s SSHAccess) AuthorizePassword(_ context.Context, app, password string) (AppAccess, error) {
	a, err := s.p.store.AppByName(app)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return AppAccess{}, err
	}
	hash := a.SSHPasswordHash
	if hash == "" {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || a.SSHPasswordHash == "" {
		return AppAccess{}, errSSHDenied
	}
	return s.p.sshAccess(a)
}

// sshAccess is what a login to a grants. The volume is made here too, so
// that files can be uploaded before the app first ran.
func (p *Platform) sshAccess(a store.App) (AppAccess, error) {
	volume, err := p.ensureVolume(a)
	if err != nil {
		return AppAccess{}, fmt.Errorf("volume of %s: %w", a.Name, err)
	}
	plan, err := p.store.Plan(a.PlanID)
	if err != nil {
		return AppAccess{}, fmt.Errorf("plan of %s: %w", a.Name, err)
	}
	return AppAccess{
		AppID: a.ID, AppName: a.Name, UID: a.UID, GID: a.UID,
		VolumeDir: volume, RepoDir: p.repoDir(a), Env: containerEnv(a),
		Limits:    Limits{MemoryMB: plan.MemoryMB, CPUMillis: plan.CPUMillis, Pids: plan.Pids},
		DiskLimit: plan.DiskMB * 1e6,
	}, nil
}

// repoDir is the app's bare git repository, outside its volume so that
// nothing in the container can rewrite it.
func (p *Platform) repoDir(a store.App) string {
	return filepath.Join(p.cfg.DataDir, "repos", strconv.FormatInt(a.ID, 10)+".git")
}

// Exec runs a command in the app's running web container, with the app's
// environment.
func (s SSHAccess) Exec(ctx context.Context, grant AppAccess, req ExecRequest) (int, error) {
	a, err := s.p.store.App(grant.AppID)
	if err != nil {
		return -1, err
	}
	return s.p.execIn(ctx, a, rtm.ExecSpec{
		Args: req.Args, Env: append(configEnv(a.Config), req.Env...), TTY: req.TTY,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr, Resize: req.Resize,
	})
}

// Deploy makes a release of the tree src stages (a pushed commit at
// revision) and moves the app to it without downtime, as Platform.Deploy
// does for an actor. Deploys of one app take turns.
func (s SSHAccess) Deploy(ctx context.Context, grant AppAccess, src TreeSource, revision, summary string, progress io.Writer) (store.Release, error) {
	unlock := s.p.deploys.Lock(grant.AppID)
	defer unlock()
	return s.p.deploy(ctx, "ssh:"+grant.AppName, grant.AppID, change{
		source: SourceGit, tree: src, revision: revision, summary: summary, progress: progress,
	})
}

// releaseProcess is the Procfile line run before a deploy restarts the app.
const releaseProcess = "release"

// maxProcfileSize bounds what is read of a Procfile.
const maxProcfileSize = 1 << 20

// readProcfile reads the Procfile of the tree at dir (relative to the app's
// volume); nil when there is none. The file is read through an os.Root on
// the volume, so a Procfile that is a symlink cannot make rosti read a host
// file, and opened non-blocking so a FIFO cannot hang the deploy.
func (p *Platform) readProcfile(a store.App, dir string) (map[string]string, error) {
	root, err := os.OpenRoot(p.volumeDir(a))
	if err != nil {
		return nil, fmt.Errorf("open the app volume: %w", err)
	}
	defer root.Close()
	name := path.Join(rtm.VolumePath, dir, "Procfile")
	f, err := root.OpenFile(path.Join(dir, "Procfile"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", name, store.ErrInvalid)
	}
	procs, err := initproc.ParseProcfile(io.LimitReader(f, maxProcfileSize))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", name, err, store.ErrInvalid)
	}
	return procs, nil
}

// releaseLine is the release: line of the Procfile in dir, "" if none.
func (p *Platform) releaseLine(a store.App, dir string) (string, error) {
	procs, err := p.readProcfile(a, dir)
	return procs[releaseProcess], err
}

// procfileTypes lists the process types the Procfile in dir declares,
// web always among them and the release step never.
func (p *Platform) procfileTypes(a store.App, dir string) ([]string, error) {
	procs, err := p.readProcfile(a, dir)
	if err != nil {
		return nil, err
	}
	types := []string{"web"}
	for t := range procs {
		if t == "web" || t == releaseProcess {
			continue
		}
		if !processTypePattern.MatchString(t) {
			return nil, fmt.Errorf("%s: process type %q: names are 1-16 lowercase letters and digits, starting with a letter (each runs as the container <app>-<type>-<n>): %w",
				path.Join(rtm.VolumePath, dir, "Procfile"), t, store.ErrInvalid)
		}
		types = append(types, t)
	}
	slices.Sort(types[1:])
	return types, nil
}

// gitLogin is the SSH user of Drycc-style remotes; no app may be named so.
const gitLogin = "git"

// KnownKey accepts a key some active user holds: the `git` login of
// Drycc's remotes (ssh://git@host/<app>.git) names no app, so the gateway
// lets the key in and asks AuthorizeKey about the app the push names.
func (s SSHAccess) KnownKey(_ context.Context, key gossh.PublicKey) error {
	holders, err := s.p.store.KeysByFingerprint(gossh.FingerprintSHA256(key))
	if err != nil {
		return err
	}
	for _, k := range holders {
		pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.PublicKey))
		if err != nil || !bytes.Equal(pub.Marshal(), key.Marshal()) {
			continue
		}
		if u, err := s.p.store.User(k.UserID); err == nil && u.IsActive {
			return nil
		}
	}
	return errSSHDenied
}
