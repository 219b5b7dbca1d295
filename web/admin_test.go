package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rosti-paas/rosti/platform"
)

func (ui *testUI) signInAs(name, password string) *browser {
	ui.t.Helper()
	b := ui.browser()
	b.get("/signin")
	if a := b.post("/signin", url.Values{"username": {name}, "password": {password}}); a.status != http.StatusSeeOther || a.location != "/" {
		ui.t.Fatalf("sign in as %s: %d %s", name, a.status, a.location)
	}
	return b
}

func TestAdminPages(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationClosed)
	if _, err := ui.p.CreateUser(context.Background(), platform.Operator(), platform.NewUser{Username: "root", Password: "root-password", Superuser: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ui.p.CreateUser(context.Background(), platform.Operator(), platform.NewUser{Username: "bob", Password: "bob-password"}); err != nil {
		t.Fatal(err)
	}
	bob := ui.signInAs("bob", "bob-password")
	for _, path := range []string{"/admin/users", "/admin/catalogue", "/admin/images", "/admin/health"} {
		bob.get(path).expect(t, http.StatusForbidden, "only an administrator")
	}
	bob.get("/account")
	bob.post("/admin/users", url.Values{"username": {"mallory"}, "password": {"mallory-pw"}, "superuser": {"on"}}).expect(t, http.StatusForbidden)

	root := ui.signInAs("root", "root-password")
	root.get("/admin/users").expect(t, 200, "Users", "bob", "root")
	root.post("/admin/users", url.Values{"username": {"x y"}, "password": {"carol-password"}}).expect(t, http.StatusBadRequest,
		`<span id="username-err"><span class="err" role="alert">must be 1-150`)
	root.post("/admin/users", url.Values{"username": {"carol"}, "password": {"carol-password"}}).expect(t, http.StatusSeeOther)
	root.post("/admin/users/carol/password", url.Values{"password": {"carol-new-password"}}).expect(t, http.StatusSeeOther)
	ui.signInAs("carol", "carol-new-password")

	// Disabling bob ends his session at once.
	root.post("/admin/users/bob/flags", url.Values{}).expect(t, http.StatusSeeOther)
	if a := bob.get("/account"); a.status != http.StatusSeeOther {
		t.Errorf("a disabled user's session still works: %d", a.status)
	}
	root.post("/admin/users/root/flags", url.Values{"superuser": {"on"}}).expect(t, http.StatusForbidden, "cannot take away your own")
	root.post("/admin/users/carol/flags", url.Values{"superuser": {"on"}, "active": {"on"}}).expect(t, http.StatusSeeOther)
	if u := mustUser(t, ui, "carol"); !u.IsSuperuser || !u.IsActive {
		t.Errorf("carol: %+v", u)
	}

	root.get("/admin/catalogue").expect(t, 200, "start&#43;", "static")
	root.post("/admin/plans", url.Values{"name": {"tiny"}, "ram": {"8"}, "cpu_quota": {"10"}, "pids": {"64"}, "disk": {"100"}}).
		expect(t, http.StatusBadRequest, `<span id="ram-err"><span class="err" role="alert">must be at least 16 MB`)
	root.post("/admin/plans", url.Values{"name": {"tiny"}, "ram": {"64"}, "cpu_quota": {"10"}, "pids": {"64"}, "disk": {"100"}, "price": {"2"}}).
		expect(t, http.StatusSeeOther)
	root.post("/admin/runtimes", url.Values{"name": {"go"}, "image": {"docker.io/library/golang:1.26"}, "command": {"./server --port 8080"}, "show": {"on"}}).
		expect(t, http.StatusSeeOther)
	root.get("/admin/catalogue").expect(t, 200, "tiny", "64 MB", "100 mCPU", "docker.io/library/golang:1.26", "./server --port 8080")
	root.get("/admin/health").expect(t, 200, "containerd: not used", "MB available", "No app serves HTTPS yet.")
	root.get("/admin/images").expect(t, http.StatusBadRequest)
}

func TestRequireTwoFactor(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	if _, err := ui.p.CreateUser(context.Background(), platform.Operator(), platform.NewUser{Username: "root", Password: "root-password", Superuser: true}); err != nil {
		t.Fatal(err)
	}
	alice, apps := ui.signUp("alice")
	root := ui.signInAs("root", "root-password")
	root.get("/admin/users")
	root.post("/admin/settings", url.Values{"require_two_factor": {"on"}}).expect(t, http.StatusSeeOther)

	a := alice.get(apps)
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/account") {
		t.Fatalf("alice without two-factor reaches her apps: %d %s", a.status, a.location)
	}
	alice.get("/account").expect(t, 200, "Set up two-factor sign-in")
	alice.post("/account/tokens", url.Values{"name": {"ci"}}).expect(t, http.StatusForbidden, "requires two-factor sign-in")
	alice.post("/account/2fa/setup", nil).expect(t, http.StatusSeeOther)
	m := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(alice.get("/account").body)
	code, _ := totp.GenerateCode(m[1], time.Now())
	alice.post("/account/2fa/enable", url.Values{"code": {code}}).expect(t, 200)
	alice.get(apps).expect(t, 200, "No apps yet")

	// The administrator who requires it needs it too.
	if a := root.get("/admin/users"); !strings.HasPrefix(a.location, "/account") {
		t.Errorf("root without two-factor reaches the admin pages: %d %s", a.status, a.location)
	}
	if err := ui.p.RequireTwoFactor(context.Background(), platform.Operator(), false); err != nil {
		t.Fatal(err)
	}
	root.get("/admin/users").expect(t, 200, "Sign-in policy")
}
