package initproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
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
	Command     []string // fallback command (the positional arguments after "--")
	// Programs makes init also run the supervisord-style programs of
	// ConfDir/supervisor.d and the jobs of the installed Crontab, and
	// answer supervisorctl on Control.
	Programs bool
	ConfDir  string
	Crontab  string
	Control  string
}

// BindFlags declares the flags of `rosti init` on fs and fills cfg from them.
func (cfg *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&cfg.ProcessType, "type", "web", "process type: the Procfile line to run")
	// A deploy runs the release line in the tree it is about to put at
	// /srv/app, so that a failing release never touches the live one.
	fs.StringVar(&cfg.AppDir, "dir", DefaultAppDir, "the app's tree: where the Procfile is read and the command starts")
	fs.StringVar(&cfg.ServeStatic, "serve-static", "", "serve this directory over HTTP on $PORT")
	fs.BoolVar(&cfg.Programs, "programs", false, "also run supervisor programs and cron jobs, and answer supervisorctl")
	fs.StringVar(&cfg.ConfDir, "conf", DefaultConfDir, "where supervisor.d/*.conf is read")
	fs.StringVar(&cfg.Crontab, "crontab", DefaultCrontab, "the installed crontab (what `crontab FILE` writes)")
	fs.StringVar(&cfg.Control, "control", DefaultControlSocket, "the unix socket supervisorctl talks to (@ for the abstract namespace)")
}

// DefaultConfDir holds supervisor.d/ and, by Rosti's convention, the
// crontab source (/srv/conf/crontab).
const DefaultConfDir = "/srv/conf"

// Run plays the configured role until it ends and returns the process exit
// code. Errors are reported on stderr, where the container log picks them up.
func Run(cfg Config) int {
	// init is in every container, so its memory is paid once per app: a
	// quarter of Go's default heap growth keeps its heap near its live
	// size (about 1.5 MB) instead of growing to Go's 4 MB floor first.
	debug.SetGCPercent(initGCPercent)
	// What starting up allocated (flags, the Procfile, the programs'
	// config) is garbage by then; hand its pages back rather than wait for
	// the background scavenger.
	time.AfterFunc(startupSettle, debug.FreeOSMemory)
	var err error
	switch {
	case cfg.ServeStatic != "":
		ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
		err = serveStatic(cfg.ServeStatic, os.Getenv("PORT"), ctx.Done())
		stop()
	default:
		var argv []string
		argv, err = resolveCommand(filepath.Join(cfg.AppDir, "Procfile"), cfg.ProcessType, shellPath, cfg.Command)
		if err != nil && cfg.Programs && errors.Is(err, errNothingToRun) {
			fmt.Fprintf(os.Stderr, "rosti init: %v; running supervisor programs and cron jobs only\n", err)
			argv, err = nil, nil
		}
		if err == nil {
			o := initOptions{main: argv, dir: workDir(cfg.AppDir), stdout: os.Stdout, stderr: os.Stderr, diag: os.Stderr}
			if dir, ok := ownStaticServer(argv); ok {
				o.main, o.serve = nil, func(stop <-chan struct{}) int {
					if err := serveStatic(dir, os.Getenv("PORT"), stop); err != nil {
						fmt.Fprintln(os.Stderr, "rosti init:", err)
						return 1
					}
					return 0
				}
			}
			if cfg.Programs {
				o.programs = &programOptions{confDir: cfg.ConfDir, appDir: cfg.AppDir, crontab: cfg.Crontab, control: cfg.Control, minutes: minuteTicks}
			}
			return runInit(o)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rosti init:", err)
		return 1
	}
	return 0
}

// initGCPercent is init's GOGC (and that of the static server it runs in
// process, which allocates little per request); the app's own processes
// keep theirs.
const initGCPercent = 25

// startupSettle is how long after its start init returns the memory its
// start-up used.
const startupSettle = 2 * time.Second

// shellPath runs Procfile lines, programs and cron jobs when the image has it.
const shellPath = "/bin/sh"

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
	return runInit(initOptions{main: argv, dir: dir, stdout: stdout, stderr: stderr, diag: diag})
}

type initOptions struct {
	main []string // nil: no main process, init runs until SIGTERM or SIGINT
	// serve, when set, is the main process run inside init instead: it
	// returns the exit code once stop is closed (SIGTERM or SIGINT).
	serve          func(stop <-chan struct{}) int
	dir            string
	stdout, stderr *os.File
	diag           io.Writer
	programs       *programOptions // nil: no programs, cron or supervisorctl
	stop           <-chan struct{} // closed: as SIGTERM (for tests)
}

type programOptions struct {
	confDir, appDir, crontab, control string
	shell                             string // "" is shellPath
	minutes                           func(stop <-chan struct{}) <-chan time.Time
}

func runInit(o initOptions) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(o.diag, "rosti init: become subreaper:", err)
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	r := newReaper()
	stopReaper, reaperDone := make(chan struct{}), make(chan struct{})
	go func() { r.run(stopReaper); close(reaperDone) }()
	defer func() { close(stopReaper); <-reaperDone }()

	var progs *Programs
	if po := o.programs; po != nil {
		shell := po.shell
		if shell == "" {
			shell = shellPath
		}
		out, diag := &lockedWriter{w: o.stdout}, &lockedWriter{w: o.stderr}
		confDir := filepath.Join(po.confDir, "supervisor.d")
		// Rosti's runtime had it, and rostictl writes its programs there
		// over SFTP, which makes no directories.
		if err := os.MkdirAll(confDir, 0o755); err != nil {
			fmt.Fprintln(o.diag, "rosti init:", err)
		}
		progs = newPrograms(confDir, po.appDir, shell, r, out, diag)
		// Bound first, so that an early supervisorctl waits rather than
		// fails; answered once the configured programs are loaded, so that
		// its answer is never about a half-read config.
		ln, err := net.Listen("unix", po.control)
		if err != nil {
			fmt.Fprintln(o.diag, "rosti init: supervisorctl will not work:", err)
		}
		progs.startAll()
		if ln != nil {
			defer ln.Close()
			go serveControl(ln, progs, o.diag)
		}
		stopCron := make(chan struct{})
		defer close(stopCron)
		go newCron(po.crontab, shell, po.appDir, r, out, diag).run(po.minutes(stopCron))
	}
	stopPrograms := func() {
		if progs != nil {
			progs.stopAll()
		}
	}

	if o.serve != nil {
		return serveInProcess(o, sigs, stopPrograms, r)
	}
	if len(o.main) == 0 {
		for {
			select {
			case sig := <-sigs:
				if sig != unix.SIGTERM && sig != unix.SIGINT {
					continue
				}
			case <-o.stop:
			}
			stopPrograms()
			r.waitNone(leftoverGrace)
			return 0
		}
	}

	path, err := lookPathIn(o.dir, o.main[0])
	if err != nil {
		fmt.Fprintln(o.diag, "rosti init:", err)
		stopPrograms()
		return 127
	}
	mainPid, exited, err := r.start(path, o.main, &os.ProcAttr{
		Dir:   o.dir,
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, o.stdout, o.stderr},
	})
	if err != nil {
		fmt.Fprintln(o.diag, "rosti init: start:", err)
		stopPrograms()
		return 127
	}
	var code int
	stopping := o.stop
wait:
	for {
		select {
		case sig := <-sigs:
			_ = unix.Kill(-mainPid, sig.(syscall.Signal))
			if sig == unix.SIGTERM || sig == unix.SIGINT {
				go stopPrograms() // alongside the app, within the same grace
			}
		case <-stopping:
			stopping = nil
			_ = unix.Kill(-mainPid, unix.SIGTERM)
		case ws := <-exited:
			code = exitCode(ws)
			break wait
		}
	}
	_ = unix.Kill(-mainPid, unix.SIGTERM)
	stopPrograms()
	r.waitNone(leftoverGrace)
	return code
}

// serveInProcess runs o.serve as the app's main process until it returns,
// asking it to stop on SIGTERM or SIGINT.
func serveInProcess(o initOptions, sigs <-chan os.Signal, stopPrograms func(), r *reaper) int {
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() { done <- o.serve(stop) }()
	stopping := o.stop
	for {
		select {
		case sig := <-sigs:
			if (sig == unix.SIGTERM || sig == unix.SIGINT) && stop != nil {
				close(stop)
				stop = nil
				go stopPrograms()
			}
		case <-stopping:
			stopping = nil
			if stop != nil {
				close(stop)
				stop = nil
			}
		case code := <-done:
			stopPrograms()
			r.waitNone(leftoverGrace)
			return code
		}
	}
}

// lookPathIn finds the program a command names as a shell started in dir
// would: "./server" or "bin/server" relative to dir (where the command
// runs, not where init happens to be), a bare name on the PATH.
func lookPathIn(dir, name string) (string, error) {
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	return exec.LookPath(name)
}
