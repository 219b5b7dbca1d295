// Package server is rosti's HTTP API server: it binds the API address,
// routes each path prefix to its dialect (Rosti v1 under /api/, Drycc/Deis
// under /v1/ and /v2/) and everything else to the web UI, and serves the operator's admin API on a unix
// socket in the data dir. It owns listeners and routing, never state: every
// request is answered through platform.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/admin"
	"github.com/rosti-paas/rosti/server/drycc"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/server/rostiv1"
	"github.com/rosti-paas/rosti/web"
)

// Config says where the server listens.
type Config struct {
	Addr        string // API and web UI, e.g. ":8080"
	AdminSocket string // unix socket for `rosti admin`; "" to serve none
	Version     string
	// Listen binds Addr; rosti passes one that bounds connections per
	// client and in total (internal/connlimit). Nil is net.Listen.
	Listen func(network, addr string) (net.Listener, error)
}

// Server is the API server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	api     *http.Server
	admin   *http.Server
	apiLn   net.Listener
	adminLn net.Listener
}

// New builds the server; nothing is bound until Serve.
func New(cfg Config, p *platform.Platform, log *slog.Logger) *Server {
	log = log.With("component", "api")
	return &Server{
		cfg: cfg,
		log: log,
		api: &http.Server{
			Handler:           Handler(p, cfg.Version, log),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		admin: &http.Server{Handler: admin.New(p, log), ReadHeaderTimeout: 10 * time.Second},
	}
}

// Handler is the whole public API, for the API listener, the proxy's panel
// domain, and tests.
func Handler(p *platform.Platform, version string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	rosti := rostiv1.New(p, log)
	deis := drycc.New(p, version, log)
	mux.Handle("/api/", rosti)
	mux.Handle("/v1/", deis)
	mux.Handle("/v2/", deis)
	mux.Handle("/", web.New(p, log))
	return httpapi.WithRequestID(httpapi.Recover(log, mux))
}

// Serve binds the listeners, then serves until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	listen := s.cfg.Listen
	if listen == nil {
		listen = net.Listen
	}
	var err error
	if s.apiLn, err = listen("tcp", s.cfg.Addr); err != nil {
		return fmt.Errorf("api listen %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.AdminSocket != "" {
		_ = os.Remove(s.cfg.AdminSocket) // a stale socket of a previous run; the store lock guarantees we are alone
		if s.adminLn, err = net.Listen("unix", s.cfg.AdminSocket); err != nil {
			s.apiLn.Close()
			return fmt.Errorf("admin socket %s: %w", s.cfg.AdminSocket, err)
		}
		if err := os.Chmod(s.cfg.AdminSocket, 0o600); err != nil {
			s.apiLn.Close()
			s.adminLn.Close()
			return err
		}
	}
	s.log.Info("started", "addr", s.apiLn.Addr().String(), "admin_socket", s.cfg.AdminSocket)
	errc := make(chan error, 2)
	go func() { errc <- s.api.Serve(s.apiLn) }()
	if s.adminLn != nil {
		go func() { errc <- s.admin.Serve(s.adminLn) }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Shutdown stops accepting and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.api.Shutdown(ctx)
	if s.adminLn != nil {
		err = errors.Join(err, s.admin.Shutdown(ctx))
	}
	return err
}
