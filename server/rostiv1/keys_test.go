package rostiv1_test

import (
	"fmt"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	a := newTestAPI(t)
	for _, tc := range []struct {
		name, body string
		status     int
		want       string // in the answer
	}{
		{"named by its comment", `{"key":"` + validKey + `"}`, 200, `"name":"alice@laptop"`},
		{"added twice", `{"name":"again","key":"` + validKey + `"}`, 400, `"key":["you already added this key`},
		{"no key", `{"name":"x"}`, 400, `"key":["this field is required"]`},
		{"not a key", `{"key":"ssh-rsa nope"}`, 400, `"key":["must be one SSH public key`},
		{"key of the wrong type", `{"key":42}`, 400, `"key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, a.alice, "POST", "/api/v1/keys/", tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("status %d, want %d with %s: %s", r.status, tc.status, tc.want, r.body)
			}
		})
	}
	var keys []struct {
		ID          int64
		Key         string
		Fingerprint string
	}
	a.do(t, a.alice, "GET", "/api/v1/keys/", "").json(t, &keys)
	if len(keys) != 1 || !strings.HasPrefix(validKey, keys[0].Key+" ") || !strings.HasPrefix(keys[0].Fingerprint, "SHA256:") {
		t.Fatalf("alice's keys: %+v", keys)
	}
	if r := a.do(t, a.bob, "GET", "/api/v1/keys/", ""); string(r.body) != "[]\n" && string(r.body) != "[]" {
		t.Fatalf("bob sees keys: %s", r.body)
	}
	path := fmt.Sprintf("/api/v1/keys/%d/", keys[0].ID)
	if r := a.do(t, a.bob, "DELETE", path, ""); r.status != 404 {
		t.Fatalf("bob deleting alice's key: %d %s", r.status, r.body)
	}
	if r := a.do(t, a.alice, "DELETE", path, ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := a.do(t, a.alice, "DELETE", path, ""); r.status != 404 {
		t.Fatalf("second delete: %d %s", r.status, r.body)
	}
}
