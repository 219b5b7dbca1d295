package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// viaProxy sends a GET for host through the proxy.
func (in *instance) viaProxy(host, path string) (int, string, error) {
	return in.viaProxyWith(host, path, nil)
}

// viaProxyHeaders is viaProxy for "/" that hands the answer's headers to check.
func (in *instance) viaProxyHeaders(host string, check func(http.Header)) (int, string, error) {
	return in.viaProxyWith(host, "/", check)
}

func (in *instance) viaProxyWith(host, path string, check func(http.Header)) (int, string, error) {
	req, err := http.NewRequest("GET", in.httpURL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	c := http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if check != nil {
		check(resp.Header)
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// publish writes the app's index.html.
func publish(t *testing.T, data string, app int64, body string) {
	t.Helper()
	dir := filepath.Join(data, "volumes", fmt.Sprint(app), "app")
	waitFor(t, "volume of app", 30*time.Second, func() (bool, string) {
		_, err := os.Stat(dir)
		return err == nil, fmt.Sprint(err)
	})
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (in *instance) waitServed(t *testing.T, host, want string) {
	t.Helper()
	waitFor(t, host+" serves "+want, 60*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy(host, "/")
		return err == nil && code == 200 && body == want, fmt.Sprintf("%d %q %v", code, body, err)
	})
}

// TestProxyRoutesByHost: every host name reaches its own app and nothing
// else, whoever owns it.
func TestProxyRoutesByHost(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--panel-domain", "panel.apps.test", "--wildcard-domains")
	admin := in.adminUser(t)
	bob := in.register(t, "bob")
	if code, body, err := in.viaProxy("panel.apps.test", "/api/schema/"); err != nil || code != 200 || !strings.Contains(body, "openapi") {
		t.Fatalf("the panel domain does not serve the API: %d %v", code, err)
	}

	alpha := in.createApp(t, admin, map[string]any{"name": "alpha", "image": "static", "plan": 1, "domains": "alpha.apps.test www.alpha.test *.wild.test"})
	beta := in.createApp(t, bob, map[string]any{"name": "beta", "image": "static", "plan": 1})
	publish(t, data, alpha, "alpha")
	publish(t, data, beta, "beta")

	in.waitServed(t, "alpha.apps.test", "alpha")
	in.waitServed(t, "beta.apps.test", "beta")
	tests := []struct {
		name, host string
		status     int
		body       string
	}{
		{"custom domain", "www.alpha.test", 200, "alpha"},
		{"host with port and upper case", "WWW.Alpha.test:80", 200, "alpha"},
		{"wildcard domain", "any.wild.test", 200, "alpha"},
		{"other company's app", "beta.apps.test", 200, "beta"},
		{"unknown host", "nobody.apps.test", 404, "no app is served at this address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := in.viaProxy(tc.host, "/")
			if err != nil || code != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d %q %v, want %d with %q", code, body, err, tc.status, tc.body)
			}
		})
	}

	in.action(t, bob, beta, "stop")
	code, body, err := in.viaProxy("beta.apps.test", "/")
	if err != nil || (code != 502 && code != 503) || strings.Contains(body, "alpha") || !strings.Contains(body, "beta") {
		t.Fatalf("stopped app: %d %q %v", code, body, err)
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, alpha), nil)
	in.expect(t, 200, bob.token, "DELETE", pathf("/api/v1/%d/apps/%d/", bob.company, beta), nil)
	if code, _, _ := in.viaProxy("www.alpha.test", "/"); code != 404 {
		t.Fatalf("a deleted app's domain still routed: %d", code)
	}
}

// TestRestartsUnderLoad: with requests flowing all the time, restarts,
// a plan change and an image change through the API fail none of them.
func TestRestartsUnderLoad(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	in.importHTTPServerRuntime(t)
	app := in.createApp(t, admin, map[string]any{"name": "busy", "image": "static", "plan": 1})
	publish(t, data, app, "steady")
	in.waitServed(t, "busy.apps.test", "steady")

	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 4
	deadline := time.Now().Add(3 * time.Minute) // the load stops by itself
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond) // ~100 requests/s per worker
			defer tick.Stop()
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				code, body, err := in.viaProxy("busy.apps.test", "/")
				// The static runtime serves the file, the httpserver runtime greets.
				if err != nil || code != 200 || (body != "steady" && !strings.HasPrefix(body, "hello from")) {
					failed.Add(1)
					failures.Store(fmt.Sprintf("%d %q %v", code, body, err), true)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitFor(t, "load running", 10*time.Second, func() (bool, string) { return ok.Load() > 50, fmt.Sprint(ok.Load()) })
	for range 5 {
		in.action(t, admin, app, "restart")
	}
	// A plan change replaces the containers too (plan 3 is start+, 512 MB).
	in.expect(t, 200, admin.token, "PATCH", pathf("/api/v1/%d/apps/%d/", admin.company, app), map[string]any{"plan": 3})
	waitFor(t, "plan applied", 60*time.Second, func() (bool, string) {
		st := in.status(t, admin, app)
		return len(st.Containers) == 1 && st.Memory.Limit == 512 && st.HTTPStatus, fmt.Sprintf("%+v", st)
	})
	// An image change: the static runtime's image for the httpserver's.
	in.expect(t, 200, admin.token, "PATCH", pathf("/api/v1/%d/apps/%d/", admin.company, app), map[string]any{"image": "httpserver"})
	waitFor(t, "image applied", 60*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy("busy.apps.test", "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})
	before := ok.Load()
	waitFor(t, "load after the changes", 10*time.Second, func() (bool, string) { return ok.Load() > before+50, fmt.Sprint(ok.Load()) })
	close(stop)
	wg.Wait()
	failures.Range(func(k, _ any) bool { t.Errorf("failed request: %v", k); return true })
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across 5 restarts, a plan change and an image change", failed.Load(), failed.Load()+ok.Load())
	}
	t.Logf("%d requests, none failed", ok.Load())
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}

// TestHealthCheckPath: with a health check path, a new version takes
// traffic only once that path answers; until then a restart fails and
// the old version serves on.
func TestHealthCheckPath(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--health-timeout", "5s")
	admin := in.adminUser(t)
	in.importHTTPServerRuntime(t)
	// The test server's /read answers 500 while the file is missing.
	app := in.createApp(t, admin, map[string]any{"name": "checked", "image": "httpserver", "plan": 1, "healthcheck": "/read?path=/srv/ready"})
	const host = "checked.apps.test"
	in.waitServed(t, host, "hello from checked-web-1")

	r := in.expect(t, 400, admin.token, "PUT", pathf("/api/v1/%d/apps-action/%d/", admin.company, app), map[string]string{"action": "restart"})
	for _, want := range []string{"previous one keeps running", "GET /read?path=/srv/ready", "500"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("failed restart's answer lacks %q: %s", want, r.body)
		}
	}
	if code, body, err := in.viaProxy(host, "/"); err != nil || code != 200 || body != "hello from checked-web-1" {
		t.Fatalf("after the failed restart: %d %q %v, want the old version", code, body, err)
	}
	if st := in.status(t, admin, app); len(st.Containers) != 1 {
		t.Fatalf("the unhealthy container was left behind: %+v", st.Containers)
	}

	if code, body, err := in.viaProxy(host, "/write?path=/srv/ready&data=yes"); err != nil || code != 200 {
		t.Fatalf("make the app ready: %d %q %v", code, body, err)
	}
	in.action(t, admin, app, "restart")
	code, body, err := in.viaProxy(host, "/")
	if err != nil || code != 200 || !strings.HasPrefix(body, "hello from checked-web-") || body == "hello from checked-web-1" {
		t.Fatalf("after the healthy restart: %d %q %v, want the new version", code, body, err)
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}
