package web

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
)

// BenchmarkAppsPage renders the apps page of a company with 1,000 apps,
// as the server does for a browser (gzip accepted), and reports the
// bytes sent. Budget: 50 ms a page, 150 KB over the wire (README).
func BenchmarkAppsPage(b *testing.B) {
	ui := newTestUI(b, platform.RegistrationOpen)
	ctx := context.Background()
	u, err := ui.p.Register(ctx, nil, platform.NewUser{Username: "alice", Password: "alice-password"})
	if err != nil {
		b.Fatal(err)
	}
	companies, err := ui.p.Companies(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	co := companies[0].ID
	facetest.CreateApps(b, ui.p, u, co, 1000, func(i int) platform.AppInput {
		return facetest.StaticApp(fmt.Sprintf("app-%04d", i), fmt.Sprintf("www.customer-%04d.example.com", i))
	})
	res, err := ui.p.SignIn(ctx, "192.0.2.1", "alice", "alice-password")
	if err != nil {
		b.Fatal(err)
	}
	handler := ui.ui
	request := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", fmt.Sprintf("/c/%d/", co), nil)
		r.Header.Set("Accept-Encoding", "gzip")
		r.AddCookie(&http.Cookie{Name: cookieSession, Value: res.Secret})
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	first := request()
	if first.Code != http.StatusOK {
		b.Fatalf("status %d: %s", first.Code, first.Body)
	}
	wire := first.Body.Len()
	page := wire
	if first.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(first.Body)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(zr)
		page = len(raw)
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for b.Loop() {
		request()
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	// CPU time is what the page costs the server; on a busy machine the
	// wall time (ns/op) also holds the waits for a core.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(wire)/1024, "KB-on-wire")
	b.ReportMetric(float64(page)/1024, "KB-html")
}
