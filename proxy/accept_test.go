package proxy

import (
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exhaustedListener fails its first accepts with EMFILE, as a process
// out of file descriptors does, then accepts again.
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

// TestSilentConnectionIsClosed: a connection that never sends a byte is
// closed after the request header timeout, not kept for the idle timeout
// between requests.
func TestSilentConnectionIsClosed(t *testing.T) {
	p := startProxy(t, Config{})
	c, err := net.Dial("tcp", p.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(readHeaderTimeout + 20*time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the proxy sent something to a client that said nothing")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a silent connection was still open after %s", readHeaderTimeout+20*time.Second)
	}
}
