package rostiv1_test

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
)

// BenchmarkListApps measures GET /api/v1/{company_id}/apps/ over real HTTP
// on loopback with 1,000 apps in the company, and reports requests per
// second and the 99th percentile latency.
func BenchmarkListApps(b *testing.B) {
	a := newTestAPI(b)
	plan, image := int64(1), "static"
	for i := range 1000 {
		name := fmt.Sprintf("app%04d", i)
		if _, err := a.p.CreateApp(context.Background(), a.aliceUser, a.aliceCo, platform.AppInput{Name: &name, Image: &image, Plan: &plan}); err != nil {
			b.Fatal(err)
		}
	}
	url := fmt.Sprintf("%s/api/v1/%d/apps/", a.url, a.aliceCo)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func() error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Token "+a.alice)
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
	var apps []map[string]any
	a.do(b, a.alice, "GET", fmt.Sprintf("/api/v1/%d/apps/", a.aliceCo), "").json(b, &apps)
	if len(apps) != 1000 {
		b.Fatalf("listed %d apps, want 1000", len(apps))
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
