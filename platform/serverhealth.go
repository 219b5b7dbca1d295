package platform

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rosti-paas/rosti/proxy"
	"github.com/rosti-paas/rosti/store"
)

// ServerHealth is the state of the machine rosti runs on, for its
// operator.
type ServerHealth struct {
	Containerd    string // "ok", or what is wrong
	DiskTotalMB   float64
	DiskFreeMB    float64
	MemoryTotalMB float64
	MemoryFreeMB  float64 // available, page cache included
	Load1         float64
	Apps          int
	RunningApps   int
	// Certificates are those the proxy serves (uploaded) or gets from the
	// ACME CA for apps in https+le mode, with their expiry.
	Certificates []proxy.CertStatus
}

// Health reports on the server: containerd, the data dir's disk, memory,
// load and apps.
func (p *Platform) Health(ctx context.Context, actor store.User) (ServerHealth, error) {
	if err := requireSuperuser(actor); err != nil {
		return ServerHealth{}, err
	}
	var h ServerHealth
	switch {
	case p.containers == nil:
		h.Containerd = "not used: this server runs no containers"
	default:
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := p.containers.Images(ctx); err != nil {
			h.Containerd = "not answering: " + err.Error()
		} else {
			h.Containerd = "ok"
		}
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(p.cfg.DataDir, &fs); err == nil {
		h.DiskTotalMB = float64(fs.Blocks) * float64(fs.Bsize) / (1 << 20)
		h.DiskFreeMB = float64(fs.Bavail) * float64(fs.Bsize) / (1 << 20)
	}
	h.MemoryTotalMB, h.MemoryFreeMB = meminfo()
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) > 0 {
			h.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if p.router != nil {
		h.Certificates = p.router.Certificates()
	}
	apps, err := p.store.Apps()
	if err != nil {
		return h, err
	}
	h.Apps = len(apps)
	for _, a := range apps {
		if a.Enabled() {
			h.RunningApps++
		}
	}
	return h, nil
}

func meminfo() (total, available float64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "MemTotal:"):
			fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%f", &kb)
			total = kb / 1024
		case strings.HasPrefix(line, "MemAvailable:"):
			fmt.Sscanf(strings.TrimPrefix(line, "MemAvailable:"), "%f", &kb)
			available = kb / 1024
		}
	}
	return total, available
}
