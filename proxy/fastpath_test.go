package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawConn is a client connection to the proxy that writes requests by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, p *Proxy) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", p.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// read reads one response to a request of method and its whole body.
func (r *rawConn) read(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	for err == nil && resp.StatusCode < 200 {
		resp, err = http.ReadResponse(r.br, &http.Request{Method: method}) // skip 100 Continue
	}
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// closed reports whether the proxy closed the connection (EOF before any
// further byte), waiting at most a few seconds.
func (r *rawConn) closed() bool {
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.br.ReadByte()
	return err == io.EOF
}

// rawUpstream serves every accepted connection with handle, on loopback.
func rawUpstream(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// readRawRequest reads one request head and its Content-Length body.
func readRawRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

func req(method, host, path string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestFastPathResponses(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				http.NewResponseController(w).Flush()
			}
			w.Header().Set("X-Sum", "3")
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		case "/head":
			w.Header().Set("Content-Length", "1234")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/hop":
			w.Header().Set("Connection", "X-Secret")
			w.Header().Set("X-Secret", "hop")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("Seen-Keep-Alive", r.Header.Get("Keep-Alive"))
			w.Header().Set("Seen-Proxy-Connection", r.Header.Get("Proxy-Connection"))
			io.WriteString(w, "hop")
		default:
			io.WriteString(w, "plain")
		}
	}))
	t.Cleanup(app.Close)
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "fp", Hosts: []string{"fp.apps.test"}, Upstreams: []string{addr(app)}}}, nil)

	tests := []struct {
		name, method, path string
		extra              []string
		status             int
		body               string
		check              func(t *testing.T, resp *http.Response)
	}{
		{name: "chunked with trailer", method: "GET", path: "/chunked", status: 200, body: "part0;part1;part2;",
			check: func(t *testing.T, resp *http.Response) {
				if resp.TransferEncoding == nil || resp.Trailer.Get("X-Sum") != "3" {
					t.Errorf("transfer encoding %v, trailer %v", resp.TransferEncoding, resp.Trailer)
				}
			}},
		{name: "large body", method: "GET", path: "/big", status: 200, body: string(big)},
		{name: "HEAD has no body", method: "HEAD", path: "/head", status: 200, body: "",
			check: func(t *testing.T, resp *http.Response) {
				if resp.ContentLength != 1234 {
					t.Errorf("Content-Length %d, want 1234", resp.ContentLength)
				}
			}},
		{name: "204 has no body", method: "GET", path: "/204", status: 204, body: ""},
		{name: "304 has no body", method: "GET", path: "/304", status: 304, body: ""},
		{name: "hop-by-hop headers dropped both ways", method: "GET", path: "/hop",
			extra: []string{"Keep-Alive: timeout=9", "Proxy-Connection: keep-alive"}, status: 200, body: "hop",
			check: func(t *testing.T, resp *http.Response) {
				for _, h := range []string{"X-Secret", "Keep-Alive", "Connection", "Seen-Keep-Alive", "Seen-Proxy-Connection"} {
					if v := resp.Header.Get(h); v != "" {
						t.Errorf("%s = %q reached the other side", h, v)
					}
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, p)
			// Twice on one connection: the framing must leave it in step.
			for range 2 {
				rc.send(req(tc.method, "fp.apps.test", tc.path, tc.extra...))
				resp, body := rc.read(tc.method)
				if resp.StatusCode != tc.status || body != tc.body {
					t.Fatalf("got %d %.40q (%d bytes), want %d %.40q", resp.StatusCode, body, len(body), tc.status, tc.body)
				}
				if tc.check != nil {
					tc.check(t, resp)
				}
			}
		})
	}
}

func TestFastPathRequestBodies(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	t.Cleanup(app.Close)
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "up", Hosts: []string{"up.apps.test"}, Upstreams: []string{addr(app)}}}, nil)
	c := clientTo(p.HTTPAddr())
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"small", 100},
		{"large", 8 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{'x'}, tc.size)
			resp, err := c.Post("http://up.apps.test/", "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := fmt.Sprintf("%d %x", tc.size, sha256.Sum256(body))
			if resp.StatusCode != 200 || string(got) != want {
				t.Fatalf("got %d %q, want %q", resp.StatusCode, got, want)
			}
		})
	}
}

func TestFastPathConnections(t *testing.T) {
	var conns atomic.Int64
	app := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			switch r.URL.Path {
			case "/close":
				// The app ends the connection after this answer.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nclose")
				return
			case "/eof":
				// No framing: the body ends when the connection does.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil eof")
				return
			case "/lf":
				io.WriteString(c, "HTTP/1.1 200 OK\nContent-Length: 2\n\nlf")
			case "/early-hints":
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
			default:
				body := r.URL.Path
				if r.Method == http.MethodHead {
					body = ""
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), body)
			}
		}
	})
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "cc", Hosts: []string{"cc.apps.test"}, Upstreams: []string{app}}}, nil)

	t.Run("client Connection: close", func(t *testing.T) {
		rc := dialRaw(t, p)
		rc.send(req("GET", "cc.apps.test", "/a", "Connection: close"))
		resp, body := rc.read("GET")
		if body != "/a" || !resp.Close {
			t.Fatalf("body %q, close %v", body, resp.Close)
		}
		if !rc.closed() {
			t.Fatal("the proxy kept the connection open")
		}
	})
	tests := []struct {
		name, path, body string
		clientClosed     bool
	}{
		{"app closes after answering", "/close", "close", false},
		{"app body until EOF", "/eof", "until eof", true},
		{"bare LF line ends", "/lf", "lf", false},
		{"1xx skipped", "/early-hints", "final", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, p)
			rc.send(req("GET", "cc.apps.test", tc.path))
			resp, body := rc.read("GET")
			if resp.StatusCode != 200 || body != tc.body {
				t.Fatalf("got %d %q, want %q", resp.StatusCode, body, tc.body)
			}
			if tc.clientClosed {
				if !resp.Close || !rc.closed() {
					t.Fatal("a body ended by EOF must end the client connection")
				}
				return
			}
			if resp.Close {
				t.Fatal("client connection closed for no reason")
			}
			rc.send(req("GET", "cc.apps.test", "/next"))
			if _, body := rc.read("GET"); body != "/next" {
				t.Fatalf("next request got %q", body)
			}
		})
	}
	t.Run("pipelined", func(t *testing.T) {
		rc := dialRaw(t, p)
		rc.send(req("GET", "cc.apps.test", "/1") + req("HEAD", "cc.apps.test", "/2") + req("GET", "cc.apps.test", "/3"))
		for _, want := range []struct{ method, body string }{{"GET", "/1"}, {"HEAD", ""}, {"GET", "/3"}} {
			if _, body := rc.read(want.method); body != want.body {
				t.Fatalf("got %q, want %q", body, want.body)
			}
		}
	})
	t.Run("pipelined into net/http", func(t *testing.T) {
		// The second request is HTTP/1.0: net/http takes the connection
		// over with the request still unread.
		rc := dialRaw(t, p)
		rc.send(req("GET", "cc.apps.test", "/1") + "GET /2 HTTP/1.0\r\nHost: cc.apps.test\r\n\r\n")
		for _, want := range []string{"/1", "/2"} {
			if _, body := rc.read("GET"); body != want {
				t.Fatalf("got %q, want %q", body, want)
			}
		}
	})
}

func TestFastPathStaleUpstreamConnection(t *testing.T) {
	// The app answers one request per connection but does not say so (as
	// an app whose keep-alive timeout just expired): the proxy's pooled
	// connection is dead when the next request comes.
	served := make(chan struct{}, 16)
	app := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRawRequest(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.Method), r.Method)
		c.Close()
		served <- struct{}{}
	})
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "st", Hosts: []string{"st.apps.test"}, Upstreams: []string{app}}}, nil)
	c := clientTo(p.HTTPAddr())
	tests := []struct {
		name, method string
		body         io.Reader
	}{
		{"first", http.MethodGet, nil},
		{"GET is sent again", http.MethodGet, nil},
		{"POST skips the dead connection", http.MethodPost, strings.NewReader("payload")},
		{"and again", http.MethodPost, strings.NewReader("payload")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, "http://st.apps.test/", tc.body)
			resp, err := c.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tc.method {
				t.Fatalf("got %d %q", resp.StatusCode, b)
			}
			<-served // the app has closed its side
		})
	}
}

func TestFastPathHandoffs(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			conn, err := websocket.Accept(w, r, nil)
			if err == nil {
				conn.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		// The proxy always speaks HTTP/1.1 to apps; the client's
		// version shows in the response's.
		io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(app.Close)
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "ho", Hosts: []string{"ho.apps.test"}, Upstreams: []string{addr(app)}}}, nil)

	tests := []struct {
		name    string
		request string
		status  int
		body    string
	}{
		{"headers over the limit", req("GET", "ho.apps.test", "/", "X-Big: "+strings.Repeat("b", 100<<10)), 431, ""},
		{"head bigger than the fast path's buffer", req("GET", "ho.apps.test", "/mid", "X-Mid: "+strings.Repeat("m", 16<<10)), 200, "/mid"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: ho.apps.test\r\n\r\n", 200, "/old"},
		{"chunked request body", "POST /te HTTP/1.1\r\nHost: ho.apps.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "/te"},
		{"Expect: 100-continue", req("POST", "ho.apps.test", "/exp", "Content-Length: 2", "Expect: 100-continue") + "ok", 200, "/exp"},
		{"unknown host", req("GET", "nobody.apps.test", "/"), 404, "no app is served at this address\n"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, ""},
		{"two Content-Lengths", req("POST", "ho.apps.test", "/", "Content-Length: 1", "Content-Length: 2") + "ab", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, p)
			// A fast path request first, so the handoff happens on a
			// connection that has already served one.
			rc.send(req("GET", "ho.apps.test", "/first"))
			if _, body := rc.read("GET"); body != "/first" {
				t.Fatalf("first request got %q", body)
			}
			rc.send(tc.request)
			resp, body := rc.read("GET")
			if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}

	t.Run("websocket after a fast path request", func(t *testing.T) {
		rc := dialRaw(t, p)
		rc.send(req("GET", "ho.apps.test", "/first"))
		rc.read("GET")
		rc.send(req("GET", "ho.apps.test", "/ws", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="))
		resp, err := http.ReadResponse(rc.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
		}
	})
}

func TestFastPathTimeoutKeepsConnection(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "quick")
	}))
	t.Cleanup(slow.Close)
	p := startProxy(t, Config{UpstreamTimeout: 200 * time.Millisecond})
	p.SetRoutes([]Route{{App: "slow", Hosts: []string{"slow.apps.test"}, Upstreams: []string{addr(slow)}}}, nil)
	rc := dialRaw(t, p)
	rc.send(req("GET", "slow.apps.test", "/slow"))
	if resp, body := rc.read("GET"); resp.StatusCode != 504 || body != "app slow did not answer in time\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	rc.send(req("GET", "slow.apps.test", "/"))
	if resp, body := rc.read("GET"); resp.StatusCode != 200 || body != "quick" {
		t.Fatalf("after a 504 got %d %q", resp.StatusCode, body)
	}
}

func TestFastPathShutdownFinishesRequests(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(app.Close)
	p, err := New(Config{HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	p.SetRoutes([]Route{{App: "sd", Hosts: []string{"sd.apps.test"}, Upstreams: []string{addr(app)}}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	<-p.Ready()
	idle := dialRaw(t, p)
	idle.send(req("GET", "sd.apps.test", "/"))
	idle.read("GET")
	busy := dialRaw(t, p)
	busy.send(req("GET", "sd.apps.test", "/slow"))
	<-started
	cancel()
	if !idle.closed() {
		t.Fatal("an idle connection stayed open after shutdown began")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	resp, body := busy.read("GET")
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Fatalf("in-flight request got %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestMalformedClientBodies sends request bodies the proxy cannot read
// to the end: the client gets 400, the app is not blamed in the log, and
// the app never gets a request that looks complete.
func TestMalformedClientBodies(t *testing.T) {
	var mu sync.Mutex
	var seen []string // "complete /path" or "incomplete /path", as the app read them
	app := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, err = io.Copy(io.Discard, r.Body)
			mu.Lock()
			if err != nil {
				seen = append(seen, "incomplete "+r.URL.Path)
			} else {
				seen = append(seen, "complete "+r.URL.Path)
			}
			mu.Unlock()
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	var logged strings.Builder
	lw := lockedWriter{&mu, &logged}
	certPEM, keyPEM, roots := selfSignedCert(t, "mb.apps.test")
	p := startProxy(t, Config{HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir(), AccessLog: lw, Logger: slog.New(slog.NewTextHandler(lw, nil))})
	p.SetRoutes([]Route{{App: "mb", Hosts: []string{"mb.apps.test"}, Upstreams: []string{app}}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	// Both fronts, each with its fast path and its hand-over to net/http.
	schemes := []struct {
		name string
		dial func(t *testing.T) net.Conn
	}{
		{"http", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", p.HTTPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"https", func(t *testing.T) net.Conn {
			c, err := tls.Dial("tcp", p.HTTPSAddr().String(), &tls.Config{RootCAs: roots, ServerName: "mb.apps.test", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
	exchange := func(t *testing.T, dial func(*testing.T) net.Conn, request string, halfClose bool) (int, string) {
		c := dial(t)
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, request)
		if halfClose {
			c.(interface{ CloseWrite() error }).CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		return resp.StatusCode, string(body)
	}
	chunked := "POST /%s HTTP/1.1\r\nHost: mb.apps.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	// A head bigger than the fast path's buffer goes to net/http.
	pad := "X-Pad: " + strings.Repeat("p", frontReadBufferSize)

	tests := []struct {
		name    string
		request string
	}{
		{"fast path: Content-Length body cut short", req("POST", "mb.apps.test", "/short", "Content-Length: 10") + "abc"},
		{"net/http: Content-Length body cut short", req("POST", "mb.apps.test", "/padshort", "Content-Length: 10", pad) + "abc"},
		{"net/http: bad chunk size", fmt.Sprintf(chunked, "size") + "3\r\nabc\r\nzz\r\nxy\r\n0\r\n\r\n"},
		{"net/http: chunk without its CRLF", fmt.Sprintf(chunked, "crlf") + "3\r\nabcX\r\n0\r\n\r\n"},
		{"net/http: chunked body cut short", fmt.Sprintf(chunked, "cut") + "5\r\nab"},
		{"net/http: no last chunk", fmt.Sprintf(chunked, "last") + "3\r\nabc\r\n"},
	}
	for _, scheme := range schemes {
		for _, tc := range tests {
			t.Run(scheme.name+"/"+tc.name, func(t *testing.T) {
				if code, body := exchange(t, scheme.dial, tc.request, true); code != http.StatusBadRequest || body != clientBodyMessage {
					t.Fatalf("got %d %q, want 400 %q", code, body, clientBodyMessage)
				}
				// The app still serves, on a connection of its own.
				if code, body := exchange(t, scheme.dial, req("POST", "mb.apps.test", "/next", "Content-Length: 4")+"next", false); code != 200 || body != "ok" {
					t.Fatalf("next request got %d %q", code, body)
				}
			})
		}
	}
	// net/http may answer before the access log line is written.
	want := 2 * len(schemes) * len(tests)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(ctx, nil, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logged.String(), "component=access app=mb ") >= want
	})
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.HasPrefix(s, "complete ") && s != "complete /next" {
			t.Errorf("the app got a complete request from a broken one: %s", s)
		}
	}
	if strings.Contains(logged.String(), "upstream error") {
		t.Errorf("the app was blamed:\n%s", logged.String())
	}
	if n := strings.Count(logged.String(), "component=access app=mb "); n != want {
		t.Errorf("%d access log lines, want %d:\n%s", n, want, logged.String())
	}
	if n := strings.Count(logged.String(), " status=400 "); n != want/2 {
		t.Errorf("%d access log lines with status 400, want %d:\n%s", n, want/2, logged.String())
	}
}
