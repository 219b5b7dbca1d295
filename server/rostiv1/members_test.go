package rostiv1_test

import (
	"fmt"
	"strings"
	"testing"
)

func TestMembers(t *testing.T) {
	a := newTestAPI(t)
	members := fmt.Sprintf("/api/v1/%d/members/", a.aliceCo)
	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
		says                            string
	}{
		{"alice lists herself", a.alice, "GET", members, "", 200, `"username":"alice","role":"owner"`},
		{"no username", a.alice, "POST", members, `{}`, 400, "this field is required"},
		{"no such user", a.alice, "POST", members, `{"username":"carol"}`, 400, `there is no user named \"carol\"`},
		{"alice adds bob", a.alice, "POST", members, `{"username":"bob"}`, 200, `"username":"bob","role":"member"`},
		{"bob twice", a.alice, "POST", members, `{"username":"bob"}`, 400, "bob is already a member"},
		{"bob lists both", a.bob, "GET", members, "", 200, `"username":"alice"`},
		{"bob may not remove alice", a.bob, "DELETE", fmt.Sprintf("%s%d/", members, a.aliceUser.ID), "", 403, "owners and admins"},
		{"bob leaves", a.bob, "DELETE", fmt.Sprintf("%s%d/", members, a.bobUser.ID), "", 200, "member removed"},
		{"bob no longer sees it", a.bob, "GET", members, "", 404, ""},
		{"the last member stays", a.alice, "DELETE", fmt.Sprintf("%s%d/", members, a.aliceUser.ID), "", 409, "at least one member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, tc.token, tc.method, tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.says) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tc.method, tc.path, r.status, r.body, tc.status, tc.says)
			}
		})
	}
}
