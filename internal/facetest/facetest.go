// Package facetest is what the tests and benchmarks of rosti's faces
// (server/..., web) stand on: a real Platform over a bbolt store in the
// test's temporary directory, many apps in a company, and a parallel HTTP
// load that reports throughput and tail latency. It uses only platform's
// exported calls; tests inside package platform cannot import it.
package facetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

// Platform opens a store in a temporary directory of t's, closed when the
// test ends, and builds a Platform on it from cfg and deps with its
// catalog seeded. deps.Store is that store; a nil deps.Log is a text
// logger that writes nowhere (it still formats, as a real one does).
func Platform(t testing.TB, cfg platform.Config, deps platform.Deps) (*platform.Platform, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	deps.Store = st
	if deps.Log == nil {
		deps.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := platform.New(cfg, deps)
	if err := p.SeedCatalog(); err != nil {
		t.Fatal(err)
	}
	return p, st
}

// StaticApp is the input of an app of the static runtime on plan 1 named
// name, with domains if any are given.
func StaticApp(name string, domains ...string) platform.AppInput {
	image, plan := "static", int64(1)
	in := platform.AppInput{Name: &name, Image: &image, Plan: &plan}
	if len(domains) > 0 {
		in.Domains = &domains
	}
	return in
}

// CreateApps creates n apps in company as actor, the i-th from app(i).
func CreateApps(t testing.TB, p *platform.Platform, actor store.User, company int64, n int, app func(i int) platform.AppInput) {
	t.Helper()
	for i := range n {
		if _, err := p.CreateApp(context.Background(), actor, company, app(i)); err != nil {
			t.Fatalf("app %d of %d: %v", i, n, err)
		}
	}
}

// ParallelGET sends GET url with the Authorization header authorization
// from 4×GOMAXPROCS goroutines over one client for b.N requests in all,
// fails b on any answer but 200, and reports requests per second and the
// 99th percentile latency (req/s, p99-ms). The timer starts here.
func ParallelGET(b *testing.B, url, authorization string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func() error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", authorization)
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
