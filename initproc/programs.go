package initproc

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Program states, as supervisorctl shows them.
const (
	StateStopped  = "STOPPED"
	StateStarting = "STARTING"
	StateRunning  = "RUNNING"
	StateBackoff  = "BACKOFF"
	StateStopping = "STOPPING"
	StateExited   = "EXITED"
	StateFatal    = "FATAL"
)

// Programs runs the supervisord-style programs of one config dir the way
// supervisord would: started in the app's tree (or their directory) with
// their environment, restarted by their autorestart rule with a growing
// pause when they die right after starting, their output written to their
// log files and, line by line with the program's name in front, to init's
// own output, which is the container's log.
type Programs struct {
	dir    string // the supervisor.d dir
	appDir string // default working directory
	shell  string // runs commands when present; else they are split into argv
	reaper *reaper
	out    io.Writer // init's stdout (line-atomic)
	diag   io.Writer // init's stderr (line-atomic)

	mu    sync.Mutex
	progs map[string]*program
}

type program struct {
	mu      sync.Mutex
	cfg     ProgramConfig
	state   string
	pid     int
	since   time.Time
	message string
	stop    chan struct{} // closed to stop the current run
	done    chan struct{} // closed once the current run ended; nil before the first
}

func newPrograms(dir, appDir, shell string, r *reaper, out, diag io.Writer) *Programs {
	return &Programs{dir: dir, appDir: appDir, shell: shell, reaper: r, out: out, diag: diag, progs: map[string]*program{}}
}

// startAll loads the config dir and starts the programs marked autostart.
func (m *Programs) startAll() {
	cfgs, errs := LoadPrograms(m.dir)
	for _, err := range errs {
		fmt.Fprintln(m.diag, "rosti init: supervisor:", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range sortedKeys(cfgs) {
		p := &program{cfg: cfgs[name], state: StateStopped}
		m.progs[name] = p
		if p.cfg.AutoStart {
			m.launch(p)
		}
	}
}

// stopAll stops every program, all at once, each within its stopwaitsecs.
func (m *Programs) stopAll() {
	m.mu.Lock()
	progs := make([]*program, 0, len(m.progs))
	for _, p := range m.progs {
		progs = append(progs, p)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range progs {
		wg.Go(func() { m.halt(p) })
	}
	wg.Wait()
}

// Command runs one supervisorctl command and returns its output and exit
// status: 0, 1 for an error, 3 when status finds a program not running
// (supervisorctl's own codes).
func (m *Programs) Command(args []string) (string, int) {
	if len(args) == 0 {
		args = []string{"status"}
	}
	var b strings.Builder
	code := 0
	switch verb, names := args[0], args[1:]; verb {
	case "reread":
		code = m.reread(&b)
	case "update":
		code = m.update(&b)
	case "status":
		code = m.status(&b, names)
	case "start", "stop", "restart":
		if len(names) == 0 {
			return fmt.Sprintf("Error: %s requires a process name\n%s <name> ... or %s all\n", verb, verb, verb), 2
		}
		code = m.each(&b, verb, names)
	case "avail":
		code = m.avail(&b)
	case "tail":
		code = m.tail(&b, names)
	case "help":
		b.WriteString(ctlHelp)
	default:
		return fmt.Sprintf("*** Unknown syntax: %s\n%s", strings.Join(args, " "), ctlHelp), 2
	}
	return b.String(), code
}

const ctlHelp = `supervisorctl commands (rosti init):
  status [NAME...]        the state of the programs
  start|stop|restart NAME...|all
  reread                  show which programs /srv/conf/supervisor.d/*.conf adds, changes or drops
  update                  apply those changes: start added, restart changed, stop dropped programs
  avail                   the programs the config files define
  tail [-BYTES] NAME [stdout|stderr]   the end of a program's log file
`

type change struct{ added, changed, removed []string }

func (m *Programs) diff(cfgs map[string]ProgramConfig) change {
	var c change
	for _, name := range sortedKeys(cfgs) {
		if p, ok := m.progs[name]; !ok {
			c.added = append(c.added, name)
		} else if !reflect.DeepEqual(p.config(), cfgs[name]) {
			c.changed = append(c.changed, name)
		}
	}
	for _, name := range sortedKeys(m.progs) {
		if _, ok := cfgs[name]; !ok {
			c.removed = append(c.removed, name)
		}
	}
	return c
}

func (m *Programs) load(b *strings.Builder) (map[string]ProgramConfig, int) {
	cfgs, errs := LoadPrograms(m.dir)
	for _, err := range errs {
		fmt.Fprintf(b, "ERROR: %v\n", err)
	}
	if len(errs) > 0 {
		return cfgs, 1
	}
	return cfgs, 0
}

func (m *Programs) reread(b *strings.Builder) int {
	cfgs, code := m.load(b)
	m.mu.Lock()
	c := m.diff(cfgs)
	m.mu.Unlock()
	for _, n := range c.added {
		fmt.Fprintf(b, "%s: available\n", n)
	}
	for _, n := range c.changed {
		fmt.Fprintf(b, "%s: changed\n", n)
	}
	for _, n := range c.removed {
		fmt.Fprintf(b, "%s: disappeared\n", n)
	}
	if len(c.added)+len(c.changed)+len(c.removed) == 0 {
		b.WriteString("No config updates to processes\n")
	}
	return code
}

func (m *Programs) update(b *strings.Builder) int {
	cfgs, code := m.load(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.diff(cfgs)
	for _, n := range c.removed {
		if m.halt(m.progs[n]) {
			fmt.Fprintf(b, "%s: stopped\n", n)
		}
		delete(m.progs, n)
		fmt.Fprintf(b, "%s: removed process group\n", n)
	}
	for _, n := range c.changed {
		p := m.progs[n]
		if m.halt(p) {
			fmt.Fprintf(b, "%s: stopped\n", n)
		}
		p.mu.Lock()
		p.cfg = cfgs[n]
		p.mu.Unlock()
		fmt.Fprintf(b, "%s: updated process group\n", n)
		if cfgs[n].AutoStart {
			m.launch(p)
		}
	}
	for _, n := range c.added {
		p := &program{cfg: cfgs[n], state: StateStopped}
		m.progs[n] = p
		fmt.Fprintf(b, "%s: added process group\n", n)
		if p.cfg.AutoStart {
			m.launch(p)
		}
	}
	return code
}

func (m *Programs) avail(b *strings.Builder) int {
	cfgs, code := m.load(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range sortedKeys(cfgs) {
		state := "avail"
		if _, ok := m.progs[n]; ok {
			state = "in use"
		}
		fmt.Fprintf(b, "%-32s %-7s auto\n", n, state)
	}
	return code
}

func (m *Programs) status(b *strings.Builder, names []string) int {
	m.mu.Lock()
	if len(names) == 0 || slices.Contains(names, "all") {
		names = sortedKeys(m.progs)
	}
	progs := make([]*program, len(names))
	for i, n := range names {
		progs[i] = m.progs[strings.TrimSuffix(n, ":*")]
	}
	m.mu.Unlock()
	code := 0
	for i, p := range progs {
		if p == nil {
			fmt.Fprintf(b, "%s: ERROR (no such process)\n", names[i])
			code = 4
			continue
		}
		state, desc := p.describe()
		fmt.Fprintf(b, "%-32s %-9s %s\n", p.config().Name, state, desc)
		if state != StateRunning && code == 0 {
			code = 3
		}
	}
	return code
}

// tail writes the last bytes (1600 unless -BYTES) of a program's log file.
// Following is left to the app's logs, which have every program's lines.
func (m *Programs) tail(b *strings.Builder, args []string) int {
	size := int64(1600)
	if len(args) > 0 && args[0] == "-f" {
		b.WriteString("Error: tail -f is not supported here; follow the app's logs (apps-logs/{id}/?follow=1), which have every program's lines\n")
		return 2
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		n, err := strconv.ParseInt(args[0][1:], 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintf(b, "Error: bad byte count %s\n", args[0])
			return 2
		}
		size, args = n, args[1:]
	}
	if len(args) == 0 || len(args) > 2 {
		b.WriteString("Error: tail requires a process name\n")
		return 2
	}
	m.mu.Lock()
	p := m.progs[args[0]]
	m.mu.Unlock()
	if p == nil {
		fmt.Fprintf(b, "%s: ERROR (no such process)\n", args[0])
		return 1
	}
	cfg := p.config()
	target := cfg.Stdout
	if len(args) == 2 && args[1] == "stderr" {
		target = cfg.Stderr
		if cfg.RedirectStderr {
			target = cfg.Stdout
		}
	}
	if target.Path == "" {
		fmt.Fprintf(b, "%s: ERROR (no log file; its lines are in the app's logs)\n", cfg.Name)
		return 1
	}
	f, err := os.Open(target.Path)
	if err != nil {
		fmt.Fprintf(b, "%s: ERROR (%v)\n", cfg.Name, err)
		return 1
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > size {
		_, _ = f.Seek(-size, io.SeekEnd)
	}
	_, _ = io.Copy(b, io.LimitReader(f, size))
	return 0
}

// each runs start, stop or restart on the named programs ("all": every one).
func (m *Programs) each(b *strings.Builder, verb string, names []string) int {
	m.mu.Lock()
	if slices.Contains(names, "all") {
		names = sortedKeys(m.progs)
	}
	progs := make([]*program, len(names))
	for i, n := range names {
		progs[i] = m.progs[strings.TrimSuffix(n, ":*")]
	}
	m.mu.Unlock()
	code := 0
	for i, p := range progs {
		if p == nil {
			fmt.Fprintf(b, "%s: ERROR (no such process)\n", names[i])
			// Stopping what does not exist leaves it stopped: exit 0, as
			// Rosti's supervisorctl (3.x) does. The Rostifile `rostictl init`
			// writes stops "app" before the files of every deploy, the
			// first one included, when no program "app" exists yet.
			if verb != "stop" {
				code = 1
			}
			continue
		}
		name := p.config().Name
		if verb == "stop" || verb == "restart" {
			if m.halt(p) {
				fmt.Fprintf(b, "%s: stopped\n", name)
			} else if verb == "stop" {
				// Said, but not an error: supervisorctl exits 0 for it, and
				// deploy scripts (rostictl's "supervisorctl stop app" before
				// the files, "start app" after) count on that.
				fmt.Fprintf(b, "%s: ERROR (not running)\n", name)
			}
		}
		if verb == "start" || verb == "restart" {
			if !m.launch(p) {
				fmt.Fprintf(b, "%s: ERROR (already started)\n", name) // exit 0, as "not running" above
				continue
			}
			if state, desc := p.waitStarted(); state == StateRunning {
				fmt.Fprintf(b, "%s: started\n", name)
			} else {
				fmt.Fprintf(b, "%s: ERROR (%s: %s)\n", name, strings.ToLower(state), desc)
				code = 1
			}
		}
	}
	return code
}

// launch starts a run of p unless one is going on; it reports whether it did.
func (m *Programs) launch(p *program) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running() {
		return false
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.state, p.message = StateStarting, ""
	go m.run(p, p.cfg, p.stop, p.done)
	return true
}

// halt stops p's run, if any, and waits for it; it reports whether p was
// running.
func (m *Programs) halt(p *program) bool {
	p.mu.Lock()
	if !p.running() {
		p.mu.Unlock()
		return false
	}
	if p.stop != nil { // the first of concurrent halts stops the run
		close(p.stop)
		p.stop = nil
	}
	done := p.done
	p.mu.Unlock()
	<-done
	return true
}

// running says whether a run is going on; p.mu is held.
func (p *program) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *program) config() ProgramConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

func (p *program) set(state string, pid int, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.pid, p.message, p.since = state, pid, message, time.Now()
}

func (p *program) describe() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == StateRunning:
		up := time.Since(p.since).Truncate(time.Second)
		return p.state, fmt.Sprintf("pid %d, uptime %d:%02d:%02d", p.pid, int(up.Hours()), int(up.Minutes())%60, int(up.Seconds())%60)
	case p.state == StateStopped && p.done == nil:
		return p.state, "Not started"
	case p.message != "":
		return p.state, p.message
	}
	return p.state, p.since.Format("Jan 02 03:04 PM")
}

// waitStarted waits until p leaves STARTING (its startsecs passed, or it
// failed), as supervisorctl start does.
func (p *program) waitStarted() (string, string) {
	deadline := time.Now().Add(p.config().StartWait + 5*time.Second)
	for {
		state, desc := p.describe()
		if state != StateStarting || time.Now().After(deadline) {
			return state, desc
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run is one run of a program: start, watch, restart by its rules, until it
// is stopped or gives up.
func (m *Programs) run(p *program, cfg ProgramConfig, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	retries := 0
	for {
		p.set(StateStarting, 0, "")
		spawned := time.Now()
		pid, exited, err := m.spawn(cfg)
		running := false
		var ws unix.WaitStatus
		if err == nil {
			p.set(StateStarting, pid, "")
			started := time.NewTimer(cfg.StartWait)
			if cfg.StartWait == 0 {
				running = true
				p.set(StateRunning, pid, "")
			}
		watch:
			for {
				select {
				case <-started.C:
					if !running {
						running, retries = true, 0
						p.set(StateRunning, pid, "")
					}
				case ws = <-exited:
					break watch
				case <-stop:
					started.Stop()
					p.set(StateStopping, pid, "")
					terminate(pid, exited, cfg.StopSignal, cfg.StopWait)
					p.set(StateStopped, 0, "")
					return
				}
			}
			started.Stop()
		}
		if !running {
			retries++
			why := fmt.Sprintf("exited too quickly with status %d", exitCode(ws))
			if err != nil {
				why = "spawn error: " + err.Error()
			}
			if retries > cfg.StartRetries {
				fmt.Fprintf(m.diag, "rosti init: program %s: %s; gave up after %d tries\n", cfg.Name, why, retries)
				if err == nil {
					why = "Exited too quickly (process log may have details)" // supervisorctl's words
				}
				p.set(StateFatal, 0, why)
				return
			}
			fmt.Fprintf(m.diag, "rosti init: program %s: %s; retrying in %ds\n", cfg.Name, why, retries)
			p.set(StateBackoff, 0, why)
			select {
			case <-time.After(time.Duration(retries) * time.Second):
				continue
			case <-stop:
				p.set(StateStopped, 0, "")
				return
			}
		}
		code := exitCode(ws)
		fmt.Fprintf(m.diag, "rosti init: program %s exited with status %d\n", cfg.Name, code)
		p.set(StateExited, 0, fmt.Sprintf("exit status %d", code))
		expected := slices.Contains(cfg.ExitCodes, code)
		if cfg.AutoRestart != "true" && (cfg.AutoRestart != "unexpected" || expected) {
			return
		}
		// A program that keeps exiting at once (startsecs=0) is restarted
		// at most once a second rather than in a busy loop.
		select {
		case <-time.After(time.Second - time.Since(spawned)):
		case <-stop:
			p.set(StateStopped, 0, "")
			return
		}
	}
}

// spawn starts one process of the program with its output wired to its
// log files and init's output.
func (m *Programs) spawn(cfg ProgramConfig) (int, <-chan unix.WaitStatus, error) {
	argv, err := commandArgv(cfg.Command, m.shell)
	if err != nil {
		return 0, nil, err
	}
	dir := cfg.Directory
	if dir == "" {
		dir = workDir(m.appDir)
	}
	path, err := lookPathIn(dir, argv[0])
	if err != nil {
		return 0, nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer devnull.Close()
	prefix := "[" + cfg.Name + "] "
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer stdoutW.Close()
	stderrW := stdoutW
	go m.copyOut(stdoutR, cfg.Stdout, m.out, prefix)
	if !cfg.RedirectStderr {
		var stderrR *os.File
		if stderrR, stderrW, err = os.Pipe(); err != nil {
			stdoutR.Close()
			return 0, nil, err
		}
		defer stderrW.Close()
		go m.copyOut(stderrR, cfg.Stderr, m.diag, prefix)
	}
	env := append(os.Environ(), "SUPERVISOR_PROCESS_NAME="+cfg.Name, "SUPERVISOR_ENABLED=1")
	return m.reaper.start(path, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   append(env, cfg.Environment...),
		Files: []*os.File{devnull, stdoutW, stderrW},
	})
}

// copyOut writes a program's stream to its log file (if it has one) and
// to init's output, until the stream ends.
func (m *Programs) copyOut(r *os.File, target LogTarget, out io.Writer, prefix string) {
	defer r.Close()
	tee := &prefixedTee{out: out, prefix: prefix}
	if target.Path != "" {
		f, err := openRotating(target.Path, target.MaxBytes, target.Backups)
		if err != nil {
			fmt.Fprintf(m.diag, "rosti init: %s: %v\n", strings.TrimSpace(prefix), err)
		} else {
			defer f.Close()
			tee.file = f
		}
	}
	CopyLines(tee, r)
}

// prefixedTee writes each line as is to file and with prefix to out.
type prefixedTee struct {
	file   io.Writer
	out    io.Writer
	prefix string
}

func (t *prefixedTee) Write(line []byte) (int, error) {
	if t.file != nil {
		_, _ = t.file.Write(line)
	}
	buf := make([]byte, 0, len(t.prefix)+len(line)+1)
	buf = append(append(buf, t.prefix...), line...)
	if buf[len(buf)-1] != '\n' {
		buf = append(buf, '\n')
	}
	_, _ = t.out.Write(buf)
	return len(line), nil
}

// terminate sends sig to pid's process group and SIGKILL after wait.
func terminate(pid int, exited <-chan unix.WaitStatus, sig unix.Signal, wait time.Duration) {
	_ = unix.Kill(-pid, sig)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-exited:
		_ = unix.Kill(-pid, unix.SIGKILL) // what it left behind in its group
		return
	case <-timer.C:
	}
	_ = unix.Kill(-pid, unix.SIGKILL)
	<-exited
}

// commandArgv runs a command line through shell when there is one, else
// splits it into words.
func commandArgv(command, shell string) ([]string, error) {
	if fi, err := os.Stat(shell); err == nil && !fi.IsDir() {
		return []string{shell, "-c", command}, nil
	}
	argv, err := SplitCommand(command)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return argv, nil
}

// lockedWriter makes each Write one uninterrupted write of w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
