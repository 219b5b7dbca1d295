package initproc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCronSchedule(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04 Mon", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		line string
		at   string
		want bool
	}{
		{"* * * * * x", "2026-11-30 06:31 Mon", true},
		{"*/5 * * * * x", "2026-11-30 06:35 Mon", true},
		{"*/5 * * * * x", "2026-11-30 06:36 Mon", false},
		{"5-20/5 * * * * x", "2026-11-30 06:20 Mon", true},
		{"5-20/5 * * * * x", "2026-11-30 06:25 Mon", false},
		{"0 9 * * mon-fri x", "2026-11-30 09:00 Mon", true},
		{"0 9 * * mon-fri x", "2026-11-29 09:00 Sun", false},
		{"0 0 * * 7 x", "2026-11-29 00:00 Sun", true},
		{"0 0 * * 0 x", "2026-11-29 00:00 Sun", true},
		{"30 4 1,15 * * x", "2026-11-15 04:30 Sun", true},
		// Day of month and day of week both restricted: either matches.
		{"0 0 1 * mon x", "2026-11-30 00:00 Mon", true},
		{"0 0 1 * mon x", "2026-11-29 00:00 Sun", false},
		{"0 12 * dec * x", "2026-12-01 12:00 Tue", true},
		{"0 12 * DEC * x", "2026-11-01 12:00 Sun", false},
		{"@hourly x", "2026-11-30 07:00 Mon", true},
		{"@hourly x", "2026-11-30 07:01 Mon", false},
		{"@daily x", "2026-11-30 00:00 Mon", true},
		{"@weekly x", "2026-11-29 00:00 Sun", true},
		{"@monthly x", "2026-12-01 00:00 Tue", true},
		{"@yearly x", "2027-01-01 00:00 Fri", true},
	}
	for _, tt := range tests {
		t.Run(tt.line+" at "+tt.at, func(t *testing.T) {
			jobs, _, err := ParseCrontab(strings.NewReader(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			if got := jobs[0].sched.matches(at(tt.at)); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseCrontab(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantJobs []string // "spec|command"
		wantEnv  []string
		wantErr  string
	}{
		{
			name:     "jobs, env, comments",
			in:       "# m h dom mon dow command\nSHELL=/bin/sh\nGREETING = \"hi there\"\n\n*/10 * * * *   cd /srv/app &&  ./job.sh  --x\n@reboot echo up\n",
			wantJobs: []string{"*/10 * * * *|cd /srv/app &&  ./job.sh  --x", "@reboot|echo up"},
			wantEnv:  []string{"SHELL=/bin/sh", "GREETING=hi there"},
		},
		{name: "minute out of range", in: "60 * * * * x", wantErr: "line 1: minute"},
		{name: "too few fields", in: "* * * * x", wantErr: "five schedule fields"},
		{name: "unknown macro", in: "@often x", wantErr: "unknown @often"},
		{name: "backwards range", in: "* 5-1 * * * x", wantErr: "backwards"},
		{name: "zero step", in: "*/0 * * * * x", wantErr: "step"},
		{name: "bad name", in: "* * * foo * x", wantErr: "month"},
		{name: "not a job nor env", in: "hello world", wantErr: "NAME=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, env, err := ParseCrontab(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range jobs {
				got = append(got, j.Spec+"|"+j.Command)
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantJobs, "\n") || strings.Join(env, "\n") != strings.Join(tt.wantEnv, "\n") {
				t.Fatalf("jobs %q env %q, want %q %q", got, env, tt.wantJobs, tt.wantEnv)
			}
		})
	}
}

func TestCrontabCommand(t *testing.T) {
	dir := t.TempDir()
	installed := filepath.Join(dir, ".cron", "crontab")
	good := filepath.Join(dir, "crontab")
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(good, []byte("* * * * * echo hi\n"), 0o644)
	_ = os.WriteFile(bad, []byte("* * * * echo hi\n"), 0o644)
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantOut    string
		wantErr    string
		wantInstal string
	}{
		{name: "nothing installed", args: []string{"-l"}, wantCode: 1, wantErr: "no crontab installed"},
		{name: "install", args: []string{good}, wantInstal: "* * * * * echo hi\n"},
		{name: "list", args: []string{"-l"}, wantOut: "* * * * * echo hi\n", wantInstal: "* * * * * echo hi\n"},
		{name: "invalid keeps the installed one", args: []string{bad}, wantCode: 1, wantErr: "line 1", wantInstal: "* * * * * echo hi\n"},
		{name: "stdin", args: []string{"-"}, stdin: "@daily true\n", wantInstal: "@daily true\n"},
		{name: "edit", args: []string{"-e"}, wantCode: 1, wantErr: "not supported", wantInstal: "@daily true\n"},
		{name: "remove", args: []string{"-r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Crontab(installed, tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if code != tt.wantCode || out.String() != tt.wantOut || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("%d %q %q, want %d %q %q", code, out.String(), errOut.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if got := readFile(installed); got != tt.wantInstal {
				t.Fatalf("installed %q, want %q", got, tt.wantInstal)
			}
		})
	}
}

// Jobs run at the minutes the clock delivers when their schedule matches,
// with the crontab's environment, their output in init's output; a newly
// installed crontab applies from the next minute.
func TestCronRunsDueJobs(t *testing.T) {
	h := startInit(t)
	write := func(content string) {
		src := filepath.Join(h.appDir, "crontab")
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		if code := Crontab(h.crontab, []string{src}, nil, &errOut, &errOut); code != 0 {
			t.Fatalf("crontab: %s", errOut.String())
		}
	}
	write("WHO=cron\n*/15 * * * * echo quarter $WHO\n0 3 * * * echo three\n")
	h.minutes <- time.Date(2026, 11, 30, 6, 45, 0, 0, time.Local)
	waitFor(t, "the quarter job's output", func() bool {
		return strings.Contains(readFile(h.stdout.Name()), "[cron:2] quarter cron\n")
	})
	write("* * * * * echo every minute\n")
	h.minutes <- time.Date(2026, 11, 30, 3, 0, 0, 0, time.Local)
	waitFor(t, "the new crontab's job", func() bool {
		return strings.Contains(readFile(h.stdout.Name()), "[cron:1] every minute\n")
	})
	if strings.Contains(readFile(h.stdout.Name()), "three") {
		t.Error("a job of the replaced crontab ran")
	}
}

// Of several containers of an app, only the one holding the lock in the
// volume runs the jobs.
func TestCronLockIsExclusive(t *testing.T) {
	file := filepath.Join(t.TempDir(), "crontab")
	a := newCron(file, shellPath, "/", nil, nil, nil)
	b := newCron(file, shellPath, "/", nil, nil, nil)
	if !a.holdLock() {
		t.Fatal("first cron did not get the lock")
	}
	if b.holdLock() {
		t.Fatal("second cron got the lock too")
	}
	a.lock.Close()
	if !b.holdLock() {
		t.Fatal("second cron did not get the lock once the first let go")
	}
	b.lock.Close()
}
