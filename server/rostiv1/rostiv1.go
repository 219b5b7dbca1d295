// Package rostiv1 is Rosti's native REST API under /api/v1/, in the shapes
// Rosti's own client (rostictl) reads: plain JSON arrays for lists, 200 for
// create, update, delete and actions, and errors with a "message" (plus
// "errors" per field for validation). It translates HTTP to platform calls
// and platform results to JSON; it holds no state of its own beyond a cache
// of rendered app lists, keyed by the store revision.
package rostiv1

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// Handler serves the Rosti v1 API.
type Handler struct {
	p    *platform.Platform
	log  *slog.Logger
	mux  *http.ServeMux
	list listCache
}

// Route is one operation of the API; the OpenAPI document must describe
// exactly these.
type Route struct {
	Method, Pattern string
	handle          func(h *Handler, w http.ResponseWriter, r *http.Request, u store.User) error
}

// Routes lists every operation of the Rosti v1 API.
func Routes() []Route {
	return []Route{
		{"GET", "/api/v1/companies/", (*Handler).listCompanies},
		{"GET", "/api/v1/tokens/", (*Handler).listTokens},
		{"POST", "/api/v1/tokens/", (*Handler).createToken},
		{"DELETE", "/api/v1/tokens/{id}/", (*Handler).deleteToken},
		{"GET", "/api/v1/keys/", (*Handler).listKeys},
		{"POST", "/api/v1/keys/", (*Handler).addKey},
		{"DELETE", "/api/v1/keys/{id}/", (*Handler).deleteKey},
		{"GET", "/api/v1/{company_id}/apps/", (*Handler).listApps},
		{"POST", "/api/v1/{company_id}/apps/", (*Handler).createApp},
		{"GET", "/api/v1/{company_id}/apps/{id}/", (*Handler).readApp},
		{"PUT", "/api/v1/{company_id}/apps/{id}/", (*Handler).updateApp},
		{"PATCH", "/api/v1/{company_id}/apps/{id}/", (*Handler).updateApp},
		{"DELETE", "/api/v1/{company_id}/apps/{id}/", (*Handler).deleteApp},
		{"PUT", "/api/v1/{company_id}/apps-action/{id}/", (*Handler).appAction},
		{"GET", "/api/v1/{company_id}/apps-status/{id}/", (*Handler).appStatus},
		{"GET", "/api/v1/{company_id}/apps-logs/{id}/", (*Handler).appLogs},
		{"GET", "/api/v1/{company_id}/apps-releases/{id}/", (*Handler).listReleases},
		{"PUT", "/api/v1/{company_id}/apps-rollback/{id}/", (*Handler).rollback},
		{"GET", "/api/v1/{company_id}/apps-env/{id}/", (*Handler).readEnv},
		{"PUT", "/api/v1/{company_id}/apps-env/{id}/", (*Handler).updateEnv},
		{"PATCH", "/api/v1/{company_id}/apps-env/{id}/", (*Handler).updateEnv},
		{"GET", "/api/v1/{company_id}/apps-scale/{id}/", (*Handler).readScale},
		{"PUT", "/api/v1/{company_id}/apps-scale/{id}/", (*Handler).updateScale},
		{"GET", "/api/v1/{company_id}/jobs/", (*Handler).listJobs},
		{"GET", "/api/v1/{company_id}/jobs/{id}/", (*Handler).readJob},
		{"GET", "/api/v1/{company_id}/members/", (*Handler).listMembers},
		{"POST", "/api/v1/{company_id}/members/", (*Handler).addMember},
		{"DELETE", "/api/v1/{company_id}/members/{id}/", (*Handler).deleteMember},
		{"GET", "/api/v1/{company_id}/plans/", (*Handler).listPlans},
		{"POST", "/api/v1/{company_id}/plans/", (*Handler).createPlan},
		{"PUT", "/api/v1/{company_id}/plans/{id}/", (*Handler).updatePlan},
		{"GET", "/api/v1/{company_id}/runtimes/", (*Handler).listRuntimes},
		{"POST", "/api/v1/{company_id}/runtimes/", (*Handler).createRuntime},
		{"PUT", "/api/v1/{company_id}/runtimes/{id}/", (*Handler).updateRuntime},
		{"GET", "/api/v1/{company_id}/storages/", (*Handler).listStorages},
		{"POST", "/api/v1/{company_id}/storages/", (*Handler).createStorage},
		{"GET", "/api/v1/{company_id}/storages/{id}/", (*Handler).readStorage},
		{"PUT", "/api/v1/{company_id}/storages/{id}/", (*Handler).updateStorage},
		{"PATCH", "/api/v1/{company_id}/storages/{id}/", (*Handler).updateStorage},
		{"DELETE", "/api/v1/{company_id}/storages/{id}/", (*Handler).deleteStorage},
	}
}

// New returns the Rosti v1 handler. Paths without their trailing slash are
// served too, as Django's clients are used to.
func New(p *platform.Platform, log *slog.Logger) *Handler {
	h := &Handler{p: p, log: log.With("component", "api", "dialect", "rosti"), mux: http.NewServeMux()}
	for _, rt := range Routes() {
		rt := rt
		h.mux.HandleFunc(rt.Method+" "+rt.Pattern+"{$}", func(w http.ResponseWriter, r *http.Request) {
			u, err := httpapi.User(p, r)
			if err == nil {
				err = rt.handle(h, w, r, u)
			}
			if err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	h.mux.HandleFunc("GET /api/schema/{$}", serveSchema)
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, notFound("no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	return h
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p[len(p)-1] != '/' {
		r.URL.Path = p + "/"
	}
	h.mux.ServeHTTP(w, r)
}

type errorBody struct {
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors,omitempty"`
}

// writeError renders any error in Rosti's shape.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := httpapi.PublicMessage(h.log, w, r, err)
	body := errorBody{Message: msg}
	if v, ok := asValidation(err); ok {
		body = errorBody{Message: "validation error", Errors: v.Fields}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Token realm="rosti"`)
	}
	httpapi.WriteJSON(w, status, body)
}

// pathID reads an integer path parameter; anything else names no object.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, notFound("not found")
	}
	return id, nil
}

// companyAndID reads the ids of a /{company_id}/.../{id}/ route.
func companyAndID(r *http.Request) (int64, int64, error) {
	c, err := pathID(r, "company_id")
	if err != nil {
		return 0, 0, err
	}
	id, err := pathID(r, "id")
	return c, id, err
}

// knownApp names the app of the route once the user may manage it, so that
// another company's id answers 404 whatever the request's body holds.
func (h *Handler) knownApp(r *http.Request, u store.User) (platform.AppRef, error) {
	ref, err := appRef(r)
	if err != nil {
		return ref, err
	}
	_, err = h.p.App(r.Context(), u, ref)
	return ref, err
}

// appRef names the app of a /{company_id}/apps.../{id}/ route.
func appRef(r *http.Request) (platform.AppRef, error) {
	c, id, err := companyAndID(r)
	return platform.AppByID(c, id), err
}

// listCache keeps the last rendered app list of each company until the
// store changes, because listing is by far the most frequent call and
// encoding a thousand apps each time is what bounds its throughput.
type listCache struct {
	mu      sync.Mutex
	entries map[int64]cachedList
}

type cachedList struct {
	revision uint64
	body     []byte
}

func (c *listCache) get(company int64, revision uint64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[company]
	return e.body, ok && e.revision == revision
}

func (c *listCache) put(company int64, revision uint64, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[int64]cachedList{}
	}
	c.entries[company] = cachedList{revision: revision, body: body}
}

// writeList answers items, each shaped by conv, as a JSON array (Rosti's
// lists are plain arrays, never null).
func writeList[T, J any](w http.ResponseWriter, items []T, err error, conv func(T) J) error {
	if err != nil {
		return err
	}
	out := make([]J, 0, len(items))
	for _, item := range items {
		out = append(out, conv(item))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
