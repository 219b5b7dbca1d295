package rostiv1_test

import (
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzAppRequest sends arbitrary bodies to the app create and update
// endpoints: whatever comes in, the answer is a 200 or a 4xx with a message,
// never a 500.
func FuzzAppRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","image":"static","plan":1}`,
		`{"name":"b","image":"static","plan":"1","domains":"x.example.com y.example.com","app_port":3000,"mode":"https+le"}`,
		`{"domains":["x.example.com"],"ssh_keys":"ssh-ed25519 AAAA\nssh-rsa BBBB","ssh_password":"12345678"}`,
		`{"plan":1e309}`, `{"app_port":-1}`, `{"app_port":9223372036854775808}`, `{"name":null}`,
		`[]`, `"x"`, `{`, ``, `{"name":{"x":1}}`, `{"domains":[1,2]}`, `{"ssh_keys":[null]}`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	a := newTestAPI(f)
	appID := a.createApp(f, a.alice, a.aliceCo, `{"name":"fuzzed","image":"static","plan":1}`)
	f.Fuzz(func(t *testing.T, body string, create bool) {
		method, path := "PATCH", fmt.Sprintf("/api/v1/%d/apps/%d/", a.aliceCo, appID)
		if create {
			method, path = "POST", fmt.Sprintf("/api/v1/%d/apps/", a.aliceCo)
		}
		r := a.do(t, a.alice, method, path, body)
		if r.status != 200 && (r.status < 400 || r.status >= 500) {
			t.Fatalf("%s %q: status %d: %s", method, body, r.status, r.body)
		}
		if r.status >= 400 {
			var e struct{ Message string }
			if json.Unmarshal(r.body, &e) != nil || e.Message == "" {
				t.Fatalf("%s %q: error without a message: %s", method, body, r.body)
			}
		}
	})
}
