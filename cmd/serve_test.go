package cmd

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// recordingPart notes when it is asked to stop and what it sees then.
type recordingPart struct {
	name    string
	log     *eventLog
	serving context.Context // its Serve's ctx, once Serve runs
	ready   chan struct{}
	// onShutdown runs inside Shutdown.
	onShutdown func(ctx context.Context)
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func newPart(name string, log *eventLog) *recordingPart {
	return &recordingPart{name: name, log: log, ready: make(chan struct{})}
}

func (p *recordingPart) Serve(ctx context.Context) error {
	p.serving = ctx
	close(p.ready)
	<-ctx.Done()
	return nil
}

func (p *recordingPart) Shutdown(ctx context.Context) error {
	p.log.add("shutdown " + p.name)
	if p.serving.Err() != nil {
		p.log.add(p.name + " stopped serving before its shutdown")
	}
	if p.onShutdown != nil {
		p.onShutdown(ctx)
	}
	return nil
}

func TestRunPartsStopsEachInItsTurn(t *testing.T) {
	events := &eventLog{}
	store, platform, gateway, api := newPart("store", events), newPart("platform", events), newPart("gateway", events), newPart("api", events)
	// While the gateway drains, what it drives still serves; the API
	// drains at the same time.
	gateway.onShutdown = func(ctx context.Context) {
		if platform.serving.Err() != nil || store.serving.Err() != nil {
			events.add("the platform stopped before the gateway drained")
		}
		for !slices.Contains(events.snapshot(), "shutdown api") {
			if ctx.Err() != nil {
				events.add("the API waited for the gateway to drain")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runParts(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), 2*time.Second, store, platform, together{gateway, api})
	}()
	for _, p := range []*recordingPart{store, platform, gateway, api} {
		<-p.ready
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := events.snapshot()
	front := got[:2]
	slices.Sort(front)
	want := []string{"shutdown api", "shutdown gateway", "shutdown platform", "shutdown store"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for _, p := range []*recordingPart{store, platform, gateway, api} {
		if p.serving.Err() == nil {
			t.Errorf("%s still serves after runParts returned", p.name)
		}
	}
}
