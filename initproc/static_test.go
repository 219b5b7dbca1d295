package initproc

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestOwnStaticServer(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		argv    []string
		wantDir string
		wantOK  bool
	}{
		{name: "this binary's static server", argv: []string{self, "init", "--serve-static", "/srv/app"}, wantDir: "/srv/app", wantOK: true},
		{name: "another binary", argv: []string{"/bin/true", "init", "--serve-static", "/srv/app"}},
		{name: "missing binary", argv: []string{"/nonexistent", "init", "--serve-static", "/srv/app"}},
		{name: "other arguments", argv: []string{self, "init", "--serve-static", "/srv/app", "--x"}},
		{name: "another role", argv: []string{self, "init", "--type", "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, ok := ownStaticServer(tt.argv)
			if dir != tt.wantDir || ok != tt.wantOK {
				t.Errorf("ownStaticServer(%q) = %q, %v; want %q, %v", tt.argv, dir, ok, tt.wantDir, tt.wantOK)
			}
		})
	}
}

// The static server run inside init serves until init is told to stop,
// and init then exits 0.
func TestStaticServedInsideInit(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() {
		done <- runInit(initOptions{
			dir: dir, stdout: os.Stdout, stderr: os.Stderr, diag: io.Discard, stop: stop,
			serve: func(stop <-chan struct{}) int {
				if err := serveStatic(dir, port, stop); err != nil {
					return 1
				}
				return 0
			},
		})
	}()
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "inside" {
		t.Errorf("GET / = %q", body)
	}
	close(stop)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("init did not stop")
	}
}
