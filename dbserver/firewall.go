package dbserver

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// A managed server listens on every IPv4 address, because apps reach it at
// their own bridge's gateway and bridges come and go with companies (a
// server cannot bind an address that does not exist yet). Its chain in
// INPUT keeps everyone else out: only loopback and the apps' subnet get
// through to its port.

func chainFor(port int) string { return "ROSTI-DB-" + strconv.Itoa(port) }

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allowOnly makes sure port's chain holds its rules, in order, and that
// INPUT sends the port's traffic to it first.
func allowOnly(port int, subnet string) error {
	chain := chainFor(port)
	rules := [][]string{
		{"-i", "lo", "-j", "ACCEPT"},
		{"-s", subnet, "-j", "ACCEPT"},
		{"-j", "DROP"},
	}
	if iptables("-n", "-L", chain) != nil {
		if err := iptables("-N", chain); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
	}
	complete := true
	for _, r := range rules {
		complete = complete && iptables(append([]string{"-C", chain}, r...)...) == nil
	}
	if !complete {
		if err := iptables("-F", chain); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
		for _, r := range rules {
			if err := iptables(append([]string{"-A", chain}, r...)...); err != nil {
				return fmt.Errorf("dbserver: %w", err)
			}
		}
	}
	jump := []string{"-p", "tcp", "--dport", strconv.Itoa(port), "-j", chain}
	if iptables(append([]string{"-C", "INPUT"}, jump...)...) != nil {
		if err := iptables(append([]string{"-I", "INPUT", "1"}, jump...)...); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
	}
	return nil
}

// removeAllow deletes port's chain and the jump to it.
func removeAllow(port int) error {
	chain := chainFor(port)
	jump := []string{"-p", "tcp", "--dport", strconv.Itoa(port), "-j", chain}
	for iptables(append([]string{"-C", "INPUT"}, jump...)...) == nil {
		if err := iptables(append([]string{"-D", "INPUT"}, jump...)...); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
	}
	if iptables("-n", "-L", chain) == nil {
		if err := iptables("-F", chain); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
		if err := iptables("-X", chain); err != nil {
			return fmt.Errorf("dbserver: %w", err)
		}
	}
	return nil
}
