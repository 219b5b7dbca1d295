package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"

	"github.com/rosti-paas/rosti/internal/keyedmutex"
)

// cgroupRoot is where the cgroup file systems are mounted: the unified
// hierarchy on cgroup v2 hosts, one directory per controller on v1.
const cgroupRoot = "/sys/fs/cgroup"

// v1Controllers are the cgroup v1 hierarchies a sandbox cgroup spans: the
// ones holding the plan's limits.
var v1Controllers = []string{"memory", "pids", "cpu"}

// Limits are what every process of one app's sandbox shares: MemoryMB (swap
// included where the kernel accounts it), CPUMillis of CPU time per second
// and Pids processes and threads; 0 means no limit.
type Limits struct {
	MemoryMB, CPUMillis, Pids int64
}

// Cgroups keeps one cgroup per app, <parent>/app-<id>, for the app's
// sandboxed tools. It exists while at least one of them runs: the first
// Join creates it with the plan's limits, the last Release kills what is
// left in it and removes it, so a deleted app leaves nothing behind; the
// parent likewise exists only while an app cgroup does.
type Cgroups struct {
	parent string // relative to the hierarchy roots
	v2     bool
	swap   bool // v1: memory+swap can be limited (memsw)

	apps  keyedmutex.Map[int64] // one app's cgroup is made and removed in turn
	mu    sync.Mutex            // guards users and the parent's existence
	users map[int64]int         // app id -> tools running in its cgroup
}

// NewCgroups manages app cgroups under parent, a cgroup name of its own per
// rosti data dir. What an earlier rosti left there (killed before its tools
// ended) is killed and removed.
func NewCgroups(parent string) (*Cgroups, error) {
	parent = strings.Trim(parent, "/")
	if parent == "" || strings.Contains(parent, "..") {
		return nil, fmt.Errorf("sandbox: bad cgroup name %q", parent)
	}
	c := &Cgroups{parent: parent, users: map[int64]int{}}
	switch cgroups.Mode() {
	case cgroups.Unified:
		c.v2 = true
	case cgroups.Legacy, cgroups.Hybrid:
		_, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes"))
		c.swap = err == nil
	default:
		return nil, errors.New("sandbox: no cgroup file system at " + cgroupRoot)
	}
	for _, dir := range c.parentDirs() {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "app-") {
				if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
					return nil, err
				}
			}
		}
		os.Remove(dir)
	}
	return c, nil
}

// makeParent creates the parent cgroup, which exists only while an app
// cgroup does, so that a rosti that stopped leaves nothing behind.
func (c *Cgroups) makeParent() error {
	if c.v2 {
		return enableControllers(cgroupRoot, c.parent)
	}
	for _, dir := range c.parentDirs() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
}

// enableControllers lets the children of parent (under root) have memory,
// pids and cpu limits: on cgroup v2 a controller must be enabled in every
// ancestor's subtree_control.
func enableControllers(root, parent string) error {
	dir := root
	for _, part := range append([]string{""}, strings.Split(parent, "/")...) {
		dir = filepath.Join(dir, part)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
			return fmt.Errorf("sandbox: enable the memory, pids and cpu controllers in %s: %w", dir, err)
		}
	}
	return nil
}

func (c *Cgroups) parentDirs() []string {
	if c.v2 {
		return []string{filepath.Join(cgroupRoot, c.parent)}
	}
	dirs := make([]string, len(v1Controllers))
	for i, ctrl := range v1Controllers {
		dirs[i] = filepath.Join(cgroupRoot, ctrl, c.parent)
	}
	return dirs
}

// Group is one app's sandbox cgroup, held by one tool until Release.
type Group struct {
	c    *Cgroups
	app  int64
	dirs []string // the cgroup's directory in each hierarchy
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
	g := &Group{c: c, app: app}
	name := "app-" + strconv.FormatInt(app, 10)
	for _, dir := range c.parentDirs() {
		g.dirs = append(g.dirs, filepath.Join(dir, name))
	}
	c.mu.Lock()
	if len(c.users) == 0 {
		if err := c.makeParent(); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	c.users[app]++
	first := c.users[app] == 1
	c.mu.Unlock()
	if first {
		if err := c.create(g.dirs, limits); err != nil {
			for _, dir := range g.dirs {
				os.Remove(dir)
			}
			c.release(app)
			return nil, err
		}
	}
	return g, nil
}

// release ends one hold of app's cgroup; the parent goes with the last
// app cgroup (each is removed before its last hold ends).
func (c *Cgroups) release(app int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users[app]--; c.users[app] > 0 {
		return
	}
	delete(c.users, app)
	if len(c.users) == 0 {
		for _, dir := range c.parentDirs() {
			os.Remove(dir)
		}
	}
}

func (c *Cgroups) create(dirs []string, limits Limits) error {
	for _, dir := range dirs {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("sandbox: create cgroup: %w", err)
		}
	}
	memory := strconv.FormatInt(limits.MemoryMB<<20, 10)
	quota := strconv.FormatInt(limits.CPUMillis*100, 10) // of a 100ms period
	pids := strconv.FormatInt(limits.Pids, 10)
	var files [][2]string // file, value, written in order
	if c.v2 {
		dir := dirs[0]
		if limits.MemoryMB > 0 {
			files = append(files, [2]string{dir + "/memory.max", memory})
			// memory.max counts no swap: with none allowed, memory and
			// swap together stay within the plan, where swap is accounted.
			if _, err := os.Stat(dir + "/memory.swap.max"); err == nil {
				files = append(files, [2]string{dir + "/memory.swap.max", "0"})
			}
		}
		if limits.CPUMillis > 0 {
			files = append(files, [2]string{dir + "/cpu.max", quota + " 100000"})
		}
		if limits.Pids > 0 {
			files = append(files, [2]string{dir + "/pids.max", pids})
		}
	} else {
		mem, pid, cpu := dirs[0], dirs[1], dirs[2]
		if limits.MemoryMB > 0 {
			files = append(files, [2]string{mem + "/memory.limit_in_bytes", memory})
			if c.swap {
				files = append(files, [2]string{mem + "/memory.memsw.limit_in_bytes", memory})
			}
		}
		if limits.CPUMillis > 0 {
			files = append(files, [2]string{cpu + "/cpu.cfs_period_us", "100000"}, [2]string{cpu + "/cpu.cfs_quota_us", quota})
		}
		if limits.Pids > 0 {
			files = append(files, [2]string{pid + "/pids.max", pids})
		}
	}
	for _, f := range files {
		if err := os.WriteFile(f[0], []byte(f[1]), 0); err != nil {
			return fmt.Errorf("sandbox: set cgroup limit %s: %w", filepath.Base(f[0]), err)
		}
	}
	return nil
}

// ProcsFiles are the cgroup.procs files a process writes "0" to to join
// the cgroup, in every hierarchy.
func (g *Group) ProcsFiles() []string {
	files := make([]string, len(g.dirs))
	for i, dir := range g.dirs {
		files[i] = filepath.Join(dir, "cgroup.procs")
	}
	return files
}

// OOMKills is how many processes the kernel killed in the cgroup for
// exceeding its memory limit; -1 when the kernel does not say.
func (g *Group) OOMKills() int64 {
	name := "memory.oom_control" // v1: the memory hierarchy's comes first
	if g.c.v2 {
		name = "memory.events"
	}
	f, err := os.Open(filepath.Join(g.dirs[0], name))
	if err != nil {
		return -1
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if value, ok := strings.CutPrefix(lines.Text(), "oom_kill "); ok {
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// Release ends the tool's hold; the last one kills what is left in the
// cgroup and removes it.
func (g *Group) Release() error {
	c := g.c
	unlock := c.apps.Lock(g.app)
	defer unlock()
	c.mu.Lock()
	last := c.users[g.app] == 1
	c.mu.Unlock()
	var errs []error
	if last {
		// Removed before the hold ends, so that the parent can go with it.
		for _, dir := range g.dirs {
			errs = append(errs, removeCgroup(dir))
		}
	}
	c.release(g.app)
	return errors.Join(errs...)
}

// removeGrace bounds the wait for killed processes to leave a cgroup.
const removeGrace = 5 * time.Second

// removeCgroup kills every process in the cgroup dir and removes it; a
// killed process leaves the cgroup only once it has exited, so removal is
// retried for a moment.
func removeCgroup(dir string) error {
	deadline := time.Now().Add(removeGrace)
	for {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		for _, field := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(field); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("sandbox: remove cgroup %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
