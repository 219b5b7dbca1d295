package platform

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/store"
)

func TestOverLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d ...time.Duration) []time.Time {
		var out []time.Time
		for _, x := range d {
			out = append(out, now.Add(-x))
		}
		return out
	}
	tests := []struct {
		name     string
		failures []time.Time
		limit    int
		want     time.Duration
	}{
		{"none", nil, 3, 0},
		{"below the limit", ago(time.Minute, time.Second), 3, 0},
		{"at the limit: until the oldest leaves the window", ago(5*time.Minute, time.Minute, time.Second), 3, loginWindow - 5*time.Minute},
		{"old failures do not count", ago(20*time.Minute, 16*time.Minute, time.Second), 3, 0},
		{"over the limit: until enough have left", ago(10*time.Minute, 6*time.Minute, 2*time.Minute, time.Second), 3, loginWindow - 6*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overLimit(tt.failures, tt.limit, now); got != tt.want {
				t.Errorf("overLimit = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLoginTokenExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	recent := now.Add(-time.Hour)
	tests := []struct {
		name  string
		token store.Token
		want  bool
	}{
		{"fresh login token", store.Token{Name: loginTokenName, Created: recent}, false},
		{"old login token used lately", store.Token{Name: loginTokenName, Created: now.Add(-90 * 24 * time.Hour), LastUsed: &recent}, false},
		{"login token idle too long", store.Token{Name: loginTokenName, Created: now.Add(-31 * 24 * time.Hour)}, true},
		{"named token never expires", store.Token{Name: "ci", Created: now.Add(-365 * 24 * time.Hour)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loginTokenExpired(tt.token, now); got != tt.want {
				t.Errorf("expired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoginQueueIsShared(t *testing.T) {
	th := newLoginThrottle(time.Now)
	for i := range maxQueuedPerSource {
		if !th.enter("192.0.2.1") {
			t.Fatalf("check %d from one address refused", i+1)
		}
	}
	if th.enter("192.0.2.1") {
		t.Fatal("an address got more than its places in the queue")
	}
	if !th.enter("192.0.2.2") {
		t.Fatal("another address was refused")
	}
	th.leave("192.0.2.1")
	if !th.enter("192.0.2.1") {
		t.Fatal("a place given back was not reusable")
	}
	queued := 0
	for i := 0; i <= maxQueuedLogins && th.enter(fmt.Sprint("198.51.100.", i)); i++ {
		queued++
	}
	if want := maxQueuedLogins - maxQueuedPerSource - 1; queued != want {
		t.Fatalf("%d more checks queued from other addresses, want %d (the server's bound)", queued, want)
	}
}

// TestGuessesUnderWayCount: guesses at one account sent all at once count
// against its limit while they are checked, so a burst cannot all pass
// before the first has failed; an address the account trusts is not held.
func TestGuessesUnderWayCount(t *testing.T) {
	th := newLoginThrottle(time.Now)
	th.trusted["bob\x00192.0.2.200"] = time.Now()
	for i := range maxFailuresPerUser {
		if err := th.admit("bob", fmt.Sprint("192.0.2.", i)); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	var throttled *ThrottledError
	if err := th.admit("bob", "198.51.100.1"); !errors.As(err, &throttled) {
		t.Fatalf("an attempt past the account's limit while the others are checked: %v", err)
	}
	if err := th.admit("bob", "192.0.2.200"); err != nil {
		t.Fatalf("from an address the account trusts: %v", err)
	}
	th.done("bob")
	th.done("bob")
	if err := th.admit("bob", "198.51.100.1"); err != nil {
		t.Fatalf("once an attempt is done: %v", err)
	}
	if err := th.admit("alice", "198.51.100.1"); err != nil {
		t.Fatalf("another account: %v", err)
	}
}
