package sshd

import (
	"net"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/rosti-paas/rosti/platform"
	gossh "golang.org/x/crypto/ssh"
)

// accessKey is where a connection's granted platform.AppAccess is kept in its
// gliderlabs context between authentication and its sessions.
type accessKey struct{}

func accessOf(ctx ssh.Context) (platform.AppAccess, bool) {
	access, ok := ctx.Value(accessKey{}).(platform.AppAccess)
	return access, ok
}

func (s *Server) authPassword(ctx ssh.Context, password string) bool {
	source := sourceHost(ctx.RemoteAddr())
	if s.limiter.locked(source) {
		return false
	}
	access, err := s.platform.AuthorizePassword(ctx, ctx.User(), password)
	if err != nil {
		s.limiter.fail(source)
		s.log.Warn("login failed", "method", "password", "app", ctx.User(), "source", source, "err", err)
		return false
	}
	return s.grant(ctx, access, "password")
}

func (s *Server) authKey(ctx ssh.Context, key ssh.PublicKey) bool {
	source := sourceHost(ctx.RemoteAddr())
	if s.limiter.locked(source) {
		return false
	}
	if ctx.User() == GitUser {
		return s.acceptGitKey(ctx, key)
	}
	// Clients offer several keys in turn; a refused offer is not yet a
	// failed login (the connection failing is, see connFailed).
	access, err := s.platform.AuthorizeKey(ctx, ctx.User(), key)
	if err != nil {
		s.log.Debug("key refused", "app", ctx.User(), "source", source, "key", gossh.FingerprintSHA256(key), "err", err)
		return false
	}
	return s.grant(ctx, access, "publickey")
}

func (s *Server) grant(ctx ssh.Context, access platform.AppAccess, method string) bool {
	if access.UID == 0 || access.GID == 0 {
		s.log.Error("login refused: platform granted root", "app", ctx.User())
		return false
	}
	ctx.SetValue(accessKey{}, access)
	s.log.Debug("login", "method", method, "app", access.AppName, "source", sourceHost(ctx.RemoteAddr()))
	return true
}

// pendingKey is where a connection's pendingConn is kept until it logs in.
type pendingKey struct{}

// acceptConn drops connections from locked-out sources, and those over
// the bounds of connections not logged in yet, before any work.
func (s *Server) acceptConn(ctx ssh.Context, conn net.Conn) net.Conn {
	if s.sessions.isDraining() {
		return nil
	}
	source := sourceHost(conn.RemoteAddr())
	if s.limiter.locked(source) {
		s.log.Warn("connection refused: too many failed logins", "source", source)
		return nil
	}
	pc := s.pending.admit(conn, source, func() bool { return ctx.Value(ssh.ContextKeyConn) != nil })
	if pc == nil {
		if ok, held := s.refusedLog.allow(); ok {
			s.log.Warn("connection refused: too many connections not logged in", "source", source, "more_refused", held)
		}
		return nil
	}
	ctx.SetValue(pendingKey{}, pc)
	return pc
}

// openChannel ends a connection's time as pending: channels are opened
// only once the handshake, and so the login, is complete.
func (s *Server) openChannel(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	if pc, ok := ctx.Value(pendingKey{}).(*pendingConn); ok {
		pc.loggedIn()
	}
	if s.refuseWhileDraining(newChan) {
		return
	}
	ssh.DefaultSessionHandler(srv, conn, newChan, ctx)
}

// connFailed counts a connection whose handshake or authentication failed.
func (s *Server) connFailed(conn net.Conn, err error) {
	source := sourceHost(conn.RemoteAddr())
	s.limiter.fail(source)
	if ok, held := s.failedLog.allow(); ok {
		s.log.Warn("login failed", "source", source, "err", err, "more_failed", held)
	}
}

func sourceHost(addr net.Addr) string {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// failureLimiter counts failed logins per source address in a sliding
// window and locks a source out once it reaches max of them.
type failureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newFailureLimiter(max int, window time.Duration, now func() time.Time) *failureLimiter {
	return &failureLimiter{max: max, window: window, now: now, failures: map[string][]time.Time{}}
}

func (l *failureLimiter) fail(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// Forget sources that went quiet, so the map stays small.
	for other := range l.failures {
		l.recentLocked(other, now)
	}
	l.failures[source] = append(l.recentLocked(source, now), now)
}

func (l *failureLimiter) locked(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recentLocked(source, l.now())) >= l.max
}

func (l *failureLimiter) recentLocked(source string, now time.Time) []time.Time {
	times := l.failures[source]
	for len(times) > 0 && now.Sub(times[0]) >= l.window {
		times = times[1:]
	}
	if len(times) == 0 {
		delete(l.failures, source)
	} else {
		l.failures[source] = times
	}
	return times
}
