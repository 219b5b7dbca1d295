// Package connlimit keeps clients from holding all of rosti's file
// descriptors: a Limiter wraps listeners so that the connections they
// hand out are counted against a budget shared by those listeners and a
// smaller one per client address, and an accept that fails for want of
// resources (EMFILE, ENFILE, ENOBUFS, ECONNABORTED) is logged and retried
// after a pause instead of ending the server. A connection over budget is
// closed as soon as it is accepted, before any work is done for it.
//
// The package owns no listener of its own and knows nothing of the
// protocols served; timeouts of connections that never send a byte belong
// to each server (proxy, sshd, API).
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Config bounds the connections of the listeners of one Limiter.
type Config struct {
	Name      string // for the log: "public", "api"
	MaxConns  int    // connections held at once by all its listeners; 0: no bound
	PerSource int    // connections held at once from one client address; 0: no bound
	Logger    *slog.Logger
}

// Limiter counts the connections of the listeners it wrapped.
type Limiter struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	total   int
	sources map[string]int

	// refused counts connections closed over budget since the last log
	// line about them, so that a flood logs a line a second, not one a
	// connection.
	refused    int
	lastLogged time.Time
}

// New returns a limiter; cfg.Logger may be nil.
func New(cfg Config) *Limiter {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Limiter{cfg: cfg, log: log.With("component", "connlimit", "limiter", cfg.Name), sources: map[string]int{}}
}

// Listen binds addr and wraps the listener; it has net.Listen's shape so
// that servers can take it as their way to listen.
func (l *Limiter) Listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return l.Wrap(ln), nil
}

// Wrap returns ln with its connections counted and bounded.
func (l *Limiter) Wrap(ln net.Listener) net.Listener {
	return &listener{Listener: ln, l: l, sleep: time.Sleep}
}

// InUse is the number of connections held now.
func (l *Limiter) InUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *Limiter) acquire(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.cfg.MaxConns > 0 && l.total >= l.cfg.MaxConns) || (l.cfg.PerSource > 0 && l.sources[source] >= l.cfg.PerSource) {
		l.refused++
		if now := time.Now(); now.Sub(l.lastLogged) >= time.Second {
			l.log.Warn("connections refused: over the limit", "refused", l.refused, "source", source,
				"from_source", l.sources[source], "per_source", l.cfg.PerSource, "total", l.total, "max", l.cfg.MaxConns)
			l.refused, l.lastLogged = 0, now
		}
		return false
	}
	l.total++
	l.sources[source]++
	return true
}

func (l *Limiter) release(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.sources[source]--; l.sources[source] <= 0 {
		delete(l.sources, source)
	}
}

type listener struct {
	net.Listener
	l     *Limiter
	sleep func(time.Duration)
}

// Accept returns the next connection within budget. Temporary accept
// errors are waited out here, so the server behind never sees them.
func (ln *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	var failedSince time.Time
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if !Temporary(err) {
				return nil, err
			}
			// Log the first failure of a streak, then every ten seconds.
			if now := time.Now(); failedSince.IsZero() || now.Sub(failedSince) >= 10*time.Second {
				ln.l.log.Warn("accept failed; slowing down", "addr", ln.Addr().String(), "err", err)
				failedSince = now
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			ln.sleep(delay)
			continue
		}
		delay, failedSince = 0, time.Time{}
		source := SourceOf(c.RemoteAddr())
		if !ln.l.acquire(source) {
			// Reset rather than a graceful close: nothing was said, and
			// the socket should not linger in TIME_WAIT.
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		release := func() { ln.l.release(source) }
		if tc, ok := c.(*net.TCPConn); ok {
			return &tcpConn{TCPConn: tc, release: release}, nil
		}
		return &conn{Conn: c, release: release}, nil
	}
}

// tcpConn keeps *net.TCPConn's methods (SyscallConn, CloseWrite,
// ReadFrom) visible to servers that look for them.
type tcpConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *tcpConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(c.release)
	return err
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Temporary reports whether an accept error is one a server should wait
// out: the process or the system ran out of descriptors or buffers, or a
// client went away before its connection was accepted.
func Temporary(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// SourceOf is the client address a connection is counted under: its IP.
func SourceOf(addr net.Addr) string {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
