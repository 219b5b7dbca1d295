package rostiv1

import (
	"net/http"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// memberJSON is a member of a company (rosti's extension).
type memberJSON struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Role     string `json:"role"`
}

func toMemberJSON(m platform.Member) memberJSON {
	return memberJSON{ID: m.UserID, Username: m.Username, Role: string(m.Role)}
}

func (h *Handler) listMembers(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	ms, err := h.p.Members(r.Context(), u, company)
	return writeList(w, ms, err, toMemberJSON)
}

func (h *Handler) addMember(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	// Who may not see the company learns nothing from the body's problems.
	if err := h.p.CheckCompany(r.Context(), u, company); err != nil {
		return err
	}
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	username := f.String("username")
	if err := f.Err(); err != nil {
		return err
	}
	if username == nil {
		return platform.FieldError("username", "this field is required")
	}
	m, err := h.p.AddMember(r.Context(), u, company, *username)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toMemberJSON(m))
	return nil
}

func (h *Handler) deleteMember(w http.ResponseWriter, r *http.Request, u store.User) error {
	company, err := pathID(r, "company_id")
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := h.p.RemoveMember(r.Context(), u, company, id); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": "member removed"})
	return nil
}
