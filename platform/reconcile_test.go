package platform

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
	"github.com/rosti-paas/rosti/store"
)

// newRuntimePlatform is a platform on a real containerd (rttest) with the
// tests' HTTP server as the runtime "httpserver", reconciling until the
// test ends.
func newRuntimePlatform(t *testing.T, healthTimeout time.Duration) (*Platform, *rtm.Driver) {
	t.Helper()
	d := rttest.StartDriver(t)
	image := rttest.HTTPServerImage(t, d)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{DataDir: dir, AppsDomain: "apps.test", HealthTimeout: healthTimeout},
		Deps{Store: st, Containers: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// TestSlowHealthCheckDoesNotHoldUpOtherApps: while one app's restart waits
// for a health check that never passes, another app's restart completes.
func TestSlowHealthCheckDoesNotHoldUpOtherApps(t *testing.T) {
	p, _ := newRuntimePlatform(t, 10*time.Minute)
	ctx := context.Background()
	u, err := p.CreateUser(ctx, Operator(), NewUser{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := p.Companies(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, health string) store.App {
		a, err := p.CreateApp(ctx, u, cs[0].ID, AppInput{Name: ptr(name), Image: ptr("httpserver"), Plan: ptr(int64(1)), Healthcheck: ptr(health)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// /read of a missing file answers 500: never healthy.
	stuck := create("stuck", "/read?path=/srv/missing")
	other := create("other", "")
	runningWeb(t, p, stuck.ID)
	before := runningWeb(t, p, other.ID)

	stuckCtx, cancelStuck := context.WithCancel(ctx)
	defer cancelStuck()
	stuckDone := make(chan error, 1)
	go func() {
		_, err := p.AppAction(stuckCtx, u, AppByID(cs[0].ID, stuck.ID), ActionRestart)
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

	if _, err := p.AppAction(ctx, u, AppByID(cs[0].ID, other.ID), ActionRestart); err != nil {
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
