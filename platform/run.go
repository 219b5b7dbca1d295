package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Run limits: a one-off command is for a migration or a quick look, not a
// long job.
const (
	maxRunOutput = 1 << 20
	runTimeout   = 10 * time.Minute
	runPoll      = 100 * time.Millisecond
	// maxRuns bounds the one-off containers of one app at a time, so that
	// a client looping on run cannot fill the machine.
	maxRuns = 3
	// labelOneOff marks the containers of Run, which the reconciler leaves
	// alone: they are neither processes to keep running nor stale ones.
	labelOneOff = "app.oneoff"
)

// Run runs a one-off shell command in a container of its own made from
// the app's current release (its image, config and plan, /srv mounted,
// the app's uid and isolation group, cwd /srv/app), waits for it and
// returns its exit code and output (stdout and stderr together, at most
// 1 MiB). It works while the app is stopped, too.
func (p *Platform) Run(ctx context.Context, actor store.User, ref AppRef, command string) (int, string, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return 0, "", err
	}
	if strings.TrimSpace(command) == "" {
		return 0, "", FieldError("command", "This field may not be blank.")
	}
	if err := p.needRuntime(); err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	want, err := p.desiredFor(a)
	if err != nil {
		return 0, "", err
	}
	if err := p.ensureImage(ctx, a); err != nil {
		return 0, "", err
	}
	if p.pulls != nil && p.pulls.describe(a.Image) != "" {
		return 0, "", fmt.Errorf("the app's image is not here yet (%s); run it again once it is: %w", p.pulls.describe(a.Image), store.ErrInvalid)
	}
	volume, err := p.ensureVolume(a)
	if err != nil {
		return 0, "", fmt.Errorf("volume of %s: %w", a.Name, err)
	}
	running, err := p.containers.List(ctx, map[string]string{rtm.LabelAppID: strconv.FormatInt(a.ID, 10), labelOneOff: "1"})
	if err != nil {
		return 0, "", err
	}
	if len(running) >= maxRuns {
		return 0, "", fmt.Errorf("app %s already runs %d one-off commands; wait for one to finish: %w", a.Name, len(running), store.ErrConflict)
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	spec := want.spec(a.Name+"-run-"+hex.EncodeToString(suffix[:]), "run", volume)
	spec.Labels[labelOneOff] = "1"
	// The Procfile has no "run" line, so init runs this command.
	spec.Command = []string{"/bin/sh", "-c", command}
	p.reconciler.ignoreExits(spec.Name)
	defer p.reconciler.forgetLater(spec.Name)
	inst, err := p.containers.Run(ctx, spec)
	if err != nil {
		return 0, "", fmt.Errorf("start the one-off container: %w", err)
	}
	p.log.Info("one-off container started", "app", a.Name, "container", inst.Name, "user", actor.Username)
	defer p.removeOneOff(inst.Name)
	code, err := p.waitExit(ctx, a.ID, inst.Name)
	if err != nil {
		return 0, "", err
	}
	output, err := p.settledOutput(ctx, inst.Name)
	if err != nil {
		return 0, "", err
	}
	p.log.Info("one-off container exited", "app", a.Name, "container", inst.Name, "exit_code", code)
	if code == 127 && strings.HasPrefix(output, "rosti init:") && strings.Contains(output, "/bin/sh") {
		return code, output, fmt.Errorf("the image of app %s (%s) has no /bin/sh, so it cannot run commands; pick a runtime with a shell: %w", a.Name, a.Image, ErrProgramNotFound)
	}
	return code, output, nil
}

// settledOutput reads a stopped container's output once the runtime, which
// copies it from the task's FIFOs on after the exit, has written all of it:
// when two reads a poll apart agree (for at most a few seconds).
func (p *Platform) settledOutput(ctx context.Context, name string) (string, error) {
	read := func() (string, error) {
		out := &cappedBuffer{max: maxRunOutput}
		if err := p.containers.Logs(ctx, name, 0, false, out); err != nil && !errors.Is(err, rtm.ErrNotFound) {
			return "", fmt.Errorf("read the output: %w", err)
		}
		return out.String(), nil
	}
	last, err := read()
	for deadline := time.Now().Add(3 * time.Second); err == nil && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return last, nil
		case <-time.After(2 * runPoll):
		}
		var now string
		if now, err = read(); err == nil && now == last {
			return now, nil
		}
		last = now
	}
	return last, err
}

// waitExit polls until the container stopped and returns its exit code.
func (p *Platform) waitExit(ctx context.Context, appID int64, name string) (int, error) {
	tick := time.NewTicker(runPoll)
	defer tick.Stop()
	for {
		cs, err := p.containers.List(ctx, map[string]string{rtm.LabelAppID: strconv.FormatInt(appID, 10), labelOneOff: "1"})
		if err != nil && ctx.Err() == nil {
			return 0, err
		}
		for _, c := range cs {
			if c.Name == name && c.Status == rtm.StatusStopped {
				if c.OOMKilled {
					return int(c.ExitCode), fmt.Errorf("the command ran out of the plan's memory and was killed: %w", store.ErrInvalid)
				}
				return int(c.ExitCode), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the command did not finish within %s and was stopped: %w", runTimeout, store.ErrInvalid)
		case <-tick.C:
		}
	}
}

// removeOneOff removes a one-off container and its logs, whatever ctx the
// request had left.
func (p *Platform) removeOneOff(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace+30*time.Second)
	defer cancel()
	if err := p.containers.Stop(ctx, name, stopGrace); err != nil {
		p.log.Debug("stop one-off container", "container", name, "err", err)
	}
	if err := p.containers.Remove(ctx, name); err != nil {
		p.log.Warn("remove one-off container", "container", name, "err", err)
		return
	}
	if err := p.containers.RemoveLogs(name); err != nil {
		p.log.Warn("remove one-off container logs", "container", name, "err", err)
	}
}

// isOneOff tells a container of Run.
func isOneOff(c rtm.Instance) bool { return c.Labels[labelOneOff] != "" }

// oneOffGrace is how long past its end (or past runTimeout while it
// runs) a one-off container may be before the reconciler takes it for one
// that Run lost when rosti restarted.
const oneOffGrace = time.Minute

// leftoverOneOffs are the one-off containers no Run waits for any more.
func leftoverOneOffs(cs []rtm.Instance, now time.Time) []rtm.Instance {
	var out []rtm.Instance
	for _, c := range cs {
		switch {
		case !isOneOff(c):
		case c.Status == rtm.StatusRunning && !c.StartedAt.IsZero() && now.Sub(c.StartedAt) > runTimeout+oneOffGrace:
			out = append(out, c)
		case c.Status != rtm.StatusRunning && !c.ExitedAt.IsZero() && now.Sub(c.ExitedAt) > oneOffGrace:
			out = append(out, c)
		}
	}
	return out
}

// ignoreExits keeps the exit of a one-off container from being taken for
// a crash to restart.
func (r *reconciler) ignoreExits(name string) {
	r.mu.Lock()
	r.stopping[name] = true
	r.mu.Unlock()
}

// forgetLater drops the mark of ignoreExits once a late exit report can
// no longer come.
func (r *reconciler) forgetLater(name string) {
	time.AfterFunc(time.Minute, func() {
		r.mu.Lock()
		delete(r.stopping, name)
		r.mu.Unlock()
	})
}
