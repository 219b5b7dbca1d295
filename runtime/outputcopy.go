package runtime

import (
	"bytes"
	"io"
	"time"

	"golang.org/x/time/rate"
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

// newOutputBudget is a token bucket of bytes a second, shared by a task's
// two streams.
func newOutputBudget(bytesPerSecond, burst int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bytesPerSecond), burst)
}

// spend takes n bytes (at most the burst) from budget and says how long to
// wait before reading more, to stay within it.
func spend(budget *rate.Limiter, n int) time.Duration {
	return budget.ReserveN(time.Now(), n).Delay()
}

// copyOutput copies r to w until r ends, in writes of whole lines: all that
// was read up to its last newline in one Write, a line longer than buf in
// pieces of len(buf). So the lines of a task's two streams never interleave
// in its log, and a stream of short lines costs one write per read rather
// than one per line. With a budget, it waits as the budget says.
func copyOutput(w io.Writer, r io.Reader, buf []byte, budget *rate.Limiter) {
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
			if wait := spend(budget, n); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
}
