package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The fast path serves the common case of HTTP/1.1 traffic, plain or on
// TLS (tlsfront.go): a request for an app, in origin form, with a
// Content-Length body or none.
// It parses the request head in place (a peek into the connection's read
// buffer), writes it with the forwarding headers rewritten to a pooled
// upstream connection, and copies the response head and body back with
// their own framing. It allocates almost nothing per request.
//
// Anything else (Upgrade, Expect, Transfer-Encoding, HTTP/1.0, absolute
// URIs, heads over frontReadBufferSize, anything not strictly well formed,
// the panel, unknown hosts, stopped apps, HTTPS redirects, ACME
// challenges) leaves the connection untouched and hands it to the net/http
// server, which then serves it to its end.

// frontConn is one client connection on the fast path.
type frontConn struct {
	f      *httpFront
	c      net.Conn
	io     io.ReadWriter // c's reads and writes (rawio.go)
	br     *bufio.Reader
	state  atomic.Int32
	ip     string // client IP for X-Forwarded-For
	remote string // ip:port for the access log
	// spans of the header lines to pass on, reused across requests.
	reqLines  []span
	respLines []span
	dropped   [][]byte // names listed in a response's Connection header
	// logLine is the access log line of the request in progress, begun
	// when it arrives and written when logPending and the answer is known.
	logLine    []byte
	logStart   time.Time
	logPending bool
}

type span struct{ start, end int }

var frontReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, frontReadBufferSize) }}
var frontWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}

func (fc *frontConn) serve() {
	f := fc.f
	fc.remote = fc.c.RemoteAddr().String()
	fc.ip = fc.remote
	if ip, _, err := net.SplitHostPort(fc.remote); err == nil {
		fc.ip = ip
	}
	fc.io = newRawIO(fc.c)
	// conn is what is closed at the end: on HTTPS the TLS connection, so
	// that the client gets a close_notify. fc.c stays the TCP connection,
	// for deadlines and for Shutdown to close.
	var conn net.Conn = fc.c
	if f.tls != nil {
		tc, raw := fc.startTLS()
		if tc == nil {
			f.untrack(fc)
			fc.c.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			raw.batch = newBatchWriter(fc.io)
			if f.p.h2ViaNetHTTP {
				f.untrack(fc)
				f.handoff.push(tc)
				return
			}
			fc.serveH2(tc)
			return
		}
		fc.io, conn = tc, tc
	}
	fc.br = frontReaders.Get().(*bufio.Reader)
	fc.br.Reset(fc.io)
	handed := false
	defer func() {
		f.untrack(fc)
		if !handed {
			conn.Close()
			fc.br.Reset(nil)
			frontReaders.Put(fc.br)
		}
	}()
	wait := readHeaderTimeout // a client that never sends a byte is not kept
	for {
		if fc.br.Buffered() == 0 {
			fc.c.SetReadDeadline(time.Now().Add(wait))
			if _, err := fc.br.Peek(1); err != nil {
				return
			}
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return // Shutdown closed it
		}
		keep, handoff := fc.serveRequest()
		if handoff {
			handed = true
			f.untrack(fc)
			fc.c.SetReadDeadline(time.Time{})
			hc := handedConn{Conn: conn, br: fc.br}
			if tc, ok := conn.(*tls.Conn); ok {
				f.handoff.push(&handedTLSConn{handedConn: hc, tc: tc})
			} else {
				f.handoff.push(&hc)
			}
			return
		}
		if !keep || f.closing.Load() {
			return
		}
		wait = clientIdleTimeout
		fc.state.Store(connIdle)
		if f.closing.Load() {
			return
		}
	}
}

// reqHead is what the fast path needs from a request head; the byte
// slices point into the connection's read buffer.
type reqHead struct {
	size          int    // bytes of the head, final CRLF included
	buf           []byte // the head
	line          []byte
	method, uri   []byte
	host          []byte
	contentLength int64
	close         bool
	// clientRequestID is the client's X-Request-Id, passed on as
	// X-Client-Request-Id; empty when missing, repeated or unsafe.
	clientRequestID []byte
	clientIDs       int
}

var crlfcrlf = []byte("\r\n\r\n")

// peekHead returns the complete request head, still unread in br; nil
// with a nil error means the head is too big for the fast path.
func (fc *frontConn) peekHead() ([]byte, error) {
	br := fc.br
	deadline := false
	scanned := 0
	for {
		n := br.Buffered()
		buf, _ := br.Peek(n)
		if i := bytes.Index(buf[max(0, scanned-3):], crlfcrlf); i >= 0 {
			return buf[:max(0, scanned-3)+i+4], nil
		}
		scanned = n
		if n >= br.Size() {
			return nil, nil
		}
		if !deadline {
			deadline = true
			fc.c.SetReadDeadline(time.Now().Add(readHeaderTimeout))
		}
		if _, err := br.Peek(n + 1); err != nil {
			return nil, err
		}
	}
}

// serveRequest serves one request. keep reports whether the connection
// can carry another; handoff that net/http must take the connection over
// with the request unread.
func (fc *frontConn) serveRequest() (keep, handoff bool) {
	buf, err := fc.peekHead()
	if err != nil {
		return false, false
	}
	if buf == nil {
		return false, true
	}
	var rq reqHead
	if !fc.parseRequest(buf, &rq) {
		return false, true
	}
	p := fc.f.p
	secure := fc.f.tls != nil
	if !secure && p.acme != nil && bytes.HasPrefix(rq.uri, acmeChallengePrefix) {
		return false, true
	}
	var hb [256]byte
	host, ok := normalizeHostBytes(rq.host, hb[:0])
	if !ok {
		return false, true
	}
	for {
		t := p.table.Load()
		s := t.lookupBytes(host)
		if s == nil {
			return false, true
		}
		g, ok := s.handler.(*appGroup)
		if !ok || len(g.upstreams) == 0 {
			return false, true
		}
		if s.tls && !secure && p.certReady(t, string(host)) {
			return false, true
		}
		g.inflight.Add(1)
		if g.retired.Load() {
			// Raced with a table swap: look again in the new table so
			// that the upstreams being drained see nothing new.
			g.inflight.Add(-1)
			continue
		}
		keep = fc.forward(g, &rq)
		g.inflight.Add(-1)
		return keep, false
	}
}

var acmeChallengePrefix = []byte("/.well-known/acme-challenge/")

// parseRequest accepts only a strict subset of HTTP/1.1 and fills rq;
// false sends the request to net/http, which knows every other case and
// how to reject malformed ones.
func (fc *frontConn) parseRequest(buf []byte, rq *reqHead) bool {
	rq.size, rq.buf = len(buf), buf
	rq.contentLength = -1
	i := bytes.IndexByte(buf, '\r')
	if i < 0 || buf[i+1] != '\n' {
		return false
	}
	rq.line = buf[:i]
	// METHOD SP /path SP HTTP/1.1
	sp := bytes.IndexByte(rq.line, ' ')
	if sp <= 0 || len(rq.line) < sp+11 {
		return false
	}
	rq.method = rq.line[:sp]
	for _, c := range rq.method {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	if string(rq.method) == http.MethodConnect {
		return false
	}
	rest := rq.line[sp+1:]
	if string(rest[len(rest)-9:]) != " HTTP/1.1" {
		return false
	}
	rq.uri = rest[:len(rest)-9]
	if len(rq.uri) == 0 || rq.uri[0] != '/' {
		return false
	}
	query := false
	for i, c := range rq.uri {
		switch {
		case c <= ' ' || c == 0x7f:
			return false
		case c == '?':
			query = true
		case c == '%' && !query:
			// net/http refuses a path with a bad escape (400).
			if i+2 >= len(rq.uri) || !isHex(rq.uri[i+1]) || !isHex(rq.uri[i+2]) {
				return false
			}
		}
	}
	fc.reqLines = fc.reqLines[:0]
	hosts := 0
	pos := i + 2
	for {
		e := bytes.IndexByte(buf[pos:], '\r')
		if e < 0 || buf[pos+e+1] != '\n' {
			return false
		}
		line := buf[pos : pos+e]
		start := pos
		pos += e + 2
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, c := range name {
			if !isTokenChar(c) {
				return false
			}
		}
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return false
			}
		}
		switch {
		case equalFold(name, "host"):
			hosts++
			rq.host = value
			fc.reqLines = append(fc.reqLines, span{start, start + e})
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || rq.contentLength >= 0 {
				return false
			}
			rq.contentLength = n
			fc.reqLines = append(fc.reqLines, span{start, start + e})
		case equalFold(name, "connection"):
			if !connectionTokens(value, &rq.close) {
				return false
			}
		case equalFold(name, "transfer-encoding"), equalFold(name, "upgrade"),
			equalFold(name, "expect"), equalFold(name, "te"), equalFold(name, "trailer"):
			return false
		case equalFold(name, "x-request-id"):
			if rq.clientIDs++; rq.clientIDs == 1 && validRequestIDBytes(value) {
				rq.clientRequestID = value
			} else {
				rq.clientRequestID = nil
			}
		case equalFold(name, "keep-alive"), equalFold(name, "x-client-request-id"), equalFold(name, "proxy-connection"),
			equalFold(name, "proxy-authorization"), equalFold(name, "proxy-authenticate"),
			equalFold(name, "x-forwarded-for"), equalFold(name, "x-forwarded-host"),
			equalFold(name, "x-forwarded-proto"), equalFold(name, "x-real-ip"),
			equalFold(name, "forwarded"):
			// hop-by-hop, or set by the proxy from the connection
		default:
			fc.reqLines = append(fc.reqLines, span{start, start + e})
		}
	}
	if hosts != 1 || len(rq.host) == 0 {
		return false
	}
	for _, c := range rq.host {
		if !isHostChar(c) {
			return false
		}
	}
	return true
}

// connectionTokens reads a request's Connection header: only close and
// keep-alive are handled here (other tokens name more hop-by-hop headers,
// and upgrade is for net/http).
func connectionTokens(v []byte, close *bool) bool {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = trimOWS(v[:i]), v[i+1:]
		} else {
			tok, v = trimOWS(v), nil
		}
		switch {
		case len(tok) == 0, equalFold(tok, "keep-alive"):
		case equalFold(tok, "close"):
			*close = true
		default:
			return false
		}
	}
	return true
}

// upstreamError is a failure to get a response head from the app.
type upstreamError struct {
	err     error
	retry   bool // nothing reached the app: safe to send again
	timeout bool
}

// forward sends the request to one of g's upstreams and copies the
// response back. It reports whether the client connection stays usable.
func (fc *frontConn) forward(g *appGroup, rq *reqHead) bool {
	p := fc.f.p
	var idb [64]byte
	reqID := p.ids.appendNext(idb[:0])
	if l := p.accessLog; l != nil {
		// The head is read past below: log what is needed from it now.
		fc.logStart = time.Now()
		fc.logLine = l.begin(fc.logLine[:0], fc.logStart, g.app, fc.remote, rq.method, rq.host, rq.uri, reqID)
		fc.logPending = true
	}
	_, _, keep := fc.exchange(g, rq, reqID)
	fc.logAccess(statusClientClosed, 0) // when nothing was answered
	return keep
}

// logAccess writes the pending access log line, once the answer is known.
func (fc *frontConn) logAccess(status int, n int64) {
	if !fc.logPending {
		return
	}
	fc.logPending = false
	fc.logLine = fc.f.p.accessLog.end(fc.logLine, status, n, time.Since(fc.logStart))
}

// exchange does the work of forward and returns the status and body bytes
// sent to the client for the access log.
func (fc *frontConn) exchange(g *appGroup, rq *reqHead, reqID []byte) (status int, sent int64, keep bool) {
	p := fc.f.p
	tr := p.transport
	headRead := false
	readHead := func() {
		if !headRead {
			headRead = true
			fc.br.Discard(rq.size)
		}
	}
	defer readHead()
	hasBody := rq.contentLength > 0
	isHead := string(rq.method) == http.MethodHead
	var hostBuf [256]byte
	hostCopy := append(hostBuf[:0], rq.host...)
	warn := func(msg string, err error) {
		p.log.Warn(msg, "app", g.app, "host", string(hostCopy), "err", err)
	}
	tries := len(g.upstreams)
	u := g.pick()
	var uc *upstreamConn
	var resp respHead
	for {
		var reused bool
		var err error
		uc, reused, err = tr.liveConn(u.addr, hasBody)
		if err != nil {
			if isDialError(err) {
				g.markDown(u.addr)
				if tries--; tries > 0 {
					u = g.pick()
					continue
				}
			}
			warn("upstream error", err)
			return fc.errorPage(http.StatusBadGateway, "app "+g.app+" is not answering\n", rq.close, isHead, hasBody)
		}
		uerr := fc.send(uc, rq, reqID, readHead)
		if uerr == nil {
			uerr = fc.readResponseHead(uc, tr, &resp)
		}
		if uerr == nil {
			break
		}
		uc.conn.Close()
		if uerr.retry && reused && !hasBody {
			continue // the app had closed this idle connection
		}
		if uerr.timeout {
			warn("upstream timeout", uerr.err)
			// The request was sent in full: the connection stays in step.
			return fc.errorPage(http.StatusGatewayTimeout, "app "+g.app+" did not answer in time\n", rq.close, isHead, false)
		}
		if uerr.err == errClientBody {
			// The app got part of a body on a connection now closed.
			return fc.errorPage(http.StatusBadRequest, clientBodyMessage, true, isHead, true)
		}
		warn("upstream error", uerr.err)
		return fc.errorPage(http.StatusBadGateway, "app "+g.app+" is not answering\n", rq.close, isHead, hasBody)
	}
	readHead()
	bw := frontWriters.Get().(*bufio.Writer)
	bw.Reset(fc.io)
	defer func() {
		bw.Reset(nil)
		frontWriters.Put(bw)
	}()
	keep = !rq.close && !fc.f.closing.Load()
	sent, keep, reusable, rerr, werr := fc.relayResponse(bw, uc, &resp, isHead, keep)
	fc.logAccess(resp.status, sent)
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil || !reusable {
		uc.conn.Close()
	} else {
		tr.put(u.addr, uc)
	}
	if rerr != nil {
		warn("upstream error in response body", rerr)
		keep = false
	}
	if werr != nil {
		keep = false
	}
	return resp.status, sent, keep
}

// relayResponse writes the response head to bw and copies the body with
// its own framing. keep is whether the client connection may stay open;
// reusable whether the upstream connection is left at the start of the
// next response.
func (fc *frontConn) relayResponse(bw *bufio.Writer, uc *upstreamConn, resp *respHead, isHead, keep bool) (sent int64, keepClient, reusable bool, rerr, werr error) {
	noBody := isHead || resp.status == http.StatusNoContent || resp.status == http.StatusNotModified
	untilEOF := !noBody && !resp.chunked && resp.contentLength < 0
	if untilEOF {
		keep = false
	}
	fc.writeResponseHead(bw, uc, resp, !keep)
	uc.br.Discard(resp.size)
	reusable = !resp.close
	switch {
	case noBody:
	case resp.chunked:
		sent, rerr, werr = copyChunked(bw, uc.br)
	default:
		if untilEOF {
			reusable = false
		}
		if resp.contentLength > int64(uc.br.Buffered()) || untilEOF {
			// The rest of the body may be slow to come: no deadline.
			uc.conn.SetReadDeadline(time.Time{})
		}
		sent, rerr, werr = copyBody(bw, uc.br, resp.contentLength)
		if untilEOF && rerr == io.EOF {
			rerr = nil
		}
	}
	// Bytes past the response (an app that sent a body with a 204 or a
	// HEAD answer) would be read as the next response: drop the connection.
	reusable = reusable && rerr == nil && werr == nil && uc.br.Buffered() == 0
	return sent, keep, reusable, rerr, werr
}

var errClientBody = errors.New("client request body incomplete")

// send writes the request head, with the forwarding headers rewritten,
// and its body.
func (fc *frontConn) send(uc *upstreamConn, rq *reqHead, reqID []byte, readHead func()) *upstreamError {
	bw := uc.bw
	head := rq.buf
	bw.Write(rq.line)
	bw.WriteString("\r\n")
	for _, l := range fc.reqLines {
		bw.Write(head[l.start:l.end])
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-For: ")
	bw.WriteString(fc.ip)
	bw.WriteString("\r\nX-Real-Ip: ")
	bw.WriteString(fc.ip)
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.Write(rq.host)
	if fc.f.tls != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ")
	}
	bw.Write(reqID)
	if len(rq.clientRequestID) > 0 {
		bw.WriteString("\r\nX-Client-Request-Id: ")
		bw.Write(rq.clientRequestID)
	}
	bw.WriteString("\r\n\r\n")
	if rq.contentLength > 0 {
		readHead()
		if rq.contentLength > int64(fc.br.Buffered()) {
			// Uploads may be slow: no deadline while the body comes.
			fc.c.SetReadDeadline(time.Time{})
		}
		_, rerr, werr := copyBody(bw, fc.br, rq.contentLength)
		if werr != nil {
			return &upstreamError{err: werr}
		}
		if rerr != nil {
			return &upstreamError{err: errClientBody}
		}
	}
	if err := bw.Flush(); err != nil {
		return &upstreamError{err: err, retry: rq.contentLength <= 0 && staleConnError(err)}
	}
	return nil
}

// respHead is the parsed head of an upstream response, in uc.br.
type respHead struct {
	size          int
	statusLine    []byte
	status        int
	contentLength int64
	chunked       bool
	close         bool
}

// readResponseHead waits (at most the upstream timeout) for the final
// response head, skipping 1xx responses.
func (fc *frontConn) readResponseHead(uc *upstreamConn, tr *upstreamTransport, rh *respHead) *upstreamError {
	if tr.responseHeaderTimeout > 0 {
		uc.conn.SetReadDeadline(time.Now().Add(tr.responseHeaderTimeout))
	}
	first := true
	for {
		buf, err := peekResponseHead(uc.br)
		if err != nil {
			ue := &upstreamError{err: err, retry: first && uc.br.Buffered() == 0 && staleConnError(err)}
			var ne net.Error
			ue.timeout = errors.As(err, &ne) && ne.Timeout()
			return ue
		}
		first = false
		if err := fc.parseResponse(buf, rh); err != nil {
			return &upstreamError{err: err}
		}
		if rh.status >= 200 {
			return nil
		}
		if rh.status == http.StatusSwitchingProtocols {
			return &upstreamError{err: errors.New("unexpected 101 Switching Protocols")}
		}
		uc.br.Discard(rh.size) // 1xx: wait for the final answer
	}
}

var errHeadTooBig = errors.New("response head too big")

// peekResponseHead returns the response head, ended by an empty line
// (CRLF or bare LF line ends), still unread in br.
func peekResponseHead(br *bufio.Reader) ([]byte, error) {
	scanned := 0
	for {
		n := br.Buffered()
		buf, _ := br.Peek(n)
		for i := scanned; i < n; i++ {
			if buf[i] != '\n' {
				continue
			}
			// An empty line: "\n\n" or "\n\r\n".
			if i+1 < n && buf[i+1] == '\n' {
				return buf[:i+2], nil
			}
			if i+2 < n && buf[i+1] == '\r' && buf[i+2] == '\n' {
				return buf[:i+3], nil
			}
		}
		scanned = max(0, n-2)
		if n >= br.Size() {
			return nil, errHeadTooBig
		}
		if _, err := br.Peek(n + 1); err != nil {
			return nil, err
		}
	}
}

// parseResponse reads the status and framing of a response head and
// notes the header lines to pass on.
func (fc *frontConn) parseResponse(buf []byte, rh *respHead) error {
	*rh = respHead{size: len(buf), contentLength: -1}
	fc.respLines = fc.respLines[:0]
	fc.dropped = fc.dropped[:0]
	pos := 0
	nextLine := func() []byte {
		e := bytes.IndexByte(buf[pos:], '\n')
		line := buf[pos : pos+e]
		pos += e + 1
		return bytes.TrimSuffix(line, []byte("\r"))
	}
	sl := nextLine()
	if len(sl) < 12 || string(sl[:7]) != "HTTP/1." || (sl[7] != '0' && sl[7] != '1') || sl[8] != ' ' ||
		(len(sl) > 12 && sl[12] != ' ') {
		return errors.New("malformed response status line")
	}
	status, err := strconv.Atoi(string(sl[9:12]))
	if err != nil || status < 100 {
		return errors.New("malformed response status")
	}
	rh.statusLine, rh.status = sl, status
	rh.close = sl[7] == '0'
	var connection []byte
	for {
		start := pos
		line := nextLine()
		if len(line) == 0 {
			break
		}
		if !validResponseHeaderLine(line) {
			return errors.New("malformed response header line")
		}
		colon := bytes.IndexByte(line, ':')
		name, value := line[:colon], trimOWS(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || (rh.contentLength >= 0 && n != rh.contentLength) {
				return errors.New("bad response Content-Length")
			}
			if rh.contentLength >= 0 {
				continue // the same length twice: pass it on once
			}
			rh.contentLength = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") || rh.chunked {
				return errors.New("unsupported response Transfer-Encoding")
			}
			rh.chunked = true
		case equalFold(name, "connection"):
			connection = value
			continue
		case equalFold(name, "keep-alive"), equalFold(name, "proxy-connection"),
			equalFold(name, "proxy-authenticate"), equalFold(name, "upgrade"), equalFold(name, "te"):
			continue
		}
		fc.respLines = append(fc.respLines, span{start, start + len(line)})
	}
	for len(connection) > 0 {
		var tok []byte
		if i := bytes.IndexByte(connection, ','); i >= 0 {
			tok, connection = trimOWS(connection[:i]), connection[i+1:]
		} else {
			tok, connection = trimOWS(connection), nil
		}
		switch {
		case len(tok) == 0, equalFold(tok, "keep-alive"):
		case equalFold(tok, "close"):
			rh.close = true
		default:
			fc.dropped = append(fc.dropped, tok)
		}
	}
	if rh.chunked && sl[7] == '0' {
		// net/http ignores Transfer-Encoding in HTTP/1.0; an app that
		// sends it is confused about its framing.
		return errors.New("Transfer-Encoding in an HTTP/1.0 response")
	}
	if rh.chunked && rh.contentLength >= 0 {
		// Transfer-Encoding wins; the length must not reach the client.
		rh.contentLength = -1
		kept := fc.respLines[:0]
		for _, l := range fc.respLines {
			if !hasName(buf[l.start:l.end], "content-length") {
				kept = append(kept, l)
			}
		}
		fc.respLines = kept
	}
	return nil
}

// validResponseHeaderLine accepts a "name: value" line (CRLF removed)
// that net/http's client reads as the same field: a token for the name
// (net/http also takes spaces in it, as in "Transfer-Encoding :", which
// other clients read otherwise), no folding, no control characters.
func validResponseHeaderLine(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	for _, c := range line[:colon] {
		if !isTokenChar(c) {
			return false
		}
	}
	for _, c := range line[colon+1:] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func hasName(line []byte, name string) bool {
	return len(line) > len(name) && line[len(name)] == ':' && equalFold(line[:len(name)], name)
}

// writeResponseHead writes the status line and the kept header lines.
func (fc *frontConn) writeResponseHead(bw *bufio.Writer, uc *upstreamConn, rh *respHead, close bool) {
	head, _ := uc.br.Peek(rh.size)
	bw.WriteString("HTTP/1.1 ")
	bw.Write(rh.statusLine[9:])
	bw.WriteString("\r\n")
next:
	for _, l := range fc.respLines {
		line := head[l.start:l.end]
		for _, d := range fc.dropped {
			if len(line) > len(d) && line[len(d)] == ':' && bytes.EqualFold(line[:len(d)], d) {
				continue next
			}
		}
		bw.Write(line)
		bw.WriteString("\r\n")
	}
	if close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// errorPage answers like writePage. A request body left unread makes the
// connection unusable.
func (fc *frontConn) errorPage(status int, text string, reqClose, isHead, bodyUnread bool) (int, int64, bool) {
	keep := !reqClose && !bodyUnread && !fc.f.closing.Load()
	bw := frontWriters.Get().(*bufio.Writer)
	bw.Reset(fc.io)
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteString(" ")
	bw.WriteString(http.StatusText(status))
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nDate: ")
	bw.WriteString(time.Now().UTC().Format(http.TimeFormat))
	bw.WriteString("\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(text)))
	if !keep {
		bw.WriteString("\r\nConnection: close")
	}
	bw.WriteString("\r\n\r\n")
	if !isHead {
		bw.WriteString(text)
	}
	fc.logAccess(status, int64(len(text)))
	err := bw.Flush()
	bw.Reset(nil)
	frontWriters.Put(bw)
	return status, int64(len(text)), keep && err == nil
}

// copyBody copies n bytes (n < 0: up to EOF) from src to dst, flushing dst
// whenever src has nothing buffered and the rest would not fit in dst, so
// streams are never held back.
func copyBody(dst *bufio.Writer, src *bufio.Reader, n int64) (written int64, rerr, werr error) {
	for n != 0 {
		if src.Buffered() == 0 {
			// What is written so far goes out while we wait, unless the
			// rest fits beside it: a small answer whose app wrote the head
			// and the body apart (Go's sendfile does) then leaves in one
			// write, not two.
			if n < 0 || n > int64(dst.Available()) {
				if werr = dst.Flush(); werr != nil {
					return
				}
			}
			if _, rerr = src.Peek(1); rerr != nil {
				if rerr == io.EOF && n > 0 {
					rerr = io.ErrUnexpectedEOF
				}
				return
			}
		}
		k := src.Buffered()
		if n > 0 && int64(k) > n {
			k = int(n)
		}
		b, _ := src.Peek(k)
		if _, werr = dst.Write(b); werr != nil {
			return
		}
		src.Discard(k)
		written += int64(k)
		if n > 0 {
			n -= int64(k)
		}
	}
	return
}

// Limits of a chunked body, net/http's (net/http/internal/chunked.go and
// body.readTrailer): what the fast path passes on verbatim, a client built
// on net/http must be able to read.
const (
	maxChunkLine     = 4096     // a chunk-size line, CRLF excluded, is shorter
	maxChunkOverhead = 16 << 10 // extensions and framing beyond 16 bytes per chunk plus twice its data
	maxTrailers      = 4096     // the trailer section, its final CRLF included
)

var (
	errChunkLine     = errors.New("malformed chunk size line")
	errChunkOverhead = errors.New("chunked encoding has too much non-data")
	errChunkEnd      = errors.New("malformed chunk end")
	errTrailer       = errors.New("malformed chunked trailer")
)

// copyChunked copies a chunked body verbatim (chunk extensions and
// trailers included) and counts the payload bytes. It takes only what
// net/http's chunked reader takes: CRLF line ends, a bare hex size, and
// no more framing overhead than it allows.
func copyChunked(dst *bufio.Writer, src *bufio.Reader) (payload int64, rerr, werr error) {
	var excess int64
	for {
		var line []byte
		line, rerr, werr = readLineFlushing(dst, src)
		if rerr != nil || werr != nil {
			return
		}
		size, ok := parseChunkSize(line)
		if !ok {
			rerr = errChunkLine
			return
		}
		excess += int64(len(line)) - 16 - 2*size
		excess = max(excess, 0)
		if excess > maxChunkOverhead {
			rerr = errChunkOverhead
			return
		}
		if _, werr = dst.Write(line); werr != nil {
			return
		}
		if size == 0 {
			rerr, werr = copyTrailers(dst, src)
			return
		}
		var n int64
		n, rerr, werr = copyBody(dst, src, size)
		payload += n
		if rerr != nil || werr != nil {
			return
		}
		line, rerr, werr = readLineFlushing(dst, src)
		if rerr != nil || werr != nil {
			return
		}
		if string(line) != "\r\n" {
			rerr = errChunkEnd
			return
		}
		if _, werr = dst.Write(line); werr != nil {
			return
		}
	}
}

// copyTrailers copies the trailer fields after the last chunk and the
// empty line that ends the body, as net/http reads them: a section other
// than the bare CRLF only when the CRLF CRLF that ends a header section is
// in sight already, and then with lines that may end in a bare LF, as in
// any header section. Every line goes on ending in CRLF, which is what a
// client's net/http then reads the same way.
func copyTrailers(dst *bufio.Writer, src *bufio.Reader) (rerr, werr error) {
	if src.Buffered() < 2 {
		if werr = dst.Flush(); werr != nil {
			return
		}
	}
	if start, _ := src.Peek(2); !bytes.Equal(start, crlf) {
		// The look ahead may wait for the app: what is held goes out first.
		if werr = dst.Flush(); werr != nil {
			return
		}
		if !doubleCRLFAhead(src) {
			return errTrailer, nil
		}
	}
	total := 0
	for {
		var line []byte
		line, rerr, werr = readLineFlushing(dst, src)
		if rerr != nil || werr != nil {
			return
		}
		if total += len(line); total > maxTrailers {
			return errTrailer, nil
		}
		field := bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(field) > 0 && !validResponseHeaderLine(field) {
			return errTrailer, nil
		}
		if _, werr = dst.Write(field); werr != nil {
			return
		}
		if _, werr = dst.Write(crlf); werr != nil || len(field) == 0 {
			return
		}
	}
}

var crlf = []byte("\r\n")

// doubleCRLFAhead is net/http's seeUpcomingDoubleCRLF: whether a CRLF
// CRLF comes before src's buffer is full or its input ends.
func doubleCRLFAhead(src *bufio.Reader) bool {
	for n := 4; ; n++ {
		buf, err := src.Peek(n)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// readLineFlushing reads one line (terminator included), flushing dst
// first when the line is not buffered yet.
func readLineFlushing(dst *bufio.Writer, src *bufio.Reader) (line []byte, rerr, werr error) {
	buf, _ := src.Peek(src.Buffered())
	if bytes.IndexByte(buf, '\n') < 0 {
		if werr = dst.Flush(); werr != nil {
			return
		}
	}
	line, rerr = src.ReadSlice('\n')
	if rerr == io.EOF {
		rerr = io.ErrUnexpectedEOF
	}
	return
}

// parseChunkSize reads a chunk-size line, CRLF included: hex digits,
// optional white space, then any extension after ';'.
func parseChunkSize(line []byte) (int64, bool) {
	// One CR, the one of the CRLF.
	if !bytes.HasSuffix(line, crlf) || bytes.IndexByte(line, '\r') != len(line)-2 || len(line)-2 >= maxChunkLine {
		return 0, false
	}
	line = line[:len(line)-2]
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with lower, a lower case ASCII string.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool { return tokenChars[c] }

// tokenChars is a lookup table, not a switch: header names are checked
// byte by byte on every request and response.
var tokenChars = [256]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true, '+': true,
	'-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isHostChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '.', '-', '_', ':', '[', ']':
		return true
	}
	return false
}

// normalizeHostBytes is normalizeHost into buf; false when the name does
// not fit.
func normalizeHostBytes(h, buf []byte) ([]byte, bool) {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = bytes.TrimSuffix(h, []byte("."))
	if len(h) > cap(buf) {
		return nil, false
	}
	for _, c := range h {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf, true
}

func validRequestIDBytes(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

// liveConn takes a pooled connection to addr, or dials one. For a request
// with a body, which cannot be sent again, a pooled connection the app
// has already closed is skipped.
func (t *upstreamTransport) liveConn(addr string, hasBody bool) (*upstreamConn, bool, error) {
	for {
		c, reused, err := t.conn(context.Background(), addr)
		if err != nil || !reused || !hasBody || connAlive(c.conn) {
			return c, reused, err
		}
		c.conn.Close()
	}
}

// connAlive peeks at an idle connection without blocking: an idle
// upstream connection that is readable was closed (or spoilt) by the app.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	alive := true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN
		return true
	})
	return alive && err == nil
}
