package rostiv1

import (
	"net/http"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// keyJSON is a user's SSH public key; it opens the apps of the user's
// companies over SSH.
type keyJSON struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created"`
}

func toKeyJSON(k store.Key) keyJSON {
	return keyJSON{ID: k.ID, Name: k.Name, Key: k.PublicKey, Fingerprint: k.Fingerprint, Created: k.Created}
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request, u store.User) error {
	ks, err := h.p.Keys(r.Context(), u)
	return writeList(w, ks, err, toKeyJSON)
}

func (h *Handler) addKey(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	name, key := f.String("name"), f.String("key")
	if err := f.Err(); err != nil {
		return err
	}
	if key == nil {
		return platform.FieldError("key", "this field is required")
	}
	if name == nil {
		name = new(string)
	}
	k, err := h.p.AddKey(r.Context(), u, *name, *key)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toKeyJSON(k))
	return nil
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := h.p.DeleteKey(r.Context(), u, id); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "key deleted"})
	return nil
}
