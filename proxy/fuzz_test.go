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
	"strconv"
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

// TestFastPathAgreesWithNetHTTP holds one case for every disagreement the
// fuzz tests found, through a real proxy: what net/http refuses, the fast
// path hands over (requests) or refuses (responses) too.
func TestFastPathAgreesWithNetHTTP(t *testing.T) {
	var longExtensions strings.Builder
	for range 200 {
		longExtensions.WriteString("1;" + strings.Repeat("e", 100) + "\r\nx\r\n")
	}
	responses := map[string]string{
		"/ok":        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/http10te":  "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"/quote":     "HTTP/1.1 200 OK\r\n\"x\": 1\r\nContent-Length: 2\r\n\r\nok",
		"/spacename": "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\nok",
		"/verbatim":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2;ext=1\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n",
		"/spacesize": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nok\r\n0\r\n\r\n",
		"/barelf":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\n\n",
		"/datalf":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n",
		"/trailer":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Bad: a\x01b\r\n\r\n",
		"/trailerlf": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\n\r\n\r\n",
		"/onlylf":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\n\n",
		"/longext":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", maxChunkLine) + "\r\nok\r\n0\r\n\r\n",
		"/overhead":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + longExtensions.String() + "0\r\n\r\n",
	}
	app := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRawRequest(br)
		if err != nil {
			return
		}
		if resp, ok := responses[r.URL.Path]; ok {
			io.WriteString(c, resp)
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(r.RequestURI))+"\r\n\r\n"+r.RequestURI)
	})
	p := startProxy(t, Config{})
	p.SetRoutes([]Route{{App: "nh", Hosts: []string{"nh.apps.test"}, Upstreams: []string{app}}}, nil)

	tests := []struct {
		name   string
		uri    string
		status int
		body   string // what the client reads; "" with a 200: the body is cut short
	}{
		{"a bad %-escape in the path goes to net/http, which refuses it", "/%zz", 400, ""},
		{"a %-escape cut short goes to net/http, which refuses it", "/a%4", 400, ""},
		{"a bad %-escape in the query is the app's business", "/?q=%zz", 200, "/?q=%zz"},
		{"a sound response passes", "/ok", 200, "ok"},
		{"HTTP/1.0 with Transfer-Encoding is refused", "/http10te", 502, ""},
		{"a header name that is not a token is refused", "/quote", 502, ""},
		{"a space before a header's colon is refused", "/spacename", 502, ""},
		{"chunk extensions and trailers pass", "/verbatim", 200, "ok"},
		{"a chunk size after white space is cut", "/spacesize", 200, ""},
		{"chunk lines ended by a bare LF are cut", "/barelf", 200, ""},
		{"chunk data ended by a bare LF is cut", "/datalf", 200, ""},
		{"a trailer with a control character is cut", "/trailer", 200, ""},
		{"trailer lines ended by a bare LF pass with a CRLF CRLF in sight", "/trailerlf", 200, "ok"},
		{"trailer lines ended by a bare LF with no CRLF CRLF in sight are cut", "/onlylf", 200, ""},
		{"a chunk line over 4 KiB is cut", "/longext", 200, ""},
		{"framing beyond net/http's overhead limit is cut", "/overhead", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, p)
			rc.send(req("GET", "nh.apps.test", tc.uri))
			resp, err := http.ReadResponse(rc.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 && tc.body == "" {
				if err == nil {
					t.Fatalf("body %q read as complete, want it cut short", body)
				}
				return
			}
			if err != nil || (tc.body != "" && string(body) != tc.body) {
				t.Fatalf("body %q (%v), want %q", body, err, tc.body)
			}
		})
	}
}

func TestTokenChars(t *testing.T) {
	for c := range 256 {
		if got, want := isTokenChar(byte(c)), httpguts.IsTokenRune(rune(c)); got != want {
			t.Errorf("isTokenChar(%q) = %v, want %v", rune(c), got, want)
		}
	}
}
