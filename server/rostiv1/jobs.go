package rostiv1

import (
	"net/http"
	"time"

	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// jobJSON is a piece of long work, such as the pull of an app's image.
type jobJSON struct {
	ID       int64      `json:"id"`
	Kind     string     `json:"kind"`
	Target   string     `json:"target"`
	Status   string     `json:"status"`
	Progress int        `json:"progress"`
	Message  string     `json:"message"`
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
}

func toJobJSON(j store.Job) jobJSON {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return jobJSON{ID: j.ID, Kind: j.Kind, Target: j.Target, Status: j.Status, Progress: j.Progress, Message: j.Message,
		Created: j.Created, Started: at(j.Started), Finished: at(j.Finished)}
}

func (h *Handler) listJobs(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	jobs, err := h.p.Jobs(r.Context(), u, company)
	return writeList(w, jobs, err, toJobJSON)
}

func (h *Handler) readJob(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, id, err := companyAndID(r)
	if err != nil {
		return err
	}
	j, err := h.p.Job(r.Context(), u, company, id)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toJobJSON(j))
	return nil
}
