package web

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sseKeepalive keeps idle log streams open through proxies.
const sseKeepalive = 20 * time.Second

// logStream follows an app's log as Server-Sent Events: the last lines
// first, then each new line as the app writes it.
func (u *UI) logStream(w http.ResponseWriter, r *http.Request, v *visit) error {
	_, ref, err := u.app(r, v)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := &sseWriter{w: w, flush: rc.Flush, fail: cancel}
	go func() {
		tick := time.NewTicker(sseKeepalive)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				out.comment()
			}
		}
	}()
	if err := u.p.Logs(ctx, v.user, ref, logTailLines, true, out); err != nil && ctx.Err() == nil {
		out.event("error", publicError(err))
	}
	return nil
}

// sseWriter turns the log's lines into "data:" events, flushed at once.
// The log's followers and the keepalive write from their own goroutines.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	flush   func() error
	fail    func()
	partial []byte
}

func (s *sseWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, b...)
	var buf bytes.Buffer
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		buf.WriteString("data: ")
		buf.WriteString(strings.TrimRight(string(s.partial[:i]), "\r"))
		buf.WriteString("\n\n")
		s.partial = s.partial[i+1:]
	}
	if err := s.send(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *sseWriter) send(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := s.w.Write(b); err != nil {
		s.fail()
		return err
	}
	if err := s.flush(); err != nil {
		s.fail()
		return err
	}
	return nil
}

func (s *sseWriter) comment() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.send([]byte(": keepalive\n\n"))
}

func (s *sseWriter) event(name, data string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.send([]byte("event: " + name + "\ndata: " + strings.ReplaceAll(data, "\n", " ") + "\n\n"))
}

func contextTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
