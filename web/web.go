package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// contentSecurityPolicy allows this origin's script, style and requests
// only: no inline script or style, no frames, forms post only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// UI is the web UI's handler.
type UI struct {
	p     *platform.Platform
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	now   func() time.Time
}

// New builds the UI over p.
func New(p *platform.Platform, log *slog.Logger) *UI {
	u := &UI{p: p, log: log.With("component", "web"), mux: http.NewServeMux(), now: time.Now}
	u.pages = parsePages()
	u.routes()
	return u
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"list": func(s ...string) []string { return s },
		"sizeMB": func(n *int64) string {
			if n == nil {
				return "size unknown"
			}
			return strconv.FormatFloat(float64(*n)/(1<<20), 'f', 1, 64) + " MB"
		},
		"join":  strings.Join,
		"since": since,
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"mb":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"pct": func(a, b float64) int {
			if b <= 0 {
				return 0
			}
			return int(min(100, a*100/b))
		},
		"deref": func(t *time.Time) time.Time {
			if t == nil {
				return time.Time{}
			}
			return *t
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, n))
	}
	return pages
}

func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

func (u *UI) routes() {
	static, _ := fs.Sub(staticFiles, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	u.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	u.mux.Handle("GET /{$}", u.signedIn(u.home))
	u.mux.Handle("GET /signin", u.anonymous(u.signInPage))
	u.mux.Handle("POST /signin", u.anonymous(u.signIn))
	u.mux.Handle("GET /signup", u.anonymous(u.signUpPage))
	u.mux.Handle("POST /signup", u.anonymous(u.signUp))
	u.mux.Handle("GET /signin/code", u.awaitingCode(u.codePage))
	u.mux.Handle("POST /signin/code", u.awaitingCode(u.signInCode))
	u.mux.Handle("POST /signout", u.signedIn(u.signOut))
	u.mux.Handle("POST /account/2fa/setup", u.signedIn(u.setUpTwoFactor))
	u.mux.Handle("POST /account/2fa/enable", u.signedIn(u.enableTwoFactor))
	u.mux.Handle("POST /account/2fa/disable", u.signedIn(u.disableTwoFactor))
	u.mux.Handle("GET /account", u.signedIn(u.account))
	u.mux.Handle("POST /account/password", u.signedIn(u.changePassword))
	u.mux.Handle("POST /account/keys", u.signedIn(u.addKey))
	u.mux.Handle("POST /account/keys/{key}/delete", u.signedIn(u.deleteKey))
	u.mux.Handle("POST /account/tokens", u.signedIn(u.createToken))
	u.mux.Handle("POST /account/tokens/{token}/delete", u.signedIn(u.revokeToken))
	u.mux.Handle("GET /admin/{$}", u.signedIn(func(w http.ResponseWriter, r *http.Request, _ *visit) error { return back(w, r, "/admin/users", "") }))
	u.mux.Handle("GET /admin/users", u.signedIn(u.adminUsers))
	u.mux.Handle("POST /admin/users", u.signedIn(u.adminCreateUser))
	u.mux.Handle("POST /admin/users/{user}/password", u.signedIn(u.adminSetPassword))
	u.mux.Handle("POST /admin/users/{user}/flags", u.signedIn(u.adminUserFlags))
	u.mux.Handle("GET /admin/catalogue", u.signedIn(u.adminCatalogue))
	u.mux.Handle("POST /admin/plans", u.signedIn(u.adminPutPlan))
	u.mux.Handle("POST /admin/runtimes", u.signedIn(u.adminPutRuntime))
	u.mux.Handle("GET /admin/images", u.signedIn(u.adminImages))
	u.mux.Handle("POST /admin/images/pull", u.signedIn(u.adminPull))
	u.mux.Handle("POST /admin/images/gc", u.signedIn(u.adminRemoveUnused))
	u.mux.Handle("GET /admin/health", u.signedIn(u.adminHealth))
	u.mux.Handle("POST /admin/settings", u.signedIn(u.adminSettings))
	u.mux.Handle("GET /c/{company}/{$}", u.inCompany(u.appsPage))
	u.mux.Handle("GET /c/{company}/jobs", u.inCompany(u.jobsPage))
	u.mux.Handle("GET /c/{company}/storages", u.inCompany(u.storages))
	u.mux.Handle("POST /c/{company}/storages", u.inCompany(u.createStorage))
	u.mux.Handle("POST /c/{company}/storages/{storage}/password", u.inCompany(u.storagePassword))
	u.mux.Handle("POST /c/{company}/storages/{storage}/delete", u.inCompany(u.deleteStorage))
	u.mux.Handle("GET /c/{company}/members", u.inCompany(u.members))
	u.mux.Handle("POST /c/{company}/members", u.inCompany(u.addMember))
	u.mux.Handle("POST /c/{company}/members/{user}/delete", u.inCompany(u.removeMember))
	u.mux.Handle("GET /c/{company}/new", u.inCompany(u.newAppPage))
	u.mux.Handle("POST /c/{company}/new", u.inCompany(u.createApp))
	u.mux.Handle("GET /c/{company}/apps/{app}", u.inCompany(u.appPage))
	u.mux.Handle("GET /c/{company}/apps/{app}/logs", u.inCompany(u.logStream))
	u.mux.Handle("POST /c/{company}/apps/{app}/action", u.inCompany(u.appAction))
	u.mux.Handle("POST /c/{company}/apps/{app}/settings", u.inCompany(u.appSettings))
	u.mux.Handle("POST /c/{company}/apps/{app}/config", u.inCompany(u.appConfig))
	u.mux.Handle("POST /c/{company}/apps/{app}/scale", u.inCompany(u.appScale))
	u.mux.Handle("POST /c/{company}/apps/{app}/rollback", u.inCompany(u.appRollback))
	u.mux.Handle("POST /c/{company}/apps/{app}/delete", u.inCompany(u.deleteApp))
	u.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, &visit{}, http.StatusNotFound, "error", page{Title: "Not found", Data: "There is no page at " + r.URL.Path + "."})
	}))
}

// visit is one request's view of who asks and in which company.
type visit struct {
	user      store.User
	secret    string // the session's, or the pre-session's before signing in
	csrf      string
	companies []store.Company
	company   store.Company
	// pendingUser is who a sign-in waiting for its second factor is for.
	pendingUser string
}

// SignedIn tells templates whether to show the signed-in navigation.
func (v *visit) SignedIn() bool { return v.user.ID != 0 }

// User is the signed-in user.
func (v *visit) User() store.User { return v.user }

// CSRF is the token every form posts back.
func (v *visit) CSRF() string { return v.csrf }

// Companies are the user's companies, for the switcher.
func (v *visit) Companies() []store.Company { return v.companies }

// Company is the current company (zero outside one).
func (v *visit) Company() store.Company { return v.company }

// page is what every template gets.
type page struct {
	V      *visit
	Title  string
	Flash  string
	Errors map[string][]string // per form field, from a platform.ValidationError
	Form   url.Values          // what the user typed, to show again
	Data   any
}

// Err is the first problem with a field, for templates.
func (p page) Err(field string) string {
	if len(p.Errors[field]) == 0 {
		return ""
	}
	return strings.Join(p.Errors[field], "; ")
}

// Value is what the user typed in a field, for templates.
func (p page) Value(field string) string { return p.Form.Get(field) }

type handlerFunc func(w http.ResponseWriter, r *http.Request, v *visit) error

const (
	cookieSession    = "rosti_session"
	cookiePreSession = "rosti_pre"
)

// cookieName gives cookies the __Host- prefix over HTTPS, so that no
// sibling domain (an app under the same parent domain) can set them.
func cookieName(r *http.Request, base string) string {
	if r.TLS != nil {
		return "__Host-" + base
	}
	return base
}

func setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r, base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

func readCookie(r *http.Request, base string) string {
	c, err := r.Cookie(cookieName(r, base))
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken binds forms to the secret of the browser's session, which a
// page of another origin cannot read.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("rosti csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// errCSRF is a form posted without the token of the page it came from.
var errCSRF = fmt.Errorf("this form was not sent from a page of this site, or the page is too old; reload it and try again: %w", platform.ErrForbidden)

func checkCSRF(r *http.Request, v *visit) error {
	if r.Method != http.MethodPost {
		return nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, httpapi.MaxBodyBytes)
	got := r.PostFormValue("csrf")
	if got == "" || !hmac.Equal([]byte(got), []byte(v.csrf)) {
		return errCSRF
	}
	return nil
}

// anonymous serves the pages before signing in; a signed-in visitor is
// sent home.
func (u *UI) anonymous(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret := readCookie(r, cookieSession); secret != "" {
			if _, err := u.p.SessionUser(r.Context(), secret); err == nil {
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
		}
		pre := readCookie(r, cookiePreSession)
		if len(pre) != 64 {
			pre = randomHex(32)
			setCookie(w, r, cookiePreSession, pre, 0)
		}
		v := &visit{secret: pre, csrf: csrfToken(pre)}
		u.serve(w, r, v, h)
	})
}

// signedIn serves the pages of a signed-in user; others are sent to sign in.
func (u *UI) signedIn(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := readCookie(r, cookieSession)
		user, err := u.p.SessionUser(r.Context(), secret)
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.fail(w, r, &visit{}, err)
			return
		}
		v := &visit{user: user, secret: secret, csrf: csrfToken(secret)}
		if v.companies, err = u.p.Companies(r.Context(), user); err != nil {
			u.fail(w, r, v, err)
			return
		}
		if must, err := u.p.MustSetUpTwoFactor(r.Context(), user); err != nil {
			u.fail(w, r, v, err)
			return
		} else if must && !allowedBeforeTwoFactor[r.Method+" "+r.URL.Path] {
			if r.Method == http.MethodGet {
				_ = back(w, r, "/account", "This server requires two-factor sign-in: set it up to go on.")
				return
			}
			u.fail(w, r, v, fmt.Errorf("this server requires two-factor sign-in: set it up on your account page first: %w", platform.ErrForbidden))
			return
		}
		u.serve(w, r, v, h)
	})
}

// allowedBeforeTwoFactor are the pages a user whom the server requires to
// use two-factor sign-in may use before setting it up.
var allowedBeforeTwoFactor = map[string]bool{
	"GET /account": true, "POST /account/2fa/setup": true, "POST /account/2fa/enable": true, "POST /signout": true,
}

// inCompany is signedIn for pages under /c/{company}/.
func (u *UI) inCompany(h handlerFunc) http.Handler {
	return u.signedIn(func(w http.ResponseWriter, r *http.Request, v *visit) error {
		id, err := strconv.ParseInt(r.PathValue("company"), 10, 64)
		if err != nil {
			return fmt.Errorf("company %q: %w", r.PathValue("company"), store.ErrNotFound)
		}
		if err := u.p.CheckCompany(r.Context(), v.user, id); err != nil {
			return err
		}
		found := false
		for _, c := range v.companies {
			if c.ID == id {
				v.company, found = c, true
			}
		}
		if !found { // a superuser visiting another company
			v.company = store.Company{ID: id, Name: fmt.Sprintf("company %d", id)}
		}
		return h(w, r, v)
	})
}

func (u *UI) serve(w http.ResponseWriter, r *http.Request, v *visit, h handlerFunc) {
	if err := checkCSRF(r, v); err != nil {
		u.fail(w, r, v, err)
		return
	}
	if err := h(w, r, v); err != nil {
		u.fail(w, r, v, err)
	}
}

// fail shows an error page with the status the API would answer.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	status, msg := httpapi.PublicMessage(u.log, w, r, err)
	title := http.StatusText(status)
	u.render(w, r, v, status, "error", page{Title: title, Data: msg})
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, v *visit, status int, name string, p page) {
	p.V = v
	if p.Flash == "" {
		p.Flash = r.URL.Query().Get("flash")
	}
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept-Encoding")
	if buf.Len() < gzipAbove || !acceptsGzip(r) {
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
		return
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	_, _ = zw.Write(buf.Bytes())
	_ = zw.Close()
}

// gzipAbove is the page size from which compressing pays: long lists
// shrink to a fraction, small pages are not worth the CPU.
const gzipAbove = 8 << 10

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// invalid renders a form again with its problems beside the fields, when
// err is a validation error; any other error is returned.
func (u *UI) invalid(w http.ResponseWriter, r *http.Request, v *visit, name string, p page, err error) error {
	var ve *platform.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	p.Errors, p.Form = ve.Fields, r.PostForm
	u.render(w, r, v, http.StatusBadRequest, name, p)
	return nil
}

// back redirects after a successful POST, with a message for the next page.
func back(w http.ResponseWriter, r *http.Request, path, flash string) error {
	if flash != "" {
		path += "?flash=" + url.QueryEscape(flash)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func since(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// detached gives slow work that a user started (a restart waits for the
// health check) its own deadline, so a closed tab does not cut it short.
func detached(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), d)
}
