package drycc_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/drycc"
)

func newServer(t *testing.T, registration string) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, _ := facetest.Platform(t, platform.Config{AppsDomain: "apps.test", Registration: registration}, platform.Deps{Log: log})
	srv := httptest.NewServer(drycc.New(p, "test", log))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, srv *httptest.Server, method, path, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return resp, out
}

func TestAccountsInDjangoShapes(t *testing.T) {
	srv := newServer(t, platform.RegistrationOpen)
	for _, prefix := range []string{"/v1", "/v2"} {
		t.Run(prefix, func(t *testing.T) {
			name := "user" + strings.Trim(prefix, "/v")
			resp, user := send(t, srv, "POST", prefix+"/auth/register/", "", `{"username":"`+name+`","password":"long-enough","email":"a@b.cz"}`)
			if resp.StatusCode != 201 || user["username"] != name || resp.Header.Get("DRYCC_API_VERSION") != drycc.APIVersion {
				t.Fatalf("register: %d %v %v", resp.StatusCode, user, resp.Header)
			}
			for _, k := range []string{"id", "last_login", "is_superuser", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined", "groups", "user_permissions"} {
				if _, ok := user[k]; !ok {
					t.Errorf("user lacks %q", k)
				}
			}
			if _, ok := user["password_hash"]; ok {
				t.Error("the password hash is shown")
			}
			resp, login := send(t, srv, "POST", prefix+"/auth/login/", "", `{"username":"`+name+`","password":"long-enough"}`)
			token, _ := login["token"].(string)
			if resp.StatusCode != 200 || token == "" {
				t.Fatalf("login: %d %v", resp.StatusCode, login)
			}
			if resp, _ := send(t, srv, "DELETE", prefix+"/auth/cancel/", token, ""); resp.StatusCode != 204 {
				t.Fatalf("cancel: %d", resp.StatusCode)
			}
			if resp, _ := send(t, srv, "POST", prefix+"/auth/login/", "", `{"username":"`+name+`","password":"long-enough"}`); resp.StatusCode != 400 {
				t.Fatalf("login after cancel: %d", resp.StatusCode)
			}
		})
	}
}

func TestAccountErrors(t *testing.T) {
	srv := newServer(t, platform.RegistrationOpen)
	send(t, srv, "POST", "/v1/auth/register/", "", `{"username":"taken","password":"long-enough"}`)
	tests := []struct {
		name, method, path, body string
		status                   int
		key                      string // the field or "detail" the answer must carry
	}{
		{"missing fields", "POST", "/v1/auth/register/", `{}`, 400, "username"},
		{"short password", "POST", "/v1/auth/register/", `{"username":"x","password":"short"}`, 400, "password"},
		{"taken username", "POST", "/v1/auth/register/", `{"username":"taken","password":"long-enough"}`, 400, "username"},
		{"bad email", "POST", "/v1/auth/register/", `{"username":"y","password":"long-enough","email":"nope"}`, 400, "email"},
		{"wrong password", "POST", "/v1/auth/login/", `{"username":"taken","password":"wrong-one"}`, 400, "non_field_errors"},
		{"malformed", "POST", "/v1/auth/login/", `{"username":`, 400, "detail"},
		{"cancel without token", "DELETE", "/v1/auth/cancel/", ``, 401, "detail"},
		{"unknown path", "GET", "/v2/nothing/", ``, 404, "detail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, srv, tc.method, tc.path, "", tc.body)
			if resp.StatusCode != tc.status || body[tc.key] == nil {
				t.Fatalf("got %d %v, want %d with %q", resp.StatusCode, body, tc.status, tc.key)
			}
		})
	}
}

func TestClosedRegistration(t *testing.T) {
	srv := newServer(t, platform.RegistrationClosed)
	resp, body := send(t, srv, "POST", "/v1/auth/register/", "", `{"username":"x","password":"long-enough"}`)
	if resp.StatusCode != 403 || !strings.Contains(body["detail"].(string), "closed") {
		t.Fatalf("got %d %v", resp.StatusCode, body)
	}
}
