package connlimit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// wantedFiles is the open files limit rosti asks for when it may raise the
// hard limit itself (as root): enough for tens of thousands of held client
// connections, each of which may hold one to its app as well.
const wantedFiles = 1 << 17

// RaiseFileLimit raises the limit of open files (RLIMIT_NOFILE) and returns
// it: connections, not a default of 1024 or a container's 20,000, should be
// what bounds how many clients rosti serves. The hard limit goes up to
// wantedFiles where rosti may raise it (root; never above the kernel's
// fs.nr_open), and the soft limit to the hard one.
func RaiseFileLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if lim.Max < wantedFiles {
		raised := syscall.Rlimit{Cur: wantedFiles, Max: wantedFiles}
		if nrOpen, err := readUint("/proc/sys/fs/nr_open"); err == nil && nrOpen < wantedFiles {
			raised = syscall.Rlimit{Cur: nrOpen, Max: nrOpen}
		}
		// Without the privilege this fails with EPERM: the hard limit the
		// operator gave stays, which is theirs to choose.
		if raised.Max > lim.Max && syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
		}
	}
	return int(min(lim.Cur, 1<<30)), nil
}

func readUint(path string) (uint64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
}

// Budgets is how a limit of open files is shared out.
type Budgets struct {
	Public, PublicPerSource int // the proxy and SSH gateway, together
	API, APIPerSource       int // the REST API listener
	Reserved                int // never given to clients: store, logs, containerd, admin socket, CNI
}

// BudgetsFor shares out limit open files. A part is reserved and never
// given to clients; the API has a share of its own, so that a flood of the
// public ports leaves the operator's API answering; the public listeners
// get half of the rest, since each proxied request may hold a connection
// to its app besides the client's.
func BudgetsFor(limit int) Budgets {
	reserved := min(max(limit/8, 64), 4096)
	api := min(max(limit/16, 32), 1024)
	public := max((limit-reserved-api)/2, 16)
	return Budgets{
		Public:          public,
		PublicPerSource: min(256, max(public/2, 1)),
		API:             api,
		APIPerSource:    min(64, max(api/2, 1)),
		Reserved:        reserved,
	}
}
