package platform

import (
	"context"
	"sync"
	"time"
)

// Resolver looks up a host name's addresses; net.DefaultResolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

const (
	// dnsTTL is how long an answer is used before it is looked up again
	// (in the background: the old answer is given meanwhile).
	dnsTTL = time.Minute
	// dnsWait bounds how long a status waits for the first lookups of its
	// domains, all together; past it a domain is reported as still being
	// looked up.
	dnsWait = 500 * time.Millisecond
	// dnsLookupTimeout bounds one lookup.
	dnsLookupTimeout = 5 * time.Second
	// dnsForget drops the answers of domains no status asked about for
	// this long (deleted apps, changed domains).
	dnsForget = 10 * time.Minute
)

// dnsCache keeps, per domain, what it last resolved to, so that a status
// never waits on a slow or blocked resolver for more than dnsWait, and a
// busy status page makes one lookup per domain a minute, not one per call.
// At most one lookup per domain runs at a time.
type dnsCache struct {
	resolver Resolver
	now      func() time.Time
	mu       sync.Mutex
	entries  map[string]*dnsEntry
}

type dnsEntry struct {
	addrs    []string
	err      error
	at       time.Time     // of the last answer; zero before the first
	asked    time.Time     // last asked for by a status
	updating chan struct{} // closed when the lookup under way ends; nil when none runs
}

func newDNSCache(r Resolver, now func() time.Time) *dnsCache {
	return &dnsCache{resolver: r, now: now, entries: map[string]*dnsEntry{}}
}

// lookup is host's addresses as last resolved; known is false while its
// first lookup has not answered by the time ctx ends.
func (c *dnsCache) lookup(ctx context.Context, host string) (addrs []string, known bool, err error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[host]
	if !ok {
		c.forgetOld(now)
		e = &dnsEntry{}
		c.entries[host] = e
	}
	e.asked = now
	if e.updating == nil && (e.at.IsZero() || now.Sub(e.at) > dnsTTL) {
		e.updating = make(chan struct{})
		go c.refresh(host, e)
	}
	updating, first := e.updating, e.at.IsZero()
	c.mu.Unlock()
	if first {
		select {
		case <-updating:
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.addrs, !e.at.IsZero(), e.err
}

func (c *dnsCache) refresh(host string, e *dnsEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), dnsLookupTimeout)
	defer cancel()
	addrs, err := c.resolver.LookupHost(ctx, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	e.addrs, e.err, e.at = addrs, err, c.now()
	close(e.updating)
	e.updating = nil
}

// forgetOld drops the domains nobody asked about lately; c.mu is held.
func (c *dnsCache) forgetOld(now time.Time) {
	for host, e := range c.entries {
		if e.updating == nil && now.Sub(e.asked) > dnsForget {
			delete(c.entries, host)
		}
	}
}
