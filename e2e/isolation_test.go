package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rosti-paas/rosti/runtime/ociimage"
)

// importHTTPServerRuntime builds the tests' small static HTTP server into
// an image, imports it with `rosti image import`, and adds it to the
// catalogue as the runtime "httpserver".
func (in *instance) importHTTPServerRuntime(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "httpserver")
	build := exec.Command("go", "build", "-o", bin, "../runtime/rttest/httpserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build httpserver: %v\n%s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	name := "rosti.test/httpserver:e2e"
	archive := filepath.Join(dir, "image.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	err = ociimage.WriteArchive(f, ociimage.Image{
		Name: name,
		Files: []ociimage.File{
			ociimage.Dir("/srv", 0o755),
			ociimage.Dir("/tmp", fs.ModeSticky|0o777),
			ociimage.Regular("/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/false\n")),
			ociimage.Regular("/httpserver", 0o755, prog),
		},
		Config: ocispec.ImageConfig{Cmd: []string{"/httpserver"}},
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(in.bin, "image", "import", "--data", in.dataDir, archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), name) {
		t.Fatalf("image import: %v %s", err, out)
	}
	if out, err := in.admin("set-runtime", "httpserver", "--image", name, "--command", "/httpserver"); err != nil {
		t.Fatalf("set-runtime: %v %s", err, out)
	}
	return name
}

func (in *instance) appGet(t *testing.T, u user, app int64, path string) string {
	t.Helper()
	st := in.status(t, u, app)
	if len(st.Containers) == 0 {
		t.Fatalf("app %d has no container: %+v", app, st)
	}
	body, err := get(fmt.Sprintf("http://%s:8080%s", st.Containers[0].IP, path))
	if err != nil {
		return "error: " + err.Error() + " " + body
	}
	return body
}

func (in *instance) waitRunning(t *testing.T, u user, app int64) {
	t.Helper()
	waitFor(t, "app running", 60*time.Second, func() (bool, string) {
		st := in.status(t, u, app)
		return st.HTTPStatus && len(st.Containers) == 1, fmt.Sprintf("%+v", st)
	})
}

// TestAppIsolation: apps run as their own non-root uid, see only their own
// volume, reach apps of their own company but not of another, and the
// plan's memory limit holds.
func TestAppIsolation(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	bob := in.register(t, "bob")
	in.importHTTPServerRuntime(t)

	mine := in.createApp(t, admin, map[string]any{"name": "mine", "image": "httpserver", "plan": 1})
	sibling := in.createApp(t, admin, map[string]any{"name": "sibling", "image": "httpserver", "plan": 1})
	theirs := in.createApp(t, bob, map[string]any{"name": "theirs", "image": "httpserver", "plan": 1})
	for _, a := range []struct {
		u  user
		id int64
	}{{admin, mine}, {admin, sibling}, {bob, theirs}} {
		in.waitRunning(t, a.u, a.id)
	}
	secret := filepath.Join(data, "volumes", fmt.Sprint(theirs), "secret")
	if err := os.WriteFile(secret, []byte("bob's"), 0o600); err != nil {
		t.Fatal(err)
	}
	siblingIP := in.status(t, admin, sibling).Containers[0].IP
	theirIP := in.status(t, bob, theirs).Containers[0].IP

	tests := []struct {
		name, path, want string
		refuse           bool
	}{
		{"runs as the app's own uid", "/whoami", fmt.Sprintf("uid=%d gid=%d", 200000+mine, 200000+mine), false},
		{"writes its volume", "/write?path=/srv/mine.txt&data=x", "ok", false},
		{"cannot read another app's volume by host path", "/read?path=" + secret, "bob's", true},
		{"cannot read the store", "/read?path=" + filepath.Join(data, "rosti.db"), "", true},
		{"reaches an app of its company", "/dial?addr=" + siblingIP + ":8080", "ok", false},
		{"cannot reach another company's app", "/dial?addr=" + theirIP + ":8080", "ok", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := in.appGet(t, admin, mine, tc.path)
			if tc.refuse == (got == tc.want || (tc.want == "" && !strings.HasPrefix(got, "error"))) {
				t.Fatalf("got %q (want %q, refused: %v)", got, tc.want, tc.refuse)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(data, "volumes", fmt.Sprint(mine), "mine.txt")); err != nil || fi.Sys() == nil {
		t.Fatalf("file written by the app: %v", err)
	}

	// 400 MiB in a 256 MB plan: the kernel kills it, the status says why,
	// and the app comes back.
	in.appGet(t, admin, mine, "/alloc?mb=400")
	waitFor(t, "OOM reported", 60*time.Second, func() (bool, string) {
		st := in.status(t, admin, mine)
		for _, e := range st.Errors {
			if strings.Contains(e, "more than the plan's 256 MB") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", st)
	})
	in.waitRunning(t, admin, mine)

	for _, a := range []struct {
		u  user
		id int64
	}{{admin, mine}, {admin, sibling}, {bob, theirs}} {
		in.expect(t, 200, a.u.token, "DELETE", pathf("/api/v1/%d/apps/%d/", a.u.company, a.id), nil)
	}
}

// TestCrashLoopBacksOff: a process that exits at once is restarted with
// growing pauses, which the status shows.
func TestCrashLoopBacksOff(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	in.importHTTPServerRuntime(t)
	app := in.createApp(t, admin, map[string]any{"name": "crashy", "image": "httpserver", "plan": 1})
	in.waitRunning(t, admin, app)
	procfile := filepath.Join(data, "volumes", fmt.Sprint(app), "app", "Procfile")
	if err := os.WriteFile(procfile, []byte("web: /no-such-program\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A restart starts a new container that never answers: the old one
	// keeps serving, and the answer says why.
	r := in.expect(t, 400, admin.token, "PUT", pathf("/api/v1/%d/apps-action/%d/", admin.company, app), map[string]string{"action": "restart"})
	if !strings.Contains(string(r.body), "previous one keeps running") {
		t.Fatalf("failed restart: %s", r.body)
	}
	if got := in.appGet(t, admin, app, "/whoami"); !strings.HasPrefix(got, "uid=") {
		t.Fatalf("the old version stopped serving: %q", got)
	}
	in.action(t, admin, app, "rebuild") // a rebuild replaces it anyway

	delays := map[int]time.Duration{}
	waitFor(t, "three restarts", 90*time.Second, func() (bool, string) {
		st := in.status(t, admin, app)
		if len(st.Containers) != 1 {
			return false, fmt.Sprintf("%+v", st)
		}
		c := st.Containers[0]
		if c.NextRestart != nil {
			next, err := time.Parse(time.RFC3339Nano, *c.NextRestart)
			if err == nil {
				if _, seen := delays[c.Restarts]; !seen {
					delays[c.Restarts] = time.Until(next)
				}
			}
		}
		return c.Restarts >= 3 && c.Reason == "exited", fmt.Sprintf("%+v", c)
	})
	st := in.status(t, admin, app)
	if st.Running && st.HTTPStatus {
		t.Fatalf("a crashing app reports healthy: %+v", st)
	}
	if d1, d3 := delays[1], delays[3]; d1 <= 0 || d3 <= d1 {
		t.Fatalf("no back-off: pause after restart 1 %v, after restart 3 %v (all: %v)", d1, d3, delays)
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}
