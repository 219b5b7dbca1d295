package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// chromium finds Debian's Chromium (scripts/deps.sh test installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("needs chromium: scripts/deps.sh test installs it")
	return ""
}

// page drives one Chromium tab against rosti's web UI.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	axe  string // axe-core's script, run in each page shot
}

// axeVersion is the axe-core the accessibility check runs, from npm.
const axeVersion = "4.14.1"

// axeScript returns axe-core's browser script: $ROSTI_AXE, or the npm
// package, fetched once into the user's cache.
func axeScript(t *testing.T) string {
	t.Helper()
	path := os.Getenv("ROSTI_AXE")
	if path == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(cache, "rosti-e2e", "axe-core-"+axeVersion)
		path = filepath.Join(dir, "package", "axe.min.js")
		if _, err := os.Stat(path); err != nil {
			if _, err := exec.LookPath("npm"); err != nil {
				t.Fatal("the accessibility check needs npm for axe-core: run scripts/deps.sh test")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			pack := exec.Command("npm", "pack", "--silent", "axe-core@"+axeVersion)
			pack.Dir = dir
			out, err := pack.Output()
			if err != nil {
				t.Fatalf("npm pack axe-core: %v", err)
			}
			tgz := strings.TrimSpace(string(out))
			if out, err := exec.Command("tar", "-xzf", filepath.Join(dir, tgz), "-C", dir, "package/axe.min.js").CombinedOutput(); err != nil {
				t.Fatalf("unpack %s: %v\n%s", tgz, err, out)
			}
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// checkAccessibility runs axe-core in the page and fails the test on any
// serious or critical violation.
func (p *page) checkAccessibility(name string) {
	p.t.Helper()
	var loaded bool
	p.run(chromedp.Evaluate(p.axe+"\n;typeof axe === 'object'", &loaded))
	if !loaded {
		p.t.Fatal("axe-core did not load in the page")
	}
	var problems []string
	p.run(chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", ")))`,
		&problems, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	for _, problem := range problems {
		p.t.Errorf("accessibility of %s: %s", name, problem)
	}
}

func newBrowser(t *testing.T, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &page{t: t, ctx: ctx, base: base}
	// The first Run starts the browser, which lives as long as the
	// context it is given: this one, not a timeout of one step.
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return p
}

func (p *page) run(actions ...chromedp.Action) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage: %s", err, p.bodyText())
	}
}

func (p *page) bodyText() string {
	var s string
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	_ = chromedp.Run(ctx, chromedp.Text("body", &s, chromedp.ByQuery))
	return s
}

func (p *page) open(path string) { p.t.Helper(); p.run(chromedp.Navigate(p.base + path)) }

func (p *page) location() string {
	p.t.Helper()
	var loc string
	p.run(chromedp.Location(&loc))
	return strings.TrimPrefix(loc, p.base)
}

// fill sets form fields by CSS selector.
func (p *page) fill(fields ...string) {
	p.t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		p.run(chromedp.SetValue(fields[i], fields[i+1], chromedp.ByQuery))
	}
}

func (p *page) click(sel string) { p.t.Helper(); p.run(chromedp.Click(sel, chromedp.ByQuery)) }

// see waits until the page's text holds every string.
func (p *page) see(want ...string) {
	p.t.Helper()
	waitFor(p.t, fmt.Sprintf("the page shows %q", want), 60*time.Second, func() (bool, string) {
		body := p.bodyText()
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false, body
			}
		}
		return true, ""
	})
}

func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// shoot saves full-page screenshots at desktop and phone width, and
// checks the page's accessibility at both.
func (p *page) shoot(dir, name string) {
	p.t.Helper()
	for _, width := range []int64{1280, 390} {
		var png []byte
		p.run(chromedp.EmulateViewport(width, 900), chromedp.FullScreenshot(&png, 100))
		p.checkAccessibility(fmt.Sprintf("%s at %d px", name, width))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.run(chromedp.EmulateViewport(1280, 900))
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestWebUI drives the built-in web UI in a real Chromium against the real
// server: sign up and in, create an app, upload a page with the sftp line
// the page shows, see it served and its log tail follow, restart, change
// the plan, add and remove an SSH key, make a token and use it against
// the API, turn on two-factor sign-in and sign in with a code and with a
// recovery code, delete the app; a second user sees none of it, and a form
// posted without its CSRF token is refused.
func TestWebUI(t *testing.T) {
	bin := rostiBin(t)
	needTools(t, "sftp", "ssh-keygen", "ctr")
	chromium(t)
	sshPort := freePort(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data, "--ssh", "127.0.0.1:"+sshPort, "--panel-domain", "panel.apps.test")
	in.sshPort(t)
	in.importBusybox(t)
	// The same busybox, with httpd logging each request to the app's log.
	socket := filepath.Join(data, "containerd", "containerd.sock")
	if out, err := exec.Command("ctr", "--address", socket, "--namespace", "rosti", "images", "tag",
		"rosti.test/busybox:e2e", "rosti.test/busybox:verbose").CombinedOutput(); err != nil {
		t.Fatalf("ctr tag: %v\n%s", err, out)
	}
	if out, err := in.admin("set-runtime", "busybox-verbose", "--image", "rosti.test/busybox:verbose",
		"--command", "/bin/sh", "--command", "-c", "--command", "exec httpd -f -vv -p $PORT -h /srv/app"); err != nil {
		t.Fatalf("set-runtime: %v\n%s", err, out)
	}

	shots := os.Getenv("ROSTI_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "rosti-web-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of the web UI: %s", shots)

	deployer := newSSHClient(t, sshPort)
	// The page names the server by --ssh-host (host.test); it is this machine.
	config, err := os.ReadFile(deployer.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(deployer.config, append([]byte("Host host.test\n  HostName 127.0.0.1\n"), config...), 0o600); err != nil {
		t.Fatal(err)
	}

	// The panel domain serves the UI through the proxy too.
	var csp string
	code, signin, err := in.viaProxyWith("panel.apps.test", "/signin", func(h http.Header) { csp = h.Get("Content-Security-Policy") })
	if err != nil || code != 200 || !strings.Contains(signin, "Sign in") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("the panel domain's sign-in page: %d %v, CSP %q", code, err, csp)
	}

	b := newBrowser(t, in.apiURL)
	b.axe = axeScript(t)

	// Sign up, then sign in.
	b.open("/signin")
	b.see("Sign in")
	b.shoot(shots, "signin")
	b.open("/signup")
	b.shoot(shots, "signup")
	b.fill("#username", "alice", "#password", "alice-password", "#password2", "alice-password")
	b.click(`form[action="/signup"] button`)
	b.see("Your account is ready")
	b.fill("#username", "alice", "#password", "alice-password")
	b.click(`form[action="/signin"] button`)
	b.see("No apps yet")
	apps := b.location()
	m := regexp.MustCompile(`^/c/(\d+)/`).FindStringSubmatch(apps)
	if m == nil {
		t.Fatalf("signed in at %q, not at a company's apps", apps)
	}
	company := m[1]
	b.shoot(shots, "apps-empty")

	// The key the deploys below use.
	b.open("/account")
	b.fill("#key", deployer.pub)
	b.click(`form[action="/account/keys"] button`)
	b.see("Key e2e added.")

	// Create an app: a wrong name is answered beside the field.
	b.open(apps)
	b.click("a.button.primary")
	b.see("New app")
	b.shoot(shots, "new-app")
	b.fill("#name", "Site!", "#image", "rosti.test/busybox:verbose")
	b.click(`form[action$="/new"] button`)
	b.see("must be a DNS label")
	if got := b.text("#name-err"); !strings.Contains(got, "must be a DNS label") {
		t.Errorf("the name's error is not beside it: %q", got)
	}
	b.fill("#name", "site", "#image", "rosti.test/busybox:verbose")
	b.click(`form[action$="/new"] button`)
	b.see("App site created.")
	appPage := strings.SplitN(b.location(), "?", 2)[0]

	// Upload a page with the sftp command the page shows.
	var commands []string
	b.run(chromedp.Evaluate(`Array.from(document.querySelectorAll("code.cmd")).map(e => e.textContent)`, &commands))
	var sftpLine string
	for _, c := range commands {
		if strings.HasPrefix(c, "sftp ") {
			sftpLine = c
		}
	}
	if want := "sftp -P " + sshPort + " site@host.test"; sftpLine != want {
		t.Fatalf("the page shows the sftp line %q, want %q (all: %q)", sftpLine, want, commands)
	}
	local := t.TempDir()
	const body = "hello from the web UI test\n"
	if err := os.WriteFile(filepath.Join(local, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	batch := filepath.Join(local, "batch")
	if err := os.WriteFile(batch, []byte("put index.html app/index.html\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(sftpLine)
	must(t)(deployer.run(t, local, fields[0], append([]string{"-F", deployer.config, "-b", batch}, fields[1:]...)...))

	// Running, and served through the proxy.
	waitFor(t, "the page served through the proxy", 90*time.Second, func() (bool, string) {
		code, got, err := in.viaProxy("site.apps.test", "/")
		return code == 200 && got == body, fmt.Sprintf("%d %q %v", code, got, err)
	})
	b.open(apps)
	b.see("site.apps.test", "running", " MB")
	b.shoot(shots, "apps")
	b.open(appPage)
	b.see("Running", "HTTP answers")
	// The usage charts have at least the point read for the page.
	if got := b.text(`#usage figure.chart`); !strings.Contains(got, "Memory, last hour") || !strings.Contains(got, "latest ") {
		t.Errorf("memory chart: %q", got)
	}
	b.shoot(shots, "app")

	// The log tail follows what the app writes: here httpd's line about a
	// request for a path of our own.
	marker := fmt.Sprintf("/marker-%d", time.Now().UnixNano())
	b.see("Log")
	asked := time.Now()
	code, answer, err := in.viaProxy("site.apps.test", marker)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request's line in the log tail", 30*time.Second, func() (bool, string) {
		got := b.text("#log")
		return strings.Contains(got, marker), fmt.Sprintf("(the request got %d %q) %s", code, answer, got)
	})
	t.Logf("the log tail showed the app's new line %v after the request", time.Since(asked).Round(10*time.Millisecond))

	// Restart: the uploaded files become a release.
	b.click("#action-restart")
	b.see("Done: restart.", "deployed uploaded files")

	// Change the plan.
	b.fill("#plan", "3")
	b.click("#save-settings")
	b.see("Settings saved.", "plan start+")

	// Stop asks first.
	b.click("#action-stop")
	b.see("Yes, stop")
	b.shoot(shots, "confirm-stop")
	b.click("#confirm")
	b.see("Done: stop.")
	b.click("#action-start")
	b.see("Done: start.")

	// Add and remove an SSH key.
	other := newSSHClient(t, sshPort)
	b.open("/account")
	b.fill("#key", strings.Replace(other.pub, " e2e", " second-key", 1))
	b.click(`form[action="/account/keys"] button`)
	b.see("Key second-key added.")
	b.click(`button[aria-label="Remove key second-key"]`)
	b.see("Key removed.")
	if strings.Contains(b.bodyText(), "second-key") {
		t.Error("the removed key is still listed")
	}

	// A token, shown once, works against the API.
	b.fill("#tokenname", "ci")
	b.click(`form[action="/account/tokens"] button`)
	b.see("shown only this once")
	token := strings.TrimSpace(b.text("#new-token"))
	if len(token) < 32 {
		t.Fatalf("token %q", token)
	}
	b.shoot(shots, "account")
	b.open("/account")
	b.see("ci")
	if strings.Contains(b.bodyText(), token) {
		t.Error("the token's secret is shown again")
	}
	if r := in.expect(t, 200, token, "GET", "/api/v1/"+company+"/apps/", nil); !contains(string(r.body), `"site"`) {
		t.Errorf("the token does not list the app: %s", r.body)
	}

	// A form posted without its CSRF token is refused.
	var status int
	b.run(chromedp.Evaluate(`fetch("/account/tokens", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "name=forged"}).then(r => r.status)`,
		&status, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if status != 403 {
		t.Errorf("a form without its CSRF token: status %d, want 403", status)
	}
	b.open("/account")
	if strings.Contains(b.bodyText(), "forged") {
		t.Error("the forged form made a token")
	}

	b.open(apps + "jobs")
	b.see("Jobs")
	b.shoot(shots, "jobs")
	b.open(apps + "members")
	b.see("Members of", "owner")
	b.shoot(shots, "members")
	b.open(apps + "storages")
	b.see("New database")
	b.shoot(shots, "databases")

	// Two-factor sign-in: the secret shown, a code computed from it turns
	// it on; the next sign-in asks for a code; a wrong one is refused; a
	// recovery code works once.
	b.open("/account")
	b.click(`form[action="/account/2fa/setup"] button`)
	b.see("Scan this with your authenticator app")
	b.shoot(shots, "two-factor-setup")
	secret := strings.TrimSpace(b.text("#totp-secret"))
	b.fill("#totp_code", totpCode(t, secret, time.Now()))
	b.click(`form[action="/account/2fa/enable"] button`)
	b.see("Two-factor sign-in is on.", "shown only this once")
	var recovery []string
	b.run(chromedp.Evaluate(`Array.from(document.querySelectorAll("#recovery-codes code")).map(e => e.textContent)`, &recovery))
	if len(recovery) < 2 {
		t.Fatalf("recovery codes: %q", recovery)
	}
	signInWithCode := func(code string) {
		t.Helper()
		b.click(`form[action="/signout"] button`)
		b.see("You are signed out.")
		b.fill("#username", "alice", "#password", "alice-password")
		b.click(`form[action="/signin"] button`)
		b.see("Type the code your authenticator app shows")
		b.fill("#code", code)
		b.click(`form[action="/signin/code"] button`)
	}
	signInWithCode("000000")
	b.see("is not a current code")
	b.shoot(shots, "signin-code")
	// The code of the next 30-second step: the current one turned it on,
	// and no code is accepted twice.
	b.fill("#code", totpCode(t, secret, time.Now().Add(30*time.Second)))
	b.click(`form[action="/signin/code"] button`)
	b.see("Apps", "site")
	signInWithCode(recovery[0])
	b.see("Apps", "site")
	signInWithCode(recovery[0])
	b.see("is not a current code of your authenticator nor an unused recovery code")
	b.fill("#code", recovery[1])
	b.click(`form[action="/signin/code"] button`)
	b.see("Apps", "site")

	// A second user in another company sees none of it.
	b.click(`form[action="/signout"] button`)
	b.see("You are signed out.")
	b.open("/signup")
	b.fill("#username", "bob", "#password", "bob-password", "#password2", "bob-password")
	b.click(`form[action="/signup"] button`)
	b.see("Your account is ready")
	b.fill("#username", "bob", "#password", "bob-password")
	b.click(`form[action="/signin"] button`)
	b.see("No apps yet")
	for _, path := range []string{appPage, apps, "/c/" + company + "/jobs"} {
		b.open(path)
		b.see("Not Found")
		if path == appPage {
			b.shoot(shots, "not-found")
		}
		if strings.Contains(b.bodyText(), "site") {
			t.Errorf("bob sees alice's app at %s", path)
		}
	}
	b.open("/account")
	if text := b.bodyText(); strings.Contains(text, "ci") && strings.Contains(text, "last used") {
		t.Error("bob sees alice's token")
	}
	b.click(`form[action="/signout"] button`)
	b.see("You are signed out.")

	// Delete the app after typing its name.
	b.fill("#username", "alice", "#password", "alice-password")
	b.click(`form[action="/signin"] button`)
	b.see("Type the code your authenticator app shows")
	b.fill("#code", recovery[2])
	b.click(`form[action="/signin/code"] button`)
	b.see("site")
	b.open(appPage)
	b.fill("#confirm_name", "sit")
	b.click(`form[action$="/delete"] button`)
	b.see("type the app's name, site, to delete it")
	b.fill("#confirm_name", "site")
	b.click(`form[action$="/delete"] button`)
	b.see("App site deleted.", "No apps yet")
	waitFor(t, "the app no longer served", 30*time.Second, func() (bool, string) {
		code, got, _ := in.viaProxy("site.apps.test", "/")
		return code != 200 || got != body, fmt.Sprint(code)
	})

	// The operator's pages, as the admin the first start made.
	m = adminPassword.FindStringSubmatch(in.output())
	if m == nil {
		t.Fatalf("no admin password in the output:\n%s", in.output())
	}
	b.click(`form[action="/signout"] button`)
	b.see("You are signed out.")
	b.fill("#username", "admin", "#password", m[1])
	b.click(`form[action="/signin"] button`)
	b.see("Admin")
	b.open("/admin/users")
	b.see("alice", "bob", "admin")
	b.shoot(shots, "admin-users")
	b.open("/admin/catalogue")
	b.see("busybox-verbose", "rosti.test/busybox:verbose")
	b.shoot(shots, "admin-catalogue")
	b.open("/admin/images")
	b.see("rosti.test/busybox:e2e")
	b.shoot(shots, "admin-images")
	b.open("/admin/health")
	b.see("containerd: ok", "MB free")
	b.shoot(shots, "admin-health")
}
