package platform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Reconciler timings.
const (
	resyncInterval = 30 * time.Second // a full pass catches what events missed
	healthProbe    = 2 * time.Second  // one probe of it, between checks that it still runs
	maxBackoff     = 5 * time.Minute
	stableRun      = time.Minute // a process that ran this long starts its backoff afresh
)

// ErrNotHealthy says a new version of an app never answered, so the old
// one was kept. It is the user's to fix, hence an ErrInvalid.
var ErrNotHealthy = fmt.Errorf("new version not healthy: %w", store.ErrInvalid)

// crashState is what the reconciler remembers of a container's exits.
type crashState struct {
	restarts  int
	lastExit  rtm.Exit
	nextStart time.Time
}

// reconciler makes the containers match the store: on boot, whenever an app
// changes, on every task exit, and on a periodic pass. Each app has a worker
// of its own while it has work, so two passes never race over the same app
// and one app's wait (a health check, a drain) never holds up another's.
type reconciler struct {
	p       *Platform
	mu      sync.Mutex
	ctx     context.Context        // serve's, once containers are ready; workers start only then
	pending map[int64][]chan error // apps to reconcile, with who waits for the result
	working map[int64]bool         // apps whose worker runs
	crashes map[string]*crashState
	errors  map[int64]string    // the last reconcile error of an app, for its status
	retries map[int64]int       // failed reconciles of an app in a row
	rebuild map[int64]bool      // apps whose containers all go before new ones start
	deleted map[int64]store.App // deleted apps, until what they left is removed
	// Exits that are not crashes: of containers being removed, and of an
	// earlier container of the same name, reported after its successor started.
	stopping map[string]bool
	started  map[string]time.Time
	// leaving holds containers being drained: every publish of the routes,
	// whichever app's worker makes it, keeps them out.
	leaving map[string]bool
	// routes serializes publishing, so that the table the proxy ends with
	// is built from the latest state, never from an older snapshot.
	routes sync.Mutex
	// slots bounds the container work done at once (a boot with many apps
	// would otherwise hit containerd with all of them); a worker gives its
	// slot back while it only waits.
	slots   chan struct{}
	workers sync.WaitGroup
}

// maxParallelReconciles is how many apps have their containers changed at
// the same time.
const maxParallelReconciles = 8

func newReconciler(p *Platform) *reconciler {
	return &reconciler{p: p, pending: map[int64][]chan error{}, working: map[int64]bool{}, crashes: map[string]*crashState{}, errors: map[int64]string{}, retries: map[int64]int{},
		rebuild: map[int64]bool{}, deleted: map[int64]store.App{}, stopping: map[string]bool{}, started: map[string]time.Time{},
		leaving: map[string]bool{}, slots: make(chan struct{}, maxParallelReconciles)}
}

func (r *reconciler) markDeleted(a store.App) {
	r.mu.Lock()
	r.deleted[a.ID] = a
	r.mu.Unlock()
}

func (r *reconciler) markRebuild(appID int64) {
	r.mu.Lock()
	r.rebuild[appID] = true
	r.mu.Unlock()
}

// kick asks for an app to be reconciled soon; the channel gets the result.
func (r *reconciler) kick(appID int64) <-chan error {
	done := make(chan error, 1)
	r.mu.Lock()
	r.pending[appID] = append(r.pending[appID], done)
	r.startWorkerLocked(appID)
	r.mu.Unlock()
	return done
}

// startWorkerLocked starts appID's worker unless it runs or the reconciler
// does not serve yet (serve starts the pending ones). Once it has stopped
// serving, a kick (a timer's, late) gets the reason at once: no worker
// may start while serve waits for the last ones.
func (r *reconciler) startWorkerLocked(appID int64) {
	if r.ctx == nil || r.working[appID] {
		return
	}
	if err := r.ctx.Err(); err != nil {
		for _, w := range r.pending[appID] {
			w <- err
		}
		delete(r.pending, appID)
		return
	}
	r.working[appID] = true
	r.workers.Add(1)
	go r.work(r.ctx, appID)
}

func (r *reconciler) kickAll() error {
	apps, err := r.p.store.Apps()
	if err != nil {
		return err
	}
	for _, a := range apps {
		r.kick(a.ID)
	}
	// Deleted apps whose leftovers could not all be removed yet.
	r.mu.Lock()
	gone := slices.Collect(maps.Keys(r.deleted))
	r.mu.Unlock()
	for _, id := range gone {
		r.kick(id)
	}
	// Containers of apps no longer in the store are reconciled away too.
	cs, err := r.p.containers.List(context.Background(), nil)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if id, err := strconv.ParseInt(c.Labels[rtm.LabelAppID], 10, 64); err == nil {
			r.kick(id)
		}
	}
	return nil
}

// serve starts the workers and runs the periodic pass until ctx ends.
func (r *reconciler) serve(ctx context.Context) error {
	select {
	case <-r.p.containers.Ready():
	case <-ctx.Done():
		return nil
	}
	r.mu.Lock()
	r.ctx = ctx
	for id := range r.pending {
		r.startWorkerLocked(id)
	}
	r.mu.Unlock()
	defer r.workers.Wait()
	if err := r.kickAll(); err != nil {
		r.p.log.Error("first reconcile pass", "err", err)
	}
	resync := time.NewTicker(resyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case exit := <-r.p.containers.Exits():
			r.recordExit(exit)
		case <-resync.C:
			if err := r.kickAll(); err != nil {
				r.p.log.Warn("reconcile pass", "err", err)
			}
		}
	}
}

// work reconciles one app until nobody asks for it any more.
func (r *reconciler) work(ctx context.Context, appID int64) {
	defer r.workers.Done()
	for {
		r.mu.Lock()
		waiters, asked := r.pending[appID]
		delete(r.pending, appID)
		if !asked || ctx.Err() != nil {
			delete(r.working, appID)
			r.mu.Unlock()
			for _, w := range waiters {
				w <- ctx.Err()
			}
			return
		}
		r.mu.Unlock()
		err := r.reconcileInSlot(ctx, appID)
		// Waiting for an image is no error: the status shows the pull.
		failed := err != nil && !errors.Is(err, errPulling)
		r.mu.Lock()
		if failed {
			r.errors[appID] = store.Message(err)
			// Most failures pass (containerd busy, a shim going away as a
			// container started): try again soon rather than at the next
			// periodic pass, and less often while it keeps failing.
			retry := min(time.Second<<min(r.retries[appID], 5), resyncInterval)
			r.retries[appID]++
			time.AfterFunc(retry, func() { r.kick(appID) })
		} else {
			delete(r.errors, appID)
			delete(r.retries, appID)
		}
		r.mu.Unlock()
		for _, w := range waiters {
			w <- err
		}
		if failed {
			r.p.log.Warn("reconcile app", "app_id", appID, "err", err)
		}
	}
}

func (r *reconciler) reconcileInSlot(ctx context.Context, appID int64) error {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.slots }()
	return r.reconcile(ctx, appID)
}

// waiting gives the caller's slot to other apps while it only waits, and
// takes one back before it returns.
func (r *reconciler) waiting(wait func() error) error {
	<-r.slots
	err := wait()
	r.slots <- struct{}{} // reconcileInSlot gives it back
	return err
}

// recordExit notes a task exit and schedules its restart with backoff.
func (r *reconciler) recordExit(exit rtm.Exit) {
	if wait, ok := r.scheduleRestart(exit); ok {
		r.p.log.Info("process exited", "container", exit.Name, "code", exit.Code, "oom", exit.OOMKilled, "restart_in", wait.Round(time.Second))
	}
}

// scheduleRestart counts exit as one more crash of its container and
// kicks its app once the backoff is over; not for exits that are no
// crash (of containers being removed, or reported late).
func (r *reconciler) scheduleRestart(exit rtm.Exit) (time.Duration, bool) {
	r.mu.Lock()
	if r.stopping[exit.Name] || exit.At.Before(r.started[exit.Name]) {
		r.mu.Unlock()
		return 0, false
	}
	c := r.crashes[exit.Name]
	if c == nil {
		c = &crashState{}
		r.crashes[exit.Name] = c
	}
	if !c.lastExit.At.IsZero() && exit.At.Sub(c.nextStart) > stableRun {
		c.restarts = 0
	}
	c.lastExit = exit
	delay := time.Second << min(c.restarts, 9)
	c.nextStart = time.Now().Add(min(delay, maxBackoff))
	c.restarts++
	wait := time.Until(c.nextStart)
	r.mu.Unlock()
	time.AfterFunc(wait, func() { r.kickContainer(exit.Name) })
	return wait, true
}

// kickContainer reconciles the app a container belongs to.
func (r *reconciler) kickContainer(name string) {
	cs, err := r.p.containers.List(context.Background(), nil)
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == name {
			if id, err := strconv.ParseInt(c.Labels[rtm.LabelAppID], 10, 64); err == nil {
				r.kick(id)
			}
		}
	}
}

// crashInfo is a copy of what is known of a container's exits.
func (r *reconciler) crashInfo(name string) (crashState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.crashes[name]
	if !ok {
		return crashState{}, false
	}
	return *c, true
}

func (r *reconciler) lastError(appID int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors[appID]
}

// reconcile makes one app's containers match its stored description.
func (r *reconciler) reconcile(ctx context.Context, appID int64) error {
	p := r.p
	existing, err := p.containersOf(ctx, appID)
	if err != nil {
		return err
	}
	a, err := p.store.App(appID)
	if errors.Is(err, store.ErrNotFound) {
		r.mu.Lock()
		gone, known := r.deleted[appID]
		r.mu.Unlock()
		if !known {
			// Deleted while rosti was down: what its containers say of it.
			gone = store.App{ID: appID}
			for _, c := range existing {
				gone.Name = c.Labels[rtm.LabelAppName]
			}
		}
		if err := r.removeApp(ctx, gone, existing); err != nil {
			return err
		}
		if err := r.publishRoutes(ctx); err != nil {
			return err
		}
		r.mu.Lock()
		delete(r.deleted, appID)
		r.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	// Run's containers end on their own; those a restart of rosti left
	// behind are removed below.
	leftOver := leftoverOneOffs(existing, time.Now())
	existing = slices.DeleteFunc(existing, isOneOff)
	r.mu.Lock()
	rebuild := r.rebuild[appID]
	delete(r.rebuild, appID)
	r.mu.Unlock()
	if !a.Enabled() || rebuild {
		if err := r.retire(ctx, existing); err != nil || !a.Enabled() {
			return err
		}
		existing = nil
	}
	want, err := p.desiredFor(a)
	if err != nil {
		return err
	}
	if err := p.ensureImage(ctx, a); err != nil {
		return err
	}
	volume, err := p.ensureVolume(a)
	if err != nil {
		return fmt.Errorf("volume of %s: %w", a.Name, err)
	}

	used := map[string]bool{}
	for _, c := range existing {
		used[c.Name] = true
	}
	stale := leftOver
	for _, c := range existing {
		// Types the app lists (even at 0) are retired by the loop below;
		// listing their containers here too removed them twice.
		if _, listed := a.Processes[c.Labels[rtm.LabelProcess]]; !listed {
			stale = append(stale, c)
		}
	}
	for _, process := range processTypes(a) {
		var current, old []rtm.Instance
		for _, c := range existing {
			switch {
			case c.Labels[rtm.LabelProcess] != process:
			case c.Labels[rtm.LabelSpec] == want.hash:
				current = append(current, c)
			default:
				old = append(old, c)
			}
		}
		for _, c := range current {
			if c.Status != rtm.StatusRunning {
				if err := r.restartCrashed(ctx, c); err != nil {
					return err
				}
			}
		}
		count := a.Processes[process]
		for len(current) > count {
			stale = append(stale, current[len(current)-1])
			current = current[:len(current)-1]
		}
		var specs []rtm.ContainerSpec
		for n := len(current); n < count; n++ {
			specs = append(specs, want.spec(freeName(a.Name, process, used), process, volume))
		}
		started, err := r.startAll(ctx, a, specs)
		if err != nil {
			return fmt.Errorf("start %s: %w", process, err)
		}
		if process == "web" && len(old) > 0 && len(started) > 0 {
			// Zero downtime: the old version serves until the new one answers.
			if err := r.waiting(func() error { return r.waitHealthy(ctx, a, started) }); err != nil {
				if rmErr := r.removeAll(ctx, started); rmErr != nil {
					p.log.Warn("remove unhealthy containers", "err", rmErr)
				}
				return fmt.Errorf("the new version of %s did not start to answer on port %d (%v); the previous one keeps running: %w", a.Name, a.AppPort, err, ErrNotHealthy)
			}
		}
		stale = append(stale, old...)
	}
	return r.retire(ctx, stale)
}

func (r *reconciler) waitHealthy(ctx context.Context, a store.App, started []rtm.Instance) error {
	timeout := r.p.cfg.HealthTimeout
	deadline := time.Now().Add(timeout)
	for _, c := range started {
		addr := net.JoinHostPort(c.IP, strconv.Itoa(a.AppPort))
		for {
			probeCtx, cancel := context.WithTimeout(ctx, healthProbe)
			err := r.p.health(probeCtx, addr, a.Healthcheck)
			cancel()
			if err == nil {
				break
			}
			// A process that died will never answer: say so at once.
			if cs, lerr := r.p.containersOf(ctx, a.ID); lerr == nil {
				for _, now := range cs {
					if now.Name == c.Name && now.Status != rtm.StatusRunning {
						return fmt.Errorf("%s exited with code %d", c.Name, now.ExitCode)
					}
				}
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				if a.Healthcheck != "" {
					return fmt.Errorf("%s did not pass its health check within %s: %v", c.Name, timeout, err)
				}
				return fmt.Errorf("nothing answered on %s within %s", addr, timeout)
			}
		}
	}
	return nil
}

// restartCrashed starts a stopped container again once its backoff is over.
func (r *reconciler) restartCrashed(ctx context.Context, c rtm.Instance) error {
	info, known := r.crashInfo(c.Name)
	if !known {
		// An exit that happened while rosti was down: treat it as a first crash.
		r.recordExit(rtm.Exit{Name: c.Name, Code: c.ExitCode, OOMKilled: c.OOMKilled, At: c.ExitedAt})
		return nil
	}
	if time.Now().Before(info.nextStart) {
		return nil
	}
	inst, err := r.p.containers.Start(ctx, c.Name)
	if err != nil {
		// A start that fails counts as a crash: the next try waits its
		// backoff, and the status says when it comes.
		wait, _ := r.scheduleRestart(rtm.Exit{Name: c.Name, Code: c.ExitCode, OOMKilled: c.OOMKilled, At: time.Now()})
		r.p.log.Warn("restart failed", "container", c.Name, "err", err, "next_in", wait.Round(time.Second))
		return fmt.Errorf("restart %s: %w", c.Name, err)
	}
	r.noteStart(inst)
	r.p.log.Info("container restarted", "container", c.Name, "restarts", info.restarts)
	return nil
}

func (r *reconciler) removeAll(ctx context.Context, cs []rtm.Instance) error {
	var errs []error
	for _, c := range cs {
		r.mu.Lock()
		r.stopping[c.Name] = true
		r.mu.Unlock()
		if c.Status == rtm.StatusRunning {
			if err := r.p.containers.Stop(ctx, c.Name, stopGrace); err != nil {
				errs = append(errs, err)
			}
		}
		if err := r.p.containers.Remove(ctx, c.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		// The stopping mark stays until a container of this name starts
		// again, because containerd may report the exit after the removal.
		r.mu.Lock()
		delete(r.crashes, c.Name)
		r.mu.Unlock()
		r.p.log.Info("container removed", "container", c.Name)
	}
	return errors.Join(errs...)
}

// removeApp removes what is left of a deleted app: containers, the logs of
// every container it ever had, its volume and its git repository.
func (r *reconciler) removeApp(ctx context.Context, a store.App, existing []rtm.Instance) error {
	if err := r.removeAll(ctx, existing); err != nil {
		return err
	}
	var errs []error
	logs, err := r.p.containers.LogNames()
	errs = append(errs, err)
	// Names are "<app>-<type>-<n>" and process types have no '-', so this
	// matches this app's containers only, never those of an app whose name
	// starts with this one's.
	own := regexp.MustCompile("^" + regexp.QuoteMeta(a.Name) + "-[a-z][a-z0-9]*-[0-9]+$")
	for _, name := range logs {
		if a.Name != "" && own.MatchString(name) {
			errs = append(errs, r.p.containers.RemoveLogs(name))
		}
	}
	errs = append(errs, r.p.removeVolume(a), os.RemoveAll(r.p.repoDir(a)))
	return errors.Join(errs...)
}

// noteStart records when a container (re)started, so that exits reported
// late for an earlier process of the same name are not taken for crashes.
func (r *reconciler) noteStart(inst rtm.Instance) {
	at := inst.StartedAt
	if at.IsZero() {
		at = time.Now()
	}
	r.mu.Lock()
	r.started[inst.Name] = at
	delete(r.stopping, inst.Name)
	r.mu.Unlock()
}
