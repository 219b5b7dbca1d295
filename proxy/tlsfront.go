package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// The HTTPS listener runs the same front as the HTTP one (front.go,
// fastpath.go) with a TLS handshake first, in the connection's own
// goroutine. A client that negotiated HTTP/2 (ALPN h2) is served to the
// end by the proxy's own HTTP/2 front (h2front.go). HTTP/1.1 on TLS takes
// the fast path;
// what the fast path leaves is handed over as on plain HTTP, with the TLS
// state attached so that net/http sets Request.TLS.

// tlsHandshakeTimeout bounds the handshake as net/http's server did
// (its ReadHeaderTimeout).
const tlsHandshakeTimeout = readHeaderTimeout

// h2Protos are the ALPN protocols offered: HTTP/2 first, as browsers and
// nginx with http2 on prefer it.
var h2Protos = []string{"h2", "http/1.1"}

// newTLSConfig is the one TLS configuration of the HTTPS listener, for
// the life of the proxy: crypto/tls then issues session tickets under
// keys it makes and rotates itself (a new key every 24 hours, each
// accepted for 7 days, in memory only: nginx without
// ssl_session_ticket_key also keeps its keys in memory, and since 1.23.2
// rotates them hourly), so a client coming back resumes its session with
// no signature and no certificate sent.
func newTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		GetCertificate: getCert,
		NextProtos:     h2Protos,
		MinVersion:     tls.VersionTLS12,
	}
}

// rawNetConn is a TCP connection whose reads and writes go through rawIO,
// for crypto/tls to sit on. An HTTP/2 connection's writes are batched
// (batch set once the handshake chose h2, before any other use).
type rawNetConn struct {
	net.Conn
	rw    io.ReadWriter
	batch *batchWriter
}

func (c *rawNetConn) Read(b []byte) (int, error) { return c.rw.Read(b) }

func (c *rawNetConn) Write(b []byte) (int, error) {
	if c.batch != nil {
		return c.batch.Write(b)
	}
	return c.rw.Write(b)
}

// Close sends what is batched first. crypto/tls closes by sending its
// close_notify under a write deadline of a few seconds, then setting the
// deadline to now: a client that does not read holds Close that long at
// most.
func (c *rawNetConn) Close() error {
	if c.batch != nil {
		c.batch.drain()
	}
	return c.Conn.Close()
}

// SetWriteDeadline, with a deadline already past (crypto/tls's way to
// end writing), first sends what was written before it.
func (c *rawNetConn) SetWriteDeadline(t time.Time) error {
	c.drainBefore(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *rawNetConn) SetDeadline(t time.Time) error {
	c.drainBefore(t)
	return c.Conn.SetDeadline(t)
}

func (c *rawNetConn) drainBefore(t time.Time) {
	if c.batch != nil && !t.IsZero() && !t.After(time.Now()) {
		c.batch.drain()
	}
}

// startTLS runs the server handshake on fc's connection and returns it
// and the connection under it; nil when it failed (the failure is logged at debug level, as net/http does).
func (fc *frontConn) startTLS() (*tls.Conn, *rawNetConn) {
	raw := &rawNetConn{Conn: fc.c, rw: fc.io}
	tc := tls.Server(raw, fc.f.tls)
	fc.c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		fc.f.p.errorLog.Printf("http: TLS handshake error from %s: %v", fc.remote, err)
		return nil, nil
	}
	fc.c.SetDeadline(time.Time{})
	return tc, raw
}

// looksLikeHTTP is net/http's test of a plain HTTP request sent to the
// HTTPS port.
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"} {
		if bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}

// handedTLSConn is a TLS connection handed to net/http with the fast
// path's buffered bytes in front. net/http recognises only a *tls.Conn
// itself as TLS; ConnectionState makes it set Request.TLS all the same.
type handedTLSConn struct {
	handedConn
	tc *tls.Conn
}

func (c *handedTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// h2Limits are those of net/http's HTTP/2 server, which serves HTTP/2
// only in tests that compare it with the own front (h2front.go keeps the
// same limits): the server's MaxHeaderBytes bounds a request's header
// list and its IdleTimeout an idle connection, as for HTTP/1.1; a
// connection carries at most as many concurrent streams as nginx allows
// (128), each a request in flight to an app.
func h2Limits() *http.HTTP2Config {
	return &http.HTTP2Config{MaxConcurrentStreams: h2MaxStreams}
}

// batchWriter sends writes from another goroutine, so that writes made
// while one is in progress leave together: the TLS records of several
// HTTP/2 streams' answers, each flushed by its own goroutine, leave in one
// system call and TCP segment, as nginx writes them (without it the own
// HTTP/2 front cost 37-43 µs per request instead of 29-32). The goroutine
// that sends yields once first, so that handlers ready to answer can add
// their frames; with nothing else to run that costs nothing.
//
// At most maxBatch bytes wait; past that a write blocks until they are
// sent, so a client that stops reading holds its connection's handlers
// as before. A failed send fails the next write.
type batchWriter struct {
	w io.Writer

	mu       sync.Mutex
	cond     sync.Cond // signalled when a send ends
	buf      []byte
	spare    []byte
	sending  bool
	err      error
	sendFunc func()
}

const (
	maxBatch        = 256 << 10
	keptBatchBuffer = 32 << 10
)

func newBatchWriter(w io.Writer) *batchWriter {
	b := &batchWriter{w: w}
	b.cond.L = &b.mu
	b.sendFunc = b.send
	return b
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.buf) >= maxBatch {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	if !b.sending {
		b.sending = true
		go b.sendFunc()
	}
	return len(p), nil
}

func (b *batchWriter) send() {
	runtime.Gosched()
	b.mu.Lock()
	for len(b.buf) > 0 && b.err == nil {
		out := b.buf
		b.buf = b.spare[:0]
		b.mu.Unlock()
		_, err := b.w.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
		}
		b.cond.Broadcast()
	}
	b.sending = false
	// An idle connection does not keep the buffers of a big answer.
	if cap(b.spare) > keptBatchBuffer {
		b.spare = nil
	}
	if cap(b.buf) > keptBatchBuffer {
		b.buf = nil
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

// drain waits until what was written is sent (or failed).
func (b *batchWriter) drain() {
	b.mu.Lock()
	for b.sending {
		b.cond.Wait()
	}
	b.mu.Unlock()
}
