package rostiv1_test

import (
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
