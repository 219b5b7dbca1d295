// Package logbuf is a log writer that batches lines in memory and writes
// them out on a short timer, so that a line per proxied request costs a
// copy rather than a write system call on the request's path.
package logbuf

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
)

// Writer buffers what is written to it and flushes it every interval, when
// the buffer fills, and on Shutdown. It is safe for concurrent use.
type Writer struct {
	mu       sync.Mutex
	buf      *bufio.Writer
	interval time.Duration
}

// New returns a Writer over w.
func New(w io.Writer, interval time.Duration) *Writer {
	return &Writer{buf: bufio.NewWriterSize(w, 64<<10), interval: interval}
}

// Write buffers p.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Flush()
}

// Serve flushes every interval until ctx ends.
func (w *Writer) Serve(ctx context.Context) error {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			_ = w.Flush()
		}
	}
}

// Shutdown writes out the rest.
func (w *Writer) Shutdown(context.Context) error { return w.Flush() }
