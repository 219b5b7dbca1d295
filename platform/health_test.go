package platform

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestWaitHealthy(t *testing.T) {
	var healthy atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/health" && !healthy.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "http://elsewhere.test/", http.StatusFound)
		case r.URL.Path == "/missing":
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(app.Close)
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	long := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name    string
		ctx     func() context.Context
		addr    string
		path    string
		healthy bool
		wantErr bool
	}{
		{"tcp connect", long, addr(app), "", false, false},
		{"nothing listens", short, closedAddr(t), "", false, true},
		{"http path failing", short, addr(app), "/health", false, true},
		{"http path passing", long, addr(app), "/health", true, false},
		{"404 is not an answer", short, addr(app), "/missing", false, true},
		{"redirect counts as up, not followed", long, addr(app), "/moved", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			healthy.Store(tc.healthy)
			err := WaitHealthy(tc.ctx(), tc.addr, tc.path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
