// Command hardening-bench measures what issue 12 budgets for a server
// under attack: the latency of requests to an app through the proxy
// (p50, p99) quietly, while many connections that never send a byte are
// held against the proxy (reopened as soon as rosti closes them), and
// while 50 clients send wrong passwords to the API login, each from an
// address of its own. It also prints rosti's resident memory in each
// phase.
//
// It runs the real binary with its own data dir: run it as root through
// bench/hardening/run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosti-paas/rosti/bench/internal/benchrosti"
	"github.com/rosti-paas/rosti/internal/connlimit"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	idle := flag.Int("idle", 20000, "silent connections held against the proxy")
	requests := flag.Int("requests", 3000, "timed requests per phase")
	flag.Parse()
	// The silent connections are this process's files too.
	files, err := connlimit.RaiseFileLimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hardening-bench:", err)
		os.Exit(1)
	}
	if most := files - 1000; *idle > most {
		fmt.Printf("holding %d silent connections, not %d: this process may open %d files (root without CAP_SYS_RESOURCE cannot raise that)\n", most, *idle, files)
		*idle = most
	}
	if err := run(*bin, *idle, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "hardening-bench:", err)
		os.Exit(1)
	}
}

// latencies times n sequential GETs of app through the proxy on one
// kept-alive connection, or as many as a minute allows.
func latencies(proxy, app string, n int) ([]time.Duration, int, error) {
	client := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var ds []time.Duration
	failed := 0
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		req, _ := http.NewRequest("GET", proxy+"/", nil)
		req.Host = app + ".localhost"
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			failed++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++
			continue
		}
		ds = append(ds, time.Since(start))
	}
	if len(ds) == 0 {
		return nil, failed, fmt.Errorf("no request succeeded")
	}
	return ds, failed, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(float64(len(sorted)-1)*p+0.5)]
}

// holdIdle keeps n connections that never send a byte open against addr,
// from 127.0.3.x addresses (at most 200 each), reopening each one rosti
// closes, until ctx ends. held counts those open.
func holdIdle(ctx context.Context, addr string, n int, held *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range n {
		source := fmt.Sprintf("127.0.3.%d", 1+i/200)
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				held.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				_, _ = c.Read(make([]byte, 1)) // until rosti (or ctx) closes it
				stop()
				c.Close()
				held.Add(-1)
			}
		})
	}
	return &wg
}

// guessPasswords has 50 clients, each from its own address, send wrong
// passwords to the API login until ctx ends; it counts the answers.
func guessPasswords(ctx context.Context, api string, answers *answerCounts) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range 50 {
		source := fmt.Sprintf("127.0.4.%d", i+1)
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
			client := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
			for n := 0; ctx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"username":"user%d","password":"wrong-%d"}`, n%7, n)
				req, _ := http.NewRequestWithContext(ctx, "POST", api+"/v1/auth/login/", strings.NewReader(body))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers.add(resp.StatusCode)
			}
		})
	}
	return &wg
}

type answerCounts struct {
	mu       sync.Mutex
	byStatus map[int]int
}

func (a *answerCounts) add(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byStatus[status]++
}

func (a *answerCounts) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.byStatus {
		n += c
	}
	return n
}

func (a *answerCounts) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	statuses := make([]int, 0, len(a.byStatus))
	for s := range a.byStatus {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	parts := make([]string, 0, len(statuses))
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d × %d", a.byStatus[s], s))
	}
	return strings.Join(parts, ", ")
}

func run(bin string, idle, requests int) error {
	// A network of its own: bench/runtime (rbench) may run meanwhile.
	s, err := benchrosti.StartOn(bin, "rhard", "10.250.0.0/16")
	if err != nil {
		return err
	}
	defer s.Stop()
	// The app gets a whole core (plan normal+): on a small plan its own CPU
	// quota, not the proxy, sets the p99 of requests sent back to back
	// (the static plan's tenth of a core: about 80 ms).
	var plans []struct {
		ID   int64
		Name string
	}
	if err := s.Call("GET", s.CompanyPath("plans/"), nil, &plans); err != nil {
		return err
	}
	plan := int64(0)
	for _, p := range plans {
		if p.Name == "normal+" {
			plan = p.ID
		}
	}
	if plan == 0 {
		return fmt.Errorf("no plan normal+ in %+v", plans)
	}
	var app struct{ ID int64 }
	if err := s.Call("POST", s.CompanyPath("apps/"), map[string]any{"name": "target", "image": "static", "plan": plan}, &app); err != nil {
		return err
	}
	// Apps outlive rosti: the app goes before rosti does.
	defer func() {
		if err := s.Call("DELETE", s.CompanyPath("apps/%d/", app.ID), nil, nil); err != nil {
			fmt.Fprintln(os.Stderr, "hardening-bench: delete the app:", err)
			return
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if left, _ := os.ReadDir(filepath.Join(s.Data, "netns")); len(left) == 0 {
				return
			}
		}
		fmt.Fprintln(os.Stderr, "hardening-bench: the app's container was not removed within a minute")
	}()
	if err := s.WaitAnswer("target", nil); err != nil {
		return err
	}
	proxyAddr := strings.TrimPrefix(s.Proxy, "http://")
	fmt.Printf("%-44s %9s %9s %9s %7s %9s\n", "phase", "requests", "p50", "p99", "failed", "rosti MB")
	report := func(phase string) error {
		ds, failed, err := latencies(s.Proxy, "target", requests)
		if err != nil {
			return fmt.Errorf("%s: %w", phase, err)
		}
		rss, _ := benchrosti.RSSMB(s.Pid())
		fmt.Printf("%-44s %9d %9s %9s %7d %9.0f\n", phase, len(ds), percentile(ds, 0.5).Round(time.Microsecond), percentile(ds, 0.99).Round(time.Microsecond), failed, rss)
		return nil
	}
	if _, _, err := latencies(s.Proxy, "target", requests); err != nil { // warm up
		return err
	}
	if err := report("quiet"); err != nil {
		return err
	}

	ctx, stop := context.WithCancel(context.Background())
	var held atomic.Int64
	wg := holdIdle(ctx, proxyAddr, idle, &held)
	for deadline := time.Now().Add(time.Minute); held.Load() < int64(idle)*9/10 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	err = report(fmt.Sprintf("%d silent connections held (%d open)", idle, held.Load()))
	stop()
	wg.Wait()
	if err != nil {
		return err
	}

	answers := &answerCounts{byStatus: map[int]int{}}
	ctx, stop = context.WithCancel(context.Background())
	wg = guessPasswords(ctx, s.API, answers)
	// Measured once the guessers keep the password checks busy (and
	// their accounts are being refused), not in their first second.
	for deadline := time.Now().Add(30 * time.Second); answers.total() < 100 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	err = report("50 clients guessing passwords")
	stop()
	wg.Wait()
	fmt.Printf("wrong passwords answered during that phase: %s (429: refused before any hash)\n", answers)
	return err
}
