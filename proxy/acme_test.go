package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// testDNS answers A queries for every name under zone with 127.0.0.1, over
// TCP as Pebble's VA asks.
func testDNS(t *testing.T, zone string) string {
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

// pebble is a real ACME CA run in-process from Pebble's packages.
type pebble struct {
	directory string
	// tlsRoots trusts Pebble's own HTTPS endpoint.
	tlsRoots *x509.CertPool
	// issuingRoots trusts the certificates Pebble issues.
	issuingRoots *x509.CertPool
	orders       atomic.Int64
}

// startPebble serves the ACME endpoint at once (the proxy must know its
// URL) and builds the CA when challengePort, the proxy's HTTP port, is
// known.
func startPebble(t *testing.T) (*pebble, func(challengePort int, dnsAddr string)) {
	t.Helper()
	// Pebble's VA sleeps randomly before validating to mimic a real CA;
	// that only slows the test. Validation itself stays real.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	pb := &pebble{}
	var acmeHandler atomic.Pointer[http.Handler]
	acmeSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			pb.orders.Add(1)
		}
		h := acmeHandler.Load()
		if h == nil {
			http.Error(w, "pebble not ready", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	acmeSrv.StartTLS()
	t.Cleanup(acmeSrv.Close)
	pb.directory = acmeSrv.URL + wfe.DirectoryPath
	pb.tlsRoots = x509.NewCertPool()
	pb.tlsRoots.AddCert(acmeSrv.Certificate())

	finish := func(challengePort int, dnsAddr string) {
		logger := log.New(testWriter{t}, "pebble ", 0)
		store := db.NewMemoryStore()
		authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
		validator := va.New(logger, challengePort, 0, false, dnsAddr, store)
		front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
		h := front.Handler()
		acmeHandler.Store(&h)

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
		pb.issuingRoots = x509.NewCertPool()
		if !pb.issuingRoots.AppendCertsFromPEM(rootPEM) {
			t.Fatalf("pebble root is not PEM: %q", rootPEM)
		}
	}
	return pb, finish
}

// tlsClientTo sends every request to the proxy's HTTPS address, checking
// certificates against roots and the URL's host name.
func tlsClientTo(proxyAddr net.Addr, roots *x509.CertPool) *http.Client {
	var d net.Dialer
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", proxyAddr.String())
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
		Timeout: 30 * time.Second,
	}
}

func TestACMEIssuesOnlyForRoutedNames(t *testing.T) {
	const zone = "rosti.test"
	dnsAddr := testDNS(t, zone)
	pb, finishPebble := startPebble(t)
	p := startProxy(t, Config{
		HTTPSAddr: "127.0.0.1:0",
		DataDir:   t.TempDir(),
		ACMEEmail: "ops@rosti.test",
		ACMECA:    pb.directory,
		ACMERoots: pb.tlsRoots,
	})
	finishPebble(p.HTTPAddr().(*net.TCPAddr).Port, dnsAddr)

	app := backend(t, "secure")
	uploadedPEM, uploadedKey, uploadedRoots := selfSignedCert(t, "uploaded."+zone)
	p.SetRoutes([]Route{
		{App: "secure", Hosts: []string{"secure." + zone}, Upstreams: []string{addr(app)}, TLS: true},
		{App: "plain", Hosts: []string{"plain." + zone}, Upstreams: []string{addr(app)}},
		{App: "uploaded", Hosts: []string{"uploaded." + zone}, Upstreams: []string{addr(app)}, TLS: true},
	}, []Cert{{CertPEM: uploadedPEM, KeyPEM: uploadedKey}})

	https := tlsClientTo(p.HTTPSAddr(), pb.issuingRoots)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var resp *http.Response
	var lastErr error
	if !waitFor(ctx, nil, func() bool {
		resp, lastErr = https.Get("https://secure." + zone + "/hello")
		return lastErr == nil
	}) {
		t.Fatalf("no certificate from Pebble in time: %v", lastErr)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "app=secure" {
		t.Fatalf("HTTPS answer %d %q", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS protocol %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Get("Seen-X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", got)
	}
	ordersAfterIssue := pb.orders.Load()
	if ordersAfterIssue == 0 {
		t.Fatal("certificate served without an ACME order")
	}

	httpClient := clientTo(p.HTTPAddr())
	httpsPort := p.HTTPSAddr().(*net.TCPAddr).Port
	redirects := []struct {
		name, host, location string
	}{
		{"acme host", "secure." + zone, "https://secure." + zone + ":" + strconv.Itoa(httpsPort) + "/path?q=1"},
		{"uploaded certificate host", "uploaded." + zone, "https://uploaded." + zone + ":" + strconv.Itoa(httpsPort) + "/path?q=1"},
	}
	for _, tc := range redirects {
		t.Run("http redirects: "+tc.name, func(t *testing.T) {
			a := get(t, httpClient, "http://"+tc.host+"/path?q=1", nil)
			if a.status != http.StatusPermanentRedirect || a.headers.Get("Location") != tc.location {
				t.Fatalf("got %d Location %q, want 308 %q", a.status, a.headers.Get("Location"), tc.location)
			}
		})
	}
	t.Run("plain route stays on http", func(t *testing.T) {
		if a := get(t, httpClient, "http://plain."+zone+"/", nil); a.status != 200 || a.body != "app=secure" {
			t.Fatalf("got %d %q", a.status, a.body)
		}
	})
	t.Run("uploaded certificate wins", func(t *testing.T) {
		resp, err := tlsClientTo(p.HTTPSAddr(), uploadedRoots).Get("https://uploaded." + zone + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	for _, name := range []string{"unrouted." + zone, "plain." + zone, ""} {
		t.Run("no certificate for "+name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", p.HTTPSAddr().String(), &tls.Config{ServerName: name, InsecureSkipVerify: true})
			if err == nil {
				conn.Close()
				t.Fatalf("TLS handshake for %q succeeded", name)
			}
		})
	}
	if n := pb.orders.Load(); n != ordersAfterIssue {
		t.Fatalf("ACME orders went from %d to %d after handshakes for unrouted names", ordersAfterIssue, n)
	}
	if n := pb.orders.Load(); n > 1 {
		t.Logf("note: %d ACME orders for one name (certmagic retried)", n)
	}
}

// selfSignedCert returns a certificate for host, its key and a pool that
// trusts it.
func selfSignedCert(t *testing.T, host string) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(leaf)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), roots
}
