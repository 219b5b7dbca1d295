package drycc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
)

// BenchmarkListApps measures GET /v2/apps/?limit=100 (what the clients
// send) over real HTTP on loopback with 1,000 apps in the user's company,
// and reports requests per second and the 99th percentile latency.
func BenchmarkListApps(b *testing.B) {
	w := newWorld(b)
	w.user("admin")
	alice := w.user("alice")
	ctx := context.Background()
	u, err := w.p.Authenticate(ctx, alice)
	if err != nil {
		b.Fatal(err)
	}
	company, err := w.p.DefaultCompany(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	facetest.CreateApps(b, w.p, u, company, 1000, func(i int) platform.AppInput {
		return facetest.StaticApp(fmt.Sprintf("app%04d", i))
	})
	if got := w.must(200, alice, "GET", "/v2/apps/?limit=100", nil).obj(b); got["count"] != 1000.0 {
		b.Fatalf("count %v", got["count"])
	}
	facetest.ParallelGET(b, w.srv.URL+"/v2/apps/?limit=100", "token "+alice)
}
