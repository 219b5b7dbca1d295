// Command rate is an open-loop load generator: it sends requests at a fixed
// rate (wrk2 is not packaged in Debian) and measures each latency from the
// moment the request was due, so a stalled server cannot hide its queueing
// (no coordinated omission). It prints one line: rate, p50, p99, errors.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:18080/", "target URL")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up at the same rate")
	conns := flag.Int("conns", 64, "concurrent connections")
	flag.Parse()

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: *conns,
		MaxConnsPerHost:     *conns,
		DisableCompression:  true,
	}, Timeout: 10 * time.Second}
	jobs := make(chan time.Time, *rate*2)
	var mu sync.Mutex
	var lat []time.Duration
	errors := 0
	start := time.Now()
	measureFrom := start.Add(*warmup)
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			errs := 0
			for due := range jobs {
				resp, err := client.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if due.Before(measureFrom) {
					continue
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					errs++
					continue
				}
				mine = append(mine, time.Since(due))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errors += errs
			mu.Unlock()
		}()
	}
	interval := time.Second / time.Duration(*rate)
	total := int((*warmup + *duration) / interval)
	for sent := 0; sent < total; {
		due := int(time.Since(start) / interval)
		for ; sent < due && sent < total; sent++ {
			jobs <- start.Add(time.Duration(sent) * interval)
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(measureFrom)
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "no successful requests")
		os.Exit(1)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("rate=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d\n", float64(len(lat))/elapsed.Seconds(), q(0.50), q(0.99), errors)
}
