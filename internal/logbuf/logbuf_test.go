package logbuf

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLinesReachTheWriter(t *testing.T) {
	tests := []struct {
		name  string
		flush func(w *Writer, cancel context.CancelFunc)
	}{
		{"on the timer", func(*Writer, context.CancelFunc) {}},
		{"when enough is waiting", func(w *Writer, _ context.CancelFunc) {
			w.interval = time.Hour
			_, _ = w.Write(bytes.Repeat([]byte("x"), flushAt))
		}},
		{"on shutdown", func(w *Writer, cancel context.CancelFunc) { cancel(); _ = w.Shutdown(context.Background()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out lockedBuffer
			w := New(&out, 10*time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := w.Write([]byte("one line\n")); err != nil {
				t.Fatal(err)
			}
			tc.flush(w, cancel)
			go func() { _ = w.Serve(ctx) }()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(out.String(), "one line") {
				if time.Now().After(deadline) {
					t.Fatal("the line never reached the writer")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// gatedWriter blocks every Write until open is closed.
type gatedWriter struct {
	open chan struct{}
	lockedBuffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.lockedBuffer.Write(p)
}

func TestSlowOutputDoesNotHoldWriters(t *testing.T) {
	out := &gatedWriter{open: make(chan struct{})}
	w := New(out, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Serve(ctx) }()
	// Wake the flusher, which then blocks in the output's Write.
	_, _ = w.Write(append(bytes.Repeat([]byte("x"), flushAt), '\n'))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			_, _ = fmt.Fprintf(w, "line %d\n", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes waited for a slow output while far below the bound")
	}
	close(out.open)
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for i := range 1000 {
		if !strings.Contains(got, fmt.Sprintf("\nline %d\n", i)) {
			t.Fatalf("line %d is missing", i)
		}
	}
}

func TestConcurrentWritersKeepLinesWholeAndInOrder(t *testing.T) {
	tests := []struct {
		name  string
		serve bool
	}{
		{"with the flusher", true},
		{"without it, writers flush past the bound", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out lockedBuffer
			w := New(&out, time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.serve {
				go func() { _ = w.Serve(ctx) }()
			}
			const writers, lines = 4, 20000 // 4 × 20,000 × ~40 bytes: past maxPending
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range lines {
						_, _ = fmt.Fprintf(w, "writer=%d line=%d padding=................\n", g, i)
					}
				})
			}
			wg.Wait()
			if err := w.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			next := make([]int, writers)
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				var g, i int
				if _, err := fmt.Sscanf(line, "writer=%d line=%d padding=................", &g, &i); err != nil {
					t.Fatalf("broken line %q: %v", line, err)
				}
				if i != next[g] {
					t.Fatalf("writer %d: line %d came after line %d", g, i, next[g]-1)
				}
				next[g]++
			}
			for g, n := range next {
				if n != lines {
					t.Errorf("writer %d: %d lines out, want %d", g, n, lines)
				}
			}
		})
	}
}
