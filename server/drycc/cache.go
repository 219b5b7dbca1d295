package drycc

import (
	"sync"
)

// pageCache keeps rendered app lists until the store changes (see
// store.Revision): clients poll `apps:list`, and rendering a page means
// decoding every app on it. Keys name the user and the page; the cache is
// dropped whole when it grows past maxCachedPages.
type pageCache struct {
	mu      sync.Mutex
	entries map[string]cachedPage
}

type cachedPage struct {
	revision uint64
	body     []byte
}

const maxCachedPages = 1024

func (c *pageCache) get(key string, revision uint64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return e.body, ok && e.revision == revision
}

func (c *pageCache) put(key string, revision uint64, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedPages {
		c.entries = map[string]cachedPage{}
	}
	c.entries[key] = cachedPage{revision: revision, body: body}
}
