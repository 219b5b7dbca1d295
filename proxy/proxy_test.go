package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startProxy runs a proxy on loopback ports and stops it when the test ends.
func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return p
}

// testWriter sends log lines to t.Log, and drops them once the test is over.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	defer func() { _ = recover() }() // logging after the test ended panics
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// backend is a real upstream HTTP server that names itself in every answer
// and echoes the forwarding headers it got.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "X-Client-Request-Id"} {
			w.Header()["Seen-"+h] = r.Header[h]
		}
		w.Header().Set("Seen-Host", r.Host)
		fmt.Fprintf(w, "app=%s", name)
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return s.Listener.Addr().String() }

// closedAddr is a loopback address where nothing listens.
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

// clientTo returns a client that sends every request to proxyAddr whatever
// the URL's host, like DNS pointing all names at the proxy.
func clientTo(proxyAddr net.Addr) *http.Client {
	var d net.Dialer
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", proxyAddr.String())
			},
			MaxIdleConnsPerHost: 64,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

type answer struct {
	status  int
	body    string
	headers http.Header
}

func get(t *testing.T, c *http.Client, url string, hdr http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if h := hdr.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, string(b), resp.Header}
}

func TestHostRouting(t *testing.T) {
	alpha, beta := backend(t, "alpha"), backend(t, "beta")
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{
		{App: "alpha", Hosts: []string{"alpha.apps.test", "www.alpha-shop.com"}, Upstreams: []string{addr(alpha)}},
		{App: "beta", Hosts: []string{"beta.apps.test", "*.beta.org"}, Upstreams: []string{addr(beta)}},
		{App: "gamma", Hosts: []string{"gamma.apps.test"}, Upstreams: []string{addr(alpha)}, Stopped: true},
	}, nil)
	c := clientTo(p.HTTPAddr())

	tests := []struct {
		name   string
		host   string
		status int
		body   string
	}{
		{"default domain", "alpha.apps.test", 200, "app=alpha"},
		{"custom domain, upper case, port", "WWW.Alpha-Shop.com:80", 200, "app=alpha"},
		{"other app", "beta.apps.test", 200, "app=beta"},
		{"wildcard", "shop.beta.org", 200, "app=beta"},
		{"wildcard matches one label only", "a.shop.beta.org", 404, "no app is served at this address\n"},
		{"wildcard does not match its apex", "beta.org", 404, "no app is served at this address\n"},
		{"unknown host", "nobody.apps.test", 404, "no app is served at this address\n"},
		{"trailing dot", "alpha.apps.test.", 200, "app=alpha"},
		{"stopped app never shows another app", "gamma.apps.test", 503, "app gamma is stopped\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, c, "http://"+tc.host+"/", http.Header{"Host": {tc.host}})
			if a.status != tc.status || a.body != tc.body {
				t.Fatalf("got %d %q, want %d %q", a.status, a.body, tc.status, tc.body)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	one, two := backend(t, "one"), backend(t, "two")
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "rr", Hosts: []string{"rr.apps.test"}, Upstreams: []string{addr(one), addr(two)}}}, nil)
	c := clientTo(p.HTTPAddr())
	seen := map[string]int{}
	for range 6 {
		seen[get(t, c, "http://rr.apps.test/", nil).body]++
	}
	if seen["app=one"] != 3 || seen["app=two"] != 3 {
		t.Fatalf("answers per upstream: %v, want 3 each", seen)
	}
}

func TestUpstreamFailures(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	live := backend(t, "live")
	dead := closedAddr(t)

	p := startProxy(t, Config{UpstreamTimeout: 300 * time.Millisecond})
	p.SetRoutes([]Route{
		{App: "down", Hosts: []string{"down.apps.test"}, Upstreams: []string{dead}},
		{App: "empty", Hosts: []string{"empty.apps.test"}},
		{App: "slow", Hosts: []string{"slow.apps.test"}, Upstreams: []string{addr(slow)}},
		{App: "half", Hosts: []string{"half.apps.test"}, Upstreams: []string{dead, addr(live)}},
	}, nil)
	c := clientTo(p.HTTPAddr())

	tests := []struct {
		name   string
		host   string
		status int
		body   string
	}{
		{"upstream refuses", "down.apps.test", 502, "app down is not answering\n"},
		{"no upstream at all", "empty.apps.test", 502, "app empty has no running containers\n"},
		{"upstream too slow", "slow.apps.test", 504, "app slow did not answer in time\n"},
		{"dead upstream is retried on a live one", "half.apps.test", 200, "app=live"},
		{"and again", "half.apps.test", 200, "app=live"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, c, "http://"+tc.host+"/", nil)
			if a.status != tc.status || a.body != tc.body {
				t.Fatalf("got %d %q, want %d %q", a.status, a.body, tc.status, tc.body)
			}
		})
	}
}

func TestForwardingHeaders(t *testing.T) {
	be := backend(t, "fwd")
	var logged strings.Builder
	var logMu sync.Mutex
	p := startProxy(t, Config{AccessLog: lockedWriter{&logMu, &logged}})
	p.SetRoutes([]Route{{App: "fwd", Hosts: []string{"fwd.apps.test"}, Upstreams: []string{addr(be)}}}, nil)
	c := clientTo(p.HTTPAddr())

	// A head bigger than the fast path's buffer is handed to net/http:
	// both paths must forward the same.
	paths := []struct {
		name  string
		extra http.Header
	}{
		{"fast path", nil},
		{"net/http", http.Header{"X-Pad": {strings.Repeat("p", frontReadBufferSize)}}},
	}
	tests := []struct {
		name         string
		sent         http.Header
		wantClientID []string
	}{
		{"client forwarding headers are dropped", http.Header{
			"X-Forwarded-For":   {"6.6.6.6"},
			"X-Forwarded-Host":  {"evil.example"},
			"X-Forwarded-Proto": {"https"},
			"X-Real-Ip":         {"6.6.6.6"},
			"Forwarded":         {"for=6.6.6.6"},
		}, nil},
		{"client's request id is passed on apart", http.Header{"X-Request-Id": {"lb-1234.abc"}}, []string{"lb-1234.abc"}},
		{"client's forged X-Client-Request-Id is dropped", http.Header{
			"X-Request-Id":        {"mine"},
			"X-Client-Request-Id": {"forged"},
		}, []string{"mine"}},
		{"unsafe request id is dropped", http.Header{"X-Request-Id": {"a b\"<x>"}}, nil},
		{"overlong request id is dropped", http.Header{"X-Request-Id": {strings.Repeat("i", 129)}}, nil},
		{"two request ids are dropped", http.Header{"X-Request-Id": {"one", "two"}}, nil},
	}
	seenIDs := map[string]bool{}
	for _, path := range paths {
		for _, tc := range tests {
			t.Run(path.name+"/"+tc.name, func(t *testing.T) {
				sent := tc.sent.Clone()
				for k, v := range path.extra {
					sent[k] = v
				}
				a := get(t, c, "http://fwd.apps.test/x?y=1", sent)
				want := map[string]string{
					"Seen-X-Forwarded-For":   "127.0.0.1",
					"Seen-X-Real-Ip":         "127.0.0.1",
					"Seen-X-Forwarded-Host":  "fwd.apps.test",
					"Seen-X-Forwarded-Proto": "http",
					"Seen-Host":              "fwd.apps.test",
				}
				for k, v := range want {
					if got := a.headers.Values(k); len(got) != 1 || got[0] != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				// The app always gets rosti's own id, a new one each time.
				ids := a.headers.Values("Seen-X-Request-Id")
				if len(ids) != 1 || !strings.HasPrefix(ids[0], p.ids.prefix) || seenIDs[ids[0]] {
					t.Errorf("X-Request-Id = %q, want one new id of rosti's", ids)
				} else {
					seenIDs[ids[0]] = true
				}
				if got := a.headers.Values("Seen-X-Client-Request-Id"); !slices.Equal(got, tc.wantClientID) {
					t.Errorf("X-Client-Request-Id = %q, want %q", got, tc.wantClientID)
				}
			})
		}
	}
	want := len(paths) * len(tests)
	// net/http may answer before the line is written: poll for it.
	lines := func() (int, string) {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Count(logged.String(), "app=fwd"), logged.String()
	}
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := lines(); n < want && time.Now().Before(deadline); n, _ = lines() {
		time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
	}
	if n, all := lines(); n != want {
		t.Errorf("access log has %d lines for app fwd, want %d:\n%s", n, want, all)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestWebsocketEcho(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			typ, msg, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			if err := conn.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	// The access log wraps the response writer; the upgrade must still work.
	p := startProxy(t, Config{AccessLog: io.Discard})
	p.SetRoutes([]Route{{App: "ws", Hosts: []string{"ws.apps.test"}, Upstreams: []string{addr(echo)}}}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://ws.apps.test/socket", &websocket.DialOptions{HTTPClient: clientTo(p.HTTPAddr())})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	for _, msg := range []string{"hello", "again"} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo:"+msg {
			t.Fatalf("got %q, want %q", got, "echo:"+msg)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

func TestServerSentEventsStream(t *testing.T) {
	next := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		// The second event is only sent once the client has seen the
		// first, so the test fails if the proxy buffers the stream.
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: second\n\n")
	}))
	t.Cleanup(sse.Close)
	p := startProxy(t, Config{AccessLog: io.Discard})
	p.SetRoutes([]Route{{App: "sse", Hosts: []string{"sse.apps.test"}, Upstreams: []string{addr(sse)}}}, nil)

	resp, err := clientTo(p.HTTPAddr()).Get("http://sse.apps.test/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	eventsArriveOneByOne(t, resp.Body, next)
}

// eventsArriveOneByOne reads "data: first" from an event stream, then
// closes next, on which the app waits before it sends "data: second", and
// reads that: a proxy that buffered the stream would show neither.
func eventsArriveOneByOne(t *testing.T, body io.Reader, next chan struct{}) {
	t.Helper()
	lines := bufio.NewScanner(body)
	read := func() string {
		for lines.Scan() {
			if l := lines.Text(); l != "" {
				return l
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	if l := read(); l != "data: first" {
		t.Fatalf("got %q", l)
	}
	close(next)
	if l := read(); l != "data: second" {
		t.Fatalf("got %q", l)
	}
}

// countingBackend counts the requests it answered.
func countingBackend(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprintf(w, "app=%s", name)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func TestTableSwapUnderLoadFailsNoRequest(t *testing.T) {
	p := startProxy(t, Config{})
	c := clientTo(p.HTTPAddr())
	route := func(s *httptest.Server) []Route {
		return []Route{{App: "busy", Hosts: []string{"busy.apps.test"}, Upstreams: []string{addr(s)}}}
	}
	current, served := countingBackend(t, "v0")
	p.SetRoutes(route(current), nil)

	// About 400 requests per second from 8 clients, for a bounded count.
	const workers, total = 8, 1500
	pace := time.NewTicker(2500 * time.Microsecond)
	defer pace.Stop()
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= total {
				<-pace.C
				resp, err := c.Get("http://busy.apps.test/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	loadDone := make(chan struct{})
	go func() { wg.Wait(); close(loadDone) }()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Five restarts: a new upstream takes over, the old one drains and dies.
	swaps := 0
	for i := 1; i <= 5; i++ {
		if !waitFor(ctx, loadDone, func() bool { return served.Load() >= 50 }) {
			break // the load finished first; fewer swaps still check the same thing
		}
		next, nextServed := countingBackend(t, fmt.Sprintf("v%d", i)) // listening once it returns
		p.SetRoutes(route(next), nil)
		if err := p.WaitDrained(ctx, []string{addr(current)}); err != nil {
			t.Fatal(err)
		}
		current.Close()
		current, served = next, nextServed
		swaps++
	}
	<-loadDone
	t.Logf("%d requests, %d table swaps", total, swaps)
	if swaps == 0 {
		t.Fatal("the load ended before any table swap")
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed across table swaps; first: %v", n, total, firstFailure.Load())
	}
}

// waitFor polls cond until it holds, ctx ends or stop is closed.
func waitFor(ctx context.Context, stop <-chan struct{}, cond func() bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app.example.com", "app.example.com"},
		{"App.Example.COM:8080", "app.example.com"},
		{"app.example.com.", "app.example.com"},
		{"[::1]:80", "[::1]"},
		{"[::1]", "[::1]"},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := normalizeHost(tc.in); got != tc.want {
				t.Fatalf("normalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
