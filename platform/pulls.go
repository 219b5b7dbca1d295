package platform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"

	"github.com/rosti-paas/rosti/store"
)

// errPulling says an app waits for its image, which a job is pulling. It is
// not a failure: the app is reconciled again when the pull ends.
var errPulling = errors.New("waiting for the image")

// Pull retries after a failure wait this long, doubling up to the maximum.
const (
	pullRetryFirst = 30 * time.Second
	pullRetryMax   = 10 * time.Minute
)

// puller runs image pulls in the background, one per image however many
// apps wait for it, so a slow registry never holds up the reconciler's
// other work. Every company that asked for the image follows the pull in a
// job of its own.
type puller struct {
	p       *Platform
	ctx     context.Context // ends at Shutdown
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]*pullRun
	failed  map[string]pullFailure
}

type pullRun struct {
	jobs     map[int64]int64 // company -> its job
	apps     map[int64]bool  // apps to reconcile when the pull ends
	progress rtm.PullProgress
	done     chan struct{}
	err      error // once done is closed
}

type pullFailure struct {
	err     error
	tries   int
	retryAt time.Time
}

func newPuller(p *Platform) *puller {
	ctx, cancel := context.WithCancel(context.Background())
	return &puller{p: p, ctx: ctx, cancel: cancel, running: map[string]*pullRun{}, failed: map[string]pullFailure{}}
}

// forApp makes sure the image of app a is being pulled, with a job for its
// company, and says so with an error wrapping errPulling. A pull that
// failed recently is not tried again before its retry time; its error is
// the answer until then.
func (pl *puller) forApp(a store.App) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if f, ok := pl.failed[a.Image]; ok && time.Now().Before(f.retryAt) {
		if _, running := pl.running[a.Image]; !running {
			return fmt.Errorf("pulling image %s failed: %v; trying again in %s: %w",
				a.Image, f.err, time.Until(f.retryAt).Round(time.Second), store.ErrInvalid)
		}
	}
	run := pl.startLocked(a.Image)
	run.apps[a.ID] = true
	jobID, err := pl.jobLocked(run, a.Image, a.CompanyID)
	if err != nil {
		return err
	}
	return fmt.Errorf("image %s is being pulled, job %d shows how far: %w", a.Image, jobID, errPulling)
}

// background starts fetching ref for a company's job, without waiting.
func (pl *puller) background(ref string, companyID int64) (int64, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	delete(pl.failed, ref) // the operator asks now, not at the retry time
	return pl.jobLocked(pl.startLocked(ref), ref, companyID)
}

// pull fetches ref for the operator and waits for the end of it.
func (pl *puller) pull(ctx context.Context, ref string) error {
	pl.mu.Lock()
	delete(pl.failed, ref) // the operator asks now, not at the retry time
	run := pl.startLocked(ref)
	pl.mu.Unlock()
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return fmt.Errorf("pull of %s goes on in the background: %w", ref, ctx.Err())
	}
}

// describe says how far the pull of ref is, or "" when none runs.
func (pl *puller) describe(ref string) string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	run, ok := pl.running[ref]
	if !ok {
		return ""
	}
	return fmt.Sprintf("pulling image %s: %d%%, %s", ref, run.progress.Percent(), run.progress)
}

// succeeded forgets past failures of ref, which is present now.
func (pl *puller) succeeded(ref string) {
	pl.mu.Lock()
	delete(pl.failed, ref)
	pl.mu.Unlock()
}

func (pl *puller) startLocked(ref string) *pullRun {
	if run, ok := pl.running[ref]; ok {
		return run
	}
	run := &pullRun{jobs: map[int64]int64{}, apps: map[int64]bool{}, done: make(chan struct{})}
	pl.running[ref] = run
	pl.wg.Add(1)
	go pl.run(ref, run)
	return run
}

// jobLocked returns the job of company for run, creating it when the
// company has none yet.
func (pl *puller) jobLocked(run *pullRun, ref string, companyID int64) (int64, error) {
	if id, ok := run.jobs[companyID]; ok {
		return id, nil
	}
	now := pl.p.now().UTC()
	j, err := pl.p.store.CreateJob(store.Job{
		CompanyID: companyID, Kind: JobPull, Target: ref, Status: store.JobRunning,
		Progress: run.progress.Percent(), Message: "pulling " + ref, Created: now, Started: now,
	})
	if err != nil {
		return 0, err
	}
	run.jobs[companyID] = j.ID
	return j.ID, nil
}

func (pl *puller) run(ref string, run *pullRun) {
	defer pl.wg.Done()
	pl.p.log.Info("pulling image", "image", ref)
	loggedTenth := -1
	err := pl.p.containers.Pull(pl.ctx, ref, func(pr rtm.PullProgress) {
		pl.mu.Lock()
		run.progress = pr
		jobs := maps.Clone(run.jobs)
		pl.mu.Unlock()
		for _, id := range jobs {
			pl.updateJob(id, func(j *store.Job) { j.Progress, j.Message = pr.Percent(), pr.String() })
		}
		if tenth := pr.Percent() / 10; tenth > loggedTenth {
			loggedTenth = tenth
			pl.p.log.Info("pull", "image", ref, "progress", pr.String())
		}
	})
	pl.mu.Lock()
	delete(pl.running, ref)
	var retryIn time.Duration
	if err != nil && pl.ctx.Err() == nil {
		f := pl.failed[ref]
		f.tries++
		retryIn = min(pullRetryFirst<<(f.tries-1), pullRetryMax)
		f.err, f.retryAt = err, time.Now().Add(retryIn)
		pl.failed[ref] = f
	}
	run.err = err
	jobs, apps := run.jobs, run.apps
	close(run.done)
	pl.mu.Unlock()

	finished := pl.p.now().UTC()
	switch {
	case err == nil:
		pl.p.log.Info("image pulled", "image", ref)
	case pl.ctx.Err() != nil:
		err = errors.New("interrupted: rosti stopped during the pull")
	default:
		pl.p.log.Warn("image pull failed", "image", ref, "err", err, "retry_in", retryIn)
		err = fmt.Errorf("%v; rosti tries again in %s while an app needs the image", err, retryIn)
	}
	for _, id := range jobs {
		pl.updateJob(id, func(j *store.Job) {
			j.Finished = finished
			if err != nil {
				j.Status, j.Message = store.JobFailed, err.Error()
				return
			}
			j.Status, j.Progress, j.Message = store.JobDone, 100, "pulled "+ref
		})
	}
	if pl.ctx.Err() == nil && pl.p.reconciler != nil {
		for id := range apps {
			pl.p.reconciler.kick(id)
		}
	}
}

func (pl *puller) updateJob(id int64, change func(*store.Job)) {
	if _, err := pl.p.store.UpdateJob(id, change); err != nil {
		pl.p.log.Warn("update job", "job", id, "err", err)
	}
}

// shutdown stops the pulls and waits, as long as ctx allows, until their
// jobs are marked.
func (pl *puller) shutdown(ctx context.Context) error {
	pl.cancel()
	done := make(chan struct{})
	go func() { pl.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
