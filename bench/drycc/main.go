// Command drycc-bench measures what issue 13 budgets for the Drycc
// dialect against the real binary: config:set (POST /v2/apps/<id>/config/,
// which answers once the new release's containers took the traffic) until
// the new release serves, p50 and p95; and scale web=10 until the ten
// containers run and the proxy answers.
//
// It runs the real binary with its own data dir and managed containerd:
// run it as root through bench/drycc/run.sh.
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
	changes := flag.Int("changes", 20, "config changes timed")
	flag.Parse()
	if err := run(*bin, *changes); err != nil {
		fmt.Fprintln(os.Stderr, "drycc-bench:", err)
		os.Exit(1)
	}
}

func run(bin string, changes int) error {
	// A network of its own: the other benchmarks use benchrosti's.
	s, err := benchrosti.StartOn(bin, "rdrycc", "10.213.0.0/16")
	if err != nil {
		return err
	}
	defer s.Stop()
	const app = "bench"
	if err := s.Call("POST", "/v2/apps/", map[string]string{"id": app}, nil); err != nil {
		return err
	}
	if err := s.WaitAnswer(app, nil); err != nil {
		return err
	}
	var took []time.Duration
	for i := range changes {
		start := time.Now()
		if err := s.Call("POST", "/v2/apps/"+app+"/config/", map[string]any{"values": map[string]string{"BENCH": fmt.Sprint(i)}}, nil); err != nil {
			return err
		}
		if err := s.WaitAnswer(app, nil); err != nil {
			return err
		}
		took = append(took, time.Since(start))
	}
	fmt.Printf("config:set -> new release serving: p50 %v, p95 %v (%d changes)\n",
		percentile(took, 0.5).Round(time.Millisecond), percentile(took, 0.95).Round(time.Millisecond), changes)

	start := time.Now()
	if err := s.Call("POST", "/v2/apps/"+app+"/scale/", map[string]int{"web": 10}, nil); err != nil {
		return err
	}
	var pods struct {
		Results []struct{ State string }
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if err := s.Call("GET", "/v2/apps/"+app+"/pods/web/", nil, &pods); err != nil {
			return err
		}
		up := 0
		for _, p := range pods.Results {
			if p.State == "up" {
				up++
			}
		}
		if up == 10 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of 10 pods up after a minute", up)
		}
	}
	if err := s.WaitAnswer(app, nil); err != nil {
		return err
	}
	fmt.Printf("scale web=10 -> ten containers serving: %v\n", time.Since(start).Round(time.Millisecond))
	// Containers outlive rosti serve: remove them, and their network rules.
	return s.Call("DELETE", "/v2/apps/"+app+"/", nil, nil)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(float64(len(sorted)-1)*p+0.5)]
}
