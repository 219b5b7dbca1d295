package initproc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseSupervisorConf(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, got []ProgramConfig)
		wantErr string
	}{
		{
			name: "rostictl's template",
			in: `# This file is gonna be rewritten by rostictl

[program:app]
command=/srv/app/server --port 8080
environment=PATH="/srv/bin/primary_tech:/usr/local/bin:/usr/bin:/bin:/srv/.npm-packages/bin"
autostart=true
autorestart=true
directory=/srv/app
process_name=app
stdout_logfile=/srv/log/app.log
stdout_logfile_maxbytes=2MB
stdout_logfile_backups=5
stdout_capture_maxbytes=2MB
stdout_events_enabled=false
redirect_stderr=true
stopasgroup=true
killasgroup=true
`,
			check: func(t *testing.T, got []ProgramConfig) {
				p := got[0]
				if p.Name != "app" || p.Command != "/srv/app/server --port 8080" || p.Directory != "/srv/app" || p.AutoRestart != "true" || !p.RedirectStderr {
					t.Errorf("got %+v", p)
				}
				if want := []string{"PATH=/srv/bin/primary_tech:/usr/local/bin:/usr/bin:/bin:/srv/.npm-packages/bin"}; !reflect.DeepEqual(p.Environment, want) {
					t.Errorf("environment %q, want %q", p.Environment, want)
				}
				if p.Stdout != (LogTarget{Path: "/srv/log/app.log", MaxBytes: 2 << 20, Backups: 5}) {
					t.Errorf("stdout %+v", p.Stdout)
				}
			},
		},
		{
			name: "defaults, several programs, other sections ignored",
			in:   "[supervisord]\nnodaemon=true\n\n[program:a]\ncommand = ./a ; a comment\n\n[program:b]\ncommand: ./b\nautostart=false\nautorestart=unexpected\nexitcodes=0,2\nstopsignal=INT\nstartsecs=0\n",
			check: func(t *testing.T, got []ProgramConfig) {
				if len(got) != 2 {
					t.Fatalf("got %d programs", len(got))
				}
				a, b := got[0], got[1]
				if a.Command != "./a" || !a.AutoStart || a.AutoRestart != "unexpected" || a.StartWait != time.Second || a.StopSignal != unix.SIGTERM || a.Stdout.Path != "" {
					t.Errorf("a %+v", a)
				}
				if b.AutoStart || !reflect.DeepEqual(b.ExitCodes, []int{0, 2}) || b.StopSignal != unix.SIGINT || b.StartWait != 0 {
					t.Errorf("b %+v", b)
				}
			},
		},
		{
			name: "environment with commas in quotes and expansions",
			in:   "[program:w]\ncommand=./w %(program_name)s\nenvironment=A=\"x,y\",B=2, C='q'\nstdout_logfile=/srv/log/%(program_name)s.log\n",
			check: func(t *testing.T, got []ProgramConfig) {
				if want := []string{"A=x,y", "B=2", "C=q"}; !reflect.DeepEqual(got[0].Environment, want) {
					t.Errorf("environment %q, want %q", got[0].Environment, want)
				}
				if got[0].Command != "./w w" || got[0].Stdout.Path != "/srv/log/w.log" {
					t.Errorf("got %+v", got[0])
				}
			},
		},
		{name: "no command", in: "[program:x]\nautostart=true\n", wantErr: "command is required"},
		{name: "bad bool", in: "[program:x]\ncommand=a\nautostart=maybe\n", wantErr: "autostart"},
		{name: "numprocs", in: "[program:x]\ncommand=a\nnumprocs=2\n", wantErr: "numprocs"},
		{name: "bad name", in: "[program:a b]\ncommand=a\n", wantErr: "program name"},
		{name: "key outside section", in: "command=a\n", wantErr: "outside of a section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSupervisorConf(strings.NewReader(tt.in), "/srv/conf/supervisor.d/x.conf")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

// initHarness runs init with programs in temporary dirs and no main
// process, as in a container whose image names no command.
type initHarness struct {
	confDir, crontab, appDir string
	stdout, stderr           *os.File
	minutes                  chan time.Time
	stop                     chan struct{}
	done                     chan int
}

func startInit(t *testing.T) *initHarness {
	t.Helper()
	dir := t.TempDir()
	h := &initHarness{
		confDir: filepath.Join(dir, "conf"),
		crontab: filepath.Join(dir, ".cron", "crontab"),
		appDir:  filepath.Join(dir, "app"),
		minutes: make(chan time.Time),
		stop:    make(chan struct{}),
		done:    make(chan int, 1),
	}
	for _, d := range []string{h.appDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if h.stdout, err = os.Create(filepath.Join(dir, "stdout")); err != nil {
		t.Fatal(err)
	}
	if h.stderr, err = os.Create(filepath.Join(dir, "stderr")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	socket := "@rosti-test-" + hex.EncodeToString(b)
	t.Setenv(EnvControlSocket, socket)
	go func() {
		h.done <- runInit(initOptions{
			dir: h.appDir, stdout: h.stdout, stderr: h.stderr, diag: h.stderr, stop: h.stop,
			programs: &programOptions{
				confDir: h.confDir, appDir: h.appDir, crontab: h.crontab, control: socket,
				minutes: func(stop <-chan struct{}) <-chan time.Time {
					out := make(chan time.Time)
					go func() {
						defer close(out)
						for {
							select {
							case m := <-h.minutes:
								out <- m
							case <-stop:
								return
							}
						}
					}()
					return out
				},
			},
		})
	}()
	t.Cleanup(func() {
		close(h.stop)
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Error("init did not stop")
		}
	})
	// Wait for the control socket.
	waitFor(t, "init's control socket", func() bool {
		_, code := h.ctl(t, "status")
		return code == 0
	})
	if fi, err := os.Stat(filepath.Join(h.confDir, "supervisor.d")); err != nil || !fi.IsDir() {
		t.Fatalf("init made no supervisor.d for rostictl to write to: %v", err)
	}
	return h
}

func (h *initHarness) ctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Supervisorctl(args, &out, &errOut)
	return out.String() + errOut.String(), code
}

func (h *initHarness) writeConf(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.confDir, "supervisor.d", name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A program written into the config dir starts on `supervisorctl update`,
// without init starting again; its output reaches its log file and init's
// output; stop, start, restart and removal work as supervisorctl's do.
func TestSupervisorctlUpdateStartsNewPrograms(t *testing.T) {
	h := startInit(t)
	logFile := filepath.Join(h.appDir, "..", "log", "hello.log")

	out, code := h.ctl(t, "reread")
	if code != 0 || out != "No config updates to processes\n" {
		t.Fatalf("reread on empty dir: %d %q", code, out)
	}
	h.writeConf(t, "rostictl.conf", "[program:hello]\ncommand=echo hello from $SUPERVISOR_PROCESS_NAME $GREETING; exec sleep 1000\nenvironment=GREETING=\"hi, there\"\nstartsecs=0\nstdout_logfile="+logFile+"\nredirect_stderr=true\n")
	h.writeConf(t, "broken.conf", "[program:broken]\nautostart=true\n")

	out, code = h.ctl(t, "reread")
	if !strings.Contains(out, "hello: available\n") || !strings.Contains(out, "broken.conf:1: [program:broken]: command is required") || code != 1 {
		t.Fatalf("reread: %d %q", code, out)
	}
	out, _ = h.ctl(t, "update")
	if !strings.Contains(out, "hello: added process group\n") {
		t.Fatalf("update: %q", out)
	}
	waitFor(t, "hello RUNNING", func() bool {
		out, _ := h.ctl(t, "status", "hello")
		return strings.Contains(out, "RUNNING")
	})
	waitFor(t, "hello's log file", func() bool { return readFile(logFile) == "hello from hello hi, there\n" })
	waitFor(t, "hello's line in init's output", func() bool {
		return strings.Contains(readFile(h.stdout.Name()), "[hello] hello from hello hi, there\n")
	})

	tests := []struct {
		args     []string
		want     string
		wantCode int
	}{
		{args: []string{"stop", "hello"}, want: "hello: stopped\n"},
		// Told, but exit 0, as supervisorctl 4 does: only a failure is an error.
		{args: []string{"stop", "hello"}, want: "hello: ERROR (not running)\n"},
		{args: []string{"status"}, want: "STOPPED", wantCode: 3},
		{args: []string{"start", "hello"}, want: "hello: started\n"},
		{args: []string{"start", "hello"}, want: "hello: ERROR (already started)\n"},
		{args: []string{"restart", "hello"}, want: "hello: stopped\nhello: started\n"},
		{args: []string{"status", "hello"}, want: "RUNNING"},
		{args: []string{"-c", "/srv/conf/supervisord.conf", "--serverurl=unix:///tmp/s.sock", "status"}, want: "RUNNING"},
		{args: []string{"-i"}, want: "option -i is not supported", wantCode: 2},
		{args: []string{"tail", "hello"}, want: "hello from hello hi, there\n"},
		{args: []string{"tail", "-5", "hello", "stderr"}, want: "here\n"},
		{args: []string{"tail", "-f", "hello"}, want: "follow the app's logs", wantCode: 2},
		{args: []string{"stop", "nope"}, want: "nope: ERROR (no such process)\n"},
		{args: []string{"start", "nope"}, want: "nope: ERROR (no such process)\n", wantCode: 1},
		{args: []string{"restart", "nope"}, want: "nope: ERROR (no such process)\n", wantCode: 1},
		{args: []string{"frobnicate"}, want: "Unknown syntax", wantCode: 2},
	}
	for _, tt := range tests {
		out, code := h.ctl(t, tt.args...)
		if !strings.Contains(out, tt.want) || code != tt.wantCode {
			t.Errorf("supervisorctl %s: %d %q, want %d %q", strings.Join(tt.args, " "), code, out, tt.wantCode, tt.want)
		}
	}

	if err := os.Remove(filepath.Join(h.confDir, "supervisor.d", "rostictl.conf")); err != nil {
		t.Fatal(err)
	}
	out, _ = h.ctl(t, "update")
	if !strings.Contains(out, "hello: stopped\nhello: removed process group\n") {
		t.Fatalf("update after removal: %q", out)
	}
	if out, _ := h.ctl(t, "status"); out != "" {
		t.Fatalf("status after removal: %q", out)
	}
}

// A program that keeps dying right after it starts is retried startretries
// times with growing pauses, then left FATAL; autorestart restarts one that
// ran long enough.
func TestProgramRestartRules(t *testing.T) {
	h := startInit(t)
	counter := filepath.Join(h.appDir, "runs")
	h.writeConf(t, "p.conf", "[program:crashy]\ncommand=echo x >> "+counter+"; exit 3\nstartretries=1\n\n"+
		"[program:again]\ncommand=echo y >> "+counter+".again; exit 0\nstartsecs=0\nautorestart=true\n")
	h.ctl(t, "update")
	waitFor(t, "crashy FATAL", func() bool {
		out, _ := h.ctl(t, "status", "crashy")
		return strings.Contains(out, "FATAL")
	})
	if got := strings.Count(readFile(counter), "x"); got != 2 {
		t.Errorf("crashy ran %d times, want 2 (start and one retry)", got)
	}
	waitFor(t, "again restarted", func() bool { return strings.Count(readFile(counter+".again"), "y") >= 3 })
	if out, _ := h.ctl(t, "stop", "again"); !strings.Contains(out, "again: stopped") {
		t.Errorf("stop again: %q", out)
	}
}

func TestTech(t *testing.T) {
	tests := []struct {
		name     string
		have     string
		args     []string
		wantCode int
		want     string
	}{
		{name: "same tech", have: "binary", args: []string{"binary"}, want: "binary is ready"},
		{name: "no tech asked", have: "binary", args: nil, want: "runs the binary runtime"},
		{name: "empty tech asked", have: "node", args: []string{""}, want: "runs the node runtime"},
		{name: "other tech", have: "binary", args: []string{"php"}, wantCode: 1, want: `PATCH /api/v1/<company_id>/apps/<app_id>/   {"image"`},
		{name: "image not a runtime", have: "", args: []string{"node"}, wantCode: 1, want: "not one of the server's runtimes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvTech, tt.have)
			var out bytes.Buffer
			if code := Tech(tt.args, &out, &out); code != tt.wantCode || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("%d %q, want %d %q", code, out.String(), tt.wantCode, tt.want)
			}
		})
	}
}
