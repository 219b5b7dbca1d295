package sshd_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/sshd"
	"github.com/rosti-paas/rosti/sshd/sandbox"
	"github.com/rosti-paas/rosti/store"
)

// The gateway re-executes "rosti sandbox"; a test binary is not rosti, so
// the tests hand it their own executable and act as `rosti sandbox` when
// started with that first argument (the flags are sandbox.Spec's own, as in
// cmd/sandbox.go).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "sandbox" {
		var spec sandbox.Spec
		fs := pflag.NewFlagSet("sandbox", pflag.ContinueOnError)
		fs.SetInterspersed(false)
		spec.BindFlags(fs)
		if err := fs.Parse(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		spec.Args = fs.Args()
		fmt.Fprintln(os.Stderr, sandbox.Enter(spec))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

var nextUID atomic.Uint32

// uniqueUID hands out ids in a high range that no real account uses,
// spread by process id so parallel test binaries do not share them.
func uniqueUID() uint32 {
	return 200000 + uint32(os.Getpid()%5000)*100 + nextUID.Add(1)
}

// fakePlatform authorizes the apps it was given and runs Exec on the host as
// the app's uid in its volume; the real containers are the platform's tests.
type fakePlatform struct {
	mu       sync.Mutex
	apps     map[string]*fakeApp
	releases []string // the staged trees the release step ran in, as containers see them
	restarts int
	versions int
	// releaseErr and restartErr fail the next Release or Restart.
	releaseErr, restartErr error
	// duringRelease, when set, runs in Release with the staged tree's
	// host path, to look at the volume while a release step runs.
	duringRelease func(staged string)
}

type fakeApp struct {
	access   platform.AppAccess
	keys     []gossh.PublicKey
	password string
	stopped  bool
	pulling  bool // enabled, waiting for its image
	noShell  bool // its image has no /bin/sh
}

func (p *fakePlatform) app(name string) (*fakeApp, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	app, ok := p.apps[name]
	if !ok {
		return nil, fmt.Errorf("no app %q", name)
	}
	return app, nil
}

func (p *fakePlatform) AuthorizeKey(_ context.Context, name string, key gossh.PublicKey) (platform.AppAccess, error) {
	app, err := p.app(name)
	if err != nil {
		return platform.AppAccess{}, err
	}
	for _, k := range app.keys {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return app.access, nil
		}
	}
	return platform.AppAccess{}, errors.New("key not allowed")
}

// KnownKey accepts a key of any of its apps.
func (p *fakePlatform) KnownKey(_ context.Context, key gossh.PublicKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, app := range p.apps {
		for _, k := range app.keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
	}
	return errors.New("unknown key")
}

func (p *fakePlatform) AuthorizePassword(_ context.Context, name, password string) (platform.AppAccess, error) {
	app, err := p.app(name)
	if err != nil {
		return platform.AppAccess{}, err
	}
	if app.password == "" || password != app.password {
		return platform.AppAccess{}, errors.New("wrong password")
	}
	return app.access, nil
}

func (p *fakePlatform) Exec(ctx context.Context, grant platform.AppAccess, req platform.ExecRequest) (int, error) {
	appID := grant.AppID
	var app *fakeApp
	p.mu.Lock()
	for _, a := range p.apps {
		if a.access.AppID == appID {
			app = a
		}
	}
	p.mu.Unlock()
	if app == nil {
		return 0, fmt.Errorf("no app %d", appID)
	}
	if app.stopped {
		return 0, &platform.NotRunningError{App: app.access.AppName, Reason: "it is stopped; start it first", Stopped: true}
	}
	if app.pulling {
		return 0, &platform.NotRunningError{App: app.access.AppName, Reason: "it waits for its image (pulling image x: 40%)"}
	}
	if app.noShell {
		return 0, &platform.ProgramNotFoundError{App: app.access.AppName, Image: "x", Program: req.Args[0]}
	}
	if req.TTY {
		// Report what a container's pty would get: TERM and every size.
		for _, kv := range req.Env {
			if strings.HasPrefix(kv, "TERM=") {
				fmt.Fprintf(req.Stdout, "%s\n", kv)
			}
		}
		for size := range req.Resize {
			fmt.Fprintf(req.Stdout, "size %dx%d\n", size.Width, size.Height)
		}
		return 0, nil
	}
	cmd := exec.CommandContext(ctx, req.Args[0], req.Args[1:]...)
	cmd.Dir = app.access.VolumeDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = req.Stdin, req.Stdout, req.Stderr
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: app.access.UID, Gid: app.access.GID}}
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	return 0, err
}

// Deploy plays platform's part of a deploy the way platform does it: an
// empty staging tree of the app's in its volume, the source's Stage, a
// release step that builds into the tree (built.txt, owned by the app as a
// real one would be), the source's Refresh, the swap with /srv/app and a
// restart; a failure puts /srv/app back. The real thing is platform's tests.
func (p *fakePlatform) Deploy(ctx context.Context, grant platform.AppAccess, src platform.TreeSource, _, _ string, progress io.Writer) (store.Release, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.versions++
	version := p.versions
	area := filepath.Join(grant.VolumeDir, ".rosti", "staging")
	staged := filepath.Join(area, fmt.Sprintf("v%d", version))
	dir := fmt.Sprintf("%s/.rosti/staging/v%d", sandbox.VolumePath, version)
	live := filepath.Join(grant.VolumeDir, "app")
	chown := func(path string) error { return os.Lchown(path, int(grant.UID), int(grant.GID)) }
	cleanUp := func() { os.RemoveAll(area) }
	if fi, err := os.Lstat(filepath.Dir(area)); err == nil && !fi.IsDir() {
		os.Remove(filepath.Dir(area)) // the app's link out of its volume: never followed
	}
	for _, d := range []string{filepath.Dir(area), area} {
		if err := errors.Join(os.MkdirAll(d, 0o755), chown(d)); err != nil {
			return store.Release{}, err
		}
	}
	if err := os.MkdirAll(live, 0o755); err != nil {
		return store.Release{}, err
	}
	if err := errors.Join(chown(live), os.Mkdir(staged, 0o755), chown(staged)); err != nil {
		return store.Release{}, err
	}
	if err := src.Stage(ctx, dir); err != nil {
		cleanUp()
		return store.Release{}, err
	}
	p.releases = append(p.releases, dir)
	fmt.Fprintln(progress, "running release: ./build")
	if err := p.releaseErr; err != nil {
		p.releaseErr = nil
		cleanUp()
		return store.Release{}, err
	}
	if p.duringRelease != nil {
		p.duringRelease(staged)
	}
	built := filepath.Join(staged, "built.txt")
	if err := errors.Join(os.WriteFile(built, []byte(dir+"\n"), 0o644), chown(built)); err != nil {
		return store.Release{}, err
	}
	if err := src.Refresh(ctx, dir); err != nil {
		cleanUp()
		return store.Release{}, err
	}
	previous := filepath.Join(area, "previous")
	if err := errors.Join(os.Rename(live, previous), os.Rename(staged, live)); err != nil {
		return store.Release{}, err
	}
	p.restarts++
	fmt.Fprintln(progress, "restarting web...")
	if err := p.restartErr; err != nil {
		p.restartErr = nil
		os.RemoveAll(live)
		os.Rename(previous, live)
		cleanUp()
		return store.Release{}, err
	}
	cleanUp()
	return store.Release{AppID: grant.AppID, Version: int64(version), Status: store.ReleaseSucceeded}, nil
}

// deploys counts the releases run and the restarts that followed.
func (p *fakePlatform) deploys() (releases, restarts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.releases), p.restarts
}

// testApp is one app with its volume, repo, client key and password.
type testApp struct {
	name     string
	access   platform.AppAccess
	keyFile  string
	signer   gossh.Signer
	password string
}

// env is a running gateway plus a directory tree around the app volumes
// with canary files outside them.
type env struct {
	t        *testing.T
	platform *fakePlatform
	server   *sshd.Server
	base     string // holds volumes, data dir, canaries
	outside  string // a directory next to the volumes with canary files
	port     string
	apps     map[string]*testApp
}

const canaryText = "canary: must never change\n"

func newEnv(t *testing.T, appNames ...string) *env {
	t.Helper()
	e := newEnvWithoutServer(t, appNames...)
	e.start(sshd.Config{})
	return e
}

// newEnvWithoutServer prepares apps and canaries; start runs the gateway.
func newEnvWithoutServer(t *testing.T, appNames ...string) *env {
	t.Helper()
	base := t.TempDir()
	// The fake Exec runs as app uids on the host, which must reach volumes.
	for _, dir := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, platform: &fakePlatform{apps: map[string]*fakeApp{}}, base: base, apps: map[string]*testApp{}}
	e.outside = filepath.Join(base, "outside")
	mustMkdir(t, e.outside, 0o777) // world-writable: only the sandbox and os.Root keep apps out
	mustWrite(t, filepath.Join(e.outside, "canary.txt"), canaryText, 0o666)
	mustMkdir(t, filepath.Join(base, "data", "repos"), 0o700)
	mustWrite(t, filepath.Join(base, "data", "secret.txt"), canaryText, 0o644)
	for _, name := range appNames {
		e.addApp(name)
	}
	return e
}

func (e *env) addApp(name string) *testApp {
	t := e.t
	uid := uniqueUID()
	volume := filepath.Join(e.base, "volumes", name)
	mustMkdir(t, filepath.Dir(volume), 0o755)
	mustMkdir(t, volume, 0o755)
	if err := os.Chown(volume, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(private, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.base, name+".key")
	mustWrite(t, keyFile, string(pem.EncodeToMemory(block)), 0o600)
	signer, err := gossh.NewSignerFromKey(private)
	if err != nil {
		t.Fatal(err)
	}
	sshPublic, err := gossh.NewPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	app := &testApp{
		name: name,
		access: platform.AppAccess{
			AppID: int64(uid), AppName: name, UID: uid, GID: uid,
			VolumeDir: volume,
			RepoDir:   filepath.Join(e.base, "data", "repos", "id-"+name+".git"),
		},
		keyFile:  keyFile,
		signer:   signer,
		password: "pw-" + name,
	}
	e.platform.mu.Lock()
	e.platform.apps[name] = &fakeApp{access: app.access, keys: []gossh.PublicKey{sshPublic}, password: app.password}
	e.platform.mu.Unlock()
	e.apps[name] = app
	return app
}

func (e *env) start(cfg sshd.Config) {
	t := e.t
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.HostKeyPath = filepath.Join(e.base, "data", "ssh_host_ed25519_key")
	cfg.SandboxBinary = self
	cfg.SandboxCgroup = testCgroup(t)
	cfg.Logger = e.logger()
	if err := sshd.EnsureHostKey(cfg.HostKeyPath); err != nil {
		t.Fatal(err)
	}
	server, err := sshd.New(cfg, e.platform)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx) }()
	t.Cleanup(func() {
		shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		server.Shutdown(shutdownCtx)
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitFor(t, "the server to bind", func() bool { return server.Addr() != nil })
	_, e.port, _ = net.SplitHostPort(server.Addr().String())
	e.server = server
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// sshOptions are the client options every real client gets through -o.
func (e *env) sshOptions(app *testApp) []string {
	return []string{
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
		"-o", "IdentityFile=" + app.keyFile, "-o", "User=" + app.name,
	}
}

func (e *env) sshCommand(app *testApp) string {
	return fmt.Sprintf("ssh -p %s -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR", e.port, app.keyFile)
}

// run runs a real client with a deadline and returns its combined output
// and exit code.
func run(t *testing.T, dir, stdin string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewBufferString(stdin)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exitErr):
		return string(out), exitErr.ExitCode()
	}
	t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	return "", 0
}

// mustRun is run expecting success.
func mustRun(t *testing.T, dir, stdin, name string, args ...string) string {
	t.Helper()
	out, code := run(t, dir, stdin, name, args...)
	if code != 0 {
		t.Fatalf("%s %v: exit %d\n%s", name, args, code, out)
	}
	return out
}

func (e *env) ssh(app *testApp, command string) (string, int) {
	e.t.Helper()
	args := append([]string{"-p", e.port}, e.sshOptions(app)...)
	args = append(args, "127.0.0.1", command)
	return run(e.t, e.base, "", "ssh", args...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustMkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, file, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkConfined asserts that nothing outside the volumes changed and that
// no file in any volume is owned by root.
func (e *env) checkConfined() {
	t := e.t
	t.Helper()
	entries, err := os.ReadDir(e.outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "canary.txt" {
		var names []string
		for _, entry := range entries {
			names = append(names, entry.Name())
		}
		t.Errorf("outside dir holds %v, want only canary.txt", names)
	}
	for _, canary := range []string{filepath.Join(e.outside, "canary.txt"), filepath.Join(e.base, "data", "secret.txt")} {
		if got := readFile(t, canary); got != canaryText {
			t.Errorf("%s changed: %q", canary, got)
		}
	}
	for _, app := range e.apps {
		filepath.WalkDir(app.access.VolumeDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Error(err)
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				t.Error(err)
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != app.access.UID || st.Gid != app.access.GID {
				t.Errorf("%s is owned by %d:%d, want the app's %d", path, st.Uid, st.Gid, app.access.UID)
			}
			return nil
		})
	}
}

func ownerOf(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid))
}

// testCgroup names a sandbox cgroup parent of the test's own, removed after
// it (once the server has released its app cgroups).
func testCgroup(t *testing.T) string {
	name := fmt.Sprintf("rosti-sshd-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	t.Cleanup(func() {
		for _, dir := range []string{"/sys/fs/cgroup/" + name, "/sys/fs/cgroup/memory/" + name, "/sys/fs/cgroup/pids/" + name, "/sys/fs/cgroup/cpu/" + name} {
			os.Remove(dir)
		}
	})
	return name
}
