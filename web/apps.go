package web

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

// appRow is one line of the apps list.
// Its fields are ready to print: the page of a company with a thousand
// apps has to render fast.
type appRow struct {
	URL     string
	Name    string
	State   string
	Detail  string // the pull's progress, the memory in use
	Plan    string
	Runtime string
	Domains string
}

type appsData struct {
	Count int
	Rows  template.HTML
}

// appRows writes the rows of the apps table. It escapes by hand what
// html/template would: every value lands in element text or a quoted
// attribute, and html/template's reflection over a thousand rows is most
// of the page's cost.
func appRows(rows []appRow) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 256)
	esc := template.HTMLEscapeString
	for _, r := range rows {
		b.WriteString(`<tr><td><a href="`)
		b.WriteString(esc(r.URL))
		b.WriteString(`">`)
		b.WriteString(esc(r.Name))
		b.WriteString(`</a><td><span class="state `)
		b.WriteString(esc(r.State))
		b.WriteString(`">`)
		b.WriteString(esc(r.State))
		b.WriteString(`</span><td data-label="Use">`)
		b.WriteString(esc(r.Detail))
		b.WriteString(`<td data-label="Runtime">`)
		b.WriteString(esc(r.Runtime))
		b.WriteString(`<td data-label="Plan">`)
		b.WriteString(esc(r.Plan))
		b.WriteString(`<td data-label="Domains">`)
		b.WriteString(esc(r.Domains))
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String())
}

func (u *UI) appsPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	apps, err := u.p.AppsWithState(r.Context(), v.user, v.company.ID)
	if err != nil {
		return err
	}
	plans, runtimes, err := u.catalogue(r, v)
	if err != nil {
		return err
	}
	planNames := map[int64]string{}
	for _, pl := range plans {
		planNames[pl.ID] = pl.Name
	}
	runtimeNames := map[string]string{}
	for _, rt := range runtimes {
		runtimeNames[rt.Image] = rt.Name
	}
	rows := make([]appRow, 0, len(apps))
	for _, a := range apps {
		rt := runtimeNames[a.Image]
		if rt == "" {
			rt = a.Image
		}
		st := a.AppState
		row := appRow{URL: appPath(a.App), Name: a.Name, State: st.State, Plan: planNames[a.PlanID], Runtime: rt, Domains: strings.Join(a.Domains, ", ")}
		switch {
		case st.State == platform.AppPulling:
			row.Detail = fmt.Sprintf("image %d%%", st.PullPercent)
		case st.MemoryMB > 0:
			row.Detail = fmt.Sprintf("%.0f MB", st.MemoryMB)
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b appRow) int { return strings.Compare(a.Name, b.Name) })
	u.render(w, r, v, http.StatusOK, "apps", page{Title: "Apps of " + v.company.Name, Data: appsData{Count: len(rows), Rows: appRows(rows)}})
	return nil
}

func (u *UI) catalogue(r *http.Request, v *visit) ([]store.Plan, []store.Runtime, error) {
	plans, err := u.p.Plans(r.Context(), v.user)
	if err != nil {
		return nil, nil, err
	}
	runtimes, err := u.p.Runtimes(r.Context(), v.user)
	if err != nil {
		return nil, nil, err
	}
	shown := runtimes[:0:0]
	for _, rt := range runtimes {
		if rt.Show || rt.Default {
			shown = append(shown, rt)
		}
	}
	return plans, shown, nil
}

type newAppData struct {
	Plans    []store.Plan
	Runtimes []store.Runtime
}

func (u *UI) newAppForm(r *http.Request, v *visit, p page) (page, error) {
	plans, runtimes, err := u.catalogue(r, v)
	if err != nil {
		return p, err
	}
	p.Title, p.Data = "New app", newAppData{Plans: plans, Runtimes: runtimes}
	return p, nil
}

func (u *UI) newAppPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	p, err := u.newAppForm(r, v, page{})
	if err != nil {
		return err
	}
	p.Form = map[string][]string{"app_port": {strconv.Itoa(platform.DefaultAppPort)}}
	u.render(w, r, v, http.StatusOK, "new", p)
	return nil
}

// appInput reads the fields of the new-app and settings forms, named as
// the API names them so that its messages fit beside them.
func appInput(r *http.Request) (platform.AppInput, error) {
	var in platform.AppInput
	var problems platform.ValidationError
	f := r.PostForm
	if f.Has("name") {
		name := strings.TrimSpace(f.Get("name"))
		in.Name = &name
	}
	if f.Has("image") {
		image := f.Get("image")
		in.Image = &image
	}
	if f.Has("plan") {
		if plan, err := strconv.ParseInt(f.Get("plan"), 10, 64); err != nil {
			problems.Add("plan", "pick a plan from the list")
		} else {
			in.Plan = &plan
		}
	}
	if f.Has("app_port") {
		if port, err := strconv.Atoi(strings.TrimSpace(f.Get("app_port"))); err != nil {
			problems.Add("app_port", "must be a number between 1024 and 65535")
		} else {
			in.AppPort = &port
		}
	}
	if f.Has("domains") {
		domains := strings.Fields(strings.ReplaceAll(f.Get("domains"), ",", " "))
		in.Domains = &domains
	}
	if f.Has("healthcheck") {
		hc := strings.TrimSpace(f.Get("healthcheck"))
		in.Healthcheck = &hc
	}
	if f.Has("ssh_keys") {
		keys := strings.Split(strings.ReplaceAll(f.Get("ssh_keys"), "\r", ""), "\n")
		in.SSHKeys = &keys
	}
	if f.Has("ssh_password") {
		pw := f.Get("ssh_password")
		in.SSHPassword = &pw
	}
	return in, problems.Err()
}

func (u *UI) createApp(w http.ResponseWriter, r *http.Request, v *visit) error {
	p, err := u.newAppForm(r, v, page{})
	if err != nil {
		return err
	}
	in, err := appInput(r)
	if err == nil {
		var a store.App
		a, err = u.p.CreateApp(r.Context(), v.user, v.company.ID, in)
		if err == nil {
			return back(w, r, appPath(a), "App "+a.Name+" created.")
		}
	}
	return u.invalid(w, r, v, "new", p, err)
}

func appPath(a store.App) string { return fmt.Sprintf("/c/%d/apps/%d", a.CompanyID, a.ID) }

func (u *UI) app(r *http.Request, v *visit) (store.App, platform.AppRef, error) {
	id, err := pathID(r, "app")
	if err != nil {
		return store.App{}, platform.AppRef{}, err
	}
	ref := platform.AppByID(v.company.ID, id)
	a, err := u.p.App(r.Context(), v.user, ref)
	return a, ref, err
}

// deployLine is one command that deploys to the app, ready to copy.
type deployLine struct {
	What, Command string
}

func (u *UI) deployLines(a store.App) []deployLine {
	cfg := u.p.Config()
	host, port := cfg.SSHHost, strconv.Itoa(cfg.SSHPort)
	target := a.Name + "@" + host
	return []deployLine{
		{"Upload a folder with rsync", "rsync -az --delete -e 'ssh -p " + port + "' ./ " + target + ":app/"},
		{"Copy files with scp", "scp -P " + port + " -r ./ " + target + ":app/"},
		{"Upload with sftp (then: put -r . app)", "sftp -P " + port + " " + target},
		{"Push with git", "git push ssh://" + target + ":" + port + "/" + a.Name + " main"},
		{"Open a shell in the app", "ssh -p " + port + " " + target},
	}
}

type appData struct {
	App          store.App
	Plan         store.Plan
	Plans        []store.Plan
	Runtimes     []store.Runtime
	Runtime      string
	Status       *platform.AppStatus
	StatusError  string
	Logs         string
	LogsError    string
	Deploy       []deployLine
	Releases     []store.Release
	Config       []configVar
	Processes    []processCount
	ExtraDomains string
	SSHKeys      string
	Usage        usageCharts
	Confirm      string // an action waiting for confirmation
}

type configVar struct{ Key, Value string }

type processCount struct {
	Type  string
	Count int
}

// logTailLines is how much of the log the app page shows and the live
// tail starts with.
const logTailLines = 100

func (u *UI) appPageData(r *http.Request, v *visit) (appData, error) {
	a, ref, err := u.app(r, v)
	if err != nil {
		return appData{}, err
	}
	ctx := r.Context()
	d := appData{App: a, Deploy: u.deployLines(a)}
	if d.Plans, d.Runtimes, err = u.catalogue(r, v); err != nil {
		return d, err
	}
	for _, pl := range d.Plans {
		if pl.ID == a.PlanID {
			d.Plan = pl
		}
	}
	d.Runtime = a.Image
	for _, rt := range d.Runtimes {
		if rt.Image == a.Image {
			d.Runtime = rt.Name
		}
	}
	if st, err := u.p.Status(ctx, v.user, ref); err != nil {
		d.StatusError = publicError(err)
	} else {
		d.Status = &st
	}
	var logs bytes.Buffer
	logCtx, cancel := contextTimeout(r, 2*time.Second)
	defer cancel()
	if err := u.p.Logs(logCtx, v.user, ref, logTailLines, false, &logs); err != nil {
		d.LogsError = publicError(err)
	}
	d.Logs = logs.String()
	if d.Releases, err = u.p.Releases(ctx, v.user, ref); err != nil {
		return d, err
	}
	slices.SortFunc(d.Releases, func(a, b store.Release) int { return int(b.Version - a.Version) })
	config, err := u.p.AppConfig(ctx, v.user, ref)
	if err != nil {
		return d, err
	}
	for _, k := range slices.Sorted(maps.Keys(config)) {
		d.Config = append(d.Config, configVar{k, config[k]})
	}
	procs, err := u.p.ProcessTypes(ctx, v.user, ref)
	if err != nil {
		return d, err
	}
	for _, t := range slices.Sorted(maps.Keys(procs)) {
		d.Processes = append(d.Processes, processCount{t, procs[t]})
	}
	usage, err := u.p.Usage(ctx, v.user, ref)
	if err != nil {
		return d, err
	}
	d.Usage = drawUsage(usage, u.now())
	if len(a.Domains) > 1 {
		d.ExtraDomains = strings.Join(a.Domains[1:], "\n")
	}
	d.SSHKeys = strings.Join(a.SSHKeys, "\n")
	return d, nil
}

// publicError is what a page may show of a platform error inside a page
// that otherwise rendered: the vocabulary's errors as they are.
func publicError(err error) string {
	var ve *platform.ValidationError
	switch {
	case errors.As(err, &ve), errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return err.Error()
	}
	return "not available right now"
}

func (u *UI) renderApp(w http.ResponseWriter, r *http.Request, v *visit, status int, p page, change func(*appData)) error {
	d, err := u.appPageData(r, v)
	if err != nil {
		return err
	}
	if change != nil {
		change(&d)
	}
	p.Title, p.Data = d.App.Name, d
	u.render(w, r, v, status, "app", p)
	return nil
}

func (u *UI) appPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.renderApp(w, r, v, http.StatusOK, page{}, nil)
}

// appInvalid shows the app page again with a form's problems beside its
// fields.
func (u *UI) appInvalid(w http.ResponseWriter, r *http.Request, v *visit, err error) error {
	var ve *platform.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return u.renderApp(w, r, v, http.StatusBadRequest, page{Errors: ve.Fields, Form: r.PostForm}, nil)
}

// actionTimeout bounds how long a page waits for an action (a restart
// waits for the health check of the new containers).
const actionTimeout = 2 * time.Minute

// confirmedActions are the actions that interrupt the app, which the page
// asks to confirm first.
var confirmedActions = map[string]bool{platform.ActionStop: true, platform.ActionRebuild: true}

func (u *UI) appAction(w http.ResponseWriter, r *http.Request, v *visit) error {
	action := r.PostFormValue("action")
	if confirmedActions[action] && r.PostFormValue("confirmed") != "yes" {
		return u.renderApp(w, r, v, http.StatusOK, page{}, func(d *appData) { d.Confirm = action })
	}
	_, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	ctx, cancel := detached(r, actionTimeout)
	defer cancel()
	a, err := u.p.AppAction(ctx, v.user, ref, action)
	if err != nil {
		return u.appInvalid(w, r, v, err)
	}
	return back(w, r, appPath(a), fmt.Sprintf("Done: %s.", action))
}

func (u *UI) appSettings(w http.ResponseWriter, r *http.Request, v *visit) error {
	_, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	in, err := appInput(r)
	if err != nil {
		return u.appInvalid(w, r, v, err)
	}
	in.Name = nil
	ctx, cancel := detached(r, actionTimeout)
	defer cancel()
	a, err := u.p.UpdateApp(ctx, v.user, ref, in)
	if err != nil {
		return u.appInvalid(w, r, v, err)
	}
	return back(w, r, appPath(a), "Settings saved.")
}

// parseConfig reads KEY=value lines; a line "KEY=" keeps an empty value.
func parseConfig(text string) (map[string]*string, error) {
	values := map[string]*string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, platform.FieldError("config", "line %d must be KEY=value", n)
		}
		values[strings.TrimSpace(k)] = &val
	}
	return values, sc.Err()
}

func (u *UI) appConfig(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	values, err := parseConfig(r.PostFormValue("config"))
	if err != nil {
		return u.appInvalid(w, r, v, err)
	}
	ctx, cancel := detached(r, actionTimeout)
	defer cancel()
	rel, err := u.p.SetConfig(ctx, v.user, ref, values, true, io.Discard)
	var ve *platform.ValidationError
	if errors.As(err, &ve) {
		// The API names the variable; the page shows it beside the box.
		var all platform.ValidationError
		for _, k := range slices.Sorted(maps.Keys(ve.Fields)) {
			all.Add("config", "%s: %s", k, strings.Join(ve.Fields[k], "; "))
		}
		err = &all
	}
	if errors.Is(err, platform.ErrUnchanged) {
		return back(w, r, appPath(a), "Nothing changed.")
	}
	if err != nil {
		return u.appInvalid(w, r, v, err)
	}
	return back(w, r, appPath(a), fmt.Sprintf("Config saved as release v%d.", rel.Version))
}

func (u *UI) appScale(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var problems platform.ValidationError
	for key, vals := range r.PostForm {
		t, ok := strings.CutPrefix(key, "count_")
		if !ok || len(vals) == 0 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(vals[0]))
		if err != nil {
			problems.Add(key, "must be a number")
			continue
		}
		counts[t] = n
	}
	if err := problems.Err(); err != nil {
		return u.appInvalid(w, r, v, err)
	}
	ctx, cancel := detached(r, actionTimeout)
	defer cancel()
	if _, err := u.p.Scale(ctx, v.user, ref, counts); err != nil {
		var ve *platform.ValidationError
		if errors.As(err, &ve) {
			renamed := &platform.ValidationError{}
			for k, msgs := range ve.Fields {
				for _, m := range msgs {
					renamed.Add("count_"+k, "%s", m)
				}
			}
			err = renamed
		}
		return u.appInvalid(w, r, v, err)
	}
	return back(w, r, appPath(a), "Scaled.")
}

func (u *UI) appRollback(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		return u.appInvalid(w, r, v, platform.FieldError("version", "pick a release to roll back to"))
	}
	ctx, cancel := detached(r, actionTimeout)
	defer cancel()
	rel, err := u.p.Rollback(ctx, v.user, ref, version, io.Discard)
	if err != nil {
		return u.appInvalid(w, r, v, err)
	}
	return back(w, r, appPath(a), fmt.Sprintf("Rolled back to v%d as v%d.", version, rel.Version))
}

func (u *UI) deleteApp(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	if strings.TrimSpace(r.PostFormValue("confirm_name")) != a.Name {
		return u.appInvalid(w, r, v, platform.FieldError("confirm_name", "type the app's name, %s, to delete it", a.Name))
	}
	ctx, cancel := detached(r, actionTimeout)
	defer cancel()
	if err := u.p.DeleteApp(ctx, v.user, ref); err != nil {
		return err
	}
	return back(w, r, fmt.Sprintf("/c/%d/", a.CompanyID), "App "+a.Name+" deleted.")
}

type jobsData struct{ Jobs []store.Job }

func (u *UI) jobsPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	jobs, err := u.p.Jobs(r.Context(), v.user, v.company.ID)
	if err != nil {
		return err
	}
	u.render(w, r, v, http.StatusOK, "jobs", page{Title: "Jobs", Data: jobsData{Jobs: jobs}})
	return nil
}
