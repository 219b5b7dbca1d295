package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// drycc sends a Drycc client's request ("token" scheme, as the CLI does).
func (in *instance) drycc(t *testing.T, want int, token, method, path string, body any) map[string]any {
	t.Helper()
	r := in.expect(t, want, token, method, path, body)
	if r.header.Get("DRYCC_API_VERSION") != "2.3" {
		t.Fatalf("%s %s: DRYCC_API_VERSION %q", method, path, r.header.Get("DRYCC_API_VERSION"))
	}
	out := map[string]any{}
	if len(r.body) > 0 && r.body[0] == '{' {
		r.decode(t, &out)
	}
	return out
}

// TestDryccFlow walks the Drycc reference's flow against real containers:
// register, login, create, builds from a local image (with a procfile),
// config set and unset, releases, rollback (the old release serves again
// through the proxy), scale web=3 spread by the proxy, pods and their
// restart, run, logs, domains, a self-signed certificate served over HTTPS
// for its domain, tls enforcement, keys, perms, admin perms and users.
func TestDryccFlow(t *testing.T) {
	needTools(t, "ctr")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(in.logs())
		}
	})
	admin := in.adminUser(t)
	in.importBusybox(t)
	in.importHTTPServerRuntime(t)

	if r := in.call(t, "", "GET", "/v2/", nil); r.status != 401 {
		t.Fatalf("GET /v2/ without a token: %d", r.status)
	}
	in.drycc(t, 201, "", "POST", "/v2/auth/register/", map[string]string{"username": "alice", "password": "alice-password"})
	alice := in.drycc(t, 200, "", "POST", "/v2/auth/login/", map[string]string{"username": "alice", "password": "alice-password"})["token"].(string)
	in.drycc(t, 201, alice, "POST", "/v2/apps/", map[string]string{"id": "dry"})
	const host = "dry.apps.test"

	// A build of a local image: the httpserver answers "hello from <pod>".
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/build/", map[string]string{"image": "httpserver"})
	waitFor(t, "the build serving", 90*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy(host, "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})

	// Config: set, unset, a missing key is 422, an identical release 409.
	envIs := func(want string) {
		t.Helper()
		waitFor(t, "GREETING="+want, 90*time.Second, func() (bool, string) {
			code, body, err := in.viaProxy(host, "/env?name=GREETING")
			return err == nil && code == 200 && body == want, fmt.Sprintf("%d %q %v", code, body, err)
		})
	}
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/config/", map[string]any{"values": map[string]any{"GREETING": "one"}})
	envIs("one")
	in.drycc(t, 409, alice, "POST", "/v2/apps/dry/config/", map[string]any{"values": map[string]any{"GREETING": "one"}})
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/config/", map[string]any{"values": map[string]any{"GREETING": "two"}})
	envIs("two")
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/config/", map[string]any{"values": map[string]any{"GREETING": nil}})
	envIs("")
	in.drycc(t, 422, alice, "POST", "/v2/apps/dry/config/", map[string]any{"values": map[string]any{"GREETING": nil}})
	rels := in.drycc(t, 200, alice, "GET", "/v2/apps/dry/releases/?limit=100", nil)
	if rels["count"] != 5.0 {
		t.Fatalf("releases: %v", rels)
	}
	// Rollback with an empty body: the previous release, GREETING=two.
	if got := in.drycc(t, 201, alice, "POST", "/v2/apps/dry/releases/rollback/", nil); got["version"] != 6.0 {
		t.Fatalf("rollback: %v", got)
	}
	envIs("two")

	// Scale: three containers, each of them answering through the proxy.
	in.expect(t, 204, alice, "POST", "/v2/apps/dry/scale/", map[string]int{"web": 3})
	var pods []any
	waitFor(t, "three pods up", 90*time.Second, func() (bool, string) {
		list := in.drycc(t, 200, alice, "GET", "/v2/apps/dry/pods/web/", nil)
		pods, _ = list["results"].([]any)
		up := 0
		for _, p := range pods {
			pod := p.(map[string]any)
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(pod["started"])); err == nil && pod["state"] == "up" && pod["release"] == "v6" {
				up++
			}
		}
		return up == 3, fmt.Sprint(list)
	})
	seen := map[string]bool{}
	waitFor(t, "requests on every pod", 30*time.Second, func() (bool, string) {
		if code, body, err := in.viaProxy(host, "/"); err == nil && code == 200 {
			seen[body] = true
		}
		return len(seen) == 3, fmt.Sprint(seen)
	})
	before := pods[0].(map[string]any)["name"]
	var restarted []map[string]any
	in.expect(t, 200, alice, "POST", "/v2/apps/dry/pods/restart/", nil).decode(t, &restarted)
	if len(restarted) != 3 {
		t.Fatalf("restart answered %v", restarted)
	}
	in.expect(t, 204, alice, "POST", "/v2/apps/dry/scale", map[string]int{"web": 1})
	waitFor(t, "one pod", 90*time.Second, func() (bool, string) {
		list := in.drycc(t, 200, alice, "GET", "/v2/apps/dry/pods/", nil)
		return list["count"] == 1.0, fmt.Sprint(list, " was ", before)
	})

	// The httpserver image has no shell: run says so.
	if r := in.call(t, alice, "POST", "/v2/apps/dry/run/", map[string]string{"command": "true"}); r.status != 400 || !strings.Contains(string(r.body), "no /bin/sh") {
		t.Fatalf("run in an image without a shell: %d %s", r.status, r.body)
	}

	// A build with a procfile: busybox's httpd serving a page its web line
	// writes; run executes in the release, logs are plain text.
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/build/", map[string]any{
		"image":    "busybox",
		"procfile": map[string]string{"web": "mkdir -p /srv/www && echo procfile-web > /srv/www/index.html && exec httpd -f -p $PORT -h /srv/www"},
	})
	waitFor(t, "the procfile's web serving", 90*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy(host, "/")
		return err == nil && code == 200 && body == "procfile-web\n", fmt.Sprintf("%d %q %v", code, body, err)
	})
	run := in.drycc(t, 200, alice, "POST", "/v2/apps/dry/run", map[string]string{"command": "echo hi; echo \"$GREETING\""})
	if run["exit_code"] != 0.0 || run["output"] != "hi\ntwo\n" {
		t.Fatalf("run: %v", run)
	}
	if run := in.drycc(t, 200, alice, "POST", "/v2/apps/dry/run/", map[string]string{"command": "exit 3"}); run["exit_code"] != 3.0 {
		t.Fatalf("run exit 3: %v", run)
	}
	// A one-off container of its own: it runs with no web container, and
	// it is gone once it answered.
	in.expect(t, 204, alice, "POST", "/v2/apps/dry/scale/", map[string]int{"web": 0})
	if run := in.drycc(t, 200, alice, "POST", "/v2/apps/dry/run/", map[string]string{"command": "id -u; pwd"}); run["exit_code"] != 0.0 || strings.HasPrefix(fmt.Sprint(run["output"]), "0\n") || !strings.HasSuffix(fmt.Sprint(run["output"]), "/srv/app\n") {
		t.Fatalf("run without a web container: %v", run)
	}
	if pods := in.drycc(t, 200, alice, "GET", "/v2/apps/dry/pods/", nil); pods["count"] != 0.0 {
		t.Fatalf("pods after run: %v", pods)
	}
	in.expect(t, 204, alice, "POST", "/v2/apps/dry/scale/", map[string]int{"web": 1})
	logs := in.expect(t, 200, alice, "GET", "/v2/apps/dry/logs?log_lines=50", nil)
	if !strings.HasPrefix(logs.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("logs: %s %s", logs.header.Get("Content-Type"), logs.body)
	}
	build := in.drycc(t, 200, alice, "GET", "/v2/apps/dry/build/", nil)
	if !strings.Contains(fmt.Sprint(build["image"]), "busybox") {
		t.Fatalf("current build: %v", build)
	}
	// Rolling back to the httpserver build brings its image and files back.
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/releases/rollback/", map[string]int{"version": 6})
	waitFor(t, "the old build serving again", 90*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy(host, "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})

	// Domains, an uploaded certificate served for its domain, tls enforce.
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/domains/", map[string]string{"domain": "www.dry.test"})
	waitFor(t, "www.dry.test served", 30*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy("www.dry.test", "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})
	certPEM, keyPEM, roots := selfSignedCert(t, "www.dry.test")
	cert := in.drycc(t, 201, alice, "POST", "/v2/certs/", map[string]string{"name": "dry", "certificate": certPEM, "key": keyPEM})
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(cert["expires"])); err != nil {
		t.Fatalf("cert: %v", cert)
	}
	in.expect(t, 201, alice, "POST", "/v2/certs/dry/domain/", map[string]string{"domain": "www.dry.test"})
	waitFor(t, "HTTPS with the uploaded certificate", 30*time.Second, func() (bool, string) {
		code, body, err := in.httpsGet("www.dry.test", roots)
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/tls/", map[string]bool{"https_enforced": true})
	waitFor(t, "HTTP redirected to HTTPS", 30*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy("www.dry.test", "/")
		return err == nil && code == 308, fmt.Sprintf("%d %q %v", code, body, err)
	})
	in.drycc(t, 201, alice, "POST", "/v2/apps/dry/tls/", map[string]bool{"https_enforced": false})
	in.expect(t, 204, alice, "DELETE", "/v2/certs/dry/domain/www.dry.test", nil)
	in.expect(t, 204, alice, "DELETE", "/v2/apps/dry/domains/www.dry.test", nil)

	// Keys, perms: a second user gains and loses access; admin perms, users.
	dev := newSSHClient(t, in.sshPort(t))
	in.drycc(t, 201, alice, "POST", "/v2/keys/", map[string]string{"id": "alice@e2e", "public": dev.pub})
	if keys := in.drycc(t, 200, alice, "GET", "/v2/keys/", nil); keys["count"] != 1.0 {
		t.Fatalf("keys: %v", keys)
	}
	// git push in Drycc's form: user git, the app from the path.
	repo := t.TempDir()
	git := func(args ...string) string { return must(t)(dev.run(t, repo, "git", args...)) }
	git("init", "-q", "-b", "main")
	git("config", "user.email", "e2e@rosti.test")
	git("config", "user.name", "e2e")
	writeTree(t, repo, map[string]string{"pushed.txt": "via the git user"})
	git("add", ".")
	git("commit", "-q", "-m", "one")
	remote := fmt.Sprintf("ssh://git@127.0.0.1:%s/dry.git", dev.port)
	must(t)(dev.run(t, repo, "git", "push", remote, "main"))
	waitFor(t, "the pushed file served", 60*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy(host, "/read?path=/srv/app/pushed.txt")
		return err == nil && code == 200 && body == "via the git user", fmt.Sprintf("%d %q %v", code, body, err)
	})
	stranger := newSSHClient(t, dev.port)
	if code, _, stderr := stranger.run(t, repo, "git", "push", remote, "main"); code == 0 {
		t.Fatalf("a key nobody added pushed: %s", stderr)
	}

	in.drycc(t, 201, "", "POST", "/v2/auth/register/", map[string]string{"username": "bob", "password": "bob-password"})
	bob := in.drycc(t, 200, "", "POST", "/v2/auth/login/", map[string]string{"username": "bob", "password": "bob-password"})["token"].(string)
	bobSSH := newSSHClient(t, dev.port)
	in.drycc(t, 201, bob, "POST", "/v2/keys/", map[string]string{"id": "bob@e2e", "public": bobSSH.pub})
	in.drycc(t, 404, bob, "GET", "/v2/apps/dry/", nil)
	if code, _, _ := bobSSH.run(t, repo, "git", "push", remote, "main"); code == 0 {
		t.Fatal("bob pushed before he was granted the app")
	}
	in.expect(t, 201, alice, "POST", "/v2/apps/dry/perms/", map[string]string{"username": "bob"})
	in.drycc(t, 200, bob, "GET", "/v2/apps/dry/", nil)
	in.drycc(t, 201, bob, "POST", "/v2/apps/dry/config/", map[string]any{"values": map[string]any{"SET_BY": "bob"}})
	writeTree(t, repo, map[string]string{"pushed.txt": "pushed by bob"})
	git("commit", "-q", "-am", "bob's")
	must(t)(bobSSH.run(t, repo, "git", "push", remote, "main"))
	waitFor(t, "bob's push served", 60*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy(host, "/read?path=/srv/app/pushed.txt")
		return err == nil && code == 200 && body == "pushed by bob", fmt.Sprintf("%d %q %v", code, body, err)
	})
	in.expect(t, 204, alice, "DELETE", "/v2/apps/dry/perms/bob", nil)
	in.drycc(t, 404, bob, "GET", "/v2/apps/dry/", nil)
	writeTree(t, repo, map[string]string{"pushed.txt": "after the revoke"})
	git("commit", "-q", "-am", "revoked")
	if code, _, _ := bobSSH.run(t, repo, "git", "push", remote, "main"); code == 0 {
		t.Fatal("bob pushed after his permission was revoked")
	}
	in.drycc(t, 403, bob, "GET", "/v2/users/", nil)
	in.expect(t, 201, admin.token, "POST", "/v2/admin/perms/", map[string]string{"username": "bob"})
	if users := in.drycc(t, 200, bob, "GET", "/v2/users/", nil); users["count"] != 3.0 {
		t.Fatalf("users: %v", users)
	}
	in.expect(t, 204, admin.token, "DELETE", "/v2/admin/perms/bob", nil)
	in.drycc(t, 403, bob, "GET", "/v2/users/", nil)

	in.expect(t, 204, alice, "DELETE", "/v2/apps/dry/", nil)
	in.drycc(t, 404, alice, "GET", "/v2/apps/dry/", nil)
}

// selfSignedCert makes a certificate for host and a pool that trusts it.
func selfSignedCert(t *testing.T, host string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), roots
}
