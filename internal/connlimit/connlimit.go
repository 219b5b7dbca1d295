// Package connlimit keeps clients from holding all of rosti's file
// descriptors: a Limiter wraps listeners so that the connections they
// hand out are counted against a budget shared by those listeners and a
// smaller one per client address, and an accept that fails for want of
// resources (EMFILE, ENFILE, ENOBUFS, ECONNABORTED) is logged and retried
// after a pause instead of ending the server. A connection over budget is
// closed as soon as it is accepted, before any work is done for it, or
// takes the place of one from the address that holds the most.
//
// The package owns no listener of its own and knows nothing of the
// protocols served; timeouts of connections that never send a byte belong
// to each server (proxy, sshd, API).
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"slices"
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
//
// When all of MaxConns are taken, a newcomer takes the place of the oldest
// connection of the address that holds the most, as long as that address
// holds more than the newcomer's would: a flood from many addresses then
// crowds out itself, not a client who connects once.
type Limiter struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	total   int
	sources map[string][]*tracked // oldest first

	// refused counts connections closed over budget since the last log
	// line about them, so that a flood logs a line a second, not one a
	// connection.
	refused    int
	lastLogged time.Time
}

// tracked is one connection counted by a Limiter.
type tracked struct {
	l      *Limiter
	source string
	conn   net.Conn // the accepted connection, closed when pushed out
	once   sync.Once
}

// New returns a limiter; cfg.Logger may be nil.
func New(cfg Config) *Limiter {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Limiter{cfg: cfg, log: log.With("component", "connlimit", "limiter", cfg.Name), sources: map[string][]*tracked{}}
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

// acquire counts c from source, or returns nil when it is over budget.
func (l *Limiter) acquire(c net.Conn, source string) *tracked {
	l.mu.Lock()
	held := len(l.sources[source])
	var pushedOut *tracked
	refuse := l.cfg.PerSource > 0 && held >= l.cfg.PerSource
	if !refuse && l.cfg.MaxConns > 0 && l.total >= l.cfg.MaxConns {
		var crowd []*tracked
		for _, conns := range l.sources {
			if len(conns) > len(crowd) {
				crowd = conns
			}
		}
		if len(crowd) > held+1 {
			pushedOut = crowd[0]
			l.removeLocked(pushedOut)
		} else {
			refuse = true
		}
	}
	if refuse || pushedOut != nil {
		l.refused++
		if now := time.Now(); now.Sub(l.lastLogged) >= time.Second {
			l.log.Warn("connections refused or pushed out: over the limit", "refused", l.refused, "source", source,
				"from_source", held, "per_source", l.cfg.PerSource, "total", l.total, "max", l.cfg.MaxConns)
			l.refused, l.lastLogged = 0, now
		}
	}
	if refuse {
		l.mu.Unlock()
		return nil
	}
	t := &tracked{l: l, source: source, conn: c}
	l.total++
	l.sources[source] = append(l.sources[source], t)
	l.mu.Unlock()
	if pushedOut != nil {
		pushedOut.conn.Close()
	}
	return t
}

// release gives t's place back, once.
func (t *tracked) release() {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.l.removeLocked(t)
}

func (l *Limiter) removeLocked(t *tracked) {
	t.once.Do(func() {
		l.total--
		conns := slices.DeleteFunc(l.sources[t.source], func(c *tracked) bool { return c == t })
		if len(conns) == 0 {
			delete(l.sources, t.source)
		} else {
			l.sources[t.source] = conns
		}
	})
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
		t := ln.l.acquire(c, SourceOf(c.RemoteAddr()))
		if t == nil {
			// Reset rather than a graceful close: nothing was said, and
			// the socket should not linger in TIME_WAIT.
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			return &tcpConn{TCPConn: tc, t: t}, nil
		}
		return &conn{Conn: c, t: t}, nil
	}
}

// tcpConn keeps *net.TCPConn's methods (SyscallConn, CloseWrite,
// ReadFrom) visible to servers that look for them.
type tcpConn struct {
	*net.TCPConn
	t *tracked
}

func (c *tcpConn) Close() error {
	err := c.TCPConn.Close()
	c.t.release()
	return err
}

type conn struct {
	net.Conn
	t *tracked
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.t.release()
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
