package platform

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/store"
)

// blockingResolver answers each lookup only once release is closed, and
// counts lookups.
type blockingResolver struct {
	release chan struct{}
	mu      sync.Mutex
	lookups map[string]int
}

func (r *blockingResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	r.lookups[host]++
	r.mu.Unlock()
	<-r.release // ignores ctx, as a wedged resolver might
	return []string{"127.0.0.1"}, nil
}

func (r *blockingResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[host]
}

// TestDNSStatusDoesNotWaitOnTheResolver: a resolver that does not answer
// delays a status by a bounded time and says the domain is being looked
// up; once it answers, the status uses the answer, and many statuses make
// one lookup per domain until the answer is old.
func TestDNSStatusDoesNotWaitOnTheResolver(t *testing.T) {
	p := newTestPlatform(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	r := &blockingResolver{release: make(chan struct{}), lookups: map[string]int{}}
	p.dns = newDNSCache(r, now)
	a := store.App{Name: "site", Domains: []string{"site.example.com"}}

	for range 3 {
		st := AppStatus{}
		if p.domainsResolveHere(context.Background(), a, &st) {
			t.Fatal("a domain not looked up yet counts as pointing here")
		}
		if len(st.Info) != 1 || !strings.Contains(st.Info[0], "still being looked up") || len(st.Errors) != 0 {
			t.Fatalf("status while the resolver hangs: info %q, errors %q", st.Info, st.Errors)
		}
	}
	if n := r.count("site.example.com"); n != 1 {
		t.Fatalf("%d lookups under way for one domain, want 1", n)
	}

	close(r.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := AppStatus{}
		if p.domainsResolveHere(context.Background(), a, &st) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resolver's answer is never used: %q %q", st.Info, st.Errors)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.count("site.example.com"); n != 1 {
		t.Fatalf("%d lookups for statuses within a minute, want 1", n)
	}

	clockMu.Lock()
	clock = clock.Add(dnsTTL + time.Second)
	clockMu.Unlock()
	st := AppStatus{}
	if !p.domainsResolveHere(context.Background(), a, &st) {
		t.Fatalf("an old answer is not used while it is looked up again: %q %q", st.Info, st.Errors)
	}
	deadline = time.Now().Add(10 * time.Second)
	for r.count("site.example.com") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("an old answer is not looked up again: %d lookups", r.count("site.example.com"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
