package initproc

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{name: "web and worker", in: "web: ./server --port $PORT\nworker: ./jobs\n", want: map[string]string{"web": "./server --port $PORT", "worker": "./jobs"}},
		{name: "comments and blanks", in: "# app\n\n  web:   python app.py  \n", want: map[string]string{"web": "python app.py"}},
		{name: "colon in command", in: "web: gunicorn -b 0.0.0.0:$PORT app:app", want: map[string]string{"web": "gunicorn -b 0.0.0.0:$PORT app:app"}},
		{name: "later line wins", in: "web: a\nweb: b\n", want: map[string]string{"web": "b"}},
		{name: "dash and underscore", in: "release-task_1: x", want: map[string]string{"release-task_1": "x"}},
		{name: "empty file", in: "", want: map[string]string{}},
		{name: "no colon", in: "web ./server", wantErr: true},
		{name: "empty command", in: "web:", wantErr: true},
		{name: "bad type", in: "we b: x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcfile(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "words", in: "  ./server  -p 80 ", want: []string{"./server", "-p", "80"}},
		{name: "double quotes", in: `echo "a b" c`, want: []string{"echo", "a b", "c"}},
		{name: "single quotes keep backslash", in: `echo 'a\b'`, want: []string{"echo", `a\b`}},
		{name: "escaped space", in: `echo a\ b`, want: []string{"echo", "a b"}},
		{name: "empty quotes", in: `x ""`, want: []string{"x", ""}},
		{name: "unterminated", in: `echo "a`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitCommand(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveCommand(t *testing.T) {
	dir := t.TempDir()
	procfile := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(procfile, []byte("web: serve --port $PORT\nworker: work 'a b'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shell := filepath.Join(dir, "sh")
	if err := os.WriteFile(shell, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		procfile string
		ptype    string
		shell    string
		fallback []string
		want     []string
		wantErr  bool
	}{
		{name: "procfile line through shell", procfile: procfile, ptype: "web", shell: shell, want: []string{shell, "-c", "serve --port $PORT"}},
		{name: "procfile line split without shell", procfile: procfile, ptype: "worker", shell: filepath.Join(dir, "nosh"), want: []string{"work", "a b"}},
		{name: "no line falls back", procfile: procfile, ptype: "clock", shell: shell, fallback: []string{"def"}, want: []string{"def"}},
		{name: "no procfile falls back", procfile: filepath.Join(dir, "none"), ptype: "web", shell: shell, fallback: []string{"def", "x"}, want: []string{"def", "x"}},
		{name: "nothing to run", procfile: filepath.Join(dir, "none"), ptype: "web", shell: shell, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveCommand(tt.procfile, tt.ptype, tt.shell, tt.fallback)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSuperviseExitCodes(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want int
	}{
		{name: "success", argv: []string{"/bin/sh", "-c", "exit 0"}, want: 0},
		{name: "status", argv: []string{"/bin/sh", "-c", "exit 7"}, want: 7},
		{name: "killed by signal", argv: []string{"/bin/sh", "-c", "kill -KILL $$"}, want: 128 + 9},
		{name: "missing binary", argv: []string{"/nonexistent/app"}, want: 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Supervise(tt.argv, t.TempDir(), os.Stdout, os.Stderr, os.Stderr); got != tt.want {
				t.Fatalf("exit code %d, want %d", got, tt.want)
			}
		})
	}
}

// An orphan of the app (a grandchild whose parent exited) is reparented to
// init and must be reaped, not left a zombie.
func TestSuperviseReapsOrphans(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "orphan")
	script := `(sh -c 'echo $$ > ` + pidFile + `.tmp; mv ` + pidFile + `.tmp ` + pidFile + `' &); while [ ! -s ` + pidFile + ` ]; do :; done; exit 3`
	if got := Supervise([]string{"/bin/sh", "-c", script}, dir, os.Stdout, os.Stderr, os.Stderr); got != 3 {
		t.Fatalf("exit code %d, want 3", got)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // gone: reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d still there: %s", pid, stat)
		}
		// A zombie reparented to us would stay forever; anything else is on its way out.
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGTERM sent to init reaches the app, which can exit cleanly.
func TestSuperviseForwardsSignals(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	script := `trap 'exit 42' TERM; touch ` + ready + `; while :; do sleep 0.05; done`
	done := make(chan int, 1)
	go func() { done <- Supervise([]string{"/bin/sh", "-c", script}, dir, os.Stdout, os.Stderr, os.Stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("app never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 42 {
			t.Fatalf("exit code %d, want 42 (trap ran)", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("app did not exit after SIGTERM")
	}
}

func TestRotatingFile(t *testing.T) {
	dir := t.TempDir()
	rf, err := OpenRotatingFile(dir, 20, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := rf.Write([]byte("line " + strconv.Itoa(i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	rf.Close()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	if got, want := read(LogFileName), "line 8\nline 9\n"; got != want {
		t.Errorf("live = %q, want %q", got, want)
	}
	if got, want := read(LogFileName+".1"), "line 6\nline 7\n"; got != want {
		t.Errorf(".1 = %q, want %q", got, want)
	}
	if got, want := read(LogFileName+".2"), "line 4\nline 5\n"; got != want {
		t.Errorf(".2 = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, LogFileName+".3")); err == nil {
		t.Error("kept more than 2 rotated files")
	}
}

// --dir points init at another tree, as a deploy does for the release line
// of a staged tree: the Procfile is read there and the command starts there.
func TestRunInAppDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("release: pwd > ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := Run(Config{ProcessType: "release", AppDir: dir}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	got, err := os.ReadFile(filepath.Join(dir, "ran"))
	if err != nil || strings.TrimSpace(string(got)) != dir {
		t.Fatalf("ran in %q (%v), want %s", got, err, dir)
	}
}

// TestRelativeCommandsStartInTheirDir: "./server" in a Procfile or a
// program means the app's tree, wherever init itself runs.
func TestRelativeCommandsStartInTheirDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"server", "bin/worker"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, want string
	}{
		{"./server", filepath.Join(dir, "server")},
		{"bin/worker", filepath.Join(dir, "bin", "worker")},
		{"sh", ""}, // on the PATH: wherever it is
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookPathIn(dir, tc.name)
			if err != nil || (tc.want != "" && got != tc.want) {
				t.Fatalf("lookPathIn(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		})
	}
	if _, err := lookPathIn(dir, "./missing"); err == nil {
		t.Fatal("a missing relative program was found")
	}
}
