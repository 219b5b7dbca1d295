package e2e

import (
	"path/filepath"
	"testing"
)

// TestAPIUsernamesIgnoreCase: "Alice" and "alice" are one account in every
// dialect: a second spelling cannot register, any spelling logs in.
func TestAPIUsernamesIgnoreCase(t *testing.T) {
	in := startRosti(t, rostiBin(t), filepath.Join(t.TempDir(), "data"))
	in.expect(t, 201, "", "POST", "/v1/auth/register/", map[string]string{"username": "Alice", "password": "pw-of-Alice"})
	refused := []struct {
		name, path, username, says string
	}{
		{"rosti", "/v1/auth/register/", "alice", "A user with that username already exists."},
		{"drycc", "/v2/auth/register/", "ALICE", "A user with that username already exists."},
	}
	for _, tt := range refused {
		t.Run(tt.name+" register "+tt.username, func(t *testing.T) {
			r := in.expect(t, 400, "", "POST", tt.path, map[string]string{"username": tt.username, "password": "pw-of-another"})
			if !contains(string(r.body), tt.says) || !contains(string(r.body), "username") {
				t.Fatalf("answer %s, want it to say %q about the username", r.body, tt.says)
			}
		})
	}
	logins := []struct{ name, path, username string }{
		{"rosti", "/v1/auth/login/", "alice"},
		{"rosti", "/v1/auth/login/", "Alice"},
		{"drycc", "/v2/auth/login/", "ALICE"},
	}
	for _, tt := range logins {
		t.Run(tt.name+" login "+tt.username, func(t *testing.T) {
			var tok struct{ Token string }
			in.expect(t, 200, "", "POST", tt.path, map[string]string{"username": tt.username, "password": "pw-of-Alice"}).decode(t, &tok)
			var me struct{ Username string }
			in.expect(t, 200, tok.Token, "GET", "/v2/auth/whoami/", nil).decode(t, &me)
			if me.Username != "Alice" {
				t.Fatalf("logged in as %q, want Alice (the name as registered)", me.Username)
			}
		})
	}
}
