package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rosti-paas/rosti/platform"
)

type membersData struct {
	Members []platform.Member
}

func (u *UI) membersPage(w http.ResponseWriter, r *http.Request, v *visit, status int, p page) error {
	ms, err := u.p.Members(r.Context(), v.user, v.company.ID)
	if err != nil {
		return err
	}
	p.Title, p.Data = "Members", membersData{Members: ms}
	u.render(w, r, v, status, "members", p)
	return nil
}

func (u *UI) members(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.membersPage(w, r, v, http.StatusOK, page{})
}

func (u *UI) addMember(w http.ResponseWriter, r *http.Request, v *visit) error {
	m, err := u.p.AddMember(r.Context(), v.user, v.company.ID, r.PostFormValue("username"))
	var ve *platform.ValidationError
	if errors.As(err, &ve) {
		return u.membersPage(w, r, v, http.StatusBadRequest, page{Errors: ve.Fields, Form: r.PostForm})
	}
	if err != nil {
		return err
	}
	return back(w, r, fmt.Sprintf("/c/%d/members", v.company.ID), m.Username+" is a member now.")
}

func (u *UI) removeMember(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	if err := u.p.RemoveMember(r.Context(), v.user, v.company.ID, id); err != nil {
		return err
	}
	if id == v.user.ID {
		return back(w, r, "/", "You left the company.")
	}
	return back(w, r, fmt.Sprintf("/c/%d/members", v.company.ID), "Member removed.")
}
