// Package admin is the operator's API, served on the admin socket (mode
// 0600, root) for `rosti admin` and `rosti image`: whoever can open the
// socket acts as the operator (platform.Operator). Like the dialects, it
// translates HTTP to platform calls and holds no state.
package admin

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// Handler serves the admin API.
type Handler struct {
	p   *platform.Platform
	log *slog.Logger
	mux *http.ServeMux
}

// Route is one operation of the admin API.
type Route struct {
	Method, Pattern string
	handle          func(h *Handler, w http.ResponseWriter, r *http.Request, actor store.User) error
}

// Routes lists every operation of the admin API.
func Routes() []Route {
	return []Route{
		{"POST", "/admin/users", (*Handler).createUser},
		{"PUT", "/admin/users/{username}/password", (*Handler).setPassword},
		{"POST", "/admin/users/{username}/tokens", (*Handler).createToken},
		{"GET", "/admin/backup", (*Handler).backup},
		{"GET", "/admin/plans", (*Handler).listPlans},
		{"POST", "/admin/plans", (*Handler).putPlan},
		{"GET", "/admin/runtimes", (*Handler).listRuntimes},
		{"POST", "/admin/runtimes", (*Handler).putRuntime},
		{"GET", "/admin/images", (*Handler).listImages},
		{"POST", "/admin/images", (*Handler).importImage},
		{"POST", "/admin/images/pull", (*Handler).pullImage},
		{"POST", "/admin/images/gc", (*Handler).removeUnusedImages},
	}
}

// New returns the admin handler, with request ids and panic recovery.
func New(p *platform.Platform, log *slog.Logger) http.Handler {
	h := &Handler{p: p, log: log.With("component", "api", "dialect", "admin"), mux: http.NewServeMux()}
	for _, rt := range Routes() {
		h.mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.handle(h, w, r, platform.Operator()); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	return httpapi.WithRequestID(httpapi.Recover(h.log, h.mux))
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpapi.PublicMessage(h.log, w, r, err)
	body := map[string]any{"message": msg}
	var v *platform.ValidationError
	if errors.As(err, &v) {
		body["errors"] = v.Fields
	}
	httpapi.WriteJSON(w, status, body)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, actor store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	n := platform.NewUser{Username: str(f.String("username")), Password: str(f.String("password")), Email: str(f.String("email"))}
	if su := f.Bool("superuser"); su != nil {
		n.Superuser = *su
	}
	if err := f.Err(); err != nil {
		return err
	}
	u, err := h.p.CreateUser(r.Context(), actor, n)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": u.ID, "username": u.Username, "is_superuser": u.IsSuperuser})
	return nil
}

func (h *Handler) setPassword(w http.ResponseWriter, r *http.Request, actor store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	if err := h.p.SetPassword(r.Context(), actor, r.PathValue("username"), str(f.String("password"))); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "password changed"})
	return nil
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, actor store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	secret, t, err := h.p.CreateTokenFor(r.Context(), actor, r.PathValue("username"), str(f.String("name")))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": t.ID, "name": t.Name, "token": secret})
	return nil
}

func (h *Handler) backup(w http.ResponseWriter, r *http.Request, actor store.User) error {
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := h.p.Backup(r.Context(), actor, w); err != nil {
		// Headers are gone by now; a broken stream is all the client can be told.
		h.log.Error("backup failed", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (h *Handler) listPlans(w http.ResponseWriter, r *http.Request, actor store.User) error {
	plans, err := h.p.Plans(r.Context(), actor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, plans)
	return nil
}

func (h *Handler) putPlan(w http.ResponseWriter, r *http.Request, actor store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	pl := store.Plan{Name: str(f.String("name"))}
	for dst, name := range map[*int64]string{&pl.ID: "id", &pl.MemoryMB: "ram", &pl.DiskMB: "disk", &pl.Pids: "pids", &pl.CPUMillis: "cpu_millis"} {
		if v := f.Int(name); v != nil {
			*dst = *v
		}
	}
	if v := f.Float("price"); v != nil {
		pl.Price = *v
	}
	if err := f.Err(); err != nil {
		return err
	}
	saved, err := h.p.PutPlan(r.Context(), actor, pl)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, saved)
	return nil
}

func (h *Handler) listRuntimes(w http.ResponseWriter, r *http.Request, actor store.User) error {
	rts, err := h.p.Runtimes(r.Context(), actor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, rts)
	return nil
}

func (h *Handler) putRuntime(w http.ResponseWriter, r *http.Request, actor store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	rt := store.Runtime{Name: str(f.String("name")), Image: str(f.String("image")), Show: true}
	if v := f.Int("id"); v != nil {
		rt.ID = *v
	}
	if v := f.List("command", ""); v != nil {
		rt.Command = *v
	}
	if v := f.Bool("default"); v != nil {
		rt.Default = *v
	}
	if err := f.Err(); err != nil {
		return err
	}
	saved, err := h.p.PutRuntime(r.Context(), actor, rt)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, saved)
	return nil
}

func (h *Handler) listImages(w http.ResponseWriter, r *http.Request, actor store.User) error {
	names, err := h.p.Images(r.Context(), actor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"images": names})
	return nil
}

func (h *Handler) importImage(w http.ResponseWriter, r *http.Request, actor store.User) error {
	// The archive is the body, unbounded: images are large, and only root
	// reaches this socket.
	names, err := h.p.ImportImage(r.Context(), actor, r.Body, func(line string) { h.log.Debug("import", "progress", line) })
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"images": names})
	return nil
}

func (h *Handler) pullImage(w http.ResponseWriter, r *http.Request, actor store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	if err := h.p.PullImage(r.Context(), actor, str(f.String("ref"))); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "pulled"})
	return nil
}

func (h *Handler) removeUnusedImages(w http.ResponseWriter, r *http.Request, actor store.User) error {
	removed, err := h.p.RemoveUnusedImages(r.Context(), actor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"removed": removed})
	return nil
}
