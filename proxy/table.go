package proxy

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
)

// site is what one host name resolves to: an app's upstreams or the panel.
type site struct {
	app     string
	handler http.Handler
	// tls marks hosts that redirect plain HTTP to HTTPS once a certificate
	// exists for them.
	tls bool
}

// table is an immutable routing snapshot; SetRoutes builds a new one and
// swaps it in, so lookups take no lock.
type table struct {
	exact map[string]*site
	// wildcard is keyed by the suffix after "*.", e.g. "example.com".
	wildcard map[string]*site
	// uploaded holds uploaded certificates by exact name or "*.suffix".
	uploaded map[string]*tls.Certificate
	// acmeHosts are the names the ACME CA is asked for.
	acmeHosts map[string]bool
}

func (t *table) lookup(host string) *site {
	if s := t.exact[host]; s != nil {
		return s
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		return t.wildcard[host[i+1:]]
	}
	return nil
}

// lookupBytes is lookup for a normalized name in a byte slice, without
// allocating.
func (t *table) lookupBytes(host []byte) *site {
	if s := t.exact[string(host)]; s != nil {
		return s
	}
	if i := bytes.IndexByte(host, '.'); i > 0 {
		return t.wildcard[string(host[i+1:])]
	}
	return nil
}

// uploadedCert returns the uploaded certificate covering host, exact names
// first.
func (t *table) uploadedCert(host string) *tls.Certificate {
	if len(t.uploaded) == 0 {
		return nil
	}
	if c := t.uploaded[host]; c != nil {
		return c
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		return t.uploaded["*"+host[i:]]
	}
	return nil
}

// normalizeHost turns a Host header or SNI name into a table key: no port,
// no trailing dot, lower case. It allocates only when the name has upper
// case letters.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
