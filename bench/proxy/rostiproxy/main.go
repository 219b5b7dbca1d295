// Command rostiproxy runs rosti's proxy package with one route, so the
// benchmark measures the proxy itself.
package main

import (
	"bufio"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/rosti-paas/rosti/proxy"
)

func main() {
	listen := flag.String("addr", "127.0.0.1:18081", "HTTP listen address")
	upstream := flag.String("upstream", "127.0.0.1:18080", "upstream ip:port")
	host := flag.String("host", "127.0.0.1", "Host header routed to the upstream")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until exit")
	accessLog := flag.Bool("accesslog", true, "log every request to stderr, as rosti serve does")
	buffered := flag.Bool("buffered-log", false, "write the logs through a buffer flushed every 100 ms (not what rosti serve does; for comparison)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	// The same loggers as rosti serve: text on stderr, the access log a
	// child of the main logger.
	var logOut io.Writer = os.Stderr
	if *buffered {
		bw := &flushingWriter{w: bufio.NewWriterSize(os.Stderr, 64<<10)}
		defer bw.Flush()
		go bw.flushEvery(100 * time.Millisecond)
		logOut = bw
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := proxy.Config{HTTPAddr: *listen, Logger: logger}
	if *accessLog {
		cfg.AccessLog = logger.With("component", "access")
	}
	p, err := proxy.New(cfg)
	if err != nil {
		logger.Error("new proxy", "err", err)
		os.Exit(1)
	}
	p.SetRoutes([]proxy.Route{{App: "bench", Hosts: []string{*host}, Upstreams: []string{*upstream}}}, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Serve(ctx); err != nil {
		logger.Error("serve", "err", err)
	}
}

// flushingWriter is a buffered writer that is flushed on a timer.
type flushingWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (f *flushingWriter) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(b)
}

func (f *flushingWriter) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.w.Flush()
}

func (f *flushingWriter) flushEvery(d time.Duration) {
	for range time.Tick(d) {
		f.Flush()
	}
}
