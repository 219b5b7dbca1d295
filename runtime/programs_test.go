package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

// In the default runtime's image, a supervisor program written into the
// volume (as rostictl does over SFTP) starts on `supervisorctl update` run in the container, without a
// new container; a crontab installed with `crontab FILE` runs its line as
// the app's uid, and the outputs of both reach the container's log.
func TestSupervisorProgramsAndCronInContainer(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	const uid = 10021
	image, err := d.EnsureShellImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// No command: the image has none and there is no Procfile, so init
	// runs only the programs and cron jobs.
	spec := httpSpec(t, "sv-web-1", image, "g1", uid)
	before, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		code, err := d.Exec(ctx, spec.Name, rtm.ExecSpec{
			Args: []string{"/bin/sh", "-c", strings.Join(args, " ")}, // as an SSH command runs
			UID:  uid, GID: uid, Stdout: &out, Stderr: &errOut,
		})
		if err != nil || code != 0 {
			t.Fatalf("%s: exit %d, %v: %s%s", strings.Join(args, " "), code, err, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	writeVolume := func(path, content string) {
		t.Helper()
		full := filepath.Join(spec.VolumeDir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Dir(filepath.Dir(full)), filepath.Dir(full), full} {
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	logs := func() string {
		var buf bytes.Buffer
		_ = d.Logs(ctx, spec.Name, 1000, false, &buf)
		return buf.String()
	}

	// init answers supervisorctl once it loaded the programs configured at
	// its start: from then on a new program waits for reread and update.
	eventually(t, 30*time.Second, "supervisorctl answering", func() error {
		code, err := d.Exec(ctx, spec.Name, rtm.ExecSpec{Args: []string{"supervisorctl", "status"}, UID: uid, GID: uid})
		if err != nil || code == 2 {
			return fmt.Errorf("exit %d, %v", code, err)
		}
		return nil
	})
	writeVolume("conf/supervisor.d/rostictl.conf", `[program:hello]
command=/bin/sh -c 'echo hello from uid $(id -u); exec sleep 1000'
directory=/srv
autorestart=true
stdout_logfile=/srv/log/hello.log
redirect_stderr=true
`)
	if out := run("supervisorctl", "reread"); out != "hello: available\n" {
		t.Fatalf("reread: %q", out)
	}
	if out := run("supervisorctl", "update"); out != "hello: added process group\n" {
		t.Fatalf("update: %q", out)
	}
	want := fmt.Sprintf("hello from uid %d", uid)
	eventually(t, 30*time.Second, "the program's line in the container log", func() error {
		if l := logs(); !strings.Contains(l, "[hello] "+want) {
			return fmt.Errorf("log: %q", l)
		}
		return nil
	})
	eventually(t, 10*time.Second, "the program's log file", func() error {
		if b, _ := os.ReadFile(filepath.Join(spec.VolumeDir, "log", "hello.log")); string(b) != want+"\n" {
			return fmt.Errorf("hello.log: %q", b)
		}
		return nil
	})
	eventually(t, 10*time.Second, "hello RUNNING", func() error {
		if out := run("supervisorctl", "status", "||", "true"); !strings.Contains(out, "RUNNING") {
			return fmt.Errorf("status: %q", out)
		}
		return nil
	})

	writeVolume("conf/crontab", "* * * * * echo cron ran as $(id -u) in $(pwd)\n")
	run("crontab", "/srv/conf/crontab")
	if out := run("crontab", "-l"); !strings.Contains(out, "echo cron ran") {
		t.Fatalf("crontab -l: %q", out)
	}
	eventually(t, 2*time.Minute, "the cron line's output in the container log", func() error {
		if l := logs(); !strings.Contains(l, fmt.Sprintf("] cron ran as %d in /srv", uid)) {
			return fmt.Errorf("log: %q", l)
		}
		return nil
	})

	after, err := d.Inspect(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Pid != before.Pid || !after.StartedAt.Equal(before.StartedAt) {
		t.Fatalf("the container was restarted: %+v, was %+v", after, before)
	}
	if out := run("/usr/local/bin/rosti", "php", "2>&1", "||", "true"); !strings.Contains(out, "does not provide php") {
		t.Fatalf("rosti php: %q", out)
	}
}
