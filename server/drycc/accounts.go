package drycc

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

type userJSON struct {
	ID              int64      `json:"id"`
	LastLogin       *time.Time `json:"last_login"`
	IsSuperuser     bool       `json:"is_superuser"`
	Username        string     `json:"username"`
	FirstName       string     `json:"first_name"`
	LastName        string     `json:"last_name"`
	Email           string     `json:"email"`
	IsStaff         bool       `json:"is_staff"`
	IsActive        bool       `json:"is_active"`
	DateJoined      time.Time  `json:"date_joined"`
	Groups          []string   `json:"groups"`
	UserPermissions []string   `json:"user_permissions"`
}

func toUserJSON(u store.User) userJSON {
	return userJSON{
		ID: u.ID, LastLogin: u.LastLogin, IsSuperuser: u.IsSuperuser, Username: u.Username,
		FirstName: u.FirstName, LastName: u.LastName, Email: u.Email, IsStaff: u.IsSuperuser,
		IsActive: u.IsActive, DateJoined: u.Created, Groups: []string{}, UserPermissions: []string{},
	}
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	var actor *store.User
	if _, ok := httpapi.TokenFrom(r); ok {
		u, err := httpapi.User(h.p, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		actor = &u
	}
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var missing platform.ValidationError
	n := platform.NewUser{Username: required(f, "username", &missing), Password: required(f, "password", &missing)}
	setString(&n.Email, f.String("email"))
	setString(&n.FirstName, f.String("first_name"))
	setString(&n.LastName, f.String("last_name"))
	if su := f.Bool("is_superuser"); su != nil {
		n.Superuser = *su
	}
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.p.Register(r.Context(), actor, n)
	if hasField(err, "username") && errors.Is(err, store.ErrInvalid) && strings.Contains(err.Error(), "already exists") {
		err = fieldError("username", msgDuplicateUser)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, toUserJSON(u))
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var missing platform.ValidationError
	username, password := required(f, "username", &missing), required(f, "password", &missing)
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		h.writeError(w, r, err)
		return
	}
	token, err := h.p.LoginFrom(r.Context(), httpapi.ClientAddress(r), username, password)
	if errors.Is(err, platform.ErrUnauthorized) {
		// DRF's obtain_auth_token answers a failed login with a 400.
		err = fieldError("non_field_errors", msgFailedLogin)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.p.CancelAccount(r.Context(), u); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) whoami(w http.ResponseWriter, _ *http.Request, u store.User) error {
	httpapi.WriteJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

func (h *Handler) regenerateToken(w http.ResponseWriter, r *http.Request, u store.User) error {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		return err
	}
	f := httpapi.NewFields(raw)
	username := u.Username
	setString(&username, f.String("username"))
	// "all" comes as true or as "true".
	var all bool
	if v, ok := raw["all"]; ok {
		all = strings.EqualFold(strings.Trim(string(v), `" `), "true")
	}
	if err := f.Err(); err != nil {
		return err
	}
	if all {
		users, err := h.p.Users(r.Context(), u)
		if err != nil {
			return err
		}
		var mine string
		for _, other := range users {
			token, err := h.p.RegenerateToken(r.Context(), u, other.Username)
			if err != nil {
				return err
			}
			if other.ID == u.ID {
				mine = token
			}
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": mine})
		return nil
	}
	token, err := h.p.RegenerateToken(r.Context(), u, username)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": token})
	return nil
}

func (h *Handler) passwd(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	next := required(f, "new_password", &missing)
	var username, current string
	setString(&username, f.String("username"))
	setString(&current, f.String("password"))
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	err = h.p.ChangePassword(r.Context(), u, username, current, next, "")
	if hasField(err, "current_password") {
		httpapi.WriteJSON(w, http.StatusBadRequest, map[string]string{"detail": "Current password does not match"})
		return nil
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type keyJSON struct {
	Created time.Time `json:"created"`
	ID      string    `json:"id"`
	Owner   string    `json:"owner"`
	Public  string    `json:"public"`
	Updated time.Time `json:"updated"`
	UUID    string    `json:"uuid"`
}

func toKeyJSON(k store.Key, owner string) keyJSON {
	public := k.PublicKey
	if k.Name != "" && k.Name != k.Fingerprint {
		public += " " + k.Name
	}
	return keyJSON{Created: k.Created, ID: k.Name, Owner: owner, Public: public, Updated: k.Created, UUID: uuid("key", k.ID)}
}

func (h *Handler) keys(w http.ResponseWriter, r *http.Request, u store.User) error {
	keys, err := h.p.Keys(r.Context(), u)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(keys), func(i int) any { return toKeyJSON(keys[i], u.Username) })
}

func (h *Handler) addKey(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	public := required(f, "public", &missing)
	var name string
	setString(&name, f.String("id"))
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	if name != "" {
		keys, err := h.p.Keys(r.Context(), u)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Name == name {
				return fieldError("id", "Key with this id already exists.")
			}
		}
	}
	k, err := h.p.AddKey(r.Context(), u, name, public)
	switch {
	case hasField(err, "key") && strings.Contains(err.Error(), "already added"):
		err = fieldError("key", msgDuplicateKey)
	case hasField(err, "key"):
		err = fieldError("public", "Key contains invalid base64 chars")
	case hasField(err, "name"):
		err = fieldError("id", "Ensure this field has no more than 100 characters.")
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, toKeyJSON(k, u.Username))
	return nil
}

func (h *Handler) removeKey(w http.ResponseWriter, r *http.Request, u store.User) error {
	keys, err := h.p.Keys(r.Context(), u)
	if err != nil {
		return err
	}
	name := r.PathValue("id")
	for _, k := range keys {
		if k.Name == name || k.Fingerprint == name {
			if err := h.p.DeleteKey(r.Context(), u, k.ID); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	return store.ErrNotFound
}

func (h *Handler) perms(w http.ResponseWriter, r *http.Request, u store.User) error {
	users, err := h.p.AppPerms(r.Context(), u, platform.AppNamed(r.PathValue("id")))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(users))
	for _, other := range users {
		names = append(names, other.Username)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string][]string{"users": names})
	return nil
}

func (h *Handler) grantPerm(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	username := required(f, "username", &missing)
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	if err := h.p.GrantAppPerm(r.Context(), u, platform.AppNamed(r.PathValue("id")), username); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) revokePerm(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.p.RevokeAppPerm(r.Context(), u, platform.AppNamed(r.PathValue("id")), r.PathValue("username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) admins(w http.ResponseWriter, r *http.Request, u store.User) error {
	admins, err := h.p.Admins(r.Context(), u)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(admins), func(i int) any {
		return map[string]any{"username": admins[i].Username, "is_superuser": admins[i].IsSuperuser}
	})
}

func (h *Handler) grantAdmin(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var missing platform.ValidationError
	username := required(f, "username", &missing)
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	if err := h.p.SetSuperuser(r.Context(), u, username, true); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) revokeAdmin(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.p.SetSuperuser(r.Context(), u, r.PathValue("username"), false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) users(w http.ResponseWriter, r *http.Request, u store.User) error {
	users, err := h.p.Users(r.Context(), u)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(users), func(i int) any { return toUserJSON(users[i]) })
}
