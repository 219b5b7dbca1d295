package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// The fast path parses requests and responses by hand. These fuzz tests
// hold it to one rule: whatever it accepts must mean the same to net/http
// (the parser of the path it hands everything else to, and of the apps'
// and clients' own HTTP stacks); anything else it must hand over unread
// (requests) or refuse with 502 (responses). make test runs each for a
// few seconds; the seeds and the inputs that found bugs live in
// testdata/fuzz, so plain go test replays them.

// requestSeeds cover the framing and header cases of the fast path.
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nConnection: close\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc",
	"POST /u HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nab",
	"POST /u HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST /u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Folded: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\nHost: a.test\n\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX\x01Odd: v\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Bad: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"PUT / HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, close\r\nKeep-Alive: 5\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: lb-1\r\nX-Client-Request-Id: forged\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: a b\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /a#b HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /\xff HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n",
	"get / HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test.\r\nContent-Length: +1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost : a.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Sp: \t v \t\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
}

// fuzzConn stands in for the sockets of a frontConn: the fast path only
// sets deadlines on them here.
func fuzzConn(tb testing.TB) net.Conn {
	a, b := net.Pipe()
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a
}

// serverReadRequest reads a request as net/http's server does: its
// ReadRequest, then the checks the server adds on top (server.go,
// readRequest).
func serverReadRequest(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	// ReadRequest has moved the one Host header to r.Host (it refuses two).
	if r.ProtoAtLeast(1, 1) && r.Host == "" && r.Method != http.MethodConnect {
		return nil, errors.New("missing required Host header")
	}
	if !httpguts.ValidHostHeader(r.Host) {
		return nil, errors.New("malformed Host header")
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errors.New("invalid header value")
			}
		}
	}
	return r, nil
}

// requestHopHeaders are the request headers neither path passes on to
// an app: hop-by-hop ones, and those the proxy sets itself.
var requestHopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
	"X-Request-Id", "X-Client-Request-Id",
}

func FuzzFastPathRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	conn := fuzzConn(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		end := bytes.Index(data, crlfcrlf)
		if end < 0 || end+4 > frontReadBufferSize {
			return // no complete head in the buffer: handed over
		}
		fc := &frontConn{f: &httpFront{}, c: conn, ip: "192.0.2.1"}
		var rq reqHead
		if !fc.parseRequest(data[:end+4], &rq) {
			return // handed over unread
		}
		var hb [256]byte
		host, ok := normalizeHostBytes(rq.host, hb[:0])
		if !ok {
			return // handed over unread
		}
		want, err := serverReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("the fast path takes a request net/http refuses (%v):\n%q", err, data)
		}
		if got := normalizeHost(want.Host); got != string(host) {
			t.Errorf("routed by host %q, net/http by %q", host, got)
		}
		if want.Close != rq.close {
			t.Errorf("close %v, net/http %v", rq.close, want.Close)
		}
		wantBody, wantBodyErr := io.ReadAll(want.Body)

		// What the app gets from the fast path, read by net/http.
		fc.br = bufio.NewReaderSize(bytes.NewReader(data), frontReadBufferSize)
		var out bytes.Buffer
		uc := &upstreamConn{bw: bufio.NewWriter(&out)}
		reqID := []byte("rosti-1")
		uerr := fc.send(uc, &rq, reqID, func() { fc.br.Discard(rq.size) })
		if (uerr != nil) != (wantBodyErr != nil) {
			t.Fatalf("body error %v, net/http %v:\n%q", uerr, wantBodyErr, data)
		}
		if uerr != nil {
			if uerr.err != errClientBody {
				t.Fatalf("a client body error is reported as %v", uerr.err)
			}
			return // both answer 400
		}
		got, err := http.ReadRequest(bufio.NewReader(&out))
		if err != nil {
			t.Fatalf("the app cannot read what the fast path sent (%v):\n%q\nsent:\n%q", err, data, out.Bytes())
		}
		gotBody, err := io.ReadAll(got.Body)
		if err != nil || !bytes.Equal(gotBody, wantBody) {
			t.Errorf("body %q (%v), net/http %q", gotBody, err, wantBody)
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
			got.ContentLength != want.ContentLength || len(got.TransferEncoding) != 0 {
			t.Errorf("sent %s %q host %q length %d %v; net/http read %s %q host %q length %d",
				got.Method, got.RequestURI, got.Host, got.ContentLength, got.TransferEncoding,
				want.Method, want.RequestURI, want.Host, want.ContentLength)
		}
		wantHeader := want.Header.Clone()
		for _, h := range requestHopHeaders {
			delete(wantHeader, h)
		}
		wantHeader["X-Forwarded-For"] = []string{fc.ip}
		wantHeader["X-Real-Ip"] = []string{fc.ip}
		wantHeader["X-Forwarded-Host"] = []string{want.Host}
		wantHeader["X-Forwarded-Proto"] = []string{"http"}
		wantHeader["X-Request-Id"] = want.Header["X-Request-Id"]
		setRequestIDs(wantHeader, string(reqID))
		if !maps.EqualFunc(got.Header, wantHeader, slices.Equal) {
			t.Errorf("headers sent:\n%v\nnet/http would send:\n%v\ninput:\n%q", got.Header, wantHeader, data)
		}
	})
}

// responseSeeds cover the status lines and framings of app responses.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2;ext=1\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: v\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2 \r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\n\n",
	"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
}

// responseHopHeaders are the response headers no client gets from the
// app as they were sent.
var responseHopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Upgrade",
}

func FuzzFastPathResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	conn := fuzzConn(f)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		fc := &frontConn{f: &httpFront{}}
		upstream := bytes.NewReader(data)
		uc := &upstreamConn{conn: conn, br: bufio.NewReaderSize(upstream, 16<<10)}
		var rh respHead
		if uerr := fc.readResponseHead(uc, &upstreamTransport{}, &rh); uerr != nil {
			return // 502, or a response cut short: refusing is always allowed
		}
		nrd := bytes.NewReader(data)
		nbr := bufio.NewReader(nrd)
		want, err := readFinalResponse(nbr, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("the fast path takes a response net/http refuses (%v):\n%q", err, data)
		}
		wantBody, wantBodyErr := io.ReadAll(want.Body)
		wantRest := nrd.Len() + nbr.Buffered()

		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		_, _, reusable, rerr, werr := fc.relayResponse(bw, uc, &rh, head, true)
		if werr != nil {
			t.Fatal(werr)
		}
		bw.Flush()
		if rerr == nil && wantBodyErr != nil {
			t.Fatalf("the fast path passes on a body net/http refuses (%v):\n%q", wantBodyErr, data)
		}
		if rerr != nil && wantBodyErr == nil {
			t.Fatalf("the fast path refuses a body net/http reads (%v):\n%q", rerr, data)
		}
		if reusable {
			if want.Close {
				t.Errorf("upstream connection reused, net/http closes it:\n%q", data)
			}
			if rest := upstream.Len() + uc.br.Buffered(); rest != wantRest {
				t.Errorf("upstream connection reused %d bytes from the end, net/http %d:\n%q", rest, wantRest, data)
			}
		}

		// What the client gets, read by net/http.
		got, err := http.ReadResponse(bufio.NewReader(&out), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("the client cannot read what the fast path sent (%v):\n%q\nsent:\n%q", err, data, out.Bytes())
		}
		gotBody, gotBodyErr := io.ReadAll(got.Body)
		if rerr != nil {
			if gotBodyErr == nil {
				t.Errorf("a broken body reaches the client as complete:\n%q\nsent:\n%q", data, out.Bytes())
			}
			return
		}
		if gotBodyErr != nil || !bytes.Equal(gotBody, wantBody) {
			t.Errorf("client got body %q (%v), net/http %q:\n%q", gotBody, gotBodyErr, wantBody, data)
		}
		if got.StatusCode != want.StatusCode || got.Status != want.Status {
			t.Errorf("status %q, net/http %q", got.Status, want.Status)
		}
		wantHeader := want.Header.Clone()
		for _, h := range responseHopHeaders {
			delete(wantHeader, h)
		}
		for _, name := range finalConnectionTokens(t, data) {
			delete(wantHeader, http.CanonicalHeaderKey(name))
		}
		if len(want.TransferEncoding) > 0 {
			// net/http leaves a Content-Length beside Transfer-Encoding
			// in Header; it must not reach a client.
			delete(wantHeader, "Content-Length")
		}
		delete(got.Header, "Connection")
		if !maps.EqualFunc(got.Header, wantHeader, slices.Equal) {
			t.Errorf("client got headers:\n%v\nnet/http read:\n%v\ninput:\n%q", got.Header, wantHeader, data)
		}
		if !maps.EqualFunc(got.Trailer, want.Trailer, slices.Equal) {
			t.Errorf("client got trailers %v, net/http %v:\n%q", got.Trailer, want.Trailer, data)
		}
	})
}

// finalConnectionTokens lists the Connection header's tokens of the final
// response in data: ReadResponse drops that header when it says close.
func finalConnectionTokens(t *testing.T, data []byte) []string {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		status, err := tp.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			t.Fatal(err)
		}
		if _, code, _ := strings.Cut(status, " "); strings.HasPrefix(strings.TrimLeft(code, " "), "1") {
			continue
		}
		var tokens []string
		for _, v := range h["Connection"] {
			for _, tok := range strings.Split(v, ",") {
				tokens = append(tokens, strings.TrimSpace(tok))
			}
		}
		return tokens
	}
}
