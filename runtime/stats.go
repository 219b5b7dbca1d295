package runtime

import (
	"context"
	"fmt"

	cgroup1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
)

// Stats is the resource use of a running container.
type Stats struct {
	MemoryUsage uint64 // bytes, without inactive page cache
	MemoryLimit uint64 // bytes
	CPUUsageNs  uint64 // total CPU time used
	Pids        uint64
}

// Stats reads the cgroup statistics of the named running container, on
// cgroup v1 and v2 hosts alike.
func (d *Driver) Stats(ctx context.Context, name string) (Stats, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return Stats{}, err
	}
	container, err := d.load(ctx, client, name)
	if err != nil {
		return Stats{}, err
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("runtime: stats of %s: %w", name, err)
	}
	metric, err := task.Metrics(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("runtime: stats of %s: %w", name, err)
	}
	data, err := typeurl.UnmarshalAny(metric.Data)
	if err != nil {
		return Stats{}, fmt.Errorf("runtime: stats of %s: %w", name, err)
	}
	var s Stats
	switch m := data.(type) {
	case *cgroup1.Metrics:
		if mem := m.GetMemory(); mem != nil && mem.GetUsage() != nil {
			s.MemoryUsage = mem.GetUsage().GetUsage()
			if inactive := mem.GetTotalInactiveFile(); inactive < s.MemoryUsage {
				s.MemoryUsage -= inactive
			}
			s.MemoryLimit = mem.GetUsage().GetLimit()
		}
		s.CPUUsageNs = m.GetCPU().GetUsage().GetTotal()
		s.Pids = m.GetPids().GetCurrent()
	case *cgroup2.Metrics:
		if mem := m.GetMemory(); mem != nil {
			s.MemoryUsage = mem.GetUsage()
			if inactive := mem.GetInactiveFile(); inactive < s.MemoryUsage {
				s.MemoryUsage -= inactive
			}
			s.MemoryLimit = mem.GetUsageLimit()
		}
		s.CPUUsageNs = m.GetCPU().GetUsageUsec() * 1000
		s.Pids = m.GetPids().GetCurrent()
	default:
		return Stats{}, fmt.Errorf("runtime: stats of %s: unknown metrics type %T", name, data)
	}
	return s, nil
}
