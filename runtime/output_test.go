package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

// A container's output reaches its log with no process of its own on the
// host (the shim's only child is the container's init), and what it prints
// while rosti (and its managed containerd) is stopped is in the log once
// rosti runs again.
func TestOutputWithoutLoggerProcessAndAcrossRestart(t *testing.T) {
	env := rttest.Start(t)
	ctx := context.Background()
	script := `echo started; while :; do if [ -f /srv/say ]; then cat /srv/say; rm /srv/say; fi; sleep 0.05; done`
	spec := busyboxSpec(t, "out-web-1", rttest.BusyboxImage(t, env.Driver), 10012, script)
	inst, err := env.Driver.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	logged := func(d *rtm.Driver, line string) {
		t.Helper()
		eventually(t, 30*time.Second, "log has "+line, func() error {
			var out bytes.Buffer
			if err := d.Logs(ctx, spec.Name, 0, false, &out); err != nil {
				return err
			}
			if !strings.Contains(out.String(), line+"\n") {
				return fmt.Errorf("log is %q", out.String())
			}
			return nil
		})
	}
	say := func(line string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(spec.VolumeDir, "say"), []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the app prints "+line, func() error {
			if _, err := os.Stat(filepath.Join(spec.VolumeDir, "say")); err == nil {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}

	logged(env.Driver, "started")
	shim := parentOf(t, int(inst.Pid))
	if children := childrenOf(t, shim); len(children) != 1 || children[0] != int(inst.Pid) {
		t.Errorf("the shim (pid %d) has children %v, want only the container's init %d", shim, children, inst.Pid)
	}
	say("before-restart")
	logged(env.Driver, "before-restart")

	shutdownCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := env.Driver.Shutdown(shutdownCtx); err != nil {
		t.Fatal(err)
	}
	say("while-stopped")
	d2 := rttest.StartManagedAgain(t, env)
	logged(d2, "while-stopped")
	say("after-restart")
	logged(d2, "after-restart")
	if err := d2.Remove(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, the last ')' ends it.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var children []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // exited meanwhile
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			children = append(children, p)
		}
	}
	return children
}
