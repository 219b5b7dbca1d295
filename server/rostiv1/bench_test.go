package rostiv1_test

import (
	"fmt"
	"testing"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
)

// BenchmarkListApps measures GET /api/v1/{company_id}/apps/ over real HTTP
// on loopback with 1,000 apps in the company, and reports requests per
// second and the 99th percentile latency.
func BenchmarkListApps(b *testing.B) {
	a := newTestAPI(b)
	facetest.CreateApps(b, a.p, a.aliceUser, a.aliceCo, 1000, func(i int) platform.AppInput {
		return facetest.StaticApp(fmt.Sprintf("app%04d", i))
	})
	path := fmt.Sprintf("/api/v1/%d/apps/", a.aliceCo)
	var apps []map[string]any
	a.do(b, a.alice, "GET", path, "").json(b, &apps)
	if len(apps) != 1000 {
		b.Fatalf("listed %d apps, want 1000", len(apps))
	}
	facetest.ParallelGET(b, a.url+path, "Token "+a.alice)
}
