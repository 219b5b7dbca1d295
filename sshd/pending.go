package sshd

import (
	"net"
	"slices"
	"sync"
	"time"
)

// pendingConns bounds the connections that have not logged in yet: each
// gets loginGrace to authenticate and is closed after it; one address may
// hold at most maxPerSource of them, and all together at most maxTotal. A
// handshake costs memory (tens of kilobytes) and a file descriptor;
// without these bounds, clients that connect and say nothing hold them
// forever.
//
// When all places are taken, a newcomer takes the place of the oldest
// pending connection of the address that holds the most, as long as that
// address holds more than the newcomer's would: many addresses flooding
// together then crowd out each other, not a user who connects once.
type pendingConns struct {
	maxTotal, maxPerSource int
	loginGrace             time.Duration

	mu      sync.Mutex
	total   int
	sources map[string][]*pendingConn // oldest first
	closed  bool                      // by closeAll: the gateway is shutting down
}

func newPendingConns(maxTotal, maxPerSource int, loginGrace time.Duration) *pendingConns {
	return &pendingConns{maxTotal: maxTotal, maxPerSource: maxPerSource, loginGrace: loginGrace, sources: map[string][]*pendingConn{}}
}

// pendingConn is a connection until it has logged in: it gives its place
// back once it opens its first channel (the handshake is over by then) or
// closes. When its grace time ends first, it is closed unless the
// handshake has completed meanwhile (a client that logged in and has not
// opened a channel yet), which then gives its place back too. Being
// granted by an auth callback is not enough: a public key is offered,
// and granted, before the client proves it holds the private key.
type pendingConn struct {
	net.Conn
	p      *pendingConns
	source string
	timer  *time.Timer
	once   sync.Once
}

// admit returns c wrapped, or nil when source already holds as many
// pending connections as allowed, or every place is taken by addresses
// holding no more than source would. loggedIn tells, when the grace time
// ends, whether the handshake has completed.
func (p *pendingConns) admit(c net.Conn, source string, loggedIn func() bool) *pendingConn {
	p.mu.Lock()
	held := len(p.sources[source])
	if held >= p.maxPerSource || p.closed {
		p.mu.Unlock()
		return nil
	}
	var evict *pendingConn
	if p.total >= p.maxTotal {
		var crowd []*pendingConn
		for _, conns := range p.sources {
			if len(conns) > len(crowd) {
				crowd = conns
			}
		}
		if len(crowd) <= held+1 {
			p.mu.Unlock()
			return nil
		}
		evict = crowd[0]
		p.removeLocked(evict)
	}
	pc := &pendingConn{Conn: c, p: p, source: source}
	p.total++
	p.sources[source] = append(p.sources[source], pc)
	// Set under the lock: another admit may push pc out (and stop its
	// timer) as soon as the lock is free.
	pc.timer = time.AfterFunc(p.loginGrace, func() {
		pc.done()
		if !loggedIn() {
			c.Close()
		}
	})
	p.mu.Unlock()
	if evict != nil {
		evict.Close()
	}
	return pc
}

// loggedIn ends the grace time: the connection is no longer pending.
func (pc *pendingConn) loggedIn() {
	pc.timer.Stop()
	pc.done()
}

func (pc *pendingConn) Close() error {
	pc.timer.Stop()
	pc.done()
	return pc.Conn.Close()
}

func (pc *pendingConn) done() {
	pc.p.mu.Lock()
	defer pc.p.mu.Unlock()
	pc.p.removeLocked(pc)
}

// removeLocked gives pc's place back, once.
func (p *pendingConns) removeLocked(pc *pendingConn) {
	pc.once.Do(func() {
		p.total--
		conns := slices.DeleteFunc(p.sources[pc.source], func(c *pendingConn) bool { return c == pc })
		if len(conns) == 0 {
			delete(p.sources, pc.source)
		} else {
			p.sources[pc.source] = conns
		}
	})
}

// count is the number of pending connections.
func (p *pendingConns) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// sampledLog lets one line a second through, with the count of those held
// back, so that a flood of refusals does not become a flood of log lines.
type sampledLog struct {
	mu   sync.Mutex
	last time.Time
	held int
}

// allow reports whether to log now, and how many lines were held back.
func (l *sampledLog) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= time.Second {
		held := l.held
		l.last, l.held = now, 0
		return true, held
	}
	l.held++
	return false, 0
}
