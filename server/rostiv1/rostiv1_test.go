package rostiv1_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server"
	"github.com/rosti-paas/rosti/store"
)

// testAPI is the whole API over a real store, with two tenants.
type testAPI struct {
	url                string
	p                  *platform.Platform
	store              *store.Store
	alice, bob         string // tokens
	aliceCo, bobCo     int64
	aliceUser, bobUser store.User
	dbs                *fakeDatabases
}

func newTestAPI(t testing.TB) *testAPI {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbs := newFakeDatabases()
	p, st := facetest.Platform(t, platform.Config{AppsDomain: "apps.test", SSHHost: "host.test", SSHPort: 2222}, platform.Deps{Databases: dbs, Log: log})
	srv := httptest.NewServer(server.Handler(p, "test", log))
	t.Cleanup(srv.Close)
	a := &testAPI{url: srv.URL, p: p, store: st, dbs: dbs}
	a.aliceUser, a.alice, a.aliceCo = mustAccount(t, p, "alice")
	a.bobUser, a.bob, a.bobCo = mustAccount(t, p, "bob")
	return a
}

func mustAccount(t testing.TB, p *platform.Platform, name string) (store.User, string, int64) {
	t.Helper()
	u, err := p.CreateUser(context.Background(), platform.Operator(), platform.NewUser{Username: name, Password: "password-" + name})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := p.CreateToken(context.Background(), u, "test")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := p.Companies(context.Background(), u)
	if err != nil || len(cs) != 1 {
		t.Fatalf("companies of %s: %v %v", name, cs, err)
	}
	return u, token, cs[0].ID
}

type response struct {
	status int
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, r.body)
	}
}

func (a *testAPI) do(t testing.TB, token, method, path string, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, b}
}

func (a *testAPI) createApp(t testing.TB, token string, company int64, body string) int64 {
	t.Helper()
	r := a.do(t, token, "POST", fmt.Sprintf("/api/v1/%d/apps/", company), body)
	if r.status != 200 {
		t.Fatalf("create app: %d %s", r.status, r.body)
	}
	var app struct{ ID int64 }
	r.json(t, &app)
	return app.ID
}

const validKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb4Bj0Mf1n7z0lR0PjXw8f0y3e0tq6R8yQm2x1mYQ1Z alice@laptop"

func TestAppValidation(t *testing.T) {
	a := newTestAPI(t)
	apps := fmt.Sprintf("/api/v1/%d/apps/", a.aliceCo)
	a.createApp(t, a.alice, a.aliceCo, `{"name":"taken","image":"static","plan":1,"domains":"taken.example.com"}`)
	tests := []struct {
		name      string
		body      string
		status    int
		wantField string // a field the validation errors must name
		wantText  string // text the answer must hold
	}{
		{"missing required fields", `{}`, 400, "name", "this field is required"},
		{"name not a DNS label", `{"name":"My App","image":"static","plan":1}`, 400, "name", "DNS label"},
		{"name too long to be a host name with its process", `{"name":"` + strings.Repeat("a", 41) + `","image":"static","plan":1}`, 400, "name", "1-40"},
		{"name an internationalized label", `{"name":"xn--bcher-kva","image":"static","plan":1}`, 400, "name", "internationalized"},
		{"name taken", `{"name":"taken","image":"static","plan":1}`, 400, "name", "already exists"},
		{"unknown image", `{"name":"a1","image":"nope:1","plan":1}`, 400, "image", "runtimes list"},
		{"unknown plan", `{"name":"a1","image":"static","plan":99}`, 400, "plan", "plans list"},
		{"plan of wrong type", `{"name":"a1","image":"static","plan":"one"}`, 400, "plan", "whole number"},
		{"port 8000", `{"name":"a1","image":"static","plan":1,"app_port":8000}`, 400, "app_port", "8000"},
		{"port too low", `{"name":"a1","image":"static","plan":1,"app_port":80}`, 400, "app_port", "1024"},
		{"port too high", `{"name":"a1","image":"static","plan":1,"app_port":70000}`, 400, "app_port", "65535"},
		{"healthcheck not a path", `{"name":"a1","image":"static","plan":1,"healthcheck":"healthz"}`, 400, "healthcheck", "starting with a single '/'"},
		{"healthcheck another host", `{"name":"a1","image":"static","plan":1,"healthcheck":"//evil.test/x"}`, 400, "healthcheck", "starting with a single '/'"},
		{"healthcheck with a space", `{"name":"a1","image":"static","plan":1,"healthcheck":"/a b"}`, 400, "healthcheck", "spaces"},
		{"healthcheck a number", `{"name":"a1","image":"static","plan":1,"healthcheck":5}`, 400, "healthcheck", "string"},
		{"bad mode", `{"name":"a1","image":"static","plan":1,"mode":"https"}`, 400, "mode", "https+le"},
		{"bad domain", `{"name":"a1","image":"static","plan":1,"domains":"ok.example.com bad_domain"}`, 400, "domains", "bad_domain"},
		{"domain of another app", `{"name":"a1","image":"static","plan":1,"domains":["TAKEN.example.com"]}`, 400, "domains", "another app"},
		{"another app's default domain", `{"name":"a1","image":"static","plan":1,"domains":"taken.apps.test"}`, 400, "domains", "only a1.apps.test"},
		{"bad ssh key named", `{"name":"a1","image":"static","plan":1,"ssh_keys":["` + validKey + `","ssh-rsa nonsense"]}`, 400, "ssh_keys", "key 2 (ssh-rsa nonsense)"},
		{"short ssh password", `{"name":"a1","image":"static","plan":1,"ssh_password":"short"}`, 400, "ssh_password", "at least"},
		{"malformed JSON", `{"name":`, 400, "", "malformed JSON"},
		{"not an object", `[1,2]`, 400, "", "JSON object"},
		{"too large", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "", "larger than 1 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, a.alice, "POST", apps, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var body struct {
				Message string              `json:"message"`
				Errors  map[string][]string `json:"errors"`
			}
			r.json(t, &body)
			if body.Message == "" {
				t.Fatalf("error without a message: %s", r.body)
			}
			if tc.wantField != "" && len(body.Errors[tc.wantField]) == 0 {
				t.Fatalf("no error for field %q: %s", tc.wantField, r.body)
			}
			if !strings.Contains(string(r.body), tc.wantText) {
				t.Fatalf("answer lacks %q: %s", tc.wantText, r.body)
			}
		})
	}
	var list []map[string]any
	a.do(t, a.alice, "GET", apps, "").json(t, &list)
	if len(list) != 1 {
		t.Fatalf("rejected creates left apps behind: %v", list)
	}
}

func TestAppLifecycle(t *testing.T) {
	a := newTestAPI(t)
	base := fmt.Sprintf("/api/v1/%d/apps/", a.aliceCo)
	id := a.createApp(t, a.alice, a.aliceCo, `{"name":"shop","image":"static","plan":"1","ssh_password":"s3cret-pass"}`)
	one := fmt.Sprintf("%s%d/", base, id)

	var app map[string]any
	a.do(t, a.alice, "GET", one, "").json(t, &app)
	want := map[string]any{"name": "shop", "enabled": true, "image": platform.StaticRuntimeImage, "mode": "http",
		"plan": 1.0, "app_port": 8080.0, "ssh_password": "", "healthcheck": ""}
	for k, v := range want {
		if app[k] != v {
			t.Errorf("%s = %v, want %v", k, app[k], v)
		}
	}
	if d := app["domains"].([]any); len(d) != 1 || d[0] != "shop.apps.test" {
		t.Errorf("default domain: %v", d)
	}
	access := app["ssh_access"].([]any)[0].(map[string]any)
	if access["hostname"] != "host.test" || access["port"] != 2222.0 || access["username"] != "shop" {
		t.Errorf("ssh_access: %v", access)
	}
	if _, ok := app["date"].(string); !ok {
		t.Errorf("date missing: %v", app)
	}

	tests := []struct {
		name   string
		method string
		body   string
		status int
		check  func(map[string]any) bool
	}{
		{"PUT sends one field", "PUT", `{"app_port": 3000}`, 200, func(m map[string]any) bool { return m["app_port"] == 3000.0 && m["mode"] == "http" }},
		{"PATCH mode", "PATCH", `{"mode":"https+le"}`, 200, func(m map[string]any) bool { return m["mode"] == "https+le" && m["app_port"] == 3000.0 }},
		{"domains as list, the default kept first", "PATCH", `{"domains":["www.shop.example","shop.example"]}`, 200, func(m map[string]any) bool {
			d := m["domains"].([]any)
			return len(d) == 3 && d[0] == "shop.apps.test" && d[1] == "www.shop.example"
		}},
		{"empty domains give the default", "PATCH", `{"domains":""}`, 200, func(m map[string]any) bool { return m["domains"].([]any)[0] == "shop.apps.test" }},
		{"keys", "PATCH", `{"ssh_keys":["` + validKey + `"]}`, 200, func(m map[string]any) bool { return len(m["ssh_keys"].([]any)) == 1 }},
		{"password never echoed", "PATCH", `{"ssh_password":"an0ther-pass"}`, 200, func(m map[string]any) bool { return m["ssh_password"] == "" }},
		{"same name is fine", "PATCH", `{"name":"shop"}`, 200, func(m map[string]any) bool { return m["name"] == "shop" }},
		{"rename refused", "PATCH", `{"name":"other"}`, 400, nil},
		{"without trailing slash", "PATCH", `{"app_port": 4000}`, 200, func(m map[string]any) bool { return m["app_port"] == 4000.0 }},
		{"healthcheck path", "PATCH", `{"healthcheck":"/healthz?full=1"}`, 200, func(m map[string]any) bool { return m["healthcheck"] == "/healthz?full=1" }},
		{"healthcheck back to TCP", "PATCH", `{"healthcheck":""}`, 200, func(m map[string]any) bool { return m["healthcheck"] == "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := one
			if tc.name == "without trailing slash" {
				path = strings.TrimSuffix(one, "/")
			}
			r := a.do(t, a.alice, tc.method, path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.check != nil {
				var m map[string]any
				r.json(t, &m)
				if !tc.check(m) {
					t.Fatalf("unexpected app: %s", r.body)
				}
			}
		})
	}
	if r := a.do(t, a.alice, "DELETE", one, ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := a.do(t, a.alice, "GET", one, ""); r.status != 404 {
		t.Fatalf("deleted app still readable: %d", r.status)
	}
	if r := a.do(t, a.alice, "GET", base+"abc/", ""); r.status != 404 {
		t.Fatalf("non-numeric id: %d", r.status)
	}
}

func TestAuthSchemes(t *testing.T) {
	a := newTestAPI(t)
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"Rosti Token", "Token " + a.alice, 200},
		{"Drycc lower-case token", "token " + a.alice, 200},
		{"tsuru Bearer", "Bearer " + a.alice, 200},
		{"no header", "", 401},
		{"wrong token", "Token 0000", 401},
		{"unknown scheme", "Basic " + a.alice, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.url+"/api/v1/companies/", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	a := newTestAPI(t)
	r := a.do(t, a.alice, "POST", "/api/v1/tokens/", `{"name":"ci"}`)
	var created struct {
		ID    int64
		Token string
	}
	r.json(t, &created)
	if r.status != 200 || created.Token == "" {
		t.Fatalf("create token: %d %s", r.status, r.body)
	}
	if r := a.do(t, created.Token, "GET", "/api/v1/companies/", ""); r.status != 200 {
		t.Fatalf("new token refused: %d", r.status)
	}
	if r := a.do(t, a.alice, "GET", "/api/v1/tokens/", ""); bytes.Contains(r.body, []byte(created.Token)) {
		t.Fatalf("token list shows a secret: %s", r.body)
	}
	if r := a.do(t, a.bob, "DELETE", fmt.Sprintf("/api/v1/tokens/%d/", created.ID), ""); r.status != 404 {
		t.Fatalf("bob revoking alice's token: %d", r.status)
	}
	if r := a.do(t, a.alice, "DELETE", fmt.Sprintf("/api/v1/tokens/%d/", created.ID), ""); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := a.do(t, created.Token, "GET", "/api/v1/companies/", ""); r.status != 401 {
		t.Fatalf("revoked token still works: %d", r.status)
	}
}

func TestCatalogEditsNeedSuperuser(t *testing.T) {
	a := newTestAPI(t)
	// alice was created first, but through CreateUser with no superuser flag: only
	// the very first store user is a superuser, and here that is alice.
	if !a.aliceUser.IsSuperuser || a.bobUser.IsSuperuser {
		t.Fatalf("superusers: alice %v bob %v", a.aliceUser.IsSuperuser, a.bobUser.IsSuperuser)
	}
	plan := `{"name":"huge","ram":4096,"disk":50000,"cpu_quota":200,"price":40}`
	if r := a.do(t, a.bob, "POST", fmt.Sprintf("/api/v1/%d/plans/", a.bobCo), plan); r.status != 403 {
		t.Fatalf("bob creating a plan: %d %s", r.status, r.body)
	}
	r := a.do(t, a.alice, "POST", fmt.Sprintf("/api/v1/%d/plans/", a.aliceCo), plan)
	var p map[string]any
	r.json(t, &p)
	if r.status != 200 || p["cpu_quota"] != 200.0 || p["ram"] != 4096.0 {
		t.Fatalf("alice creating a plan: %d %s", r.status, r.body)
	}
	if r := a.do(t, a.alice, "PUT", fmt.Sprintf("/api/v1/%d/runtimes/1/", a.aliceCo), `{"image":"rosti.local/static:2"}`); r.status != 200 || !strings.Contains(string(r.body), "static:2") {
		t.Fatalf("alice editing a runtime: %d %s", r.status, r.body)
	}
	var plans []map[string]any
	a.do(t, a.bob, "GET", fmt.Sprintf("/api/v1/%d/plans/", a.bobCo), "").json(t, &plans)
	if len(plans) != 10 {
		t.Fatalf("bob sees %d plans", len(plans))
	}
	for _, k := range []string{"id", "name", "ram", "disk", "price", "cpu_quota", "pids"} {
		if _, ok := plans[0][k]; !ok {
			t.Fatalf("plan lacks %q: %v", k, plans[0])
		}
	}
}

// TestCatalogUnderCompanyZero: rostictl's `plans` and `runtimes` ask under
// company 0 until a deploy has picked a company; anyone logged in gets the
// catalogue there, nobody else, and nothing else of company 0 exists.
func TestCatalogUnderCompanyZero(t *testing.T) {
	a := newTestAPI(t)
	plan := `{"name":"huge","ram":4096,"disk":50000,"cpu_quota":200,"price":40}`
	tests := []struct {
		name, token, method, path, body string
		want                            int
		wantIn                          string
	}{
		{"plans", a.bob, "GET", "/api/v1/0/plans/", "", 200, `"name":"start+"`},
		{"runtimes", a.bob, "GET", "/api/v1/0/runtimes/", "", 200, `"default":true`},
		{"plans without a token", "", "GET", "/api/v1/0/plans/", "", 401, ""},
		{"apps", a.bob, "GET", "/api/v1/0/apps/", "", 404, ""},
		{"creating a plan", a.alice, "POST", "/api/v1/0/plans/", plan, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(t, tt.token, tt.method, tt.path, tt.body)
			if r.status != tt.want || !strings.Contains(string(r.body), tt.wantIn) {
				t.Fatalf("%s %s: %d %s, want %d with %s", tt.method, tt.path, r.status, r.body, tt.want, tt.wantIn)
			}
		})
	}
}

func TestJobs(t *testing.T) {
	a := newTestAPI(t)
	started := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	done, err := a.store.CreateJob(store.Job{CompanyID: a.aliceCo, Kind: "pull", Target: "registry.test/app:1", Status: store.JobDone,
		Progress: 100, Message: "pulled registry.test/app:1", Created: started, Started: started, Finished: started.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.CreateJob(store.Job{CompanyID: a.aliceCo, Kind: "pull", Target: "registry.test/app:2", Status: store.JobPending, Created: started}); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	a.do(t, a.alice, "GET", fmt.Sprintf("/api/v1/%d/jobs/", a.aliceCo), "").json(t, &list)
	if len(list) != 2 || list[0]["target"] != "registry.test/app:2" || list[0]["started"] != nil {
		t.Fatalf("jobs, newest first, a pending one not started: %v", list)
	}
	var one map[string]any
	a.do(t, a.alice, "GET", fmt.Sprintf("/api/v1/%d/jobs/%d/", a.aliceCo, done.ID), "").json(t, &one)
	want := map[string]any{"id": float64(done.ID), "kind": "pull", "status": "done", "progress": 100.0,
		"message": "pulled registry.test/app:1", "finished": "2026-11-23T10:01:00Z"}
	for k, v := range want {
		if one[k] != v {
			t.Errorf("%s = %v, want %v", k, one[k], v)
		}
	}
	a.do(t, a.bob, "GET", fmt.Sprintf("/api/v1/%d/jobs/", a.bobCo), "").json(t, &list)
	if len(list) != 0 {
		t.Fatalf("bob sees jobs of alice: %v", list)
	}
}
