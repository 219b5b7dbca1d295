package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// downFor is how long an upstream that refused a connection is skipped by
// round robin (it is still used when every upstream is down).
const downFor = time.Second

type upstream struct {
	addr string
	// downUntil is a UnixNano deadline; zero means healthy.
	downUntil atomic.Int64
}

// appGroup forwards the requests of one app to its upstreams, round robin.
// A new group is built on every table swap; requests in flight keep the
// group they started with, so old upstreams drain undisturbed.
type appGroup struct {
	app       string
	upstreams []*upstream
	next      atomic.Uint32
	rp        *httputil.ReverseProxy
	p         *Proxy
	// inflight counts requests inside ServeHTTP; retired is set when a newer
	// table replaced this group. Together they let WaitDrained know when no
	// request can reach this group's upstreams any more.
	inflight atomic.Int64
	retired  atomic.Bool
}

func newAppGroup(p *Proxy, app string, addrs []string) *appGroup {
	g := &appGroup{app: app, p: p}
	for _, a := range addrs {
		g.upstreams = append(g.upstreams, &upstream{addr: a})
	}
	g.rp = &httputil.ReverseProxy{
		Rewrite:      g.rewrite,
		Transport:    &retryingTransport{group: g, base: p.transport},
		BufferPool:   p.buffers,
		ErrorHandler: g.fail,
		ErrorLog:     p.errorLog,
	}
	return g
}

// pick returns the next upstream in round robin order, skipping upstreams
// that recently refused connections unless all of them did.
func (g *appGroup) pick() *upstream {
	n := uint32(len(g.upstreams))
	start := g.next.Add(1)
	var now int64
	for i := uint32(0); i < n; i++ {
		u := g.upstreams[(start+i)%n]
		until := u.downUntil.Load()
		if until == 0 {
			return u
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		if until < now {
			return u
		}
	}
	return g.upstreams[start%n]
}

func (g *appGroup) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.inflight.Add(1)
	if g.retired.Load() {
		// The request looked up an older table; serve it from the current
		// one so the upstreams being drained see nothing new.
		g.inflight.Add(-1)
		g.p.dispatch(w, r)
		return
	}
	defer g.inflight.Add(-1)
	if len(g.upstreams) == 0 {
		writePage(w, http.StatusBadGateway, "app "+g.app+" has no running containers\n")
		return
	}
	if !g.p.h2ViaReverseProxy && directH2(r) {
		g.serveH2(w, r)
		return
	}
	g.rp.ServeHTTP(w, r)
}

func (g *appGroup) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = g.pick().addr
	// httputil.ReverseProxy has already removed the client's X-Forwarded-*
	// headers from Out; X-Real-Ip is not on its list.
	h := pr.Out.Header
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		// One slice for both headers: nothing downstream appends to them.
		v := []string{ip}
		h["X-Forwarded-For"] = v
		h["X-Real-Ip"] = v
	} else {
		delete(h, "X-Real-Ip")
	}
	h["X-Forwarded-Host"] = []string{pr.In.Host}
	if pr.In.TLS != nil {
		h["X-Forwarded-Proto"] = protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

func (g *appGroup) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errClientBody) {
		g.p.log.Debug("client request body unreadable", "app", g.app, "host", r.Host, "err", err)
		writePage(w, http.StatusBadRequest, clientBodyMessage)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads an error page.
		w.WriteHeader(statusClientClosed)
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		g.p.log.Warn("upstream timeout", "app", g.app, "host", r.Host, "err", err)
		writePage(w, http.StatusGatewayTimeout, "app "+g.app+" did not answer in time\n")
		return
	}
	g.p.log.Warn("upstream error", "app", g.app, "host", r.Host, "err", err)
	writePage(w, http.StatusBadGateway, "app "+g.app+" is not answering\n")
}

// statusClientClosed is nginx's code for "client closed the request",
// only ever seen in the access log.
const statusClientClosed = 499

// retryingTransport retries a request without a body on another upstream
// when the connection is refused: nothing reached the app, so any method is
// safe to send again. This covers a container that stopped between the
// health check and the table swap.
type retryingTransport struct {
	group *appGroup
	base  http.RoundTripper
}

func (t *retryingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	tries := len(t.group.upstreams) - 1
	for err != nil && tries > 0 && r.Body == nil && isDialError(err) && r.Context().Err() == nil {
		t.group.markDown(r.URL.Host)
		tries--
		retry := *r
		u := *r.URL
		u.Host = t.group.pick().addr
		retry.URL = &u
		resp, err = t.base.RoundTrip(&retry)
		r = &retry
	}
	if err != nil && r.Body == nil && isDialError(err) {
		t.group.markDown(r.URL.Host)
	}
	return resp, err
}

func (g *appGroup) uses(addrs []string) bool {
	for _, u := range g.upstreams {
		for _, a := range addrs {
			if u.addr == a {
				return true
			}
		}
	}
	return false
}

func (g *appGroup) markDown(addr string) {
	for _, u := range g.upstreams {
		if u.addr == addr {
			u.downUntil.Store(time.Now().Add(downFor).UnixNano())
		}
	}
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// newTransport is the upstream connection pool shared by all apps, so idle
// keep-alive connections survive table swaps. HTTP/1.1 only: apps speak
// plain HTTP on loopback-like links, where h2c would only add framing cost.
func newTransport(responseHeaderTimeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through untouched.
		DisableCompression: true,
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
		WriteBufferSize:    16 << 10,
		ReadBufferSize:     16 << 10,
	}
}

// bufferPool lends the copy buffers of httputil.ReverseProxy. It pools
// array pointers so that Put, converting the slice back, allocates nothing.
type bufferPool struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.pool.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(p []byte) {
	if len(p) == copyBufferSize {
		b.pool.Put((*[copyBufferSize]byte)(p))
	}
}

// writePage answers with a short plain text page; errors must never look
// like an app's own content.
func writePage(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Content-Type-Options"] = noSniff
	h["Cache-Control"] = noStore
	h["Content-Length"] = []string{strconv.Itoa(len(text))}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
	noStore   = []string{"no-store"}
)

// stoppedApp answers for an app that exists but is stopped.
type stoppedApp struct{ app string }

func (s stoppedApp) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	writePage(w, http.StatusServiceUnavailable, "app "+s.app+" is stopped\n")
}
