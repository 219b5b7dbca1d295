package drycc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

// releaseHeader carries the version a change released, as Deis sends it.
const releaseHeader = "X-Deis-Release"

type configJSON struct {
	Owner       string            `json:"owner"`
	App         string            `json:"app"`
	Values      map[string]string `json:"values"`
	Memory      map[string]string `json:"memory"`
	CPU         map[string]string `json:"cpu"`
	Tags        map[string]string `json:"tags"`
	Registry    map[string]string `json:"registry"`
	Healthcheck map[string]any    `json:"healthcheck"`
	Created     string            `json:"created"`
	Updated     string            `json:"updated"`
	UUID        string            `json:"uuid"`
}

func (h *Handler) configOf(r *http.Request, u store.User, a store.App) (configJSON, error) {
	values, err := h.p.AppConfig(r.Context(), u, platform.AppNamed(a.Name))
	if err != nil {
		return configJSON{}, err
	}
	owner, err := h.ownerOf(r, u, a)
	if err != nil {
		return configJSON{}, err
	}
	healthcheck := map[string]any{}
	if a.Healthcheck != "" {
		healthcheck["web"] = map[string]any{"livenessProbe": map[string]any{"httpGet": map[string]any{"path": a.Healthcheck, "port": a.AppPort}}}
	}
	created := a.Created
	if rel, err := h.p.Release(r.Context(), u, platform.AppNamed(a.Name), a.Release); err == nil {
		created = rel.Created
	}
	plan, err := h.p.Plan(r.Context(), u, a.PlanID)
	if err != nil {
		return configJSON{}, err
	}
	types, err := h.p.ProcessTypes(r.Context(), u, platform.AppNamed(a.Name))
	if err != nil {
		return configJSON{}, err
	}
	memory, cpu := limitsOf(plan, types)
	return configJSON{
		Owner: owner, App: a.Name, Values: values, Memory: memory, CPU: cpu,
		Tags: map[string]string{}, Registry: map[string]string{}, Healthcheck: healthcheck,
		Created: timestamp(created), Updated: timestamp(created), UUID: uuid("config", a.ID, a.Release),
	}, nil
}

func (h *Handler) config(w http.ResponseWriter, r *http.Request, u store.User) error {
	return h.writeConfig(w, r, u, platform.AppNamed(r.PathValue("id")), http.StatusOK)
}

// setConfig is config:set and config:unset: {"values": {"K": "v", "U": null}}.
// Values may be strings, numbers or booleans, as the clients send them.
// memory and cpu limits pick the app's plan (see limits.go); tags and
// registry mean nothing on one server and are a 422.
func (h *Handler) setConfig(w http.ResponseWriter, r *http.Request, u store.User) error {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		return err
	}
	ref := platform.AppNamed(r.PathValue("id"))
	current, err := h.p.AppConfig(r.Context(), u, ref)
	if err != nil {
		return err
	}
	for _, key := range []string{"tags", "registry"} {
		var m map[string]any
		if v, ok := raw[key]; ok && json.Unmarshal(v, &m) == nil && len(m) > 0 {
			return &unprocessableError{key + " cannot be set on rosti: it runs apps on this one server, from images it has"}
		}
	}
	plan, setPlan, err := h.planForLimits(r, u, raw)
	if err != nil {
		return err
	}
	values := map[string]*string{}
	if v, ok := raw["values"]; ok && string(v) != "null" {
		var given map[string]json.RawMessage
		if err := json.Unmarshal(v, &given); err != nil {
			return fieldError("values", "Expected a dictionary of items.")
		}
		for k, rv := range given {
			if string(rv) == "null" {
				if _, set := current[k]; !set {
					return &unprocessableError{fmt.Sprintf("%s does not exist under values", k)}
				}
				values[k] = nil
				continue
			}
			var s string
			if json.Unmarshal(rv, &s) != nil {
				var scalar any
				if json.Unmarshal(rv, &scalar) != nil {
					return fieldError(k, "Must be a string.")
				}
				switch scalar.(type) {
				case float64, bool:
					s = strings.TrimSpace(string(rv))
				default:
					return fieldError(k, "Must be a string.")
				}
			}
			values[k] = &s
		}
	}
	if setPlan {
		if err := h.setPlan(r, u, ref, plan); err != nil {
			return err
		}
	}
	hc, setHealth := raw["healthcheck"]
	if setHealth = setHealth && string(hc) != "null"; setHealth {
		if err := h.setHealthcheck(r, u, ref, hc); err != nil {
			return err
		}
	}
	if len(values) == 0 && (setPlan || setHealth) {
		return h.writeConfig(w, r, u, ref, http.StatusCreated)
	}
	rel, err := h.p.SetConfig(r.Context(), u, ref, values, false, nil)
	if err != nil {
		return err
	}
	w.Header().Set(releaseHeader, strconv.FormatInt(rel.Version, 10))
	return h.writeConfig(w, r, u, ref, http.StatusCreated)
}

// writeConfig answers with the app's config, as it is now, and status.
func (h *Handler) writeConfig(w http.ResponseWriter, r *http.Request, u store.User, ref platform.AppRef, status int) error {
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	c, err := h.configOf(r, u, a)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, status, c)
	return nil
}

// setHealthcheck takes the HTTP path of a Kubernetes-style probe of the
// web process ({"web": {"livenessProbe": {"httpGet": {"path": "/"}}}}) as
// the app's health check; {} or a probe without httpGet means a TCP check.
func (h *Handler) setHealthcheck(r *http.Request, u store.User, ref platform.AppRef, raw json.RawMessage) error {
	var probes map[string]map[string]struct {
		HTTPGet *struct {
			Path string `json:"path"`
		} `json:"httpGet"`
	}
	if err := json.Unmarshal(raw, &probes); err != nil {
		return fieldError("healthcheck", "Expected {\"web\": {\"livenessProbe\": {\"httpGet\": {\"path\": \"/\"}}}}.")
	}
	path := ""
	for _, kind := range []string{"readinessProbe", "livenessProbe"} {
		if p, ok := probes["web"][kind]; ok && p.HTTPGet != nil && p.HTTPGet.Path != "" {
			path = p.HTTPGet.Path
		}
	}
	_, err := h.p.UpdateApp(r.Context(), u, ref, platform.AppInput{Healthcheck: &path})
	return err
}

type releaseJSON struct {
	App     string  `json:"app"`
	Build   *string `json:"build"`
	Config  string  `json:"config"`
	Created string  `json:"created"`
	Owner   string  `json:"owner"`
	Summary string  `json:"summary"`
	Updated string  `json:"updated"`
	UUID    string  `json:"uuid"`
	Version int64   `json:"version"`
	// Rosti's own: what the release runs and how it went.
	Image  string `json:"image"`
	Status string `json:"status"`
	Failed bool   `json:"failed"`
}

func toReleaseJSON(a store.App, rel store.Release) releaseJSON {
	out := releaseJSON{
		App: a.Name, Config: uuid("config", a.ID, rel.Version), Created: timestamp(rel.Created), Owner: rel.Author,
		Summary: rel.Summary, Updated: timestamp(rel.Created), UUID: uuid("release", a.ID, rel.Version), Version: rel.Version,
		Image: rel.Image, Status: rel.Status, Failed: rel.Status == store.ReleaseFailed,
	}
	if rel.Source != platform.SourceCreate {
		b := buildID(a, rel)
		out.Build = &b
	}
	return out
}

// buildID names the build a release runs: its image and files.
func buildID(a store.App, rel store.Release) string {
	return uuid("build", a.ID, rel.Image, rel.TreeDigest)
}

func (h *Handler) releases(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	rels, err := h.p.Releases(r.Context(), u, ref)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(rels), func(i int) any { return toReleaseJSON(a, rels[i]) })
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref := platform.AppNamed(r.PathValue("id"))
	version, err := strconv.ParseInt(strings.TrimPrefix(r.PathValue("version"), "v"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	rel, err := h.p.Release(r.Context(), u, ref, version)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toReleaseJSON(a, rel))
	return nil
}

func (h *Handler) rollback(w http.ResponseWriter, r *http.Request, u store.User) error {
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	var version int64
	if v := f.Int("version"); v != nil {
		version = *v
	}
	if err := f.Err(); err != nil {
		return err
	}
	if version < 0 {
		return fmt.Errorf("%s: %w", msgNegativeVersion, store.ErrInvalid)
	}
	rel, err := h.p.Rollback(r.Context(), u, platform.AppNamed(r.PathValue("id")), version, nil)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, map[string]int64{"version": rel.Version})
	return nil
}

type buildJSON struct {
	App        string            `json:"app"`
	Created    string            `json:"created"`
	Dockerfile string            `json:"dockerfile"`
	Image      string            `json:"image"`
	Owner      string            `json:"owner"`
	Procfile   map[string]string `json:"procfile"`
	Sha        string            `json:"sha"`
	Updated    string            `json:"updated"`
	UUID       string            `json:"uuid"`
}

func toBuildJSON(a store.App, rel store.Release, procfile map[string]string) buildJSON {
	if procfile == nil {
		procfile = map[string]string{}
	}
	sha := rel.Revision
	if len(sha) > 8 {
		sha = sha[:8]
	}
	return buildJSON{
		App: a.Name, Created: timestamp(rel.Created), Image: rel.Image, Owner: rel.Author, Procfile: procfile,
		Sha: sha, Updated: timestamp(rel.Created), UUID: buildID(a, rel),
	}
}

// builds lists the builds behind the app's releases, newest first: every
// release that brought a new image or new files.
func (h *Handler) builds(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	rels, err := h.p.Releases(r.Context(), u, ref)
	if err != nil {
		return err
	}
	var builds []store.Release
	for _, rel := range rels {
		if rel.Source != platform.SourceCreate && rel.Source != platform.SourceConfig && rel.Source != platform.SourceRollback && rel.Status == store.ReleaseSucceeded {
			builds = append(builds, rel)
		}
	}
	return h.listOf(w, r, len(builds), func(i int) any { return toBuildJSON(a, builds[i], nil) })
}

// currentBuild is the build the running release runs: the release that
// brought its image and files, followed back through config changes and
// rollbacks. An app that runs what it was created with has none.
func (h *Handler) currentBuild(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	rels, err := h.p.Releases(r.Context(), u, ref)
	if err != nil {
		return err
	}
	if rel, ok := buildOf(rels, a.Release); ok {
		httpapi.WriteJSON(w, http.StatusOK, toBuildJSON(a, rel, nil))
		return nil
	}
	return fmt.Errorf("no build yet: %w", store.ErrNotFound)
}

// buildOf finds the release that brought what version runs; rels are
// newest first.
func buildOf(rels []store.Release, version int64) (store.Release, bool) {
	for range rels { // each step goes to an older release
		i := slices.IndexFunc(rels, func(r store.Release) bool { return r.Version == version })
		if i < 0 {
			return store.Release{}, false
		}
		switch rel := rels[i]; rel.Source {
		case platform.SourceImage, platform.SourceGit, platform.SourceUpload:
			return rel, true
		case platform.SourceRollback:
			version = rel.RolledBackTo
		case platform.SourceConfig:
			j := slices.IndexFunc(rels[i+1:], func(r store.Release) bool { return r.Status == store.ReleaseSucceeded })
			if j < 0 {
				return store.Release{}, false
			}
			version = rels[i+1+j].Version
		default:
			return store.Release{}, false
		}
	}
	return store.Release{}, false
}

// build is builds:create: an image (a runtime of this server), optionally
// with a procfile, deployed as a new release.
func (h *Handler) build(w http.ResponseWriter, r *http.Request, u store.User) error {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		return err
	}
	f := httpapi.NewFields(raw)
	var missing platform.ValidationError
	image := required(f, "image", &missing)
	var procfile map[string]string
	if v, ok := raw["procfile"]; ok && string(v) != "null" {
		// Clients send it as an object, older ones as the Procfile's text.
		if json.Unmarshal(v, &procfile) != nil {
			var text string
			if json.Unmarshal(v, &text) != nil {
				missing.Add("procfile", "Expected a dictionary of process types and commands.")
			} else {
				procfile = parseProcfileText(text)
			}
		}
		if procfile != nil && len(procfile) == 0 {
			procfile = nil
		}
	}
	if err := mergeValidation(f.Err(), missing.Err()); err != nil {
		return err
	}
	ref := platform.AppNamed(r.PathValue("id"))
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	rel, err := h.p.Deploy(r.Context(), u, ref, platform.DeployRequest{
		Image: image, Procfile: procfile, Summary: u.Username + " deployed " + image,
	})
	if err != nil {
		return err
	}
	w.Header().Set(releaseHeader, strconv.FormatInt(rel.Version, 10))
	httpapi.WriteJSON(w, http.StatusCreated, toBuildJSON(a, rel, procfile))
	return nil
}

func parseProcfileText(text string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(text) {
		if t, cmd, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(strings.TrimSpace(t), "#") {
			out[strings.TrimSpace(t)] = strings.TrimSpace(cmd)
		}
	}
	return out
}

func (h *Handler) scale(w http.ResponseWriter, r *http.Request, u store.User) error {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		return err
	}
	f := httpapi.NewFields(raw)
	counts := map[string]int{}
	for _, t := range slices.Sorted(maps.Keys(raw)) {
		if n := f.Int(t); n != nil {
			counts[t] = int(*n)
		}
	}
	if err := f.Err(); err != nil {
		return err
	}
	if _, err := h.p.Scale(r.Context(), u, platform.AppNamed(r.PathValue("id")), counts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type podJSON struct {
	Name     string `json:"name"`
	Release  string `json:"release"`
	Started  string `json:"started"`
	State    string `json:"state"`
	Type     string `json:"type"`
	Ready    string `json:"ready"`
	Restarts int    `json:"restarts"`
}

func toPodJSON(p platform.Pod) podJSON {
	out := podJSON{Name: p.Name, State: p.State, Type: p.Type, Restarts: p.Restarts, Ready: "0/1"}
	if p.State == "up" {
		out.Ready = "1/1"
	}
	if p.Release > 0 {
		out.Release = "v" + strconv.FormatInt(p.Release, 10)
	}
	if !p.Started.IsZero() {
		out.Started = p.Started.UTC().Format(time.RFC3339)
	}
	return out
}

func (h *Handler) pods(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref := platform.AppNamed(r.PathValue("id"))
	pods, err := h.p.Pods(r.Context(), u, ref, r.PathValue("type"))
	if err != nil {
		return err
	}
	if !deisV1(r) {
		return h.listOf(w, r, len(pods), func(i int) any { return toPodJSON(pods[i]) })
	}
	a, err := h.p.App(r.Context(), u, ref)
	if err != nil {
		return err
	}
	owner, err := h.ownerOf(r, u, a)
	if err != nil {
		return err
	}
	return h.listOf(w, r, len(pods), func(i int) any { return toContainerJSON(a, owner, pods[i]) })
}

// deisV1 tells a Deis v1 request, whose shapes differ here and there.
func deisV1(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v1/") }

// containerJSON is a pod as Deis v1 shows it.
type containerJSON struct {
	Owner   string `json:"owner"`
	App     string `json:"app"`
	Release string `json:"release"`
	Created string `json:"created"`
	Updated string `json:"updated"`
	UUID    string `json:"uuid"`
	Type    string `json:"type"`
	Num     int    `json:"num"`
	State   string `json:"state"`
}

func toContainerJSON(a store.App, owner string, p platform.Pod) containerJSON {
	pod := toPodJSON(p)
	num, _ := strconv.Atoi(p.Name[strings.LastIndexByte(p.Name, '-')+1:])
	return containerJSON{
		Owner: owner, App: a.Name, Release: pod.Release, Created: pod.Started, Updated: pod.Started,
		UUID: uuid("container", a.ID, p.Name), Type: p.Type, Num: num, State: p.State,
	}
}

func (h *Handler) restartPods(w http.ResponseWriter, r *http.Request, u store.User) error {
	pods, err := h.p.RestartPods(r.Context(), u, platform.AppNamed(r.PathValue("id")), r.PathValue("type"), r.PathValue("name"))
	if err != nil {
		return err
	}
	out := make([]podJSON, len(pods))
	for i, p := range pods {
		out[i] = toPodJSON(p)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// defaultLogLines is what logs show without ?log_lines.
const defaultLogLines = 100

// logs answers in plain text, as 2.3 does.
func (h *Handler) logs(w http.ResponseWriter, r *http.Request, u store.User) error {
	lines := defaultLogLines
	if s := r.URL.Query().Get("log_lines"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fieldError("log_lines", "A valid positive integer is required.")
		}
		lines = n
	}
	var buf bytes.Buffer
	err := h.p.Logs(r.Context(), u, platform.AppNamed(r.PathValue("id")), lines, false, &buf)
	var notRunning *platform.NotRunningError
	if err != nil && !errors.As(err, &notRunning) && !(errors.Is(err, store.ErrInvalid) && strings.Contains(err.Error(), "no containers")) {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// run is a one-off command: {"command": "echo hi"} (or a list of
// arguments, as newer clients send) answered with its exit code and output.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, u store.User) error {
	raw, err := httpapi.DecodeObject(w, r)
	if err != nil {
		return err
	}
	var command string
	if v, ok := raw["command"]; ok {
		var args []string
		if json.Unmarshal(v, &command) != nil {
			if json.Unmarshal(v, &args) != nil {
				return fieldError("command", "Must be a string.")
			}
			command = shellJoin(args)
		}
	}
	if strings.TrimSpace(command) == "" {
		return fieldError("command", msgBlank)
	}
	code, output, err := h.p.Run(r.Context(), u, platform.AppNamed(r.PathValue("id")), command)
	if err != nil {
		return err
	}
	out := map[string]any{"exit_code": code, "output": output}
	if deisV1(r) {
		out = map[string]any{"rc": code, "output": output}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// shellJoin quotes arguments for /bin/sh.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
