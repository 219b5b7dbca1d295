package platform

import (
	"context"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestStatusCacheDomains(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := newStatusCache(clock.now)
	var mu sync.Mutex
	lookups := map[string]int{}
	c.lookupHost = func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups[host]++
		if host == "elsewhere.example" {
			return []string{"192.0.2.9"}, nil
		}
		return []string{"192.0.2.1"}, nil
	}
	c.localAddrs = func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(24, 32)}}, nil
	}
	domains := []string{"here.example", "elsewhere.example", "*.wild.example", "app.localhost"}
	check := func() AppStatus {
		var st AppStatus
		if c.domainsResolveHere(context.Background(), domains, &st) {
			t.Errorf("all domains reported here; elsewhere.example is not")
		}
		return st
	}
	st := check()
	if want := []string{"domain elsewhere.example does not point to this server"}; !slices.Equal(st.Errors, want) {
		t.Errorf("errors %q, want %q", st.Errors, want)
	}
	check()
	clock.advance(statusCacheTTL - time.Second)
	check()
	want := map[string]int{"here.example": 1, "elsewhere.example": 1, "check-wildcard.wild.example": 1}
	mu.Lock()
	if !maps.Equal(lookups, want) {
		t.Errorf("lookups within the cache's life: %v, want one per domain %v", lookups, want)
	}
	mu.Unlock()
	// Stale: the last answers at once, and a lookup in the background.
	clock.advance(2 * time.Second)
	if st := check(); len(st.Errors) != 1 {
		t.Errorf("stale answers: %q, want the cached ones", st.Errors)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := lookups["here.example"]
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stale answer was not looked up again: %d lookups", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStatusCacheVolumeSize(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := newStatusCache(clock.now)
	var mu sync.Mutex
	walks, size := 0, 5.0
	c.dirSizeMB = func(string) (float64, error) {
		mu.Lock()
		defer mu.Unlock()
		walks++
		return size, nil
	}
	if got, err := c.volumeSizeMB("/v/1"); err != nil || got != 5 {
		t.Fatalf("first status: %v, %v; want the walk's 5 MB", got, err)
	}
	mu.Lock()
	size = 7
	mu.Unlock()
	if got, _ := c.volumeSizeMB("/v/1"); got != 5 {
		t.Fatalf("within the cache's life: %v, want the cached 5 MB", got)
	}
	clock.advance(statusCacheTTL)
	if got, _ := c.volumeSizeMB("/v/1"); got != 5 {
		t.Fatalf("stale: %v, want the last known 5 MB at once", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for got, _ := c.volumeSizeMB("/v/1"); got != 7; got, _ = c.volumeSizeMB("/v/1") {
		if time.Now().After(deadline) {
			t.Fatalf("the background walk never updated the size: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if walks != 2 {
		t.Fatalf("%d walks, want 2: one at first, one once stale", walks)
	}
}
