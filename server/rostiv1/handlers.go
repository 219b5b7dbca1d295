package rostiv1

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

func notFound(msg string) error { return fmt.Errorf("%s: %w", msg, store.ErrNotFound) }

func asValidation(err error) (*platform.ValidationError, bool) {
	var v *platform.ValidationError
	ok := errors.As(err, &v)
	return v, ok
}

type companyJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func (h *Handler) listCompanies(w http.ResponseWriter, r *http.Request, u store.User) error {
	cs, err := h.p.Companies(r.Context(), u)
	return writeList(w, cs, err, func(c store.Company) companyJSON { return companyJSON{c.ID, c.Name} })
}

type sshAccess struct {
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	Username string `json:"username"`
}

type appJSON struct {
	ID          int64       `json:"id"`
	Date        time.Time   `json:"date"`
	Name        string      `json:"name"`
	Enabled     bool        `json:"enabled"`
	Image       string      `json:"image"`
	Domains     []string    `json:"domains"`
	Mode        string      `json:"mode"`
	Plan        int64       `json:"plan"`
	AppPort     int         `json:"app_port"`
	SSHAccess   []sshAccess `json:"ssh_access"`
	SSHKeys     []string    `json:"ssh_keys"`
	SSHPassword string      `json:"ssh_password"`
	Healthcheck string      `json:"healthcheck"` // our extension
}

func (h *Handler) appJSON(a store.App) appJSON {
	cfg := h.p.Config()
	keys := a.SSHKeys
	if keys == nil {
		keys = []string{}
	}
	return appJSON{
		ID: a.ID, Date: a.Created, Name: a.Name, Enabled: a.Enabled(), Image: a.Image,
		Domains: a.Domains, Mode: a.Mode, Plan: a.PlanID, AppPort: a.AppPort,
		SSHAccess: []sshAccess{{Hostname: cfg.SSHHost, Port: cfg.SSHPort, Username: a.Name}},
		SSHKeys:   keys, Healthcheck: a.Healthcheck,
	}
}

func (h *Handler) listApps(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	if err := h.p.CheckCompany(r.Context(), u, company); err != nil {
		return err
	}
	revision := h.p.Revision()
	body, ok := h.list.get(company, revision)
	if !ok {
		apps, err := h.p.Apps(r.Context(), u, company)
		if err != nil {
			return err
		}
		out := make([]appJSON, len(apps))
		for i, a := range apps {
			out[i] = h.appJSON(a)
		}
		if body, err = json.Marshal(out); err != nil {
			return err
		}
		h.list.put(company, revision, body)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

func appInput(w http.ResponseWriter, r *http.Request) (platform.AppInput, error) {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return platform.AppInput{}, err
	}
	in := platform.AppInput{
		Name:        f.String("name"),
		Image:       f.String("image"),
		Domains:     f.List("domains", ""),
		Mode:        f.String("mode"),
		Plan:        f.Int("plan"),
		SSHKeys:     f.List("ssh_keys", "\n"),
		SSHPassword: f.String("ssh_password"),
		Healthcheck: f.String("healthcheck"),
	}
	if port := f.Int("app_port"); port != nil {
		p := int(*port)
		if int64(p) != *port {
			p = -1
		}
		in.AppPort = &p
	}
	return in, f.Err()
}

func (h *Handler) createApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	if err := h.p.CheckCompany(r.Context(), u, company); err != nil {
		return err
	}
	in, err := appInput(w, r)
	if err != nil {
		return err
	}
	a, err := h.p.CreateApp(r.Context(), u, company, in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, h.appJSON(a))
	return nil
}

func (h *Handler) readApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := appRef(r)
	if err != nil {
		return err
	}
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, h.appJSON(a))
	return nil
}

func (h *Handler) updateApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := h.knownApp(r, u)
	if err != nil {
		return err
	}
	in, err := appInput(w, r)
	if err != nil {
		return err
	}
	a, err := h.p.UpdateApp(r.Context(), u, ref, in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, h.appJSON(a))
	return nil
}

func (h *Handler) deleteApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := appRef(r)
	if err != nil {
		return err
	}
	if err := h.p.DeleteApp(r.Context(), u, ref); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "app deleted"})
	return nil
}
