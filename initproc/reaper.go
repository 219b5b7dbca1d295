package initproc

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaper is the one place init waits for children. As PID 1 (and a child
// subreaper) init must wait for every process that ends up its child, so it
// waits for any pid; the app command, supervisor programs and cron jobs it
// started itself learn their exit status from it instead of waiting on their
// own, which would race with it.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
}

func newReaper() *reaper { return &reaper{waiting: map[int]chan unix.WaitStatus{}} }

// start starts a process in its own process group and returns its pid and
// a channel that receives its wait status once it has exited. The process
// is registered before the reaper can wait for it, so no exit is missed.
func (r *reaper) start(path string, argv []string, attr *os.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	if attr.Sys == nil {
		attr.Sys = &syscall.SysProcAttr{}
	}
	attr.Sys.Setpgid = true
	r.mu.Lock()
	defer r.mu.Unlock()
	proc, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	exited := make(chan unix.WaitStatus, 1)
	r.waiting[proc.Pid] = exited
	pid := proc.Pid
	_ = proc.Release()
	return pid, exited, nil
}

// reap waits for every child that has exited, hands each registered one its
// status, and reports whether init has no children left at all.
func (r *reaper) reap() (none bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) {
			return true
		}
		if err != nil || pid <= 0 {
			return false
		}
		if ch, ok := r.waiting[pid]; ok {
			ch <- ws
			delete(r.waiting, pid)
		}
	}
}

// run reaps on every SIGCHLD until stop is closed.
func (r *reaper) run(stop <-chan struct{}) {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	r.reap() // children that exited before the subscription
	for {
		select {
		case <-sigs:
			r.reap()
		case <-stop:
			return
		}
	}
}

// waitNone waits until init has no children left, or until the deadline.
func (r *reaper) waitNone(grace time.Duration) {
	deadline := time.Now().Add(grace)
	for !r.reap() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// exitCode is the shell's rendering of a wait status: the exit status, or
// 128+signal for a process killed by a signal.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
