package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/acmetest"
)

// httpsGet asks the proxy's HTTPS listener for host, trusting roots only.
func (in *instance) httpsGet(host string, roots *x509.CertPool) (int, string, error) {
	var d net.Dialer
	client := http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", in.httpsAddr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
	}
	resp, err := client.Get("https://" + host + "/")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestAutomaticTLS: an app in mode https+le gets a certificate from a real
// ACME CA (Pebble), which validates the HTTP-01 challenge on rosti's proxy;
// HTTPS then serves the app and plain HTTP redirects to it.
func TestAutomaticTLS(t *testing.T) {
	bin := rostiBin(t)
	pebble := acmetest.Start(t)
	caRoot := filepath.Join(t.TempDir(), "pebble-tls.pem")
	if err := os.WriteFile(caRoot, pebble.TLSRootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--acme-ca", pebble.Directory, "--acme-ca-root", caRoot, "--acme-email", "ops@rosti.test")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(in.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	challengePort, _ := strconv.Atoi(port)
	pebble.Finish(challengePort, acmetest.DNS(t, "rosti.test"))

	admin := in.adminUser(t)
	app := in.createApp(t, admin, map[string]any{"name": "shop", "image": "static", "plan": 1, "mode": "https+le", "domains": "shop.rosti.test"})
	publish(t, data, app, "secure shop")

	waitFor(t, "HTTPS with a certificate from the ACME CA", 90*time.Second, func() (bool, string) {
		code, body, err := in.httpsGet("shop.rosti.test", pebble.IssuingRoots)
		return err == nil && code == 200 && body == "secure shop", fmt.Sprintf("%d %q %v", code, body, err)
	})
	code, _, err := in.viaProxyHeaders("shop.rosti.test", func(h http.Header) {
		if loc := h.Get("Location"); !strings.HasPrefix(loc, "https://shop.rosti.test") {
			t.Errorf("redirect to %q", loc)
		}
	})
	if err != nil || (code != http.StatusPermanentRedirect && code != http.StatusMovedPermanently) {
		t.Fatalf("plain HTTP: %d %v, want a redirect to HTTPS", code, err)
	}
	// A name rosti does not serve gets no certificate.
	if _, _, err := in.httpsGet("other.rosti.test", pebble.IssuingRoots); err == nil {
		t.Fatal("a TLS handshake succeeded for a name no app holds")
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}
