package platform

import (
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// Config limits: a process environment is not a data store.
const (
	maxConfigVars  = 200
	maxConfigValue = 32 << 10
	maxConfigTotal = 256 << 10
	// MaxScale bounds the containers of one process type.
	MaxScale = 20
)

var configKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Releases lists an app's releases, newest first.
func (p *Platform) Releases(_ context.Context, actor store.User, ref AppRef) ([]store.Release, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return nil, err
	}
	return p.store.Releases(a.ID)
}

// Release returns one release of an app.
func (p *Platform) Release(_ context.Context, actor store.User, ref AppRef, version int64) (store.Release, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return store.Release{}, err
	}
	return p.store.Release(a.ID, version)
}

// AppConfig returns an app's environment variables.
func (p *Platform) AppConfig(_ context.Context, actor store.User, ref AppRef) (map[string]string, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return nil, err
	}
	if a.Config == nil {
		return map[string]string{}, nil
	}
	return a.Config, nil
}

// ErrUnchanged says a change would make a release identical to the
// current one.
var ErrUnchanged = fmt.Errorf("nothing changed: the app already runs with this: %w", store.ErrConflict)

// SetConfig changes an app's environment: a nil value unsets its key,
// replace starts from an empty environment instead of the current one. The
// change is a new release, which the app's processes move to without
// downtime. Unsetting a key that is not set is an error, and so is a
// change that changes nothing (ErrUnchanged).
func (p *Platform) SetConfig(ctx context.Context, actor store.User, ref AppRef, values map[string]*string, replace bool, progress io.Writer) (store.Release, error) {
	a, unlock, err := p.lockApp(actor, ref)
	if err != nil {
		return store.Release{}, err
	}
	defer unlock()
	next := maps.Clone(a.Config)
	if replace || next == nil {
		next = map[string]string{}
	}
	var v ValidationError
	for _, k := range slices.Sorted(maps.Keys(values)) {
		val := values[k]
		if problem := checkConfigKey(k); problem != "" {
			v.Add(k, "%s", problem)
			continue
		}
		if val == nil {
			if _, set := next[k]; !set && !replace {
				v.Add(k, "is not set, so it cannot be unset")
			}
			delete(next, k)
			continue
		}
		if len(*val) > maxConfigValue {
			v.Add(k, "must be at most %d bytes", maxConfigValue)
			continue
		}
		if strings.ContainsRune(*val, 0) {
			v.Add(k, "must not contain a NUL byte")
			continue
		}
		next[k] = *val
	}
	total := 0
	for k, val := range next {
		total += len(k) + len(val)
	}
	if len(next) > maxConfigVars {
		v.Add("config", "at most %d variables", maxConfigVars)
	}
	if total > maxConfigTotal {
		v.Add("config", "at most %d bytes in all", maxConfigTotal)
	}
	if err := v.Err(); err != nil {
		return store.Release{}, err
	}
	if maps.Equal(next, a.Config) || (len(next) == 0 && len(a.Config) == 0) {
		return store.Release{}, ErrUnchanged
	}
	var changed []string
	for k := range next {
		if old, ok := a.Config[k]; !ok || old != next[k] {
			changed = append(changed, k)
		}
	}
	var removed []string
	for k := range a.Config {
		if _, ok := next[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(changed)
	slices.Sort(removed)
	summary := actor.Username + " changed the config"
	if len(changed) > 0 {
		summary += ", set " + strings.Join(changed, ", ")
	}
	if len(removed) > 0 {
		summary += ", unset " + strings.Join(removed, ", ")
	}
	return p.deploy(ctx, actor.Username, a.ID, change{source: SourceConfig, config: next, setConfig: true, summary: summary, progress: progress})
}

// checkConfigKey says what is wrong with an environment variable name.
func checkConfigKey(k string) string {
	switch {
	case !configKeyPattern.MatchString(k):
		return "must be a variable name: letters, digits and '_', not starting with a digit, at most 128"
	case k == "PORT" || strings.HasPrefix(k, "ROSTI_"):
		return "is set by rosti itself"
	}
	return ""
}

// Rollback makes a new release that runs an earlier one's image, config and
// files; version 0 means the release before the current one.
func (p *Platform) Rollback(ctx context.Context, actor store.User, ref AppRef, version int64, progress io.Writer) (store.Release, error) {
	a, unlock, err := p.lockApp(actor, ref)
	if err != nil {
		return store.Release{}, err
	}
	defer unlock()
	if version == 0 {
		releases, err := p.store.Releases(a.ID)
		if err != nil {
			return store.Release{}, err
		}
		for _, r := range releases {
			if r.Version < a.Release && r.Status == store.ReleaseSucceeded {
				version = r.Version
				break
			}
		}
		if version == 0 {
			return store.Release{}, FieldError("version", "there is no earlier release to roll back to")
		}
	}
	target, err := p.store.Release(a.ID, version)
	if err != nil {
		return store.Release{}, FieldError("version", "v%d does not exist", version)
	}
	if target.Status != store.ReleaseSucceeded {
		return store.Release{}, FieldError("version", "v%d failed, so it cannot be rolled back to", version)
	}
	if version == a.Release {
		return store.Release{}, FieldError("version", "v%d is the release that runs", version)
	}
	return p.deploy(ctx, actor.Username, a.ID, change{
		source: SourceRollback, restore: &target, rollbackFrom: version, progress: progress,
		summary: fmt.Sprintf("%s rolled back to v%d", actor.Username, version),
	})
}

// Scale sets how many containers of each process type an app runs (web
// defaults to 1, other types of the Procfile to 0). It makes no release;
// scaling down drains the containers that go before removing them.
func (p *Platform) Scale(ctx context.Context, actor store.User, ref AppRef, counts map[string]int) (store.App, error) {
	if err := p.needRuntime(); err != nil {
		return store.App{}, err
	}
	a, unlock, err := p.lockApp(actor, ref)
	if err != nil {
		return store.App{}, err
	}
	defer unlock()
	rel, err := p.currentRelease(a)
	if err != nil {
		return store.App{}, err
	}
	known := rel.ProcessTypes
	if !slices.Contains(known, "web") {
		known = append([]string{"web"}, known...)
	}
	var v ValidationError
	for t, n := range counts {
		switch {
		case !slices.Contains(known, t):
			v.Add(t, "is not a process type of this app's Procfile (it has %s)", strings.Join(known, ", "))
		case n < 0 || n > MaxScale:
			v.Add(t, "must be between 0 and %d", MaxScale)
		}
	}
	if len(counts) == 0 {
		v.Add("processes", "give at least one process type and its count, like {\"web\": 2}")
	}
	if err := v.Err(); err != nil {
		return store.App{}, err
	}
	a, err = p.store.UpdateApp(a.ID, func(a *store.App) error {
		if a.Processes == nil {
			a.Processes = map[string]int{}
		}
		for t, n := range counts {
			a.Processes[t] = n
		}
		return nil
	})
	if err != nil {
		return store.App{}, err
	}
	p.log.Info("app scaled", "app", a.Name, "processes", a.Processes, "user", actor.Username)
	return a, p.applied(ctx, a.ID)
}

// ProcessTypes lists the process types an app's current release knows,
// with the count of each.
func (p *Platform) ProcessTypes(_ context.Context, actor store.User, ref AppRef) (map[string]int, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return nil, err
	}
	rel, err := p.currentRelease(a)
	if err != nil {
		return nil, err
	}
	out := map[string]int{"web": 0}
	for _, t := range rel.ProcessTypes {
		out[t] = 0
	}
	maps.Copy(out, a.Processes)
	return out, nil
}
