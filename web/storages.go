package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

type storagesData struct {
	Storages []platform.StorageInfo
	Types    []string
}

func (u *UI) storagesPage(w http.ResponseWriter, r *http.Request, v *visit, status int, p page) error {
	list, err := u.p.Storages(r.Context(), v.user, v.company.ID)
	if err != nil {
		return err
	}
	p.Title, p.Data = "Databases", storagesData{Storages: list, Types: []string{store.StoragePostgres, store.StorageMariaDB}}
	u.render(w, r, v, status, "storages", p)
	return nil
}

func (u *UI) storages(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.storagesPage(w, r, v, http.StatusOK, page{})
}

func (u *UI) storagesInvalid(w http.ResponseWriter, r *http.Request, v *visit, err error) error {
	var ve *platform.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return u.storagesPage(w, r, v, http.StatusBadRequest, page{Errors: ve.Fields, Form: r.PostForm})
}

func (u *UI) storagesPath(v *visit) string { return fmt.Sprintf("/c/%d/storages", v.company.ID) }

func (u *UI) createStorage(w http.ResponseWriter, r *http.Request, v *visit) error {
	typ, password, note := r.PostFormValue("type"), r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("note"))
	s, err := u.p.CreateStorage(r.Context(), v.user, v.company.ID, platform.StorageInput{Type: &typ, Password: &password, Note: &note})
	if err != nil {
		return u.storagesInvalid(w, r, v, err)
	}
	return back(w, r, u.storagesPath(v), "Database "+s.Database+" created.")
}

func (u *UI) storagePassword(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := pathID(r, "storage")
	if err != nil {
		return err
	}
	password := r.PostFormValue("password")
	s, err := u.p.UpdateStorage(r.Context(), v.user, v.company.ID, id, platform.StorageInput{Password: &password})
	var ve *platform.ValidationError
	if errors.As(err, &ve) {
		return u.storagesPage(w, r, v, http.StatusBadRequest, page{Flash: "The new password " + strings.Join(ve.Fields["password"], "; ") + "."})
	}
	if err != nil {
		return err
	}
	return back(w, r, u.storagesPath(v), "The password of "+s.Database+" is changed.")
}

func (u *UI) deleteStorage(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := pathID(r, "storage")
	if err != nil {
		return err
	}
	s, err := u.p.Storage(r.Context(), v.user, v.company.ID, id)
	if err != nil {
		return err
	}
	if strings.TrimSpace(r.PostFormValue("confirm_name")) != s.Database {
		return u.storagesPage(w, r, v, http.StatusBadRequest, page{Flash: "Type the database's name, " + s.Database + ", to delete it."})
	}
	if err := u.p.DeleteStorage(r.Context(), v.user, v.company.ID, id); err != nil {
		return err
	}
	return back(w, r, u.storagesPath(v), "Database "+s.Database+" deleted.")
}
