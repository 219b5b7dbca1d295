package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rosti-paas/rosti/internal/keyedmutex"
)

// cgroupRoot is where the cgroup file systems are mounted: the unified
// hierarchy on cgroup v2 hosts, one directory per controller on v1.
const cgroupRoot = "/sys/fs/cgroup"

// Limits are what every process of one app's sandbox shares: MemoryMB (swap
// included where the kernel accounts it), CPUMillis of CPU time per second
// and Pids processes and threads; 0 means no limit.
type Limits struct {
	MemoryMB, CPUMillis, Pids int64
}

// cpuPeriod is the CFS period CPU quotas are given in, in µs.
const cpuPeriod = 100_000

// resources are limits in the runtime spec's terms. With swap (where the
// kernel accounts it) memory and swap together are limited to the plan's
// memory, so that swapping never takes a tool past its plan: on cgroup v1
// that is memory.memsw.limit_in_bytes, which cgroup2.ToResources turns into
// a memory.swap.max of 0.
func resources(limits Limits, swap bool) *specs.LinuxResources {
	var r specs.LinuxResources
	if limits.MemoryMB > 0 {
		memory := limits.MemoryMB << 20
		r.Memory = &specs.LinuxMemory{Limit: &memory}
		if swap {
			r.Memory.Swap = &memory
		}
	}
	if limits.CPUMillis > 0 {
		quota, period := limits.CPUMillis*cpuPeriod/1000, uint64(cpuPeriod) // ms per s, µs per period
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if limits.Pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &limits.Pids}
	}
	return &r
}

// Cgroups keeps one cgroup per app, <parent>/app-<id>, for the app's
// sandboxed tools. It exists while at least one of them runs: the first
// Join creates it with the plan's limits, the last Release kills what is
// left in it and removes it, so a deleted app leaves nothing behind; the
// parent likewise exists only while an app cgroup does.
type Cgroups struct {
	root   string // where the cgroup file systems are mounted
	v2     bool   // root is the unified hierarchy, not one per controller
	swap   bool   // v1: memory+swap can be limited (memsw)
	parent string // "/name", relative to the hierarchy roots, as the library names cgroups

	apps keyedmutex.Map[int64] // one app's cgroup is made and removed in turn
	mu   sync.Mutex            // guards held and the parent's existence
	held map[int64]*heldCgroup // by app id
}

// heldCgroup is an app's cgroup and how many of its tools hold it.
type heldCgroup struct {
	cgroup appCgroup
	holds  int
}

// NewCgroups manages app cgroups under parent, a cgroup name of its own per
// rosti data dir. What an earlier rosti left there (killed before its tools
// ended) is killed and removed.
func NewCgroups(parent string) (*Cgroups, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return newCgroups(parent, cgroupRoot, true)
	case cgroups.Legacy, cgroups.Hybrid:
		return newCgroups(parent, cgroupRoot, false)
	default:
		return nil, errors.New("sandbox: no cgroup file system at " + cgroupRoot)
	}
}

// newCgroups is NewCgroups on the cgroup file systems at root: the
// unified hierarchy (v2) or one hierarchy per controller (v1).
func newCgroups(parent, root string, v2 bool) (*Cgroups, error) {
	name := "/" + strings.Trim(parent, "/")
	if name == "/" || path.Clean(name) != name {
		return nil, fmt.Errorf("sandbox: bad cgroup name %q", parent)
	}
	c := &Cgroups{root: root, v2: v2, parent: name, held: map[int64]*heldCgroup{}}
	if !v2 {
		_, err := os.Stat(filepath.Join(root, "memory", "memory.memsw.limit_in_bytes"))
		c.swap = err == nil
	}
	left, err := c.load(c.parent)
	if err != nil {
		return nil, err
	}
	if left != nil {
		if err := removeCgroup(left); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// v1Hierarchies are the cgroup v1 hierarchies a sandbox cgroup spans: the
// ones holding the plan's limits.
func (c *Cgroups) v1Hierarchies() ([]cgroup1.Subsystem, error) {
	return []cgroup1.Subsystem{
		cgroup1.NewMemory(c.root, cgroup1.OptionalSwap()),
		cgroup1.NewPids(c.root),
		cgroup1.NewCpu(c.root),
	}, nil
}

// create makes the cgroup group ("/parent/app-1") with limits.
func (c *Cgroups) create(group string, limits Limits) (appCgroup, error) {
	if !c.v2 {
		cg, err := cgroup1.New(cgroup1.StaticPath(group), resources(limits, c.swap), cgroup1.WithHierarchy(c.v1Hierarchies))
		if err != nil {
			return nil, err
		}
		return v1Cgroup{cg: cg, group: group}, nil
	}
	// NewManager also enables the controllers the limits need in every
	// ancestor's cgroup.subtree_control, as cgroup v2 requires.
	m, err := cgroup2.NewManager(c.root, group, cgroup2.ToResources(resources(limits, false)))
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.root, group)
	// memory.swap.max exists only where the kernel accounts swap, and
	// only once the cgroup does.
	if limits.MemoryMB > 0 {
		if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
			if err := m.Update(cgroup2.ToResources(resources(limits, true))); err != nil {
				return nil, err
			}
		}
	}
	return v2Cgroup{m: m, dir: dir}, nil
}

// load returns the cgroup group; nil if there is none.
func (c *Cgroups) load(group string) (appCgroup, error) {
	if c.v2 {
		dir := filepath.Join(c.root, group)
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		m, err := cgroup2.Load(group, cgroup2.WithMountpoint(c.root))
		if err != nil {
			return nil, fmt.Errorf("sandbox: load cgroup %s: %w", group, err)
		}
		return v2Cgroup{m: m, dir: dir}, nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(group), cgroup1.WithHierarchy(c.v1Hierarchies))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: load cgroup %s: %w", group, err)
	}
	return v1Cgroup{cg: cg, group: group}, nil
}

// Group is one app's sandbox cgroup, held by one tool until Release.
type Group struct {
	c      *Cgroups
	app    int64
	cgroup appCgroup
}

// Join returns the app's cgroup, created with limits when no other tool of
// the app runs. The limits of a cgroup that exists already stay: the tools
// already running share them, and a plan change applies from the next
// cgroup on.
func (c *Cgroups) Join(app int64, limits Limits) (*Group, error) {
	// Creating and removing one app's cgroup take turns; other apps' go on
	// meanwhile, however long a removal waits for a process to exit.
	unlock := c.apps.Lock(app)
	defer unlock()
	c.mu.Lock()
	// Held before the cgroup is made, so that the parent stays meanwhile.
	held := c.held[app]
	if held == nil {
		held = &heldCgroup{}
		c.held[app] = held
	}
	held.holds++
	c.mu.Unlock()
	if held.cgroup == nil {
		group := c.parent + "/app-" + strconv.FormatInt(app, 10)
		cg, err := c.create(group, limits)
		if err != nil {
			// What was made before the error goes, as no process is in it.
			if left, loadErr := c.load(group); loadErr == nil && left != nil {
				left.delete()
			}
			c.release(app)
			return nil, fmt.Errorf("sandbox: create cgroup: %w", err)
		}
		held.cgroup = cg
	}
	return &Group{c: c, app: app, cgroup: held.cgroup}, nil
}

// release ends one hold of app's cgroup; the parent goes with the last
// app cgroup (each is removed before its last hold ends).
func (c *Cgroups) release(app int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[app].holds--; c.held[app].holds > 0 {
		return
	}
	delete(c.held, app)
	if len(c.held) == 0 {
		// An error leaves an empty cgroup, which the next Join uses and
		// the next rosti removes.
		if parent, err := c.load(c.parent); err == nil && parent != nil {
			parent.delete()
		}
	}
}

// ProcsFiles are the cgroup.procs files a process writes "0" to to join
// the cgroup, in every hierarchy.
func (g *Group) ProcsFiles() []string { return g.cgroup.procsFiles() }

// OOMKills is how many processes the kernel killed in the cgroup for
// exceeding its memory limit; -1 when it cannot be read.
func (g *Group) OOMKills() int64 { return g.cgroup.oomKills() }

// Release ends the tool's hold; the last one kills what is left in the
// cgroup and removes it.
func (g *Group) Release() error {
	c := g.c
	unlock := c.apps.Lock(g.app)
	defer unlock()
	c.mu.Lock()
	last := c.held[g.app].holds == 1
	c.mu.Unlock()
	var err error
	if last {
		// Removed before the hold ends, so that the parent can go with it.
		err = removeCgroup(g.cgroup)
	}
	c.release(g.app)
	return err
}

// removeGrace bounds the wait for killed processes to leave a cgroup.
const removeGrace = 5 * time.Second

// removeCgroup kills every process in the cgroup and below and removes it
// all; a killed process leaves the cgroup only once it has exited, so
// removal is retried for a moment.
func removeCgroup(cg appCgroup) error {
	deadline := time.Now().Add(removeGrace)
	for {
		killErr := cg.kill()
		err := cg.delete()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: remove cgroup: %w", errors.Join(err, killErr))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appCgroup is what the sandbox needs of a cgroup, whichever version the
// host runs.
type appCgroup interface {
	// procsFiles are the cgroup's cgroup.procs files, one per hierarchy.
	procsFiles() []string
	// oomKills counts the processes killed for exceeding the memory limit;
	// -1 when it cannot be read.
	oomKills() int64
	// kill sends SIGKILL to every process in the cgroup and below.
	kill() error
	// delete removes the cgroup and the cgroups below it, none of which
	// may hold a process.
	delete() error
}

// v1Cgroup is a cgroup in the Cgroups.v1Hierarchies.
type v1Cgroup struct {
	cg    cgroup1.Cgroup
	group string
}

func (g v1Cgroup) procsFiles() []string {
	var files []string
	for _, s := range g.cg.Subsystems() {
		// Each of the v1Hierarchies knows its directory.
		dir := s.(interface{ Path(string) string }).Path(g.group)
		files = append(files, filepath.Join(dir, "cgroup.procs"))
	}
	return files
}

func (g v1Cgroup) oomKills() int64 {
	stats, err := g.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil || stats.MemoryOomControl == nil {
		return -1
	}
	return int64(stats.MemoryOomControl.OomKill)
}

// kill signals each process itself: the library kills a cgroup's
// processes only on cgroup v2.
func (g v1Cgroup) kill() error {
	for _, s := range g.cg.Subsystems() {
		procs, err := g.cg.Processes(s.Name(), true)
		if errors.Is(err, os.ErrNotExist) {
			continue // this hierarchy's part is removed already
		}
		if err != nil {
			return err
		}
		for _, p := range procs {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
	return nil
}

func (g v1Cgroup) delete() error { return g.cg.Delete() }

// v2Cgroup is a cgroup in the unified hierarchy.
type v2Cgroup struct {
	m   *cgroup2.Manager
	dir string
}

func (g v2Cgroup) procsFiles() []string { return []string{filepath.Join(g.dir, "cgroup.procs")} }

func (g v2Cgroup) oomKills() int64 {
	stats, err := g.m.StatFiltered(cgroup2.StatMemoryEvents)
	if err != nil || stats.MemoryEvents == nil {
		return -1
	}
	return int64(stats.MemoryEvents.OomKill)
}

func (g v2Cgroup) kill() error   { return g.m.Kill() }
func (g v2Cgroup) delete() error { return g.m.Delete() }
