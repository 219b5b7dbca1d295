// Command runtime-bench measures what DESIGN.md budgets for apps: the time
// from the create call to the app's first successful answer through the
// proxy (p50 and p95 over 20 apps, image already local), the time from a
// config change to its release serving (the apps-env call answers once the
// new containers took the traffic), and the resident memory of `rosti
// serve` idle and with 100 running apps.
//
// It runs the real binary with its own data dir and managed containerd:
// run it as root through bench/runtime/run.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/rosti-paas/rosti/bench/internal/benchrosti"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	timed := flag.Int("apps", 20, "apps whose create-to-first-answer is timed")
	total := flag.Int("total", 100, "running apps for the memory figure")
	// Plan 2 ("start", a quarter of a core) is the size earlier runs used;
	// plan 1 ("static", a tenth of a core) throttles the app's own start.
	plan := flag.Int64("plan", 2, "plan id of the apps")
	flag.Parse()
	if err := run(*bin, *timed, *total, *plan); err != nil {
		fmt.Fprintln(os.Stderr, "runtime-bench:", err)
		os.Exit(1)
	}
}

// createAndWait creates an app and returns its id and how long it took
// until the proxy first answered 200 for it.
func createAndWait(s *benchrosti.Server, name string, plan int64) (int64, time.Duration, error) {
	start := time.Now()
	var app struct{ ID int64 }
	if err := s.Call("POST", s.CompanyPath("apps/"), map[string]any{"name": name, "image": "static", "plan": plan}, &app); err != nil {
		return 0, 0, err
	}
	if err := s.WaitAnswer(name, nil); err != nil {
		return 0, 0, err
	}
	return app.ID, time.Since(start), nil
}

// changeConfig sets a variable of an app and returns how long the call took:
// it answers once the release's new containers serve.
func changeConfig(s *benchrosti.Server, app int64, value string) (time.Duration, error) {
	start := time.Now()
	if err := s.Call("PATCH", s.CompanyPath("apps-env/%d/", app), map[string]any{"BENCH": value}, nil); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(float64(len(sorted)-1)*p+0.5)]
}

func run(bin string, timed, total int, plan int64) error {
	s, err := benchrosti.Start(bin)
	if err != nil {
		return err
	}
	defer s.Stop()
	time.Sleep(2 * time.Second) // settle before the idle figure (a benchmark, not a test)
	idle, err := benchrosti.RSSMB(s.Pid())
	if err != nil {
		return err
	}

	// The first app builds the static image; it is not timed.
	if _, _, err := createAndWait(s, "warmup", plan); err != nil {
		return err
	}
	var ds []time.Duration
	var ids []int64
	for i := range timed {
		id, d, err := createAndWait(s, fmt.Sprintf("timed%02d", i), plan)
		if err != nil {
			return err
		}
		ds = append(ds, d)
		ids = append(ids, id)
	}
	var configs []time.Duration
	for i, id := range ids {
		d, err := changeConfig(s, id, fmt.Sprint(i))
		if err != nil {
			return err
		}
		configs = append(configs, d)
	}
	for i := timed + 1; i < total; i++ {
		if _, _, err := createAndWait(s, fmt.Sprintf("more%03d", i), plan); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)
	loaded, err := benchrosti.RSSMB(s.Pid())
	if err != nil {
		return err
	}

	fmt.Printf("create -> first 200 through the proxy, %d apps: p50 %v  p95 %v  max %v  (budget p95 <= 1s)\n",
		len(ds), percentile(ds, 0.5).Round(time.Millisecond), percentile(ds, 0.95).Round(time.Millisecond), percentile(ds, 1).Round(time.Millisecond))
	fmt.Printf("config change -> the new release serving, %d apps: p50 %v  p95 %v  max %v  (budget p95 <= 1.5s)\n",
		len(configs), percentile(configs, 0.5).Round(time.Millisecond), percentile(configs, 0.95).Round(time.Millisecond), percentile(configs, 1).Round(time.Millisecond))
	fmt.Printf("rosti serve RSS: idle %.1f MB (budget 40), with %d running apps %.1f MB (budget 80)\n", idle, total, loaded)
	if pid, ok := s.ContainerdPid(); ok {
		if mb, err := benchrosti.RSSMB(pid); err == nil {
			fmt.Printf("(the managed containerd beside it: %.1f MB)\n", mb)
		}
	}

	var apps []struct{ ID int64 }
	if err := s.Call("GET", s.CompanyPath("apps/"), nil, &apps); err != nil {
		return err
	}
	for _, a := range apps {
		if err := s.Call("DELETE", s.CompanyPath("apps/%d/", a.ID), nil, nil); err != nil {
			return err
		}
	}
	return nil
}
