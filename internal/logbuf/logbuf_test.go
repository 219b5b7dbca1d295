package logbuf

import (
	"bytes"
	"context"
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
		{"on shutdown", func(w *Writer, cancel context.CancelFunc) { cancel(); _ = w.Shutdown(context.Background()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out lockedBuffer
			w := New(&out, 10*time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = w.Serve(ctx) }()
			if _, err := w.Write([]byte("one line\n")); err != nil {
				t.Fatal(err)
			}
			tc.flush(w, cancel)
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
