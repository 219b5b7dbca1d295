package rostiv1_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/server/rostiv1"
	"github.com/rosti-paas/rosti/store"
)

// aliceState is everything of alice's that bob must not be able to change.
func (a *testAPI) aliceState(t *testing.T, appID int64) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{
		fmt.Sprintf("/api/v1/%d/apps/", a.aliceCo),
		fmt.Sprintf("/api/v1/%d/apps/%d/", a.aliceCo, appID),
		fmt.Sprintf("/api/v1/%d/plans/", a.aliceCo),
		fmt.Sprintf("/api/v1/%d/runtimes/", a.aliceCo),
		fmt.Sprintf("/api/v1/%d/jobs/", a.aliceCo),
		fmt.Sprintf("/api/v1/%d/apps-releases/%d/", a.aliceCo, appID),
		fmt.Sprintf("/api/v1/%d/apps-env/%d/", a.aliceCo, appID),
		fmt.Sprintf("/api/v1/%d/apps-scale/%d/", a.aliceCo, appID),
		fmt.Sprintf("/api/v1/%d/storages/", a.aliceCo),
		"/api/v1/tokens/",
		"/api/v1/keys/",
		"/api/v1/companies/",
	} {
		r := a.do(t, a.alice, "GET", path, "")
		b.WriteString(path + " " + string(r.body) + "\n")
	}
	return b.String()
}

// TestTenantIsolation calls every route that names an object as bob, with
// alice's ids, and every route at all without a valid token.
func TestTenantIsolation(t *testing.T) {
	a := newTestAPI(t)
	appID := a.createApp(t, a.alice, a.aliceCo, `{"name":"alices","image":"static","plan":1}`)
	r := a.do(t, a.alice, "POST", "/api/v1/tokens/", `{"name":"ci"}`)
	var tok struct{ ID int64 }
	r.json(t, &tok)
	r = a.do(t, a.alice, "POST", "/api/v1/keys/", `{"key":"`+validKey+`"}`)
	var key struct{ ID int64 }
	r.json(t, &key)
	job, err := a.store.CreateJob(store.Job{CompanyID: a.aliceCo, Kind: "pull", Target: "img:1", Status: store.JobRunning})
	if err != nil {
		t.Fatal(err)
	}
	r = a.do(t, a.alice, "POST", fmt.Sprintf("/api/v1/%d/storages/", a.aliceCo), `{"type":"pgsql","password":"alices-db-pw"}`)
	var storage struct{ ID int64 }
	r.json(t, &storage)
	ids := map[string]int64{"apps": appID, "tokens": tok.ID, "keys": key.ID, "plans": 1, "runtimes": 1, "jobs": job.ID, "storages": storage.ID}
	for _, rt := range rostiv1.Routes() {
		// apps-action, apps-env, ... name an app by its id.
		if resource := strings.Split(strings.TrimPrefix(rt.Pattern, "/api/v1/{company_id}/"), "/")[0]; strings.HasPrefix(resource, "apps-") {
			ids[resource] = appID
		}
	}
	bodies := map[string]string{
		"POST":   `{"name":"bobs","image":"static","plan":1,"ram":64,"disk":1,"cpu_quota":10,"pids":64,"type":"pgsql","password":"bobs-db-pw"}`,
		"PUT":    `{"app_port":3000,"image":"static","name":"x","ram":64,"disk":1,"cpu_quota":10,"pids":64,"password":"bobs-db-pw"}`,
		"PATCH":  `{"app_port":3000,"note":"bob was here"}`,
		"DELETE": ``,
		"GET":    ``,
	}
	before := a.aliceState(t, appID)

	for _, rt := range rostiv1.Routes() {
		path := strings.ReplaceAll(rt.Pattern, "{company_id}", fmt.Sprint(a.aliceCo))
		resource := strings.Split(strings.TrimPrefix(path, fmt.Sprintf("/api/v1/%d/", a.aliceCo)), "/")[0]
		resource = strings.TrimPrefix(resource, "api/v1/")
		if strings.Contains(path, "{id}") {
			path = strings.ReplaceAll(path, "{id}", fmt.Sprint(ids[resource]))
		}
		namesForeignObject := strings.Contains(rt.Pattern, "{company_id}") || strings.Contains(rt.Pattern, "{id}")
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			for _, cred := range []struct{ name, token string }{{"no token", ""}, {"wrong token", "not-a-token"}} {
				if r := a.do(t, cred.token, rt.Method, path, bodies[rt.Method]); r.status != 401 {
					t.Errorf("%s: status %d, want 401: %s", cred.name, r.status, r.body)
				}
			}
			if !namesForeignObject {
				return
			}
			r := a.do(t, a.bob, rt.Method, path, bodies[rt.Method])
			if r.status != 404 {
				t.Errorf("bob with alice's ids: status %d, want 404: %s", r.status, r.body)
			}
		})
	}
	if after := a.aliceState(t, appID); after != before {
		t.Fatalf("bob changed alice's objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if pw := a.dbs.password(fmt.Sprintf("c%d_s%d", a.aliceCo, storage.ID)); pw != "alices-db-pw" {
		t.Fatalf("bob changed the password of alice's storage: %q", pw)
	}
	var bobsCompanies []map[string]any
	a.do(t, a.bob, "GET", "/api/v1/companies/", "").json(t, &bobsCompanies)
	if len(bobsCompanies) != 1 || bobsCompanies[0]["id"] != float64(a.bobCo) {
		t.Fatalf("bob's companies: %v", bobsCompanies)
	}
	var bobsTokens []map[string]any
	a.do(t, a.bob, "GET", "/api/v1/tokens/", "").json(t, &bobsTokens)
	for _, tk := range bobsTokens {
		if tk["id"] == float64(tok.ID) {
			t.Fatalf("bob sees alice's token: %v", bobsTokens)
		}
	}
}
