package sshd

import (
	"net"
	"testing"
	"time"
)

// TestGraceTimeClosesOnlyUnfinishedHandshakes: when the grace time ends,
// a connection whose handshake never completed (say, one that offered a
// known public key and never signed) is closed; one that completed keeps
// going; both give their place back.
func TestGraceTimeClosesOnlyUnfinishedHandshakes(t *testing.T) {
	for _, tt := range []struct {
		name       string
		handshaken bool
	}{
		{"handshake not over", false},
		{"logged in, no channel yet", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPendingConns(10, 10, 50*time.Millisecond)
			server, client := net.Pipe()
			defer client.Close()
			pc := p.admit(server, "192.0.2.1", func() bool { return tt.handshaken })
			if pc == nil {
				t.Fatal("refused")
			}
			deadline := time.Now().Add(10 * time.Second)
			for p.count() != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the place was not given back after the grace time")
				}
				time.Sleep(10 * time.Millisecond)
			}
			client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, err := client.Read(make([]byte, 1))
			ne, timedOut := err.(net.Error)
			if closed := !(timedOut && ne.Timeout()); closed == tt.handshaken {
				t.Fatalf("closed = %v (%v), want %v", closed, err, !tt.handshaken)
			}
			pc.Close()
		})
	}
}
