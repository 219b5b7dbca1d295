package platform

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// What an app's status shows of its domains' DNS and of its volume's size
// changes slowly and is slow to learn (a lookup per domain, a walk of the
// whole volume), so apps-status answers them from a cache kept for
// statusCacheTTL: many status calls cost one lookup per domain and one
// walk per app a minute. A stale answer is given at once while a new
// lookup or walk runs in the background; only the first status of an app
// (or of a new domain) waits, for its walk and for its domains' lookups,
// all at once and within statusTimeout.
const statusCacheTTL = time.Minute

// maxCachedDomains bounds the DNS cache; past it, stale entries go.
const maxCachedDomains = 10000

type statusCache struct {
	lookupHost func(ctx context.Context, host string) ([]string, error)
	localAddrs func() ([]net.Addr, error)
	dirSizeMB  func(dir string) (float64, error)
	now        func() time.Time

	mu      sync.Mutex
	local   map[string]bool
	localAt time.Time
	domains map[string]domainCheck // by the name looked up
	volumes map[string]*volumeSize // by volume directory
}

type domainCheck struct {
	here       bool
	at         time.Time
	refreshing bool
}

type volumeSize struct {
	mb        float64
	err       error
	at        time.Time
	measuring bool
	measured  chan struct{} // closed when the first walk is done
}

func newStatusCache(now func() time.Time) *statusCache {
	return &statusCache{
		lookupHost: net.DefaultResolver.LookupHost, localAddrs: net.InterfaceAddrs, dirSizeMB: dirSizeMB, now: now,
		domains: map[string]domainCheck{}, volumes: map[string]*volumeSize{},
	}
}

// domainsResolveHere checks that each domain resolves to an address of one
// of this machine's interfaces, and says which do not in st.Errors.
func (c *statusCache) domainsResolveHere(ctx context.Context, domains []string, st *AppStatus) bool {
	names := make([]string, 0, len(domains))
	for _, d := range domains {
		if d == "localhost" || strings.HasSuffix(d, ".localhost") {
			continue // RFC 6761: always the loopback of the machine asking
		}
		if strings.HasPrefix(d, "*.") {
			d = "check-wildcard" + d[1:]
		}
		names = append(names, d)
	}
	here := c.resolveHere(ctx, names)
	ok := true
	for _, d := range names {
		if !here[d] {
			ok = false
			st.Errors = append(st.Errors, fmt.Sprintf("domain %s does not point to this server", d))
		}
	}
	return ok
}

// resolveHere answers, for each name, whether it resolves to this machine:
// from the cache, stale answers too while they are looked up again in the
// background, and names never looked up all at once.
func (c *statusCache) resolveHere(ctx context.Context, names []string) map[string]bool {
	now := c.now()
	here := make(map[string]bool, len(names))
	var unknown, stale []string
	c.mu.Lock()
	for _, d := range names {
		e, ok := c.domains[d]
		switch {
		case !ok:
			unknown = append(unknown, d)
			continue
		case now.Sub(e.at) >= statusCacheTTL && !e.refreshing:
			e.refreshing = true
			c.domains[d] = e
			stale = append(stale, d)
		}
		here[d] = e.here
	}
	c.mu.Unlock()
	if len(stale) > 0 {
		go c.lookUp(context.Background(), stale)
	}
	for d, ok := range c.lookUp(ctx, unknown) {
		here[d] = ok
	}
	return here
}

// lookUp resolves names at once, within statusTimeout, and keeps the
// answers.
func (c *statusCache) lookUp(ctx context.Context, names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	now := c.now()
	local := c.localAddresses(now)
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	results := make([]bool, len(names))
	var wg sync.WaitGroup
	for i, d := range names {
		wg.Go(func() {
			ips, err := c.lookupHost(ctx, d)
			for _, ip := range ips {
				results[i] = results[i] || (err == nil && local[ip])
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.domains)+len(names) > maxCachedDomains {
		for d, e := range c.domains {
			if now.Sub(e.at) >= statusCacheTTL && !e.refreshing {
				delete(c.domains, d)
			}
		}
	}
	here := make(map[string]bool, len(names))
	for i, d := range names {
		here[d] = results[i]
		if _, known := c.domains[d]; known || len(c.domains) < maxCachedDomains {
			c.domains[d] = domainCheck{here: results[i], at: now}
		}
	}
	return here
}

func (c *statusCache) localAddresses(now time.Time) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local != nil && now.Sub(c.localAt) < statusCacheTTL {
		return c.local
	}
	local := map[string]bool{}
	addrs, _ := c.localAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok {
			local[ipn.IP.String()] = true
		}
	}
	c.local, c.localAt = local, now
	return local
}

// volumeSizeMB is the size of the files in dir as last measured, and
// starts a new measurement when that is stale.
func (c *statusCache) volumeSizeMB(dir string) (float64, error) {
	c.mu.Lock()
	v, ok := c.volumes[dir]
	if !ok {
		v = &volumeSize{measured: make(chan struct{})}
		c.volumes[dir] = v
	}
	first := v.at.IsZero()
	if !v.measuring && (first || c.now().Sub(v.at) >= statusCacheTTL) {
		v.measuring = true
		go c.measure(dir, v)
	}
	c.mu.Unlock()
	if first {
		<-v.measured
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return v.mb, v.err
}

func (c *statusCache) measure(dir string, v *volumeSize) {
	mb, err := c.dirSizeMB(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	first := v.at.IsZero()
	v.mb, v.err, v.at, v.measuring = mb, err, c.now(), false
	if first {
		close(v.measured)
	}
}
