package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rosti-paas/rosti/initproc"
)

// logPollInterval is how often a followed log is checked for new output.
const logPollInterval = 200 * time.Millisecond

// Logs writes the last lines of the named container's output (all kept
// output when lines <= 0) to w, oldest first, then with follow keeps writing
// new output until ctx is done, across rotations.
func (d *Driver) Logs(ctx context.Context, name string, lines int, follow bool, w io.Writer) error {
	if !validName(name) {
		return fmt.Errorf("runtime: invalid container name %q", name)
	}
	dir := d.LogDir(name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: no logs for %s", ErrNotFound, name)
	}
	live := filepath.Join(dir, initproc.LogFileName)
	offset, err := writeTail(w, live, d.cfg.LogKeep, lines)
	if err != nil {
		return err
	}
	if !follow {
		return nil
	}
	return followFile(ctx, live, offset, w)
}

// writeTail writes the last n lines across live and its rotated files and
// returns the size of live it covered.
func writeTail(w io.Writer, live string, keep, n int) (int64, error) {
	var chunks [][]byte // newest first
	var covered int64
	count := 0
	for i := 0; i <= keep; i++ {
		path := live
		if i > 0 {
			path = fmt.Sprintf("%s.%d", live, i)
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			if i == 0 {
				continue
			}
			break
		} else if err != nil {
			return 0, fmt.Errorf("runtime: logs: %w", err)
		}
		if i == 0 {
			covered = int64(len(data))
		}
		if n > 0 {
			// Keep only as many trailing lines as still needed.
			lines := bytes.Count(data, []byte("\n"))
			if len(data) > 0 && data[len(data)-1] != '\n' {
				lines++
			}
			if count+lines > n {
				data = lastLines(data, n-count)
				lines = n - count
			}
			count += lines
		}
		chunks = append(chunks, data)
		if n > 0 && count >= n {
			break
		}
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		if _, err := w.Write(chunks[i]); err != nil {
			return 0, err
		}
	}
	return covered, nil
}

func lastLines(data []byte, n int) []byte {
	if n <= 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n--
			if n == 0 {
				return data[i+1:]
			}
		}
	}
	return data
}

// followFile copies what is appended to path after offset, reopening the
// file when it is rotated (replaced by a new, shorter file).
func followFile(ctx context.Context, path string, offset int64, w io.Writer) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	tick := time.NewTicker(logPollInterval)
	defer tick.Stop()
	for {
		if f == nil {
			if opened, err := os.Open(path); err == nil {
				f = opened
				if _, err := f.Seek(offset, io.SeekStart); err != nil {
					return fmt.Errorf("runtime: logs: %w", err)
				}
			}
		}
		if f != nil {
			if _, err := io.Copy(w, f); err != nil {
				return err
			}
			// Rotated: the path now names another file. Drain the old one
			// (done above) and start the new one from its beginning.
			cur, errCur := f.Stat()
			now, errNow := os.Stat(path)
			if errCur == nil && (errNow != nil || !os.SameFile(cur, now)) {
				if _, err := io.Copy(w, f); err != nil {
					return err
				}
				f.Close()
				f, offset = nil, 0
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
