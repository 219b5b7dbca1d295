package connlimit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts with errs, then accepts from a
// real listener.
type flakyListener struct {
	net.Listener
	errs []error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

func TestAcceptWaitsOutTemporaryErrors(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		survive bool
	}{
		{"process out of descriptors", &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{"system out of descriptors", &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{"out of buffers", &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENOBUFS)}, true},
		{"client gone", &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{"listener closed", net.ErrClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer inner.Close()
			var slept []time.Duration
			ln := &listener{Listener: &flakyListener{Listener: inner, errs: []error{tt.err, tt.err, tt.err}}, l: New(Config{}), sleep: func(d time.Duration) { slept = append(slept, d) }}
			go func() {
				if c, err := net.Dial("tcp", inner.Addr().String()); err == nil {
					defer c.Close()
					time.Sleep(time.Second)
				}
			}()
			c, err := ln.Accept()
			if !tt.survive {
				if err == nil || !errors.Is(err, tt.err) {
					t.Fatalf("Accept = %v, %v; want the error %v", c, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Accept failed on a temporary error: %v", err)
			}
			c.Close()
			if len(slept) != 3 || slept[0] >= slept[2] {
				t.Errorf("paused %v; want three growing pauses", slept)
			}
		})
	}
}

func TestBudgets(t *testing.T) {
	tests := []struct {
		name  string
		limit int
	}{
		{"tiny", 256},
		{"default soft limit", 1024},
		{"container", 20000},
		{"systemd", 524288},
		{"huge", 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := BudgetsFor(tt.limit)
			// Every public connection may hold one to its app as well.
			if used := 2*b.Public + b.API + b.Reserved; used > tt.limit {
				t.Errorf("%+v uses %d of %d", b, used, tt.limit)
			}
			if b.Reserved < 64 || b.API < 32 || b.PublicPerSource > b.Public || b.APIPerSource > b.API {
				t.Errorf("%+v: shares out of shape", b)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		sources  []string // where each client connects from, in order
		wantHeld int
	}{
		{"per source", Config{MaxConns: 100, PerSource: 3}, []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"}, 4},
		{"in total", Config{MaxConns: 3, PerSource: 100}, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.cfg)
			ln, err := l.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, len(tt.sources))
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var clients []net.Conn
			// A refused client sees its connection closed at once: on a
			// busy machine, as soon as the dial itself (a reset).
			refused := 0
			for _, src := range tt.sources {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
				c, err := d.Dial("tcp", ln.Addr().String())
				if errors.Is(err, syscall.ECONNRESET) {
					refused++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			for _, c := range clients {
				c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					refused++
				}
			}
			if held := len(tt.sources) - refused; held != tt.wantHeld || l.InUse() != tt.wantHeld {
				t.Fatalf("held %d (limiter counts %d), want %d", held, l.InUse(), tt.wantHeld)
			}
			// Closing what was accepted gives the budget back.
			for range tt.wantHeld {
				(<-accepted).Close()
			}
			if l.InUse() != 0 {
				t.Errorf("after closing everything the limiter counts %d", l.InUse())
			}
			for _, c := range clients {
				c.Close()
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func ExampleBudgetsFor() {
	fmt.Printf("%+v\n", BudgetsFor(1024))
	// Output: {Public:416 PublicPerSource:208 API:64 APIPerSource:32 Reserved:128}
}

// TestNewcomersPushOutTheBiggestHolder: with every place taken, a client
// from an address holding nothing takes the place of the oldest
// connection of the address holding the most, until every address holds
// as little as the newcomer would.
func TestNewcomersPushOutTheBiggestHolder(t *testing.T) {
	l := New(Config{MaxConns: 3})
	ln, err := l.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}
	flood := []net.Conn{dial("127.0.0.2"), dial("127.0.0.2"), dial("127.0.0.2")}
	newcomer := dial("127.0.0.3")
	if !closed(flood[0]) || closed(flood[1]) || closed(newcomer) {
		t.Fatal("the newcomer did not take the place of the oldest connection of the address holding three")
	}
	second := dial("127.0.0.4")
	if !closed(flood[1]) || closed(flood[2]) || closed(second) {
		t.Fatal("the second newcomer did not take the place of the oldest of the address holding two")
	}
	// Now each address holds one: a newcomer would only become one more.
	// It is refused as soon as it is accepted, which a loaded machine can
	// report to the dialer itself as a reset.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	third, err := d.Dial("tcp", ln.Addr().String())
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	refused := err != nil
	if err == nil {
		defer third.Close()
		refused = closed(third)
	}
	if !refused || closed(flood[2]) || closed(newcomer) || closed(second) {
		t.Fatal("a newcomer pushed out a connection of an address holding as little as it would")
	}
	if l.InUse() != 3 {
		t.Errorf("InUse = %d, want 3", l.InUse())
	}
}
