package drycc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server"
	"github.com/rosti-paas/rosti/server/drycc"
	"github.com/rosti-paas/rosti/store"
)

// world is the whole API (every dialect) over a real store, without a
// container runtime.
type world struct {
	t   testing.TB
	p   *platform.Platform
	srv *httptest.Server
}

func newWorld(t testing.TB) *world {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, _ := facetest.Platform(t, platform.Config{DataDir: t.TempDir(), AppsDomain: "apps.test"}, platform.Deps{Log: log})
	srv := httptest.NewServer(server.Handler(p, "9.9.9", log))
	t.Cleanup(srv.Close)
	return &world{t: t, p: p, srv: srv}
}

type answer struct {
	status int
	header http.Header
	raw    []byte
}

func (a answer) obj(t testing.TB) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(a.raw, &out); err != nil {
		t.Fatalf("not a JSON object: %s", a.raw)
	}
	return out
}

func (w *world) do(token, method, path string, body any) answer {
	w.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, w.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// must does a request that has to answer want.
func (w *world) must(want int, token, method, path string, body any) answer {
	w.t.Helper()
	a := w.do(token, method, path, body)
	if a.status != want {
		w.t.Fatalf("%s %s: %d %s, want %d", method, path, a.status, a.raw, want)
	}
	return a
}

// user registers name and logs in.
func (w *world) user(name string) string {
	w.t.Helper()
	w.must(201, "", "POST", "/v2/auth/register/", map[string]string{"username": name, "password": "long-enough"})
	return w.must(200, "", "POST", "/v2/auth/login/", map[string]string{"username": name, "password": "long-enough"}).obj(w.t)["token"].(string)
}

func TestContractRules(t *testing.T) {
	w := newWorld(t)
	admin := w.user("admin")
	alice := w.user("alice")
	for _, name := range []string{"one", "two", "three"} {
		w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": name})
	}

	t.Run("version headers on every answer", func(t *testing.T) {
		for _, a := range []answer{w.do(alice, "GET", "/v2/apps/", nil), w.do("", "GET", "/v2/apps/", nil), w.do(alice, "GET", "/v2/nothing/", nil), w.do(alice, "GET", "/v2/apps/nope/", nil)} {
			if a.header.Get("DRYCC_API_VERSION") != "2.3" || a.header.Get("DRYCC_PLATFORM_VERSION") != "9.9.9" {
				t.Errorf("headers %v on a %d", a.header, a.status)
			}
		}
	})
	t.Run("GET /v2/ needs a token", func(t *testing.T) {
		if a := w.do("", "GET", "/v2/", nil); a.status != 401 || a.obj(t)["detail"] != "Authentication credentials were not provided." {
			t.Fatalf("%d %s", a.status, a.raw)
		}
		if a := w.do("bogus", "GET", "/v2/", nil); a.status != 401 || a.obj(t)["detail"] != "Invalid token." {
			t.Fatalf("%d %s", a.status, a.raw)
		}
		w.must(200, alice, "GET", "/v2/", nil)
	})
	t.Run("lists are paged", func(t *testing.T) {
		pg := w.must(200, alice, "GET", "/v2/apps/?limit=2", nil).obj(t)
		results, _ := pg["results"].([]any)
		if pg["count"] != 3.0 || len(results) != 2 || pg["previous"] != nil {
			t.Fatalf("first page %v", pg)
		}
		next, _ := pg["next"].(string)
		if !strings.Contains(next, "offset=2") || !strings.Contains(next, "limit=2") {
			t.Fatalf("next %q", next)
		}
		u := next[strings.Index(next, "/v2/"):]
		pg = w.must(200, alice, "GET", u, nil).obj(t)
		if results, _ := pg["results"].([]any); len(results) != 1 || pg["next"] != nil || pg["previous"] == nil {
			t.Fatalf("second page %v", pg)
		}
		for _, path := range []string{"/v2/apps/one/releases/", "/v2/apps/one/domains/", "/v2/keys/", "/v2/certs/", "/v2/admin/perms/", "/v2/users/", "/v2/apps/one/builds/"} {
			pg := w.must(200, admin, "GET", path, nil).obj(t)
			if _, ok := pg["count"].(float64); !ok {
				t.Errorf("%s: count %v", path, pg["count"])
			}
			if _, ok := pg["results"].([]any); !ok {
				t.Errorf("%s: results %v", path, pg["results"])
			}
		}
		if perms := w.must(200, alice, "GET", "/v2/apps/one/perms/", nil).obj(t); perms["count"] != nil || perms["users"] == nil {
			t.Errorf("perms %v", perms)
		}
	})
	t.Run("paths without a trailing slash", func(t *testing.T) {
		pub := publicKey(t, "alice@laptop")
		w.must(201, alice, "POST", "/v2/keys/", map[string]string{"id": "alice@laptop", "public": pub})
		w.must(204, alice, "DELETE", "/v2/keys/alice@laptop", nil)
		w.must(201, alice, "POST", "/v2/apps/one/domains", map[string]string{"domain": "www.one.test"})
		w.must(204, alice, "DELETE", "/v2/apps/one/domains/www.one.test", nil)
		w.user("bob")
		w.must(201, alice, "POST", "/v2/apps/one/perms", map[string]string{"username": "bob"})
		w.must(204, alice, "DELETE", "/v2/apps/one/perms/bob", nil)
		w.must(201, admin, "POST", "/v2/admin/perms", map[string]string{"username": "bob"})
		w.must(204, admin, "DELETE", "/v2/admin/perms/bob", nil)
		w.must(201, alice, "POST", "/v2/apps/one/domains/", map[string]string{"domain": "cert.one.test"})
		certPEM, keyPEM := selfSigned(t, "cert.one.test")
		w.must(201, alice, "POST", "/v2/certs", map[string]string{"name": "one", "certificate": certPEM, "key": keyPEM})
		w.must(200, alice, "GET", "/v2/certs/one", nil)
		w.must(201, alice, "POST", "/v2/certs/one/domain", map[string]string{"domain": "cert.one.test"})
		w.must(204, alice, "DELETE", "/v2/certs/one/domain/cert.one.test", nil)
		// Without a runtime logs and run cannot work, but they are routed.
		for _, a := range []answer{w.do(alice, "GET", "/v2/apps/one/logs", nil), w.do(alice, "POST", "/v2/apps/one/run", map[string]string{"command": "true"})} {
			if a.status != 400 || !strings.Contains(string(a.raw), "runtime") {
				t.Errorf("%d %s", a.status, a.raw)
			}
		}
	})
	t.Run("404 is Not found.", func(t *testing.T) {
		for _, path := range []string{"/v2/apps/nope/", "/v2/nothing/", "/v2/certs/nope/"} {
			if a := w.do(alice, "GET", path, nil); a.status != 404 || a.obj(t)["detail"] != "Not found." {
				t.Errorf("%s: %d %s", path, a.status, a.raw)
			}
		}
	})
}

func TestErrorWordings(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	bob := w.user("bob")
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "taken"})
	w.must(201, alice, "POST", "/v2/apps/taken/domains/", map[string]string{"domain": "www.taken.test"})
	w.must(201, bob, "POST", "/v2/apps/", map[string]string{"id": "bobs"})
	pub := publicKey(t, "k")
	w.must(201, alice, "POST", "/v2/keys/", map[string]string{"id": "k", "public": pub})
	tests := []struct {
		name, token, method, path string
		body                      any
		status                    int
		field, message            string
	}{
		{"duplicate user", "", "POST", "/v2/auth/register/", map[string]string{"username": "alice", "password": "long-enough"}, 400, "username", "A user with that username already exists."},
		{"failed login", "", "POST", "/v2/auth/login/", map[string]string{"username": "alice", "password": "wrong-password"}, 400, "non_field_errors", "Unable to log in with provided credentials."},
		{"duplicate app", bob, "POST", "/v2/apps/", map[string]string{"id": "taken"}, 400, "id", "Application with this id already exists."},
		{"invalid app name", bob, "POST", "/v2/apps/", map[string]string{"id": "Not_Valid"}, 400, "id", "App name can only contain a-z (lowercase), 0-9 and hyphens"},
		{"domain in use", bob, "POST", "/v2/apps/bobs/domains/", map[string]string{"domain": "www.taken.test"}, 400, "domain", "Domain is already in use by another application"},
		{"invalid domain", bob, "POST", "/v2/apps/bobs/domains/", map[string]string{"domain": "no spaces.test"}, 400, "domain", "Hostname does not look valid."},
		{"key in use", alice, "POST", "/v2/keys/", map[string]string{"id": "k2", "public": pub}, 400, "key", "Public Key is already in use"},
		{"another company's app", bob, "GET", "/v2/apps/taken/", nil, 404, "detail", "Not found."},
		{"unset a missing key", alice, "POST", "/v2/apps/taken/config/", map[string]any{"values": map[string]any{"NOPE": nil}}, 422, "detail", "NOPE does not exist under values"},
		{"identical release", alice, "POST", "/v2/apps/taken/config/", map[string]any{"values": map[string]any{}}, 409, "detail", ""},
		{"users for a non-admin", bob, "GET", "/v2/users/", nil, 403, "detail", ""},
		{"blank username", "", "POST", "/v2/auth/register/", map[string]string{"password": "long-enough"}, 400, "username", "This field may not be blank."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := w.do(tc.token, tc.method, tc.path, tc.body)
			if a.status != tc.status {
				t.Fatalf("%d %s, want %d", a.status, a.raw, tc.status)
			}
			got := a.obj(t)[tc.field]
			if list, ok := got.([]any); ok && len(list) > 0 {
				got = list[0]
			}
			if s, _ := got.(string); s == "" || (tc.message != "" && s != tc.message) {
				t.Fatalf("%s: %v, want %q", tc.field, a.obj(t), tc.message)
			}
		})
	}
}

// rostiApps lists the apps of the user's first company through the Rosti
// dialect.
func (w *world) rostiApps(token string) (int64, []map[string]any) {
	w.t.Helper()
	req := func(path string, v any) {
		r, _ := http.NewRequest("GET", w.srv.URL+path, nil)
		r.Header.Set("Authorization", "Token "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			w.t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			w.t.Fatal(err)
		}
	}
	var companies []map[string]any
	req("/api/v1/companies/", &companies)
	id := int64(companies[0]["id"].(float64))
	var apps []map[string]any
	req(fmt.Sprintf("/api/v1/%d/apps/", id), &apps)
	return id, apps
}

func TestOneModelUnderBothDialects(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	app := w.must(201, alice, "POST", "/v2/apps/", nil).obj(t)
	name := app["id"].(string)
	if app["owner"] != "alice" || app["url"] != name+".apps.test" || app["uuid"] == "" {
		t.Fatalf("created %v", app)
	}
	w.must(201, alice, "POST", "/v2/apps/"+name+"/domains/", map[string]string{"domain": "www.shop.test"})
	company, apps := w.rostiApps(alice)
	if len(apps) != 1 || apps[0]["name"] != name || !strings.Contains(fmt.Sprint(apps[0]["domains"]), "www.shop.test") {
		t.Fatalf("the Rosti dialect shows %v", apps)
	}
	// And the reverse: an app made in the Rosti dialect is a Drycc app.
	r, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/%d/apps/", w.srv.URL, company), strings.NewReader(`{"name":"native","image":"static","plan":1}`))
	r.Header.Set("Authorization", "Token "+alice)
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("rosti create: %v %v", resp, err)
	}
	list := w.must(200, alice, "GET", "/v2/apps", nil).obj(t)
	if list["count"] != 2.0 || !strings.Contains(string(w.must(200, alice, "GET", "/v2/apps/native", nil).raw), `"owner":"alice"`) {
		t.Fatalf("list %v", list)
	}
	w.must(201, alice, "POST", "/v2/apps/native/config/", map[string]any{"values": map[string]any{"GREETING": "ahoj", "N": 3}})
	env, err := w.p.AppConfig(context.Background(), store.User{ID: 2, IsActive: true}, platform.AppNamed("native"))
	if err != nil || env["GREETING"] != "ahoj" || env["N"] != "3" {
		t.Fatalf("config as platform sees it: %v %v", env, err)
	}
	w.must(204, alice, "DELETE", "/v2/apps/native", nil)
	if _, apps := w.rostiApps(alice); len(apps) != 1 {
		t.Fatalf("after destroy the Rosti dialect shows %d apps", len(apps))
	}
}

func TestConfigReleasesRollback(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "shop"})
	cfg := w.must(201, alice, "POST", "/v2/apps/shop/config/", map[string]any{"values": map[string]any{"A": "1", "B": "2"}}).obj(t)
	if v := cfg["values"].(map[string]any); v["A"] != "1" || v["B"] != "2" || cfg["app"] != "shop" || cfg["owner"] != "alice" {
		t.Fatalf("config %v", cfg)
	}
	cfg = w.must(201, alice, "POST", "/v2/apps/shop/config/", map[string]any{"values": map[string]any{"A": nil}}).obj(t)
	if v := cfg["values"].(map[string]any); v["A"] != nil || v["B"] != "2" {
		t.Fatalf("after unset %v", cfg)
	}
	w.must(409, alice, "POST", "/v2/apps/shop/config/", map[string]any{"values": map[string]any{"B": "2"}})
	rels := w.must(200, alice, "GET", "/v2/apps/shop/releases/", nil).obj(t)
	results := rels["results"].([]any)
	if rels["count"] != 3.0 || results[0].(map[string]any)["version"] != 3.0 || results[2].(map[string]any)["build"] != nil {
		t.Fatalf("releases %s", w.must(200, alice, "GET", "/v2/apps/shop/releases/", nil).raw)
	}
	if v1 := w.must(200, alice, "GET", "/v2/apps/shop/releases/v1/", nil).obj(t); v1["version"] != 1.0 || !strings.Contains(v1["summary"].(string), "created") {
		t.Fatalf("v1 %v", v1)
	}
	// An empty body rolls back to the previous release: v2's A=1, B=2.
	if got := w.must(201, alice, "POST", "/v2/apps/shop/releases/rollback/", nil).obj(t); got["version"] != 4.0 {
		t.Fatalf("rollback %v", got)
	}
	if v := w.must(200, alice, "GET", "/v2/apps/shop/config", nil).obj(t)["values"].(map[string]any); v["A"] != "1" || v["B"] != "2" {
		t.Fatalf("config after rollback %v", v)
	}
	if got := w.must(201, alice, "POST", "/v2/apps/shop/releases/rollback/", map[string]int{"version": 1}).obj(t); got["version"] != 5.0 {
		t.Fatalf("rollback to v1 %v", got)
	}
	if v := w.must(200, alice, "GET", "/v2/apps/shop/config", nil).obj(t)["values"].(map[string]any); len(v) != 0 {
		t.Fatalf("config after rollback to v1 %v", v)
	}
	if a := w.do(alice, "POST", "/v2/apps/shop/releases/rollback/", map[string]int{"version": -1}); a.status != 400 || !strings.Contains(string(a.raw), "version cannot be below 0") {
		t.Fatalf("negative version: %d %s", a.status, a.raw)
	}
	// A build of an unknown image says which images there are.
	if a := w.do(alice, "POST", "/v2/apps/shop/build/", map[string]string{"image": "nowhere/nothing:1"}); a.status != 400 || a.obj(t)["image"] == nil {
		t.Fatalf("unknown image: %d %s", a.status, a.raw)
	}
	w.must(404, alice, "GET", "/v2/apps/shop/build/", nil)
	build := w.must(201, alice, "POST", "/v2/apps/shop/build/", map[string]string{"image": "static"}).obj(t)
	if build["image"] != platform.StaticRuntimeImage || build["app"] != "shop" {
		t.Fatalf("build %v", build)
	}
	if cur := w.must(200, alice, "GET", "/v2/apps/shop/build/", nil).obj(t); cur["uuid"] != build["uuid"] {
		t.Fatalf("current build %v, made %v", cur, build)
	}
}

func TestPermsReachOneApp(t *testing.T) {
	w := newWorld(t)
	admin := w.user("admin")
	alice := w.user("alice")
	bob := w.user("bob")
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "shared"})
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "private"})
	w.must(404, bob, "GET", "/v2/apps/shared/", nil)
	w.must(201, alice, "POST", "/v2/apps/shared/perms/", map[string]string{"username": "bob"})
	if got := w.must(200, alice, "GET", "/v2/apps/shared/perms/", nil).obj(t); fmt.Sprint(got["users"]) != "[bob]" {
		t.Fatalf("perms %v", got)
	}
	w.must(200, bob, "GET", "/v2/apps/shared/", nil)
	w.must(201, bob, "POST", "/v2/apps/shared/config/", map[string]any{"values": map[string]string{"BY": "bob"}})
	if got := w.must(200, bob, "GET", "/v2/apps", nil).obj(t); got["count"] != 1.0 {
		t.Fatalf("bob lists %v", got)
	}
	w.must(404, bob, "GET", "/v2/apps/private/", nil)
	w.must(403, bob, "POST", "/v2/apps/shared/perms/", map[string]string{"username": "admin"})
	// The Rosti dialect too: the app by its id, not the company's list.
	aliceCompany, aliceApps := w.rostiApps(alice)
	var sharedID any
	for _, a := range aliceApps {
		if a["name"] == "shared" {
			sharedID = a["id"]
		}
	}
	rosti := func(path string) int {
		r, _ := http.NewRequest("GET", w.srv.URL+path, nil)
		r.Header.Set("Authorization", "Token "+bob)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := rosti(fmt.Sprintf("/api/v1/%d/apps/%v/", aliceCompany, sharedID)); got != 200 {
		t.Fatalf("bob reads shared through the Rosti dialect: %d", got)
	}
	if got := rosti(fmt.Sprintf("/api/v1/%d/apps/", aliceCompany)); got != 404 {
		t.Fatalf("bob lists alice's company: %d", got)
	}
	// Over SSH too: bob's key opens the shared app and nothing else.
	pub := publicKey(t, "bob")
	w.must(201, bob, "POST", "/v2/keys/", map[string]string{"id": "bob", "public": pub})
	key, _, _, _, _ := gossh.ParseAuthorizedKey([]byte(pub))
	if _, err := w.p.SSH().AuthorizeKey(context.Background(), "shared", key); err != nil {
		t.Fatalf("bob's key on shared: %v", err)
	}
	if _, err := w.p.SSH().AuthorizeKey(context.Background(), "private", key); err == nil {
		t.Fatal("bob's key opens private")
	}
	w.must(204, alice, "DELETE", "/v2/apps/shared/perms/bob/", nil)
	w.must(404, bob, "GET", "/v2/apps/shared/", nil)
	if _, err := w.p.SSH().AuthorizeKey(context.Background(), "shared", key); err == nil {
		t.Fatal("bob's key still opens shared")
	}
	// Transfer: the app moves to bob's company.
	w.must(200, alice, "POST", "/v2/apps/shared/", map[string]string{"owner": "bob"})
	if got := w.must(200, bob, "GET", "/v2/apps/shared", nil).obj(t); got["owner"] != "bob" {
		t.Fatalf("after transfer %v", got)
	}
	w.must(404, alice, "GET", "/v2/apps/shared/", nil)
	w.must(200, admin, "GET", "/v2/apps/shared/", nil)
}

func TestAccountsAdminsAndTokens(t *testing.T) {
	w := newWorld(t)
	admin := w.user("admin")
	bob := w.user("bob")
	if me := w.must(200, bob, "GET", "/v2/auth/whoami/", nil).obj(t); me["username"] != "bob" || me["is_superuser"] != false {
		t.Fatalf("whoami %v", me)
	}
	w.must(403, bob, "GET", "/v2/users/", nil)
	w.must(403, bob, "POST", "/v2/admin/perms/", map[string]string{"username": "bob"})
	w.must(201, admin, "POST", "/v2/admin/perms/", map[string]string{"username": "bob"})
	if got := w.must(200, bob, "GET", "/v2/users/", nil).obj(t); got["count"] != 2.0 {
		t.Fatalf("users %v", got)
	}
	if got := w.must(200, bob, "GET", "/v2/admin/perms/", nil).obj(t); got["count"] != 2.0 {
		t.Fatalf("admins %v", got)
	}
	w.must(204, bob, "DELETE", "/v2/admin/perms/admin/", nil)
	w.must(409, bob, "DELETE", "/v2/admin/perms/bob/", nil)
	// passwd: the current password is checked.
	if a := w.do(bob, "POST", "/v2/auth/passwd/", map[string]string{"password": "wrong-password", "new_password": "brand-new-one"}); a.status != 400 {
		t.Fatalf("wrong current password: %d %s", a.status, a.raw)
	}
	w.must(200, bob, "POST", "/v2/auth/passwd/", map[string]string{"password": "long-enough", "new_password": "brand-new-one"})
	w.must(200, "", "POST", "/v2/auth/login/", map[string]string{"username": "bob", "password": "brand-new-one"})
	// tokens: the old one stops working.
	fresh := w.must(200, bob, "POST", "/v2/auth/tokens/", nil).obj(t)["token"].(string)
	w.must(401, bob, "GET", "/v2/auth/whoami/", nil)
	w.must(200, fresh, "GET", "/v2/auth/whoami/", nil)
	// keys: {"id", "public"} as keys:add sends them.
	pub := publicKey(t, "bob@laptop")
	key := w.must(201, fresh, "POST", "/v2/keys/", map[string]string{"id": "bob@laptop", "public": pub}).obj(t)
	if key["id"] != "bob@laptop" || key["public"] != pub || key["owner"] != "bob" {
		t.Fatalf("key %v", key)
	}
	w.must(400, fresh, "POST", "/v2/keys/", map[string]string{"id": "bob@laptop", "public": publicKey(t, "x")})
	w.must(204, fresh, "DELETE", "/v2/keys/bob@laptop/", nil)
	w.must(404, fresh, "DELETE", "/v2/keys/bob@laptop/", nil)
}

func TestCertsAndTLS(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	bob := w.user("bob")
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "shop"})
	w.must(201, bob, "POST", "/v2/apps/", map[string]string{"id": "bobs"})
	w.must(201, alice, "POST", "/v2/apps/shop/domains/", map[string]string{"domain": "www.shop.test"})
	w.must(201, bob, "POST", "/v2/apps/bobs/domains/", map[string]string{"domain": "www.bobs.test"})
	certPEM, keyPEM := selfSigned(t, "www.shop.test", "www.bobs.test")
	if a := w.do(alice, "POST", "/v2/certs/", map[string]string{"name": "shop", "certificate": "nope", "key": keyPEM}); a.status != 400 || !strings.Contains(string(a.raw), "Could not load certificate") {
		t.Fatalf("bad certificate: %d %s", a.status, a.raw)
	}
	c := w.must(201, alice, "POST", "/v2/certs/", map[string]string{"name": "shop", "certificate": certPEM, "key": keyPEM}).obj(t)
	expires, err := time.Parse(time.RFC3339, c["expires"].(string))
	if err != nil || time.Until(expires) < 80*24*time.Hour || c["common_name"] != "www.shop.test" || c["owner"] != "alice" {
		t.Fatalf("cert %v", c)
	}
	if strings.Contains(string(w.must(200, alice, "GET", "/v2/certs/shop/", nil).raw), "PRIVATE KEY") {
		t.Fatal("the key is shown")
	}
	w.must(404, bob, "GET", "/v2/certs/shop/", nil)
	w.must(400, alice, "POST", "/v2/certs/shop/domain/", map[string]string{"domain": "www.bobs.test"})
	w.must(201, alice, "POST", "/v2/certs/shop/domain/", map[string]string{"domain": "www.shop.test"})
	if got := w.must(200, alice, "GET", "/v2/certs/shop", nil).obj(t); fmt.Sprint(got["domains"]) != "[www.shop.test]" {
		t.Fatalf("attached %v", got)
	}
	if got := w.must(200, alice, "GET", "/v2/apps/shop/tls/", nil).obj(t); got["https_enforced"] != false {
		t.Fatalf("tls %v", got)
	}
	if got := w.must(201, alice, "POST", "/v2/apps/shop/tls/", map[string]bool{"https_enforced": true}).obj(t); got["https_enforced"] != true || got["app"] != "shop" {
		t.Fatalf("tls %v", got)
	}
	w.must(204, alice, "DELETE", "/v2/certs/shop/domain/www.shop.test/", nil)
	w.must(204, alice, "DELETE", "/v2/certs/shop/", nil)
	w.must(404, alice, "GET", "/v2/certs/shop/", nil)
}

func publicKey(t testing.TB, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))) + " " + comment
}

func selfSigned(t testing.TB, hosts ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: hosts[0], Organization: []string{"Rosti test"}},
		DNSNames: hosts, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

var _ = drycc.APIVersion

func TestDeisV1MapsOntoTheSameCalls(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	w.user("bob")
	w.must(201, alice, "POST", "/v1/apps/", map[string]string{"id": "old"})
	if got := w.must(200, alice, "GET", "/v2/apps/old/", nil).obj(t); got["id"] != "old" {
		t.Fatalf("v1 app seen through v2: %v", got)
	}
	a := w.must(201, alice, "POST", "/v1/apps/old/config/", map[string]any{"values": map[string]string{"HELLO": "world"}})
	if a.header.Get("X-Deis-Release") != "2" || a.obj(t)["values"].(map[string]any)["HELLO"] != "world" {
		t.Fatalf("config: %v %s", a.header, a.raw)
	}
	if rels := w.must(200, alice, "GET", "/v1/apps/old/releases/", nil).obj(t); rels["count"] != 2.0 {
		t.Fatalf("releases %v", rels)
	}
	w.must(201, alice, "POST", "/v1/apps/old/perms/", map[string]string{"username": "bob"})
	w.must(204, alice, "POST", "/v1/apps/old/perms/bob", nil)
	if perms := w.must(200, alice, "GET", "/v1/apps/old/perms", nil).obj(t); fmt.Sprint(perms["users"]) != "[]" {
		t.Fatalf("perms %v", perms)
	}
	// Containers are pods: routed, and without a runtime a clear 400.
	if a := w.do(alice, "GET", "/v1/apps/old/containers/web", nil); a.status != 400 || !strings.Contains(string(a.raw), "runtime") {
		t.Fatalf("containers: %d %s", a.status, a.raw)
	}
	w.must(204, alice, "DELETE", "/v1/apps/old", nil)
}

func TestLimitsPickThePlan(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "shop"})
	limit := func(cfg map[string]any, kind string) any { return cfg[kind].(map[string]any)["web"] }
	if cfg := w.must(200, alice, "GET", "/v2/apps/shop/config/", nil).obj(t); limit(cfg, "memory") != "256M" || limit(cfg, "cpu") != "100m" {
		t.Fatalf("default limits %v %v", cfg["memory"], cfg["cpu"])
	}
	tests := []struct {
		name        string
		body        map[string]any
		status      int
		memory, cpu string
		planName    string
	}{
		{"memory picks the smallest plan that has it", map[string]any{"memory": map[string]any{"web": "300M"}}, 201, "512M", "500m", "start+"},
		{"cpu in cores", map[string]any{"cpu": map[string]any{"web": "1"}}, 201, "1024M", "1000m", "normal+"},
		{"more than any plan", map[string]any{"memory": map[string]any{"web": "64G"}}, 422, "", "", ""},
		{"not a limit", map[string]any{"memory": map[string]any{"web": "lots"}}, 400, "", "", ""},
		{"unset goes back to the smallest", map[string]any{"memory": map[string]any{"web": nil}, "cpu": map[string]any{"web": nil}}, 201, "256M", "100m", "static"},
		{"tags mean nothing here", map[string]any{"tags": map[string]any{"zone": "a"}}, 422, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := w.do(alice, "POST", "/v2/apps/shop/config/", tc.body)
			if a.status != tc.status {
				t.Fatalf("%d %s, want %d", a.status, a.raw, tc.status)
			}
			if tc.status != 201 {
				return
			}
			cfg := a.obj(t)
			if limit(cfg, "memory") != tc.memory || limit(cfg, "cpu") != tc.cpu {
				t.Fatalf("limits %v %v, want %s %s", cfg["memory"], cfg["cpu"], tc.memory, tc.cpu)
			}
			app, err := w.p.App(context.Background(), store.User{ID: 2, IsActive: true}, platform.AppNamed("shop"))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := w.p.Plan(context.Background(), store.User{}, app.PlanID)
			if err != nil || plan.Name != tc.planName {
				t.Fatalf("plan %+v %v, want %s", plan, err, tc.planName)
			}
		})
	}
	if rels := w.must(200, alice, "GET", "/v2/apps/shop/releases/", nil).obj(t); rels["count"] != 1.0 {
		t.Fatalf("a plan change made a release: %v", rels["count"])
	}
}

func TestBuildProcfileBecomesTheTreesProcfile(t *testing.T) {
	w := newWorld(t)
	w.user("admin")
	alice := w.user("alice")
	w.must(201, alice, "POST", "/v2/apps/", map[string]string{"id": "shop"})
	build := w.must(201, alice, "POST", "/v2/apps/shop/build/", map[string]any{
		"image": "static", "procfile": map[string]string{"web": "./server --port $PORT", "worker": "./jobs"},
	})
	if build.header.Get("X-Deis-Release") != "2" || fmt.Sprint(build.obj(t)["procfile"]) != "map[web:./server --port $PORT worker:./jobs]" {
		t.Fatalf("build: %v %s", build.header, build.raw)
	}
	ctx := context.Background()
	u, err := w.p.Authenticate(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	app, err := w.p.App(ctx, u, platform.AppNamed("shop"))
	if err != nil {
		t.Fatal(err)
	}
	procfile, err := os.ReadFile(filepath.Join(w.p.Config().DataDir, "volumes", fmt.Sprint(app.ID), "app", "Procfile"))
	if err != nil || string(procfile) != "web: ./server --port $PORT\nworker: ./jobs\n" {
		t.Fatalf("Procfile %q %v", procfile, err)
	}
	// Its process types are the app's: worker can be scaled (no runtime
	// here, so the answer is the runtime's absence, not an unknown type).
	types, err := w.p.ProcessTypes(ctx, u, platform.AppNamed("shop"))
	if err != nil || fmt.Sprint(types) != "map[web:1 worker:0]" {
		t.Fatalf("process types %v %v", types, err)
	}
	for _, bad := range []map[string]string{{"we b": "x"}, {"web": ""}, {"web": "two\nlines"}} {
		if a := w.do(alice, "POST", "/v2/apps/shop/build/", map[string]any{"image": "static", "procfile": bad}); a.status != 400 || a.obj(t)["procfile"] == nil {
			t.Errorf("procfile %q: %d %s", bad, a.status, a.raw)
		}
	}
}
