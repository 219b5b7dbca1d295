package platform

import (
	"context"
	"strconv"
	"sync"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Usage samples: every running container's memory and CPU time is read
// once a sampleEvery; each app keeps its last hour of samples and, for its
// last day, one average per dayStep. They live in memory only: a restart
// of rosti starts the charts afresh, and nothing is written per sample.
const (
	sampleEvery = time.Minute
	hourSamples = 60
	dayStep     = 15 * time.Minute
	daySamples  = 96
)

// UsagePoint is an app's memory and CPU use at one time (averaged over
// its step in the day's series).
type UsagePoint struct {
	At         time.Time
	MemoryMB   float64
	CPUPercent float64 // of one core
}

// Usage is an app's use over the last hour and day, with its plan's
// limits per container times its containers.
type Usage struct {
	Hour, Day       []UsagePoint
	MemoryLimitMB   float64
	CPULimitPercent float64
}

type appSamples struct {
	hour    []UsagePoint
	day     []UsagePoint
	pending []UsagePoint // samples of the day's current step
	cpuNs   map[string]uint64
	last    time.Time
}

// usageSampler keeps the samples of every app.
type usageSampler struct {
	mu   sync.Mutex
	apps map[int64]*appSamples
}

func newUsageSampler() *usageSampler { return &usageSampler{apps: map[int64]*appSamples{}} }

// point makes a sample from an app's containers' counters, its CPU use
// since the app's last sample.
func (a *appSamples) point(at time.Time, memoryBytes uint64, cpuNs map[string]uint64) UsagePoint {
	pt := UsagePoint{At: at, MemoryMB: float64(memoryBytes) / (1 << 20)}
	if !a.last.IsZero() && at.After(a.last) {
		var used uint64
		for name, ns := range cpuNs {
			if before, ok := a.cpuNs[name]; ok && ns >= before {
				used += ns - before
			}
		}
		pt.CPUPercent = float64(used) / float64(at.Sub(a.last).Nanoseconds()) * 100
	}
	return pt
}

// live makes a sample for now without keeping it.
func (s *usageSampler) live(appID int64, at time.Time, memoryBytes uint64, cpuNs map[string]uint64) UsagePoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		a = &appSamples{}
	}
	return a.point(at, memoryBytes, cpuNs)
}

// add records one sample of an app from its containers' counters.
func (s *usageSampler) add(appID int64, at time.Time, memoryBytes uint64, cpuNs map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		a = &appSamples{}
		s.apps[appID] = a
	}
	pt := a.point(at, memoryBytes, cpuNs)
	a.cpuNs, a.last = cpuNs, at
	a.hour = append(a.hour, pt)
	if len(a.hour) > hourSamples {
		a.hour = a.hour[len(a.hour)-hourSamples:]
	}
	if len(a.pending) > 0 && at.Truncate(dayStep) != a.pending[0].At.Truncate(dayStep) {
		a.day = append(a.day, average(a.pending))
		if len(a.day) > daySamples {
			a.day = a.day[len(a.day)-daySamples:]
		}
		a.pending = a.pending[:0]
	}
	a.pending = append(a.pending, pt)
}

func average(pts []UsagePoint) UsagePoint {
	out := UsagePoint{At: pts[0].At.Truncate(dayStep)}
	for _, p := range pts {
		out.MemoryMB += p.MemoryMB
		out.CPUPercent += p.CPUPercent
	}
	out.MemoryMB /= float64(len(pts))
	out.CPUPercent /= float64(len(pts))
	return out
}

func (s *usageSampler) series(appID int64) (hour, day []UsagePoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		return nil, nil
	}
	day = append([]UsagePoint(nil), a.day...)
	if len(a.pending) > 0 {
		day = append(day, average(a.pending))
	}
	return append([]UsagePoint(nil), a.hour...), day
}

// keep forgets the apps that are gone.
func (s *usageSampler) keep(ids map[int64]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.apps {
		if !ids[id] {
			delete(s.apps, id)
		}
	}
}

// sampleUsage reads every app's containers once a sampleEvery until ctx
// ends.
func (p *Platform) sampleUsage(ctx context.Context) {
	select {
	case <-p.containers.Ready():
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		p.takeSamples(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Platform) takeSamples(ctx context.Context) {
	cs, err := p.containers.List(ctx, nil)
	if err != nil {
		p.log.Debug("usage samples", "err", err)
		return
	}
	now := p.now()
	type sum struct {
		memory uint64
		cpu    map[string]uint64
	}
	byApp := map[int64]*sum{}
	for _, c := range cs {
		id, err := strconv.ParseInt(c.Labels[rtm.LabelAppID], 10, 64)
		if err != nil || c.Status != rtm.StatusRunning {
			continue
		}
		st, err := p.containers.Stats(ctx, c.Name)
		if err != nil {
			continue
		}
		s := byApp[id]
		if s == nil {
			s = &sum{cpu: map[string]uint64{}}
			byApp[id] = s
		}
		s.memory += st.MemoryUsage
		s.cpu[c.Name] = st.CPUUsageNs
	}
	apps, err := p.store.Apps()
	if err != nil {
		return
	}
	live := map[int64]bool{}
	for _, a := range apps {
		live[a.ID] = true
		s := byApp[a.ID]
		if s == nil {
			s = &sum{cpu: map[string]uint64{}}
		}
		p.usage.add(a.ID, now, s.memory, s.cpu)
	}
	p.usage.keep(live)
}

// Usage returns an app's memory and CPU use over the last hour and day.
func (p *Platform) Usage(ctx context.Context, actor store.User, ref AppRef) (Usage, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return Usage{}, err
	}
	plan, err := p.store.Plan(a.PlanID)
	if err != nil {
		return Usage{}, err
	}
	containers := 0
	for _, n := range a.Processes {
		containers += n
	}
	u := Usage{MemoryLimitMB: float64(plan.MemoryMB * int64(containers)), CPULimitPercent: float64(plan.CPUMillis*int64(containers)) / 10}
	u.Hour, u.Day = p.usage.series(a.ID)
	if p.containers != nil {
		// The latest point is read now, so a new app has one at once.
		cs, err := p.containersOf(ctx, a.ID)
		if err != nil {
			return Usage{}, err
		}
		var memory uint64
		cpu := map[string]uint64{}
		for _, c := range cs {
			if c.Status != rtm.StatusRunning {
				continue
			}
			if st, err := p.containers.Stats(ctx, c.Name); err == nil {
				memory += st.MemoryUsage
				cpu[c.Name] = st.CPUUsageNs
			}
		}
		u.Hour = append(u.Hour, p.usage.live(a.ID, p.now(), memory, cpu))
	}
	return u, nil
}
