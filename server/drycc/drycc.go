// Package drycc is the Drycc v2 / Deis v1 controller dialect: /v2/ as in
// Drycc's controller API 2.3 and /v1/ as in Deis Workflow's, on top of
// platform (it holds no state of its own). Apps are named by their unique
// name and live in their owner's default company, so they are the same
// apps the Rosti dialect shows. It renders errors the way Django REST
// framework does ({"detail": ...}, or a list of messages per field, in
// DRF's words where the clients match them), pages lists as
// {count, next, previous, results}, takes paths with or without their
// trailing slash, and sets the DRYCC_* version headers on every answer.
package drycc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// APIVersion is the newest Drycc controller API this dialect follows.
const APIVersion = "2.3"

// Handler serves /v1/ and /v2/.
type Handler struct {
	p       *platform.Platform
	log     *slog.Logger
	version string
	mux     *http.ServeMux
	apps    pageCache
}

// authed is a handler that needs a logged-in user.
type authed func(w http.ResponseWriter, r *http.Request, u store.User) error

// New returns the dialect's handler; version is rosti's own.
func New(p *platform.Platform, version string, log *slog.Logger) *Handler {
	h := &Handler{p: p, log: log.With("component", "api", "dialect", "drycc"), version: version, mux: http.NewServeMux()}
	for _, prefix := range []string{"/v1", "/v2"} {
		h.mux.HandleFunc("POST "+prefix+"/auth/register/{$}", h.register)
		h.mux.HandleFunc("POST "+prefix+"/auth/login/{$}", h.login)
		h.handle("DELETE "+prefix+"/auth/cancel/{$}", h.cancel)
		h.handle("GET "+prefix+"/auth/whoami/{$}", h.whoami)
		h.handle("POST "+prefix+"/auth/tokens/{$}", h.regenerateToken)
		h.handle("POST "+prefix+"/auth/passwd/{$}", h.passwd)
		h.handle("GET "+prefix+"/{$}", func(w http.ResponseWriter, _ *http.Request, _ store.User) error {
			httpapi.WriteJSON(w, http.StatusOK, map[string]string{})
			return nil
		})

		h.handle("GET "+prefix+"/apps/{$}", h.listApps)
		h.handle("POST "+prefix+"/apps/{$}", h.createApp)
		h.handle("GET "+prefix+"/apps/{id}/{$}", h.appDetail)
		h.handle("POST "+prefix+"/apps/{id}/{$}", h.updateApp)
		h.handle("DELETE "+prefix+"/apps/{id}/{$}", h.destroyApp)
		h.handle("GET "+prefix+"/apps/{id}/logs/{$}", h.logs)
		h.handle("POST "+prefix+"/apps/{id}/run/{$}", h.run)

		h.handle("GET "+prefix+"/apps/{id}/config/{$}", h.config)
		h.handle("POST "+prefix+"/apps/{id}/config/{$}", h.setConfig)
		h.handle("GET "+prefix+"/apps/{id}/releases/{$}", h.releases)
		h.handle("GET "+prefix+"/apps/{id}/releases/{version}/{$}", h.release)
		h.handle("POST "+prefix+"/apps/{id}/releases/rollback/{$}", h.rollback)
		h.handle("GET "+prefix+"/apps/{id}/builds/{$}", h.builds)
		h.handle("POST "+prefix+"/apps/{id}/builds/{$}", h.build)
		h.handle("GET "+prefix+"/apps/{id}/build/{$}", h.currentBuild)
		h.handle("POST "+prefix+"/apps/{id}/build/{$}", h.build)
		h.handle("POST "+prefix+"/apps/{id}/scale/{$}", h.scale)

		// Pods in Drycc, containers in Deis.
		for _, pods := range []string{"pods", "containers"} {
			base := prefix + "/apps/{id}/" + pods
			h.handle("GET "+base+"/{$}", h.pods)
			h.handle("GET "+base+"/{type}/{$}", h.pods)
			h.handle("POST "+base+"/restart/{$}", h.restartPods)
			h.handle("POST "+base+"/{type}/restart/{$}", h.restartPods)
			h.handle("POST "+base+"/{type}/{name}/restart/{$}", h.restartPods)
		}

		h.handle("GET "+prefix+"/apps/{id}/domains/{$}", h.domains)
		h.handle("POST "+prefix+"/apps/{id}/domains/{$}", h.addDomain)
		h.handle("DELETE "+prefix+"/apps/{id}/domains/{domain}/{$}", h.removeDomain)
		h.handle("GET "+prefix+"/apps/{id}/tls/{$}", h.tls)
		h.handle("POST "+prefix+"/apps/{id}/tls/{$}", h.setTLS)
		h.handle("GET "+prefix+"/certs/{$}", h.certs)
		h.handle("POST "+prefix+"/certs/{$}", h.createCert)
		h.handle("GET "+prefix+"/certs/{name}/{$}", h.cert)
		h.handle("DELETE "+prefix+"/certs/{name}/{$}", h.deleteCert)
		h.handle("POST "+prefix+"/certs/{name}/domain/{$}", h.attachCert)
		h.handle("DELETE "+prefix+"/certs/{name}/domain/{domain}/{$}", h.detachCert)

		h.handle("GET "+prefix+"/keys/{$}", h.keys)
		h.handle("POST "+prefix+"/keys/{$}", h.addKey)
		h.handle("DELETE "+prefix+"/keys/{id}/{$}", h.removeKey)
		h.handle("GET "+prefix+"/apps/{id}/perms/{$}", h.perms)
		h.handle("POST "+prefix+"/apps/{id}/perms/{$}", h.grantPerm)
		h.handle("DELETE "+prefix+"/apps/{id}/perms/{username}/{$}", h.revokePerm)
		if prefix == "/v1" { // Deis v1's reference removes a permission with a POST
			h.handle("POST "+prefix+"/apps/{id}/perms/{username}/{$}", h.revokePerm)
		}
		h.handle("GET "+prefix+"/admin/perms/{$}", h.admins)
		h.handle("POST "+prefix+"/admin/perms/{$}", h.grantAdmin)
		h.handle("DELETE "+prefix+"/admin/perms/{username}/{$}", h.revokeAdmin)
		h.handle("GET "+prefix+"/users/{$}", h.users)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, errNoEndpoint)
	})
	return h
}

var errNoEndpoint = fmt.Errorf("no such endpoint: %w", store.ErrNotFound)

// handle routes pattern to a handler that gets the authenticated user;
// without a valid token the answer is 401, as DRF's.
func (h *Handler) handle(pattern string, next authed) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		u, err := httpapi.User(h.p, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if err := next(w, r, u); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("DRYCC_API_VERSION", APIVersion)
	w.Header().Set("DRYCC_PLATFORM_VERSION", h.version)
	if p := r.URL.Path; p[len(p)-1] != '/' {
		r.URL.Path = p + "/"
		r.URL.RawPath = ""
	}
	h.mux.ServeHTTP(w, r)
}

// Wordings the Drycc and Deis clients match.
const (
	msgNotFound        = "Not found."
	msgNoCredentials   = "Authentication credentials were not provided."
	msgInvalidToken    = "Invalid token."
	msgFailedLogin     = "Unable to log in with provided credentials."
	msgDuplicateUser   = "A user with that username already exists."
	msgDuplicateApp    = "Application with this id already exists."
	msgInvalidAppName  = "App name can only contain a-z (lowercase), 0-9 and hyphens"
	msgDuplicateDomain = "Domain is already in use by another application"
	msgInvalidDomain   = "Hostname does not look valid."
	msgDuplicateKey    = "Public Key is already in use"
	msgBlank           = "This field may not be blank."
	msgNegativeVersion = "version cannot be below 0"
)

// writeError renders an error as Django REST framework does: 400 with a
// list of messages per field (or "detail"), anything else {"detail": ...}.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpapi.PublicMessage(h.log, w, r, err)
	var v *platform.ValidationError
	var unprocessable *unprocessableError
	switch {
	case errors.As(err, &unprocessable):
		httpapi.WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"detail": unprocessable.msg})
	case errors.As(err, &v):
		fields := make(map[string][]string, len(v.Fields))
		for f, msgs := range v.Fields {
			for _, m := range msgs {
				fields[f] = append(fields[f], sentence(m))
			}
		}
		httpapi.WriteJSON(w, status, fields)
	case status == http.StatusNotFound:
		httpapi.WriteJSON(w, status, map[string]string{"detail": msgNotFound})
	case status == http.StatusUnauthorized:
		if _, ok := httpapi.TokenFrom(r); ok {
			msg = msgInvalidToken
		} else {
			msg = msgNoCredentials
		}
		httpapi.WriteJSON(w, status, map[string]string{"detail": msg})
	default:
		httpapi.WriteJSON(w, status, map[string]string{"detail": sentence(trimVocabulary(msg))})
	}
}

// unprocessableError is a 422: a request understood but impossible, like
// unsetting a variable that is not set.
type unprocessableError struct{ msg string }

func (e *unprocessableError) Error() string { return e.msg }
func (e *unprocessableError) Unwrap() error { return store.ErrInvalid }

// trimVocabulary drops the ": invalid" (or ": conflict") the error
// vocabulary appends; it says nothing to a user.
func trimVocabulary(msg string) string {
	for _, suffix := range []string{": " + store.ErrInvalid.Error(), ": " + store.ErrConflict.Error(), ": " + platform.ErrForbidden.Error()} {
		msg = strings.TrimSuffix(msg, suffix)
	}
	return msg
}

// exactWordings are DRF's (and Drycc's) own messages, which clients match
// to the letter: sentence leaves them as they are.
var exactWordings = map[string]bool{
	msgInvalidAppName: true, msgDuplicateDomain: true, msgDuplicateKey: true, msgNegativeVersion: true,
}

// sentence makes a message read like DRF's: capitalized, with a period.
func sentence(m string) string {
	if m == "" || exactWordings[m] {
		return m
	}
	rs := []rune(m)
	rs[0] = unicode.ToUpper(rs[0])
	m = string(rs)
	if !strings.HasSuffix(m, ".") && !strings.HasSuffix(m, "?") && !strings.HasSuffix(m, "!") {
		m += "."
	}
	return m
}

// fieldError is a 400 with one message for one field, worded exactly.
func fieldError(field, msg string) error {
	return &platform.ValidationError{Fields: map[string][]string{field: {msg}}}
}

// hasField tells whether err is a validation error about field.
func hasField(err error, field string) bool {
	var v *platform.ValidationError
	return errors.As(err, &v) && len(v.Fields[field]) > 0
}

// renameField moves a validation error's messages about one field to
// another name, the one the client sent.
func renameField(err error, from, to string) error {
	var v *platform.ValidationError
	if !errors.As(err, &v) {
		return err
	}
	fields := map[string][]string{}
	for f, msgs := range v.Fields {
		if f == from {
			f = to
		}
		fields[f] = append(fields[f], msgs...)
	}
	return &platform.ValidationError{Fields: fields}
}

// page is a DRF list: {count, next, previous, results}.
type page struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  any     `json:"results"`
}

// defaultPageSize is what a list shows without ?limit, as Drycc's
// controller does.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageBounds reads ?limit and ?offset.
func pageBounds(r *http.Request) (offset, limit int, err error) {
	limit = defaultPageSize
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, fieldError("limit", "A valid positive integer is required.")
		}
		limit = min(n, maxPageSize)
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, fieldError("offset", "A valid positive integer is required.")
		}
		offset = n
	}
	return offset, limit, nil
}

// newPage makes the page of results at offset with limit, out of total,
// with links to its neighbours.
func newPage(r *http.Request, results any, offset, limit, total int) page {
	pg := page{Count: total, Results: results}
	link := func(off int) *string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			u.Scheme = "https"
		}
		q := r.URL.Query()
		q.Set("limit", strconv.Itoa(limit))
		q.Set("offset", strconv.Itoa(off))
		u.RawQuery = q.Encode()
		s := u.String()
		return &s
	}
	if offset+limit < total {
		pg.Next = link(offset + limit)
	}
	if offset > 0 {
		pg.Previous = link(max(offset-limit, 0))
	}
	return pg
}

// listOf pages a whole list.
func (h *Handler) listOf(w http.ResponseWriter, r *http.Request, n int, item func(i int) any) error {
	offset, limit, err := pageBounds(r)
	if err != nil {
		return err
	}
	start, end := min(offset, n), min(offset+limit, n)
	results := make([]any, 0, end-start)
	for i := start; i < end; i++ {
		results = append(results, item(i))
	}
	httpapi.WriteJSON(w, http.StatusOK, newPage(r, results, offset, limit, n))
	return nil
}

// uuid makes a stable UUID-shaped id of an object that has none in rosti
// (a release's config, a build): the same object always gets the same one.
func uuid(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	s := hex.EncodeToString(sum[:16])
	return s[0:8] + "-" + s[8:12] + "-4" + s[13:16] + "-a" + s[17:20] + "-" + s[20:32]
}

// timestamp is how times are shown: RFC 3339 in UTC.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func required(f *httpapi.Fields, name string, v *platform.ValidationError) string {
	s := f.String(name)
	if s == nil || *s == "" {
		v.Add(name, msgBlank)
		return ""
	}
	return *s
}

// mergeValidation combines the field problems of several validation errors.
func mergeValidation(errs ...error) error {
	var all platform.ValidationError
	for _, err := range errs {
		var v *platform.ValidationError
		if errors.As(err, &v) {
			for field, msgs := range v.Fields {
				for _, m := range msgs {
					all.Add(field, "%s", m)
				}
			}
		}
	}
	return all.Err()
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}
