package e2e

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/rosti-paas/rosti/runtime/ociimage"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

// gatedRegistry is an in-memory registry on the loopback address that
// holds every blob download until open is called, so that a pull stays
// in progress for as long as a test needs.
func gatedRegistry(t *testing.T) (host string, open func()) {
	t.Helper()
	gate := make(chan struct{})
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	open = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open) // before srv.Close, which waits for held downloads
	return strings.TrimPrefix(srv.URL, "http://"), open
}

// TestNotRunningSaysTheSameOverSSHAndInStatus: while an app's image is
// being pulled, and after its pull failed, a command over SSH exits 125
// with one line that says what the app's status says (its info line about
// the pull, its error about the failure); once the image is there the
// command runs.
func TestNotRunningSaysTheSameOverSSHAndInStatus(t *testing.T) {
	in := startRosti(t, rostiBin(t), filepath.Join(t.TempDir(), "data"))
	port := in.sshPort(t)
	admin := in.adminUser(t)
	client := newSSHClient(t, port)
	host, open := gatedRegistry(t)
	ref := host + "/apps/httpserver:1"
	img := rttest.HTTPServer(t, ref)
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs busybox-static: %v", err)
	}
	img.Files = append(img.Files, ociimage.Regular("/bin/busybox", 0o755, busybox), ociimage.Symlink("/bin/sh", "busybox"))
	rttest.Push(t, ref, img)
	missing := host + "/apps/missing:1"
	for name, image := range map[string]string{"gated": ref, "broken": missing} {
		if out, err := in.admin("set-runtime", name, "--image", image, "--command", "/httpserver"); err != nil {
			t.Fatalf("set-runtime %s: %v %s", name, err, out)
		}
	}
	// line is the first of lines that starts with prefix.
	line := func(lines []string, prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		return ""
	}
	// sshSays runs a command until the one line on its stderr names what
	// the status says at the same time (a pull's progress moves).
	sshSays := func(app string, id int64, what string, from func(appStatus) string) {
		t.Helper()
		waitFor(t, app+": ssh says what the status says", 30*time.Second, func() (bool, string) {
			before := from(in.status(t, admin, id))
			code, out, errOut := client.ssh(t, app, "echo 1")
			after := from(in.status(t, admin, id))
			want := "rosti: app " + app + " is not running: " + what + before
			ok := before != "" && before == after && code == 125 && out == "" &&
				strings.HasPrefix(errOut, want) && strings.Count(errOut, "\n") == 1
			return ok, fmt.Sprintf("status %q, ssh %d %q %q", before, code, out, errOut)
		})
	}

	gated := in.createApp(t, admin, map[string]any{"name": "gated", "image": "gated", "plan": 1, "ssh_keys": []string{client.pub}})
	sshSays("gated", gated, "it waits for its image (", func(st appStatus) string {
		if st.Running {
			return ""
		}
		return line(st.Info, "pulling image "+ref+":")
	})

	broken := in.createApp(t, admin, map[string]any{"name": "broken", "image": "broken", "plan": 1, "ssh_keys": []string{client.pub}})
	sshSays("broken", broken, "it does not start: ", func(st appStatus) string {
		if st.Running || line(st.Info, "pulling image") != "" {
			return "" // (again: a failed pull is retried)
		}
		return line(st.Errors, "pulling image "+missing+" failed")
	})

	open()
	waitFor(t, "gated runs once its image is there", 60*time.Second, func() (bool, string) {
		code, out, errOut := client.ssh(t, "gated", "echo 1")
		st := in.status(t, admin, gated)
		return code == 0 && out == "1\n" && st.Running && line(st.Info, "pulling image") == "", fmt.Sprintf("ssh %d %q %q, status %+v", code, out, errOut, st)
	})
	for _, id := range []int64{gated, broken} {
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, id), nil)
	}
}
