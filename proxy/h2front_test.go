package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Pair starts two proxies in front of one recording app, one serving
// HTTP/2 with its own front (h2front.go), one with net/http's HTTP/2
// server, for tests to compare.
type h2Pair struct {
	app         *recordingApp
	roots       *x509.CertPool
	own, netH2  *Proxy
	host, downH string
}

func newH2Pair(t *testing.T) *h2Pair {
	t.Helper()
	hp := &h2Pair{app: newRecordingApp(t), host: "h2.apps.test", downH: "down2.apps.test"}
	certPEM, keyPEM, roots := selfSignedCert(t, hp.host)
	downPEM, downKey, _ := selfSignedCert(t, hp.downH)
	roots.AppendCertsFromPEM(downPEM)
	hp.roots = roots
	down := closedAddr(t)
	start := func(viaNetHTTP bool) *Proxy {
		p, err := New(Config{HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		p.h2ViaNetHTTP = viaNetHTTP
		p.SetRoutes([]Route{
			{App: "h2", Hosts: []string{hp.host}, Upstreams: []string{hp.app.addr}, TLS: true},
			{App: "down", Hosts: []string{hp.downH}, Upstreams: []string{down}, TLS: true},
		}, []Cert{{CertPEM: certPEM, KeyPEM: keyPEM}, {CertPEM: downPEM, KeyPEM: downKey}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Serve(ctx) }()
		<-p.Ready()
		t.Cleanup(func() { cancel(); <-done })
		return p
	}
	hp.own, hp.netH2 = start(false), start(true)
	return hp
}

// TestHTTP2FrontMatchesNetHTTP sends the same requests through Go's
// HTTP/2 client to the proxy's own HTTP/2 front and to net/http's HTTP/2
// server in front of the same handler, and compares what the app received
// and what the client got: status, headers, body, trailers.
func TestHTTP2FrontMatchesNetHTTP(t *testing.T) {
	hp := newH2Pair(t)
	client := func(p *Proxy) *http.Client {
		c := tlsClientTo(p.HTTPSAddr(), hp.roots)
		c.Transport.(*http.Transport).ExpectContinueTimeout = 10 * time.Second
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	ownClient, netClient := client(hp.own), client(hp.netH2)
	host := "https://" + hp.host
	big := strings.Repeat("0123456789abcdef", 200<<10/16)
	type request = h2Request
	tests := []struct {
		name string
		req  request
	}{
		{"GET", request{"GET", host + "/a?x=1&y=2", http.Header{"Accept": {"*/*"}, "X-Custom": {"one", "two"}}, ""}},
		{"HEAD", request{"HEAD", host + "/h", nil, ""}},
		{"chunked with trailer", request{"GET", host + "/chunked", nil, ""}},
		{"no Content-Type", request{"GET", host + "/untyped", nil, ""}},
		{"big answer", request{"GET", host + "/big", nil, ""}},
		{"empty answer", request{"GET", host + "/empty", nil, ""}},
		{"HTTP/1.0 answer until EOF", request{"GET", host + "/eof", nil, ""}},
		{"header names and hop-by-hop headers", request{"GET", host + "/headers", nil, ""}},
		{"app closes after answering", request{"GET", host + "/close", nil, ""}},
		{"103 Early Hints first", request{"GET", host + "/early", nil, ""}},
		{"forwarding and proxy headers", request{"GET", host + "/f", http.Header{
			"Forwarded": {"for=6.6.6.6"}, "X-Forwarded-For": {"6.6.6.6"}, "X-Real-Ip": {"6.6.6.6"},
			"X-Forwarded-Proto": {"http"}, "Proxy-Authorization": {"Basic eDp5"}, "X-Request-Id": {"kept-id-1"}}, ""}},
		{"cookies", request{"GET", host + "/c", http.Header{"Cookie": {"a=1", "b=2"}}, ""}},
		{"query ReverseProxy rewrites", request{"GET", host + "/q?a=1;b=2", nil, ""}},
		{"body", request{"POST", host + "/post", nil, "payload"}},
		{"body past the flow-control windows", request{"PUT", host + "/upload", nil, big + big + big + big + big + big}},
		{"Expect 100-continue", request{"POST", host + "/expect", http.Header{"Expect": {"100-continue"}}, "after continue"}},
		{"app down", request{"GET", "https://" + hp.downH + "/", nil, ""}},
	}
	run := describeH2
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hp.app.take()
			gotOwn := run(t, ownClient, tc.req)
			appOwn := hp.app.take()
			gotNet := run(t, netClient, tc.req)
			appNet := hp.app.take()
			if gotOwn != gotNet {
				t.Errorf("the client got, from the own front:\n%s\nfrom net/http:\n%s", gotOwn, gotNet)
			}
			if !slices.Equal(appOwn, appNet) {
				t.Errorf("the app got, through the own front:\n%s\nthrough net/http:\n%s", strings.Join(appOwn, ""), strings.Join(appNet, ""))
			}
		})
	}
}

// h2Request is a request of the differential HTTP/2 tests.
type h2Request struct {
	method, url string
	header      http.Header
	body        string
}

// describeH2 sends rq with c, which must speak HTTP/2, and describes the
// answer in a form two fronts can be compared by: status, headers (Date
// only when it is the test app's fixed one, not a front's own), body (a
// long one by its start, length and digest) and trailers.
func describeH2(t *testing.T, c *http.Client, rq h2Request) string {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequest(rq.method, rq.url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range rq.header {
		r.Header[k] = v
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s", resp.Proto)
	}
	if !strings.Contains(resp.Header.Get("Date"), "Nov 2026 00:00:00") {
		resp.Header.Del("Date")
	}
	if len(b) > 200 {
		b = fmt.Appendf(b[:100], "... %d bytes, sha256 %x", len(b), sha256.Sum256(b))
	}
	return fmt.Sprintf("%d %v body %q trailer %v", resp.StatusCode, resp.Header, b, resp.Trailer)
}

// h2Script is a client's side of an HTTP/2 exchange in raw frames: the
// frames to send after the preface and an empty SETTINGS, and the
// streams whose end (END_STREAM or RST_STREAM) the client waits for.
type h2Script struct {
	send    func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer)
	streams []uint32
}

// rawH2 runs script on a new connection to addr and describes what came
// back, in a form two servers can be compared by: per stream its
// response headers (without Date), body, trailers and reset code, in
// stream order; a GOAWAY's code. Flow-control and settings frames are
// left out.
func rawH2(t *testing.T, addr string, roots *x509.CertPool, host string, script h2Script) string {
	t.Helper()
	c := dialH2(t, addr, roots, host)
	defer c.Close()
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.AllowIllegalWrites = true // malformed frames are the point
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	script.send(fr, enc, &hbuf)
	type streamSeen struct {
		heads []string
		body  int
		sum   byte
		reset string
		ended bool
	}
	seen := map[uint32]*streamSeen{}
	for _, id := range script.streams {
		seen[id] = &streamSeen{}
	}
	open := len(script.streams)
	goaway := ""
	for open > 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			goaway = g.ErrCode.String()
			continue
		}
		s := seen[f.Header().StreamID]
		if s == nil || s.ended {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			var fields []string
			for _, hf := range f.Fields {
				if hf.Name != "date" {
					fields = append(fields, hf.Name+"="+hf.Value)
				}
			}
			slices.Sort(fields)
			s.heads = append(s.heads, strings.Join(fields, " "))
		case *http2.DataFrame:
			s.body += len(f.Data())
			for _, b := range f.Data() {
				s.sum += b
			}
			if len(f.Data()) > 0 {
				fr.WriteWindowUpdate(0, uint32(len(f.Data())))
				fr.WriteWindowUpdate(f.StreamID, uint32(len(f.Data())))
			}
		case *http2.RSTStreamFrame:
			s.reset = f.ErrCode.String()
		}
		if f.Header().Flags.Has(http2.FlagHeadersEndStream) && f.Header().Type != http2.FrameRSTStream ||
			f.Header().Type == http2.FrameRSTStream {
			s.ended = true
			open--
		}
	}
	var b strings.Builder
	for _, id := range script.streams {
		s := seen[id]
		fmt.Fprintf(&b, "stream %d: heads %q body %d bytes (sum %d) reset %q ended %v\n", id, s.heads, s.body, s.sum, s.reset, s.ended)
	}
	if goaway != "" {
		fmt.Fprintf(&b, "GOAWAY %s\n", goaway)
	}
	return b.String()
}

// dialH2 opens a TLS connection to addr that asks for HTTP/2 (and sends
// nothing yet), given 30 s for everything it does.
func dialH2(t *testing.T, addr string, roots *x509.CertPool, host string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: host, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// writeH2Headers writes a HEADERS frame of fields (name, value pairs).
func writeH2Headers(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer, id uint32, end bool, fields ...string) {
	hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: end, EndHeaders: true})
}

// TestHTTP2FrontMatchesNetHTTPOnTheWire sends the same raw frames, many
// of them malformed, to both servers and compares the answers frame by
// frame: resets and their codes, GOAWAY, what a good request on the same
// connection gets afterwards.
func TestHTTP2FrontMatchesNetHTTPOnTheWire(t *testing.T) {
	hp := newH2Pair(t)
	get := func(path string) []string {
		return []string{":method", "GET", ":scheme", "https", ":authority", hp.host, ":path", path}
	}
	post := func(path string, extra ...string) []string {
		return append([]string{":method", "POST", ":scheme", "https", ":authority", hp.host, ":path", path}, extra...)
	}
	tests := []struct {
		name   string
		script h2Script
	}{
		{"a GET", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, true, get("/one")...)
		}, []uint32{1}}},
		{"upper-case header name, then a good request", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, true, append(get("/bad"), "X-Upper", "1")...)
			writeH2Headers(fr, enc, hb, 3, true, get("/good")...)
		}, []uint32{1, 3}}},
		{"connection header", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, true, append(get("/c"), "connection", "keep-alive")...)
			writeH2Headers(fr, enc, hb, 3, true, get("/good")...)
		}, []uint32{1, 3}}},
		{"TE other than trailers", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, true, append(get("/te"), "te", "gzip")...)
		}, []uint32{1}}},
		{"no :path", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, true, ":method", "GET", ":scheme", "https", ":authority", hp.host)
		}, []uint32{1}}},
		{"header list over 64 KiB", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			long := strings.Repeat("v", 8000)
			fields := get("/long")
			for i := range 10 {
				fields = append(fields, fmt.Sprintf("x-long-%d", i), long)
			}
			hb.Reset()
			for i := 0; i < len(fields); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
			}
			block := hb.Bytes()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16000], EndStream: true})
			for block = block[16000:]; len(block) > 16000; block = block[16000:] {
				fr.WriteContinuation(1, false, block[:16000])
			}
			fr.WriteContinuation(1, true, block)
		}, []uint32{1}}},
		{"body longer than its Content-Length", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, false, post("/cl", "content-length", "3")...)
			fr.WriteData(1, true, []byte("abcdef"))
			writeH2Headers(fr, enc, hb, 3, true, get("/after")...)
		}, []uint32{1, 3}}},
		{"body and trailers", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, false, post("/tr", "trailer", "x-sum")...)
			fr.WriteData(1, false, []byte("abc"))
			writeH2Headers(fr, enc, hb, 1, true, "x-sum", "3")
		}, []uint32{1}}},
		{"small stream window", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
			writeH2Headers(fr, enc, hb, 1, true, get("/big")...)
		}, []uint32{1}}},
		{"PRIORITY on itself", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, true, get("/p")...)
			fr.WritePriority(3, http2.PriorityParam{StreamDep: 3})
		}, []uint32{1, 3}}},
		{"client resets its request", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 1, false, post("/reset")...)
			fr.WriteRSTStream(1, http2.ErrCodeCancel)
			writeH2Headers(fr, enc, hb, 3, true, get("/after")...)
		}, []uint32{3}}},
		{"stream id going down", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 5, true, get("/five")...)
			writeH2Headers(fr, enc, hb, 3, true, get("/three")...)
		}, []uint32{3}}}, // whether 5 is answered before the connection ends is a race
		{"even stream id", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			writeH2Headers(fr, enc, hb, 2, true, get("/even")...)
		}, []uint32{2}}},
		{"zero window increment", h2Script{func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
			fr.WriteWindowUpdate(0, 0)
		}, []uint32{1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			own := rawH2(t, hp.own.HTTPSAddr().String(), hp.roots, hp.host, tc.script)
			net := rawH2(t, hp.netH2.HTTPSAddr().String(), hp.roots, hp.host, tc.script)
			if own != net {
				t.Errorf("own front:\n%snet/http:\n%s", own, net)
			}
		})
	}
}

// BenchmarkHTTP2Front measures requests through the own HTTP/2 front to
// a minimal app on loopback, with Go's HTTP/2 client; its CPU and memory
// profiles (-cpuprofile, -memprofile) show the proxy's share per request.
func BenchmarkHTTP2Front(b *testing.B) {
	const host = "bench.apps.test"
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\nDate: Mon, 30 Nov 2026 00:00:00 GMT\r\n\r\n" +
		"0123456789012345678901234567890123456789012345678901234567890123"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					r.Body.Close()
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	app := ln.Addr().String()
	certPEM, keyPEM, roots := selfSignedCert(b, host)
	p, err := New(Config{HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	p.SetRoutes([]Route{{App: "bench", Hosts: []string{host}, Upstreams: []string{app}, TLS: true}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	<-p.Ready()
	defer func() { cancel(); <-done }()
	c := tlsClientTo(p.HTTPSAddr(), roots)
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get("https://" + host + "/")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// TestHTTP2StreamLimit opens more streams than the 128 a connection may
// have in flight, to an app that holds every answer: the one past the
// limit is refused (RST_STREAM REFUSED_STREAM, which clients retry), the
// others are answered once the app lets them go.
func TestHTTP2StreamLimit(t *testing.T) {
	const host = "many.apps.test"
	release := make(chan struct{})
	app := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			r.Body.Close()
			<-release
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	certPEM, keyPEM, roots := selfSignedCert(t, host)
	p := startProxy(t, Config{HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir()})
	p.SetRoutes([]Route{{App: "many", Hosts: []string{host}, Upstreams: []string{app}, TLS: true}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	c := dialH2(t, p.HTTPSAddr().String(), roots, host)
	defer c.Close()
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	const streams = h2MaxStreams + 1
	for i := range streams {
		writeH2Headers(fr, enc, &hbuf, uint32(2*i+1), true, ":method", "GET", ":scheme", "https", ":authority", host, ":path", "/")
	}
	refused, answered, released := 0, 0, false
	for refused+answered < streams {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d refused and %d answered: %v", refused, answered, err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("stream %d reset with %v", f.StreamID, f.ErrCode)
			}
			refused++
		case *http2.DataFrame:
			if f.StreamEnded() {
				answered++
			}
		}
		if refused > 0 && !released {
			// No answer could leave before this: the refusal came while
			// the first 128 were in flight.
			released = true
			close(release)
		}
	}
	if refused != 1 || answered != h2MaxStreams {
		t.Errorf("%d streams refused and %d answered, want 1 and %d", refused, answered, h2MaxStreams)
	}
}

// TestHTTP2ServerSentEvents streams events over HTTP/2: each reaches the
// client while the app holds the stream open, and a client that cancels
// its request ends the app's request too.
func TestHTTP2ServerSentEvents(t *testing.T) {
	const host = "sse2.apps.test"
	next := make(chan struct{})
	appDone := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: second\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // until the proxy lets go
		close(appDone)
	}))
	t.Cleanup(sse.Close)
	certPEM, keyPEM, roots := selfSignedCert(t, host)
	p := startProxy(t, Config{HTTPSAddr: "127.0.0.1:0", DataDir: t.TempDir(), AccessLog: io.Discard})
	p.SetRoutes([]Route{{App: "sse", Hosts: []string{host}, Upstreams: []string{addr(sse)}, TLS: true}},
		[]Cert{{CertPEM: certPEM, KeyPEM: keyPEM}})
	c := tlsClientTo(p.HTTPSAddr(), roots)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s", resp.Proto)
	}
	eventsArriveOneByOne(t, resp.Body, next)
	cancel() // RST_STREAM: the proxy drops its request to the app
	select {
	case <-appDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the app's request was still open 10 s after the client reset its stream")
	}
}
