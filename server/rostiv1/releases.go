package rostiv1

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// Releases, config and scale are rosti's extensions of the Rosti dialect,
// named like its apps-action and apps-status: apps-releases/{id}/,
// apps-rollback/{id}/, apps-env/{id}/ and apps-scale/{id}/.

type releaseJSON struct {
	Version      int64     `json:"version"`
	Status       string    `json:"status"`
	Source       string    `json:"source"`
	Summary      string    `json:"summary"`
	Author       string    `json:"author"`
	Created      time.Time `json:"created"`
	Image        string    `json:"image"`
	Revision     string    `json:"revision"`
	ProcessTypes []string  `json:"process_types"`
	// Config names the variables the release set; their values are the
	// app's (apps-env), not repeated in every release listed.
	Config       []string `json:"config"`
	Message      string   `json:"message"`
	RolledBackTo int64    `json:"rolled_back_to,omitempty"`
	Current      bool     `json:"current"`
}

func toReleaseJSON(r store.Release, current int64) releaseJSON {
	types := r.ProcessTypes
	if types == nil {
		types = []string{"web"}
	}
	return releaseJSON{
		Version: r.Version, Status: r.Status, Source: r.Source, Summary: r.Summary, Author: r.Author,
		Created: r.Created, Image: r.Image, Revision: r.Revision, ProcessTypes: types,
		Config: slices.Sorted(maps.Keys(r.Config)), Message: r.Message, RolledBackTo: r.RolledBackTo,
		Current: r.Version == current,
	}
}

func (h *Handler) listReleases(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := appRef(r)
	if err != nil {
		return err
	}
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	rels, err := h.p.Releases(r.Context(), u, ref)
	return writeList(w, rels, err, func(rel store.Release) releaseJSON { return toReleaseJSON(rel, a.Release) })
}

func (h *Handler) rollback(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := h.knownApp(r, u)
	if err != nil {
		return err
	}
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	version := f.Int("version")
	if err := f.Err(); err != nil {
		return err
	}
	var v int64
	if version != nil {
		if v = *version; v <= 0 {
			return platform.FieldError("version", "must be a release number like 3, or left out for the previous release")
		}
	}
	rel, err := h.p.Rollback(r.Context(), u, ref, v, nil)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toReleaseJSON(rel, rel.Version))
	return nil
}

func (h *Handler) readEnv(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := appRef(r)
	if err != nil {
		return err
	}
	env, err := h.p.AppConfig(r.Context(), u, ref)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, env)
	return nil
}

// updateEnv sets the app's environment: PUT replaces it whole, PATCH
// changes the keys given, null unsetting one. Either makes a release.
func (h *Handler) updateEnv(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := h.knownApp(r, u)
	if err != nil {
		return err
	}
	values, err := bodyValues[*string](w, r, "must be a string, or null to unset it")
	if err != nil {
		return err
	}
	if _, err := h.p.SetConfig(r.Context(), u, ref, values, r.Method == http.MethodPut, nil); err != nil {
		return err
	}
	return h.readEnv(w, r, u)
}

func (h *Handler) readScale(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := appRef(r)
	if err != nil {
		return err
	}
	counts, err := h.p.ProcessTypes(r.Context(), u, ref)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, counts)
	return nil
}

func (h *Handler) updateScale(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := h.knownApp(r, u)
	if err != nil {
		return err
	}
	counts, err := bodyValues[int](w, r, "must be a whole number of containers")
	if err != nil {
		return err
	}
	if _, err := h.p.Scale(r.Context(), u, ref, counts); err != nil {
		return err
	}
	return h.readScale(w, r, u)
}

// bodyValues reads every field of the request's JSON object as a T, saying
// of each field that is not one what problem says.
func bodyValues[T any](w http.ResponseWriter, r *http.Request, problem string) (map[string]T, error) {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(raw))
	var bad platform.ValidationError
	for k, v := range raw {
		var val T
		if err := json.Unmarshal(v, &val); err != nil {
			bad.Add(k, "%s", problem)
			continue
		}
		out[k] = val
	}
	return out, bad.Err()
}
