package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/rosti-paas/rosti/initproc"
)

// maxLogLine is the longest line kept whole in a container's log, and the
// read buffer of each of its streams, held in rosti while the task runs.
const maxLogLine = 8 << 10

// fifoBuffer is the kernel buffer asked for each output FIFO: how much an
// app can print while rosti is not reading (a restart of rosti) before its
// writes block. The pages are allocated only as they fill.
const fifoBuffer = 1 << 20

// logPump copies a task's stdout and stderr FIFOs into its container's log.
type logPump struct {
	readers []*os.File
	// holders are write ends of the FIFOs, kept until the shim has opened
	// its own, so that the readers do not see an end of file before it.
	holdersMu sync.Mutex
	holders   []*os.File
	done      chan struct{} // closed once both streams ended and the log is closed
}

func (d *Driver) stdioRoot() string { return filepath.Join(d.managedDir(), "stdio") }

// newTaskOutput makes fresh FIFOs for the next task of the named container
// and starts copying them into its log. The caller passes the returned
// creator to NewTask and then calls p.shimAttached, or p.stop if the task
// could not be made.
func (d *Driver) newTaskOutput(name string) (*logPump, cio.Creator, error) {
	dir := filepath.Join(d.stdioRoot(), name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, nil, fmt.Errorf("runtime: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("runtime: %w", err)
	}
	cfg := cio.Config{Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr")}
	for _, path := range []string{cfg.Stdout, cfg.Stderr} {
		if err := unix.Mkfifo(path, 0o600); err != nil {
			return nil, nil, fmt.Errorf("runtime: output fifo: %w", err)
		}
	}
	p, err := d.startPump(name, cfg, true)
	if err != nil {
		return nil, nil, err
	}
	return p, func(string) (cio.IO, error) { return taskIO{cfg}, nil }, nil
}

// attachOutput starts copying the output of a task that runs without rosti
// reading it (rosti restarted), unless it is copied already or the task
// was not started with FIFOs under stdioRoot (an older rosti's log driver
// process writes its log itself).
func (d *Driver) attachOutput(ctx context.Context, container containerd.Container) error {
	name := container.ID()
	d.mu.Lock()
	_, pumping := d.pumps[name]
	d.mu.Unlock()
	if pumping {
		return nil
	}
	_, err := container.Task(ctx, func(fifos *cio.FIFOSet) (cio.IO, error) {
		if !strings.HasPrefix(fifos.Stdout, d.stdioRoot()+"/") || !strings.HasPrefix(fifos.Stderr, d.stdioRoot()+"/") {
			return taskIO{fifos.Config}, nil
		}
		if _, err := d.startPump(name, fifos.Config, false); err != nil {
			return nil, err
		}
		return taskIO{fifos.Config}, nil
	})
	return err
}

// attachAllOutput attaches to the output of every container that has a task.
func (d *Driver) attachAllOutput(ctx context.Context) {
	list, err := d.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelManaged, "true"))
	if err != nil {
		d.log.Error("list containers to read their output", "err", err)
		return
	}
	for _, c := range list {
		if err := d.attachOutput(ctx, c); err != nil && !errdefs.IsNotFound(err) {
			d.log.Error("read the output of a container", "name", c.ID(), "err", err)
		}
	}
}

func (d *Driver) startPump(name string, fifos cio.Config, hold bool) (*logPump, error) {
	logDir := d.LogDir(name)
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	p := &logPump{done: make(chan struct{})}
	fail := func(err error) (*logPump, error) {
		p.closeHolders()
		for _, r := range p.readers {
			r.Close()
		}
		return nil, fmt.Errorf("runtime: output of %s: %w", name, err)
	}
	for _, path := range []string{fifos.Stdout, fifos.Stderr} {
		// Non-blocking: opening to read must not wait for the shim, and
		// reads then park in the poller instead of holding a thread.
		r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fail(err)
		}
		p.readers = append(p.readers, r)
		if raw, err := r.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, fifoBuffer) })
		}
		if hold {
			w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return fail(err)
			}
			p.holders = append(p.holders, w)
		}
	}
	log, err := initproc.OpenRotatingFile(logDir, d.cfg.LogMaxBytes, d.cfg.LogKeep)
	if err != nil {
		return fail(err)
	}
	d.mu.Lock()
	d.pumps[name] = p
	d.mu.Unlock()
	var wg sync.WaitGroup
	budget := newOutputBudget(outputRate, outputBurst)
	for _, r := range p.readers {
		wg.Go(func() {
			copyOutput(log, r, make([]byte, maxLogLine), budget)
			r.Close()
		})
	}
	go func() {
		wg.Wait()
		if err := log.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			d.log.Warn("close a container log", "name", name, "err", err)
		}
		d.mu.Lock()
		if d.pumps[name] == p {
			delete(d.pumps, name)
		}
		d.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// shimAttached lets the readers see the end of the output once the shim,
// which has its write ends open now, closes them as the task ends.
func (p *logPump) shimAttached() { p.closeHolders() }

func (p *logPump) closeHolders() {
	p.holdersMu.Lock()
	defer p.holdersMu.Unlock()
	for _, w := range p.holders {
		w.Close()
	}
	p.holders = nil
}

// stop ends the copying without waiting for the end of the output: what
// the task prints meanwhile waits in the FIFOs, which the shim keeps open,
// for the next reader.
func (p *logPump) stop() {
	p.closeHolders()
	for _, r := range p.readers {
		r.Close()
	}
	<-p.done
}

// outputDrain bounds how long the copying of a deleted task's output may
// take to reach its end; the shim itself gives up draining after 2s.
const outputDrain = 3 * time.Second

// finishOutput waits until the output of the named container's deleted
// task is in its log, so that the next task's copying starts after it.
func (d *Driver) finishOutput(name string) {
	d.mu.Lock()
	p := d.pumps[name]
	d.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(outputDrain):
		p.stop()
	}
}

// stopPumps stops copying the output of all tasks (rosti shuts down).
func (d *Driver) stopPumps() {
	d.mu.Lock()
	pumps := make([]*logPump, 0, len(d.pumps))
	for _, p := range d.pumps {
		pumps = append(pumps, p)
	}
	d.mu.Unlock()
	for _, p := range pumps {
		p.stop()
	}
}

// removeTaskOutput deletes the FIFOs of the named container's last task.
func (d *Driver) removeTaskOutput(name string) error {
	if err := os.RemoveAll(filepath.Join(d.stdioRoot(), name)); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}

// taskIO tells containerd where a task's output goes; the copying is the
// driver's, whose pumps outlive the task handles containerd's client keeps.
type taskIO struct{ cfg cio.Config }

func (t taskIO) Config() cio.Config { return t.cfg }
func (taskIO) Cancel()              {}
func (taskIO) Wait()                {}
func (taskIO) Close() error         { return nil }
