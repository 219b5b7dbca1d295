package runtime

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	gocni "github.com/containerd/go-cni"
	"golang.org/x/sys/unix"
)

// networks hands out one CNI bridge network per isolation group.
type networks struct {
	cfg      Config
	base     *net.IPNet
	maxIndex int
	file     string // persisted group -> index

	mu     sync.Mutex
	groups map[string]int
	cnis   map[int]gocni.CNI
}

type groupNetwork struct {
	index  int
	name   string // CNI network name, also the bridge name
	subnet *net.IPNet
	cni    gocni.CNI
}

func newNetworks(cfg Config) (*networks, error) {
	if len(cfg.Bridge) > 11 {
		return nil, fmt.Errorf("runtime: Bridge %q longer than 11 bytes", cfg.Bridge)
	}
	_, base, err := net.ParseCIDR(cfg.Subnet)
	if err != nil || base.IP.To4() == nil {
		return nil, fmt.Errorf("runtime: Subnet %q is not an IPv4 CIDR", cfg.Subnet)
	}
	ones, _ := base.Mask.Size()
	if ones > 24 {
		return nil, fmt.Errorf("runtime: Subnet %q is smaller than a /24", cfg.Subnet)
	}
	maxIndex := min(1<<(24-ones), 1000) // bridge names have room for 3 digits
	n := &networks{
		cfg:      cfg,
		base:     base,
		maxIndex: maxIndex,
		file:     filepath.Join(cfg.DataDir, "network", "groups.json"),
		groups:   map[string]int{},
		cnis:     map[int]gocni.CNI{},
	}
	raw, err := os.ReadFile(n.file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("runtime: %w", err)
	default:
		if err := json.Unmarshal(raw, &n.groups); err != nil {
			return nil, fmt.Errorf("runtime: %s: %w", n.file, err)
		}
	}
	return n, nil
}

func (n *networks) chain() string  { return "ROSTI-" + n.cfg.Bridge }
func (n *networks) prefix() string { return n.cfg.Bridge + "-" }

// The chains of what containers may reach on the host itself: inChain is
// jumped to from INPUT for everything arriving from a rosti bridge, and
// sends what may go to the host's services to serviceChain.
func (n *networks) inChain() string      { return "ROSTI-" + n.cfg.Bridge + "-IN" }
func (n *networks) serviceChain() string { return "ROSTI-" + n.cfg.Bridge + "-SV" }

// gateway is the host's address on a group's bridge.
func (gn groupNetwork) gateway() string {
	ip := slices.Clone(gn.subnet.IP.To4())
	ip[3]++
	return ip.String()
}

// forGroup returns the network of group, allocating and persisting an index
// for a new group.
func (n *networks) forGroup(group string) (groupNetwork, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	idx, ok := n.groups[group]
	if !ok {
		used := map[int]bool{}
		for _, i := range n.groups {
			used[i] = true
		}
		idx = -1
		for i := range n.maxIndex {
			if !used[i] {
				idx = i
				break
			}
		}
		if idx < 0 {
			return groupNetwork{}, fmt.Errorf("runtime: no free /24 left in %s for group %q", n.cfg.Subnet, group)
		}
		n.groups[group] = idx
		if err := n.save(); err != nil {
			delete(n.groups, group)
			return groupNetwork{}, err
		}
	}
	return n.byIndexLocked(idx)
}

// byIndexLocked returns the network of the group with index idx.
func (n *networks) byIndexLocked(idx int) (groupNetwork, error) {
	gn := groupNetwork{index: idx, name: fmt.Sprintf("%s%d", n.prefix(), idx), subnet: n.subnet(idx)}
	if c, ok := n.cnis[idx]; ok {
		gn.cni = c
		return gn, nil
	}
	if err := n.groupRules(gn); err != nil {
		return groupNetwork{}, err
	}
	c, err := gocni.New(
		gocni.WithPluginDir([]string{n.cfg.CNIBinDir}),
		gocni.WithMinNetworkCount(1),
		gocni.WithInterfacePrefix("eth"),
		gocni.WithLoNetwork,
		gocni.WithConfListBytes(n.confList(gn)),
	)
	if err != nil {
		return groupNetwork{}, fmt.Errorf("runtime: cni for %s: %w", gn.name, err)
	}
	n.cnis[idx] = c
	gn.cni = c
	return gn, nil
}

func (n *networks) save() error {
	raw, err := json.Marshal(n.groups)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(n.file), 0o750); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	tmp := n.file + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o640); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	if err := os.Rename(tmp, n.file); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}

func (n *networks) subnet(idx int) *net.IPNet {
	ip := binary.BigEndian.Uint32(n.base.IP.To4()) + uint32(idx)<<8
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, ip)
	return &net.IPNet{IP: out, Mask: net.CIDRMask(24, 32)}
}

func (n *networks) confList(gn groupNetwork) []byte {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       gn.name,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      gn.name,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": gn.subnet.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(n.cfg.DataDir, "network", "ipam"),
				},
			},
		},
	}
	raw, _ := json.Marshal(conf)
	return raw
}

// IPAMDir is where host-local keeps its address allocations; tests check it
// is empty after Remove.
func (d *Driver) IPAMDir() string { return filepath.Join(d.cfg.DataDir, "network", "ipam") }

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// baseRules are the chain's rules after the per-group accepts, in order.
// Link-local addresses (cloud metadata at 169.254.169.254 among them) are
// the host's business, never a container's.
func (n *networks) baseRules() [][]string {
	p := n.prefix() + "+"
	return [][]string{
		{"-i", p, "-d", "169.254.0.0/16", "-j", "REJECT"},
		{"-i", p, "-o", p, "-j", "DROP"},
		{"-i", p, "-j", "ACCEPT"},
		{"-o", p, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
	}
}

// hostRules are the rules of inChain after the per-group jumps for the
// group's own gateway, in order: replies to connections the host opened
// (the proxy's, health checks) pass; the gateways of other groups are
// closed whatever the port; any other address of the host offers its
// services.
func (n *networks) hostRules() [][]string {
	return [][]string{
		{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"-d", n.cfg.Subnet, "-j", "REJECT"},
		{"-j", n.serviceChain()},
	}
}

// serviceRules are the whole serviceChain: the host ports rosti serves to
// apps on purpose, ping, and a refusal of everything else.
func (n *networks) serviceRules() [][]string {
	var rules [][]string
	for _, port := range n.cfg.HostPorts {
		rules = append(rules, []string{"-p", "tcp", "--dport", strconv.Itoa(port), "-j", "ACCEPT"})
	}
	// Containers get the host's resolvers (writeEtcFiles); one listening
	// on an address of the host itself must stay reachable.
	for _, ns := range localNameservers() {
		for _, proto := range []string{"udp", "tcp"} {
			rules = append(rules, []string{"-d", ns, "-p", proto, "--dport", "53", "-j", "ACCEPT"})
		}
	}
	return append(rules,
		[]string{"-p", "icmp", "--icmp-type", "echo-request", "-j", "ACCEPT"},
		[]string{"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"},
		[]string{"-j", "REJECT"},
	)
}

// setupFirewall makes sure the isolation chain (FORWARD) and the chains of
// what containers reach on the host (INPUT) exist with their base rules in
// order, and are jumped to.
func (n *networks) setupFirewall() error {
	if err := ensureChain(n.serviceChain(), n.serviceRules()); err != nil {
		return err
	}
	rebuilt := false
	for chain, rules := range map[string][][]string{n.chain(): n.baseRules(), n.inChain(): n.hostRules()} {
		done, err := ensureChainRules(chain, rules)
		if err != nil {
			return err
		}
		rebuilt = rebuilt || done
	}
	if rebuilt {
		n.mu.Lock()
		for _, idx := range n.groups {
			delete(n.cnis, idx) // forGroup re-adds the per-group rules
		}
		n.mu.Unlock()
	}
	for _, jump := range [][]string{{"FORWARD", "-j", n.chain()}, {"INPUT", "-i", n.prefix() + "+", "-j", n.inChain()}} {
		if iptables(append([]string{"-C"}, jump...)...) != nil {
			if err := iptables(append([]string{"-I", jump[0], "1"}, jump[1:]...)...); err != nil {
				return fmt.Errorf("runtime: %w", err)
			}
		}
	}
	return nil
}

// ensureChainRules makes sure chain exists and ends with rules in order;
// when one is missing it is made again from rules alone, and rebuilt says
// so, since rules inserted before them are then gone too.
func ensureChainRules(chain string, rules [][]string) (rebuilt bool, err error) {
	if iptables("-n", "-L", chain) == nil {
		complete := true
		for _, r := range rules {
			if iptables(append([]string{"-C", chain}, r...)...) != nil {
				complete = false
			}
		}
		if complete {
			return false, nil
		}
	}
	return true, ensureChain(chain, rules)
}

// ensureChain creates chain if it is missing and replaces its rules by
// rules.
func ensureChain(chain string, rules [][]string) error {
	if iptables("-n", "-L", chain) != nil {
		if err := iptables("-N", chain); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	} else {
		if err := iptables("-F", chain); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	for _, r := range rules {
		if err := iptables(append([]string{"-A", chain}, r...)...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}

// groupRules adds a group's own rules: traffic within its bridge passes,
// and its containers reach the host's services through their own gateway
// (the other groups' gateways stay closed to them).
func (n *networks) groupRules(gn groupNetwork) error {
	for _, r := range []struct {
		chain string
		at    string
		rule  []string
	}{
		{n.chain(), "1", []string{"-i", gn.name, "-o", gn.name, "-j", "ACCEPT"}},
		{n.inChain(), "2", []string{"-i", gn.name, "-d", gn.gateway(), "-j", n.serviceChain()}},
	} {
		if iptables(append([]string{"-C", r.chain}, r.rule...)...) == nil {
			continue
		}
		if err := iptables(append([]string{"-I", r.chain, r.at}, r.rule...)...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}

// teardown removes the chain and the bridges of all groups.
func (n *networks) teardown() error {
	var errs []error
	for _, jump := range [][]string{{"FORWARD", "-j", n.chain()}, {"INPUT", "-i", n.prefix() + "+", "-j", n.inChain()}} {
		if iptables(append([]string{"-C"}, jump...)...) == nil {
			errs = append(errs, iptables(append([]string{"-D"}, jump...)...))
		}
	}
	for _, chain := range []string{n.chain(), n.inChain(), n.serviceChain()} {
		if iptables("-n", "-L", chain) == nil {
			errs = append(errs, iptables("-F", chain))
		}
	}
	for _, chain := range []string{n.chain(), n.inChain(), n.serviceChain()} {
		if iptables("-n", "-L", chain) == nil {
			errs = append(errs, iptables("-X", chain))
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, idx := range n.groups {
		name := fmt.Sprintf("%s%d", n.prefix(), idx)
		if _, err := net.InterfaceByName(name); err == nil {
			if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %s: %w: %s", name, err, out))
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveNetwork deletes the firewall chain and the bridges. It is for
// uninstalling and for tests; containers still attached lose their network.
func (d *Driver) RemoveNetwork() error { return d.nets.teardown() }

// createNetns creates a network namespace pinned by a bind mount at path.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread's namespace is changed for good; returning with the
		// thread locked makes the Go runtime throw it away.
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		errc <- unix.Mount(self, path, "none", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}

func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}

// setupNetwork attaches the netns at path to group's network and returns the IP.
func (n *networks) setup(ctx context.Context, id, netnsPath, group string) (string, error) {
	gn, err := n.forGroup(group)
	if err != nil {
		return "", err
	}
	res, err := gn.cni.Setup(ctx, id, netnsPath)
	if err != nil {
		return "", fmt.Errorf("runtime: cni setup %s: %w", id, err)
	}
	for name, iface := range res.Interfaces {
		if !strings.HasPrefix(name, "eth") {
			continue
		}
		for _, c := range iface.IPConfigs {
			if c.IP.To4() != nil {
				return c.IP.String(), nil
			}
		}
	}
	return "", fmt.Errorf("runtime: cni setup %s: no IPv4 address", id)
}

// localNameservers are the resolvers in the host's resolv.conf that are
// addresses of the host itself, other than loopback ones.
func localNameservers() []string {
	raw, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.Lines(string(raw)) {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		ip := net.ParseIP(fields[1])
		if ip == nil || ip.To4() == nil || ip.IsLoopback() {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) && !slices.Contains(out, ip.String()) {
				out = append(out, ip.String())
			}
		}
	}
	return out
}

// writeEtcFiles generates the resolv.conf and hosts every container gets:
// the host's resolvers minus loopback ones, which mean nothing inside a
// container's own network namespace.
func (d *Driver) writeEtcFiles() error {
	var resolv strings.Builder
	if raw, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for line := range strings.Lines(string(raw)) {
			fields := strings.Fields(line)
			if len(fields) >= 2 && fields[0] == "nameserver" {
				if ip := net.ParseIP(fields[1]); ip == nil || ip.IsLoopback() {
					continue
				}
			}
			if len(fields) > 0 && (fields[0] == "nameserver" || fields[0] == "search" || fields[0] == "options") {
				resolv.WriteString(strings.TrimSpace(line) + "\n")
			}
		}
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for name, content := range map[string]string{"resolv.conf": resolv.String(), "hosts": hosts} {
		if err := os.WriteFile(filepath.Join(d.etcDir(), name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}
