package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// acme manages ACME certificates for exactly the names in the routing
// table. certmagic's on-demand issuance is never enabled.
type acme struct {
	cfg   Config
	log   *slog.Logger
	zap   *zap.Logger
	cache *certmagic.Cache
	magic *certmagic.Config

	mu      sync.Mutex
	issuer  *certmagic.ACMEIssuer // nil until the HTTP listener is bound
	managed map[string]context.CancelFunc
	stopped bool
}

func newACME(cfg Config, l *slog.Logger) *acme {
	a := &acme{
		cfg:     cfg,
		log:     l,
		zap:     zap.New(&slogCore{log: l}),
		managed: map[string]context.CancelFunc{},
	}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           a.zap,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(cfg.DataDir, "certmagic")},
		// ECDSA P-256: a handshake signature costs a fraction of an RSA
		// 2048 one, and every client in use accepts it.
		KeySource: certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		Logger:    a.zap,
	})
	return a
}

// start creates the ACME issuer once the HTTP listener is bound. certmagic
// tries to bind the challenge port itself; pointing it at our own bound
// address makes that fail with "address in use", after which it relies on
// our handler answering the challenges.
func (a *acme) start(configuredHTTPAddr string, bound net.Addr) error {
	host, _, err := net.SplitHostPort(configuredHTTPAddr)
	if err != nil {
		return fmt.Errorf("proxy: http address %q: %w", configuredHTTPAddr, err)
	}
	port := bound.(*net.TCPAddr).Port
	ca := a.cfg.ACMECA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	issuer := certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   a.cfg.ACMEEmail,
		Agreed:                  true,
		DisableTLSALPNChallenge: true,
		ListenHost:              host,
		AltHTTPPort:             port,
		TrustedRoots:            a.cfg.ACMERoots,
		Resolver:                a.cfg.ACMEResolver,
		Logger:                  a.zap,
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.magic.Issuers = []certmagic.Issuer{issuer}
	a.issuer = issuer
	a.log.Info("acme ready", "ca", ca, "http_port", strconv.Itoa(port))
	return nil
}

// sync makes the managed set equal to hosts: new names are managed in the
// background (certmagic loads a stored certificate or obtains one, retrying
// with backoff), names that left are cancelled and dropped from the cache.
func (a *acme) sync(hosts map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.issuer == nil || a.stopped {
		return
	}
	var gone []certmagic.SubjectIssuer
	for name, cancel := range a.managed {
		if !hosts[name] {
			cancel()
			delete(a.managed, name)
			gone = append(gone, certmagic.SubjectIssuer{Subject: name})
		}
	}
	if len(gone) > 0 {
		a.cache.RemoveManaged(gone)
	}
	for name := range hosts {
		if a.managed[name] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := a.magic.ManageAsync(ctx, []string{name}); err != nil {
			cancel()
			a.log.Error("certificate management failed", "host", name, "err", err)
			continue
		}
		a.managed[name] = cancel
	}
}

func (a *acme) handleChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, challengePathPrefix) {
		return false
	}
	a.mu.Lock()
	issuer := a.issuer
	a.mu.Unlock()
	return issuer != nil && issuer.HandleHTTPChallenge(w, r)
}

const challengePathPrefix = "/.well-known/acme-challenge/"

func (a *acme) hasCert(host string) bool {
	return len(a.cache.AllMatchingCertificates(host)) > 0
}

func (a *acme) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	a.stopped = true
	for _, cancel := range a.managed {
		cancel()
	}
	a.cache.Stop()
}

// getCertificate serves uploaded certificates first, then ACME ones for
// managed names; every other name fails the handshake.
func (p *Proxy) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeHost(hello.ServerName)
	t := p.table.Load()
	if c := t.uploadedCert(name); c != nil {
		return c, nil
	}
	if name != "" && t.acmeHosts[name] {
		return p.acme.magic.GetCertificate(hello)
	}
	return nil, fmt.Errorf("proxy: no certificate for %q", name)
}

// parseCert checks an uploaded certificate and returns the names it serves.
func parseCert(c Cert) (*tls.Certificate, []string, error) {
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parse key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	cert.Leaf = leaf
	names := c.Hosts
	if len(names) == 0 {
		names = leaf.DNSNames
	}
	if len(names) == 0 {
		return nil, nil, errors.New("certificate names no host")
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, normalizeHost(n))
	}
	return &cert, out, nil
}
