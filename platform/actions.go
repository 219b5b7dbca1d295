package platform

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

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
func (p *Platform) AppAction(ctx context.Context, actor store.User, ref AppRef, action string) (store.App, error) {
	u := actor
	current, err := p.authorizeApp(actor, ref)
	if err != nil {
		return store.App{}, err
	}
	appID := current.ID
	if err := p.needRuntime(); err != nil {
		return store.App{}, err
	}
	unlock := p.deploys.Lock(appID)
	defer unlock()
	if action == ActionRestart || action == ActionRebuild {
		// Files uploaded since the last release (sftp, rsync, scp) are a
		// release of their own: restarting is how they go live.
		if uploaded, err := p.uploadedSinceRelease(current); err != nil {
			return store.App{}, err
		} else if uploaded && action == ActionRestart {
			if _, err := p.deploy(ctx, u.Username, appID, change{
				source: SourceUpload, liveTree: true, summary: u.Username + " deployed uploaded files",
			}); err != nil {
				return store.App{}, err
			}
			if current.Enabled() {
				return p.store.App(appID)
			}
		}
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

// uploadedSinceRelease tells whether /srv/app differs from the files the
// current release recorded.
func (p *Platform) uploadedSinceRelease(a store.App) (bool, error) {
	rel, err := p.currentRelease(a)
	if err != nil {
		return false, err
	}
	digest, err := p.treesOf(a).digest(appTreeDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read /srv/app: %w", err)
	}
	return digest != rel.TreeDigest, nil
}
