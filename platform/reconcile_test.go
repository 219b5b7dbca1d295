package platform

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
	"github.com/rosti-paas/rosti/store"
)

// newRuntimePlatform is a platform on a real containerd (rttest) with the
// tests' HTTP server as the runtime "httpserver", reconciling until the
// test ends. wrap, when not nil, puts something between the platform and
// the driver.
func newRuntimePlatform(t *testing.T, healthTimeout time.Duration, wrap func(*rtm.Driver) Containers) (*Platform, *rtm.Driver) {
	t.Helper()
	d := rttest.StartDriver(t)
	image := rttest.HTTPServerImage(t, d)
	var containers Containers = d
	if wrap != nil {
		containers = wrap(d)
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{DataDir: dir, AppsDomain: "apps.test", HealthTimeout: healthTimeout},
		Deps{Store: st, Containers: containers, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := p.SeedCatalog(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PutRuntime(context.Background(), Operator(), store.Runtime{Name: "httpserver", Image: image, Command: []string{"/httpserver"}, Show: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return p, d
}

// runningWeb waits until the app runs exactly one web container and
// returns its name.
func runningWeb(t *testing.T, p *Platform, appID int64) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		cs, err := p.containersOf(context.Background(), appID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 && cs[0].Status == rtm.StatusRunning {
			return cs[0].Name + "@" + cs[0].StartedAt.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("app %d does not run one container: %+v", appID, cs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newAlice makes the user alice and returns her with her company's id.
func newAlice(t *testing.T, p *Platform) (store.User, int64) {
	t.Helper()
	ctx := context.Background()
	u, err := p.CreateUser(ctx, Operator(), NewUser{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := p.Companies(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	return u, cs[0].ID
}

// httpserverApp creates an app of the runtime "httpserver" on plan 1,
// checked at the path health ("" for none).
func httpserverApp(t *testing.T, p *Platform, u store.User, company int64, name, health string) store.App {
	t.Helper()
	a, err := p.CreateApp(context.Background(), u, company, AppInput{Name: ptr(name), Image: ptr("httpserver"), Plan: ptr(int64(1)), Healthcheck: ptr(health)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSlowHealthCheckDoesNotHoldUpOtherApps: while one app's restart waits
// for a health check that never passes, another app's restart completes.
func TestSlowHealthCheckDoesNotHoldUpOtherApps(t *testing.T) {
	p, _ := newRuntimePlatform(t, 10*time.Minute, nil)
	ctx := context.Background()
	u, company := newAlice(t, p)
	// /read of a missing file answers 500: never healthy.
	stuck := httpserverApp(t, p, u, company, "stuck", "/read?path=/srv/missing")
	other := httpserverApp(t, p, u, company, "other", "")
	runningWeb(t, p, stuck.ID)
	before := runningWeb(t, p, other.ID)

	stuckCtx, cancelStuck := context.WithCancel(ctx)
	defer cancelStuck()
	stuckDone := make(chan error, 1)
	go func() {
		_, err := p.AppAction(stuckCtx, u, AppByID(company, stuck.ID), ActionRestart)
		stuckDone <- err
	}()
	// The stuck restart is under way once its new container exists.
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := p.containersOf(ctx, stuck.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stuck app's restart started no new container: %+v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if _, err := p.AppAction(ctx, u, AppByID(company, other.ID), ActionRestart); err != nil {
		t.Fatalf("restart of the other app: %v", err)
	}
	select {
	case err := <-stuckDone:
		t.Fatalf("the stuck app's restart ended before the other's was checked: %v", err)
	default:
	}
	if after := runningWeb(t, p, other.ID); after == before {
		t.Fatalf("the other app's restart did not replace its container (%s)", after)
	}
}

// failing makes the first calls of Start and Run fail, as many as asked.
type failing struct {
	*rtm.Driver
	starts, runs atomic.Int32
}

func (f *failing) Start(ctx context.Context, name string) (rtm.Instance, error) {
	if f.starts.Add(-1) >= 0 {
		return rtm.Instance{}, errors.New("containerd said no")
	}
	return f.Driver.Start(ctx, name)
}

func (f *failing) Run(ctx context.Context, spec rtm.ContainerSpec) (rtm.Instance, error) {
	if f.runs.Add(-1) >= 0 {
		return rtm.Instance{}, errors.New("containerd said no")
	}
	return f.Driver.Run(ctx, spec)
}

// TestFailedRestartBacksOff: a crashed container whose restart fails is
// tried again after a longer wait each time, and its status says when,
// until it runs again.
func TestFailedRestartBacksOff(t *testing.T) {
	starts := &failing{}
	p, d := newRuntimePlatform(t, 0, func(d *rtm.Driver) Containers { starts.Driver = d; return starts })
	ctx := context.Background()
	u, company := newAlice(t, p)
	a := httpserverApp(t, p, u, company, "crashy", "")
	runningWeb(t, p, a.ID)
	starts.starts.Store(2)
	if err := d.Stop(ctx, "crashy-web-1", 0); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := p.Status(ctx, u, AppByID(company, a.ID))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range st.Info {
			seen[info] = true
		}
		if len(st.Containers) == 1 && st.Containers[0].State == rtm.StatusRunning {
			if st.Containers[0].Restarts != 3 {
				t.Errorf("restarts = %d, want 3 (the crash and two failed starts)", st.Containers[0].Restarts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not running again: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if starts.starts.Load() >= 0 {
		t.Errorf("the failing starts were not all tried: %d left", starts.starts.Load()+1)
	}
	var waits []string
	for info := range seen {
		if strings.Contains(info, " in -") {
			t.Errorf("status promised a restart in the past: %q", info)
		}
		if strings.Contains(info, "restarts in") {
			waits = append(waits, info)
		}
	}
	if !slices.ContainsFunc(waits, func(s string) bool { return strings.Contains(s, "(restart 3)") }) {
		t.Errorf("the status never announced the retry after a failed start; it said %q", waits)
	}
}

// TestFailedReconcileIsRetriedSoon: an app whose container could not be
// made is tried again within seconds, not at the next periodic pass, and
// its status shows the error meanwhile.
func TestFailedReconcileIsRetriedSoon(t *testing.T) {
	runs := &failing{}
	runs.runs.Store(2)
	p, _ := newRuntimePlatform(t, 0, func(d *rtm.Driver) Containers { runs.Driver = d; return runs })
	ctx := context.Background()
	u, company := newAlice(t, p)
	a := httpserverApp(t, p, u, company, "unlucky", "")
	var sawError bool
	deadline := time.Now().Add(resyncInterval - 5*time.Second)
	for {
		st, err := p.Status(ctx, u, AppByID(company, a.ID))
		if err != nil {
			t.Fatal(err)
		}
		sawError = sawError || slices.ContainsFunc(st.Errors, func(e string) bool { return strings.Contains(e, "containerd said no") })
		if st.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not running before the periodic pass: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawError {
		t.Error("the status never showed why the app was not running yet")
	}
}
