package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rosti-paas/rosti/platform"
)

func TestTwoFactor(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, apps := ui.signUp("alice")
	b.get("/account").expect(t, 200, "Set up two-factor sign-in")
	b.post("/account/2fa/setup", nil).expect(t, http.StatusSeeOther)
	page := b.get("/account").expect(t, 200, "Turn two-factor sign-in on", `src="data:image/png;base64,`)
	m := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no secret shown")
	}
	secret := m[1]
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	b.post("/account/2fa/enable", url.Values{"code": {"000000"}}).expect(t, http.StatusBadRequest,
		`<span id="totp_code-err"><span class="err" role="alert">is not the current code`)
	on := b.post("/account/2fa/enable", url.Values{"code": {code(time.Now())}}).expect(t, 200, "shown only this once")
	recovery := regexp.MustCompile(`<li><code>([a-z2-7]{8}-[a-z2-7]{8})</code></li>`).FindAllStringSubmatch(on.body, -1)
	if len(recovery) != 10 {
		t.Fatalf("%d recovery codes shown", len(recovery))
	}
	b.get("/account").expect(t, 200, "10 recovery codes left")

	signIn := func(c *browser) {
		t.Helper()
		c.get("/signin")
		a := c.post("/signin", url.Values{"username": {"alice"}, "password": {"password-alice"}})
		if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/signin/code") {
			t.Fatalf("sign in with two factors: %d %s", a.status, a.location)
		}
		if got := c.get(apps); got.status != http.StatusSeeOther {
			t.Fatalf("signed in before the code: %d", got.status)
		}
		c.get("/signin/code").expect(t, 200, "Type the code")
	}
	// The next step's code: the current one was used to turn it on, and a
	// code is never accepted twice.
	next := code(time.Now().Add(30 * time.Second))
	c := ui.browser()
	signIn(c)
	c.post("/signin/code", url.Values{"code": {"123456"}}).expect(t, http.StatusBadRequest, "is not a current code")
	c.post("/signin/code", url.Values{"code": {next}}).expect(t, http.StatusSeeOther)
	c.get(apps).expect(t, 200, "No apps yet")

	c = ui.browser()
	signIn(c)
	c.post("/signin/code", url.Values{"code": {next}}).expect(t, http.StatusBadRequest, "is not a current code")

	c = ui.browser()
	signIn(c)
	c.post("/signin/code", url.Values{"code": {strings.ToUpper(recovery[0][1])}}).expect(t, http.StatusSeeOther)
	c.get("/account").expect(t, 200, "9 recovery codes left")
	c = ui.browser()
	signIn(c)
	c.post("/signin/code", url.Values{"code": {recovery[0][1]}}).expect(t, http.StatusBadRequest, "unused recovery code")

	b.get("/account")
	b.post("/account/2fa/disable", url.Values{"password": {"wrong"}}).expect(t, http.StatusBadRequest,
		`<span id="tf_password-err"><span class="err" role="alert">is not your current password`)
	b.post("/account/2fa/disable", url.Values{"password": {"password-alice"}}).expect(t, http.StatusSeeOther)
	c = ui.browser()
	c.get("/signin")
	if a := c.post("/signin", url.Values{"username": {"alice"}, "password": {"password-alice"}}); a.location != "/" {
		t.Errorf("two-factor still asked after turning it off: %s", a.location)
	}
}

func TestWrongCodesEndTheSignIn(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	b, _ := ui.signUp("alice")
	b.get("/account")
	b.post("/account/2fa/setup", nil)
	m := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(b.get("/account").body)
	c, _ := totp.GenerateCode(m[1], time.Now())
	b.post("/account/2fa/enable", url.Values{"code": {c}}).expect(t, 200)

	// Wrong codes count against the login limits of the account and address;
	// beneath it, platform ends the sign-in after five wrong codes.
	x := ui.browser()
	x.get("/signin")
	x.post("/signin", url.Values{"username": {"alice"}, "password": {"password-alice"}}).expect(t, http.StatusSeeOther)
	var secret string
	u, _ := url.Parse(ui.srv.URL)
	for _, ck := range x.client.Jar.Cookies(u) {
		if ck.Name == cookieSession {
			secret = ck.Value
		}
	}
	for range 4 {
		if _, err := ui.p.SignInCode(t.Context(), "127.0.0.1", secret, "000000"); err == nil {
			t.Fatal("a wrong code signed in")
		}
	}
	if _, err := ui.p.SignInCode(t.Context(), "127.0.0.1", secret, "000000"); err == nil || !strings.Contains(err.Error(), "sign in again") {
		t.Fatalf("fifth wrong code: %v", err)
	}
	good, _ := totp.GenerateCode(m[1], time.Now().Add(30*time.Second))
	if _, err := ui.p.SignInCode(t.Context(), "127.0.0.1", secret, good); err == nil {
		t.Fatal("the sign-in survived five wrong codes")
	}
}
