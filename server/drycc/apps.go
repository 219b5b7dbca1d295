package drycc

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

type appJSON struct {
	Created   string         `json:"created"`
	ID        string         `json:"id"`
	Owner     string         `json:"owner"`
	Structure map[string]int `json:"structure"`
	Updated   string         `json:"updated"`
	URL       string         `json:"url"`
	UUID      string         `json:"uuid"`
}

func (h *Handler) toAppJSON(a store.App, owner string) appJSON {
	structure := a.Processes
	if structure == nil {
		structure = map[string]int{}
	}
	return appJSON{
		Created: timestamp(a.Created), ID: a.Name, Owner: owner, Structure: structure,
		Updated: timestamp(a.Created), URL: h.p.DefaultDomain(a.Name), UUID: uuid("app", a.ID),
	}
}

// ownerOf names one app's owner.
func (h *Handler) ownerOf(r *http.Request, u store.User, a store.App) (string, error) {
	names, err := h.p.Usernames(r.Context(), u, []int64{a.OwnerID})
	return names[a.OwnerID], err
}

func (h *Handler) listApps(w http.ResponseWriter, r *http.Request, u store.User) error {
	offset, limit, err := pageBounds(r)
	if err != nil {
		return err
	}
	// The revision is read first: a change made while the page renders
	// leaves the entry stale, never a stale page marked current.
	revision := h.p.Revision()
	key := fmt.Sprintf("%d|%d|%d|%s|%s", u.ID, offset, limit, r.Host, r.Header.Get("X-Forwarded-Proto"))
	body, ok := h.apps.get(key, revision)
	if !ok {
		apps, total, err := h.p.VisibleApps(r.Context(), u, offset, limit)
		if err != nil {
			return err
		}
		owners := make([]int64, len(apps))
		for i, a := range apps {
			owners[i] = a.OwnerID
		}
		names, err := h.p.Usernames(r.Context(), u, owners)
		if err != nil {
			return err
		}
		results := make([]appJSON, len(apps))
		for i, a := range apps {
			results[i] = h.toAppJSON(a, names[a.OwnerID])
		}
		if body, err = json.Marshal(newPage(r, results, offset, limit, total)); err != nil {
			return err
		}
		h.apps.put(key, revision, body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	return nil
}

func (h *Handler) createApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	name := ""
	setString(&name, f.String("id"))
	if err := f.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	company, err := h.p.DefaultCompany(ctx, u)
	if err != nil {
		return err
	}
	plan, image, err := h.defaults(r, u)
	if err != nil {
		return err
	}
	in := platform.AppInput{Image: &image, Plan: &plan}
	for attempt := 0; ; attempt++ {
		chosen := name
		if chosen == "" {
			chosen = randomName()
		}
		in.Name = &chosen
		a, err := h.p.CreateApp(ctx, u, company, in)
		if err == nil {
			httpapi.WriteJSON(w, http.StatusCreated, h.toAppJSON(a, u.Username))
			return nil
		}
		taken := hasField(err, "name") && strings.Contains(err.Error(), "already exists")
		if taken && name == "" && attempt < 5 {
			continue
		}
		switch {
		case taken:
			err = fieldError("id", msgDuplicateApp)
		case hasField(err, "name"):
			err = fieldError("id", msgInvalidAppName)
		}
		return err
	}
}

// defaults are the plan and image of an app made without them: the
// smallest plan and the default runtime, until a build brings an image.
func (h *Handler) defaults(r *http.Request, u store.User) (int64, string, error) {
	plans, err := h.p.Plans(r.Context(), u)
	if err != nil {
		return 0, "", err
	}
	if len(plans) == 0 {
		return 0, "", errors.New("the server has no plans")
	}
	runtimes, err := h.p.Runtimes(r.Context(), u)
	if err != nil {
		return 0, "", err
	}
	image := ""
	for _, rt := range runtimes {
		if rt.Default || image == "" {
			image = rt.Image
		}
		if rt.Default {
			break
		}
	}
	if image == "" {
		return 0, "", errors.New("the server has no runtimes")
	}
	return plans[0].ID, image, nil
}

var (
	nameAdjectives = []string{"amber", "brisk", "calm", "dapper", "eager", "fuzzy", "gentle", "hidden", "icy", "jolly", "keen", "lucky", "mellow", "nimble", "proud", "quiet", "rapid", "sunny", "tidy", "vivid", "witty", "young", "zesty"}
	nameNouns      = []string{"anchor", "badger", "cactus", "dolphin", "ember", "falcon", "glacier", "harbor", "island", "jaguar", "kettle", "lantern", "meadow", "nebula", "otter", "pepper", "quartz", "river", "summit", "tulip", "violet", "walrus", "yonder"}
)

// randomName is a Drycc-style app name for an app created without one.
func randomName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%04d", nameAdjectives[int(b[0])%len(nameAdjectives)], nameNouns[int(b[1])%len(nameNouns)], (int(b[2])<<8|int(b[3]))%10000)
}

func (h *Handler) appDetail(w http.ResponseWriter, r *http.Request, u store.User) error {
	a, err := h.p.App(r.Context(), u, platform.AppNamed(r.PathValue("id")))
	if err != nil {
		return err
	}
	return h.writeApp(w, r, u, http.StatusOK, a)
}

func (h *Handler) writeApp(w http.ResponseWriter, r *http.Request, u store.User, status int, a store.App) error {
	owner, err := h.ownerOf(r, u, a)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, status, h.toAppJSON(a, owner))
	return nil
}

func (h *Handler) updateApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	owner := f.String("owner")
	if err := f.Err(); err != nil {
		return err
	}
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err == nil && owner != nil {
		a, err = h.p.TransferApp(r.Context(), u, ref, *owner)
	}
	if err != nil {
		return err
	}
	return h.writeApp(w, r, u, http.StatusOK, a)
}

func (h *Handler) destroyApp(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := h.p.DeleteApp(r.Context(), u, platform.AppNamed(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
