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

// TestSSHShutdownDrainsSessions: on SIGTERM, an rsync and a command in the
// app's container under way finish, while an SFTP upload that outlasts the
// shutdown budget is cut and leaves the file it was replacing as it was,
// with no partial file under its name; a complete SFTP upload lands.
func TestSSHShutdownDrainsSessions(t *testing.T) {
	for _, tool := range []string{"ssh", "ssh-keygen", "sftp", "rsync", "ctr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--shutdown-budget", "10s")
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
		"rsynced.bin": strings.Repeat("rsync finishes\n", 80_000),                  // 1.2 MB
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

	// 1000 kbit/s: the upload needs over a minute, far past the budget.
	upload := batch("put big.bin big.bin\n", "-l", "1000")
	var uploadOut bytes.Buffer
	upload.Stdout, upload.Stderr = &uploadOut, &uploadOut
	if err := upload.Start(); err != nil {
		t.Fatal(err)
	}
	uploaded := make(chan error, 1)
	go func() { uploaded <- upload.Wait() }()
	// 300 kB/s: about 4 s, well within the budget.
	rsh := fmt.Sprintf("ssh -F %s -p %s", client.config, port)
	rsync := client.start(t, local, "rsync", "--bwlimit=300", "-e", rsh, "rsynced.bin", "site@127.0.0.1:rsynced.bin")
	command := client.start(t, "", "ssh", "-F", client.config, "-p", port, "site@127.0.0.1", "touch /srv/started; sleep 3; echo slept")
	waitFor(t, "the transfers and the command under way", 30*time.Second, func() (bool, string) {
		up, rs, cmd := globSize(filepath.Join(volume, ".big.bin.rosti-upload-*")), globSize(filepath.Join(volume, ".rsynced.bin.*")), globSize(filepath.Join(volume, "started"))
		return up > 0 && rs > 0 && cmd >= 0, fmt.Sprintf("upload temporary %d bytes, rsync temporary %d bytes, command started %v", up, rs, cmd >= 0)
	})

	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- in.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("rosti serve exited with %v:\n%s", err, in.logs())
		}
	case <-time.After(2 * time.Minute):
		in.cmd.Process.Kill()
		t.Fatalf("rosti serve did not stop within two minutes of SIGTERM:\n%s", in.logs())
	}

	if r := <-command; r.code != 0 || r.output != "slept\n" {
		t.Errorf("the command running at SIGTERM: exit %d, output %q; want it to finish", r.code, r.output)
	}
	if r := <-rsync; r.code != 0 {
		t.Errorf("the rsync running at SIGTERM failed (exit %d):\n%s", r.code, r.output)
	}
	if got, err := os.ReadFile(filepath.Join(volume, "rsynced.bin")); err != nil || len(got) != 80_000*len("rsync finishes\n") {
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
