package platform

import (
	"context"
	"strconv"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// App states as a list of apps shows them.
const (
	AppRunning  = "running"
	AppStopped  = "stopped"
	AppStarting = "starting"
	AppCrashing = "crashing"
	AppPulling  = "pulling"
)

// AppState is what a list of apps shows of each: one word, the image
// pull's progress while it is pulled, and the memory its containers use.
type AppState struct {
	State       string
	PullPercent int
	MemoryMB    float64
}

// AppListing is an app with its state.
type AppListing struct {
	store.App
	AppState
}

// AppsWithState lists a company's apps, each with its state, from one
// listing of the company's containers: cheap enough for a page of a
// thousand apps.
func (p *Platform) AppsWithState(ctx context.Context, actor store.User, companyID int64) ([]AppListing, error) {
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return nil, err
	}
	apps, err := p.store.CompanyApps(companyID)
	if err != nil {
		return nil, err
	}
	byApp := map[int64][]rtm.Instance{}
	if p.containers != nil {
		cs, err := p.containers.List(ctx, map[string]string{rtm.LabelCompany: strconv.FormatInt(companyID, 10)})
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			id, _ := strconv.ParseInt(c.Labels[rtm.LabelAppID], 10, 64)
			byApp[id] = append(byApp[id], c)
		}
	}
	out := make([]AppListing, 0, len(apps))
	for _, a := range apps {
		out = append(out, AppListing{App: a, AppState: p.appState(ctx, a, byApp[a.ID])})
	}
	return out, nil
}

func (p *Platform) appState(ctx context.Context, a store.App, cs []rtm.Instance) AppState {
	if !a.Enabled() {
		return AppState{State: AppStopped}
	}
	if p.containers == nil {
		return AppState{State: a.DesiredState}
	}
	if percent, ok := p.pulls.percent(a.Image); ok {
		return AppState{State: AppPulling, PullPercent: percent}
	}
	st := AppState{State: AppStarting}
	running, crashed := 0, false
	for _, c := range cs {
		if c.Status == rtm.StatusRunning {
			running++
			if s, err := p.containers.Stats(ctx, c.Name); err == nil {
				st.MemoryMB += float64(s.MemoryUsage) / (1 << 20)
			}
			continue
		}
		if info, ok := p.reconciler.crashInfo(c.Name); ok && info.restarts > 0 {
			crashed = true
		}
	}
	want := 0
	for _, n := range a.Processes {
		want += n
	}
	switch {
	case crashed || p.reconciler.lastError(a.ID) != "":
		st.State = AppCrashing
	case running > 0 && running >= want:
		st.State = AppRunning
	}
	return st
}

// percent is how far the pull of ref has come, while it is pulled.
func (pl *puller) percent(ref string) (int, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	run, ok := pl.running[ref]
	if !ok {
		return 0, false
	}
	return run.progress.Percent(), true
}
