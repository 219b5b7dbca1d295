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
)

// TestCgroupsLiveWhileAToolRuns: an app's cgroup gets the plan's limits,
// is shared by its concurrent tools, goes with the last one, and what a
// killed rosti left is removed by the next.
func TestCgroupsLiveWhileAToolRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	parent := fmt.Sprintf("rosti-sandbox-test-%d", os.Getpid())
	cgroups, err := NewCgroups(parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, dir := range cgroups.parentDirs() {
			os.Remove(dir)
		}
	})
	limits := Limits{MemoryMB: 64, CPUMillis: 250, Pids: 32}
	first, err := cgroups.Join(7, limits)
	if err != nil {
		t.Fatal(err)
	}
	second, err := cgroups.Join(7, Limits{MemoryMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(first.dirs) != fmt.Sprint(second.dirs) {
		t.Fatalf("two tools of one app in different cgroups: %v and %v", first.dirs, second.dirs)
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
			dir := first.dirs[0]
			if !cgroups.v2 {
				file = tc.v1
				for _, d := range first.dirs {
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
	if n := first.OOMKills(); n != 0 {
		t.Errorf("OOM kills of a new cgroup: %d, want 0", n)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first.dirs[0]); err != nil {
		t.Fatalf("the cgroup went while a tool still holds it: %v", err)
	}
	if err := second.Release(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range append(first.dirs, cgroups.parentDirs()...) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s is left after the last tool: %v", dir, err)
		}
	}

	// A cgroup left by a rosti killed mid-session goes on the next start,
	// and what still ran in it is killed.
	left, err := cgroups.Join(8, limits)
	if err != nil {
		t.Fatal(err)
	}
	straggler := exec.Command("sleep", "600")
	if err := straggler.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { straggler.Process.Kill() })
	for _, procs := range left.ProcsFiles() {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(straggler.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewCgroups(parent); err != nil {
		t.Fatal(err)
	}
	if err := straggler.Wait(); err == nil || straggler.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("a process left in an app cgroup: %v, want killed", err)
	}
	for _, dir := range left.dirs {
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
	cgroups, err := NewCgroups(fmt.Sprintf("rosti-sandbox-test-many-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, dir := range cgroups.parentDirs() {
			os.Remove(dir)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			g, err := cgroups.Join(int64(i%5), Limits{MemoryMB: 32})
			if err != nil {
				errs <- err
				return
			}
			if _, err := os.Stat(g.dirs[0]); err != nil {
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
	for _, dir := range cgroups.parentDirs() {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is left after every tool ended: %v", dir, err)
		}
	}
}
