package initproc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ProgramConfig is one [program:NAME] section of a supervisord config file,
// with supervisord's defaults for what it leaves out.
type ProgramConfig struct {
	Name           string
	File           string // the file it came from
	Command        string
	Directory      string // "" is the app's tree
	Environment    []string
	AutoStart      bool
	AutoRestart    string // "true", "false" or "unexpected"
	ExitCodes      []int
	StartWait      time.Duration // startsecs: how long it must run to count as started
	StartRetries   int
	StopSignal     unix.Signal
	StopWait       time.Duration
	RedirectStderr bool
	Stdout, Stderr LogTarget
}

// LogTarget is where a program's stream is written besides init's own
// output: a file rotated by size, or nowhere ("" path).
type LogTarget struct {
	Path     string
	MaxBytes int64
	Backups  int
}

var programNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func defaultProgram(name, file string) ProgramConfig {
	return ProgramConfig{
		Name: name, File: file, AutoStart: true, AutoRestart: "unexpected", ExitCodes: []int{0},
		StartWait: time.Second, StartRetries: 3, StopSignal: unix.SIGTERM, StopWait: 10 * time.Second,
		Stdout: LogTarget{MaxBytes: 50 << 20, Backups: 10},
		Stderr: LogTarget{MaxBytes: 50 << 20, Backups: 10},
	}
}

// LoadPrograms reads every *.conf file of dir (as supervisord's
// `[include] files = /srv/conf/supervisor.d/*.conf` does). A file that
// cannot be read or parsed is reported in errs and contributes no program;
// a missing dir means no programs.
func LoadPrograms(dir string) (progs map[string]ProgramConfig, errs []error) {
	progs = map[string]ProgramConfig{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	sort.Strings(files)
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got, err := ParseSupervisorConf(f, file)
		f.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range got {
			if prev, dup := progs[p.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: program %q is also defined in %s; the first one is used", file, p.Name, prev.File))
				continue
			}
			progs[p.Name] = p
		}
	}
	return progs, errs
}

// ParseSupervisorConf reads the [program:NAME] sections of one supervisord
// config file (INI: `key = value` or `key: value`, `;` and `#` comments,
// indented continuation lines). Other sections are ignored: init is the
// supervisor, so its own settings do not apply.
func ParseSupervisorConf(r io.Reader, file string) ([]ProgramConfig, error) {
	type section struct {
		name string
		line int
		keys map[string]string
	}
	var sections []*section
	var cur *section
	var lastKey string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#' {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if cur != nil && lastKey != "" {
				cur.keys[lastKey] += "\n" + stripComment(trimmed)
				continue
			}
			return nil, fmt.Errorf("%s:%d: indented line outside of a value", file, n)
		}
		if strings.HasPrefix(trimmed, "[") {
			if !strings.HasSuffix(trimmed, "]") {
				return nil, fmt.Errorf("%s:%d: section header without ]", file, n)
			}
			cur = &section{name: strings.TrimSpace(trimmed[1 : len(trimmed)-1]), line: n, keys: map[string]string{}}
			sections = append(sections, cur)
			lastKey = ""
			continue
		}
		i := strings.IndexAny(trimmed, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("%s:%d: want key = value", file, n)
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: key outside of a section", file, n)
		}
		lastKey = strings.ToLower(strings.TrimSpace(trimmed[:i]))
		cur.keys[lastKey] = stripComment(strings.TrimSpace(trimmed[i+1:]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []ProgramConfig
	for _, s := range sections {
		name, ok := strings.CutPrefix(s.name, "program:")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if !programNameRE.MatchString(name) {
			return nil, fmt.Errorf("%s:%d: program name %q: use letters, digits, _, . and -", file, s.line, name)
		}
		p, err := programFromKeys(defaultProgram(name, file), s.keys)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: [program:%s]: %w", file, s.line, name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// stripComment drops an inline comment: supervisord treats " ;" as its start.
func stripComment(v string) string {
	if i := strings.Index(v, " ;"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

func programFromKeys(p ProgramConfig, keys map[string]string) (ProgramConfig, error) {
	expand := func(v string) string {
		v = strings.ReplaceAll(v, "%(program_name)s", p.Name)
		v = strings.ReplaceAll(v, "%(process_num)d", "0")
		v = strings.ReplaceAll(v, "%(process_num)s", "0")
		v = strings.ReplaceAll(v, "%(here)s", filepath.Dir(p.File))
		v = envRef.ReplaceAllStringFunc(v, func(m string) string { return os.Getenv(envRef.FindStringSubmatch(m)[1]) })
		return strings.ReplaceAll(v, "%%", "%")
	}
	var err error
	for key, raw := range keys {
		v := expand(raw)
		switch key {
		case "command":
			p.Command = v
		case "directory":
			p.Directory = v
		case "environment":
			if p.Environment, err = parseEnvironment(v); err != nil {
				return p, fmt.Errorf("environment: %w", err)
			}
		case "autostart":
			p.AutoStart, err = parseBool(v)
		case "autorestart":
			switch strings.ToLower(v) {
			case "unexpected":
				p.AutoRestart = "unexpected"
			default:
				var b bool
				if b, err = parseBool(v); err == nil {
					p.AutoRestart = strconv.FormatBool(b)
				}
			}
		case "exitcodes":
			p.ExitCodes = nil
			for _, c := range strings.Split(v, ",") {
				n, cerr := strconv.Atoi(strings.TrimSpace(c))
				if cerr != nil {
					return p, fmt.Errorf("exitcodes: %q is not a number", c)
				}
				p.ExitCodes = append(p.ExitCodes, n)
			}
		case "startsecs":
			p.StartWait, err = parseSeconds(v)
		case "startretries":
			p.StartRetries, err = strconv.Atoi(v)
		case "stopwaitsecs":
			p.StopWait, err = parseSeconds(v)
		case "stopsignal":
			p.StopSignal = unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(v), "SIG"))
			if p.StopSignal == 0 {
				return p, fmt.Errorf("stopsignal: unknown signal %q", v)
			}
		case "redirect_stderr":
			p.RedirectStderr, err = parseBool(v)
		case "stdout_logfile":
			p.Stdout.Path = logPath(v)
		case "stderr_logfile":
			p.Stderr.Path = logPath(v)
		case "stdout_logfile_maxbytes":
			p.Stdout.MaxBytes, err = parseBytes(v)
		case "stderr_logfile_maxbytes":
			p.Stderr.MaxBytes, err = parseBytes(v)
		case "stdout_logfile_backups":
			p.Stdout.Backups, err = strconv.Atoi(v)
		case "stderr_logfile_backups":
			p.Stderr.Backups, err = strconv.Atoi(v)
		case "numprocs":
			if v != "1" {
				return p, fmt.Errorf("numprocs: only 1 is supported; define one program per process")
			}
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", key, err)
		}
	}
	if strings.TrimSpace(p.Command) == "" {
		return p, fmt.Errorf("command is required")
	}
	return p, nil
}

var envRef = regexp.MustCompile(`%\(ENV_([A-Za-z_][A-Za-z0-9_]*)\)s`)

// logPath maps supervisord's special values: NONE and AUTO (a file in
// supervisord's own log dir) both mean only init's output here.
func logPath(v string) string {
	switch strings.ToUpper(v) {
	case "", "NONE", "AUTO":
		return ""
	}
	return v
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", v)
}

func parseSeconds(v string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}
	return time.Duration(n) * time.Second, nil
}

// parseBytes reads supervisord's sizes: 1024, 50KB, 2MB, 1GB.
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	u := strings.ToUpper(v)
	for suffix, m := range map[string]int64{"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30} {
		if strings.HasSuffix(u, suffix) {
			u, mult = strings.TrimSuffix(u, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 2MB", v)
	}
	return n * mult, nil
}

// parseEnvironment reads `KEY="value",KEY2=value2`: commas inside quotes
// belong to the value.
func parseEnvironment(v string) ([]string, error) {
	var env []string
	for rest := strings.TrimSpace(v); rest != ""; {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("want KEY=value pairs separated by commas, got %q", rest)
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t\n")
		var val string
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
			end := strings.IndexByte(rest[1:], rest[0])
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in the value of %s", key)
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		env = append(env, key+"="+val)
		rest = strings.TrimLeft(rest, " \t\n")
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("want a comma after the value of %s", key)
			}
			rest = strings.TrimLeft(rest[1:], " \t\n")
		}
	}
	return env, nil
}
