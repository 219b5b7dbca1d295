package initproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	// Containers rarely have zoneinfo: with it built in, TZ in the app's
	// environment sets the zone cron lines are read in (UTC otherwise).
	_ "time/tzdata"

	"golang.org/x/sys/unix"
)

// DefaultCrontab is where `crontab FILE` installs an app's crontab: in its
// volume, so the jobs survive new containers, and outside /srv/app and
// /srv/.rosti, which deploys replace.
const DefaultCrontab = "/srv/.cron/crontab"

// CronJob is one line of a crontab.
type CronJob struct {
	Line    int
	Spec    string // the schedule as written
	Command string
	reboot  bool
	sched   schedule
}

// schedule is a parsed 5-field cron schedule: one bit per allowed value.
type schedule struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
}

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseCrontab reads a user crontab: `MIN HOUR DOM MON DOW command` lines
// (numbers, *, lists, ranges, /steps, month and day names), the @hourly
// style macros and @reboot, NAME=value environment lines, # comments.
func ParseCrontab(r io.Reader) (jobs []CronJob, env []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if c := line[0]; c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') {
			name, value, ok := strings.Cut(line, "=")
			name = strings.TrimSpace(name)
			if !ok || strings.ContainsAny(name, " \t") {
				return nil, nil, fmt.Errorf("line %d: want a schedule (such as */5 * * * *) or NAME=value", n)
			}
			value = strings.TrimSpace(value)
			if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
				value = value[1 : len(value)-1]
			}
			env = append(env, name+"="+value)
			continue
		}
		job, err := parseCronLine(line)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n, err)
		}
		job.Line = n
		jobs = append(jobs, job)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return jobs, env, nil
}

func parseCronLine(line string) (CronJob, error) {
	if line[0] == '@' {
		word, command, _ := strings.Cut(line, " ")
		command = strings.TrimSpace(command)
		if command == "" {
			return CronJob{}, fmt.Errorf("%s: no command", word)
		}
		if word == "@reboot" {
			return CronJob{Spec: word, Command: command, reboot: true}, nil
		}
		spec, ok := macros[word]
		if !ok {
			return CronJob{}, fmt.Errorf("unknown %s; use @reboot, @yearly, @monthly, @weekly, @daily or @hourly", word)
		}
		s, err := parseSchedule(strings.Fields(spec))
		return CronJob{Spec: word, Command: command, sched: s}, err
	}
	fields := strings.Fields(line)
	if len(fields) < 6 {
		return CronJob{}, errors.New("want five schedule fields and a command")
	}
	s, err := parseSchedule(fields[:5])
	if err != nil {
		return CronJob{}, err
	}
	// The command is the rest of the line as written, spaces included.
	rest := line
	for range 5 {
		rest = strings.TrimLeft(rest, " \t")
		rest = rest[strings.IndexAny(rest, " \t"):]
	}
	return CronJob{Spec: strings.Join(fields[:5], " "), Command: strings.TrimSpace(rest), sched: s}, nil
}

func parseSchedule(f []string) (schedule, error) {
	var s schedule
	var err error
	fields := []struct {
		name     string
		bits     *uint64
		min, max int
		names    []string
	}{
		{"minute", &s.minute, 0, 59, nil},
		{"hour", &s.hour, 0, 23, nil},
		{"day of month", &s.dom, 1, 31, nil},
		{"month", &s.month, 1, 12, monthNames},
		{"day of week", &s.dow, 0, 7, dayNames},
	}
	for i, fd := range fields {
		if *fd.bits, err = parseField(f[i], fd.min, fd.max, fd.names); err != nil {
			return s, fmt.Errorf("%s %q: %w", fd.name, f[i], err)
		}
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1 // 7 is Sunday too
	}
	s.domStar, s.dowStar = f[2] == "*" || f[2] == "?", f[4] == "*" || f[4] == "?"
	return s, nil
}

func parseField(f string, min, max int, names []string) (uint64, error) {
	var bits uint64
	value := func(v string) (int, error) {
		for i, n := range names {
			if strings.EqualFold(v, n) {
				return i + min, nil
			}
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return 0, fmt.Errorf("%q is not a value from %d to %d", v, min, max)
		}
		return n, nil
	}
	for _, item := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			var err error
			if step, err = strconv.Atoi(stepStr); err != nil || step < 1 {
				return 0, fmt.Errorf("step %q is not a positive number", stepStr)
			}
		}
		lo, hi := min, max
		switch {
		case rng == "*" || rng == "?":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a); err != nil {
				return 0, err
			}
			if hi, err = value(b); err != nil {
				return 0, err
			}
			if hi < lo {
				return 0, fmt.Errorf("range %s goes backwards", rng)
			}
		default:
			v, err := value(rng)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep {
				hi = max
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

// matches follows cron: when both day of month and day of week are
// restricted, a day matching either one runs the job.
func (s schedule) matches(t time.Time) bool {
	if s.minute&(1<<uint(t.Minute())) == 0 || s.hour&(1<<uint(t.Hour())) == 0 || s.month&(1<<uint(t.Month())) == 0 {
		return false
	}
	dom, dow := s.dom&(1<<uint(t.Day())) != 0, s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Cron runs the jobs of an installed crontab as init's own user (the app's)
// through the shell, their output going to init's output. The crontab is
// read again whenever it changed, before each minute's jobs. When several
// containers of an app run cron, a lock in the volume lets only one of them
// run the jobs.
type Cron struct {
	file   string
	shell  string
	dir    string
	reaper *reaper
	out    io.Writer
	diag   io.Writer

	lock    *os.File
	loaded  []byte
	jobs    []CronJob
	env     []string
	started bool
}

func newCron(file, shell, dir string, r *reaper, out, diag io.Writer) *Cron {
	return &Cron{file: file, shell: shell, dir: dir, reaper: r, out: out, diag: diag}
}

// run runs the jobs due at each time minutes delivers (the injectable
// clock: minuteTicks in production), until minutes is closed.
func (c *Cron) run(minutes <-chan time.Time) {
	defer func() {
		if c.lock != nil {
			c.lock.Close()
		}
	}()
	c.reload()
	if c.holdLock() {
		for _, j := range c.jobs {
			if j.reboot {
				c.start(j)
			}
		}
	}
	for t := range minutes {
		c.reload()
		if len(c.jobs) == 0 || !c.holdLock() {
			continue
		}
		for _, j := range c.jobs {
			if !j.reboot && j.sched.matches(t) {
				c.start(j)
			}
		}
	}
}

// minuteTicks delivers the start of every minute of the wall clock, until
// stop is closed.
func minuteTicks(stop <-chan struct{}) <-chan time.Time {
	ch := make(chan time.Time)
	go func() {
		defer close(ch)
		for {
			now := time.Now()
			next := now.Truncate(time.Minute).Add(time.Minute)
			timer := time.NewTimer(next.Sub(now))
			select {
			case <-timer.C:
			case <-stop:
				timer.Stop()
				return
			}
			select {
			case ch <- next:
			case <-stop:
				return
			}
		}
	}()
	return ch
}

func (c *Cron) reload() {
	raw, err := os.ReadFile(c.file)
	if errors.Is(err, os.ErrNotExist) {
		raw, err = nil, nil
	}
	if err != nil {
		fmt.Fprintln(c.diag, "rosti init: cron:", err)
		return
	}
	if c.started && bytes.Equal(raw, c.loaded) {
		return
	}
	c.started, c.loaded = true, raw
	jobs, env, err := ParseCrontab(bytes.NewReader(raw))
	if err != nil {
		fmt.Fprintf(c.diag, "rosti init: cron: %s: %v; no jobs run until it is fixed\n", c.file, err)
		c.jobs, c.env = nil, nil
		return
	}
	c.jobs, c.env = jobs, env
	if len(jobs) > 0 {
		fmt.Fprintf(c.diag, "rosti init: cron: %d jobs from %s\n", len(jobs), c.file)
	}
}

// holdLock takes (or keeps) the app-wide cron lock beside the crontab.
func (c *Cron) holdLock() bool {
	if c.lock != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(c.file), "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	c.lock = f
	return true
}

func (c *Cron) start(j CronJob) {
	if fi, err := os.Stat(c.shell); err != nil || fi.IsDir() {
		fmt.Fprintf(c.diag, "rosti init: cron: line %d not run: this image has no %s\n", j.Line, c.shell)
		return
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	defer w.Close()
	prefix := fmt.Sprintf("[cron:%d] ", j.Line)
	go func() {
		defer r.Close()
		CopyLines(&prefixedTee{out: c.out, prefix: prefix}, r)
	}()
	_, exited, err := c.reaper.start(c.shell, []string{c.shell, "-c", j.Command}, &os.ProcAttr{
		Dir:   workDir(c.dir),
		Env:   append(os.Environ(), c.env...),
		Files: []*os.File{devnull, w, w},
	})
	if err != nil {
		fmt.Fprintf(c.diag, "rosti init: cron: line %d: %v\n", j.Line, err)
		return
	}
	go func() {
		if code := exitCode(<-exited); code != 0 {
			fmt.Fprintf(c.diag, "rosti init: cron: line %d exited with status %d\n", j.Line, code)
		}
	}()
}

// Crontab is the crontab command: `crontab FILE` (or - for stdin) checks
// and installs FILE as the app's crontab, -l prints it, -r removes it.
func Crontab(installed string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "crontab: "+format+"\n", a...)
		return 1
	}
	if len(args) != 1 {
		return fail("usage: crontab FILE | crontab - | crontab -l | crontab -r")
	}
	switch args[0] {
	case "-l":
		raw, err := os.ReadFile(installed)
		if errors.Is(err, os.ErrNotExist) {
			return fail("no crontab installed")
		} else if err != nil {
			return fail("%v", err)
		}
		_, _ = stdout.Write(raw)
		return 0
	case "-r":
		if err := os.Remove(installed); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail("%v", err)
		}
		return 0
	case "-e":
		return fail("-e is not supported: edit a file (such as /srv/conf/crontab) and install it with `crontab FILE`")
	}
	var raw []byte
	var err error
	if args[0] == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		raw, err = os.ReadFile(args[0])
	}
	if err != nil {
		return fail("%v", err)
	}
	if _, _, err := ParseCrontab(bytes.NewReader(raw)); err != nil {
		return fail("%s: %v; nothing installed", args[0], err)
	}
	if err := os.MkdirAll(filepath.Dir(installed), 0o700); err != nil {
		return fail("%v", err)
	}
	tmp := installed + ".new"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fail("%v", err)
	}
	if err := os.Rename(tmp, installed); err != nil {
		return fail("%v", err)
	}
	return 0
}
