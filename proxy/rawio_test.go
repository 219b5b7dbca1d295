package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestRawIO(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, c net.Conn, rw io.ReadWriter, peer net.Conn)
	}{
		{"reads what the peer wrote", func(t *testing.T, _ net.Conn, rw io.ReadWriter, peer net.Conn) {
			go peer.Write([]byte("hello"))
			b := make([]byte, 16)
			n, err := rw.Read(b)
			if err != nil || string(b[:n]) != "hello" {
				t.Fatalf("read %q, %v", b[:n], err)
			}
		}},
		{"a write larger than the socket buffers completes", func(t *testing.T, _ net.Conn, rw io.ReadWriter, peer net.Conn) {
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			got := make(chan []byte)
			go func() { b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big)))); got <- b }()
			if n, err := rw.Write(big); n != len(big) || err != nil {
				t.Fatalf("wrote %d of %d: %v", n, len(big), err)
			}
			if b := <-got; !bytes.Equal(b, big) {
				t.Fatalf("peer got %d bytes, not what was written", len(b))
			}
		}},
		{"EOF when the peer closes", func(t *testing.T, _ net.Conn, rw io.ReadWriter, peer net.Conn) {
			peer.Close()
			if _, err := rw.Read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("got %v, want EOF", err)
			}
		}},
		{"a reset is ECONNRESET", func(t *testing.T, _ net.Conn, rw io.ReadWriter, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			_, err := rw.Read(make([]byte, 8))
			if !errors.Is(err, syscall.ECONNRESET) || !staleConnError(err) {
				t.Fatalf("got %v, want ECONNRESET", err)
			}
		}},
		{"the read deadline times out as net.Conn does", func(t *testing.T, c net.Conn, rw io.ReadWriter, _ net.Conn) {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := rw.Read(make([]byte, 8))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v, want a timeout", err)
			}
		}},
		{"Close ends a waiting read", func(t *testing.T, c net.Conn, rw io.ReadWriter, _ net.Conn) {
			errc := make(chan error, 1)
			go func() { _, err := rw.Read(make([]byte, 8)); errc <- err }()
			// The read may not be waiting yet when Close runs: either way
			// it must end with net.ErrClosed.
			c.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("got %v, want net.ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the read did not end")
			}
		}},
		{"writing to a reset connection fails", func(t *testing.T, _ net.Conn, rw io.ReadWriter, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			var err error
			for deadline := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(deadline); {
				_, err = rw.Write([]byte("x"))
			}
			if !staleConnError(err) {
				t.Fatalf("got %v, want EPIPE or ECONNRESET", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			rw := newRawIO(c)
			if _, ok := rw.(*rawIO); !ok {
				t.Fatalf("a TCP connection got %T, want raw I/O", rw)
			}
			tc.run(t, c, rw, peer)
		})
	}
}

func TestRawIOFallsBackWithoutADescriptor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rw := newRawIO(a); rw != io.ReadWriter(a) {
		t.Fatalf("a pipe got %T, want the conn itself", rw)
	}
}
