package drycc_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/drycc"
)

// TestLoginIsThrottled: wrong passwords for one account, and from one
// address, are answered 429 with Retry-After once over the limit, without
// keeping other accounts, other addresses, or the owner at an address it
// logged in from before, from logging in; logging in again and again keeps
// a bounded number of tokens.
func TestLoginIsThrottled(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, st := facetest.Platform(t, platform.Config{AppsDomain: "apps.test"}, platform.Deps{Log: log})
	for _, name := range []string{"alice", "bob", "carol"} {
		if _, err := p.CreateUser(context.Background(), platform.Operator(), platform.NewUser{Username: name, Password: "pw-of-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	h := drycc.New(p, "test", log)
	login := func(from, user, password string) (int, string, string) {
		t.Helper()
		req := httptest.NewRequest("POST", "/v2/auth/login/", strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
		req.RemoteAddr = from + ":40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, rec.Header().Get("Retry-After"), body["detail"] + body["token"]
	}
	mustLogIn := func(from, user string) {
		t.Helper()
		if code, _, body := login(from, user, "pw-of-"+user); code != http.StatusOK {
			t.Fatalf("%s from %s: %d %s, want 200", user, from, code, body)
		}
	}

	// alice logged in from her own address before the attack.
	mustLogIn("192.0.2.50", "alice")

	// One address guesses alice's password.
	var code int
	var retry, body string
	for range 10 {
		// DRF's obtain_auth_token answers a failed login with a 400.
		if code, _, body = login("198.51.100.7", "alice", "wrong"); code != http.StatusBadRequest {
			t.Fatalf("a wrong password: %d %s, want 400", code, body)
		}
	}
	code, retry, body = login("198.51.100.7", "alice", "wrong")
	if seconds, err := strconv.Atoi(retry); code != http.StatusTooManyRequests || err != nil || seconds < 1 || !strings.Contains(body, "try again") {
		t.Fatalf("the 11th wrong password: %d, Retry-After %q, %s; want 429 with Retry-After", code, retry, body)
	}
	if code, _, _ = login("198.51.100.8", "alice", "pw-of-alice"); code != http.StatusTooManyRequests {
		t.Fatalf("alice's right password from a new address during the attack: %d, want 429", code)
	}
	mustLogIn("192.0.2.50", "alice") // from where she logged in before
	mustLogIn("198.51.100.7", "bob") // other accounts, even from the guessing address

	// One address tries many accounts.
	for i := range 30 {
		login("203.0.113.9", "nobody"+strconv.Itoa(i), "wrong")
	}
	if code, retry, _ = login("203.0.113.9", "carol", "pw-of-carol"); code != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("an address past its failures: %d, Retry-After %q; want 429", code, retry)
	}
	mustLogIn("203.0.113.10", "carol")

	for range 15 {
		mustLogIn("192.0.2.60", "carol")
	}
	u, err := st.UserByName("carol")
	if err != nil {
		t.Fatal(err)
	}
	if tokens, err := st.Tokens(u.ID); err != nil || len(tokens) > 10 {
		t.Fatalf("16 logins keep %d tokens (%v); want at most 10", len(tokens), err)
	}
}
