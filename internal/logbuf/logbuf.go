// Package logbuf is a log writer that batches lines in memory and writes
// them out from its own goroutine, so that a line per proxied request
// costs a copy under a mutex rather than a write system call, and a slow
// output (a busy disk, a journal applying backpressure) does not hold
// requests up until a whole buffer is waiting.
package logbuf

import (
	"context"
	"io"
	"sync"
	"time"
)

const (
	// flushAt is how much is gathered before the flusher is woken early.
	flushAt = 64 << 10
	// maxPending bounds memory: past it a writer waits for the output
	// rather than lines being dropped.
	maxPending = 1 << 20
)

// Writer buffers what is written to it and writes it out every interval,
// when flushAt bytes are waiting, and on Shutdown. It is safe for
// concurrent use; each Write lands whole and in order.
type Writer struct {
	out      io.Writer
	interval time.Duration
	kick     chan struct{}

	mu      sync.Mutex
	pending []byte

	// flushMu serialises writes to out; spare is the buffer being
	// written, owned by whoever holds flushMu.
	flushMu sync.Mutex
	spare   []byte
}

// New returns a Writer over out.
func New(out io.Writer, interval time.Duration) *Writer {
	return &Writer{out: out, interval: interval, kick: make(chan struct{}, 1)}
}

// Write buffers p. It waits for the output only when maxPending bytes are
// already waiting.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.pending = append(w.pending, p...)
	n := len(w.pending)
	w.mu.Unlock()
	switch {
	case n >= maxPending:
		if err := w.Flush(); err != nil {
			return 0, err
		}
	case n >= flushAt:
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out what is buffered; writes go on meanwhile into the
// other buffer.
func (w *Writer) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	full := w.pending
	w.pending = w.spare[:0]
	w.mu.Unlock()
	var err error
	if len(full) > 0 {
		_, err = w.out.Write(full)
	}
	if cap(full) > maxPending {
		full = nil // a burst went past the bound: do not keep its memory
	}
	w.spare = full[:0]
	return err
}

// Serve writes out the buffer every interval, or sooner when it fills,
// until ctx ends.
func (w *Writer) Serve(ctx context.Context) error {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-w.kick:
		}
		_ = w.Flush()
	}
}

// Shutdown writes out the rest.
func (w *Writer) Shutdown(context.Context) error { return w.Flush() }
