package platform

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/rosti-paas/rosti/proxy"
	"github.com/rosti-paas/rosti/store"
)

var certNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxCertPEM bounds an uploaded chain and key.
const maxCertPEM = 64 << 10

// CreateCert stores an uploaded certificate and its key in the actor's
// default company. It serves nothing until a domain is attached to it.
func (p *Platform) CreateCert(ctx context.Context, actor store.User, name, certPEM, keyPEM string) (store.Cert, error) {
	var v ValidationError
	if !certNamePattern.MatchString(name) {
		v.Add("name", "Can only contain a-z (lowercase), 0-9 and hyphens")
	}
	if certPEM == "" || len(certPEM) > maxCertPEM {
		v.Add("certificate", "This field may not be blank.")
	}
	if keyPEM == "" || len(keyPEM) > maxCertPEM {
		v.Add("key", "This field may not be blank.")
	}
	if err := v.Err(); err != nil {
		return store.Cert{}, err
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return store.Cert{}, FieldError("certificate", "Could not load certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return store.Cert{}, FieldError("certificate", "Could not load certificate: %v", err)
	}
	company, err := p.DefaultCompany(ctx, actor)
	if err != nil {
		return store.Cert{}, err
	}
	sum := sha256.Sum256(leaf.Raw)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	now := p.now().UTC()
	c, err := p.store.CreateCert(store.Cert{
		CompanyID: company, OwnerID: actor.ID, Name: name, CertPEM: certPEM, KeyPEM: keyPEM,
		CommonName: leaf.Subject.CommonName, SAN: append([]string{}, leaf.DNSNames...),
		Fingerprint: strings.Join(hexes, ":"), Issuer: opensslName(leaf.Issuer), Subject: opensslName(leaf.Subject),
		Starts: leaf.NotBefore.UTC(), Expires: leaf.NotAfter.UTC(), Domains: []string{}, Created: now, Updated: now,
	})
	var taken *store.ConflictError
	if errors.As(err, &taken) {
		return store.Cert{}, FieldError("name", "Certificate with this name already exists.")
	}
	if err != nil {
		return store.Cert{}, err
	}
	p.log.Info("certificate uploaded", "name", name, "company", company, "user", actor.Username, "expires", c.Expires)
	return c, nil
}

// opensslName writes a distinguished name as `openssl x509 -subject` does
// in its old form, which Drycc shows: /C=US/O=Example/CN=example.com.
func opensslName(n pkix.Name) string {
	var b strings.Builder
	add := func(key string, values []string) {
		for _, v := range values {
			b.WriteString("/" + key + "=" + v)
		}
	}
	add("C", n.Country)
	add("ST", n.Province)
	add("L", n.Locality)
	add("O", n.Organization)
	add("OU", n.OrganizationalUnit)
	if n.CommonName != "" {
		add("CN", []string{n.CommonName})
	}
	return b.String()
}

// Certs lists the certificates of the actor's companies; every one for a
// superuser.
func (p *Platform) Certs(_ context.Context, actor store.User) ([]store.Cert, error) {
	if actor.IsSuperuser {
		return p.store.Certs(0)
	}
	cs, err := p.store.CompaniesOf(actor.ID)
	if err != nil {
		return nil, err
	}
	out := []store.Cert{}
	for _, c := range cs {
		certs, err := p.store.Certs(c.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, certs...)
	}
	return out, nil
}

// Cert finds a certificate by name among the actor's companies'.
func (p *Platform) Cert(ctx context.Context, actor store.User, name string) (store.Cert, error) {
	certs, err := p.Certs(ctx, actor)
	if err != nil {
		return store.Cert{}, err
	}
	for _, c := range certs {
		if c.Name == name {
			return c, nil
		}
	}
	return store.Cert{}, fmt.Errorf("certificate %q: %w", name, store.ErrNotFound)
}

// DeleteCert removes a certificate; its domains go back to ACME (or plain
// HTTP).
func (p *Platform) DeleteCert(ctx context.Context, actor store.User, name string) error {
	c, err := p.Cert(ctx, actor, name)
	if err != nil {
		return err
	}
	if err := p.store.DeleteCert(c.ID); err != nil {
		return err
	}
	p.log.Info("certificate deleted", "name", name, "user", actor.Username)
	return p.republish(ctx)
}

// AttachCertDomain has the proxy serve the certificate for domain, which
// must be a domain of an app the actor manages and be covered by the
// certificate.
func (p *Platform) AttachCertDomain(ctx context.Context, actor store.User, name, domain string) (store.Cert, error) {
	c, err := p.Cert(ctx, actor, name)
	if err != nil {
		return store.Cert{}, err
	}
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	a, err := p.store.AppByDomain(domain)
	if err == nil {
		_, err = p.authorizeApp(actor, AppRef{ID: a.ID})
	}
	if err != nil {
		return store.Cert{}, FieldError("domain", "%q is not a domain of any of your apps; add it to an app first", domain)
	}
	pair, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
	if err != nil {
		return store.Cert{}, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return store.Cert{}, err
	}
	if err := leaf.VerifyHostname(domain); err != nil {
		return store.Cert{}, FieldError("domain", "certificate %s does not cover %s (it is for %s)", name, domain, strings.Join(append([]string{c.CommonName}, c.SAN...), ", "))
	}
	if err := p.certDomainFree(c, domain); err != nil {
		return store.Cert{}, err
	}
	c, err = p.store.UpdateCert(c.ID, func(c *store.Cert) error {
		if slices.Contains(c.Domains, domain) {
			return fmt.Errorf("%s is already attached to %s: %w", domain, c.Name, store.ErrConflict)
		}
		c.Domains = append(c.Domains, domain)
		c.Updated = p.now().UTC()
		return nil
	})
	if err != nil {
		return store.Cert{}, err
	}
	p.log.Info("certificate attached", "name", name, "domain", domain, "user", actor.Username)
	return c, p.republish(ctx)
}

// certDomainFree refuses a domain another certificate serves already.
func (p *Platform) certDomainFree(c store.Cert, domain string) error {
	all, err := p.store.Certs(0)
	if err != nil {
		return err
	}
	for _, other := range all {
		if other.ID != c.ID && slices.Contains(other.Domains, domain) {
			return FieldError("domain", "%s is already served with another certificate; detach it there first", domain)
		}
	}
	return nil
}

// DetachCertDomain stops serving the certificate for domain.
func (p *Platform) DetachCertDomain(ctx context.Context, actor store.User, name, domain string) error {
	c, err := p.Cert(ctx, actor, name)
	if err != nil {
		return err
	}
	domain = strings.ToLower(domain)
	if _, err := p.store.UpdateCert(c.ID, func(c *store.Cert) error {
		i := slices.Index(c.Domains, domain)
		if i < 0 {
			return fmt.Errorf("domain %s of certificate %s: %w", domain, c.Name, store.ErrNotFound)
		}
		c.Domains = slices.Delete(c.Domains, i, i+1)
		c.Updated = p.now().UTC()
		return nil
	}); err != nil {
		return err
	}
	p.log.Info("certificate detached", "name", name, "domain", domain, "user", actor.Username)
	return p.republish(ctx)
}

// SetHTTPSEnforced turns the redirect of plain HTTP to HTTPS for an app's
// domains on or off; it takes effect once a domain has a certificate
// (uploaded, else from ACME, which it asks for).
func (p *Platform) SetHTTPSEnforced(ctx context.Context, actor store.User, ref AppRef, enforced bool) (store.App, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return store.App{}, err
	}
	if a, err = p.store.UpdateApp(a.ID, func(a *store.App) error { a.HTTPSEnforced = enforced; return nil }); err != nil {
		return store.App{}, err
	}
	p.log.Info("https enforcement changed", "app", a.Name, "enforced", enforced, "user", actor.Username)
	return a, p.republish(ctx)
}

// republish hands the proxy a fresh table now, for changes that move no
// container.
func (p *Platform) republish(ctx context.Context) error {
	if p.reconciler == nil {
		return nil
	}
	return p.reconciler.publishRoutes(ctx)
}

// uploadedCerts are the certificates the proxy serves: each for the
// attached domains that an app of the certificate's company still holds.
func uploadedCerts(certs []store.Cert, apps []store.App) []proxy.Cert {
	owner := map[string]int64{}
	for _, a := range apps {
		for _, d := range a.Domains {
			owner[strings.ToLower(d)] = a.CompanyID
		}
	}
	var out []proxy.Cert
	for _, c := range certs {
		var hosts []string
		for _, d := range c.Domains {
			if owner[d] == c.CompanyID {
				hosts = append(hosts, d)
			}
		}
		if len(hosts) > 0 {
			out = append(out, proxy.Cert{Hosts: hosts, CertPEM: []byte(c.CertPEM), KeyPEM: []byte(c.KeyPEM)})
		}
	}
	return out
}
