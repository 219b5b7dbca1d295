// Command footprint measures what rosti adds to each running app besides
// the app's own processes: the containerd shims, log processes (none since
// rosti reads the output FIFOs itself) and `rosti init`, as proportional
// set size (PSS, shared pages split among the processes mapping them),
// with N static apps running; and the growth of the host's used memory
// (MemTotal - MemAvailable) per app, which includes the kernel's share
// (cgroups, network namespaces, veths, page tables) and whatever else the
// machine did meanwhile.
//
// The floor it is compared with is what Docker's defaults spend per
// container beside the app: one shim per container and no log process nor
// init (dockerd copies the output itself). Docker is not installed on the
// test machine, so the floor is measured the same way on N busybox `sleep`
// containers that ctr runs on the same containerd, one shim each.
//
// Run it as root through bench/footprint/run.sh.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/bench/internal/benchrosti"
	"github.com/rosti-paas/rosti/internal/hostprocs"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	apps := flag.Int("apps", 100, "static apps to run")
	plan := flag.Int64("plan", 0, "plan id of the apps (0: the start plan's memory, CPU and pids with a 20 MB disk)")
	floor := flag.Bool("floor", true, "also measure the shim-only floor with ctr")
	flag.Parse()
	if err := run(*bin, *apps, *plan, *floor); err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
}

func run(bin string, apps int, plan int64, floor bool) error {
	s, err := benchrosti.StartOn(bin, "rfoot", "10.197.0.0/16")
	if err != nil {
		return err
	}
	defer s.Stop()
	defer removeApps(s)
	if plan == 0 {
		// Each app's disk is allocated in full when it is made: 100 apps
		// on the start plan's 5 GB would need 500 GB of the host's disk.
		var made struct{ ID int64 }
		err := s.Call("POST", s.CompanyPath("plans/"), map[string]any{
			"name": "footprint", "ram": 256, "cpu_quota": 25, "pids": 256, "disk": 20, "price": 0,
		}, &made)
		if err != nil {
			return fmt.Errorf("make the footprint plan: %w", err)
		}
		plan = made.ID
	}
	// The first app builds the static image, so that the baseline below
	// has it (and rosti's caches) in memory already.
	if err := create(s, "warmup", plan); err != nil {
		return err
	}
	settle()
	before, beforeParts := hostUsedKB(), meminfo()
	start := time.Now()
	for i := 1; i < apps; i++ {
		if err := create(s, fmt.Sprintf("foot%03d", i), plan); err != nil {
			return err
		}
	}
	fmt.Printf("%d static apps created and serving in %v\n", apps, time.Since(start).Round(time.Second))
	settle()
	after, afterParts := hostUsedKB(), meminfo()
	p := classify(s.Data)
	if p.inits != apps {
		return fmt.Errorf("found %d containers' init processes, want %d", p.inits, apps)
	}
	n := float64(apps)
	fmt.Printf("per app (MB PSS, %d apps):\n", apps)
	fmt.Printf("  shim   %5.2f  (%d shim processes)\n", mb(p.shim)/n, p.shims)
	fmt.Printf("  logger %5.2f  (%d log processes)\n", mb(p.logger)/n, p.loggers)
	fmt.Printf("  init   %5.2f\n", mb(p.init)/n)
	fmt.Printf("  rosti adds %.2f MB PSS per app (budget <= 5)\n", mb(p.shim+p.logger+p.init)/n)
	fmt.Printf("  the app's own processes (static server) %.2f\n", mb(p.app)/n)
	fmt.Printf("host used memory: %+.2f MB per app (%+.0f MB for %d apps)\n", mb(after-before)/(n-1), mb(after-before), apps-1)
	printGrowth(beforeParts, afterParts, n-1)
	if pid, ok := s.ContainerdPid(); ok {
		if kb, err := pssKB(pid); err == nil {
			fmt.Printf("(the managed containerd: %.1f MB PSS; rosti serve: ", mb(kb))
		}
		if kb, err := pssKB(s.Pid()); err == nil {
			fmt.Printf("%.1f MB PSS", mb(kb))
		}
		if rss, err := benchrosti.RSSMB(s.Pid()); err == nil {
			fmt.Printf(", %.1f MB RSS", rss)
		}
		fmt.Println(")")
	}
	if !floor {
		return nil
	}
	return shimFloor(s.Data, apps)
}

// removeApps deletes every app: stopping rosti leaves its containers
// running, as it should, and they would outlive the benchmark.
func removeApps(s *benchrosti.Server) {
	var list []struct{ ID int64 }
	if err := s.Call("GET", s.CompanyPath("apps/"), nil, &list); err != nil {
		fmt.Fprintln(os.Stderr, "footprint: list apps to remove:", err)
		return
	}
	for _, a := range list {
		if err := s.Call("DELETE", s.CompanyPath("apps/%d/", a.ID), nil, nil); err != nil {
			fmt.Fprintln(os.Stderr, "footprint: remove app:", err)
		}
	}
}

func create(s *benchrosti.Server, name string, plan int64) error {
	if err := s.Call("POST", s.CompanyPath("apps/"), map[string]any{"name": name, "image": "static", "plan": plan}, nil); err != nil {
		return err
	}
	return s.WaitAnswer(name, nil)
}

// settle lets start-up allocations be collected and page cache writes
// land before memory is read (a benchmark, not a test).
func settle() { time.Sleep(5 * time.Second) }

type footprint struct {
	shim, logger, init, app int64 // kB PSS
	shims, loggers, inits   int
}

// classify sums the PSS of the shims serving the containerd under data
// (their -address names it), of their children (each container's init, or
// an older rosti's log process) and of the inits' descendants (the apps).
func classify(data string) footprint {
	procs := processes()
	var f footprint
	shims := map[int]bool{}
	for pid, p := range procs {
		if strings.Contains(p.Cmdline, "containerd-shim-runc-v2") && strings.Contains(p.Cmdline, data) {
			shims[pid] = true
			f.shims++
			f.shim += p.pss
		}
	}
	inits := map[int]bool{}
	for pid, p := range procs {
		if !shims[p.PPid] || shims[pid] {
			continue
		}
		if strings.Contains(p.Cmdline, "--logger") {
			f.loggers++
			f.logger += p.pss
			continue
		}
		inits[pid] = true
		f.inits++
		f.init += p.pss
	}
	for pid, p := range procs {
		if inits[pid] || shims[pid] {
			continue
		}
		for anc := p.PPid; anc > 1; anc = procs[anc].PPid {
			if inits[anc] {
				f.app += p.pss
				break
			}
			if _, ok := procs[anc]; !ok {
				break
			}
		}
	}
	return f
}

// proc is a process of the host with its proportional set size.
type proc struct {
	hostprocs.Process
	pss int64 // KiB
}

func processes() map[int]proc {
	out := map[int]proc{}
	for pid, p := range hostprocs.List() {
		pss, _ := pssKB(pid)
		out[pid] = proc{Process: p, pss: pss}
	}
	return out
}

func pssKB(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no Pss")
}

func hostUsedKB() int64 {
	m := meminfo()
	return m["MemTotal"] - m["MemAvailable"]
}

// meminfo is /proc/meminfo in kB by field name.
func meminfo() map[string]int64 {
	raw, _ := os.ReadFile("/proc/meminfo")
	out := map[string]int64{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		out[strings.TrimSuffix(f[0], ":")] = v
	}
	return out
}

// usedParts are the parts of the host's used memory the per-app growth is
// broken down into.
var usedParts = []string{"AnonPages", "Shmem", "SUnreclaim", "KernelStack", "PageTables", "Percpu"}

func printGrowth(before, after map[string]int64, n float64) {
	fmt.Print("  of which per app:")
	for _, k := range usedParts {
		fmt.Printf(" %s %+.2f", k, mb(after[k]-before[k])/n)
	}
	fmt.Println(" (MB)")
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// shimFloor runs n busybox `sleep` containers with ctr on rosti's
// containerd, in a namespace of their own, each with its own shim and no
// log process, and reports their shims' PSS per container.
func shimFloor(data string, n int) error {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("the floor needs busybox-static: %w", err)
	}
	rootfs := filepath.Join(data, "floor-rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", busybox, filepath.Join(rootfs, "bin", "busybox")).CombinedOutput(); err != nil {
		return fmt.Errorf("cp busybox: %v: %s", err, out)
	}
	socket := filepath.Join(data, "containerd", "containerd.sock")
	ctr := func(args ...string) error {
		out, err := exec.Command("ctr", append([]string{"-a", socket, "-n", "floor"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	defer func() {
		for i := range n {
			id := fmt.Sprintf("floor%03d", i)
			_ = ctr("task", "kill", "-s", "SIGKILL", id)
		}
		time.Sleep(time.Second)
		for i := range n {
			id := fmt.Sprintf("floor%03d", i)
			_ = ctr("task", "delete", id)
			_ = ctr("container", "delete", id)
		}
	}()
	before, beforeParts := hostUsedKB(), meminfo()
	for i := range n {
		if err := ctr("run", "-d", "--rootfs", rootfs, fmt.Sprintf("floor%03d", i), "/bin/busybox", "sleep", "100000"); err != nil {
			return err
		}
	}
	settle()
	after, afterParts := hostUsedKB(), meminfo()
	var shim int64
	shims := 0
	for _, p := range processes() {
		if strings.Contains(p.Cmdline, "containerd-shim-runc-v2") && strings.Contains(p.Cmdline, "-namespace floor") && strings.Contains(p.Cmdline, data) {
			shim += p.pss
			shims++
		}
	}
	fmt.Printf("floor (Docker's defaults: a shim per container, no log process, no init), %d busybox sleep containers by ctr:\n", n)
	fmt.Printf("  shim %.2f MB PSS per container (%d shims); host used memory %+.2f MB per container\n", mb(shim)/float64(n), shims, mb(after-before)/float64(n))
	printGrowth(beforeParts, afterParts, float64(n))
	return nil
}
