package runtime

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

// Exit reports that the init process of a container ended.
type Exit struct {
	Name      string
	Code      uint32
	OOMKilled bool
	At        time.Time
}

// Exits delivers task exits of the driver's containers as containerd reports
// them. Exits that happen while rosti is not running are not replayed: List
// after a restart shows them as stopped containers.
func (d *Driver) Exits() <-chan Exit { return d.exits }

// watchEvents follows task exit and OOM events until ctx is done,
// subscribing again when containerd goes away and comes back.
func (d *Driver) watchEvents(ctx context.Context) {
	filters := []string{
		fmt.Sprintf(`namespace==%q,topic=="/tasks/exit"`, d.cfg.Namespace),
		fmt.Sprintf(`namespace==%q,topic=="/tasks/oom"`, d.cfg.Namespace),
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		subCtx, cancel := context.WithCancel(ctx)
		envelopes, errs := d.client.Subscribe(subCtx, filters...)
	receive:
		for {
			select {
			case env := <-envelopes:
				backoff = 100 * time.Millisecond
				ev, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					d.log.Warn("undecodable event", "topic", env.Topic, "err", err)
					continue
				}
				d.handleEvent(ctx, ev)
			case err := <-errs:
				if ctx.Err() == nil {
					d.log.Warn("event stream ended, subscribing again", "err", err, "in", backoff)
				}
				break receive
			}
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (d *Driver) handleEvent(ctx context.Context, ev any) {
	switch e := ev.(type) {
	case *apievents.TaskOOM:
		d.setOOM(e.ContainerID, true)
		if c, err := d.client.LoadContainer(ctx, e.ContainerID); err == nil {
			_, _ = c.SetLabels(ctx, map[string]string{labelOOM: "true"})
		}
		d.log.Info("container out of memory", "name", e.ContainerID)
	case *apievents.TaskExit:
		if e.ID != e.ContainerID {
			return // an exec'd process, not the container's init
		}
		c, err := d.client.LoadContainer(ctx, e.ContainerID)
		if err != nil {
			return
		}
		labels, err := c.Labels(ctx)
		if err != nil || labels[LabelManaged] != "true" {
			return
		}
		exit := Exit{Name: e.ContainerID, Code: e.ExitStatus, At: e.ExitedAt.AsTime(), OOMKilled: endedByOOM(d.isOOM(e.ContainerID), e.ExitStatus)}
		if exit.Code == 128+9 && !exit.OOMKilled {
			// The shim reports an OOM kill on its own, and its event can
			// trail the exit it caused: give it a moment, off this loop,
			// which is the one that will record it.
			go func() {
				for deadline := time.Now().Add(oomEventLag); !d.isOOM(exit.Name) && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
				}
				exit.OOMKilled = d.isOOM(exit.Name)
				d.reportExit(ctx, c, exit)
			}()
			return
		}
		d.reportExit(ctx, c, exit)
	}
}

// oomEventLag bounds how long a SIGKILLed container's exit waits for the
// OOM event that may explain it.
const oomEventLag = time.Second

func (d *Driver) reportExit(ctx context.Context, c containerd.Container, exit Exit) {
	_, _ = c.SetLabels(ctx, map[string]string{
		labelExitCode: strconv.FormatUint(uint64(exit.Code), 10),
		labelExitedAt: exit.At.UTC().Format(time.RFC3339Nano),
	})
	d.log.Info("container exited", "name", exit.Name, "code", exit.Code, "oom", exit.OOMKilled)
	select {
	case d.exits <- exit:
	case <-ctx.Done():
	}
}
