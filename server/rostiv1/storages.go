package rostiv1

import (
	"net/http"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// storageJSON is what an app needs to connect to a storage; the password
// is the user's own and is never shown.
type storageJSON struct {
	ID       int64     `json:"id"`
	Type     string    `json:"type"`
	Name     string    `json:"name"` // the database
	Username string    `json:"username"`
	Host     string    `json:"host"`
	Port     int       `json:"port"`
	Note     string    `json:"note"`
	Created  time.Time `json:"created"`
	Size     *int64    `json:"size"` // bytes; null when the server did not answer
}

func toStorageJSON(s platform.StorageInfo) storageJSON {
	return storageJSON{ID: s.ID, Type: s.Type, Name: s.Database, Username: s.Username, Host: s.Host, Port: s.Port,
		Note: s.Note, Created: s.Created, Size: s.Size}
}

// storageInput reads type (or Rosti's older storage_type), password and note.
func storageInput(w http.ResponseWriter, r *http.Request) (platform.StorageInput, error) {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return platform.StorageInput{}, err
	}
	in := platform.StorageInput{Type: f.String("type"), Password: f.String("password"), Note: f.String("note")}
	alias := f.String("storage_type")
	if err := f.Err(); err != nil {
		return platform.StorageInput{}, err
	}
	switch {
	case in.Type == nil:
		in.Type = alias
	case alias != nil && *alias != *in.Type:
		return platform.StorageInput{}, platform.FieldError("storage_type", "differs from type; send one of them")
	}
	return in, nil
}

func (h *Handler) listStorages(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	list, err := h.p.Storages(r.Context(), u, company)
	return writeList(w, list, err, toStorageJSON)
}

func (h *Handler) createStorage(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	in, err := storageInput(w, r)
	if err != nil {
		return err
	}
	s, err := h.p.CreateStorage(r.Context(), u, company, in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toStorageJSON(s))
	return nil
}

func (h *Handler) readStorage(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, id, err := companyAndID(r)
	if err != nil {
		return err
	}
	s, err := h.p.Storage(r.Context(), u, company, id)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toStorageJSON(s))
	return nil
}

// updateStorage sets a new password and/or note; PUT, as Rosti's
// reference has it, requires the password, PATCH takes either.
func (h *Handler) updateStorage(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, id, err := companyAndID(r)
	if err != nil {
		return err
	}
	if err := h.p.CheckCompany(r.Context(), u, company); err != nil {
		return err
	}
	in, err := storageInput(w, r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodPut && in.Password == nil {
		if _, err := h.p.Storage(r.Context(), u, company, id); err != nil {
			return err
		}
		return platform.FieldError("password", "this field is required")
	}
	s, err := h.p.UpdateStorage(r.Context(), u, company, id, in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toStorageJSON(s))
	return nil
}

func (h *Handler) deleteStorage(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, id, err := companyAndID(r)
	if err != nil {
		return err
	}
	if err := h.p.DeleteStorage(r.Context(), u, company, id); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "storage deleted"})
	return nil
}
