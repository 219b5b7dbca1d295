package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosti-paas/rosti/internal/connlimit"
	"golang.org/x/net/http2"
)

// httpFront owns a listener, plain HTTP or HTTPS (tls set; tlsfront.go).
// Every connection starts on the fast path (fastpath.go); a connection
// whose request falls outside the strict subset the fast path handles is
// handed, with nothing consumed, to the net/http server (handoff), which
// keeps it to the end.
type httpFront struct {
	p       *Proxy
	ln      net.Listener
	tls     *tls.Config // nil: plain HTTP
	handoff *connQueue
	closing atomic.Bool

	mu    sync.Mutex
	conns map[*frontConn]struct{}
	h2    map[*h2Conn]struct{} // HTTP/2 connections, told to go away on shutdown
}

// Connection states, for Shutdown: an idle connection waits for a request
// and may be closed; an active one finishes its request first.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// Timeouts of the fast path, the same as the net/http server's: a new
// connection has readHeaderTimeout for its first request, as one between
// requests has clientIdleTimeout for the next.
const (
	readHeaderTimeout = 10 * time.Second
	clientIdleTimeout = 2 * time.Minute
)

// frontReadBufferSize bounds the request head the fast path parses; a
// bigger head goes to net/http, which allows up to MaxHeaderBytes.
const frontReadBufferSize = 8 << 10

func newHTTPFront(p *Proxy, ln net.Listener) *httpFront {
	return &httpFront{
		p:       p,
		ln:      ln,
		handoff: newConnQueue(ln.Addr()),
		conns:   map[*frontConn]struct{}{},
		h2:      map[*h2Conn]struct{}{},
	}
}

// serve accepts until the listener is closed.
func (f *httpFront) serve() error {
	var delay time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.closing.Load() {
				return http.ErrServerClosed
			}
			if connlimit.Temporary(err) {
				// Out of file descriptors and the like: back off as
				// net/http does; never end the proxy (and rosti) for it.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				f.p.log.Warn("accept failed; slowing down", "err", err, "pause", delay)
				time.Sleep(delay)
				continue
			}
			f.handoff.fail(err)
			return err
		}
		delay = 0
		fc := &frontConn{f: f, c: c}
		if !f.track(fc) {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

func (f *httpFront) track(fc *frontConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing.Load() {
		return false
	}
	f.conns[fc] = struct{}{}
	return true
}

// trackH2 notes an HTTP/2 connection; false when shutting down.
func (f *httpFront) trackH2(sc *h2Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h2[sc] = struct{}{}
	return !f.closing.Load()
}

func (f *httpFront) untrackH2(sc *h2Conn) {
	f.mu.Lock()
	delete(f.h2, sc)
	f.mu.Unlock()
}

func (f *httpFront) untrack(fc *frontConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
}

// shutdown stops accepting, closes idle connections and waits until the
// active ones have finished their request, or ctx is done.
func (f *httpFront) shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closing.Store(true)
	h2 := make([]*h2Conn, 0, len(f.h2))
	for sc := range f.h2 {
		h2 = append(h2, sc)
	}
	f.mu.Unlock()
	f.ln.Close()
	for _, sc := range h2 {
		sc.goAway(http2.ErrCodeNo)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if f.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes idle connections and counts the ones left.
func (f *httpFront) closeIdle() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) {
			fc.c.Close()
			delete(f.conns, fc)
		}
	}
	return len(f.conns)
}

// connQueue is the listener of the net/http server: it yields the
// connections the fast path hands over.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	err  atomic.Pointer[error]
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		if err := q.err.Load(); err != nil {
			return nil, *err
		}
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// fail ends the queue with the real listener's error.
func (q *connQueue) fail(err error) {
	q.err.Store(&err)
	q.Close()
}

func (q *connQueue) Addr() net.Addr { return q.addr }

func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}

// handedConn is a connection given to net/http with the bytes the fast
// path already buffered (and left unconsumed) in front.
type handedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *handedConn) Read(b []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(b)
		}
		c.br = nil
	}
	return c.Conn.Read(b)
}

// CloseWrite lets net/http half-close the connection as it does for
// plain TCP connections.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
