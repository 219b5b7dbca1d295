package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
)

// What Run and Remove do to the network is several steps (a namespace, a
// CNI ADD that allocates an address and adds NAT rules, then the container
// in containerd), and a rosti killed between two of them leaves the
// earlier ones behind with no container to own them. host-local then
// refuses the container's name ("duplicate allocation") on every later
// Run. So Run releases whatever its container's name still holds before
// it starts, and Serve, before anything runs, releases everything held by
// names containerd does not know: address allocations, NAT rules and
// network namespaces.

// allocation is one address host-local handed out in a rosti network.
type allocation struct {
	idx  int    // the group network's index
	file string // host-local's record of it
	id   string // the container (CNI ContainerID) holding it
}

func (n *networks) ipamDir() string { return filepath.Join(n.cfg.DataDir, "network", "ipam") }

// allocations lists host-local's allocations in rosti's networks.
func (n *networks) allocations() ([]allocation, error) {
	nets, err := os.ReadDir(n.ipamDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	var out []allocation
	for _, dir := range nets {
		idx, err := strconv.Atoi(strings.TrimPrefix(dir.Name(), n.prefix()))
		if !dir.IsDir() || !strings.HasPrefix(dir.Name(), n.prefix()) || err != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(n.ipamDir(), dir.Name()))
		if err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		for _, f := range files {
			if net.ParseIP(f.Name()) == nil {
				continue // the lock and last_reserved_ip files
			}
			file := filepath.Join(n.ipamDir(), dir.Name(), f.Name())
			raw, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("runtime: %w", err)
			}
			// "<container id>\r\n<interface>", or the id alone.
			id, _, _ := strings.Cut(string(raw), "\n")
			out = append(out, allocation{idx: idx, file: file, id: strings.TrimSpace(id)})
		}
	}
	return out, nil
}

// natRule is a source NAT rule the bridge plugin added for a container.
type natRule struct {
	network, id, source, chain string
}

var natComment = regexp.MustCompile(`^-A POSTROUTING -s (\S+) -m comment --comment "name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\"" -j (CNI-[0-9a-f]+)$`)

// natRules lists the NAT rules of rosti's networks.
func (n *networks) natRules() ([]natRule, error) {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		return nil, fmt.Errorf("runtime: iptables -t nat -S POSTROUTING: %w", err)
	}
	var rules []natRule
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := natComment.FindStringSubmatch(sc.Text())
		if m == nil || !strings.HasPrefix(m[2], n.prefix()) {
			continue
		}
		if _, err := strconv.Atoi(strings.TrimPrefix(m[2], n.prefix())); err != nil {
			continue // a network of another bridge prefix that starts like ours
		}
		rules = append(rules, natRule{network: m[2], id: m[3], source: m[1], chain: m[4]})
	}
	return rules, nil
}

func (r natRule) remove() error {
	comment := fmt.Sprintf("name: %q id: %q", r.network, r.id)
	return errors.Join(
		iptables("-t", "nat", "-D", "POSTROUTING", "-s", r.source, "-m", "comment", "--comment", comment, "-j", r.chain),
		iptables("-t", "nat", "-F", r.chain),
		iptables("-t", "nat", "-X", r.chain),
	)
}

// cniDel runs a CNI DEL for container id in network idx through its
// network namespace, when that is still there: it removes the veth, the
// address allocation and the NAT rules. A failure is only logged: the
// records are dropped by dropRecords anyway, and a veth goes with its
// namespace.
func (d *Driver) cniDel(ctx context.Context, idx int, id, netnsPath string) {
	if _, err := os.Stat(netnsPath); err != nil {
		return
	}
	d.nets.mu.Lock()
	gn, err := d.nets.byIndexLocked(idx)
	d.nets.mu.Unlock()
	if err == nil {
		err = gn.cni.Remove(ctx, id, netnsPath)
	}
	if err != nil {
		d.log.Warn("cni remove failed; dropping its records", "name", id, "err", err)
	}
}

// dropRecords removes the address allocations and NAT rules held by
// container id in rosti's networks.
func (n *networks) dropRecords(id string) error {
	var errs []error
	allocs, err := n.allocations()
	errs = append(errs, err)
	for _, a := range allocs {
		if a.id == id {
			if err := os.Remove(a.file); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("runtime: %w", err))
			}
		}
	}
	rules, err := n.natRules()
	errs = append(errs, err)
	for _, r := range rules {
		if r.id == id {
			errs = append(errs, r.remove())
		}
	}
	return errors.Join(errs...)
}

// releaseName releases everything the container name holds in the network:
// its address in any group network, its NAT rules and its namespace.
func (d *Driver) releaseName(ctx context.Context, name, netnsPath string) error {
	allocs, err := d.nets.allocations()
	if err != nil {
		return err
	}
	for _, a := range allocs {
		if a.id == name {
			d.cniDel(ctx, a.idx, name, netnsPath)
		}
	}
	return errors.Join(d.nets.dropRecords(name), removeNetns(netnsPath))
}

// repairNetwork releases every address allocation, NAT rule and network
// namespace held by a name containerd has no container of. It runs before
// the driver is ready, so no Run is half way meanwhile.
func (d *Driver) repairNetwork(ctx context.Context) error {
	list, err := d.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("runtime: list containers: %w", err)
	}
	known := map[string]bool{}
	for _, c := range list {
		known[c.ID()] = true
	}
	orphans := map[string]bool{}
	var errs []error
	allocs, err := d.nets.allocations()
	errs = append(errs, err)
	for _, a := range allocs {
		orphans[a.id] = !known[a.id]
	}
	rules, err := d.nets.natRules()
	errs = append(errs, err)
	for _, r := range rules {
		orphans[r.id] = !known[r.id]
	}
	namespaces, err := os.ReadDir(d.netnsRoot())
	errs = append(errs, err)
	for _, ns := range namespaces {
		orphans[ns.Name()] = !known[ns.Name()]
	}
	for name, orphan := range orphans {
		if orphan {
			d.log.Warn("releasing the network of a container that does not exist", "name", name)
			errs = append(errs, d.releaseName(ctx, name, filepath.Join(d.netnsRoot(), name)))
		}
	}
	return errors.Join(errs...)
}

// dropStaleTask kills and deletes whatever task containerd holds under
// name, so that a new one can be created.
func (d *Driver) dropStaleTask(ctx context.Context, name string) {
	d.log.Warn("removing a task left by an interrupted run", "name", name)
	tasks := d.client.TaskService()
	if _, err := tasks.Kill(ctx, &tasksapi.KillRequest{ContainerID: name, Signal: uint32(syscall.SIGKILL), All: true}); err != nil && !errdefs.IsNotFound(errgrpc.ToNative(err)) {
		d.log.Warn("kill the stale task", "name", name, "err", err)
	}
	if _, err := tasks.Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: name}); err != nil && !errdefs.IsNotFound(errgrpc.ToNative(err)) {
		d.log.Warn("delete the stale task", "name", name, "err", err)
	}
}

// staleBundle matches containerd's refusal to make the bundle directory of
// a task (<state>/io.containerd.runtime.v2.task/<namespace>/<container>)
// because one is there already.
var staleBundle = regexp.MustCompile(`mkdir (/\S*/io\.containerd\.runtime\.v2\.task/([^/\s]+)/([^/\s:]+)): file exists`)

// dropStaleBundle removes the bundle directory of name's task that err
// says is in the way, and reports whether it did. containerd 1.6 leaves
// one behind when the cleanup of a task creation that failed half way
// fails too (a rosti killed in the middle of it is one way), and from
// then on refuses every new task of that container, so the app never
// starts again. containerd only gets that far when it holds no task or
// shim of the name, so the directory is nobody's. Its rootfs mount is
// undone first: removing the files under a mounted rootfs would remove
// the container's own. What such a creation may leave running, a shim
// containerd has lost track of and the task's half-made init in it, is
// not stopped here: its shim may serve the other containers of the group
// too.
func (d *Driver) dropStaleBundle(name string, err error) bool {
	m := staleBundle.FindStringSubmatch(err.Error())
	if m == nil || m[2] != d.cfg.Namespace || m[3] != name {
		return false
	}
	bundle := m[1]
	if err := mount.UnmountAll(filepath.Join(bundle, "rootfs"), 0); err != nil {
		d.log.Warn("unmount the rootfs of a task bundle left by an interrupted run", "name", name, "bundle", bundle, "err", err)
		return false
	}
	if err := os.RemoveAll(bundle); err != nil {
		d.log.Warn("remove a task bundle left by an interrupted run", "name", name, "bundle", bundle, "err", err)
		return false
	}
	d.log.Warn("removed a task bundle left by an interrupted run", "name", name, "bundle", bundle)
	return true
}
