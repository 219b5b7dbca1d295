package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type clientResult struct {
	code   int
	output string
}

// start runs a client program in the background, for a test that does
// something else meanwhile; the result comes once it exits.
func (c *sshClient) start(t *testing.T, dir, name string, args ...string) <-chan clientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_SSH_COMMAND=ssh -F "+c.config, "GIT_TERMINAL_PROMPT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan clientResult, 1)
	go func() {
		defer cancel()
		cmd.Wait()
		done <- clientResult{cmd.ProcessState.ExitCode(), out.String()}
	}()
	return done
}

// globSize is the size of the first file matching pattern, -1 for none.
func globSize(pattern string) int64 {
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			return fi.Size()
		}
	}
	return -1
}

// TestSSHShutdownDrainsSessions: on SIGTERM, a git push in its release
// step, an rsync and a command in the app's container under way finish
// (the push's deploy included), while an SFTP upload that outlasts the
// shutdown budget is cut and leaves the file it was replacing as it was,
// with no partial file under its name; a complete SFTP upload lands.
func TestSSHShutdownDrainsSessions(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen", "sftp", "rsync", "git", "ctr")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--shutdown-budget", "20s")
	port := in.sshPort(t)
	admin := in.adminUser(t)
	client := newSSHClient(t, port)
	in.importBusybox(t)
	site := in.createApp(t, admin, map[string]any{"name": "site", "image": "busybox", "plan": 1, "ssh_keys": []string{client.pub}})
	volume := filepath.Join(data, "volumes", fmt.Sprint(site))
	in.running(t, admin, site)

	local := t.TempDir()
	former := "the former content\n"
	writeTree(t, local, map[string]string{
		"former.bin":  former,
		"big.bin":     strings.Repeat("new content that never completes\n", 250_000), // 8 MB
		"rsynced.bin": strings.Repeat("rsync finishes\n", 40_000),                    // 600 kB
	})
	sftpArgs := []string{"-F", client.config, "-P", port, "-b", "-", "site@127.0.0.1"}
	batch := func(commands string, extra ...string) *exec.Cmd {
		cmd := exec.Command("sftp", append(extra, sftpArgs...)...)
		cmd.Dir, cmd.Stdin = local, strings.NewReader(commands)
		return cmd
	}
	if out, err := batch("put former.bin big.bin\n").CombinedOutput(); err != nil {
		t.Fatalf("a complete upload: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(volume, "big.bin")); err != nil || string(got) != former {
		t.Fatalf("a complete upload did not land: %q, %v", got, err)
	}

	// The push's release step and the command wait, once started, until
	// the drain is under way.
	repo := t.TempDir()
	writeTree(t, repo, map[string]string{"index.html": "pushed", "Procfile": "release: touch /srv/releasing; while [ ! -e /srv/go ]; do sleep 0.1; done\n"})
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"config", "user.email", "e2e@rosti.test"}, {"config", "user.name", "e2e"}, {"add", "."}, {"commit", "-q", "-m", "v1"}} {
		must(t)(client.run(t, repo, "git", args...))
	}
	push := client.start(t, repo, "git", "push", fmt.Sprintf("ssh://site@127.0.0.1:%s/site", port), "main")
	waitFor(t, "the push's release step", time.Minute, func() (bool, string) {
		return globSize(filepath.Join(volume, "releasing")) >= 0, "not yet"
	})
	command := client.start(t, "", "ssh", "-F", client.config, "-p", port, "site@127.0.0.1", "touch /srv/started; while [ ! -e /srv/go ]; do sleep 0.1; done; echo finished")
	waitFor(t, "the command", time.Minute, func() (bool, string) {
		return globSize(filepath.Join(volume, "started")) >= 0, "not yet"
	})
	// 1000 kbit/s: the upload needs over a minute, far past the budget.
	upload := batch("put big.bin big.bin\n", "-l", "1000")
	var uploadOut bytes.Buffer
	upload.Stdout, upload.Stderr = &uploadOut, &uploadOut
	if err := upload.Start(); err != nil {
		t.Fatal(err)
	}
	uploaded := make(chan error, 1)
	go func() { uploaded <- upload.Wait() }()
	// 100 kB/s: about 6 s, well within the budget.
	rsh := fmt.Sprintf("ssh -F %s -p %s", client.config, port)
	rsync := client.start(t, local, "rsync", "--bwlimit=100", "-e", rsh, "rsynced.bin", "site@127.0.0.1:rsynced.bin")
	waitFor(t, "both transfers under way", 30*time.Second, func() (bool, string) {
		up, rs := globSize(filepath.Join(volume, ".big.bin.rosti-upload-*")), globSize(filepath.Join(volume, ".rsynced.bin.*"))
		return up > 0 && rs > 0, fmt.Sprintf("upload temporary %d bytes, rsync temporary %d bytes", up, rs)
	})

	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- in.cmd.Wait() }()
	waitFor(t, "the drain", 30*time.Second, func() (bool, string) {
		return contains(in.logs(), "waiting for sessions to end"), "not logged"
	})
	if err := os.WriteFile(filepath.Join(volume, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("rosti serve exited with %v:\n%s", err, in.logs())
		}
	case <-time.After(2 * time.Minute):
		in.cmd.Process.Kill()
		t.Fatalf("rosti serve did not stop within two minutes of SIGTERM:\n%s", in.logs())
	}

	if r := <-push; r.code != 0 || !contains(r.output, "deployed") {
		t.Errorf("the push in its release step at SIGTERM: exit %d\n%s", r.code, r.output)
	}
	if got, err := os.ReadFile(filepath.Join(volume, "app", "index.html")); err != nil || string(got) != "pushed" {
		t.Errorf("the pushed tree is not in /srv/app: %q, %v", got, err)
	}
	if r := <-command; r.code != 0 || r.output != "finished\n" {
		t.Errorf("the command running at SIGTERM: exit %d, output %q; want it to finish", r.code, r.output)
	}
	if r := <-rsync; r.code != 0 {
		t.Errorf("the rsync running at SIGTERM failed (exit %d):\n%s", r.code, r.output)
	}
	if got, err := os.ReadFile(filepath.Join(volume, "rsynced.bin")); err != nil || len(got) != 40_000*len("rsync finishes\n") {
		t.Errorf("rsynced.bin: %d bytes, %v; want the whole file", len(got), err)
	}
	if err := <-uploaded; err == nil {
		t.Errorf("the upload cut by the shutdown reported success:\n%s", uploadOut.String())
	}
	if got, err := os.ReadFile(filepath.Join(volume, "big.bin")); err != nil || string(got) != former {
		t.Errorf("big.bin after the cut upload: %d bytes, %v; want the former content", len(got), err)
	}
	if left, _ := filepath.Glob(filepath.Join(volume, ".*.rosti-upload-*")); len(left) > 0 {
		t.Errorf("temporaries left: %q", left)
	}

	// Started again, rosti serves the former file and removes the app.
	in = startRosti(t, bin, data, "--shutdown-budget", "10s")
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, site), nil)
}

// TestSSHSecondSignalStopsAtOnce: a second SIGTERM during the drain stops
// rosti without waiting for the sessions; an upload cut so still leaves
// nothing under its final name.
func TestSSHSecondSignalStopsAtOnce(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen", "sftp")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--shutdown-budget", "10m")
	port := in.sshPort(t)
	admin := in.adminUser(t)
	client := newSSHClient(t, port)
	site := in.createApp(t, admin, map[string]any{"name": "site", "image": "static", "plan": 1, "ssh_keys": []string{client.pub}})
	volume := filepath.Join(data, "volumes", fmt.Sprint(site))
	local := t.TempDir()
	writeTree(t, local, map[string]string{"big.bin": strings.Repeat("never completes\n", 500_000)})
	upload := exec.Command("sftp", "-l", "1000", "-F", client.config, "-P", port, "-b", "-", "site@127.0.0.1")
	upload.Dir, upload.Stdin = local, strings.NewReader("put big.bin big.bin\n")
	if err := upload.Start(); err != nil {
		t.Fatal(err)
	}
	defer upload.Wait()
	waitFor(t, "the upload under way", 30*time.Second, func() (bool, string) {
		return globSize(filepath.Join(volume, ".big.bin.rosti-upload-*")) > 0, "no temporary yet"
	})

	exited := make(chan error, 1)
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { exited <- in.cmd.Wait() }()
	waitFor(t, "the drain", 30*time.Second, func() (bool, string) {
		return contains(in.logs(), "waiting for sessions to end"), "not logged"
	})
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("rosti exited 0 on a second SIGTERM; want it killed by the signal")
		}
	case <-time.After(time.Minute):
		in.cmd.Process.Kill()
		t.Fatalf("rosti still drained a minute after a second SIGTERM:\n%s", in.logs())
	}
	if _, err := os.Stat(filepath.Join(volume, "big.bin")); !os.IsNotExist(err) {
		t.Errorf("an upload cut by the second SIGTERM left big.bin: %v", err)
	}

	in = startRosti(t, bin, data)
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, site), nil)
}
