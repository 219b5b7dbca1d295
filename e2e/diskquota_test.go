package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallHostFS makes an ext4 file system of sizeMB on a loop device, for a
// rosti whose disk can be filled without touching the machine's.
func smallHostFS(t *testing.T, sizeMB int) string {
	t.Helper()
	root := t.TempDir()
	image, dir := filepath.Join(root, "host.ext4"), filepath.Join(root, "fs")
	for _, args := range [][]string{
		{"fallocate", "-l", fmt.Sprintf("%dM", sizeMB), image},
		{"mkfs.ext4", "-q", "-F", "-m", "0", image},
		{"mkdir", dir},
		{"mount", "-o", "loop", image, dir},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Skipf("cannot make a small file system (%s): %v: %s", args[0], err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount the test's file system: %v: %s (an app's disk left mounted?)", err, out)
		}
	})
	return dir
}

// loopsUnder lists the loop devices whose backing file is under dir, once
// the kernel had a moment to clear those whose mount is gone.
func loopsUnder(t *testing.T, dir string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("losetup", "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("losetup -a: %v: %s", err, out)
		}
		var found []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, dir+"/") {
				found = append(found, line)
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fillFS writes path until its file system is full.
func fillFS(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			return
		}
	}
}

// freeMB is the space left on dir's file system.
func freeMB(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize / 1e6
}

type storageJSON struct {
	Storage struct {
		UsageMB  float64 `json:"usage_mb"`
		LimitMB  float64 `json:"limit_mb"`
		Exceeded bool    `json:"exceeded"`
	} `json:"storage"`
	Errors []string `json:"errors"`
}

// TestDiskQuota: an app's writes stop at its plan's disk, whichever way
// they come (a process in the container, SFTP), while the API keeps
// working on a nearly full disk; apps-status shows the usage against the
// limit; a write rosti itself cannot make is a 507 that says why, and
// everything works again once space is freed; a smaller plan shrinks a
// stopped app's disk; disks are mounted again when rosti starts.
func TestDiskQuota(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen", "sftp", "ctr", "mkfs.ext4", "losetup", "fallocate")
	bin := rostiBin(t)
	host := smallHostFS(t, 200)
	data := filepath.Join(host, "data")
	in := startRosti(t, bin, data, "--sparse-disks=false")
	port := in.sshPort(t)
	admin := in.adminUser(t)
	in.importBusybox(t)
	// Whatever a failure left goes before rosti stops: apps' containers
	// outlive it.
	deleteAppsAtEnd := func(in *instance) {
		t.Cleanup(func() {
			if in.cmd.ProcessState != nil {
				return // stopped by the test, which started another
			}
			var apps []struct{ ID int64 }
			in.expect(t, 200, admin.token, "GET", pathf("/api/v1/%d/apps/", admin.company), nil).decode(t, &apps)
			for _, a := range apps {
				in.call(t, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, a.ID), nil)
			}
		})
	}
	deleteAppsAtEnd(in)

	var plan struct{ ID int64 }
	in.expect(t, 200, admin.token, "POST", pathf("/api/v1/%d/plans/", admin.company),
		map[string]any{"name": "tiny", "ram": 128, "disk": 20, "cpu_quota": 50, "price": 0}).decode(t, &plan)
	deployer := newSSHClient(t, port)
	app := in.createApp(t, admin, map[string]any{"name": "filler", "image": "busybox", "plan": plan.ID, "ssh_keys": []string{deployer.pub}})
	in.running(t, admin, app)
	storage := func() storageJSON {
		var st storageJSON
		in.expect(t, 200, admin.token, "GET", pathf("/api/v1/%d/apps-status/%d/", admin.company, app), nil).decode(t, &st)
		return st
	}
	if st := storage(); st.Storage.LimitMB != 20 || st.Storage.UsageMB > 5 || st.Storage.Exceeded {
		t.Fatalf("storage of a new app on a 20 MB plan: %+v", st)
	}

	t.Run("a write past the quota fails", func(t *testing.T) {
		code, _, errOut := deployer.ssh(t, "filler", "dd if=/dev/zero of=/srv/big bs=1M count=100")
		if code == 0 || !strings.Contains(errOut, "No space left on device") {
			t.Fatalf("writing 100 MB on a 20 MB plan: exit %d, %s", code, errOut)
		}
		st := storage()
		if st.Storage.LimitMB != 20 || st.Storage.UsageMB < 15 || st.Storage.UsageMB > 20 || !st.Storage.Exceeded {
			t.Fatalf("storage of a full app: %+v", st)
		}
		if !contains(strings.Join(st.Errors, "\n"), "disk is full") {
			t.Fatalf("status errors of a full app: %q", st.Errors)
		}

		local := t.TempDir()
		if err := os.WriteFile(filepath.Join(local, "upload"), bytes.Repeat([]byte("x"), 5<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, "batch"), []byte("put upload app/upload\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := deployer.run(t, local, "sftp", "-F", deployer.config, "-P", port, "-b", "batch", "filler@127.0.0.1"); code == 0 {
			t.Fatalf("an SFTP upload into a full disk succeeded: %s %s", out, errOut)
		}
	})

	t.Run("/tmp is not the host's disk", func(t *testing.T) {
		before := freeMB(t, host)
		code, _, errOut := deployer.ssh(t, "filler", "dd if=/dev/zero of=/tmp/big bs=1M count=100")
		if code == 0 || !strings.Contains(errOut, "No space left on device") {
			t.Fatalf("writing 100 MB into /tmp on a 128 MB plan: exit %d, %s", code, errOut)
		}
		if after := freeMB(t, host); after < before-10 {
			t.Fatalf("writes to /tmp took the host's disk: %d MB free before, %d after", before, after)
		}
		must(t)(deployer.ssh(t, "filler", "rm /tmp/big"))
	})

	t.Run("the API keeps working", func(t *testing.T) {
		m := adminPassword.FindStringSubmatch(in.output())
		again := in.login(t, "admin", m[1])
		other := in.createApp(t, again, map[string]any{"name": "other", "image": "busybox", "plan": plan.ID})
		in.expect(t, 200, again.token, "POST", "/api/v1/keys/", map[string]any{"name": "laptop", "key": deployer.pub})
		in.expect(t, 200, again.token, "DELETE", pathf("/api/v1/%d/apps/%d/", again.company, other), nil)
	})

	t.Run("deleting files frees the quota", func(t *testing.T) {
		must(t)(deployer.ssh(t, "filler", "rm /srv/big"))
		if st := storage(); st.Storage.Exceeded || st.Storage.UsageMB > 5 {
			t.Fatalf("storage after deleting the big file: %+v", st)
		}
		must(t)(deployer.ssh(t, "filler", "dd if=/dev/zero of=/srv/small bs=1M count=5"))
	})

	t.Run("a plan with less disk", func(t *testing.T) {
		var smaller struct{ ID int64 }
		in.expect(t, 200, admin.token, "POST", pathf("/api/v1/%d/plans/", admin.company),
			map[string]any{"name": "tinier", "ram": 128, "disk": 15, "cpu_quota": 50, "price": 0}).decode(t, &smaller)
		patch := func() reply {
			return in.call(t, admin.token, "PATCH", pathf("/api/v1/%d/apps/%d/", admin.company, app), map[string]any{"plan": smaller.ID})
		}
		if r := patch(); r.status != 400 || !contains(string(r.body), "only while the app is stopped") {
			t.Fatalf("a smaller disk for a running app: %d %s", r.status, r.body)
		}
		in.action(t, admin, app, "stop")
		if r := patch(); r.status != 200 {
			t.Fatalf("a smaller disk for a stopped app: %d %s", r.status, r.body)
		}
		in.action(t, admin, app, "start")
		in.running(t, admin, app)
		if st := storage(); st.Storage.LimitMB != 15 {
			t.Fatalf("storage after moving to a 15 MB plan: %+v", st)
		}
		if out := must(t)(deployer.ssh(t, "filler", "wc -c < /srv/small")); strings.TrimSpace(out) != "5242880" {
			t.Fatalf("the app's file after shrinking its disk: %q bytes", out)
		}
		code, _, errOut := deployer.ssh(t, "filler", "dd if=/dev/zero of=/srv/big bs=1M count=20")
		if code == 0 || !strings.Contains(errOut, "No space left on device") {
			t.Fatalf("writing 20 MB more on a 15 MB plan: exit %d, %s", code, errOut)
		}
		must(t)(deployer.ssh(t, "filler", "rm /srv/big"))
	})

	t.Run("a git push past the plan's disk is refused", func(t *testing.T) {
		repo := t.TempDir()
		git := func(args ...string) string { return must(t)(deployer.run(t, repo, "git", args...)) }
		git("init", "-q", "-b", "main")
		git("config", "user.email", "e2e@rosti.test")
		git("config", "user.name", "e2e")
		remote := fmt.Sprintf("ssh://filler@127.0.0.1:%s/filler", port)
		noise := make([]byte, 30<<20) // incompressible, twice the plan's disk
		if _, err := rand.Read(noise); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, "noise.bin"), noise, 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", ".")
		git("commit", "-q", "-m", "too big")
		if code, out, progress := deployer.run(t, repo, "git", "push", remote, "main"); code == 0 || !strings.Contains(progress, "exceeds maximum allowed size") {
			t.Fatalf("a 30 MB push on a 15 MB plan: exit 0\n%s%s", out, progress)
		}
		var held int64
		_ = filepath.WalkDir(filepath.Join(data, "repos"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					held += info.Size()
				}
			}
			return nil
		})
		if held > 15e6 {
			t.Fatalf("the host holds %d bytes of a refused push", held)
		}
	})

	t.Run("rosti's own full disk is a 507", func(t *testing.T) {
		filler := filepath.Join(host, "filler")
		fillFS(t, filler)
		r := in.call(t, admin.token, "POST", pathf("/api/v1/%d/apps/", admin.company),
			map[string]any{"name": "nospace", "image": "busybox", "plan": plan.ID})
		if r.status != 507 || !contains(string(r.body), "the server's disk is full") {
			t.Fatalf("creating an app on a full disk: %d %s", r.status, r.body)
		}
		// Other writes either fit in what the store has or say why; reads go on.
		if r := in.call(t, admin.token, "POST", "/api/v1/keys/", map[string]any{"name": "full", "key": newSSHClient(t, port).pub}); r.status != 200 && r.status != 507 {
			t.Fatalf("adding a key on a full disk: %d %s", r.status, r.body)
		}
		storage()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		later := in.createApp(t, admin, map[string]any{"name": "nospace", "image": "busybox", "plan": plan.ID})
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, later), nil)
	})

	// Mounted again at start, as after a reboot: a restarted rosti is
	// this test's (startRosti cleans up with the t it is given), so this
	// is no subtest.
	in.action(t, admin, app, "stop")
	waitFor(t, "containers gone", 60*time.Second, func() (bool, string) {
		st := in.status(t, admin, app)
		return len(st.Containers) == 0, fmt.Sprintf("%+v", st.Containers)
	})
	in.stop()
	volume := filepath.Join(data, "volumes", fmt.Sprint(app))
	if out, err := exec.Command("umount", volume).CombinedOutput(); err != nil {
		t.Fatalf("umount the app's disk: %v: %s", err, out)
	}
	if loops := loopsUnder(t, host); len(loops) > 0 {
		t.Fatalf("loop devices left once the disk is unmounted: %v", loops)
	}
	in = startRosti(t, bin, data, "--sparse-disks=false")
	deleteAppsAtEnd(in)
	waitFor(t, "the app's disk mounted again", 30*time.Second, func() (bool, string) {
		var vol, above syscall.Stat_t
		if err := errors.Join(syscall.Stat(volume, &vol), syscall.Stat(filepath.Dir(volume), &above)); err != nil {
			return false, err.Error()
		}
		return vol.Dev != above.Dev, "not mounted"
	})
	after := &sshClient{port: in.sshPort(t), config: deployer.config, pub: deployer.pub}
	if st := storage(); st.Storage.LimitMB != 15 || st.Storage.UsageMB < 5 {
		t.Fatalf("storage after a restart: %+v", st)
	}
	in.action(t, admin, app, "start")
	in.running(t, admin, app)
	if out := must(t)(after.ssh(t, "filler", "wc -c < /srv/small")); strings.TrimSpace(out) != "5242880" {
		t.Fatalf("the app's file after a restart: %q bytes", out)
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
	if left, _ := filepath.Glob(filepath.Join(data, "disks", "*")); len(left) > 0 {
		t.Errorf("disk images left after the apps were deleted: %v", left)
	}
	if loops := loopsUnder(t, host); len(loops) > 0 {
		t.Errorf("loop devices left after the apps were deleted: %v", loops)
	}
}
