package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	cgroup1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrProgramNotFound says the program to run is not in the container's
// image (an image without a shell, for one).
var ErrProgramNotFound = errors.New("no such program in the container's image")

// ErrOutOfMemory says the kernel killed a process of the container's cgroup
// for exceeding its memory limit while an exec ran: most likely the exec'd
// command itself, the biggest process there.
var ErrOutOfMemory = errors.New("killed for using more than the container's memory limit")

// WindowSize is a terminal size.
type WindowSize struct{ Width, Height uint32 }

// ExecSpec is a process to run inside a running container.
type ExecSpec struct {
	Args     []string
	Env      []string // KEY=VALUE added to the container's environment
	UID, GID uint32   // never 0
	Cwd      string   // default /srv
	TTY      bool     // allocate a terminal; Stdout gets the combined output
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	Resize   <-chan WindowSize
}

// Exec runs spec in the named running container, with the container's
// limits, namespaces and confinement, and returns its exit code. Cancelling
// ctx kills the process.
func (d *Driver) Exec(ctx context.Context, name string, spec ExecSpec) (int, error) {
	if len(spec.Args) == 0 {
		return -1, errors.New("runtime: exec: no command")
	}
	if spec.UID == 0 || spec.GID == 0 {
		return -1, fmt.Errorf("runtime: exec in %s: refusing to run as uid/gid 0", name)
	}
	client, err := d.conn(ctx)
	if err != nil {
		return -1, err
	}
	container, err := d.load(ctx, client, name)
	if err != nil {
		return -1, err
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, fmt.Errorf("runtime: exec in %s: not running", name)
	} else if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s: %w", name, err)
	}
	cspec, err := container.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s: %w", name, err)
	}
	proc := *cspec.Process
	proc.Args = spec.Args
	proc.Env = append(append([]string{}, cspec.Process.Env...), spec.Env...)
	proc.User = specs.User{UID: spec.UID, GID: spec.GID}
	proc.Cwd = spec.Cwd
	if proc.Cwd == "" {
		proc.Cwd = VolumePath
	}
	proc.Terminal = spec.TTY

	fifoDir := filepath.Join(d.cfg.DataDir, "containerd", "fifo")
	if err := os.MkdirAll(fifoDir, 0o700); err != nil {
		return -1, fmt.Errorf("runtime: exec: %w", err)
	}
	execID := "exec-" + randomID()
	stdout, stderr := orDiscard(spec.Stdout), orDiscard(spec.Stderr)
	var stdin *stdinCloser
	streams := cio.WithStreams(nil, stdout, stderr)
	if spec.Stdin != nil {
		stdin = &stdinCloser{r: spec.Stdin, started: make(chan func(), 1)}
		streams = cio.WithStreams(stdin, stdout, stderr)
	}
	opts := []cio.Opt{cio.WithFIFODir(fifoDir), streams}
	if spec.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	process, err := task.Exec(ctx, execID, &proc, cio.NewCreator(opts...))
	if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s: %w", name, err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() { _, _ = process.Delete(cleanupCtx, containerd.WithProcessKill) }()
	if stdin != nil {
		stdin.started <- func() { _ = process.CloseIO(cleanupCtx, containerd.WithStdinCloser) }
	}

	exited, err := process.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s: %w", name, err)
	}
	oomKills, oomKnown := taskOOMKills(ctx, task)
	if err := process.Start(ctx); err != nil {
		// runc's words for a program the image does not have.
		if msg := err.Error(); strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "executable file not found") {
			return -1, fmt.Errorf("runtime: exec in %s: %s: %w", name, spec.Args[0], ErrProgramNotFound)
		}
		return -1, fmt.Errorf("runtime: exec in %s: %w", name, err)
	}
	for {
		select {
		case size, ok := <-spec.Resize:
			if !ok {
				spec.Resize = nil
				continue
			}
			_ = process.Resize(ctx, size.Width, size.Height)
		case st := <-exited:
			// Let the copy of the last output finish before returning.
			if pio := process.IO(); pio != nil {
				pio.Wait()
			}
			code, _, err := st.Result()
			if err != nil {
				return -1, fmt.Errorf("runtime: exec in %s: %w", name, err)
			}
			if after, ok := taskOOMKills(cleanupCtx, task); code != 0 && oomKnown && ok && after > oomKills {
				return int(code), fmt.Errorf("runtime: exec in %s: %w", name, ErrOutOfMemory)
			}
			return int(code), nil
		case <-ctx.Done():
			_ = process.Kill(cleanupCtx, 9)
			return -1, ctx.Err()
		}
	}
}

// stdinCloser closes the process's stdin once the caller's reader is done,
// so programs reading to EOF finish.
type stdinCloser struct {
	r       io.Reader
	started chan func() // delivers the closer once the process exists
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		go func() { (<-s.started)() }()
	}
	return n, err
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// taskOOMKills is how many processes the kernel has OOM-killed in the
// task's cgroup; false when the metrics do not say.
func taskOOMKills(ctx context.Context, task containerd.Task) (uint64, bool) {
	metric, err := task.Metrics(ctx)
	if err != nil {
		return 0, false
	}
	data, err := typeurl.UnmarshalAny(metric.Data)
	if err != nil {
		return 0, false
	}
	switch m := data.(type) {
	case *cgroup1.Metrics:
		if oom := m.GetMemoryOomControl(); oom != nil {
			return oom.GetOomKill(), true
		}
	case *cgroup2.Metrics:
		if events := m.GetMemoryEvents(); events != nil {
			return events.GetOomKill(), true
		}
	}
	return 0, false
}
