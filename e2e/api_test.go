package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var adminPassword = regexp.MustCompile(`password: (\S+)`)

// TestRostiV1API walks every Rosti v1 endpoint against the real binary with
// two registered users, then restarts it to show nothing was lost.
func TestRostiV1API(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)

	m := adminPassword.FindStringSubmatch(in.output())
	if m == nil {
		t.Fatalf("first start printed no admin password:\n%s", in.output())
	}
	var login struct{ Token string }
	in.expect(t, 200, "", "POST", "/v1/auth/login/", map[string]string{"username": "admin", "password": m[1]}).decode(t, &login)
	if login.Token == "" {
		t.Fatal("admin login gave no token")
	}

	tokens := map[string]string{}
	companies := map[string]int64{}
	for _, name := range []string{"alice", "bob"} {
		var u struct {
			Username    string `json:"username"`
			IsSuperuser bool   `json:"is_superuser"`
		}
		in.expect(t, 201, "", "POST", "/v1/auth/register/", map[string]string{"username": name, "password": "pw-of-" + name, "email": name + "@example.com"}).decode(t, &u)
		if u.Username != name || u.IsSuperuser {
			t.Fatalf("registered %+v", u)
		}
		var tok struct{ Token string }
		in.expect(t, 200, "", "POST", "/v1/auth/login/", map[string]string{"username": name, "password": "pw-of-" + name}).decode(t, &tok)
		tokens[name] = tok.Token
		var cs []struct {
			ID   int64
			Name string
		}
		in.expect(t, 200, tok.Token, "GET", "/api/v1/companies/", nil).decode(t, &cs)
		if len(cs) != 1 || cs[0].Name != name {
			t.Fatalf("%s's companies: %+v", name, cs)
		}
		companies[name] = cs[0].ID
	}
	in.expect(t, 400, "", "POST", "/v1/auth/register/", map[string]string{"username": "alice", "password": "another-pw"})
	// As Django REST framework's obtain_auth_token: 400, non_field_errors.
	in.expect(t, 400, "", "POST", "/v1/auth/login/", map[string]string{"username": "alice", "password": "wrong"})
	alice, co := tokens["alice"], companies["alice"]

	var plans []map[string]any
	in.expect(t, 200, alice, "GET", pathf("/api/v1/%d/plans/", co), nil).decode(t, &plans)
	var runtimes []map[string]any
	in.expect(t, 200, alice, "GET", pathf("/api/v1/%d/runtimes/", co), nil).decode(t, &runtimes)
	if len(plans) < 3 || len(runtimes) < 1 {
		t.Fatalf("catalogue: %d plans, %d runtimes", len(plans), len(runtimes))
	}

	var app map[string]any
	in.expect(t, 200, alice, "POST", pathf("/api/v1/%d/apps/", co), map[string]any{
		"name": "blog", "image": runtimes[0]["image"], "plan": plans[0]["id"], "domains": "blog.example.com",
	}).decode(t, &app)
	id := int64(app["id"].(float64))
	var list []map[string]any
	in.expect(t, 200, alice, "GET", pathf("/api/v1/%d/apps/", co), nil).decode(t, &list)
	if len(list) != 1 || list[0]["name"] != "blog" {
		t.Fatalf("app list: %v", list)
	}
	in.expect(t, 200, alice, "GET", pathf("/api/v1/%d/apps/%d/", co, id), nil)
	in.expect(t, 200, alice, "PUT", pathf("/api/v1/%d/apps/%d/", co, id), map[string]any{"app_port": 3000})
	in.expect(t, 200, alice, "PATCH", pathf("/api/v1/%d/apps/%d/", co, id), map[string]any{"mode": "https+le"}).decode(t, &app)
	if app["app_port"] != 3000.0 || app["mode"] != "https+le" {
		t.Fatalf("partial updates: %v", app)
	}
	in.expect(t, 404, tokens["bob"], "GET", pathf("/api/v1/%d/apps/%d/", co, id), nil)
	in.expect(t, 404, tokens["bob"], "DELETE", pathf("/api/v1/%d/apps/%d/", co, id), nil)

	var tok struct {
		ID    int64
		Token string
	}
	in.expect(t, 200, alice, "POST", "/api/v1/tokens/", map[string]string{"name": "deploy"}).decode(t, &tok)
	in.expect(t, 200, tok.Token, "GET", "/api/v1/tokens/", nil)
	in.expect(t, 200, alice, "DELETE", pathf("/api/v1/tokens/%d/", tok.ID), nil)
	in.expect(t, 401, tok.Token, "GET", "/api/v1/companies/", nil)
	if r := in.expect(t, 200, "", "GET", "/api/schema/", nil); !contains(string(r.body), `"openapi"`) {
		t.Fatalf("schema: %s", r.body)
	}

	// The operator's commands go through the running server.
	if out, err := in.admin("create-user", "carol", "--password", "pw-of-carol"); err != nil || !contains(out, "created user carol") {
		t.Fatalf("admin create-user: %v %s", err, out)
	}
	out, err := in.admin("reset-password", "carol")
	pw := adminPassword.FindStringSubmatch(out)
	if err != nil || pw == nil {
		t.Fatalf("admin reset-password: %v %s", err, out)
	}
	in.expect(t, 200, "", "POST", "/v1/auth/login/", map[string]string{"username": "carol", "password": pw[1]})
	out, err = in.admin("create-token", "carol")
	if err != nil {
		t.Fatalf("admin create-token: %v %s", err, out)
	}
	in.expect(t, 200, regexp.MustCompile(`\S+`).FindString(out), "GET", "/api/v1/companies/", nil)
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, err := in.admin("backup", backup); err != nil {
		t.Fatalf("admin backup: %v %s", err, out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}

	in.expect(t, 200, alice, "DELETE", pathf("/api/v1/%d/apps/%d/", co, id), nil)
	in.expect(t, 204, tokens["bob"], "DELETE", "/v1/auth/cancel/", nil)
	in.expect(t, 401, tokens["bob"], "GET", "/api/v1/companies/", nil)

	// A restart keeps the accounts and prints no new password.
	in.stop()
	again := startRosti(t, bin, data)
	if contains(again.output(), "password:") {
		t.Fatalf("second start printed a password again:\n%s", again.output())
	}
	again.expect(t, 200, alice, "GET", "/api/v1/companies/", nil)

	// The backup is a store a new server can start from.
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.MkdirAll(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "rosti.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	fromBackup := startRosti(t, bin, restored)
	fromBackup.expect(t, 200, "", "POST", "/v1/auth/login/", map[string]string{"username": "carol", "password": pw[1]})
}

func TestRegistrationPolicy(t *testing.T) {
	bin := rostiBin(t)
	tests := []struct {
		policy string
		status int
	}{
		{"open", 201},
		{"admin_only", 403},
		{"closed", 403},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			in := startRosti(t, bin, filepath.Join(t.TempDir(), "data"), "--registration", tc.policy)
			r := in.expect(t, tc.status, "", "POST", "/v1/auth/register/", map[string]string{"username": "dave", "password": "pw-of-dave"})
			if tc.status != 201 && !contains(string(r.body), "detail") {
				t.Fatalf("refusal without a reason: %s", r.body)
			}
		})
	}
}
