// Command rostiproxy runs rosti's proxy package with one route, so the
// benchmark measures the proxy itself. With -https it also serves HTTPS,
// with a certificate it gets through its ACME path from -acme-ca (Pebble,
// in bench/proxy/https.sh).
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rosti-paas/rosti/internal/logbuf"
	"github.com/rosti-paas/rosti/proxy"
)

func main() {
	listen := flag.String("addr", "127.0.0.1:18081", "HTTP listen address")
	upstream := flag.String("upstream", "127.0.0.1:18080", "upstream ip:port")
	host := flag.String("host", "127.0.0.1", "Host header routed to the upstream")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until exit")
	accessLog := flag.Bool("accesslog", true, "log every request to stderr, as rosti serve does")
	httpsAddr := flag.String("https", "", "HTTPS listen address; the route then asks -acme-ca for a certificate")
	acmeCA := flag.String("acme-ca", "", "ACME directory URL")
	acmeRoots := flag.String("acme-roots", "", "PEM file trusted for the ACME CA's own HTTPS endpoint")
	dataDir := flag.String("data", "", "certificate storage, with -https")
	flag.Parse()
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2)) // as rosti serve does by default (cmd/procs.go)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	// The same loggers as rosti serve: text on stderr, the access log
	// batched through logbuf and written out every 100 ms and at exit.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	accessOut := logbuf.New(os.Stderr, 100*time.Millisecond)
	defer accessOut.Flush()
	cfg := proxy.Config{HTTPAddr: *listen, Logger: logger}
	if *accessLog {
		cfg.AccessLog = accessOut
	}
	if *httpsAddr != "" {
		cfg.HTTPSAddr, cfg.DataDir, cfg.ACMECA, cfg.ACMEEmail = *httpsAddr, *dataDir, *acmeCA, "bench@rosti.test"
		if *acmeRoots != "" {
			pem, err := os.ReadFile(*acmeRoots)
			if err != nil {
				logger.Error("acme roots", "err", err)
				os.Exit(1)
			}
			cfg.ACMERoots = x509.NewCertPool()
			cfg.ACMERoots.AppendCertsFromPEM(pem)
		}
	}
	p, err := proxy.New(cfg)
	if err != nil {
		logger.Error("new proxy", "err", err)
		os.Exit(1)
	}
	p.SetRoutes([]proxy.Route{{App: "bench", Hosts: []string{*host}, Upstreams: []string{*upstream}, TLS: *httpsAddr != ""}}, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { _ = accessOut.Serve(ctx) }()
	if err := p.Serve(ctx); err != nil {
		logger.Error("serve", "err", err)
	}
}
