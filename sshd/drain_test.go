package sshd_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/sshd"
)

type sessionResult struct {
	out  string
	code int
}

// runInBackground runs command over ssh and reports its result.
func (e *env) runInBackground(app *testApp, command string) <-chan sessionResult {
	done := make(chan sessionResult, 1)
	go func() {
		out, code := e.ssh(app, command)
		done <- sessionResult{out, code}
	}()
	return done
}

func (e *env) listening() bool {
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", e.port))
	if err == nil {
		conn.Close()
	}
	return err == nil
}

func TestShutdownLetsRunningSessionsFinish(t *testing.T) {
	e := newEnvWithoutServer(t, "drainapp")
	e.start(sshd.Config{LoginGrace: 10 * time.Minute}) // only the drain may end the silent connection
	app := e.apps["drainapp"]
	volume := app.access.VolumeDir
	// The session runs until the test lets it go, after the drain began.
	session := e.runInBackground(app, "touch started; while [ ! -e go ]; do sleep 0.05; done; echo finished")
	waitFor(t, "the session to run", func() bool { _, err := os.Stat(filepath.Join(volume, "started")); return err == nil })
	idle, err := gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", e.port), &gossh.ClientConfig{
		User: app.name, Auth: []gossh.AuthMethod{gossh.PublicKeys(app.signer)}, HostKeyCallback: gossh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	silent, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", e.port)) // never logs in
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- e.server.Shutdown(ctx) }()
	waitFor(t, "the listener to close", func() bool { return !e.listening() })
	if s, err := idle.NewSession(); err == nil {
		s.Close()
		t.Errorf("a new session was opened during the drain")
	}
	mustWrite(t, filepath.Join(volume, "go"), "", 0o644)

	if r := <-session; r.code != 0 || !strings.Contains(r.out, "finished") {
		t.Errorf("the running session was cut: exit %d\n%s", r.code, r.out)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if ctx.Err() != nil {
		t.Errorf("the drain waited for the whole budget: an idle or silent connection held it")
	}
	if err := idle.Wait(); err == nil {
		t.Errorf("the idle connection ended without an error; want it closed by the server")
	}
	silent.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, silent); err != nil {
		t.Errorf("the connection that never logged in was left open: %v", err)
	}
}

func TestShutdownCutsSessionsAtTheBudget(t *testing.T) {
	e := newEnv(t, "cutsession")
	app := e.apps["cutsession"]
	volume := app.access.VolumeDir
	session := e.runInBackground(app, "touch started; sleep 600; echo finished")
	waitFor(t, "the session to run", func() bool { _, err := os.Stat(filepath.Join(volume, "started")); return err == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.server.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if r := <-session; r.code == 0 || strings.Contains(r.out, "finished") {
		t.Errorf("a session outlived the shutdown budget: exit %d\n%s", r.code, r.out)
	}
}
