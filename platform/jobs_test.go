package platform

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// fakePull is a registry under the test's control: each pull reports
// half its progress, then waits for the test's verdict or for its ctx.
type fakePull struct {
	Containers // only Pull is called
	calls      atomic.Int32
	reported   chan struct{}
	verdict    chan error
}

func (f *fakePull) Pull(ctx context.Context, _ string, progress func(rtm.PullProgress)) error {
	f.calls.Add(1)
	progress(rtm.PullProgress{Blobs: 4, BlobsDone: 2, Total: 1000, Done: 500})
	f.reported <- struct{}{}
	select {
	case err := <-f.verdict:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newPullTest(t *testing.T) (*puller, *fakePull, *store.Store) {
	st, err := store.Open(filepath.Join(t.TempDir(), "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fake := &fakePull{reported: make(chan struct{}, 8), verdict: make(chan error)}
	p := &Platform{store: st, containers: fake, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	pl := newPuller(p)
	t.Cleanup(func() { _ = pl.shutdown(context.Background()) })
	return pl, fake, st
}

// waitJob polls a job until it has ended.
func waitJob(t *testing.T, st *store.Store, id int64) store.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := st.Job(id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Ended() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d never ended: %+v", id, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPullerJobs(t *testing.T) {
	const image = "registry.test/app:1"
	tests := []struct {
		name    string
		verdict func(*puller, *fakePull) // ends the pull
		status  string
		message string
		retry   string // what asking again answers, "" for a new pull
	}{
		{"success", func(_ *puller, f *fakePull) { f.verdict <- nil }, store.JobDone, "pulled " + image, ""},
		{"failure backs off", func(_ *puller, f *fakePull) { f.verdict <- errors.New("registry.test: not found") }, store.JobFailed, "not found; rosti tries again in 30s", "failed: registry.test: not found"},
		{"shutdown", func(pl *puller, _ *fakePull) { _ = pl.shutdown(context.Background()) }, store.JobFailed, "interrupted", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, fake, st := newPullTest(t)
			// Two apps of two companies wait for the same image: one pull, two jobs.
			for _, a := range []store.App{{ID: 1, CompanyID: 10, Image: image}, {ID: 2, CompanyID: 20, Image: image}} {
				if err := pl.forApp(a); !errors.Is(err, errPulling) {
					t.Fatalf("app %d: %v, want errPulling", a.ID, err)
				}
			}
			<-fake.reported
			if got := pl.describe(image); !strings.Contains(got, "50%, 2 of 4 blobs") {
				t.Errorf("status of the pull: %q", got)
			}
			var jobs []store.Job
			for _, company := range []int64{10, 20} {
				js, err := st.CompanyJobs(company)
				if err != nil || len(js) != 1 || js[0].Status != store.JobRunning || js[0].Target != image {
					t.Fatalf("company %d jobs: %+v %v", company, js, err)
				}
				jobs = append(jobs, js[0])
			}
			tc.verdict(pl, fake)
			for _, j := range jobs {
				j = waitJob(t, st, j.ID)
				if j.Status != tc.status || !strings.Contains(j.Message, tc.message) || j.Finished.IsZero() {
					t.Errorf("job %+v, want %s with %q", j, tc.status, tc.message)
				}
			}
			if fake.calls.Load() != 1 {
				t.Errorf("%d pulls of one image", fake.calls.Load())
			}
			if tc.retry != "" {
				err := pl.forApp(store.App{ID: 1, CompanyID: 10, Image: image})
				if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.retry) {
					t.Errorf("asking again after the failure: %v, want %q", err, tc.retry)
				}
				if fake.calls.Load() != 1 {
					t.Error("a failed pull was tried again at once")
				}
			}
		})
	}
}

// TestOperatorPullIsAJob: a pull the operator starts answers at once with
// a job of the operator's company, which follows it to its end.
func TestOperatorPullIsAJob(t *testing.T) {
	pl, fake, st := newPullTest(t)
	id, err := pl.background("registry.test/tool:2", 7)
	if err != nil {
		t.Fatal(err)
	}
	<-fake.reported
	if j, err := st.Job(id); err != nil || j.CompanyID != 7 || j.Status != store.JobRunning || j.Target != "registry.test/tool:2" {
		t.Fatalf("the pull's job while it runs: %+v %v", j, err)
	}
	fake.verdict <- nil
	if j := waitJob(t, st, id); j.Status != store.JobDone {
		t.Fatalf("the pull's job at the end: %+v", j)
	}
}
