package proxy

import (
	"slices"
	"strings"
	"time"
)

// CertStatus is one certificate the proxy serves or tries to get, for the
// operator's view of the server.
type CertStatus struct {
	Host     string
	Source   string    // "acme" or "uploaded"
	NotAfter time.Time // zero while an ACME certificate is still being obtained
}

// Certificates lists the certificates of the current routes: uploaded ones
// for their hosts, and ACME ones (obtained, or not yet) for the hosts of
// apps in https+le mode; by host.
func (p *Proxy) Certificates() []CertStatus {
	t := p.table.Load()
	var out []CertStatus
	seen := map[string]bool{}
	for host, c := range t.uploaded {
		if c.Leaf == nil || seen[host] {
			continue
		}
		seen[host] = true
		out = append(out, CertStatus{Host: host, Source: "uploaded", NotAfter: c.Leaf.NotAfter})
	}
	if p.acme != nil {
		for host := range t.acmeHosts {
			if seen[host] {
				continue
			}
			st := CertStatus{Host: host, Source: "acme"}
			for _, c := range p.acme.cache.AllMatchingCertificates(host) {
				if c.Leaf != nil && c.Leaf.NotAfter.After(st.NotAfter) {
					st.NotAfter = c.Leaf.NotAfter
				}
			}
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b CertStatus) int { return strings.Compare(a.Host, b.Host) })
	return out
}
