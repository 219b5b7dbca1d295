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
	"math/big"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/acmetest"
)

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
	dnsAddr := acmetest.DNS(t, zone)
	pb := acmetest.Start(t)
	p := startProxy(t, Config{
		HTTPSAddr: "127.0.0.1:0",
		DataDir:   t.TempDir(),
		ACMEEmail: "ops@rosti.test",
		ACMECA:    pb.Directory,
		ACMERoots: pb.TLSRoots(),
	})
	pb.Finish(p.HTTPAddr().(*net.TCPAddr).Port, dnsAddr)

	app := backend(t, "secure")
	uploadedPEM, uploadedKey, uploadedRoots := selfSignedCert(t, "uploaded."+zone)
	p.SetRoutes([]Route{
		{App: "secure", Hosts: []string{"secure." + zone}, Upstreams: []string{addr(app)}, TLS: true},
		{App: "plain", Hosts: []string{"plain." + zone}, Upstreams: []string{addr(app)}},
		{App: "uploaded", Hosts: []string{"uploaded." + zone}, Upstreams: []string{addr(app)}, TLS: true},
	}, []Cert{{CertPEM: uploadedPEM, KeyPEM: uploadedKey}})

	https := tlsClientTo(p.HTTPSAddr(), pb.IssuingRoots)
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
	if leaf := resp.TLS.PeerCertificates[0]; leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("ACME certificate key %v, want ECDSA P-256", leaf.PublicKeyAlgorithm)
	}
	if got := resp.Header.Get("Seen-X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", got)
	}
	ordersAfterIssue := pb.Orders()
	if ordersAfterIssue == 0 {
		t.Fatal("certificate served without an ACME order")
	}
	// The operator sees both certificates and when they expire.
	certs := p.Certificates()
	if len(certs) != 2 || certs[0].Host != "secure."+zone || certs[0].Source != "acme" || certs[0].NotAfter.Before(time.Now()) ||
		certs[1].Host != "uploaded."+zone || certs[1].Source != "uploaded" || certs[1].NotAfter.Before(time.Now()) {
		t.Errorf("Certificates() = %+v", certs)
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
	if n := pb.Orders(); n != ordersAfterIssue {
		t.Fatalf("ACME orders went from %d to %d after handshakes for unrouted names", ordersAfterIssue, n)
	}
	if n := pb.Orders(); n > 1 {
		t.Logf("note: %d ACME orders for one name (certmagic retried)", n)
	}
}

// selfSignedCert returns a certificate for host, its key and a pool that
// trusts it.
func selfSignedCert(t testing.TB, host string) (certPEM, keyPEM []byte, roots *x509.CertPool) {
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
