// Package acmetest runs a real ACME CA for tests: Pebble, in-process from
// its own packages, with a small DNS server that points a test zone at the
// loopback address. Validation is real: Pebble fetches the HTTP-01
// challenge from the server under test.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// DNS answers A queries for every name under zone with 127.0.0.1, over TCP
// as Pebble's VA asks, and returns its address.
func DNS(t testing.TB, zone string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, q := range req.Question {
			if q.Qtype == dns.TypeA && strings.HasSuffix(q.Name, "."+zone+".") {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// Pebble is a running ACME CA.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// TLSRootPEM trusts Pebble's own HTTPS endpoint.
	TLSRootPEM []byte
	// IssuingRoots trusts the certificates Pebble issues, once Finish ran.
	IssuingRoots *x509.CertPool
	orders       atomic.Int64
	handler      atomic.Pointer[http.Handler]
	t            testing.TB
}

// Start serves the ACME endpoint at once, so its URL can be handed to the
// server under test; the CA itself is built by Finish, when the port that
// server answers HTTP-01 challenges on is known.
func Start(t testing.TB) *Pebble {
	t.Helper()
	// Pebble's VA sleeps at random before validating to mimic a real CA;
	// that only slows tests. The validation itself stays real.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	pb := &Pebble{t: t}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			pb.orders.Add(1)
		}
		h := pb.handler.Load()
		if h == nil {
			http.Error(w, "pebble not ready", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pb.Directory = srv.URL + wfe.DirectoryPath
	pb.TLSRootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return pb
}

// Finish builds the CA, validating HTTP-01 on challengePort of the names
// dnsAddr resolves.
func (pb *Pebble) Finish(challengePort int, dnsAddr string) {
	t := pb.t
	t.Helper()
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, challengePort, 0, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := front.Handler()
	pb.handler.Store(&h)

	mgmt := httptest.NewTLSServer(front.ManagementHandler())
	t.Cleanup(mgmt.Close)
	resp, err := mgmt.Client().Get(mgmt.URL + wfe.RootCertPath + "0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rootPEM, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	pb.IssuingRoots = x509.NewCertPool()
	if !pb.IssuingRoots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root is not PEM: %q", rootPEM)
	}
}

// TLSRoots is TLSRootPEM as a pool.
func (pb *Pebble) TLSRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pb.TLSRootPEM)
	return pool
}

// Orders counts the certificate orders Pebble was sent.
func (pb *Pebble) Orders() int64 { return pb.orders.Load() }
