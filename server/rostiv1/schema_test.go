package rostiv1_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/server/rostiv1"
)

// TestSchemaMatchesRoutes keeps /api/schema/ in step with what is routed:
// every route is documented and every documented operation is routed.
func TestSchemaMatchesRoutes(t *testing.T) {
	a := newTestAPI(t)
	r := a.do(t, "", "GET", "/api/schema/", "")
	if r.status != 200 {
		t.Fatalf("schema: %d", r.status)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	r.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %q", doc.OpenAPI)
	}
	var documented, routed []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, rt := range rostiv1.Routes() {
		routed = append(routed, rt.Method+" "+rt.Pattern)
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if strings.Join(documented, "\n") != strings.Join(routed, "\n") {
		t.Fatalf("schema and routes differ:\ndocumented:\n%s\n\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
}

// TestSchemaCoreJSON: a client asking for CoreJSON (as python3-coreapi
// does) gets a CoreAPI document with DRF's link names and fields; others
// get OpenAPI.
func TestSchemaCoreJSON(t *testing.T) {
	a := newTestAPI(t)
	get := func(accept string) (string, []byte) {
		req, _ := http.NewRequest("GET", a.url+"/api/schema/", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Content-Type"), b
	}
	for _, accept := range []string{"", "application/json", "application/vnd.oai.openapi+json"} {
		if ct, body := get(accept); ct != "application/vnd.oai.openapi+json" || !bytes.Contains(body, []byte(`"openapi"`)) {
			t.Fatalf("Accept %q: %s %.100s", accept, ct, body)
		}
	}
	ct, body := get("application/coreapi+json, application/vnd.coreapi+json, */*")
	if ct != "application/coreapi+json" {
		t.Fatalf("content type %q", ct)
	}
	type field struct {
		Name     string `json:"name"`
		Required bool   `json:"required"`
		Location string `json:"location"`
	}
	type link struct {
		Type     string  `json:"_type"`
		URL      string  `json:"url"`
		Action   string  `json:"action"`
		Encoding string  `json:"encoding"`
		Fields   []field `json:"fields"`
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if string(doc["_type"]) != `"document"` {
		t.Fatalf("_type %s", doc["_type"])
	}
	linkAt := func(group, action string) link {
		var links map[string]link
		if err := json.Unmarshal(doc[group], &links); err != nil {
			t.Fatalf("%s: %v", group, err)
		}
		l, ok := links[action]
		if !ok || l.Type != "link" {
			t.Fatalf("no link %s > %s in %s", group, action, doc[group])
		}
		return l
	}
	fieldsOf := func(l link) string {
		var out []string
		for _, f := range l.Fields {
			s := f.Location + ":" + f.Name
			if f.Required {
				s += "!"
			}
			out = append(out, s)
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		group, action, url, method, fields string
	}{
		{"companies", "list", "/api/v1/companies/", "get", ""},
		{"apps", "list", "/api/v1/{company_id}/apps/", "get", "path:company_id!"},
		{"apps", "create", "/api/v1/{company_id}/apps/", "post", "path:company_id! form:app_port form:domains form:healthcheck form:image form:mode form:name form:plan form:ssh_keys form:ssh_password"},
		{"apps", "read", "/api/v1/{company_id}/apps/{id}/", "get", "path:company_id! path:id!"},
		{"apps", "partial_update", "/api/v1/{company_id}/apps/{id}/", "patch", ""},
		{"apps", "delete", "/api/v1/{company_id}/apps/{id}/", "delete", "path:company_id! path:id!"},
		{"apps-action", "update", "/api/v1/{company_id}/apps-action/{id}/", "put", "path:company_id! path:id! form:action!"},
		{"apps-status", "read", "/api/v1/{company_id}/apps-status/{id}/", "get", "path:company_id! path:id!"},
		{"apps-logs", "read", "/api/v1/{company_id}/apps-logs/{id}/", "get", "path:company_id! path:id! query:lines query:follow"},
		{"plans", "list", "/api/v1/{company_id}/plans/", "get", "path:company_id!"},
	}
	for _, tt := range tests {
		l := linkAt(tt.group, tt.action)
		if l.URL != tt.url || l.Action != tt.method {
			t.Errorf("%s > %s: %s %s, want %s %s", tt.group, tt.action, l.Action, l.URL, tt.method, tt.url)
		}
		if tt.fields != "" && fieldsOf(l) != tt.fields {
			t.Errorf("%s > %s fields: %s, want %s", tt.group, tt.action, fieldsOf(l), tt.fields)
		}
		if (tt.method == "post" || tt.method == "put") && l.Encoding != "application/json" {
			t.Errorf("%s > %s encoding %q", tt.group, tt.action, l.Encoding)
		}
	}
}
