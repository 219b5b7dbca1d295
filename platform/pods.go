package platform

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Pod is one container of an app as Drycc shows it.
type Pod struct {
	Name     string
	Type     string // the process type
	State    string // up, down, crashed, starting
	Started  time.Time
	Restarts int
	Release  int64 // the release it runs; 0 for a container of an older one being replaced
}

// Pods lists an app's containers, of one process type when ptype is not
// empty.
func (p *Platform) Pods(ctx context.Context, actor store.User, ref AppRef, ptype string) ([]Pod, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return nil, err
	}
	return p.pods(ctx, a, ptype)
}

func (p *Platform) pods(ctx context.Context, a store.App, ptype string) ([]Pod, error) {
	cs, err := p.containersOf(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	want, err := p.desiredFor(a)
	if err != nil {
		return nil, err
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := []Pod{}
	for _, c := range cs {
		t := c.Labels[rtm.LabelProcess]
		if ptype != "" && t != ptype {
			continue
		}
		pod := Pod{Name: c.Name, Type: t, Started: c.StartedAt}
		switch {
		case c.Status == rtm.StatusRunning:
			pod.State = "up"
		case c.OOMKilled || !c.ExitedAt.IsZero():
			pod.State = "crashed"
		case c.Status == rtm.StatusCreated:
			pod.State = "starting"
		default:
			pod.State = "down"
		}
		if info, ok := p.reconciler.crashInfo(c.Name); ok {
			pod.Restarts = info.restarts
		}
		if c.Labels[rtm.LabelSpec] == want.hash {
			pod.Release = a.Release
		}
		out = append(out, pod)
	}
	return out, nil
}

// RestartPods replaces an app's containers with new ones without downtime
// and lists them afterwards. ptype and name, when given, must name a
// process type or a container of the app; the restart itself is of the
// whole app, as Rosti's restart is (its containers move together).
func (p *Platform) RestartPods(ctx context.Context, actor store.User, ref AppRef, ptype, name string) ([]Pod, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return nil, err
	}
	if ptype != "" || name != "" {
		pods, err := p.pods(ctx, a, ptype)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(pods, func(pod Pod) bool { return name == "" || pod.Name == name }) {
			what := ptype
			if name != "" {
				what = name
			}
			return nil, fmt.Errorf("%s does not exist in application %s: %w", what, a.Name, store.ErrInvalid)
		}
	}
	if _, err := p.AppAction(ctx, actor, AppByID(a.CompanyID, a.ID), ActionRestart); err != nil {
		return nil, err
	}
	if a, err = p.store.App(a.ID); err != nil {
		return nil, err
	}
	return p.pods(ctx, a, ptype)
}

// cappedBuffer keeps the first max bytes written to it and drops the rest;
// stdout and stderr write to it at once.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(data[:min(room, len(data))])
	}
	return len(data), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
