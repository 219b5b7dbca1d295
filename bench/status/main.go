// Command status-bench times GET apps-status of an app with three custom
// domains and a volume of many small files (what made it slow: a DNS lookup
// per domain and a walk of the volume on every call), one client at a time
// and with many clients at once, and prints p50 and p99 of each.
//
// It runs the real binary with its own data dir: run it as root through
// bench/status/run.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rosti-paas/rosti/bench/internal/benchrosti"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	files := flag.Int("files", 20000, "files in the app's volume")
	calls := flag.Int("calls", 100, "timed calls per client")
	clients := flag.Int("clients", 20, "clients at once in the second phase")
	flag.Parse()
	if err := run(*bin, *files, *calls, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "status-bench:", err)
		os.Exit(1)
	}
}

func run(bin string, files, calls, clients int) error {
	s, err := benchrosti.StartOn(bin, "rstat", "10.197.0.0/16")
	if err != nil {
		return err
	}
	defer s.Stop()
	var app struct{ ID int64 }
	if err := s.Call("POST", s.CompanyPath("apps/"), map[string]any{
		"name": "status", "image": "static", "plan": 1,
		"domains": []string{"shop.example.com", "www.shop.example.com", "status.example.org"},
	}, &app); err != nil {
		return err
	}
	volume := filepath.Join(s.Data, "volumes", fmt.Sprint(app.ID), "app")
	for i := range files {
		dir := filepath.Join(volume, fmt.Sprintf("d%03d", i/100))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i%100)), []byte("rosti\n"), 0o644); err != nil {
			return err
		}
	}
	if err := s.WaitAnswer("status", nil); err != nil {
		return err
	}
	path := s.CompanyPath("apps-status/%d/", app.ID)
	first := time.Now()
	if err := s.Call("GET", path, nil, nil); err != nil {
		return err
	}
	fmt.Printf("apps-status, %d files, 3 domains: first call %s\n", files, time.Since(first).Round(time.Millisecond))
	for _, n := range []int{1, clients} {
		ds, err := timeCalls(s, path, n, calls)
		if err != nil {
			return err
		}
		fmt.Printf("  %2d client(s) x %d calls: p50 %s, p99 %s\n", n, calls, pct(ds, 50), pct(ds, 99))
	}
	return nil
}

// timeCalls has clients call path calls times each, at once.
func timeCalls(s *benchrosti.Server, path string, clients, calls int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		ds    []time.Duration
		first error
		wg    sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for range calls {
				start := time.Now()
				err := s.Call("GET", path, nil, nil)
				mu.Lock()
				ds = append(ds, time.Since(start))
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ds, first
}

func pct(ds []time.Duration, p int) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, len(ds)*p/100)].Round(100 * time.Microsecond)
}
