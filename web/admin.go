package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

// The operator's pages. platform refuses every call of a user who is not
// a superuser (403); the navigation shows them to superusers only.

type adminUsersData struct {
	Users            []store.User
	RequireTwoFactor bool
}

func (u *UI) adminUsersPage(w http.ResponseWriter, r *http.Request, v *visit, status int, p page) error {
	users, err := u.p.Users(r.Context(), v.user)
	if err != nil {
		return err
	}
	required, err := u.p.TwoFactorRequired(r.Context())
	if err != nil {
		return err
	}
	p.Title, p.Data = "Users", adminUsersData{Users: users, RequireTwoFactor: required}
	u.render(w, r, v, status, "admin_users", p)
	return nil
}

func (u *UI) adminUsers(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.adminUsersPage(w, r, v, http.StatusOK, page{})
}

// adminInvalid shows a form of an admin page again with its problems.
func (u *UI) adminInvalid(w http.ResponseWriter, r *http.Request, v *visit, show func(http.ResponseWriter, *http.Request, *visit, int, page) error, err error) error {
	var ve *platform.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return show(w, r, v, http.StatusBadRequest, page{Errors: ve.Fields, Form: r.PostForm})
}

func (u *UI) adminCreateUser(w http.ResponseWriter, r *http.Request, v *visit) error {
	created, err := u.p.CreateUser(r.Context(), v.user, platform.NewUser{
		Username: strings.TrimSpace(r.PostFormValue("username")), Password: r.PostFormValue("password"),
		Email: strings.TrimSpace(r.PostFormValue("email")), Superuser: r.PostFormValue("superuser") == "on",
	})
	if err != nil {
		return u.adminInvalid(w, r, v, u.adminUsersPage, err)
	}
	return back(w, r, "/admin/users", "User "+created.Username+" created.")
}

func (u *UI) adminSetPassword(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("user")
	if err := u.p.SetPassword(r.Context(), v.user, name, r.PostFormValue("password")); err != nil {
		var ve *platform.ValidationError
		if errors.As(err, &ve) {
			return u.adminUsersPage(w, r, v, http.StatusBadRequest, page{Flash: name + "'s password " + strings.Join(ve.Fields["password"], "; ") + "."})
		}
		return err
	}
	return back(w, r, "/admin/users", name+"'s password is set.")
}

func (u *UI) adminUserFlags(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("user")
	superuser, active := r.PostFormValue("superuser") == "on", r.PostFormValue("active") == "on"
	if _, err := u.p.SetUserFlags(r.Context(), v.user, name, &superuser, &active); err != nil {
		return err
	}
	return back(w, r, "/admin/users", name+" is changed.")
}

type adminCatalogueData struct {
	Plans    []store.Plan
	Runtimes []store.Runtime
}

func (u *UI) adminCataloguePage(w http.ResponseWriter, r *http.Request, v *visit, status int, p page) error {
	plans, err := u.p.Plans(r.Context(), v.user)
	if err != nil {
		return err
	}
	runtimes, err := u.p.Runtimes(r.Context(), v.user)
	if err != nil {
		return err
	}
	if _, err := u.p.Users(r.Context(), v.user); err != nil {
		return err // the page is the operator's
	}
	p.Title, p.Data = "Plans and runtimes", adminCatalogueData{Plans: plans, Runtimes: runtimes}
	u.render(w, r, v, status, "admin_catalogue", p)
	return nil
}

func (u *UI) adminCatalogue(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.adminCataloguePage(w, r, v, http.StatusOK, page{})
}

func formInt(r *http.Request, field string, v *platform.ValidationError) int64 {
	s := strings.TrimSpace(r.PostFormValue(field))
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		v.Add(field, "must be a whole number")
	}
	return n
}

func (u *UI) adminPutPlan(w http.ResponseWriter, r *http.Request, v *visit) error {
	var problems platform.ValidationError
	pl := store.Plan{
		ID: formInt(r, "id", &problems), Name: strings.TrimSpace(r.PostFormValue("name")),
		MemoryMB: formInt(r, "ram", &problems), CPUMillis: formInt(r, "cpu_quota", &problems) * 10,
		Pids: formInt(r, "pids", &problems), DiskMB: formInt(r, "disk", &problems),
	}
	if price := strings.TrimSpace(r.PostFormValue("price")); price != "" {
		f, err := strconv.ParseFloat(price, 64)
		if err != nil {
			problems.Add("price", "must be a number")
		}
		pl.Price = f
	}
	err := problems.Err()
	if err == nil {
		pl, err = u.p.PutPlan(r.Context(), v.user, pl)
	}
	if err != nil {
		return u.adminInvalid(w, r, v, u.adminCataloguePage, err)
	}
	return back(w, r, "/admin/catalogue", "Plan "+pl.Name+" saved.")
}

func (u *UI) adminPutRuntime(w http.ResponseWriter, r *http.Request, v *visit) error {
	var problems platform.ValidationError
	rt := store.Runtime{
		ID: formInt(r, "id", &problems), Name: strings.TrimSpace(r.PostFormValue("name")),
		Image: strings.TrimSpace(r.PostFormValue("image")), Command: strings.Fields(r.PostFormValue("command")),
		Default: r.PostFormValue("default") == "on", Show: r.PostFormValue("show") == "on",
	}
	err := problems.Err()
	if err == nil {
		rt, err = u.p.PutRuntime(r.Context(), v.user, rt)
	}
	if err != nil {
		return u.adminInvalid(w, r, v, u.adminCataloguePage, err)
	}
	return back(w, r, "/admin/catalogue", "Runtime "+rt.Name+" saved.")
}

type adminImagesData struct{ Images []string }

func (u *UI) adminImagesPage(w http.ResponseWriter, r *http.Request, v *visit, status int, p page) error {
	images, err := u.p.Images(r.Context(), v.user)
	if err != nil {
		return err
	}
	p.Title, p.Data = "Images", adminImagesData{Images: images}
	u.render(w, r, v, status, "admin_images", p)
	return nil
}

func (u *UI) adminImages(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.adminImagesPage(w, r, v, http.StatusOK, page{})
}

// adminPull starts a pull as a job of the administrator's company and
// shows its progress on that company's jobs page.
func (u *UI) adminPull(w http.ResponseWriter, r *http.Request, v *visit) error {
	ref := strings.TrimSpace(r.PostFormValue("ref"))
	job, err := u.p.StartImagePull(r.Context(), v.user, ref)
	if err != nil {
		var ve *platform.ValidationError
		if errors.As(err, &ve) {
			return u.adminInvalid(w, r, v, u.adminImagesPage, err)
		}
		if errors.Is(err, store.ErrInvalid) {
			return u.adminImagesPage(w, r, v, http.StatusBadRequest, page{Errors: map[string][]string{"ref": {err.Error()}}, Form: r.PostForm})
		}
		return err
	}
	return back(w, r, fmt.Sprintf("/c/%d/jobs", job.CompanyID), "Pulling "+ref+": job "+strconv.FormatInt(job.ID, 10)+" shows how far it is.")
}

func (u *UI) adminRemoveUnused(w http.ResponseWriter, r *http.Request, v *visit) error {
	removed, err := u.p.RemoveUnusedImages(r.Context(), v.user)
	if err != nil {
		return err
	}
	msg := "No image was unused."
	if len(removed) > 0 {
		msg = "Removed " + strings.Join(removed, ", ") + "."
	}
	return back(w, r, "/admin/images", msg)
}

func (u *UI) adminHealth(w http.ResponseWriter, r *http.Request, v *visit) error {
	h, err := u.p.Health(r.Context(), v.user)
	if err != nil {
		return err
	}
	u.render(w, r, v, http.StatusOK, "admin_health", page{Title: "Server health", Data: h})
	return nil
}

func (u *UI) adminSettings(w http.ResponseWriter, r *http.Request, v *visit) error {
	required := r.PostFormValue("require_two_factor") == "on"
	if err := u.p.RequireTwoFactor(r.Context(), v.user, required); err != nil {
		return err
	}
	if required {
		return back(w, r, "/admin/users", "Every user now needs two-factor sign-in.")
	}
	return back(w, r, "/admin/users", "Two-factor sign-in is up to each user.")
}
