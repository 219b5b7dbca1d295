package drycc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
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
	plan, image := int64(1), "static"
	for i := range 1000 {
		name := fmt.Sprintf("app%04d", i)
		if _, err := w.p.CreateApp(ctx, u, company, platform.AppInput{Name: &name, Image: &image, Plan: &plan}); err != nil {
			b.Fatal(err)
		}
	}
	if got := w.must(200, alice, "GET", "/v2/apps/?limit=100", nil).obj(b); got["count"] != 1000.0 {
		b.Fatalf("count %v", got["count"])
	}
	url := w.srv.URL + "/v2/apps/?limit=100"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func() error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "token "+alice)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := get(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if n := len(latencies); n > 0 {
		b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99-ms")
	}
}

var _ store.User
