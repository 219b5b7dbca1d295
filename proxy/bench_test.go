package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func benchTable(b *testing.B, apps int) *Proxy {
	b.Helper()
	p, err := New(Config{HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	var routes []Route
	for i := range apps {
		routes = append(routes, Route{
			App:       fmt.Sprintf("app%d", i),
			Hosts:     []string{fmt.Sprintf("app%d.apps.example.com", i), fmt.Sprintf("*.app%d.example.org", i)},
			Upstreams: []string{"10.88.0.2:8080"},
		})
	}
	p.SetRoutes(routes, nil)
	return p
}

func BenchmarkLookup(b *testing.B) {
	p := benchTable(b, 1000)
	cases := []struct{ name, host string }{
		{"exact", "app500.apps.example.com"},
		{"exact with port", "app500.apps.example.com:443"},
		{"mixed case", "App500.Apps.Example.com"},
		{"wildcard", "shop.app500.example.org"},
		{"unknown", "nobody.example.net"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.table.Load().lookup(normalizeHost(tc.host))
			}
		})
	}
}

// BenchmarkProxyRequest measures one request through ServeHTTP to a real
// upstream on loopback, mostly to watch allocations per request.
func BenchmarkProxyRequest(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer up.Close()
	p, err := New(Config{HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	p.SetRoutes([]Route{{App: "bench", Hosts: []string{"bench.example.com"}, Upstreams: []string{up.Listener.Addr().String()}}}, nil)
	req := httptest.NewRequest(http.MethodGet, "http://bench.example.com/", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
