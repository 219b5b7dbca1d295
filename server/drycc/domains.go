package drycc

import (
	"net/http"
	"slices"
	"strings"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

type domainJSON struct {
	App     string `json:"app"`
	Created string `json:"created"`
	Domain  string `json:"domain"`
	Owner   string `json:"owner"`
	Updated string `json:"updated"`
}

func (h *Handler) domains(w http.ResponseWriter, r *http.Request, u store.User) error {
	a, err := h.p.App(r.Context(), u, platform.AppNamed(r.PathValue("id")))
	if err != nil {
		return err
	}
	owner, err := h.ownerOf(r, u, a)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(a.Domains), func(i int) any {
		return domainJSON{App: a.Name, Created: timestamp(a.Created), Domain: a.Domains[i], Owner: owner, Updated: timestamp(a.Created)}
	})
}

func (h *Handler) addDomain(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	domain := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(required(f, "domain", &missing))), ".")
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	if slices.Contains(a.Domains, domain) {
		return fieldError("domain", msgDuplicateDomain)
	}
	domains := append(slices.Clone(a.Domains), domain)
	a, err = h.p.UpdateApp(r.Context(), u, ref, platform.AppInput{Domains: &domains})
	switch {
	case hasField(err, "domains") && strings.Contains(err.Error(), "already used"):
		err = fieldError("domain", msgDuplicateDomain)
	case hasField(err, "domains") && strings.Contains(err.Error(), "not a valid host name"):
		err = fieldError("domain", msgInvalidDomain)
	case hasField(err, "domains"):
		err = renameField(err, "domains", "domain")
	}
	if err != nil {
		return err
	}
	owner, err := h.ownerOf(r, u, a)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, domainJSON{App: a.Name, Created: timestamp(a.Created), Domain: domain, Owner: owner, Updated: timestamp(a.Created)})
	return nil
}

func (h *Handler) removeDomain(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	domain := strings.ToLower(r.PathValue("domain"))
	i := slices.Index(a.Domains, domain)
	if i < 0 {
		return store.ErrNotFound
	}
	if domain == h.p.DefaultDomain(a.Name) {
		return fieldError("domain", "The app's own domain "+domain+" cannot be removed.")
	}
	domains := slices.Delete(slices.Clone(a.Domains), i, i+1)
	if _, err := h.p.UpdateApp(r.Context(), u, ref, platform.AppInput{Domains: &domains}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tlsJSON struct {
	Created       string `json:"created"`
	App           string `json:"app"`
	Owner         string `json:"owner"`
	HTTPSEnforced bool   `json:"https_enforced"`
	Updated       string `json:"updated"`
	UUID          string `json:"uuid"`
}

func (h *Handler) writeTLS(w http.ResponseWriter, r *http.Request, u store.User, status int, a store.App) error {
	owner, err := h.ownerOf(r, u, a)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, status, tlsJSON{
		Created: timestamp(a.Created), App: a.Name, Owner: owner, HTTPSEnforced: a.HTTPSEnforced,
		Updated: timestamp(a.Created), UUID: uuid("tls", a.ID),
	})
	return nil
}

func (h *Handler) tls(w http.ResponseWriter, r *http.Request, u store.User) error {
	a, err := h.p.App(r.Context(), u, platform.AppNamed(r.PathValue("id")))
	if err != nil {
		return err
	}
	return h.writeTLS(w, r, u, http.StatusOK, a)
}

func (h *Handler) setTLS(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	enforced := f.Bool("https_enforced")
	if err := f.Err(); err != nil {
		return err
	}
	if enforced == nil {
		return fieldError("https_enforced", "This field is required.")
	}
	a, err := h.p.SetHTTPSEnforced(r.Context(), u, platform.AppNamed(r.PathValue("id")), *enforced)
	if err != nil {
		return err
	}
	return h.writeTLS(w, r, u, http.StatusCreated, a)
}

type certJSON struct {
	ID          int64    `json:"id"`
	Owner       string   `json:"owner"`
	SAN         []string `json:"san"`
	Domains     []string `json:"domains"`
	Created     string   `json:"created"`
	Updated     string   `json:"updated"`
	Name        string   `json:"name"`
	CommonName  string   `json:"common_name"`
	Fingerprint string   `json:"fingerprint"`
	Expires     string   `json:"expires"`
	Starts      string   `json:"starts"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
}

func toCertJSON(c store.Cert, owner string) certJSON {
	san, domains := c.SAN, c.Domains
	if san == nil {
		san = []string{}
	}
	if domains == nil {
		domains = []string{}
	}
	return certJSON{
		ID: c.ID, Owner: owner, SAN: san, Domains: domains, Created: timestamp(c.Created), Updated: timestamp(c.Updated),
		Name: c.Name, CommonName: c.CommonName, Fingerprint: c.Fingerprint, Expires: timestamp(c.Expires),
		Starts: timestamp(c.Starts), Issuer: c.Issuer, Subject: c.Subject,
	}
}

func (h *Handler) certs(w http.ResponseWriter, r *http.Request, u store.User) error {
	certs, err := h.p.Certs(r.Context(), u)
	if err != nil {
		return err
	}
	owners := make([]int64, len(certs))
	for i, c := range certs {
		owners[i] = c.OwnerID
	}
	names, err := h.p.Usernames(r.Context(), u, owners)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(certs), func(i int) any { return toCertJSON(certs[i], names[certs[i].OwnerID]) })
}

func (h *Handler) writeCert(w http.ResponseWriter, r *http.Request, u store.User, status int, c store.Cert) error {
	names, err := h.p.Usernames(r.Context(), u, []int64{c.OwnerID})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, status, toCertJSON(c, names[c.OwnerID]))
	return nil
}

func (h *Handler) cert(w http.ResponseWriter, r *http.Request, u store.User) error {
	c, err := h.p.Cert(r.Context(), u, r.PathValue("name"))
	if err != nil {
		return err
	}
	return h.writeCert(w, r, u, http.StatusOK, c)
}

func (h *Handler) createCert(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	name := required(f, "name", &missing)
	certPEM := required(f, "certificate", &missing)
	keyPEM := required(f, "key", &missing)
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	c, err := h.p.CreateCert(r.Context(), u, name, certPEM, keyPEM)
	if err != nil {
		return err
	}
	return h.writeCert(w, r, u, http.StatusCreated, c)
}

func (h *Handler) deleteCert(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.p.DeleteCert(r.Context(), u, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) attachCert(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	domain := required(f, "domain", &missing)
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	if _, err := h.p.AttachCertDomain(r.Context(), u, r.PathValue("name"), domain); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) detachCert(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.p.DetachCertDomain(r.Context(), u, r.PathValue("name"), r.PathValue("domain")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
