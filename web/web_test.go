package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

type testUI struct {
	t   testing.TB
	st  *store.Store
	p   *platform.Platform
	srv *httptest.Server
	ui  *UI
}

func newTestUI(t testing.TB, registration string) *testUI {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, st := facetest.Platform(t, platform.Config{AppsDomain: "apps.test", SSHHost: "host.test", SSHPort: 2222, Registration: registration},
		platform.Deps{Log: log})
	ui := New(p, log)
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	return &testUI{t: t, st: st, p: p, srv: srv, ui: ui}
}

// browser is a client with cookies that does not follow redirects, so
// tests see where each answer sends the user.
type browser struct {
	t      testing.TB
	ui     *testUI
	client *http.Client
	csrf   string
}

func (ui *testUI) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: ui.t, ui: ui, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

type answer struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(raw)); m != nil {
		b.csrf = m[1]
	}
	return answer{resp.StatusCode, resp.Header.Get("Location"), string(raw), resp.Header}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.ui.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form with the CSRF token of the last page seen.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.ui.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (a answer) expect(t testing.TB, status int, contains ...string) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; location %q\n%s", a.status, status, a.location, a.body)
	}
	for _, c := range contains {
		if !strings.Contains(a.body, c) {
			t.Fatalf("page does not contain %q:\n%s", c, a.body)
		}
	}
	return a
}

// signUp registers and signs in a user, and returns the browser and the
// path of the user's apps.
func (ui *testUI) signUp(name string) (*browser, string) {
	ui.t.Helper()
	b := ui.browser()
	b.get("/signup").expect(ui.t, 200, "Create the account")
	a := b.post("/signup", url.Values{"username": {name}, "password": {"password-" + name}, "password2": {"password-" + name}})
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/signin") {
		ui.t.Fatalf("sign up: %d %s\n%s", a.status, a.location, a.body)
	}
	b.get(a.location).expect(ui.t, 200, "Your account is ready")
	a = b.post("/signin", url.Values{"username": {name}, "password": {"password-" + name}})
	if a.status != http.StatusSeeOther || a.location != "/" {
		ui.t.Fatalf("sign in: %d %s\n%s", a.status, a.location, a.body)
	}
	a = b.get("/")
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/c/") {
		ui.t.Fatalf("home: %d %s", a.status, a.location)
	}
	apps := strings.SplitN(a.location, "?", 2)[0]
	b.get(apps).expect(ui.t, 200, "No apps yet")
	return b, apps
}

func TestSignInOut(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")

	var session *http.Cookie
	u, _ := url.Parse(ui.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == cookieSession {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after signing in")
	}
	sum := sha256.Sum256([]byte(session.Value))
	if _, err := ui.st.SessionByHash(hex.EncodeToString(sum[:])); err != nil {
		t.Errorf("the store has no session under the hash of the cookie: %v", err)
	}
	if _, err := ui.st.SessionByHash(session.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the store keeps the session secret itself: %v", err)
	}

	b.post("/signout", nil).expect(t, http.StatusSeeOther)
	if a := b.get(apps); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/signin") {
		t.Errorf("after signing out the apps page answers %d %s", a.status, a.location)
	}
	if _, err := ui.p.SessionUser(context.Background(), session.Value); err == nil {
		t.Error("the session still works after signing out")
	}
}

func TestCookieFlags(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	ui.signUp("alice")
	b := ui.browser()
	b.get("/signin")
	req, _ := http.NewRequest("POST", ui.srv.URL+"/signin", strings.NewReader(url.Values{
		"csrf": {b.csrf}, "username": {"alice"}, "password": {"password-alice"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, line := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, cookieSession+"=") {
			found = true
			for _, flag := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(line, flag) {
					t.Errorf("session cookie %q lacks %s", line, flag)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie set: %v", resp.Header.Values("Set-Cookie"))
	}
}

func TestRegistrationPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		status       int
		says         string
	}{
		{"open", platform.RegistrationOpen, http.StatusSeeOther, ""},
		{"closed", platform.RegistrationClosed, http.StatusForbidden, "registration is closed"},
		{"admin only", platform.RegistrationAdminOnly, http.StatusForbidden, "only administrators"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ui := newTestUI(t, tc.policy)
			b := ui.browser()
			b.get("/signin")
			a := b.post("/signup", url.Values{"username": {"bob"}, "password": {"password1"}, "password2": {"password1"}})
			a.expect(t, tc.status, tc.says)
		})
	}
}

func TestSignUpErrorsBesideFields(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b := ui.browser()
	b.get("/signup")
	b.post("/signup", url.Values{"username": {"bad name"}, "password": {"short"}, "password2": {"short"}}).
		expect(t, http.StatusBadRequest, `<span id="username-err"><span class="err" role="alert">must be 1-150 letters`,
			`<span id="password-err"><span class="err" role="alert">must be at least 8 characters`)
}

func TestCSRF(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")
	for _, tc := range []struct {
		name, token string
	}{
		{"missing", ""},
		{"wrong", strings.Repeat("0", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"csrf": {tc.token}, "name": {"site"}, "image": {"static"}, "plan": {"1"}, "app_port": {"8080"}}
			b.post(apps+"new", form).expect(t, http.StatusForbidden, "not sent from a page of this site")
			form = url.Values{"csrf": {tc.token}, "name": {"t"}}
			b.post("/account/tokens", form).expect(t, http.StatusForbidden)
		})
	}
	if toks, _ := ui.p.Tokens(context.Background(), mustUser(t, ui, "alice")); len(toks) != 0 {
		t.Errorf("a token was made without a CSRF token: %+v", toks)
	}
	b.get(apps).expect(t, 200, "No apps yet")

	anon := ui.browser()
	anon.post("/signin", url.Values{"csrf": {""}, "username": {"alice"}, "password": {"password-alice"}}).expect(t, http.StatusForbidden)
}

func mustUser(t testing.TB, ui *testUI, name string) store.User {
	t.Helper()
	u, err := ui.st.UserByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignInThrottled(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	// bob has never signed in from here, so his account's limit applies.
	if _, err := ui.p.Register(t.Context(), nil, platform.NewUser{Username: "bob", Password: "password-bob"}); err != nil {
		t.Fatal(err)
	}
	b := ui.browser()
	b.get("/signin")
	failures := 0
	for ; failures < 50; failures++ {
		a := b.post("/signin", url.Values{"username": {"Bob"}, "password": {fmt.Sprintf("wrong-%d", failures)}})
		if a.status == http.StatusTooManyRequests {
			break
		}
		a.expect(t, http.StatusUnauthorized, "Wrong username or password")
	}
	if failures == 0 || failures == 50 {
		t.Fatalf("throttled after %d failed sign-ins", failures)
	}
	// Held back with the right password too, and in the API's terms as well:
	// both go through the same limits.
	a := b.post("/signin", url.Values{"username": {"bob"}, "password": {"password-bob"}})
	a.expect(t, http.StatusTooManyRequests, "Too many failed sign-ins")
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	var throttled *platform.ThrottledError
	if _, err := ui.p.LoginFrom(t.Context(), "127.0.0.1", "bob", "password-bob"); !errors.As(err, &throttled) {
		t.Errorf("API login after the web's failures: %v, want throttled", err)
	}
	// Another account from the same address is not held back yet.
	other := ui.browser()
	other.get("/signin")
	other.post("/signin", url.Values{"username": {"nobody"}, "password": {"whatever1"}}).expect(t, http.StatusUnauthorized)
}

func TestSecurityHeaders(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")
	for _, path := range []string{"/signin", apps, apps + "new", "/account", apps + "jobs"} {
		c := b
		if path == "/signin" {
			c = ui.browser()
		}
		a := c.get(path).expect(t, 200)
		if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if regexp.MustCompile(`<script(\s+[^>]*)?>[^<]`).MatchString(a.body) || strings.Contains(a.body, " on"+"click=") {
			t.Errorf("%s has inline script", path)
		}
	}
}

func TestCreateApp(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")
	b.get(apps+"new").expect(t, 200, "Create the app")
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
		says  string
	}{
		{"bad name", url.Values{"name": {"Bad_Name"}}, "name", "must be a DNS label"},
		{"bad port", url.Values{"name": {"site"}, "app_port": {"8000"}}, "app_port", "must be between 1024 and 65535 and not 8000"},
		{"port not a number", url.Values{"name": {"site"}, "app_port": {"eighty"}}, "app_port", "must be a number"},
		{"bad domain", url.Values{"name": {"site"}, "domains": {"nodot"}}, "domains", "is not a valid host name"},
		{"bad health check", url.Values{"name": {"site"}, "healthcheck": {"healthz"}}, "healthcheck", "must be a path starting with a single"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"image": {platform.StaticRuntimeImage}, "plan": {"1"}, "app_port": {"8080"}}
			for k, v := range tc.form {
				form[k] = v
			}
			b.post(apps+"new", form).expect(t, http.StatusBadRequest,
				fmt.Sprintf(`<span id="%s-err"><span class="err" role="alert">`, tc.field), tc.says)
		})
	}
	a := b.post(apps+"new", url.Values{"name": {"site"}, "image": {platform.StaticRuntimeImage}, "plan": {"3"}, "app_port": {"8080"},
		"domains": {"www.example.com"}, "healthcheck": {"/up"}})
	if a.status != http.StatusSeeOther || !strings.Contains(a.location, "/apps/") {
		t.Fatalf("create: %d %s\n%s", a.status, a.location, a.body)
	}
	page := b.get(a.location).expect(t, 200, "App site created", "site.apps.test", "www.example.com",
		"sftp -P 2222 site@host.test", "rsync -az --delete -e &#39;ssh -p 2222&#39; ./ site@host.test:app/",
		"git push ssh://site@host.test:2222/site main", "v1", "Type <strong>site</strong> to delete")
	_ = page
	b.get(apps).expect(t, 200, `>site</a>`, "start+", "running")
	b.post(apps+"new", url.Values{"name": {"site"}, "image": {platform.StaticRuntimeImage}, "plan": {"1"}, "app_port": {"8080"}}).
		expect(t, http.StatusBadRequest, "an app with this name already exists")
}

func TestAppSettingsAndDelete(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")
	b.get(apps + "new")
	a := b.post(apps+"new", url.Values{"name": {"site"}, "image": {platform.StaticRuntimeImage}, "plan": {"1"}, "app_port": {"8080"}})
	appPage := strings.SplitN(a.location, "?", 2)[0]
	b.get(appPage)
	settings := url.Values{"plan": {"4"}, "image": {platform.StaticRuntimeImage}, "app_port": {"9000"}, "domains": {""},
		"healthcheck": {""}, "ssh_keys": {""}, "ssh_password": {""}}
	saved := b.post(appPage+"/settings", settings).expect(t, http.StatusSeeOther)
	b.get(saved.location).expect(t, 200, "Settings saved", "plan normal", "port 9000")

	bad := url.Values{"plan": {"3"}, "image": {platform.StaticRuntimeImage}, "app_port": {"80"}, "ssh_password": {"short"}}
	b.post(appPage+"/settings", bad).expect(t, http.StatusBadRequest,
		`<span id="app_port-err"><span class="err" role="alert">must be between 1024`, `<span id="ssh_password-err"><span class="err" role="alert">must be at least 8`)

	b.post(appPage+"/action", url.Values{"action": {"stop"}}).expect(t, 200, "Yes, stop")

	b.post(appPage+"/delete", url.Values{"confirm_name": {"sit"}}).expect(t, http.StatusBadRequest, "type the app&#39;s name, site, to delete it")
	if _, err := ui.st.AppByName("site"); err != nil {
		t.Fatalf("the app is gone after a wrong confirmation: %v", err)
	}
	b.post(appPage+"/delete", url.Values{"confirm_name": {"site"}}).expect(t, http.StatusSeeOther)
	if _, err := ui.st.AppByName("site"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the app is still there: %v", err)
	}
	b.get(apps).expect(t, 200, "No apps yet")
}

func TestCompaniesAreIsolated(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	alice, aliceApps := ui.signUp("alice")
	alice.get(aliceApps + "new")
	a := alice.post(aliceApps+"new", url.Values{"name": {"secret-site"}, "image": {platform.StaticRuntimeImage}, "plan": {"1"}, "app_port": {"8080"}})
	appPage := strings.SplitN(a.location, "?", 2)[0]
	alice.get("/account")
	alice.post("/account/tokens", url.Values{"name": {"ci"}}).expect(t, 200)

	bob, bobApps := ui.signUp("bob")
	bob.get(bobApps).expect(t, 200, "No apps yet")
	for _, path := range []string{aliceApps, aliceApps + "jobs", aliceApps + "new", appPage, appPage + "/logs"} {
		if got := bob.get(path); got.status != http.StatusNotFound || strings.Contains(got.body, "secret-site") {
			t.Errorf("bob GET %s: %d", path, got.status)
		}
	}
	for _, path := range []string{appPage + "/delete", appPage + "/action", appPage + "/settings"} {
		if got := bob.post(path, url.Values{"confirm_name": {"secret-site"}, "action": {"restart"}}); got.status != http.StatusNotFound {
			t.Errorf("bob POST %s: %d", path, got.status)
		}
	}
	if !strings.Contains(bob.get("/account").body, "No tokens yet") {
		t.Error("bob sees a token")
	}
	if _, err := ui.st.AppByName("secret-site"); err != nil {
		t.Errorf("alice's app: %v", err)
	}
}

func TestKeysAndTokens(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, _ := ui.signUp("alice")
	b.get("/account").expect(t, 200, "No keys yet", "No tokens yet")
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop"
	b.post("/account/keys", url.Values{"key": {"not a key"}}).expect(t, http.StatusBadRequest, `<span id="key-err"><span class="err" role="alert">must be one SSH public key`)
	b.post("/account/keys", url.Values{"key": {key}}).expect(t, http.StatusSeeOther)
	page := b.get("/account").expect(t, 200, "laptop", "SHA256:")
	m := regexp.MustCompile(`/account/keys/(\d+)/delete`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no remove button")
	}
	b.post("/account/keys/"+m[1]+"/delete", nil).expect(t, http.StatusSeeOther)
	b.get("/account").expect(t, 200, "No keys yet")

	a := b.post("/account/tokens", url.Values{"name": {"deploys"}}).expect(t, 200, "shown only this once")
	secret := regexp.MustCompile(`<code id="new-token">([0-9a-f]+)</code>`).FindStringSubmatch(a.body)
	if secret == nil {
		t.Fatal("no token shown")
	}
	if u, err := ui.p.Authenticate(context.Background(), secret[1]); err != nil || u.Username != "alice" {
		t.Fatalf("the shown token does not authenticate alice: %v %v", u, err)
	}
	again := b.get("/account").expect(t, 200, "deploys")
	if strings.Contains(again.body, secret[1]) {
		t.Error("the token's secret is shown a second time")
	}
	m = regexp.MustCompile(`/account/tokens/(\d+)/delete`).FindStringSubmatch(again.body)
	b.post("/account/tokens/"+m[1]+"/delete", nil).expect(t, http.StatusSeeOther)
	if _, err := ui.p.Authenticate(context.Background(), secret[1]); err == nil {
		t.Error("a revoked token still works")
	}
}

func TestChangePassword(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")
	other, _ := ui.browser(), 0
	other.get("/signin")
	other.post("/signin", url.Values{"username": {"alice"}, "password": {"password-alice"}}).expect(t, http.StatusSeeOther)
	b.get("/account")
	b.post("/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"new-password"}, "new_password2": {"new-password"}}).
		expect(t, http.StatusBadRequest, "is not your current password")
	b.post("/account/password", url.Values{"current_password": {"password-alice"}, "new_password": {"short"}, "new_password2": {"short"}}).
		expect(t, http.StatusBadRequest, `<span id="new_password-err"><span class="err" role="alert">must be at least 8`)
	b.post("/account/password", url.Values{"current_password": {"password-alice"}, "new_password": {"new-password"}, "new_password2": {"new-password"}}).
		expect(t, http.StatusSeeOther)
	b.get(apps).expect(t, 200)
	if a := other.get(apps); a.status != http.StatusSeeOther {
		t.Errorf("the other session still works after the password changed: %d", a.status)
	}
	if _, err := ui.p.SignIn(context.Background(), "192.0.2.1", "alice", "new-password"); err != nil {
		t.Errorf("the new password does not sign in: %v", err)
	}
}

func TestCookiesOverHTTPS(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	tlsSrv := httptest.NewTLSServer(ui.ui)
	t.Cleanup(tlsSrv.Close)
	client := tlsSrv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	jar, _ := cookiejar.New(nil)
	client.Jar = jar
	b := &browser{t: t, ui: &testUI{t: t, st: ui.st, p: ui.p, srv: tlsSrv, ui: ui.ui}, client: client}
	b.get("/signup")
	b.post("/signup", url.Values{"username": {"alice"}, "password": {"password-alice"}, "password2": {"password-alice"}}).expect(t, http.StatusSeeOther)
	b.get("/signin")
	req, _ := http.NewRequest("POST", tlsSrv.URL+"/signin", strings.NewReader(url.Values{
		"csrf": {b.csrf}, "username": {"alice"}, "password": {"password-alice"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var line string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-"+cookieSession+"=") {
			line = c
		}
	}
	for _, flag := range []string{"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(line, flag) {
			t.Errorf("session cookie over HTTPS %q lacks %s (all: %q)", line, flag, resp.Header.Values("Set-Cookie"))
		}
	}
	if strings.Contains(line, "Domain=") {
		t.Errorf("a __Host- cookie with a domain: %q", line)
	}
	if a := b.get("/"); !strings.HasPrefix(a.location, "/c/") {
		t.Errorf("not signed in over HTTPS: %d %s", a.status, a.location)
	}
}

func TestMembers(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	alice, aliceApps := ui.signUp("alice")
	bob, bobApps := ui.signUp("bob")
	members := aliceApps + "members"
	alice.get(members).expect(t, 200, "alice", "owner")
	alice.post(members, url.Values{"username": {"nobody"}}).expect(t, http.StatusBadRequest,
		`<span id="username-err"><span class="err" role="alert">there is no user named &#34;nobody&#34;`)
	alice.post(members, url.Values{"username": {"bob"}}).expect(t, http.StatusSeeOther)
	alice.post(members, url.Values{"username": {"bob"}}).expect(t, http.StatusBadRequest, "bob is already a member")

	// bob now sees alice's company, and may not add or remove others.
	bob.get(members).expect(t, 200, "alice", "bob")
	bob.post(members, url.Values{"username": {"alice"}}).expect(t, http.StatusForbidden)
	alice1 := mustUser(t, ui, "alice")
	bob1 := mustUser(t, ui, "bob")
	bob.post(fmt.Sprintf("%smembers/%d/delete", aliceApps, alice1.ID), nil).expect(t, http.StatusForbidden)
	bob.get(bobApps).expect(t, 200)

	alice.post(fmt.Sprintf("%smembers/%d/delete", aliceApps, bob1.ID), nil).expect(t, http.StatusSeeOther)
	bob.get(members).expect(t, http.StatusNotFound)
	alice.post(fmt.Sprintf("%smembers/%d/delete", aliceApps, alice1.ID), nil).expect(t, http.StatusConflict, "a company keeps at least one member")
}

func TestJobsPage(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	alice, apps := ui.signUp("alice")
	bob, _ := ui.signUp("bob")
	alice.get(apps+"jobs").expect(t, 200, "No jobs")
	co := mustCompanyOf(t, ui, "alice")
	if _, err := ui.st.CreateJob(store.Job{CompanyID: co, Kind: "pull", Target: "docker.io/library/node:22", Status: store.JobRunning, Progress: 42, Message: "layer 3 of 7"}); err != nil {
		t.Fatal(err)
	}
	alice.get(apps+"jobs").expect(t, 200, "docker.io/library/node:22", `value="42"`, "42%", "layer 3 of 7", `data-refresh`)
	bob.get(apps+"jobs").expect(t, http.StatusNotFound)
}

func mustCompanyOf(t testing.TB, ui *testUI, name string) int64 {
	t.Helper()
	cs, err := ui.p.Companies(context.Background(), mustUser(t, ui, name))
	if err != nil || len(cs) == 0 {
		t.Fatalf("companies of %s: %v %v", name, cs, err)
	}
	return cs[0].ID
}
