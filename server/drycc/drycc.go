// Package drycc is the Drycc v2 / Deis v1 controller dialect: for now the
// account endpoints every dialect shares (/v1/auth/ and /v2/auth/). It
// renders errors the way Django REST framework does ({"detail": ...}, or a
// list of messages per field) and sets the DRYCC_* version headers.
package drycc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// APIVersion is the newest Drycc controller API this dialect follows.
const APIVersion = "2.3"

// Handler serves /v1/auth/ and /v2/auth/.
type Handler struct {
	p       *platform.Platform
	log     *slog.Logger
	version string
	mux     *http.ServeMux
}

// New returns the dialect's handler; version is rosti's own.
func New(p *platform.Platform, version string, log *slog.Logger) *Handler {
	h := &Handler{p: p, log: log.With("component", "api", "dialect", "drycc"), version: version, mux: http.NewServeMux()}
	for _, prefix := range []string{"/v1", "/v2"} {
		h.mux.HandleFunc("POST "+prefix+"/auth/register/{$}", h.register)
		h.mux.HandleFunc("POST "+prefix+"/auth/login/{$}", h.login)
		h.mux.HandleFunc("DELETE "+prefix+"/auth/cancel/{$}", h.cancel)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, errNotFound)
	})
	return h
}

var errNotFound = fmt.Errorf("no such endpoint: %w", store.ErrNotFound)

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("DRYCC_API_VERSION", APIVersion)
	w.Header().Set("DRYCC_PLATFORM_VERSION", h.version)
	if p := r.URL.Path; p[len(p)-1] != '/' {
		r.URL.Path = p + "/"
	}
	h.mux.ServeHTTP(w, r)
}

// writeError renders an error as Django REST framework does.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpapi.PublicMessage(h.log, w, r, err)
	var v *platform.ValidationError
	if errors.As(err, &v) {
		httpapi.WriteJSON(w, status, v.Fields)
		return
	}
	httpapi.WriteJSON(w, status, map[string]string{"detail": msg})
}

type userJSON struct {
	ID              int64      `json:"id"`
	LastLogin       *time.Time `json:"last_login"`
	IsSuperuser     bool       `json:"is_superuser"`
	Username        string     `json:"username"`
	FirstName       string     `json:"first_name"`
	LastName        string     `json:"last_name"`
	Email           string     `json:"email"`
	IsStaff         bool       `json:"is_staff"`
	IsActive        bool       `json:"is_active"`
	DateJoined      time.Time  `json:"date_joined"`
	Groups          []string   `json:"groups"`
	UserPermissions []string   `json:"user_permissions"`
}

func toUserJSON(u store.User) userJSON {
	return userJSON{
		ID: u.ID, LastLogin: u.LastLogin, IsSuperuser: u.IsSuperuser, Username: u.Username,
		FirstName: u.FirstName, LastName: u.LastName, Email: u.Email, IsStaff: u.IsSuperuser,
		IsActive: u.IsActive, DateJoined: u.Created, Groups: []string{}, UserPermissions: []string{},
	}
}

func required(f *httpapi.Fields, name string, v *platform.ValidationError) string {
	s := f.String(name)
	if s == nil || *s == "" {
		v.Add(name, "This field is required.")
		return ""
	}
	return *s
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	var actor *store.User
	if _, ok := httpapi.TokenFrom(r); ok {
		u, err := httpapi.User(h.p, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		actor = &u
	}
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f := httpapi.NewFields(raw)
	var missing platform.ValidationError
	n := platform.NewUser{Username: required(f, "username", &missing), Password: required(f, "password", &missing)}
	setString(&n.Email, f.String("email"))
	setString(&n.FirstName, f.String("first_name"))
	setString(&n.LastName, f.String("last_name"))
	if su := f.Bool("is_superuser"); su != nil {
		n.Superuser = *su
	}
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.p.Register(r.Context(), actor, n)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, toUserJSON(u))
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f := httpapi.NewFields(raw)
	var missing platform.ValidationError
	username, password := required(f, "username", &missing), required(f, "password", &missing)
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		h.writeError(w, r, err)
		return
	}
	token, err := h.p.LoginFrom(r.Context(), httpapi.ClientAddress(r), username, password)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	u, err := httpapi.User(h.p, r)
	if err == nil {
		err = h.p.CancelAccount(r.Context(), u)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
