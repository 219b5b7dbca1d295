package dbserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// managed is a database server process rosti runs: set up on first use,
// restarted when it dies, adopted when an earlier rosti left it running.
type managed struct {
	name        string // "postgres", "mariadb": logs and messages
	dir         string // <data>/storages/<type>
	account     string // the system user it runs as
	defaultPort int
	wantPort    int // Config's port, 0 for defaultPort or any
	subnet      string
	stopSignal  syscall.Signal // a fast shutdown that still ends cleanly
	log         *slog.Logger

	// What differs between servers.
	initialize func(ctx context.Context, uid, gid int) error // a fresh data directory
	command    func(port, uid, gid int) (*exec.Cmd, error)
	pidFile    string // where the server writes its pid
	marker     string // a path only our own server has on its command line

	mu          sync.Mutex
	port        int  // known once prepared
	supervising bool // the supervision loop runs
}

func (s *managed) initializedMarker() string { return filepath.Join(s.dir, "initialized") }
func (s *managed) portFile() string          { return filepath.Join(s.dir, "port") }
func (s *managed) logFile() string           { return filepath.Join(s.dir, "server.log") }

// initialized says whether this server has been set up (and so may hold
// databases) in an earlier run.
func (s *managed) initialized() bool {
	_, err := os.Stat(s.initializedMarker())
	return err == nil
}

// currentPort is the server's port, 0 before it was prepared.
func (s *managed) currentPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// ensure prepares the server and starts supervising it, once.
func (s *managed) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.supervising {
		return nil
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	s.supervising = true
	go s.loop(ctx)
	return nil
}

// supervise is ensure for servers set up earlier, at rosti's start: a
// failure is logged, and the next use tries again.
func (s *managed) supervise(ctx context.Context) {
	if err := s.ensure(ctx); err != nil {
		s.log.Error("prepare "+s.name, "err", err)
	}
}

// prepare makes the data directory on first use, picks and keeps the port,
// and sets up the firewall chain. Called with mu held.
func (s *managed) prepare(ctx context.Context) error {
	acct, err := user.Lookup(s.account)
	if err != nil {
		return fmt.Errorf("dbserver: %s runs as the system user %q: %w (is its Debian package installed?)", s.name, s.account, err)
	}
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	if err := os.MkdirAll(s.dir, 0o711); err != nil {
		return fmt.Errorf("dbserver: %w", err)
	}
	if err := os.Chmod(s.dir, 0o711); err != nil {
		return fmt.Errorf("dbserver: %w", err)
	}
	if err := reachable(s.dir, s.account); err != nil {
		return err
	}
	port, err := s.choosePort()
	if err != nil {
		return err
	}
	if !s.initialized() {
		start := time.Now()
		if err := s.initialize(ctx, uid, gid); err != nil {
			return err
		}
		if err := os.WriteFile(s.initializedMarker(), nil, 0o600); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
		s.log.Info("initialized "+s.name, "dir", s.dir, "took", time.Since(start).Round(time.Millisecond))
	}
	if err := allowOnly(port, s.subnet); err != nil {
		return err
	}
	s.port = port
	return nil
}

// choosePort reads the port kept from the first start, or picks one.
func (s *managed) choosePort() (int, error) {
	if raw, err := os.ReadFile(s.portFile()); err == nil {
		port, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || port <= 0 || port > 65535 {
			return 0, fmt.Errorf("dbserver: %s holds %q, not a port", s.portFile(), raw)
		}
		return port, nil
	}
	port := s.wantPort
	if port == 0 {
		port = s.defaultPort
		if l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port)); err == nil {
			l.Close()
		} else if l, err := net.Listen("tcp4", "0.0.0.0:0"); err == nil {
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		} else {
			return 0, fmt.Errorf("dbserver: no free port for %s: %w", s.name, err)
		}
	}
	if err := os.WriteFile(s.portFile(), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("dbserver: %w", err)
	}
	return port, nil
}

// reachable makes dir's ancestors inside rosti's data dir traversable by
// account and fails clearly when another ancestor is not.
func reachable(dir, account string) error {
	storages := filepath.Dir(dir)
	data := filepath.Dir(storages)
	for _, d := range []string{storages, data} {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("dbserver: %w", err)
			}
		}
	}
	for d := filepath.Dir(data); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("dbserver: the database server runs as %q and cannot reach %s: directory %s is not traversable by others (chmod o+x %s)", account, dir, d, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// runningPID is the pid of our server when it runs, from its pid file,
// checked against its command line (the pid may be another process's now).
func (s *managed) runningPID() int {
	raw, err := os.ReadFile(s.pidFile)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 1 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), s.marker) {
		return 0
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || processState(stat) == 'Z' {
		return 0
	}
	return pid
}

// loop keeps the server running until ctx ends, and then leaves it running.
func (s *managed) loop(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		var exited <-chan struct{}
		began := time.Now()
		if pid := s.runningPID(); pid != 0 {
			s.log.Info("adopted "+s.name+" of an earlier run", "pid", pid, "port", s.currentPort())
			exited = watchPID(ctx, pid)
		} else {
			var err error
			if exited, err = s.start(); err != nil {
				s.log.Error("start "+s.name, "err", err)
			}
		}
		if exited != nil {
			select {
			case <-ctx.Done():
				return
			case <-exited:
			}
			s.log.Warn(s.name+" exited; starting it again", "after", backoff, "log", s.logFile())
		}
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// start runs the server as a child of its own process group, so that a
// terminal's ^C reaches rosti only, and returns a channel closed when it exits.
func (s *managed) start() (<-chan struct{}, error) {
	acct, err := user.Lookup(s.account)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	cmd, err := s.command(s.currentPort(), uid, gid)
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(s.logFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("dbserver: %w", err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dbserver: start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		s.log.Info(s.name+" exited", "pid", cmd.Process.Pid, "err", err)
		close(exited)
	}()
	s.log.Info("started "+s.name, "pid", cmd.Process.Pid, "port", s.currentPort(), "dir", s.dir)
	return exited, nil
}

// terminate stops the server (ours or adopted) and waits until it is gone,
// then removes its firewall chain.
func (s *managed) terminate(ctx context.Context) error {
	if pid := s.runningPID(); pid != 0 {
		_ = syscall.Kill(pid, s.stopSignal)
		select {
		case <-watchPID(ctx, pid):
		case <-ctx.Done():
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("dbserver: %s killed: %w", s.name, ctx.Err())
		}
	}
	raw, err := os.ReadFile(s.portFile())
	if err != nil {
		return nil // never prepared: no chain either
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("dbserver: %s holds %q, not a port", s.portFile(), raw)
	}
	return removeAllow(port)
}

// watchPID returns a channel closed when pid has exited (zombie or gone),
// checked twice a second until ctx ends.
func watchPID(ctx context.Context, pid int) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || processState(stat) == 'Z' {
				close(gone)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return gone
}

// processState reads the state letter of /proc/<pid>/stat, which follows
// the command name in parentheses.
func processState(stat []byte) byte {
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// run runs a setup command and returns its output in the error.
func run(ctx context.Context, cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("dbserver: %s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
