package sshd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Shutting down drains the gateway: the listener closes, connections still
// logging in are closed, sessions that run (a shell, a command, sftp, scp,
// rsync, a git push and its deploy) go on until they end or the shutdown
// budget is nearly spent, new sessions are refused, and connections
// without a running session are closed once the running ones are done.
// Sessions still running then are cut, and are given what is left of the
// budget (at most cutReserve) to clean up: an SFTP upload removes its
// temporary (upload.go), a deploy that did not complete leaves the app as
// it was (platform's promise).
const cutReserve = 5 * time.Second

// sessions counts the session handlers running.
type sessions struct {
	mu       sync.Mutex
	draining bool
	running  int
	drained  chan struct{} // closed once draining with none running
}

func newSessions() *sessions { return &sessions{drained: make(chan struct{})} }

// begin counts a session in, or refuses it while draining.
func (s *sessions) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.running++
	return true
}

func (s *sessions) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	if s.draining && s.running == 0 {
		close(s.drained)
	}
}

// drain refuses new sessions from now on; the channel is closed once the
// running ones have ended. It returns how many run.
func (s *sessions) drain() (<-chan struct{}, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.draining {
		s.draining = true
		if s.running == 0 {
			close(s.drained)
		}
	}
	return s.drained, s.running
}

func (s *sessions) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// counted runs handler as a session Shutdown waits for.
func (s *Server) counted(handler ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if !s.sessions.begin() {
			fmt.Fprintln(sess.Stderr(), "rosti: the server is restarting; try again in a moment")
			sess.Exit(exitInternal)
			return
		}
		defer s.sessions.end()
		handler(sess)
	}
}

// refuseWhileDraining turns away channels opened during the drain.
func (s *Server) refuseWhileDraining(newChan gossh.NewChannel) bool {
	if !s.sessions.isDraining() {
		return false
	}
	newChan.Reject(gossh.ResourceShortage, "rosti is restarting; try again in a moment")
	return true
}

// Shutdown stops accepting connections, lets running sessions finish until
// ctx is nearly done, then closes every connection and waits, until ctx is
// done, for the cut sessions to clean up.
func (s *Server) Shutdown(ctx context.Context) error {
	stopped := make(chan error, 1)
	go func() { stopped <- s.ssh.Shutdown(ctx) }() // closes the listener, then waits for connections
	drainCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		reserve := min(cutReserve, time.Until(deadline)/5)
		var cancel context.CancelFunc
		drainCtx, cancel = context.WithDeadline(ctx, deadline.Add(-reserve))
		defer cancel()
	}
	drained, running := s.sessions.drain()
	// Connections still logging in have no work to finish.
	s.pending.closeAll()
	if running > 0 {
		s.log.Info("waiting for sessions to end", "sessions", running)
	}
	select {
	case <-drained:
	case <-drainCtx.Done():
		_, left := s.sessions.drain()
		s.log.Warn("shutdown budget spent: cutting the sessions still running", "sessions", left)
	}
	err := s.ssh.Close()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	select {
	case <-stopped:
	case <-ctx.Done():
	}
	return err
}

// closeAll closes the connections that have not logged in yet, and those
// accepted before the listener closed that come after.
func (p *pendingConns) closeAll() {
	p.mu.Lock()
	p.closed = true
	var all []*pendingConn
	for _, conns := range p.sources {
		all = append(all, conns...)
	}
	p.mu.Unlock()
	for _, pc := range all {
		pc.Close()
	}
}
