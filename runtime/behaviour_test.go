package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

func busyboxSpec(t *testing.T, name, image string, uid uint32, script string) rtm.ContainerSpec {
	spec := httpSpec(t, name, image, "g1", uid)
	spec.Command = []string{"/bin/sh", "-c", script}
	return spec
}

func waitExit(t *testing.T, d *rtm.Driver, name string) rtm.Exit {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ex := <-d.Exits():
			if ex.Name == name {
				return ex
			}
		case <-timeout:
			t.Fatalf("no exit event for %s", name)
		}
	}
}

func TestGroupsCannotReachEachOther(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)
	a1, err := d.Run(ctx, httpSpec(t, "a1-web-1", image, "company-a", 10001))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := d.Run(ctx, httpSpec(t, "a2-web-1", image, "company-a", 10002))
	if err != nil {
		t.Fatal(err)
	}
	b1, err := d.Run(ctx, httpSpec(t, "b1-web-1", image, "company-b", 10003))
	if err != nil {
		t.Fatal(err)
	}
	get(t, b1.IP, "/")
	get(t, a2.IP, "/")
	tests := []struct {
		name     string
		from, to rtm.Instance
		wantOK   bool
	}{
		{name: "same group", from: a1, to: a2, wantOK: true},
		{name: "other group", from: a1, to: b1, wantOK: false},
		{name: "other group back", from: b1, to: a2, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(t, tt.from.IP, "/dial?addr="+tt.to.IP+":"+appPort)
			if (got == "ok") != tt.wantOK {
				t.Fatalf("%s -> %s: %q, want reachable=%v", tt.from.Name, tt.to.Name, got, tt.wantOK)
			}
		})
	}
}

func TestOOMKillIsReported(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	spec := httpSpec(t, "hog-web-1", rttest.HTTPServerImage(t, d), "g1", 10001)
	spec.MemoryMB = 32
	inst, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")
	if body, err := httpGet("http://" + inst.IP + ":" + appPort + "/alloc?mb=200"); err == nil {
		t.Fatalf("allocating 200 MiB under a 32 MiB limit answered %q", body)
	}
	ex := waitExit(t, d, spec.Name)
	if !ex.OOMKilled {
		t.Errorf("exit %+v: want OOMKilled", ex)
	}
	inst, err = d.Inspect(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != rtm.StatusStopped || !inst.OOMKilled {
		t.Errorf("Inspect after OOM: %+v", inst)
	}
	inst, err = d.Start(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != rtm.StatusRunning || inst.OOMKilled {
		t.Errorf("Inspect after Start: %+v", inst)
	}
	get(t, inst.IP, "/")
}

// TestOOMKillOfAnotherProcessIsNotTheContainers: the kernel killing a
// process exec'd into a container (as an SSH command is) for memory marks
// the container's cgroup, but the container's own later exit is not an
// OOM kill.
func TestOOMKillOfAnotherProcessIsNotTheContainers(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	spec := httpSpec(t, "ex-web-1", rttest.HTTPServerImage(t, d), "g1", 10001)
	spec.MemoryMB = 48
	inst, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")
	execDone := make(chan error, 1)
	go func() {
		_, err := d.Exec(ctx, spec.Name, rtm.ExecSpec{Args: []string{"/httpserver"}, Env: []string{"PORT=8081"}, UID: 10001, GID: 10001})
		execDone <- err
	}()
	eventually(t, 30*time.Second, "the exec'd server answers", func() error {
		_, err := httpGet("http://" + inst.IP + ":8081/")
		return err
	})
	if body, err := httpGet("http://" + inst.IP + ":8081/alloc?mb=200"); err == nil {
		t.Fatalf("allocating 200 MiB under a 48 MiB limit answered %q", body)
	}
	if err := <-execDone; !errors.Is(err, rtm.ErrOutOfMemory) {
		t.Fatalf("the exec'd hog ended with %v, want %v", err, rtm.ErrOutOfMemory)
	}
	get(t, inst.IP, "/")

	if err := d.Stop(ctx, spec.Name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, d, spec.Name); ex.OOMKilled || ex.Code != 128+15 {
		t.Errorf("exit %+v: want code 143, not killed for memory", ex)
	}
	stopped, err := d.Inspect(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != rtm.StatusStopped || stopped.OOMKilled {
		t.Errorf("Inspect after Stop: %+v", stopped)
	}
}

func TestStopStartKeepsAddressAndReportsExit(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	spec := httpSpec(t, "ss-web-1", rttest.HTTPServerImage(t, d), "g1", 10001)
	inst, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")
	st, err := d.Stats(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryUsage == 0 || st.MemoryLimit != 64<<20 || st.Pids == 0 {
		t.Errorf("stats %+v: want usage > 0, limit 64 MiB, pids > 0", st)
	}
	// Go programs die of an unhandled SIGTERM; init reports 128+15.
	if err := d.Stop(ctx, spec.Name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ex := waitExit(t, d, spec.Name)
	if ex.OOMKilled || ex.Code != 128+15 {
		t.Errorf("exit %+v: want code 143", ex)
	}
	stopped, err := d.Inspect(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != rtm.StatusStopped || stopped.ExitCode != 143 || stopped.ExitedAt.IsZero() {
		t.Errorf("after Stop: %+v", stopped)
	}
	again, err := d.Start(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if again.IP != inst.IP || again.Status != rtm.StatusRunning {
		t.Errorf("after Start: %+v, want running on %s", again, inst.IP)
	}
	get(t, again.IP, "/")
}

func TestRemoveLeavesNothingBehind(t *testing.T) {
	env := rttest.Start(t)
	d := env.Driver
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)
	for _, name := range []string{"rm-web-1", "rm-web-2"} {
		if _, err := d.Run(ctx, httpSpec(t, name, image, "g1", 10001)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Stop(ctx, "rm-web-2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rm-web-1", "rm-web-2"} {
		if err := d.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Remove(ctx, "rm-web-1"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	list, err := d.List(ctx, nil)
	if err != nil || len(list) != 0 {
		t.Errorf("List after Remove = %v, %v", list, err)
	}

	client := env.Client(t)
	if cs, err := client.Containers(ctx); err != nil || len(cs) != 0 {
		t.Errorf("containerd containers = %d, %v", len(cs), err)
	}
	tasks, err := client.TaskService().List(ctx, nil)
	if err != nil || len(tasks.Tasks) != 0 {
		t.Errorf("containerd tasks = %v, %v", tasks, err)
	}
	var snaps []string
	err = client.SnapshotService("").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			snaps = append(snaps, info.Name)
		}
		return nil
	})
	if err != nil || len(snaps) != 0 {
		t.Errorf("active snapshots = %v, %v", snaps, err)
	}
	var ips []string
	_ = filepath.WalkDir(d.IPAMDir(), func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), "last_reserved_ip") && e.Name() != "lock" {
			ips = append(ips, path)
		}
		return nil
	})
	if len(ips) != 0 {
		t.Errorf("IP allocations left: %v", ips)
	}
	if entries, _ := os.ReadDir(filepath.Join(env.Config.DataDir, "netns")); len(entries) != 0 {
		t.Errorf("netns left: %v", entries)
	}
}

func TestExec(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	spec := busyboxSpec(t, "ex-web-1", rttest.BusyboxImage(t, d), 10005, "while :; do sleep 1; done")
	if _, err := d.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		exec       rtm.ExecSpec
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "exit code", exec: rtm.ExecSpec{Args: []string{"sh", "-c", "exit 3"}}, wantCode: 3},
		{name: "uid and cwd", exec: rtm.ExecSpec{Args: []string{"sh", "-c", "echo $(id -u):$(id -g) $(pwd)"}}, wantStdout: "10005:10005 /srv\n"},
		{name: "env", exec: rtm.ExecSpec{Args: []string{"sh", "-c", "echo $FOO $PORT"}, Env: []string{"FOO=bar"}}, wantStdout: "bar 8080\n"},
		{name: "stdin to stdout", exec: rtm.ExecSpec{Args: []string{"cat"}, Stdin: strings.NewReader("piped\n")}, wantStdout: "piped\n"},
		{name: "stderr", exec: rtm.ExecSpec{Args: []string{"sh", "-c", "echo oops >&2; exit 1"}}, wantCode: 1, wantStderr: "oops\n"},
		{name: "cwd", exec: rtm.ExecSpec{Args: []string{"pwd"}, Cwd: "/tmp"}, wantStdout: "/tmp\n"},
		{name: "tty", exec: rtm.ExecSpec{Args: []string{"sh", "-c", "tty"}, TTY: true}, wantStdout: "/dev/pts/0\r\n"},
		{name: "no capabilities", exec: rtm.ExecSpec{Args: []string{"sh", "-c", "grep CapEff /proc/self/status"}}, wantStdout: "CapEff:\t0000000000000000\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			tt.exec.UID, tt.exec.GID = 10005, 10005
			tt.exec.Stdout, tt.exec.Stderr = &stdout, &stderr
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			code, err := d.Exec(ctx, spec.Name, tt.exec)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || stdout.String() != tt.wantStdout || stderr.String() != tt.wantStderr {
				t.Errorf("code %d stdout %q stderr %q; want %d %q %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	if _, err := d.Exec(ctx, spec.Name, rtm.ExecSpec{Args: []string{"id"}}); err == nil {
		t.Error("exec as root was not refused")
	}
}

func TestLogsRotateAndFollow(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	// 10000 lines of ~10 bytes overflow the tests' 64 KiB rotation size.
	// stdout and stderr are separate pipes, so only the order within a
	// stream is kept.
	script := `i=0; while [ $i -lt 10000 ]; do echo "line $i"; i=$((i+1)); done; echo done; echo on-stderr >&2; ` +
		`while :; do if [ -f /srv/go ]; then echo followed; rm /srv/go; fi; sleep 0.05; done`
	spec := busyboxSpec(t, "log-web-1", rttest.BusyboxImage(t, d), 10006, script)
	if _, err := d.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "all output logged", func() error {
		var all bytes.Buffer
		if err := d.Logs(ctx, spec.Name, 0, false, &all); err != nil {
			return err
		}
		if !strings.HasSuffix(strings.ReplaceAll(all.String(), "on-stderr\n", ""), "line 9999\ndone\n") || !strings.Contains(all.String(), "on-stderr\n") {
			return errors.New("stdout or stderr lines missing")
		}
		return nil
	})
	var tail bytes.Buffer
	if err := d.Logs(ctx, spec.Name, 2, false, &tail); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(tail.String(), "\n"); got != 2 {
		t.Errorf("Logs(2) = %q: %d lines", tail.String(), got)
	}
	if _, err := os.Stat(filepath.Join(d.LogDir(spec.Name), "output.log.1")); err != nil {
		t.Errorf("no rotated log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.LogDir(spec.Name), "output.log.3")); err == nil {
		t.Errorf("more rotated logs than LogKeep")
	}
	var kept int64
	files, _ := os.ReadDir(d.LogDir(spec.Name))
	for _, f := range files {
		if fi, err := f.Info(); err == nil {
			kept += fi.Size()
		}
	}
	if max := int64(64<<10) * 3; kept > max {
		t.Errorf("logs take %d bytes, more than LogMaxBytes×(LogKeep+1) = %d", kept, max)
	}

	followCtx, stop := context.WithCancel(ctx)
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	followed := make(chan error, 1)
	go func() { followed <- d.Logs(followCtx, spec.Name, 1, true, lockedWriter{&mu, &out}) }()
	if err := os.WriteFile(filepath.Join(spec.VolumeDir, "go"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "follow", func() error {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasSuffix(out.String(), "\nfollowed\n") || strings.Count(out.String(), "\n") != 2 {
			return fmt.Errorf("followed %q", out.String())
		}
		return nil
	})
	stop()
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveLogs(spec.Name); err != nil {
		t.Fatal(err)
	}
	if err := d.Logs(ctx, spec.Name, 1, false, &out); !errors.Is(err, rtm.ErrNotFound) {
		t.Errorf("Logs after RemoveLogs: %v, want ErrNotFound", err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestStaticImageServesApp(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	image, err := d.EnsureStaticImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.EnsureStaticImage(ctx); err != nil || again != image {
		t.Fatalf("second EnsureStaticImage = %q, %v", again, err)
	}
	spec := httpSpec(t, "st-web-1", image, "g1", 10007)
	if err := os.MkdirAll(filepath.Join(spec.VolumeDir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spec.VolumeDir, "app", "index.html"), []byte("static hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	inst, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, inst.IP, "/"); got != "static hello" {
		t.Errorf("GET / = %q", got)
	}
	// init serves the files itself rather than starting a second process.
	if children := childrenOf(int(inst.Pid)); len(children) != 0 {
		t.Errorf("the static container's init has children %v, want none", children)
	}
}

func TestProcfileLineWins(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	spec := httpSpec(t, "pf-web-1", rttest.HTTPServerImage(t, d), "g1", 10008)
	spec.Command = []string{"/nonexistent"} // would fail if the Procfile were ignored
	if err := os.MkdirAll(filepath.Join(spec.VolumeDir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The image has no shell, so init splits the line itself.
	if err := os.WriteFile(filepath.Join(spec.VolumeDir, "app", "Procfile"), []byte("web: /httpserver\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inst, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")
}

func TestSecondDriverAdoptsContainers(t *testing.T) {
	env := rttest.Start(t)
	ctx := context.Background()
	spec := httpSpec(t, "ad-web-1", rttest.HTTPServerImage(t, env.Driver), "g1", 10009)
	spec.Labels["app-id"] = "42"
	inst, err := env.Driver.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	d2 := rttest.StartAgain(t, env)
	list, err := d2.List(ctx, map[string]string{"app-id": "42"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != spec.Name || list[0].IP != inst.IP || list[0].Status != rtm.StatusRunning || list[0].Labels["app-id"] != "42" {
		t.Fatalf("second driver lists %+v, want %s running on %s", list, spec.Name, inst.IP)
	}
	if other, err := d2.List(ctx, map[string]string{"app-id": "43"}); err != nil || len(other) != 0 {
		t.Errorf("List(app-id=43) = %v, %v", other, err)
	}
	again, err := d2.Run(ctx, spec)
	if err != nil || again.IP != inst.IP {
		t.Fatalf("Run of an adopted container = %+v, %v", again, err)
	}
	get(t, inst.IP, "/")
}

func TestImages(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	used := rttest.HTTPServerImage(t, d)
	unused := rttest.BusyboxImage(t, d)
	if _, err := d.Run(ctx, httpSpec(t, "img-web-1", used, "g1", 10010)); err != nil {
		t.Fatal(err)
	}
	all, err := d.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(all, " ") != strings.Join(sorted(used, unused), " ") {
		t.Fatalf("Images = %v", all)
	}
	removed, err := d.RemoveUnusedImages(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != unused {
		t.Errorf("removed %v, want [%s]", removed, unused)
	}
	if all, _ := d.Images(ctx); len(all) != 1 || all[0] != used {
		t.Errorf("Images after GC = %v", all)
	}
}

func sorted(a, b string) []string {
	if a > b {
		return []string{b, a}
	}
	return []string{a, b}
}

// With a managed containerd, shutting the driver down stops containerd but
// not the shims: the app keeps serving, and the next managed containerd
// finds it running.
func TestAppsSurviveManagedContainerdRestart(t *testing.T) {
	env := rttest.Start(t)
	ctx := context.Background()
	spec := httpSpec(t, "sv-web-1", rttest.HTTPServerImage(t, env.Driver), "g1", 10011)
	inst, err := env.Driver.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")
	shutdownCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := env.Driver.Shutdown(shutdownCtx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, inst.IP, "/"); got != "hello from sv-web-1" {
		t.Errorf("with containerd stopped: %q", got)
	}
	d2 := rttest.StartManagedAgain(t, env)
	list, err := d2.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Status != rtm.StatusRunning || list[0].IP != inst.IP {
		t.Fatalf("after containerd restart: %+v", list)
	}
	if err := d2.Stop(ctx, spec.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, d2, spec.Name); ex.Code != 143 {
		t.Errorf("exit after restart: %+v", ex)
	}
	if err := d2.Remove(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
}

// TestPullFromRegistry pulls over the network, from a registry on the
// loopback address, and runs what it pulled.
func TestPullFromRegistry(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	ref := rttest.Registry(t) + "/apps/httpserver:1"
	rttest.Push(t, ref, rttest.HTTPServer(t, ref))

	var reports []rtm.PullProgress
	if err := d.Pull(ctx, ref, func(p rtm.PullProgress) { reports = append(reports, p) }); err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	// An index, a manifest, a config and a layer of a few MB.
	if last.Percent() != 100 || last.Blobs != 4 || last.BlobsDone != 4 || last.Total < 1e6 {
		t.Fatalf("last progress %+v (%s), want all of 4 blobs", last, last)
	}
	if all, err := d.Images(ctx); err != nil || !slices.Contains(all, ref) {
		t.Fatalf("Images = %v, %v; want %s among them", all, err, ref)
	}
	inst, err := d.Run(ctx, httpSpec(t, "pulled-web-1", ref, "g1", 10020))
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, inst.IP, "/whoami"); got != "uid=10020 gid=10020" {
		t.Fatalf("the pulled image serves %q", got)
	}

	err = d.Pull(ctx, rttest.Registry(t)+"/apps/missing:1", nil)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("pull of a missing image: %v, want a not found error", err)
	}
}
