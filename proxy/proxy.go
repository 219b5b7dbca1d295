package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what the proxy needs from the operator's flags.
type Config struct {
	// HTTPAddr and HTTPSAddr are listen addresses (":80", ":443"); an empty
	// HTTPSAddr disables TLS (mode http). Tests use "127.0.0.1:0".
	HTTPAddr, HTTPSAddr string
	// DataDir holds certmagic's storage in DataDir/certmagic.
	DataDir   string
	ACMEEmail string
	// ACMECA is the ACME directory URL; empty means Let's Encrypt production.
	ACMECA string
	// ACMERoots, when set, is the only trust for the ACME CA's own HTTPS
	// endpoint (a test CA such as Pebble).
	ACMERoots *x509.CertPool
	// ACMEResolver is a DNS resolver address handed to the ACME client.
	ACMEResolver string
	// UpstreamTimeout bounds the wait for an upstream's response headers;
	// past it the client gets 504. Zero means one minute.
	UpstreamTimeout time.Duration
	// AccessLog gets one line per proxied request, in one Write, from the
	// request's goroutine, so it should buffer (internal/logbuf); nil
	// disables access logging.
	AccessLog io.Writer
	Logger    *slog.Logger
	// Listen binds the HTTP and HTTPS addresses; rosti passes one that
	// bounds connections per client and in total (internal/connlimit).
	// Nil is net.Listen.
	Listen func(network, addr string) (net.Listener, error)
}

// Route maps host names to the web containers of one app.
type Route struct {
	App string
	// Hosts are exact names and wildcards "*.example.com".
	Hosts []string
	// Upstreams are "ip:port" of healthy web containers.
	Upstreams []string
	// TLS asks for ACME certificates for the non-wildcard hosts and
	// redirects plain HTTP to HTTPS once a certificate exists.
	TLS bool
	// Stopped answers 503 "app is stopped" instead of proxying.
	Stopped bool
}

// Cert is an uploaded certificate; it wins over ACME for its hosts. Empty
// Hosts means the certificate's own DNS names.
type Cert struct {
	Hosts           []string
	CertPEM, KeyPEM []byte
}

// Proxy is the HTTP(S) front of every app and the panel.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	errorLog  *log.Logger
	transport *upstreamTransport
	buffers   *bufferPool
	ids       *requestIDs
	accessLog *accessLog // nil without an access log
	writers   sync.Pool
	// h2ViaReverseProxy sends every HTTP/2 request through
	// httputil.ReverseProxy (h2direct.go), for tests to compare.
	h2ViaReverseProxy bool
	// h2ViaNetHTTP hands HTTP/2 connections to net/http's HTTP/2 server
	// instead of the proxy's own (h2front.go), for tests to compare.
	h2ViaNetHTTP bool

	table atomic.Pointer[table]
	acme  *acme // nil when HTTPSAddr is empty

	mu       sync.Mutex // guards the fields below and table rebuilds
	routes   []Route
	certs    []Cert
	panel    panel
	httpSrv  *http.Server
	httpsSrv *http.Server
	// front serves httpLn and tlsFront httpsLn: the fast path, handing
	// other connections to httpSrv and httpsSrv.
	front    *httpFront
	tlsFront *httpFront

	httpLn  net.Listener
	httpsLn net.Listener
	ready   chan struct{}
	stopped bool
	// redirectPort is the ":port" suffix of HTTPS redirects, empty for 443;
	// written once before the listeners serve.
	redirectPort string
	// retired are app groups of replaced tables that may still have
	// requests in flight.
	retired []*appGroup
}

type panel struct {
	hosts   []string
	handler http.Handler
	tls     bool
}

// New checks cfg and prepares the proxy; nothing listens until Serve.
func New(cfg Config) (*Proxy, error) {
	if cfg.HTTPAddr == "" {
		return nil, errors.New("proxy: HTTPAddr is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = time.Minute
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	l := cfg.Logger.With("component", "proxy")
	p := &Proxy{
		cfg:       cfg,
		log:       l,
		errorLog:  slog.NewLogLogger(l.Handler(), slog.LevelDebug),
		transport: newUpstreamTransport(cfg.UpstreamTimeout),
		buffers:   newBufferPool(),
		ids:       newRequestIDs(),
		ready:     make(chan struct{}),
	}
	p.writers.New = func() any { return new(loggingWriter) }
	if cfg.AccessLog != nil {
		p.accessLog = newAccessLog(cfg.AccessLog)
	}
	if cfg.HTTPSAddr != "" {
		if cfg.DataDir == "" {
			return nil, errors.New("proxy: DataDir is required for HTTPS")
		}
		p.acme = newACME(cfg, cfg.Logger.With("component", "certmagic"))
	}
	p.table.Store(&table{})
	return p, nil
}

// SetRoutes replaces the routing table and the uploaded certificates in one
// atomic swap, then starts (in the background, with retries) ACME issuance
// for TLS hosts that have no certificate yet and stops managing hosts that
// left the table. Requests in flight finish on the upstreams they started
// with.
func (p *Proxy) SetRoutes(routes []Route, certs []Cert) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.routes = append([]Route(nil), routes...)
	p.certs = append([]Cert(nil), certs...)
	p.rebuildLocked()
}

// SetPanel serves h (the API and web UI) for hosts, with certificates like
// an app when tls is set. Panel hosts win over app hosts.
func (p *Proxy) SetPanel(hosts []string, h http.Handler, tls bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.panel = panel{hosts: append([]string(nil), hosts...), handler: h, tls: tls}
	p.rebuildLocked()
}

func (p *Proxy) rebuildLocked() {
	t := &table{
		exact:     map[string]*site{},
		wildcard:  map[string]*site{},
		uploaded:  map[string]*tls.Certificate{},
		acmeHosts: map[string]bool{},
	}
	for _, c := range p.certs {
		cert, names, err := parseCert(c)
		if err != nil {
			p.log.Error("uploaded certificate skipped", "hosts", c.Hosts, "err", err)
			continue
		}
		for _, n := range names {
			t.uploaded[n] = cert
		}
	}
	add := func(host string, s *site) {
		host = normalizeHost(host)
		if host == "" {
			return
		}
		m, key := t.exact, host
		if suffix, ok := strings.CutPrefix(host, "*."); ok {
			m, key = t.wildcard, suffix
		}
		if prev := m[key]; prev != nil {
			p.log.Warn("host claimed twice, first wins", "host", host, "app", s.app, "kept", prev.app)
			return
		}
		m[key] = s
		if s.tls && key == host && p.acme != nil && t.uploadedCert(host) == nil {
			t.acmeHosts[host] = true
		}
	}
	if p.panel.handler != nil {
		s := &site{app: panelApp, handler: p.panel.handler, tls: p.panel.tls}
		for _, h := range p.panel.hosts {
			add(h, s)
		}
	}
	for _, r := range p.routes {
		s := &site{app: r.App, tls: r.TLS}
		if r.Stopped {
			s.handler = stoppedApp{app: r.App}
		} else {
			s.handler = newAppGroup(p, r.App, r.Upstreams)
		}
		for _, h := range r.Hosts {
			add(h, s)
		}
	}
	old := p.table.Swap(t)
	p.busyRetiredLocked(nil)
	for _, s := range old.exact {
		p.retire(s)
	}
	for _, s := range old.wildcard {
		p.retire(s)
	}
	if p.acme != nil {
		p.acme.sync(t.acmeHosts)
	}
}

func (p *Proxy) retire(s *site) {
	// A group idle once retired stays idle: new requests see the flag and
	// go to the current table.
	if g, ok := s.handler.(*appGroup); ok && !g.retired.Swap(true) && g.inflight.Load() > 0 {
		p.retired = append(p.retired, g)
	}
}

// panelApp names the panel in logs; it cannot clash with an app because
// app names are DNS labels.
const panelApp = "(panel)"

// ServeHTTP routes one request by its Host header.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil && p.acme != nil && p.acme.handleChallenge(w, r) {
		return
	}
	t := p.table.Load()
	host := normalizeHost(r.Host)
	s := t.lookup(host)
	if s == nil {
		writePage(w, http.StatusNotFound, "no app is served at this address\n")
		return
	}
	if s.tls && r.TLS == nil && p.certReady(t, host) {
		p.redirectToHTTPS(w, r, host)
		return
	}
	setRequestIDs(r.Header, p.ids.next())
	if p.accessLog == nil {
		s.handler.ServeHTTP(w, r)
		return
	}
	lw := p.writers.Get().(*loggingWriter)
	lw.ResponseWriter, lw.status, lw.bytes = w, 0, 0
	start := time.Now()
	s.handler.ServeHTTP(lw, r)
	p.logAccess(s.app, r, lw, start)
	lw.ResponseWriter = nil
	p.writers.Put(lw)
}

// setRequestIDs gives the request rosti's own id, and passes a client's
// (or a load balancer's) safe X-Request-Id on as X-Client-Request-Id: an
// id a client chose could collide with others' and mislead whoever reads
// the logs.
func setRequestIDs(h http.Header, id string) {
	delete(h, "X-Client-Request-Id")
	if client := h["X-Request-Id"]; len(client) == 1 && validRequestID(client[0]) {
		h["X-Client-Request-Id"] = client
	}
	h["X-Request-Id"] = []string{id}
}

// dispatch serves r from the current table without the redirect and
// logging steps that ServeHTTP already did.
func (p *Proxy) dispatch(w http.ResponseWriter, r *http.Request) {
	if s := p.table.Load().lookup(normalizeHost(r.Host)); s != nil {
		s.handler.ServeHTTP(w, r)
		return
	}
	writePage(w, http.StatusNotFound, "no app is served at this address\n")
}

// WaitDrained returns once no request is in flight, or can still start, to
// any of upstreams through a routing table that SetRoutes has replaced;
// after that the old containers can be stopped without failing a request.
func (p *Proxy) WaitDrained(ctx context.Context, upstreams []string) error {
	ticker := time.NewTicker(drainPollInterval)
	defer ticker.Stop()
	for {
		busy := p.busyRetired(upstreams)
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxy: %d requests still in flight to %v: %w", busy, upstreams, ctx.Err())
		case <-ticker.C:
		}
	}
}

const drainPollInterval = 20 * time.Millisecond

// busyRetired counts requests in retired groups that use any of addrs and
// forgets retired groups that have gone idle: a retired group hands every
// new request to the current table, so idle means idle for good.
func (p *Proxy) busyRetired(addrs []string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busyRetiredLocked(addrs)
}

func (p *Proxy) busyRetiredLocked(addrs []string) int64 {
	var busy int64
	kept := p.retired[:0]
	for _, g := range p.retired {
		n := g.inflight.Load()
		if n == 0 {
			continue
		}
		kept = append(kept, g)
		if g.uses(addrs) {
			busy += n
		}
	}
	clear(p.retired[len(kept):])
	p.retired = kept
	return busy
}

func (p *Proxy) certReady(t *table, host string) bool {
	if t.uploadedCert(host) != nil {
		return true
	}
	return t.acmeHosts[host] && p.acme.hasCert(host)
}

func (p *Proxy) redirectToHTTPS(w http.ResponseWriter, r *http.Request, host string) {
	target := "https://" + host + p.redirectPort + r.URL.RequestURI()
	w.Header()["Location"] = []string{target}
	w.WriteHeader(http.StatusPermanentRedirect)
}

// Ready is closed once both listeners are bound, so HTTPAddr and HTTPSAddr
// return the real addresses.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// HTTPAddr is the bound HTTP address, nil before Serve has bound it.
func (p *Proxy) HTTPAddr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.httpLn == nil {
		return nil
	}
	return p.httpLn.Addr()
}

// HTTPSAddr is the bound HTTPS address, nil before Serve has bound it or
// when HTTPS is disabled.
func (p *Proxy) HTTPSAddr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.httpsLn == nil {
		return nil
	}
	return p.httpsLn.Addr()
}

// drainTimeout bounds how long Serve waits for requests in flight once its
// context is done.
const drainTimeout = 30 * time.Second

// Serve binds the listeners, then serves until ctx is done and requests in
// flight have drained (at most drainTimeout), or a listener fails.
func (p *Proxy) Serve(ctx context.Context) error {
	if err := p.listen(); err != nil {
		return err
	}
	p.log.Info("started", "http", p.HTTPAddr().String(), "https", addrString(p.HTTPSAddr()))
	errc := make(chan error, 4)
	p.mu.Lock()
	httpSrv, httpsSrv, front, tlsFront := p.httpSrv, p.httpsSrv, p.front, p.tlsFront
	p.mu.Unlock()
	go func() { errc <- front.serve() }()
	go func() { errc <- httpSrv.Serve(front.handoff) }()
	servers := 2
	if httpsSrv != nil {
		servers += 2
		go func() { errc <- tlsFront.serve() }()
		go func() { errc <- httpsSrv.Serve(tlsFront.handoff) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		servers--
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	shutdownErr := p.Shutdown(drainCtx)
	for ; servers > 0; servers-- {
		if err := <-errc; serveErr == nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("proxy: serve: %w", serveErr)
	}
	return shutdownErr
}

func (p *Proxy) listen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.httpLn != nil || p.stopped {
		return errors.New("proxy: Serve called twice or after Shutdown")
	}
	httpLn, err := p.cfg.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("proxy: listen http: %w", err)
	}
	p.httpSrv = p.newServer()
	if p.cfg.HTTPSAddr != "" {
		httpsLn, err := p.cfg.Listen("tcp", p.cfg.HTTPSAddr)
		if err != nil {
			httpLn.Close()
			return fmt.Errorf("proxy: listen https: %w", err)
		}
		p.httpsLn = httpsLn
		if _, port, _ := net.SplitHostPort(httpsLn.Addr().String()); port != "443" {
			p.redirectPort = ":" + port
		}
		p.httpsSrv = p.newServer()
		// The handshakes happen in tlsFront; httpsSrv's own TLSConfig
		// only turns on its HTTP/2 server (it edits the config it gets,
		// so it gets one nobody handshakes with).
		p.httpsSrv.TLSConfig = &tls.Config{NextProtos: h2Protos, MinVersion: tls.VersionTLS12}
		p.httpsSrv.HTTP2 = h2Limits()
		p.tlsFront = newHTTPFront(p, httpsLn)
		p.tlsFront.tls = newTLSConfig(p.getCertificate)
		if err := p.acme.start(p.cfg.HTTPAddr, httpLn.Addr()); err != nil {
			httpLn.Close()
			httpsLn.Close()
			return err
		}
	}
	p.httpLn = httpLn
	p.front = newHTTPFront(p, httpLn)
	close(p.ready)
	if p.acme != nil {
		p.acme.sync(p.table.Load().acmeHosts)
	}
	return nil
}

// newServer sets timeouts that stop slow-header clients without cutting
// long websockets, SSE streams or big uploads (no Read/WriteTimeout).
func (p *Proxy) newServer() *http.Server {
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          p.errorLog,
	}
}

// Shutdown stops accepting, waits for requests in flight until ctx is
// done, and stops certificate management.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	srvs := []*http.Server{p.httpSrv, p.httpsSrv}
	fronts := []*httpFront{p.front, p.tlsFront}
	p.mu.Unlock()
	var errs []error
	for _, f := range fronts {
		if f != nil {
			if err := f.shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("proxy: shutdown: %w", err))
			}
		}
	}
	for _, s := range srvs {
		if s != nil {
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("proxy: shutdown: %w", err))
			}
		}
	}
	if p.acme != nil {
		p.acme.stop()
	}
	p.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
