package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingApp is an app that notes every request it gets, as it got it
// (headers, framing, body), and answers by path.
type recordingApp struct {
	addr string
	mu   sync.Mutex
	seen []string
}

// The app sends a Date and a Content-Type as real apps do: net/http adds
// both to a response that lacks them (sniffing the type), nginx and the
// fast path do not.
// (/untyped shows which of the two served a request.)
const appHeaders = "Date: Mon, 30 Nov 2026 00:00:00 GMT\r\nContent-Type: text/plain"

func newRecordingApp(t *testing.T) *recordingApp {
	a := &recordingApp{}
	a.addr = rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			a.record(r, body)
			switch {
			case r.Header.Get("Upgrade") != "":
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
				io.Copy(c, br) // echo until the client closes
				return
			case r.URL.Path == "/chunked":
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+appHeaders+"\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
					"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n")
			case r.URL.Path == "/big":
				big := strings.Repeat("0123456789abcdef", 200<<10/16)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%s\r\nContent-Length: %d\r\n\r\n%s", appHeaders, len(big), big)
			case r.URL.Path == "/eof":
				io.WriteString(c, "HTTP/1.0 200 OK\r\n"+appHeaders+"\r\n\r\nuntil the end")
				return
			case r.URL.Path == "/headers":
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+appHeaders+"\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nx-lower-case: v\r\n"+
					"Keep-Alive: timeout=5\r\nConnection: Keep-Alive, X-Hop\r\nX-Hop: dropped\r\nContent-Length: 2\r\n\r\nok")
			case r.URL.Path == "/close":
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+appHeaders+"\r\nConnection: close\r\nContent-Length: 6\r\n\r\nclosed")
				return
			case r.URL.Path == "/early":
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
					"HTTP/1.1 200 OK\r\n"+appHeaders+"\r\nContent-Length: 5\r\n\r\nfinal")
			case r.URL.Path == "/empty":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n"+appHeaders+"\r\n\r\n")
			case r.URL.Path == "/untyped":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nuntyped")
			default:
				answer := fmt.Sprintf("%s %s got %d bytes", r.Method, r.URL.Path, len(body))
				if r.Method == http.MethodHead {
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%s\r\nX-App: yes\r\nContent-Length: %d\r\n\r\n", appHeaders, len(answer))
					continue
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%s\r\nX-App: yes\r\nContent-Length: %d\r\n\r\n%s", appHeaders, len(answer), answer)
			}
		}
	})
	return a
}

// record notes r without its X-Request-Id, which is new for every request.
func (a *recordingApp) record(r *http.Request, body []byte) {
	var names []string
	for k := range r.Header {
		if k != "X-Request-Id" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s host=%s te=%v cl=%d\n", r.Method, r.RequestURI, r.Proto, r.Host, r.TransferEncoding, r.ContentLength)
	for _, k := range names {
		fmt.Fprintf(&b, "  %s: %q\n", k, r.Header[k])
	}
	fmt.Fprintf(&b, "  body %q trailer %v\n", body, r.Trailer)
	a.mu.Lock()
	a.seen = append(a.seen, b.String())
	a.mu.Unlock()
}

func (a *recordingApp) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.seen
	a.seen = nil
	return s
}

// exchange is bytes written in one go and the responses they get, by
// the method of each request.
type exchange struct {
	send    string
	methods []string
}

// transcript runs exchanges on a new TLS connection to addr and returns
// every response as the client parsed it; echo, when set, is written
// after the last response (a 101) and read back.
func transcript(t *testing.T, addr string, roots *x509.CertPool, host string, exchanges []exchange, echo string) []string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: host, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	var out []string
	for _, ex := range exchanges {
		if _, err := io.WriteString(c, ex.send); err != nil {
			t.Fatal(err)
		}
		for _, m := range ex.methods {
			resp, err := http.ReadResponse(br, &http.Request{Method: m})
			for err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, &http.Request{Method: m})
			}
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			out = append(out, fmt.Sprintf("%s %d close=%v te=%v cl=%d %v body %q trailer %v",
				resp.Proto, resp.StatusCode, resp.Close, resp.TransferEncoding, resp.ContentLength, resp.Header, body, resp.Trailer))
		}
	}
	if echo != "" {
		io.WriteString(c, echo)
		got := make([]byte, len(echo))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("read echo: %v", err)
		}
		out = append(out, "echo "+string(got))
	}
	return out
}

// TestHTTPSFastPathMatchesNetHTTP sends the same requests to the proxy's
// HTTPS port (the fast path, and net/http for what it hands over) and to
// net/http's own TLS server in front of the same proxy handler (the path
// every HTTPS request took before), and compares what the app received
// and what the client got.
func TestHTTPSFastPathMatchesNetHTTP(t *testing.T) {
	const host = "tls.apps.test"
	app := newRecordingApp(t)
	certPEM, keyPEM, roots := selfSignedCert(t, host)
	p := startProxy(t, Config{HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir()})
	p.SetRoutes([]Route{{App: "tls", Hosts: []string{host}, Upstreams: []string{app.addr}, TLS: true}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	viaNetHTTP := httptest.NewUnstartedServer(p)
	viaNetHTTP.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	viaNetHTTP.StartTLS()
	t.Cleanup(viaNetHTTP.Close)

	get := func(path string, extra ...string) string { return req("GET", host, path, extra...) }
	post := func(path, body string, extra ...string) string {
		return req("POST", host, path, append(extra, fmt.Sprintf("Content-Length: %d", len(body)))...) + body
	}
	big := strings.Repeat("0123456789", 10<<10)
	tests := []struct {
		name      string
		exchanges []exchange
		echo      string
	}{
		{"keep-alive", []exchange{{get("/a"), []string{"GET"}}, {get("/b?q=1", "Accept: */*", "X-Custom: one"), []string{"GET"}}}, ""},
		{"bodies", []exchange{{post("/small", "hello"), []string{"POST"}}, {post("/big", big), []string{"POST"}}, {post("/empty", ""), []string{"POST"}}}, ""},
		{"chunked request", []exchange{{"POST /te HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", []string{"POST"}}}, ""},
		{"chunked response with trailer", []exchange{{get("/chunked"), []string{"GET"}}, {get("/after"), []string{"GET"}}}, ""},
		{"HEAD", []exchange{{req("HEAD", host, "/h"), []string{"HEAD"}}, {get("/after"), []string{"GET"}}}, ""},
		{"pipelined", []exchange{{get("/1") + post("/2", "two") + req("HEAD", host, "/3") + get("/4"), []string{"GET", "POST", "HEAD", "GET"}}}, ""},
		{"pipelined into a handover", []exchange{{get("/1") + "GET /2 HTTP/1.0\r\nHost: " + host + "\r\n\r\n", []string{"GET", "GET"}}}, ""},
		{"Expect: 100-continue", []exchange{{post("/exp", "body", "Expect: 100-continue"), []string{"POST"}}}, ""},
		{"client closes", []exchange{{get("/a", "Connection: close"), []string{"GET"}}}, ""},
		{"hop-by-hop and forwarding headers", []exchange{{get("/h", "Keep-Alive: 5", "X-Forwarded-For: 6.6.6.6", "X-Real-Ip: 6.6.6.6", "X-Forwarded-Proto: http"), []string{"GET"}}}, ""},
		{"upgrade", []exchange{{get("/first"), []string{"GET"}}, {get("/ws", "Upgrade: echo", "Connection: Upgrade"), []string{"GET"}}}, "ping"},
	}
	t.Run("HTTPS requests take the fast path", func(t *testing.T) {
		// net/http would sniff a Content-Type; the fast path passes the
		// app's head as it is.
		got := transcript(t, p.HTTPSAddr().String(), roots, host, []exchange{{get("/untyped"), []string{"GET"}}}, "")
		if strings.Contains(got[0], "Content-Type") || !strings.Contains(got[0], `body "untyped"`) {
			t.Fatalf("got %s", got[0])
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app.take()
			fastClient := transcript(t, p.HTTPSAddr().String(), roots, host, tc.exchanges, tc.echo)
			fastApp := app.take()
			netClient := transcript(t, viaNetHTTP.Listener.Addr().String(), roots, host, tc.exchanges, tc.echo)
			netApp := app.take()
			if len(fastApp) == 0 {
				t.Fatal("the app got nothing")
			}
			if !slices.Equal(fastApp, netApp) {
				t.Errorf("the app got, through the fast path:\n%s\nthrough net/http:\n%s", strings.Join(fastApp, ""), strings.Join(netApp, ""))
			}
			if !slices.Equal(fastClient, netClient) {
				t.Errorf("the client got, through the fast path:\n%s\nthrough net/http:\n%s", strings.Join(fastClient, "\n"), strings.Join(netClient, "\n"))
			}
			for _, seen := range fastApp {
				if !strings.Contains(seen, `X-Forwarded-Proto: ["https"]`) {
					t.Errorf("the app did not see X-Forwarded-Proto https:\n%s", seen)
				}
			}
		})
	}
}

// tlsRoute starts a proxy with HTTPS and one TLS route to a backend, with
// an uploaded certificate; it returns the proxy and the trust for it.
func tlsRoute(t *testing.T, host string) (*Proxy, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, roots := selfSignedCert(t, host)
	p := startProxy(t, Config{HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir()})
	p.SetRoutes([]Route{{App: "tls", Hosts: []string{host}, Upstreams: []string{addr(backend(t, "tls"))}, TLS: true}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	return p, roots
}

func TestHTTPSSessionResumption(t *testing.T) {
	const host = "resume.apps.test"
	p, roots := tlsRoute(t, host)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cache := tls.NewLRUClientSessionCache(4)
			for i, wantResumed := range []bool{false, true, true} {
				c, err := tls.Dial("tcp", p.HTTPSAddr().String(), &tls.Config{
					RootCAs: roots, ServerName: host, ClientSessionCache: cache,
					MinVersion: version, MaxVersion: version,
				})
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(30 * time.Second))
				// A whole exchange: a TLS 1.3 ticket comes after the
				// handshake, and the client reads it with the answer.
				io.WriteString(c, req("GET", host, "/", "Connection: close"))
				b, _ := io.ReadAll(c)
				c.Close()
				if !strings.Contains(string(b), "app=tls") {
					t.Fatalf("connection %d got %q", i, b)
				}
				if got := c.ConnectionState().DidResume; got != wantResumed {
					t.Fatalf("connection %d: resumed %v, want %v", i, got, wantResumed)
				}
			}
		})
	}
}

func TestHTTPSProtocolsOnOnePort(t *testing.T) {
	const host = "h2.apps.test"
	p, roots := tlsRoute(t, host)
	var d net.Dialer
	tests := []struct {
		name      string
		protos    []string // offered in ALPN
		wantMajor int
	}{
		{"h2 offered", []string{"h2", "http/1.1"}, 2},
		{"only http/1.1 offered", []string{"http/1.1"}, 1},
		{"no ALPN", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{
				DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					raw, err := d.DialContext(ctx, "tcp", p.HTTPSAddr().String())
					if err != nil {
						return nil, err
					}
					c := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: host, NextProtos: tc.protos})
					return c, c.HandshakeContext(ctx)
				},
				ForceAttemptHTTP2: true,
			}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			// Two requests: the second on the same connection.
			for range 2 {
				a := get(t, client, "https://"+host+"/", nil)
				if a.status != 200 || a.body != "app=tls" || a.headers.Get("Seen-X-Forwarded-Proto") != "https" {
					t.Fatalf("got %d %q %v", a.status, a.body, a.headers)
				}
			}
			resp, err := client.Get("https://" + host + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != tc.wantMajor {
				t.Fatalf("protocol %s, want HTTP/%d", resp.Proto, tc.wantMajor)
			}
		})
	}
}

func TestPlainHTTPToTheHTTPSPort(t *testing.T) {
	p, _ := tlsRoute(t, "plain.apps.test")
	c, err := net.Dial("tcp", p.HTTPSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, req("GET", "plain.apps.test", "/"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// TestHTTP2Limits reads the SETTINGS the proxy announces to an HTTP/2
// client: the limits on streams and header sizes an HTTP/1.1 client has.
func TestHTTP2Limits(t *testing.T) {
	const host = "limits.apps.test"
	p, roots := tlsRoute(t, host)
	c := dialH2(t, p.HTTPSAddr().String(), roots, host)
	defer c.Close()
	// The client preface and an empty SETTINGS frame.
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[3] != 0x4 {
		t.Fatalf("first frame of type %d, want SETTINGS", hdr[3])
	}
	payload := make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatal(err)
	}
	settings := map[uint16]uint32{}
	for b := payload; len(b) >= 6; b = b[6:] {
		settings[binary.BigEndian.Uint16(b)] = binary.BigEndian.Uint32(b[2:])
	}
	const maxConcurrentStreams, maxHeaderListSize = 0x3, 0x6
	if got := settings[maxConcurrentStreams]; got != 128 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 128", got)
	}
	if got := settings[maxHeaderListSize]; got == 0 || got > 128<<10 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d, want about the 64 KiB of HTTP/1.1", got)
	}
}

// TestBatchedWritesReachThePeer writes through a batching connection as
// crypto/tls closes one (a last write, a deadline of now, Close) and
// checks that the peer got every byte in order.
func TestBatchedWritesReachThePeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- b
	}()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rio := newRawIO(tcp)
	c := &rawNetConn{Conn: tcp, rw: rio, batch: newBatchWriter(rio)}
	var want []byte
	var wg sync.WaitGroup
	var mu sync.Mutex // writers take turns, as tls.Conn's do
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				line := fmt.Appendf(nil, "writer %d line %d %s\n", g, i, strings.Repeat("x", i*7))
				mu.Lock()
				want = append(want, line...)
				c.Write(line)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("last"))
	want = append(want, "last"...)
	c.SetWriteDeadline(time.Now())
	c.Close()
	if b := <-got; string(b) != string(want) {
		t.Fatalf("the peer got %d bytes, want %d", len(b), len(want))
	}
}

// TestShutdownSendsGOAWAY shuts the proxy down with an idle HTTP/2
// connection open, handed over by the TLS front: the client gets a GOAWAY
// frame before the connection ends, and Serve returns without an error.
func TestShutdownSendsGOAWAY(t *testing.T) {
	const host = "bye.apps.test"
	certPEM, keyPEM, roots := selfSignedCert(t, host)
	p, err := New(Config{HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p.SetRoutes([]Route{{App: "bye", Hosts: []string{host}, Upstreams: []string{addr(backend(t, "bye"))}, TLS: true}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	<-p.Ready()
	c := dialH2(t, p.HTTPSAddr().String(), roots, host)
	defer c.Close()
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[3] != 0x4 {
		t.Fatalf("no SETTINGS from the server: %v %v", hdr, err)
	}
	frameLen := func() int64 { return int64(int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])) }
	if _, err := io.CopyN(io.Discard, c, frameLen()); err != nil {
		t.Fatal(err)
	}
	cancel()
	goaway := false
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			break
		}
		if hdr[3] == 0x7 {
			goaway = true
		}
		if _, err := io.CopyN(io.Discard, c, frameLen()); err != nil {
			break
		}
	}
	if !goaway {
		t.Error("the connection ended without a GOAWAY")
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestHTTP2DirectMatchesReverseProxy sends the same HTTP/2 requests
// through serveH2 and through httputil.ReverseProxy (two proxies in front
// of one app) and compares what the app received and the client got.
func TestHTTP2DirectMatchesReverseProxy(t *testing.T) {
	const host, downHost = "h2d.apps.test", "down.apps.test"
	app := newRecordingApp(t)
	certPEM, keyPEM, roots := selfSignedCert(t, host)
	downPEM, downKey, _ := selfSignedCert(t, downHost)
	roots.AppendCertsFromPEM(downPEM)
	start := func(viaReverseProxy bool) *Proxy {
		p, err := New(Config{HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		p.h2ViaReverseProxy = viaReverseProxy
		p.SetRoutes([]Route{
			{App: "h2d", Hosts: []string{host}, Upstreams: []string{app.addr}, TLS: true},
			{App: "down", Hosts: []string{downHost}, Upstreams: []string{closedAddr(t)}, TLS: true},
		}, []Cert{{CertPEM: certPEM, KeyPEM: keyPEM}, {CertPEM: downPEM, KeyPEM: downKey}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Serve(ctx) }()
		<-p.Ready()
		t.Cleanup(func() { cancel(); <-done })
		return p
	}
	direct, viaRP := start(false), start(true)
	h2Client := func(p *Proxy) *http.Client {
		c := tlsClientTo(p.HTTPSAddr(), roots)
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	directClient, rpClient := h2Client(direct), h2Client(viaRP)

	type request = h2Request
	tests := []struct {
		name string
		req  request
	}{
		{"GET", request{"GET", "https://" + host + "/a?x=1&y=2", http.Header{"Accept": {"*/*"}, "X-Custom": {"one", "two"}}, ""}},
		{"HEAD", request{"HEAD", "https://" + host + "/h", nil, ""}},
		{"chunked with trailer", request{"GET", "https://" + host + "/chunked", nil, ""}},
		{"no Content-Type", request{"GET", "https://" + host + "/untyped", nil, ""}},
		{"forwarding and proxy headers", request{"GET", "https://" + host + "/f", http.Header{
			"Forwarded": {"for=6.6.6.6"}, "X-Forwarded-For": {"6.6.6.6"}, "X-Real-Ip": {"6.6.6.6"},
			"X-Forwarded-Proto": {"http"}, "Proxy-Authorization": {"Basic eDp5"}, "X-Request-Id": {"kept-id-1"}}, ""}},
		{"no User-Agent", request{"GET", "https://" + host + "/ua", http.Header{"User-Agent": {""}}, ""}},
		{"query ReverseProxy rewrites", request{"GET", "https://" + host + "/q?a=1;b=2", nil, ""}},
		{"body", request{"POST", "https://" + host + "/post", nil, "payload"}},
		{"POST without a body", request{"POST", "https://" + host + "/post", nil, ""}},
		{"HTTP/1.0 answer until EOF", request{"GET", "https://" + host + "/eof", nil, ""}},
		{"header names and hop-by-hop headers", request{"GET", "https://" + host + "/headers", nil, ""}},
		{"app closes after answering", request{"GET", "https://" + host + "/close", nil, ""}},
		{"HEAD of a closing app", request{"HEAD", "https://" + host + "/close", nil, ""}},
		{"103 Early Hints first", request{"GET", "https://" + host + "/early", nil, ""}},
		{"big answer", request{"GET", "https://" + host + "/big", nil, ""}},
		{"app down", request{"GET", "https://" + downHost + "/", nil, ""}},
	}
	run := describeH2
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app.take()
			gotDirect := run(t, directClient, tc.req)
			appDirect := app.take()
			gotRP := run(t, rpClient, tc.req)
			appRP := app.take()
			if gotDirect != gotRP {
				t.Errorf("the client got, directly:\n%s\nthrough ReverseProxy:\n%s", gotDirect, gotRP)
			}
			if !slices.Equal(appDirect, appRP) {
				t.Errorf("the app got, directly:\n%s\nthrough ReverseProxy:\n%s", strings.Join(appDirect, ""), strings.Join(appRP, ""))
			}
		})
	}
}
