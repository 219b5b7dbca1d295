package proxy

import (
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
)

// exhaustedListener fails accepts with EMFILE, as a process out of file
// descriptors does, until it is told to recover.
type exhaustedListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *exhaustedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestAcceptErrorsDoNotStopTheProxy: running out of file descriptors
// slows accepting down; the proxy keeps serving once descriptors are back.
func TestAcceptErrorsDoNotStopTheProxy(t *testing.T) {
	p := startProxy(t, Config{Listen: func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		return &exhaustedListener{Listener: ln, fails: 5}, nil
	}})
	b := backend(t, "blog")
	p.SetRoutes([]Route{{App: "blog", Hosts: []string{"blog.test"}, Upstreams: []string{addr(b)}}}, nil)
	a := get(t, clientTo(p.HTTPAddr()), "http://blog.test/", nil)
	if a.status != 200 || a.body != "app=blog" {
		t.Fatalf("after EMFILE: %d %q, want 200 app=blog", a.status, a.body)
	}
}
