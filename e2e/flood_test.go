package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// flood opens n connections from source to addr that never send a byte,
// and closes them when the test ends. Connections the server refuses are
// not counted: what matters is what it does with the rest.
func flood(t *testing.T, source, addr string, n int) {
	t.Helper()
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
			for range work {
				if c, err := d.Dial("tcp", addr); err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}
		})
	}
	for range n {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
}

// TestConnectionFloodLeavesRostiServing runs rosti with 1024 open files
// and floods every listener with connections that never send a byte: from
// one address, far more than rosti could hold, and then the public ports
// (proxy and SSH) from many, more than their budget. The API, the proxy
// and the SSH gateway keep answering others during and after either
// flood, and rosti never stops.
func TestConnectionFloodLeavesRostiServing(t *testing.T) {
	needTools(t, "prlimit", "sftp", "ssh-keygen")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRostiUnder(t, []string{"prlimit", "--nofile=1024:1024", "--"}, bin, data)
	port := in.sshPort(t)
	admin := in.adminUser(t)
	deployer := newSSHClient(t, port)
	app := in.createApp(t, admin, map[string]any{"name": "flood", "image": "static", "plan": 1, "ssh_keys": []string{deployer.pub}})
	t.Cleanup(func() {
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
	})
	publish(t, data, app, "still here")
	in.waitServed(t, "flood.apps.test", "still here")

	apiAnswers := func(*testing.T) error {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(in.apiURL + "/")
		if err != nil {
			return fmt.Errorf("API: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("API: status %d", resp.StatusCode)
		}
		return nil
	}
	proxyAnswers := func(*testing.T) error {
		code, body, err := in.viaProxy("flood.apps.test", "/")
		if err != nil || code != 200 || body != "still here" {
			return fmt.Errorf("proxy: %d %q %v", code, body, err)
		}
		return nil
	}
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte("ls app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sshAnswers := func(t *testing.T) error {
		code, out, errOut := deployer.run(t, "", "sftp", "-F", deployer.config, "-P", port, "-b", batch, "flood@127.0.0.1")
		if code != 0 || !strings.Contains(out, "index.html") {
			return fmt.Errorf("SSH: sftp exit %d: %s %s", code, out, errOut)
		}
		return nil
	}
	alive := func(t *testing.T, when string) {
		t.Helper()
		if in.cmd.ProcessState != nil || strings.Contains(in.logs(), "shutting down") {
			t.Fatalf("rosti stopped %s:\n%s", when, in.logs())
		}
	}
	mustAnswer := func(t *testing.T, when string, checks ...func(*testing.T) error) {
		t.Helper()
		for _, check := range checks {
			if err := check(t); err != nil {
				t.Fatalf("%s: %v\n%s", when, err, in.logs())
			}
		}
		alive(t, when)
	}
	mustAnswer(t, "before the flood", apiAnswers, proxyAnswers, sshAnswers)

	proxyAddr := strings.TrimPrefix(in.httpURL, "http://")
	sshAddr := net.JoinHostPort("127.0.0.1", port)
	apiAddr := strings.TrimPrefix(in.apiURL, "http://")

	t.Run("from one address", func(t *testing.T) {
		flood(t, "127.0.0.2", proxyAddr, 1500)
		flood(t, "127.0.0.3", sshAddr, 1500)
		flood(t, "127.0.0.4", apiAddr, 1500)
		flood(t, "127.0.0.5", in.httpsAddr, 1500)
		// Rosti has seen the flood once it has refused some of it.
		waitFor(t, "rosti refusing the flood on every listener", 60*time.Second, func() (bool, string) {
			alive(t, "during a flood from one address")
			logs := in.logs()
			return strings.Contains(logs, "limiter=public") && strings.Contains(logs, "limiter=api") &&
				strings.Contains(logs, "too many connections not logged in"), "no refusal logged"
		})
		mustAnswer(t, "during a flood from one address", apiAnswers, proxyAnswers, sshAnswers)
	})
	t.Run("from many addresses", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				source := fmt.Sprintf("127.0.1.%d", i+1)
				flood(t, source, proxyAddr, 60)
				flood(t, source, sshAddr, 20)
			})
		}
		wg.Wait()
		mustAnswer(t, "during a flood from many addresses", apiAnswers, proxyAnswers, sshAnswers)
		// The flood stays open; rosti closes what says nothing.
		waitFor(t, "proxy and SSH answering with the flood still connected", 90*time.Second, func() (bool, string) {
			alive(t, "while the flood was held")
			if err := proxyAnswers(t); err != nil {
				return false, err.Error()
			}
			if err := sshAnswers(t); err != nil {
				return false, err.Error()
			}
			return true, ""
		})
	})
	mustAnswer(t, "after the floods", apiAnswers, proxyAnswers, sshAnswers)
	if strings.Contains(in.logs(), "too many open files") {
		t.Errorf("rosti ran out of file descriptors:\n%s", in.logs())
	}
}
