package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCgroupsLiveWhileAToolRuns: an app's cgroup gets the plan's limits,
// is shared by its concurrent tools, goes with the last one, and what a
// killed rosti left is removed by the next.
func TestCgroupsLiveWhileAToolRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	parent := fmt.Sprintf("rosti-sandbox-test-%d", os.Getpid())
	c, err := NewCgroups(parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, dir := range parentDirs(c) {
			os.Remove(dir)
		}
	})
	limits := Limits{MemoryMB: 64, CPUMillis: 250, Pids: 32}
	first, err := c.Join(7, limits)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Join(7, Limits{MemoryMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	firstDirs := groupDirs(first)
	if fmt.Sprint(firstDirs) != fmt.Sprint(groupDirs(second)) {
		t.Fatalf("two tools of one app in different cgroups: %v and %v", firstDirs, groupDirs(second))
	}
	for _, tc := range []struct {
		name    string
		v1, v2  string
		want    string
		control string
	}{
		{"memory", "memory.limit_in_bytes", "memory.max", fmt.Sprint(64 << 20), "memory"},
		{"pids", "pids.max", "pids.max", "32", "pids"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "25000", "cpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.v2
			dir := firstDirs[0]
			if !c.v2 {
				file = tc.v1
				for _, d := range firstDirs {
					if strings.Contains(d, "/"+tc.control+"/") {
						dir = d
					}
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Fields(string(b))[0]; got != tc.want {
				t.Errorf("%s: %s, want %s (the first tool's limits)", file, got, tc.want)
			}
		})
	}
	if !c.v2 && c.swap {
		// The memory hierarchy comes first.
		b, err := os.ReadFile(filepath.Join(firstDirs[0], "memory.memsw.limit_in_bytes"))
		if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(64<<20) {
			t.Errorf("memory.memsw.limit_in_bytes: %q (%v), want %d: no swap on top of the plan's memory", b, err, 64<<20)
		}
	}
	if n := first.OOMKills(); n != 0 {
		t.Errorf("OOM kills of a new cgroup: %d, want 0", n)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(firstDirs[0]); err != nil {
		t.Fatalf("the cgroup went while a tool still holds it: %v", err)
	}
	if err := second.Release(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range append(firstDirs, parentDirs(c)...) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s is left after the last tool: %v", dir, err)
		}
	}

	// A plan change applies from the next cgroup on.
	again, err := c.Join(7, Limits{MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	memoryFile := "memory.limit_in_bytes" // the memory hierarchy comes first
	if c.v2 {
		memoryFile = "memory.max"
	}
	if b, err := os.ReadFile(filepath.Join(groupDirs(again)[0], memoryFile)); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(128<<20) {
		t.Errorf("%s of the next cgroup: %q (%v), want %d (the new plan's)", memoryFile, b, err, 128<<20)
	}
	if err := again.Release(); err != nil {
		t.Fatal(err)
	}

	// A cgroup left by a rosti killed mid-session goes on the next start,
	// and what still ran in it is killed.
	left, err := c.Join(8, limits)
	if err != nil {
		t.Fatal(err)
	}
	straggler := startIn(t, left)
	if _, err := NewCgroups(parent); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, straggler)
	for _, dir := range append(groupDirs(left), parentDirs(c)...) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s left by an earlier rosti is still there: %v", dir, err)
		}
	}
}

// TestCgroupsOfManyAppsAtOnce: tools of several apps come and go at the
// same time; each gets its app's cgroup, and nothing is left at the end.
func TestCgroupsOfManyAppsAtOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	c, err := NewCgroups(fmt.Sprintf("rosti-sandbox-test-many-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, dir := range parentDirs(c) {
			os.Remove(dir)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			g, err := c.Join(int64(i%5), Limits{MemoryMB: 32})
			if err != nil {
				errs <- err
				return
			}
			if _, err := os.Stat(groupDirs(g)[0]); err != nil {
				errs <- fmt.Errorf("app %d's cgroup is missing while held: %w", i%5, err)
			}
			errs <- g.Release()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, dir := range parentDirs(c) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is left after every tool ended: %v", dir, err)
		}
	}
}

// TestCgroupsOnTheUnifiedHierarchy: the cgroup v2 branch, run on a
// hybrid host's unified hierarchy, which holds no controllers and so no
// limits: an app's cgroup is shared by its tools, the last one kills
// what is left and removes it and the parent, and a cgroup left by an
// earlier rosti goes with the next.
func TestCgroupsOnTheUnifiedHierarchy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	var root string
	switch cgroups.Mode() {
	case cgroups.Unified:
		root = cgroupRoot
	case cgroups.Hybrid:
		root = filepath.Join(cgroupRoot, "unified")
	default:
		t.Skip("no unified cgroup hierarchy")
	}
	parent := fmt.Sprintf("rosti-sandbox-test-v2-%d", os.Getpid())
	c, err := newCgroups(parent, root, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(root, parent)) })
	first, err := c.Join(7, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Join(7, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, parent, "app-7", "cgroup.procs")}
	for _, g := range []*Group{first, second} {
		if got := g.ProcsFiles(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("procs files %v, want %v", got, want)
		}
	}
	straggler := startIn(t, first)
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := straggler.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("a process of the app's cgroup killed while a tool still holds it: %v", err)
	}
	if err := second.Release(); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, straggler)
	for _, dir := range []string{filepath.Dir(want[0]), filepath.Join(root, parent)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s is left after the last tool: %v", dir, err)
		}
	}

	left, err := c.Join(8, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	straggler = startIn(t, left)
	if _, err := newCgroups(parent, root, true); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, straggler)
	if _, err := os.Stat(filepath.Join(root, parent)); !os.IsNotExist(err) {
		t.Fatalf("the cgroups left by an earlier rosti are still there: %v", err)
	}
}

// startIn starts a process that would run for long and puts it in g.
func startIn(t *testing.T, g *Group) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	for _, procs := range g.ProcsFiles() {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	return cmd
}

// wantKilled waits for cmd, which must die of SIGKILL.
func wantKilled(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("a process left in an app cgroup: %v, want killed", err)
	}
}

// groupDirs are g's directories, one per hierarchy.
func groupDirs(g *Group) []string {
	var dirs []string
	for _, procs := range g.ProcsFiles() {
		dirs = append(dirs, filepath.Dir(procs))
	}
	return dirs
}

// parentDirs are where c makes app cgroups, one per hierarchy.
func parentDirs(c *Cgroups) []string {
	if c.v2 {
		return []string{filepath.Join(c.root, c.parent)}
	}
	var dirs []string
	for _, hierarchy := range []string{"memory", "pids", "cpu"} {
		dirs = append(dirs, filepath.Join(c.root, hierarchy, c.parent))
	}
	return dirs
}

// TestResourcesOfLimits: the plan's limits become the cgroup files of
// both versions (v1 written by cgroup1, v2 by cgroup2 after ToResources),
// so that the v2 branch, which this host cannot run, is checked too.
func TestResourcesOfLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		swap   bool
		v1, v2 map[string]string
	}{
		{
			name: "no limits",
			v1:   map[string]string{},
			v2:   map[string]string{},
		},
		{
			name:   "memory where swap is not accounted",
			limits: Limits{MemoryMB: 64},
			v1:     map[string]string{"memory.limit_in_bytes": "67108864"},
			v2:     map[string]string{"memory.max": "67108864"},
		},
		{
			name:   "memory with swap accounted: none on top of it",
			limits: Limits{MemoryMB: 64},
			swap:   true,
			v1:     map[string]string{"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "67108864"},
			v2:     map[string]string{"memory.max": "67108864", "memory.swap.max": "0"},
		},
		{
			name:   "a quarter of a CPU",
			limits: Limits{CPUMillis: 250},
			v1:     map[string]string{"cpu.cfs_quota_us": "25000", "cpu.cfs_period_us": "100000"},
			v2:     map[string]string{"cpu.max": "25000 100000"},
		},
		{
			name:   "two CPUs",
			limits: Limits{CPUMillis: 2000},
			v1:     map[string]string{"cpu.cfs_quota_us": "200000", "cpu.cfs_period_us": "100000"},
			v2:     map[string]string{"cpu.max": "200000 100000"},
		},
		{
			name:   "pids",
			limits: Limits{Pids: 32},
			v1:     map[string]string{"pids.max": "32"},
			v2:     map[string]string{"pids.max": "32"},
		},
		{
			name:   "the whole plan",
			limits: Limits{MemoryMB: 512, CPUMillis: 1000, Pids: 256},
			swap:   true,
			v1: map[string]string{"memory.limit_in_bytes": "536870912", "memory.memsw.limit_in_bytes": "536870912",
				"cpu.cfs_quota_us": "100000", "cpu.cfs_period_us": "100000", "pids.max": "256"},
			v2: map[string]string{"memory.max": "536870912", "memory.swap.max": "0", "cpu.max": "100000 100000", "pids.max": "256"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := resources(tc.limits, tc.swap)
			if got := v1Files(r); fmt.Sprint(got) != fmt.Sprint(tc.v1) {
				t.Errorf("cgroup v1: %v, want %v", got, tc.v1)
			}
			if got := v2Files(cgroup2.ToResources(r)); fmt.Sprint(got) != fmt.Sprint(tc.v2) {
				t.Errorf("cgroup v2: %v, want %v", got, tc.v2)
			}
		})
	}
}

// v1Files are the limit files cgroup1 writes for r.
func v1Files(r *specs.LinuxResources) map[string]string {
	files := map[string]string{}
	if m := r.Memory; m != nil {
		set(files, "memory.limit_in_bytes", m.Limit)
		set(files, "memory.memsw.limit_in_bytes", m.Swap)
	}
	if c := r.CPU; c != nil {
		set(files, "cpu.cfs_quota_us", c.Quota)
		set(files, "cpu.cfs_period_us", c.Period)
	}
	if p := r.Pids; p != nil {
		set(files, "pids.max", p.Limit)
	}
	return files
}

// v2Files are the limit files cgroup2 writes for r.
func v2Files(r *cgroup2.Resources) map[string]string {
	files := map[string]string{}
	if m := r.Memory; m != nil {
		set(files, "memory.max", m.Max)
		set(files, "memory.swap.max", m.Swap)
	}
	if c := r.CPU; c != nil && c.Max != "" {
		files["cpu.max"] = string(c.Max)
	}
	if p := r.Pids; p != nil {
		files["pids.max"] = fmt.Sprint(p.Max)
	}
	return files
}

func set[T int64 | uint64](files map[string]string, name string, value *T) {
	if value != nil {
		files[name] = fmt.Sprint(*value)
	}
}
