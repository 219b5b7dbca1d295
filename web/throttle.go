package web

import (
	"strings"
	"sync"
	"time"
)

// Failed sign-ins are slowed down per account and per client address:
// after freeFailures failures, each further attempt has to wait twice as
// long as the one before (from 1 s up to maxWait). A success clears the
// account's count; counts are forgotten forgetAfter the last failure.
const (
	freeFailuresAccount = 3
	freeFailuresAddress = 10
	maxWait             = 5 * time.Minute
	forgetAfter         = 15 * time.Minute
	maxTracked          = 10000
)

type failures struct {
	count int
	last  time.Time
}

// throttle remembers recent failed sign-ins in memory only: it protects,
// it records nothing a user owns.
type throttle struct {
	mu   sync.Mutex
	seen map[string]failures
}

func newThrottle() *throttle { return &throttle{seen: map[string]failures{}} }

func accountKey(username string) string { return "u:" + strings.ToLower(username) }
func addressKey(addr string) string     { return "a:" + addr }

func waitFor(f failures, free int) time.Duration {
	if f.count < free {
		return 0
	}
	d := time.Second << min(f.count-free, 16)
	return min(d, maxWait)
}

// wait says how long the next sign-in for username from addr must wait.
func (t *throttle) wait(now time.Time, username, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var longest time.Duration
	for key, free := range map[string]int{accountKey(username): freeFailuresAccount, addressKey(addr): freeFailuresAddress} {
		f, ok := t.seen[key]
		if !ok {
			continue
		}
		if left := f.last.Add(waitFor(f, free)).Sub(now); left > longest {
			longest = left
		}
	}
	return longest
}

func (t *throttle) failed(now time.Time, username, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.seen) >= maxTracked {
		for k, f := range t.seen {
			if now.Sub(f.last) > forgetAfter {
				delete(t.seen, k)
			}
		}
	}
	for _, key := range []string{accountKey(username), addressKey(addr)} {
		f := t.seen[key]
		if now.Sub(f.last) > forgetAfter {
			f.count = 0
		}
		if len(t.seen) < maxTracked || f.count > 0 {
			t.seen[key] = failures{count: f.count + 1, last: now}
		}
	}
}

func (t *throttle) succeeded(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, accountKey(username))
}
