package connlimit

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft limit of open files (RLIMIT_NOFILE) to
// the hard limit and returns it: connections, not a default of 1024, should
// be what bounds how many clients rosti serves.
func RaiseFileLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
		}
	}
	return int(min(lim.Cur, 1<<30)), nil
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
