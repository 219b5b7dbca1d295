package platform

import (
	"context"
	"math"
	"strings"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// StaticRuntimeImage is the built-in runtime that needs no registry: the
// runtime builds it locally and it serves /srv/app as static files.
const StaticRuntimeImage = rtm.StaticImage

// ShellRuntimeImage is the built-in image of the default runtime, built
// locally too: a shell and the ordinary tools, for apps that bring their
// own binaries or scripts and for deploy scripts (rostictl's included).
const ShellRuntimeImage = rtm.ShellImage

// catalogSeed is the version of defaultPlans and defaultRuntimes; raise it
// when adding to them, and servers add what they lack on their next start.
// 2: Rosti's plan names and the shell runtime.
const catalogSeed = 2

// defaultPlans are Rosti's plans, by their names (rostictl picks one by
// name, start+ by default). Prices are whole numbers: Rosti's client reads
// them as such.
func defaultPlans() []store.Plan {
	return []store.Plan{
		{Name: "static", CPUMillis: 100, MemoryMB: 256, Pids: 128, DiskMB: 1000, Price: 1},
		{Name: "start", CPUMillis: 250, MemoryMB: 256, Pids: 256, DiskMB: 5000, Price: 2},
		{Name: "start+", CPUMillis: 500, MemoryMB: 512, Pids: 512, DiskMB: 10000, Price: 4},
		{Name: "normal", CPUMillis: 750, MemoryMB: 768, Pids: 768, DiskMB: 15000, Price: 6},
		{Name: "normal+", CPUMillis: 1000, MemoryMB: 1024, Pids: 1024, DiskMB: 20000, Price: 8},
		{Name: "pro", CPUMillis: 1500, MemoryMB: 1536, Pids: 1536, DiskMB: 30000, Price: 12},
		{Name: "pro+", CPUMillis: 2000, MemoryMB: 2048, Pids: 2048, DiskMB: 40000, Price: 16},
		{Name: "business", CPUMillis: 3000, MemoryMB: 3072, Pids: 3072, DiskMB: 60000, Price: 24},
		{Name: "business+", CPUMillis: 4000, MemoryMB: 4096, Pids: 4096, DiskMB: 80000, Price: 32},
	}
}

// defaultRuntimes are named by the tech they provide, which is what the
// app's status reports as its primary_tech (rostictl compares it with the
// Rostifile's technology).
func defaultRuntimes() []store.Runtime {
	return []store.Runtime{
		{Name: "binary", Image: ShellRuntimeImage, Languages: []string{"binary", "shell"}, Default: true, Show: true},
		{Name: "static", Image: StaticRuntimeImage, Languages: []string{"html"}, Show: true},
		{Name: "node", Image: "docker.io/library/node:22-alpine", Command: []string{"node", "app.js"}, Languages: []string{"node"}, Show: true},
		{Name: "python", Image: "docker.io/library/python:3.13-alpine", Command: []string{"python", "app.py"}, Languages: []string{"python"}, Show: true},
	}
}

// SeedCatalog stores the default plans and runtimes on a new server, and
// those a server seeded by an older rosti lacks.
func (p *Platform) SeedCatalog() error {
	return p.store.SeedCatalog(catalogSeed, defaultPlans(), defaultRuntimes())
}

// Plans lists the plans anyone may pick.
func (p *Platform) Plans(_ context.Context, _ store.User) ([]store.Plan, error) {
	return p.store.Plans()
}

// Plan returns one plan.
func (p *Platform) Plan(_ context.Context, _ store.User, id int64) (store.Plan, error) {
	return p.store.Plan(id)
}

// Runtime returns one runtime.
func (p *Platform) Runtime(_ context.Context, _ store.User, id int64) (store.Runtime, error) {
	return p.store.Runtime(id)
}

// Runtimes lists the runtimes anyone may pick.
func (p *Platform) Runtimes(_ context.Context, _ store.User) ([]store.Runtime, error) {
	return p.store.Runtimes()
}

// PutPlan creates (ID 0) or replaces a plan; superusers only.
func (p *Platform) PutPlan(_ context.Context, actor store.User, pl store.Plan) (store.Plan, error) {
	if err := requireSuperuser(actor); err != nil {
		return store.Plan{}, err
	}
	var v ValidationError
	if strings.TrimSpace(pl.Name) == "" {
		v.Add("name", "is required")
	}
	if pl.MemoryMB < 16 {
		v.Add("ram", "must be at least 16 MB")
	}
	if pl.CPUMillis < 10 {
		v.Add("cpu_quota", "must be at least 1 (percent of a core)")
	}
	if pl.Pids < 16 {
		v.Add("pids", "must be at least 16")
	}
	if pl.DiskMB < 1 {
		v.Add("disk", "must be at least 1 MB")
	}
	if pl.Price < 0 || pl.Price != math.Trunc(pl.Price) {
		v.Add("price", "must be a whole number, not negative")
	}
	if err := v.Err(); err != nil {
		return store.Plan{}, err
	}
	return p.store.PutPlan(pl)
}

// PutRuntime creates (ID 0) or replaces a runtime; superusers only.
func (p *Platform) PutRuntime(_ context.Context, actor store.User, rt store.Runtime) (store.Runtime, error) {
	if err := requireSuperuser(actor); err != nil {
		return store.Runtime{}, err
	}
	var v ValidationError
	if strings.TrimSpace(rt.Name) == "" {
		v.Add("name", "is required")
	}
	if strings.TrimSpace(rt.Image) == "" || strings.ContainsAny(rt.Image, " \t\n") {
		v.Add("image", "must be an image reference such as docker.io/library/node:22-alpine")
	}
	if err := v.Err(); err != nil {
		return store.Runtime{}, err
	}
	return p.store.PutRuntime(rt)
}

// runtimeByImage finds the runtime whose image (or name) is ref.
func (p *Platform) runtimeByImage(ref string) (store.Runtime, bool, error) {
	rts, err := p.store.Runtimes()
	if err != nil {
		return store.Runtime{}, false, err
	}
	for _, rt := range rts {
		if rt.Image == ref || rt.Name == ref {
			return rt, true, nil
		}
	}
	return store.Runtime{}, false, nil
}
