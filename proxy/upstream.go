package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// upstreamTransport is the HTTP/1.1 client to app containers. Unlike
// http.Transport, which hands every request to a writer and a reader
// goroutine per connection, it writes the request and reads the response
// headers on the calling goroutine: on a 2-core VPS those goroutine
// switches cost a fifth of the proxy's CPU. Protocol upgrades (websockets)
// go to the standard transport, which knows how to hand over the raw
// connection.
type upstreamTransport struct {
	dialer                net.Dialer
	responseHeaderTimeout time.Duration
	upgrades              *http.Transport

	mu   sync.Mutex
	idle map[string][]*upstreamConn
}

// Keep-alive pool limits: enough idle connections per upstream for a few
// thousand concurrent requests, and none kept long past a typical app
// server's own idle timeout.
const (
	maxIdlePerUpstream = 1024
	idleTimeout        = 55 * time.Second
)

type upstreamConn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

func newUpstreamTransport(responseHeaderTimeout time.Duration) *upstreamTransport {
	return &upstreamTransport{
		dialer:                net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		responseHeaderTimeout: responseHeaderTimeout,
		upgrades:              newTransport(responseHeaderTimeout),
		idle:                  map[string][]*upstreamConn{},
	}
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, upgrade := req.Header["Upgrade"]; upgrade {
		return t.upgrades.RoundTrip(req)
	}
	// A body the client cannot finish is the client's fault, not the app's.
	var body *clientBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &clientBody{ReadCloser: req.Body}
		sent := *req // RoundTrip must not change the caller's request
		sent.Body = body
		req = &sent
	}
	for {
		c, reused, err := t.conn(req.Context(), req.URL.Host)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		resp, err := t.exchange(c, req)
		if err == nil {
			return resp, nil
		}
		c.conn.Close()
		if body != nil && body.failed.Load() {
			return nil, fmt.Errorf("%w: %w", errClientBody, err)
		}
		// An idle connection the app closed fails before anything was
		// processed; a request without a body is then safe to send again
		// on a fresh connection.
		if reused && req.Body == nil && req.Context().Err() == nil && staleConnError(err) {
			continue
		}
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
}

func staleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// clientBody notes that the client's request body could not be read
// (malformed chunks, or cut short).
type clientBody struct {
	io.ReadCloser
	failed atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

// clientBodyMessage answers a request whose body the proxy could not read;
// the upstream connection it was being sent on is closed, never reused.
const clientBodyMessage = "the request body is malformed or incomplete\n"

// exchange writes req and reads the response headers. The response body
// returns the connection to the pool once read to the end.
func (t *upstreamTransport) exchange(c *upstreamConn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// A client that goes away unblocks the exchange by expiring the
	// connection's deadline.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(aLongTimeAgo) })
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	if t.responseHeaderTimeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(t.responseHeaderTimeout))
	}
	resp, err := readFinalResponse(c.br, req)
	if err != nil {
		stop()
		return nil, err
	}
	if t.responseHeaderTimeout > 0 {
		c.conn.SetReadDeadline(time.Time{})
	}
	body := &upstreamBody{ReadCloser: resp.Body, c: c, t: t, host: req.URL.Host, stop: stop,
		reusable: !resp.Close && !req.Close}
	body.eof = resp.Body == http.NoBody
	resp.Body = body
	return resp, nil
}

// readFinalResponse skips 1xx informational responses (such as 100
// Continue) and returns the final one.
func readFinalResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// conn takes an idle connection to addr or dials a new one.
func (t *upstreamTransport) conn(ctx context.Context, addr string) (*upstreamConn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[addr]; len(list) > 0; list = t.idle[addr] {
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		if now.Sub(c.lastUsed) < idleTimeout {
			t.mu.Unlock()
			return c, true, nil
		}
		c.conn.Close()
	}
	t.mu.Unlock()
	nc, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	rw := newRawIO(nc)
	return &upstreamConn{conn: nc, br: bufio.NewReaderSize(rw, 16<<10), bw: bufio.NewWriterSize(rw, 8<<10)}, false, nil
}

func (t *upstreamTransport) put(addr string, c *upstreamConn) {
	c.lastUsed = time.Now()
	t.mu.Lock()
	if list := t.idle[addr]; len(list) < maxIdlePerUpstream {
		t.idle[addr] = append(list, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.conn.Close()
}

// CloseIdleConnections closes every pooled connection.
func (t *upstreamTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*upstreamConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.conn.Close()
		}
	}
	t.upgrades.CloseIdleConnections()
}

// upstreamBody gives the connection back to the pool when the body was
// read to its end, and closes it otherwise: draining an unfinished body
// (an endless SSE stream) could block forever.
type upstreamBody struct {
	io.ReadCloser
	c        *upstreamConn
	t        *upstreamTransport
	host     string
	stop     func() bool
	eof      bool
	reusable bool
	closed   bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	// stop reports false when the client already went away and the
	// deadline was (or is being) expired: the connection is spoilt.
	stopped := b.stop()
	if b.eof && b.reusable && stopped {
		err := b.ReadCloser.Close()
		b.t.put(b.host, b.c)
		return err
	}
	b.c.conn.Close()
	return b.ReadCloser.Close()
}
