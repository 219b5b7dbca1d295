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

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/rosti-paas/rosti/internal/hostprocs"
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
		tellToSay(t, spec.VolumeDir, line)
		eventually(t, 30*time.Second, "the app prints "+line, func() error {
			if _, err := os.Stat(filepath.Join(spec.VolumeDir, "say")); err == nil {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}

	logged(env.Driver, "started")
	shim := parentOf(t, int(inst.Pid))
	if children := childrenOf(shim); len(children) != 1 || children[0] != int(inst.Pid) {
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

// tellToSay has the test scripts' app print line: it prints the file
// /srv/say when it finds one, then removes it. The file is written aside
// and renamed into place, so that the app never finds it before the line
// is in it (and prints nothing).
func tellToSay(t *testing.T, volumeDir, line string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(volumeDir, "say.new"), []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(volumeDir, "say.new"), filepath.Join(volumeDir, "say")); err != nil {
		t.Fatal(err)
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	p, ok := hostprocs.List()[pid]
	if !ok {
		t.Fatalf("no process %d", pid)
	}
	return p.PPid
}

func childrenOf(pid int) []int { return hostprocs.Children(hostprocs.List(), pid) }

// The containers of one isolation group share one shim, and a container
// that stops or goes leaves the others of its group running.
func TestGroupSharesAShim(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)
	run := func(name, group string, uid uint32) rtm.Instance {
		t.Helper()
		inst, err := d.Run(ctx, httpSpec(t, name, image, group, uid))
		if err != nil {
			t.Fatal(err)
		}
		get(t, inst.IP, "/")
		return inst
	}
	a1, a2 := run("sha-web-1", "g1", 10013), run("shb-web-1", "g1", 10014)
	other := run("shc-web-1", "g2", 10015)
	shim := parentOf(t, int(a1.Pid))
	if got := parentOf(t, int(a2.Pid)); got != shim {
		t.Errorf("containers of group g1 run under shims %d and %d, want one", shim, got)
	}
	if got := parentOf(t, int(other.Pid)); got == shim {
		t.Errorf("a container of group g2 runs under g1's shim %d", shim)
	}
	if err := d.Stop(ctx, a1.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, a1.Name); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a2.IP, "/"); got != "hello from shb-web-1" {
		t.Errorf("after its neighbour went: %q", got)
	}
	again := run("sha-web-1", "g1", 10013)
	if got := parentOf(t, int(again.Pid)); got != shim {
		t.Errorf("a new container of g1 runs under shim %d, want the group's %d", got, shim)
	}
}

// A container whose task an older rosti started with a log process of its
// own (containerd's binary log driver) keeps running and logging through
// it under a new rosti, which leaves it alone; its next start is through
// FIFOs, without the process.
func TestTaskWithLogProcessAfterUpgrade(t *testing.T) {
	env := rttest.Start(t)
	ctx := context.Background()
	script := `while :; do if [ -f /srv/say ]; then cat /srv/say; rm /srv/say; fi; sleep 0.05; done`
	spec := busyboxSpec(t, "up-web-1", rttest.BusyboxImage(t, env.Driver), 10016, script)
	if _, err := env.Driver.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	// What an older rosti did: the shim starts a log process for the task,
	// which appends its output to the container's log itself.
	logger := filepath.Join(t.TempDir(), "logger")
	if err := os.WriteFile(logger, []byte("#!/bin/sh\nexec 5>&-\ncat <&3 >> \"$1/output.log\" &\ncat <&4 >> \"$1/output.log\"\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	client := env.Client(t)
	c, err := client.LoadContainer(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
			t.Fatal(err)
		}
	}
	task, err := c.NewTask(ctx, cio.BinaryIO(logger, map[string]string{env.Driver.LogDir(spec.Name): ""}))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if children := childrenOf(parentOf(t, int(task.Pid()))); len(children) != 2 {
		t.Fatalf("the shim's children are %v, want the init and the log process", children)
	}

	d2 := rttest.StartAgain(t, env) // the upgraded rosti
	say := func(line string) {
		t.Helper()
		tellToSay(t, spec.VolumeDir, line)
	}
	logged := func(line string) {
		t.Helper()
		eventually(t, 30*time.Second, "log has "+line, func() error {
			var out bytes.Buffer
			if err := d2.Logs(ctx, spec.Name, 0, false, &out); err != nil {
				return err
			}
			if !strings.Contains(out.String(), line+"\n") {
				return fmt.Errorf("log is %q", out.String())
			}
			return nil
		})
	}
	say("through-the-log-process")
	logged("through-the-log-process")

	if err := d2.Stop(ctx, spec.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	inst, err := d2.Start(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if children := childrenOf(parentOf(t, int(inst.Pid))); len(children) != 1 || children[0] != int(inst.Pid) {
		t.Errorf("after a start by the new rosti the shim's children are %v, want only the init %d", children, inst.Pid)
	}
	say("through-the-fifos")
	logged("through-the-fifos")
	if err := d2.Remove(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
}
