package rostiv1

import (
	"context"
	"net/http"

	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// planJSON is Rosti's plan plus our pids. cpu_quota is in percent of one
// CPU core (100 = a whole core).
type planJSON struct {
	ID       int64   `json:"id"`
	Name     string  `json:"name"`
	RAM      int64   `json:"ram"`
	Disk     int64   `json:"disk"`
	Price    float64 `json:"price"`
	CPUQuota int64   `json:"cpu_quota"`
	Pids     int64   `json:"pids"`
}

func toPlanJSON(p store.Plan) planJSON {
	return planJSON{ID: p.ID, Name: p.Name, RAM: p.MemoryMB, Disk: p.DiskMB, Price: p.Price, CPUQuota: p.CPUMillis / 10, Pids: p.Pids}
}

type runtimeJSON struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Image   string `json:"image"`
	Default bool   `json:"default"`
	Show    bool   `json:"show"`
}

func toRuntimeJSON(rt store.Runtime) runtimeJSON {
	return runtimeJSON{ID: rt.ID, Name: rt.Name, Image: rt.Image, Default: rt.Default, Show: rt.Show}
}

func (h *Handler) listPlans(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.catalogReader(r, u); err != nil {
		return err
	}
	plans, err := h.p.Plans(r.Context(), u)
	return writeList(w, plans, err, toPlanJSON)
}

func (h *Handler) listRuntimes(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.catalogReader(r, u); err != nil {
		return err
	}
	rts, err := h.p.Runtimes(r.Context(), u)
	return writeList(w, rts, err, toRuntimeJSON)
}

// catalogReader lets u list the catalogue under the route's company: a
// member of it, or anyone under company 0, which rostictl's `plans` and
// `runtimes` ask in a directory it has not deployed from (its state file
// names no company yet). The catalogue is the same for every company.
func (h *Handler) catalogReader(r *http.Request, u store.User) error {
	if r.PathValue("company_id") == "0" {
		return nil
	}
	return h.member(r, u)
}

func (h *Handler) member(r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	return h.p.CheckCompany(r.Context(), u, company)
}

func (h *Handler) createPlan(w http.ResponseWriter, r *http.Request, u store.User) error {
	return h.putPlan(w, r, u, store.Plan{})
}

func (h *Handler) updatePlan(w http.ResponseWriter, r *http.Request, u store.User) error {
	p, err := catalogEntry(h, r, u, h.p.Plan)
	if err != nil {
		return err
	}
	return h.putPlan(w, r, u, p)
}

// catalogEntry looks up the plan or runtime named by the route's {id}, for
// a member of the route's company.
func catalogEntry[T any](h *Handler, r *http.Request, u store.User, lookup func(context.Context, store.User, int64) (T, error)) (T, error) {
	var none T
	id, err := pathID(r, "id")
	if err != nil {
		return none, err
	}
	if err := h.member(r, u); err != nil {
		return none, err
	}
	return lookup(r.Context(), u, id)
}

func (h *Handler) putPlan(w http.ResponseWriter, r *http.Request, u store.User, p store.Plan) error {
	if err := h.member(r, u); err != nil {
		return err
	}
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	setString(&p.Name, f.String("name"))
	setInt(&p.MemoryMB, f.Int("ram"))
	setInt(&p.DiskMB, f.Int("disk"))
	setInt(&p.Pids, f.Int("pids"))
	if q := f.Int("cpu_quota"); q != nil {
		p.CPUMillis = *q * 10
	}
	if price := f.Float("price"); price != nil {
		p.Price = *price
	}
	if err := f.Err(); err != nil {
		return err
	}
	if p.Pids == 0 {
		p.Pids = p.MemoryMB
	}
	saved, err := h.p.PutPlan(r.Context(), u, p)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toPlanJSON(saved))
	return nil
}

func (h *Handler) createRuntime(w http.ResponseWriter, r *http.Request, u store.User) error {
	return h.putRuntime(w, r, u, store.Runtime{Show: true})
}

func (h *Handler) updateRuntime(w http.ResponseWriter, r *http.Request, u store.User) error {
	rt, err := catalogEntry(h, r, u, h.p.Runtime)
	if err != nil {
		return err
	}
	return h.putRuntime(w, r, u, rt)
}

func (h *Handler) putRuntime(w http.ResponseWriter, r *http.Request, u store.User, rt store.Runtime) error {
	if err := h.member(r, u); err != nil {
		return err
	}
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	setString(&rt.Name, f.String("name"))
	setString(&rt.Image, f.String("image"))
	if c := f.List("command", ""); c != nil {
		rt.Command = *c
	}
	if b := f.Bool("default"); b != nil {
		rt.Default = *b
	}
	if b := f.Bool("show"); b != nil {
		rt.Show = *b
	}
	if err := f.Err(); err != nil {
		return err
	}
	saved, err := h.p.PutRuntime(r.Context(), u, rt)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toRuntimeJSON(saved))
	return nil
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setInt(dst *int64, v *int64) {
	if v != nil {
		*dst = *v
	}
}
