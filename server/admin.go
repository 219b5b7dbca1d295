package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// adminHandler is the operator's API, reachable only through the admin
// socket (mode 0600, root): whoever can open it acts as the operator.
func adminHandler(p *platform.Platform, log *slog.Logger) http.Handler {
	log = log.With("dialect", "admin")
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		status, msg := httpapi.PublicMessage(log, w, r, err)
		body := map[string]any{"message": msg}
		var v *platform.ValidationError
		if errors.As(err, &v) {
			body["errors"] = v.Fields
		}
		httpapi.WriteJSON(w, status, body)
	}
	decode := func(w http.ResponseWriter, r *http.Request) (*httpapi.Fields, bool) {
		raw, err := httpapi.DecodeObject(w, r)
		if err != nil {
			fail(w, r, err)
			return nil, false
		}
		return httpapi.NewFields(raw), true
	}
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/users", func(w http.ResponseWriter, r *http.Request) {
		f, ok := decode(w, r)
		if !ok {
			return
		}
		n := platform.NewUser{Username: str(f.String("username")), Password: str(f.String("password")), Email: str(f.String("email"))}
		if su := f.Bool("superuser"); su != nil {
			n.Superuser = *su
		}
		if err := f.Err(); err != nil {
			fail(w, r, err)
			return
		}
		u, err := p.CreateUser(n)
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": u.ID, "username": u.Username, "is_superuser": u.IsSuperuser})
	})
	mux.HandleFunc("PUT /admin/users/{username}/password", func(w http.ResponseWriter, r *http.Request) {
		f, ok := decode(w, r)
		if !ok {
			return
		}
		if err := p.SetPassword(r.PathValue("username"), str(f.String("password"))); err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "password changed"})
	})
	mux.HandleFunc("POST /admin/users/{username}/tokens", func(w http.ResponseWriter, r *http.Request) {
		f, ok := decode(w, r)
		if !ok {
			return
		}
		secret, t, err := p.CreateTokenFor(r.PathValue("username"), str(f.String("name")))
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": t.ID, "name": t.Name, "token": secret})
	})
	mux.HandleFunc("GET /admin/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := p.Backup(w); err != nil {
			// Headers are gone by now; a broken stream is all the client can be told.
			log.Error("backup failed", "err", err)
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("POST /admin/plans", func(w http.ResponseWriter, r *http.Request) {
		f, ok := decode(w, r)
		if !ok {
			return
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
			fail(w, r, err)
			return
		}
		saved, err := p.PutPlan(platform.Operator(), pl)
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, saved)
	})
	mux.HandleFunc("POST /admin/runtimes", func(w http.ResponseWriter, r *http.Request) {
		f, ok := decode(w, r)
		if !ok {
			return
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
			fail(w, r, err)
			return
		}
		saved, err := p.PutRuntime(platform.Operator(), rt)
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, saved)
	})
	mux.HandleFunc("POST /admin/images", func(w http.ResponseWriter, r *http.Request) {
		// The archive is the body, unbounded: images are large, and only
		// root reaches this socket.
		names, err := p.ImportImage(r.Context(), r.Body, func(line string) { log.Debug("import", "progress", line) })
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"images": names})
	})
	mux.HandleFunc("POST /admin/images/pull", func(w http.ResponseWriter, r *http.Request) {
		f, ok := decode(w, r)
		if !ok {
			return
		}
		if err := p.PullImage(r.Context(), str(f.String("ref"))); err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "pulled"})
	})
	mux.HandleFunc("GET /admin/images", func(w http.ResponseWriter, r *http.Request) {
		names, err := p.Images(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"images": names})
	})
	mux.HandleFunc("POST /admin/images/gc", func(w http.ResponseWriter, r *http.Request) {
		removed, err := p.RemoveUnusedImages(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"removed": removed})
	})
	mux.HandleFunc("GET /admin/plans", func(w http.ResponseWriter, r *http.Request) {
		plans, err := p.Plans()
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, plans)
	})
	mux.HandleFunc("GET /admin/runtimes", func(w http.ResponseWriter, r *http.Request) {
		rts, err := p.Runtimes()
		if err != nil {
			fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, rts)
	})
	return httpapi.WithRequestID(httpapi.Recover(log, mux))
}
