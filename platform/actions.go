package platform

import (
	"context"

	"github.com/rosti-paas/rosti/store"
)

// App actions, as Rosti names them.
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
	ActionRebuild = "rebuild"
)

// AppAction starts, stops, restarts or rebuilds an app and waits (as long
// as ctx allows) until its containers are as asked. stop removes the
// containers and keeps the data; start creates them again; restart replaces
// them with new ones without downtime; rebuild removes them all first, then
// creates them again. The volume is never touched.
func (p *Platform) AppAction(ctx context.Context, u store.User, companyID, appID int64, action string) (store.App, error) {
	if _, err := p.App(u, companyID, appID); err != nil {
		return store.App{}, err
	}
	if err := p.needRuntime(); err != nil {
		return store.App{}, err
	}
	change := map[string]func(a *store.App){
		ActionStart:   func(a *store.App) { a.DesiredState = store.StateRunning },
		ActionStop:    func(a *store.App) { a.DesiredState = store.StateStopped },
		ActionRestart: func(a *store.App) { a.DesiredState = store.StateRunning; a.Generation++ },
		ActionRebuild: func(a *store.App) { a.DesiredState = store.StateRunning; a.Generation++ },
	}[action]
	if change == nil {
		return store.App{}, FieldError("action", "must be %s, %s, %s or %s", ActionStart, ActionStop, ActionRestart, ActionRebuild)
	}
	a, err := p.store.UpdateApp(appID, func(a *store.App) error { change(a); return nil })
	if err != nil {
		return store.App{}, err
	}
	if action == ActionRebuild {
		p.reconciler.markRebuild(appID)
	}
	p.log.Info("app action", "app", a.Name, "action", action, "user", u.Username)
	return a, p.applied(ctx, appID)
}
