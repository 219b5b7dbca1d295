package rostiv1

import (
	"net/http"
	"time"

	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

type tokenJSON struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used"`
	Token    string     `json:"token,omitempty"` // only in the answer that creates it
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request, u store.User) error {
	ts, err := h.p.Tokens(r.Context(), u)
	return writeList(w, ts, err, func(t store.Token) tokenJSON {
		return tokenJSON{ID: t.ID, Name: t.Name, Created: t.Created, LastUsed: t.LastUsed}
	})
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	name := f.String("name")
	if err := f.Err(); err != nil {
		return err
	}
	if name == nil {
		empty := ""
		name = &empty
	}
	secret, t, err := h.p.CreateToken(r.Context(), u, *name)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, tokenJSON{ID: t.ID, Name: t.Name, Created: t.Created, Token: secret})
	return nil
}

func (h *Handler) deleteToken(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := h.p.RevokeToken(r.Context(), u, id); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "token revoked"})
	return nil
}
