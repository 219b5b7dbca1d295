package web

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/rosti-paas/rosti/platform"
)

func TestSignUpNamesIgnoreCase(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	ui.signUp("Alice")
	b := ui.browser()
	b.get("/signup")
	b.post("/signup", url.Values{"username": {"alice"}, "password": {"password-other"}, "password2": {"password-other"}}).
		expect(t, http.StatusBadRequest, `<span id="username-err"><span class="err" role="alert">a user with that username already exists: Alice`)
	b.get("/signin")
	if a := b.post("/signin", url.Values{"username": {"ALICE"}, "password": {"password-Alice"}}); a.status != http.StatusSeeOther || a.location != "/" {
		t.Fatalf("sign in as ALICE: %d %s\n%s", a.status, a.location, a.body)
	}
}
