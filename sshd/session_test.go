package sshd_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/sshd"
)

func TestExecReturnsExitStatus(t *testing.T) {
	e := newEnv(t, "execapp")
	app := e.apps["execapp"]
	tests := []struct {
		name     string
		command  string
		wantOut  string
		wantCode int
	}{
		{"success", "echo hello", "hello\n", 0},
		{"exit status", "echo failing >&2; exit 3", "failing\n", 3},
		{"runs as the app in its volume", "id -u; pwd", strconv.Itoa(int(app.access.UID)) + "\n" + app.access.VolumeDir + "\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := e.ssh(app, tt.command)
			if code != tt.wantCode || out != tt.wantOut {
				t.Errorf("ssh %q = %q, exit %d; want %q, exit %d", tt.command, out, code, tt.wantOut, tt.wantCode)
			}
		})
	}
}

// TestCommandsThatCannotRunAreReportedPlainly: one line on stderr that
// says why, and an exit status of its own for each reason.
func TestCommandsThatCannotRunAreReportedPlainly(t *testing.T) {
	e := newEnv(t, "stopped", "pulling", "noshell")
	e.platform.apps["stopped"].stopped = true
	e.platform.apps["pulling"].pulling = true
	e.platform.apps["noshell"].noShell = true
	for _, tc := range []struct {
		app  string
		code int
		says string
	}{
		{"stopped", 125, "app stopped is not running: it is stopped; start it first"},
		{"pulling", 125, "app pulling is not running: it waits for its image (pulling image x: 40%)"},
		{"noshell", 126, "the image of app noshell (x) has no /bin/sh, so it runs no shell or commands"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			out, code := e.ssh(e.apps[tc.app], "ls")
			if code != tc.code || !strings.Contains(out, tc.says) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("ssh = %q, exit %d; want exit %d and one line with %q", out, code, tc.code, tc.says)
			}
		})
	}
}

func dial(t *testing.T, e *env, user string, auth gossh.AuthMethod) (*gossh.Client, error) {
	t.Helper()
	return gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", e.port), &gossh.ClientConfig{
		User:            user,
		Auth:            []gossh.AuthMethod{auth},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         30 * time.Second,
	})
}

func TestShellGetsPTYWithTermAndResizes(t *testing.T) {
	e := newEnv(t, "ptyapp")
	client, err := dial(t, e, "ptyapp", gossh.PublicKeys(e.apps["ptyapp"].signer))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	if err := session.RequestPty("xterm-rosti", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdout, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Shell(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("shell output ended before %q: %v", want, lines.Err())
		}
		if got := strings.TrimRight(lines.Text(), "\r"); got != want {
			t.Fatalf("shell printed %q, want %q", got, want)
		}
	}
	expect("TERM=xterm-rosti")
	expect("size 80x24")
	if err := session.WindowChange(40, 100); err != nil {
		t.Fatal(err)
	}
	expect("size 100x40")
}

func TestLogins(t *testing.T) {
	e := newEnv(t, "alpha", "beta")
	alpha, beta := e.apps["alpha"], e.apps["beta"]
	tests := []struct {
		name   string
		user   string
		auth   gossh.AuthMethod
		wantOK bool
	}{
		{"own key", "alpha", gossh.PublicKeys(alpha.signer), true},
		{"key of another app", "beta", gossh.PublicKeys(alpha.signer), false},
		{"own password", "beta", gossh.Password(beta.password), true},
		{"password of another app", "beta", gossh.Password(alpha.password), false},
		{"wrong password", "alpha", gossh.Password("wrong"), false},
		{"unknown app", "gamma", gossh.PublicKeys(alpha.signer), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := dial(t, e, tt.user, tt.auth)
			if err == nil {
				client.Close()
			}
			if ok := err == nil; ok != tt.wantOK {
				t.Errorf("login as %s: err %v, want success %v", tt.user, err, tt.wantOK)
			}
		})
	}
}

func TestFailedLoginsLockTheSourceOut(t *testing.T) {
	e := newEnvWithoutServer(t, "locked")
	e.start(sshd.Config{MaxAuthFailures: 3, AuthFailureWindow: time.Hour})
	app := e.apps["locked"]
	for range 3 {
		if client, err := dial(t, e, "locked", gossh.Password("wrong")); err == nil {
			client.Close()
			t.Fatal("a wrong password logged in")
		}
	}
	client, err := dial(t, e, "locked", gossh.Password(app.password))
	if err == nil {
		client.Close()
		t.Fatal("the right password still works after 3 failures; want the source locked out")
	}
}

func TestHostKeyIsTheSameAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh_host_ed25519_key")
	fingerprint := func() string {
		if err := sshd.EnsureHostKey(path); err != nil {
			t.Fatal(err)
		}
		e := newEnvWithoutServer(t, "hk")
		server, err := sshd.New(sshd.Config{Addr: "127.0.0.1:0", HostKeyPath: path, SandboxBinary: "/bin/false", SandboxCgroup: testCgroup(t), Logger: e.logger()}, e.platform)
		if err != nil {
			t.Fatal(err)
		}
		e.server = server
		return serverFingerprint(t, e)
	}
	first, second := fingerprint(), fingerprint()
	if first != second {
		t.Errorf("host key changed across restarts: %s then %s", first, second)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if _, err := sshd.New(sshd.Config{HostKeyPath: filepath.Join(dir, "missing"), SandboxBinary: "/bin/false"}, &fakePlatform{}); err == nil {
		t.Error("New without a host key file succeeded; want a refusal")
	}
}

// serverFingerprint serves e.server briefly and returns the host key a
// client sees.
func serverFingerprint(t *testing.T, e *env) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.server.Serve(ctx) }()
	waitFor(t, "the server to bind", func() bool { return e.server.Addr() != nil })
	var fingerprint string
	conn, _ := gossh.Dial("tcp", e.server.Addr().String(), &gossh.ClientConfig{
		User: "nobody",
		Auth: []gossh.AuthMethod{gossh.Password("x")},
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			fingerprint = gossh.FingerprintSHA256(key)
			return nil
		},
	})
	if conn != nil {
		conn.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fingerprint == "" {
		t.Fatal("no host key seen")
	}
	return fingerprint
}
