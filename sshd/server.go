// Package sshd is rosti's SSH gateway: the way developers reach their app's
// files and processes with the stock OpenSSH, sftp, scp, rsync and git
// clients. The SSH user name is the app name; who may log in is decided by
// the Platform (app keys, app password, keys of users allowed on the app).
//
// What runs where:
//   - a shell (with pty) and any other command run inside the app's running
//     container through Platform.Exec, as the app's uid in /srv;
//   - the sftp subsystem (and so OpenSSH >= 9 scp) is served in-process on
//     the app volume, every path resolved through an os.Root so that "..",
//     absolute paths and symlinks cannot leave the volume; what it creates is
//     chowned to the app's uid/gid;
//   - `scp -t/-f` (legacy scp), `rsync --server`, `tar` and
//     `git-receive-pack '<app>'` run the HOST's tools in a sandbox process
//     (package sandbox): rosti re-executes itself in new mount/PID/IPC/UTS/
//     network namespaces and in the app's sandbox cgroup (the plan's
//     limits), builds a private root with only those tools read-only and
//     the volume at /srv, and drops to the app uid with NoNewPrivs. The
//     gateway passes a tool only the options its clients send and refuses
//     any that would make it run another program (toolargs.go).
//
// Why a sandbox process and not the app's container or an in-process rsync:
// the runtime image may have neither a shell nor rsync nor git, and
// re-implementing the rsync and scp wire protocols in Go would be large and
// never as compatible as the real tools. Running the host's tools as root
// would be unsafe with untrusted paths and symlinks, and running them as the
// app uid on the host would still let them read every world-readable host
// file and reach local services; the sandbox sees only its volume, system
// files and nothing else, so the protocol details need no trust.
//
// git push: the bare repository (RepoDir, in the data dir, outside the
// volume) is created on the first push and owned by the app's uid, because
// every git command on it runs in the sandbox as that uid: rosti never runs
// git as root on a repository whose content a user controls (config, hooks).
// receive-pack runs with hooks disabled; afterwards the pushed branch is
// deployed through platform's deploy use case (Platform.Deploy), with the
// gateway's part as its TreeSource, streaming the progress to the pusher:
//
//  1. Stage: the commit is checked out (in the sandbox, as the app uid) into
//     the staging tree platform made in the volume (/srv/.rosti/staging/vN):
//     the volume is the only place both the sandbox and the app's containers
//     see. Then the files the app made itself in /srv/app (those the
//     previous deploy's index does not track: uploads, .env, build output)
//     are copied into it, so that the release step sees them and the new
//     version keeps them; tracked files come from the commit alone, so files
//     the commit deleted are gone. They are copied, not hard-linked, because
//     a release step that rewrote a shared file in place would change the
//     running version;
//  2. platform runs the Procfile's release: line in the staging tree;
//  3. Refresh: the app's own files are copied again, picking up what the
//     running version made or changed during the release step;
//  4. platform keeps a copy for rollbacks, swaps the tree in, replaces the
//     app's processes without downtime and records the release; the git
//     index of the staged tree then becomes the repository's.
//
// When any step fails, platform leaves /srv/app and the running version as
// they were, and the gateway sets the pushed branch back to where it was
// before the push (deleted if the push created it), so that pushing the
// same commit again retries the deploy.
//
// The package owns the listener, the host key file and the sessions. It does
// not touch the store, containers or the proxy: all of that goes through
// platform, behind the Platform interface it declares with platform's types.
package sshd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/rosti-paas/rosti/internal/keyedmutex"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/sshd/sandbox"
	"github.com/rosti-paas/rosti/store"
	gossh "golang.org/x/crypto/ssh"
)

// Platform is what the gateway needs from the rest of rosti.
type Platform interface {
	// AuthorizeKey and AuthorizePassword return the access the credential
	// grants to the app named app, or an error when it grants none.
	AuthorizeKey(ctx context.Context, app string, key gossh.PublicKey) (platform.AppAccess, error)
	AuthorizePassword(ctx context.Context, app, password string) (platform.AppAccess, error)
	// KnownKey accepts a key that opens some app: the login of the `git`
	// user, whose pushes name their app in the repository path.
	KnownKey(ctx context.Context, key gossh.PublicKey) error
	// Exec runs a command inside the app's running web container as its
	// uid, cwd /srv, and returns its exit code; platform.ErrAppStopped when
	// none runs.
	Exec(ctx context.Context, grant platform.AppAccess, req platform.ExecRequest) (exitCode int, err error)
	// Deploy makes a release of the tree src stages and moves the app to it
	// without downtime; an error means the app runs what it ran, with
	// /srv/app as it was.
	Deploy(ctx context.Context, grant platform.AppAccess, src platform.TreeSource, revision, summary string, progress io.Writer) (store.Release, error)
}

// Config configures the gateway.
type Config struct {
	Addr          string // listen address, e.g. ":2222"
	HostKeyPath   string // persistent host key, created by EnsureHostKey
	SandboxBinary string // the rosti executable, re-executed as `rosti sandbox`
	// SandboxCgroup names the cgroup under which every app's sandboxed
	// tools get a cgroup with the app's plan limits (sandbox.Cgroups); one
	// of its own per rosti data dir.
	SandboxCgroup string
	Logger        *slog.Logger

	// MaxAuthFailures failed logins from one source address within
	// AuthFailureWindow lock that address out until the window has passed.
	// Zero values mean 10 and 5 minutes.
	MaxAuthFailures   int
	AuthFailureWindow time.Duration

	// LoginGrace is how long a connection has to log in before it is
	// closed; MaxPending bounds the connections not logged in yet, and
	// MaxPendingPerSource those from one address. Zero values mean 30s,
	// 256 and 10 (OpenSSH's defaults are 120s and MaxStartups 10:30:100).
	LoginGrace          time.Duration
	MaxPending          int
	MaxPendingPerSource int
	// Listen binds Addr; rosti passes one that bounds connections per
	// client and in total (internal/connlimit). Nil is net.Listen.
	Listen func(network, addr string) (net.Listener, error)
}

// Server is the SSH gateway.
type Server struct {
	cfg      Config
	platform Platform
	log      *slog.Logger
	limiter  *failureLimiter
	pending  *pendingConns
	// refusedLog and failedLog keep floods of refused and failed
	// connections to a log line a second.
	refusedLog, failedLog sampledLog
	ssh                   *ssh.Server
	pushes                keyedmutex.Map[int64] // pushes to one app take turns
	cgroups               *sandbox.Cgroups

	mu       sync.Mutex
	listener net.Listener
}

// New loads the host key and prepares the gateway; it refuses to run without
// a readable host key, a platform to authorize logins or a sandbox binary.
func New(cfg Config, p Platform) (*Server, error) {
	if p == nil {
		return nil, errors.New("sshd: no platform to authorize logins")
	}
	if cfg.SandboxBinary == "" {
		return nil, errors.New("sshd: no sandbox binary configured")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxAuthFailures <= 0 {
		cfg.MaxAuthFailures = 10
	}
	if cfg.AuthFailureWindow <= 0 {
		cfg.AuthFailureWindow = 5 * time.Minute
	}
	if cfg.LoginGrace <= 0 {
		cfg.LoginGrace = 30 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 256
	}
	if cfg.MaxPendingPerSource <= 0 {
		cfg.MaxPendingPerSource = 10
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	pemBytes, err := os.ReadFile(cfg.HostKeyPath)
	if err != nil {
		return nil, fmt.Errorf("sshd: read host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("sshd: parse host key %s: %w", cfg.HostKeyPath, err)
	}
	cgroups, err := sandbox.NewCgroups(cfg.SandboxCgroup)
	if err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		platform: p,
		log:      cfg.Logger.With("component", "sshd"),
		limiter:  newFailureLimiter(cfg.MaxAuthFailures, cfg.AuthFailureWindow, time.Now),
		pending:  newPendingConns(cfg.MaxPending, cfg.MaxPendingPerSource, cfg.LoginGrace),
		cgroups:  cgroups,
	}
	s.ssh = &ssh.Server{
		Handler:                  s.handleSession,
		PasswordHandler:          s.authPassword,
		PublicKeyHandler:         s.authKey,
		ConnCallback:             s.acceptConn,
		ConnectionFailedCallback: s.connFailed,
		SubsystemHandlers:        map[string]ssh.SubsystemHandler{"sftp": s.handleSFTP},
		ChannelHandlers:          map[string]ssh.ChannelHandler{"session": s.openChannel},
	}
	s.ssh.AddHostKey(signer)
	return s, nil
}

// EnsureHostKey creates a persistent ed25519 host key at path (mode 0600) if
// none exists; an existing file is never overwritten.
func EnsureHostKey(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sshd: host key: %w", err)
	}
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("sshd: generate host key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(private, "rosti host key")
	if err != nil {
		return fmt.Errorf("sshd: encode host key: %w", err)
	}
	// Write aside, then link into place: link fails if another process
	// created the key meanwhile, and a crash never leaves a half key.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ssh_host_key-")
	if err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		tmp.Close()
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sshd: install host key: %w", err)
	}
	return nil
}

// Serve binds the listen address and serves until ctx ends or Shutdown.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := s.cfg.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sshd: listen: %w", err)
	}
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	s.log.Info("started", "addr", ln.Addr().String())

	stop := context.AfterFunc(ctx, func() { s.ssh.Close() })
	defer stop()
	err = s.ssh.Serve(ln)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("sshd: %w", err)
}

// Shutdown stops accepting connections and waits for open sessions to end
// until ctx is done, then closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.ssh.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return s.ssh.Close()
	}
	return err
}

// Addr is the bound address, nil until Serve has bound it.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}
