package runtime

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// Output of a container beyond outputRate bytes a second, once a burst of
// outputBurst is spent, is read only as fast as that: the app's writes then
// wait, as they would on a slow terminal. Copying is rosti's work, and a
// container printing as fast as it can would otherwise take a core of the
// host from rosti (the proxy included) and fill its log's rotations in
// seconds.
const (
	outputRate  = 1 << 20
	outputBurst = 8 << 20
)

// outputBudget is a token bucket of bytes, shared by a task's two streams.
type outputBudget struct {
	mu     sync.Mutex
	rate   float64 // bytes a second
	burst  float64
	tokens float64
	last   time.Time
}

func newOutputBudget(rate, burst float64) *outputBudget {
	return &outputBudget{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// spend takes n bytes from the budget and says how long to wait before
// reading more, to stay within it.
func (b *outputBudget) spend(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// copyOutput copies r to w until r ends, in writes of whole lines: all that
// was read up to its last newline in one Write, a line longer than buf in
// pieces of len(buf). So the lines of a task's two streams never interleave
// in its log, and a stream of short lines costs one write per read rather
// than one per line. With a budget, it waits as the budget says.
func copyOutput(w io.Writer, r io.Reader, buf []byte, budget *outputBudget) {
	held := 0
	for {
		n, err := r.Read(buf[held:])
		held += n
		end := bytes.LastIndexByte(buf[:held], '\n') + 1
		if end == 0 && held > 0 && (held == len(buf) || err != nil) {
			end = held
		}
		if end > 0 {
			if _, werr := w.Write(buf[:end]); werr != nil {
				_, _ = io.Copy(io.Discard, r)
				return
			}
			held = copy(buf, buf[end:held])
		}
		if err != nil {
			return
		}
		if budget != nil {
			if wait := budget.spend(n); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
}
