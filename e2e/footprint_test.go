package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/hostprocs"
)

// TestStaticAppFootprint runs a static app and looks at what runs for it on
// the host: one shim, whose only child is the container's init, which is
// the small init rosti installed (not rosti itself), serves the files
// itself (no child), and has no log process beside it; the app's output
// still reaches its logs.
func TestStaticAppFootprint(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	app := in.createApp(t, admin, map[string]any{"name": "lean", "image": "static", "plan": 1})
	waitFor(t, "volume created", 30*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(data, "volumes", fmt.Sprint(app), "app"))
		return err == nil, fmt.Sprint(err)
	})
	if err := os.WriteFile(filepath.Join(data, "volumes", fmt.Sprint(app), "app", "index.html"), []byte("lean"), 0o644); err != nil {
		t.Fatal(err)
	}
	in.servingAt(t, admin, app, 8080, "lean")

	installed, _ := filepath.Glob(filepath.Join(data, "bin", "rosti-init-*"))
	if len(installed) != 1 {
		t.Fatalf("installed init binaries: %v; want one (ROSTI_BIN must be built by make build, which embeds it)", installed)
	}
	var shims []int
	for pid, p := range hostprocs.List() {
		if strings.Contains(p.Cmdline, "containerd-shim-runc-v2") && strings.Contains(p.Cmdline, data) {
			shims = append(shims, pid)
		}
	}
	if len(shims) != 1 {
		t.Fatalf("shims for this rosti: %v, want 1", shims)
	}
	procs := hostprocs.List()
	children := hostprocs.Children(procs, shims[0])
	if len(children) != 1 {
		t.Fatalf("the shim's children: %v, want only the container's init", describe(procs, children))
	}
	init := children[0]
	exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", init))
	if err != nil {
		t.Fatal(err)
	}
	small, err := os.Stat(installed[0])
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(exe, small) {
		t.Errorf("the container's init (%s) runs another binary than the installed %s", procs[init].Cmdline, installed[0])
	}
	if kids := hostprocs.Children(procs, init); len(kids) != 0 {
		t.Errorf("the static app's init has children %v; it should serve the files itself", describe(procs, kids))
	}
	waitFor(t, "the app's output in its logs", 30*time.Second, func() (bool, string) {
		r := in.expect(t, 200, admin.token, "GET", pathf("/api/v1/%d/apps-logs/%d/?lines=50", admin.company, app), nil)
		return strings.Contains(string(r.body), "serving /srv/app on :8080"), string(r.body)
	})
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}

func describe(procs map[int]hostprocs.Process, pids []int) []string {
	out := make([]string, 0, len(pids))
	for _, pid := range pids {
		out = append(out, fmt.Sprintf("%d %s", pid, procs[pid].Cmdline))
	}
	return out
}
