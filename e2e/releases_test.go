package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type release struct {
	Version      int64    `json:"version"`
	Status       string   `json:"status"`
	Source       string   `json:"source"`
	Summary      string   `json:"summary"`
	Image        string   `json:"image"`
	Config       []string `json:"config"`
	Current      bool     `json:"current"`
	RolledBackTo int64    `json:"rolled_back_to"`
}

func (in *instance) releases(t *testing.T, u user, app int64) []release {
	t.Helper()
	var out []release
	in.expect(t, 200, u.token, "GET", pathf("/api/v1/%d/apps-releases/%d/", u.company, app), nil).decode(t, &out)
	return out
}

// proxyLoad sends requests to host through the proxy from a few workers
// until stopped (or for three minutes at most), counting answers that are
// not a 200 with one of the accepted bodies.
type proxyLoad struct {
	ok, failed atomic.Int64
	failures   sync.Map
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (in *instance) startLoad(t *testing.T, host string, accept func(body string) bool) *proxyLoad {
	t.Helper()
	l := &proxyLoad{stop: make(chan struct{})}
	deadline := time.Now().Add(3 * time.Minute)
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				code, body, err := in.viaProxy(host, "/")
				if err != nil || code != 200 || !accept(body) {
					l.failed.Add(1)
					l.failures.Store(fmt.Sprintf("%d %q %v", code, body, err), true)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	waitFor(t, "load running", 30*time.Second, func() (bool, string) { return l.ok.Load() > 50, fmt.Sprint(l.ok.Load()) })
	return l
}

// finish stops the load after a few more answers and fails the test for
// any request that failed.
func (l *proxyLoad) finish(t *testing.T, what string) {
	t.Helper()
	before := l.ok.Load()
	waitFor(t, "load after "+what, 30*time.Second, func() (bool, string) { return l.ok.Load() > before+20, fmt.Sprint(l.ok.Load()) })
	close(l.stop)
	l.wg.Wait()
	l.failures.Range(func(k, _ any) bool { t.Errorf("failed request: %v", k); return true })
	if n := l.failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during %s", n, n+l.ok.Load(), what)
	}
	t.Logf("%s: %d requests, none failed", what, l.ok.Load())
}

// TestReleasesConfigAndRollback: a git push, an upload followed by a
// restart, a config change and an image change each make a release; the
// config reaches the app and its release step and never the logs; a
// rollback under load serves the earlier release again with no failed
// request.
func TestReleasesConfigAndRollback(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen", "sftp", "git", "ctr")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	port := in.sshPort(t)
	admin := in.adminUser(t)
	in.importBusybox(t)
	in.importHTTPServerRuntime(t)
	dev := newSSHClient(t, port)
	app := in.createApp(t, admin, map[string]any{"name": "rel", "image": "busybox", "plan": 1, "ssh_keys": []string{dev.pub}})
	in.running(t, admin, app)
	volume := filepath.Join(data, "volumes", fmt.Sprint(app))
	const secret = "s3cr3t-GREETING-value"
	// The web process is the runtime's default (busybox: httpd on /srv/app;
	// later the httpserver image's own), the release step is the Procfile's.
	procfile := "release: echo \"$GREETING\" > /srv/release-greeting\n"
	appEnv := func() string {
		return must(t)(dev.ssh(t, "rel", "tr '\\0' '\\n' < /proc/1/environ"))
	}

	// A git push.
	repo := t.TempDir()
	git := func(args ...string) string { return must(t)(dev.run(t, repo, "git", args...)) }
	git("init", "-q", "-b", "main")
	git("config", "user.email", "e2e@rosti.test")
	git("config", "user.name", "e2e")
	writeTree(t, repo, map[string]string{"index.html": "one", "Procfile": procfile})
	git("add", ".")
	git("commit", "-q", "-m", "one")
	must(t)(dev.run(t, repo, "git", "push", fmt.Sprintf("ssh://rel@127.0.0.1:%s/rel", port), "main"))
	in.waitServed(t, "rel.apps.test", "one")

	// A config change reaches the app's processes and, on the next push,
	// its release step; a second identical change is refused.
	env := pathf("/api/v1/%d/apps-env/%d/", admin.company, app)
	var got map[string]string
	in.expect(t, 200, admin.token, "PATCH", env, map[string]any{"GREETING": secret}).decode(t, &got)
	if got["GREETING"] != secret {
		t.Fatalf("apps-env answered %v", got)
	}
	in.expect(t, 409, admin.token, "PATCH", env, map[string]any{"GREETING": secret})
	in.expect(t, 400, admin.token, "PATCH", env, map[string]any{"PORT": "1"})
	if env := appEnv(); !strings.Contains(env, "GREETING="+secret+"\n") {
		t.Fatalf("the app's environment after the config change: %q", env)
	}
	if out := must(t)(dev.ssh(t, "rel", "echo $GREETING")); strings.TrimSpace(out) != secret {
		t.Fatalf("a command over ssh sees GREETING=%q", out)
	}
	writeTree(t, repo, map[string]string{"index.html": "two"})
	git("commit", "-q", "-am", "two")
	must(t)(dev.run(t, repo, "git", "push", fmt.Sprintf("ssh://rel@127.0.0.1:%s/rel", port), "main"))
	if b, _ := os.ReadFile(filepath.Join(volume, "release-greeting")); strings.TrimSpace(string(b)) != secret {
		t.Fatalf("the release step saw GREETING=%q", b)
	}
	in.waitServed(t, "rel.apps.test", "two")

	// Files uploaded over sftp go live with a restart, as a release.
	local := t.TempDir()
	writeTree(t, local, map[string]string{"index.html": "three"})
	batch := filepath.Join(local, "batch")
	if err := os.WriteFile(batch, []byte("put "+filepath.Join(local, "index.html")+" app/index.html\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t)(dev.run(t, local, "sftp", "-F", dev.config, "-P", port, "-b", batch, "rel@127.0.0.1"))
	in.action(t, admin, app, "restart")
	in.waitServed(t, "rel.apps.test", "three")
	// A restart with nothing uploaded makes no release.
	before := len(in.releases(t, admin, app))
	in.action(t, admin, app, "restart")
	if n := len(in.releases(t, admin, app)); n != before {
		t.Fatalf("a plain restart made a release: %d releases, was %d", n, before)
	}

	// An image change.
	in.expect(t, 200, admin.token, "PATCH", pathf("/api/v1/%d/apps/%d/", admin.company, app), map[string]any{"image": "httpserver"})
	waitFor(t, "new image serving", 60*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy("rel.apps.test", "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})

	rels := in.releases(t, admin, app)
	var sources []string
	for _, r := range rels {
		if r.Status != "succeeded" {
			t.Errorf("release %+v did not succeed", r)
		}
		sources = append(sources, r.Source)
	}
	if want := []string{"image", "upload", "git", "config", "git", "create"}; !slices.Equal(sources, want) {
		t.Fatalf("release sources, newest first: %v, want %v", sources, want)
	}
	if !rels[0].Current || !slices.Equal(rels[0].Config, []string{"GREETING"}) {
		t.Fatalf("the newest release: %+v", rels[0])
	}
	firstPush := rels[len(rels)-2]

	// Rollback to the first push, under load: its files, its image and its
	// (empty) config, and no failed request during the switch.
	load := in.startLoad(t, "rel.apps.test", func(body string) bool { return body == "one" || strings.HasPrefix(body, "hello from") })
	var rolled release
	in.expect(t, 200, admin.token, "PUT", pathf("/api/v1/%d/apps-rollback/%d/", admin.company, app), map[string]any{"version": firstPush.Version}).decode(t, &rolled)
	in.waitServed(t, "rel.apps.test", "one")
	load.finish(t, "the rollback")
	if rolled.Source != "rollback" || rolled.RolledBackTo != firstPush.Version || len(rolled.Config) != 0 || rolled.Image != firstPush.Image {
		t.Fatalf("the rollback release: %+v (to %+v)", rolled, firstPush)
	}
	in.expect(t, 400, admin.token, "PUT", pathf("/api/v1/%d/apps-rollback/%d/", admin.company, app), map[string]any{"version": 999})

	// Unsetting a variable removes it.
	in.expect(t, 200, admin.token, "PATCH", env, map[string]any{"GREETING": "again"})
	var after map[string]string
	in.expect(t, 200, admin.token, "PATCH", env, map[string]any{"GREETING": nil}).decode(t, &after)
	if _, set := after["GREETING"]; set {
		t.Fatalf("GREETING still set: %v", after)
	}
	if env := appEnv(); strings.Contains(env, "GREETING") {
		t.Fatalf("the app's environment after unsetting: %q", env)
	}
	in.expect(t, 400, admin.token, "PATCH", env, map[string]any{"GREETING": nil})
	if strings.Contains(in.logs(), secret) || strings.Contains(in.output(), secret) {
		t.Fatal("a config value appears in rosti's output")
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}

// TestScaleSpreadsRequests: web=3 runs three containers the proxy spreads
// requests over; scaling back to one under load drains before removing.
func TestScaleSpreadsRequests(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	in.importHTTPServerRuntime(t)
	app := in.createApp(t, admin, map[string]any{"name": "wide", "image": "httpserver", "plan": 1})
	in.waitRunning(t, admin, app)
	scale := pathf("/api/v1/%d/apps-scale/%d/", admin.company, app)
	var counts map[string]int
	in.expect(t, 200, admin.token, "PUT", scale, map[string]any{"web": 3}).decode(t, &counts)
	if counts["web"] != 3 {
		t.Fatalf("apps-scale answered %v", counts)
	}
	in.expect(t, 400, admin.token, "PUT", scale, map[string]any{"web": 99})
	in.expect(t, 400, admin.token, "PUT", scale, map[string]any{"nosuchtype": 1})
	waitFor(t, "three containers running", 60*time.Second, func() (bool, string) {
		st := in.status(t, admin, app)
		running := 0
		for _, c := range st.Containers {
			if c.State == "running" {
				running++
			}
		}
		return running == 3, fmt.Sprintf("%+v", st.Containers)
	})
	seen := map[string]bool{}
	waitFor(t, "requests on every container", 30*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy("wide.apps.test", "/")
		if err == nil && code == 200 {
			seen[body] = true
		}
		return len(seen) == 3, fmt.Sprint(seen)
	})
	load := in.startLoad(t, "wide.apps.test", func(body string) bool { return strings.HasPrefix(body, "hello from wide-web-") })
	in.expect(t, 200, admin.token, "PUT", scale, map[string]any{"web": 1})
	waitFor(t, "one container left", 60*time.Second, func() (bool, string) {
		st := in.status(t, admin, app)
		return len(st.Containers) == 1, fmt.Sprintf("%+v", st.Containers)
	})
	load.finish(t, "scaling down")
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}
