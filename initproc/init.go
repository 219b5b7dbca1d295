package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// Config says which role `rosti init` plays and with what.
type Config struct {
	ProcessType string   // Procfile line to run ("web", "worker", ...)
	AppDir      string   // the app's tree: its Procfile is read there and the command starts there
	ServeStatic string   // non-empty: serve this directory on $PORT instead of supervising
	Logger      string   // non-empty: be the log driver, "MAXBYTES:KEEP:DIR"
	Command     []string // fallback command (the positional arguments after "--")
}

// BindFlags declares the flags of `rosti init` on fs and fills cfg from them.
func (cfg *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&cfg.ProcessType, "type", "web", "process type: the Procfile line to run")
	// A deploy runs the release line in the tree it is about to put at
	// /srv/app, so that a failing release never touches the live one.
	fs.StringVar(&cfg.AppDir, "dir", DefaultAppDir, "the app's tree: where the Procfile is read and the command starts")
	fs.StringVar(&cfg.ServeStatic, "serve-static", "", "serve this directory over HTTP on $PORT")
	fs.StringVar(&cfg.Logger, "logger", "", "act as containerd log driver: MAXBYTES:KEEP:DIR")
}

// Run plays the configured role until it ends and returns the process exit
// code. Errors are reported on stderr, where the container log picks them up.
func Run(cfg Config) int {
	var err error
	switch {
	case cfg.Logger != "":
		err = runLogger(cfg.Logger)
	case cfg.ServeStatic != "":
		err = serveStatic(cfg.ServeStatic, os.Getenv("PORT"))
	default:
		var argv []string
		argv, err = resolveCommand(filepath.Join(cfg.AppDir, "Procfile"), cfg.ProcessType, "/bin/sh", cfg.Command)
		if err == nil {
			return Supervise(argv, workDir(cfg.AppDir), os.Stdout, os.Stderr, os.Stderr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rosti init:", err)
		return 1
	}
	return 0
}

// workDir is where the app command starts: the app's tree when there is
// one, else the volume.
func workDir(appDir string) string {
	for _, dir := range []string{appDir, "/srv"} {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	return "/"
}

// forwarded are the signals init passes on to the app's process group.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// leftoverGrace is how long processes still running after the app's main
// process exited get, after SIGTERM, before init gives up waiting for them.
const leftoverGrace = 2 * time.Second

// Supervise runs argv in dir with the process environment, forwards signals
// to its process group, reaps all children (init is made a child subreaper,
// so orphans of the app become its children) and returns the exit code of
// argv: its status, or 128+signal. Once argv exited, whatever remains of its
// process group is sent SIGTERM and reaped for up to leftoverGrace.
func Supervise(argv []string, dir string, stdout, stderr *os.File, diag io.Writer) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(diag, "rosti init: become subreaper:", err)
	}
	// Subscribe before starting the child so no SIGCHLD is missed.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)
	defer signal.Stop(sigs)

	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintln(diag, "rosti init:", err)
		return 127
	}
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, stdout, stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintln(diag, "rosti init: start:", err)
		return 127
	}
	mainPid := proc.Pid
	code := -1
	for code < 0 {
		sig := <-sigs
		if sig != unix.SIGCHLD {
			_ = unix.Kill(-mainPid, sig.(syscall.Signal))
			continue
		}
		if c, done := reap(mainPid); done {
			code = c
		}
	}

	_ = unix.Kill(-mainPid, unix.SIGTERM)
	deadline := time.After(leftoverGrace)
	for {
		if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); errors.Is(err, unix.ECHILD) {
			return code
		}
		select {
		case <-sigs:
			reap(mainPid)
		case <-deadline:
			return code
		}
	}
}

// reap collects every exited child and reports the exit code of mainPid if it
// was among them.
func reap(mainPid int) (code int, mainExited bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return code, mainExited
		}
		if pid == mainPid {
			mainExited = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}
