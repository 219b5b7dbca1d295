package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/hostprocs"
)

// TestSandboxStaysInsideThePlan runs the real ssh client against the tools
// the gateway runs on the host for an app (tar here): options that make
// tar run another program are refused before anything runs, the sandbox
// holds no other program, and the tool runs in a cgroup with the app's plan
// limits that goes away with the session. A memory hog run over SSH (in the
// app's container) is killed at the plan's memory and the app keeps
// serving.
func TestSandboxStaysInsideThePlan(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen", "ctr")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	port := in.sshPort(t)
	admin := in.adminUser(t)
	in.importBusybox(t)
	client := newSSHClient(t, port)
	// Plan 1 ("static"): 256 MB, 128 processes, 10% of a core.
	const memoryMB, pids, cpuMillis = 256, 128, 100
	app := in.createApp(t, admin, map[string]any{"name": "jail", "image": "busybox", "plan": 1, "ssh_keys": []string{client.pub}})
	t.Cleanup(func() {
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
	})
	in.running(t, admin, app)
	volume := filepath.Join(data, "volumes", fmt.Sprint(app))
	fi, err := os.Stat(volume)
	if err != nil {
		t.Fatal(err)
	}
	uid := fi.Sys().(*syscall.Stat_t).Uid

	t.Run("tar unpacks an upload", func(t *testing.T) {
		var archive bytes.Buffer
		zw := gzip.NewWriter(&archive)
		tw := tar.NewWriter(zw)
		body := []byte("jailed")
		for _, h := range []*tar.Header{
			{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "app/index.html", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))},
		} {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
		}
		tw.Write(body)
		tw.Close()
		zw.Close()
		cmd := exec.Command("ssh", "-F", client.config, "-p", port, "jail@127.0.0.1", "tar --no-same-owner -xzvf - -C /srv")
		cmd.Stdin = &archive
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar upload: %v\n%s", err, out)
		}
		in.servingAt(t, admin, app, 8080, "jailed")
	})

	t.Run("tar options that run programs are refused", func(t *testing.T) {
		marker := filepath.Join(volume, "escaped")
		for _, tc := range []struct {
			name, command, option string
		}{
			{"checkpoint action", "tar -cf /dev/null --checkpoint=1 '--checkpoint-action=exec=touch /srv/escaped' app", "--checkpoint"},
			{"checkpoint action after the file names", "tar cf /dev/null app '--checkpoint-action=exec=touch /srv/escaped'", "--checkpoint-action"},
			{"abbreviated", "tar -cf /dev/null --checkpoint-act=exec=/bin/sh app", "--checkpoint-act"},
			{"to-command", "tar -c --to-command='touch /srv/escaped' -f /dev/null app", "--to-command"},
			{"compress program", "tar -cf /dev/null -I 'touch /srv/escaped' app", "-I"},
			{"remote archive", "tar -cf localhost:/srv/escaped app", "-f"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, errOut := client.ssh(t, "jail", tc.command)
				if code != 1 || !strings.Contains(errOut, "tar option "+tc.option+" is not allowed here") {
					t.Fatalf("exit %d, want 1 and a message naming %s: %s", code, tc.option, errOut)
				}
				if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the refused command ran: %s exists (%v)", marker, err)
				}
			})
		}
	})

	t.Run("the sandbox holds only its tools", func(t *testing.T) {
		code, out, errOut := client.ssh(t, "jail", "tar -cf - -C / usr/bin")
		if code != 0 {
			t.Fatalf("listing the sandbox's /usr/bin: exit %d: %s", code, errOut)
		}
		names := map[string]bool{}
		tr := tar.NewReader(strings.NewReader(out))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names[strings.TrimPrefix(h.Name, "usr/bin/")] = true
		}
		for _, tool := range []string{"tar", "rsync", "git", "scp"} {
			if !names[tool] {
				t.Errorf("%s is missing from the sandbox's /usr/bin: %v", tool, names)
			}
		}
		for _, other := range []string{"perl", "python3", "id", "bash", "curl"} {
			if names[other] {
				t.Errorf("the sandbox shows the host's %s", other)
			}
		}
	})

	t.Run("a sandboxed tool runs in a cgroup with the plan's limits", func(t *testing.T) {
		// tar waits for its archive on stdin, which stays open until the
		// test has looked at it.
		cmd := exec.Command("ssh", "-F", client.config, "-p", port, "jail@127.0.0.1", "tar -xf - -C /tmp")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer stdin.Close()
		var pid int
		waitFor(t, "the sandboxed tar", 30*time.Second, func() (bool, string) {
			pid = childNamed(in.cmd.Process.Pid, "tar")
			return pid != 0, "no tar child of rosti"
		})
		st, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != uid {
			t.Fatalf("the sandboxed tar does not run as the app's uid %d: %v", uid, err)
		}
		limits, dirs := cgroupLimits(t, pid)
		want := map[string]int64{"memory": memoryMB << 20, "pids": pids, "cpu": cpuMillis * 100}
		for ctrl, w := range want {
			if limits[ctrl] != w {
				t.Errorf("%s limit of the sandboxed tar's cgroup: %d, want %d (the plan's)", ctrl, limits[ctrl], w)
			}
		}
		if err := tar.NewWriter(stdin).Close(); err != nil { // an empty archive
			t.Fatal(err)
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("tar with an empty archive: %v", err)
		}
		waitFor(t, "the sandbox cgroup removed", 30*time.Second, func() (bool, string) {
			for _, dir := range dirs {
				if _, err := os.Stat(dir); err == nil {
					return false, dir + " is still there"
				}
			}
			return true, ""
		})
	})

	t.Run("a memory hog is killed at the plan's memory", func(t *testing.T) {
		web, _ := in.running(t, admin, app)
		code, _, errOut := client.ssh(t, "jail", "head -c 600m /dev/zero | tail")
		if code != 137 || !strings.Contains(errOut, fmt.Sprintf("more than the plan's %d MB of memory", memoryMB)) {
			t.Fatalf("a command over the plan's memory: exit %d, want 137 and a message: %s", code, errOut)
		}
		// The OOM killer takes the biggest process of the container's
		// cgroup, the hog, not the web server.
		in.servingAt(t, admin, app, 8080, "jailed")
		st := in.status(t, admin, app)
		if len(st.Containers) != 1 || st.Containers[0].Name != web || st.Containers[0].Restarts != 0 {
			t.Fatalf("the web container did not survive the hog: %+v", st)
		}
		// ... and the app's status does not say it was killed.
		for _, e := range st.Errors {
			if strings.Contains(e, "killed") {
				t.Errorf("status blames the running container for the command's OOM kill: %q", e)
			}
		}
	})

	t.Run("a memory hog in the sandbox is killed at the plan's memory", func(t *testing.T) {
		// Files in the sandbox's /tmp are memory, charged to its cgroup:
		// 60 MB there is over a plan of 32 MB.
		out, err := in.admin("set-plan", "tiny", "--ram", "32", "--pids", "64", "--cpu-millis", "100")
		if err != nil {
			t.Fatalf("set-plan: %v\n%s", err, out)
		}
		var plan struct{ ID int64 }
		if err := json.Unmarshal([]byte(out), &plan); err != nil {
			t.Fatalf("set-plan: %v\n%s", err, out)
		}
		tiny := in.createApp(t, admin, map[string]any{"name": "tiny", "image": "static", "plan": plan.ID, "ssh_keys": []string{client.pub}})
		t.Cleanup(func() {
			in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, tiny), nil)
		})
		cmd := exec.Command("ssh", "-F", client.config, "-p", port, "tiny@127.0.0.1", "tar -xf - -C /tmp")
		reader, writer := io.Pipe()
		cmd.Stdin = reader
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		go func() {
			const size = 60 << 20
			tw := tar.NewWriter(writer)
			if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err == nil {
				io.Copy(tw, io.LimitReader(zeros{}, size))
				tw.Close()
			}
			writer.Close()
		}()
		err = cmd.Run()
		reader.Close()
		code := cmd.ProcessState.ExitCode()
		if code != 137 || !strings.Contains(stderr.String(), "tar was killed for using more than the plan's 32 MB of memory") {
			t.Fatalf("tar over the plan's memory: exit %d (%v), want 137 and a message: %s", code, err, stderr.String())
		}
	})

}

// TestSandboxedToolDiesWithRosti: a kill -9 of rosti takes a running
// sandboxed tool along, and the next rosti removes its cgroup.
func TestSandboxedToolDiesWithRosti(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	port := in.sshPort(t)
	admin := in.adminUser(t)
	client := newSSHClient(t, port)
	app := in.createApp(t, admin, map[string]any{"name": "doomed", "image": "static", "plan": 1, "ssh_keys": []string{client.pub}})
	// This test is about the sandbox: rosti killed while containerd makes
	// the app's task can leave that task's shim running with no one to
	// stop it (see the runtime's dropStaleBundle), past the test's end.
	in.waitRunning(t, admin, app)

	// A tar that waits on a FIFO in the volume: it does not end when
	// rosti's end of its pipes goes, only when it is killed.
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	if err := tw.WriteHeader(&tar.Header{Name: "hang.fifo", Typeflag: tar.TypeFifo, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	upload := exec.Command("ssh", "-F", client.config, "-p", port, "doomed@127.0.0.1", "tar -xf - -C /srv")
	upload.Stdin = &archive
	if out, err := upload.CombinedOutput(); err != nil {
		t.Fatalf("upload a FIFO: %v\n%s", err, out)
	}
	cmd := exec.Command("ssh", "-F", client.config, "-p", port, "doomed@127.0.0.1", "tar -xf /srv/hang.fifo -C /tmp")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var pid int
	waitFor(t, "the sandboxed tar", 30*time.Second, func() (bool, string) {
		pid = childNamed(in.cmd.Process.Pid, "tar")
		return pid != 0, "no tar child of rosti"
	})
	_, dirs := cgroupLimits(t, pid)
	if err := in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = in.cmd.Wait()
	waitFor(t, "the sandboxed tar gone with rosti", 30*time.Second, func() (bool, string) {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err), fmt.Sprintf("tar (pid %d) still runs", pid)
	})

	// The next rosti on the data dir removes the cgroup left behind.
	in = startRosti(t, bin, data)
	in.sshPort(t)
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the sandbox cgroup %s is left after a restart: %v", dir, err)
		}
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}

// childNamed is the pid of a child of parent whose command name is name,
// 0 if none.
func childNamed(parent int, name string) int {
	procs := hostprocs.List()
	for _, pid := range hostprocs.Children(procs, parent) {
		if procs[pid].Comm == name {
			return pid
		}
	}
	return 0
}

// cgroupLimits reads the memory (bytes), pids and CPU quota (µs per 100ms)
// limits of pid's cgroup, on cgroup v1 or v2, and the cgroup's directories.
func cgroupLimits(t *testing.T, pid int) (map[string]int64, []string) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	read := func(file string) int64 {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return n
	}
	limits := map[string]int64{}
	var dirs []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		_, path, _ := strings.Cut(strings.TrimSpace(string(raw)), "0::")
		dir := "/sys/fs/cgroup" + path
		if !strings.Contains(path, "rosti-sandbox-") {
			t.Errorf("the sandboxed tool's cgroup is %s, not a sandbox cgroup", path)
		}
		limits["memory"] = read(dir + "/memory.max")
		limits["pids"] = read(dir + "/pids.max")
		limits["cpu"] = read(dir + "/cpu.max")
		return limits, []string{dir}
	}
	files := map[string]string{"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpu": "cpu.cfs_quota_us"}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if file, ok := files[ctrl]; ok {
				dir := "/sys/fs/cgroup/" + ctrl + parts[2]
				if !strings.Contains(parts[2], "rosti-sandbox-") {
					t.Errorf("the sandboxed tool's %s cgroup is %s, not a sandbox cgroup", ctrl, parts[2])
				}
				limits[ctrl] = read(dir + "/" + file)
				dirs = append(dirs, dir)
			}
		}
	}
	return limits, dirs
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
