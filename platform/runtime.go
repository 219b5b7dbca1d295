package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Containers is what platform needs of the container runtime.
type Containers interface {
	Ready() <-chan struct{}
	Run(ctx context.Context, spec rtm.ContainerSpec) (rtm.Instance, error)
	Start(ctx context.Context, name string) (rtm.Instance, error)
	Stop(ctx context.Context, name string, grace time.Duration) error
	Remove(ctx context.Context, name string) error
	RemoveLogs(name string) error
	LogNames() ([]string, error)
	List(ctx context.Context, labels map[string]string) ([]rtm.Instance, error)
	Exits() <-chan rtm.Exit
	Exec(ctx context.Context, name string, spec rtm.ExecSpec) (int, error)
	Stats(ctx context.Context, name string) (rtm.Stats, error)
	Logs(ctx context.Context, name string, lines int, follow bool, w io.Writer) error
	Images(ctx context.Context) ([]string, error)
	Pull(ctx context.Context, ref string, progress func(rtm.PullProgress)) error
	EnsureStaticImage(ctx context.Context) (string, error)
	EnsureShellImage(ctx context.Context) (string, error)
	Import(ctx context.Context, archive io.Reader, progress func(string)) ([]string, error)
	RemoveUnusedImages(ctx context.Context, inUse []string) ([]string, error)
}

// HealthCheck waits until addr answers (a TCP connect, or an HTTP GET of
// path when it is not empty) or ctx ends.
type HealthCheck func(ctx context.Context, addr, path string) error

// Labels platform puts on an app's containers.
const (
	labelAppID   = "app.id"
	labelAppName = "app.name"
	labelCompany = "app.company"
	labelProcess = "app.process"
	labelSpec    = "app.spec"
	labelPort    = "app.port" // the port the container's app listens on
)

// stopGrace is how long a process has between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

func (p *Platform) volumeDir(a store.App) string {
	return filepath.Join(p.cfg.DataDir, "volumes", strconv.FormatInt(a.ID, 10))
}

// ensureVolume creates the app's volume, and its app/ directory, owned by
// its uid. The directory above the volumes is root's, so apps cannot see
// each other's volumes. Inside the volume the app may put symlinks where
// we look, so nothing there is followed: Lstat and Lchown only.
func (p *Platform) ensureVolume(a store.App) (string, error) {
	dir := p.volumeDir(a)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", err
	}
	for _, d := range []string{dir, filepath.Join(dir, "app")} {
		if err := os.Mkdir(d, 0o750); err != nil && !os.IsExist(err) {
			return "", err
		}
		fi, err := os.Lstat(d)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			continue // the app's own doing; its own business
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != a.UID {
			if err := os.Lchown(d, int(a.UID), int(a.UID)); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// desired is what should run for an app, and its fingerprint: containers
// whose fingerprint differs belong to an older version and get replaced.
type desired struct {
	app     store.App
	plan    store.Plan
	runtime store.Runtime
	hash    string
}

func (p *Platform) desiredFor(a store.App) (desired, error) {
	plan, err := p.store.Plan(a.PlanID)
	if err != nil {
		return desired{}, fmt.Errorf("plan of %s: %w", a.Name, err)
	}
	rt, _, err := p.runtimeByImage(a.Image)
	if err != nil {
		return desired{}, err
	}
	fingerprint, _ := json.Marshal([]any{a.Image, rt.Command, plan.MemoryMB, plan.CPUMillis, plan.Pids, a.AppPort, a.Generation, a.UID})
	sum := sha256.Sum256(fingerprint)
	return desired{app: a, plan: plan, runtime: rt, hash: hex.EncodeToString(sum[:6])}, nil
}

func (d desired) spec(name, process, volume string) rtm.ContainerSpec {
	a := d.app
	return rtm.ContainerSpec{
		Name: name,
		Labels: map[string]string{
			labelAppID: strconv.FormatInt(a.ID, 10), labelAppName: a.Name, labelCompany: strconv.FormatInt(a.CompanyID, 10),
			labelProcess: process, labelSpec: d.hash, labelPort: strconv.Itoa(a.AppPort),
		},
		Image: a.Image, Command: d.runtime.Command, ProcessType: process,
		Env: append(appEnv(a), "ROSTI_TECH="+d.runtime.Name),
		UID: a.UID, GID: a.UID, VolumeDir: volume,
		MemoryMB: d.plan.MemoryMB, CPUMillis: d.plan.CPUMillis, Pids: d.plan.Pids,
		Group: "company-" + strconv.FormatInt(a.CompanyID, 10),
	}
}

// processTypes lists an app's process types with their counts, web first.
func processTypes(a store.App) []string {
	types := make([]string, 0, len(a.Processes))
	for t := range a.Processes {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if (types[i] == "web") != (types[j] == "web") {
			return types[i] == "web"
		}
		return types[i] < types[j]
	})
	return types
}

// freeName is the lowest-numbered "<app>-<type>-<n>" not in use.
func freeName(app, process string, used map[string]bool) string {
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s-%s-%d", app, process, n)
		if !used[name] {
			used[name] = true
			return name
		}
	}
}

// containersOf lists an app's containers.
func (p *Platform) containersOf(ctx context.Context, appID int64) ([]rtm.Instance, error) {
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	return p.containers.List(ctx, map[string]string{labelAppID: strconv.FormatInt(appID, 10)})
}

// execIn runs a process in one of the app's running web containers, as
// the app's uid.
func (p *Platform) execIn(ctx context.Context, a store.App, spec rtm.ExecSpec) (int, error) {
	cs, err := p.containersOf(ctx, a.ID)
	if err != nil {
		return -1, err
	}
	for _, c := range cs {
		if c.Status == rtm.StatusRunning && c.Labels[labelProcess] == "web" {
			spec.UID, spec.GID = a.UID, a.UID
			return p.containers.Exec(ctx, c.Name, spec)
		}
	}
	return -1, ErrAppStopped
}

// ErrAppStopped says an app has no running container to work in.
var ErrAppStopped = fmt.Errorf("the app is not running; start it first: %w", store.ErrInvalid)

// ensureImage makes an app's image present: the built-in static and shell
// images are built locally, anything else is pulled in the background (errPulling).
func (p *Platform) ensureImage(ctx context.Context, a store.App) error {
	ref := a.Image
	switch ref {
	case StaticRuntimeImage:
		_, err := p.containers.EnsureStaticImage(ctx)
		return err
	case ShellRuntimeImage:
		_, err := p.containers.EnsureShellImage(ctx)
		return err
	}
	have, err := p.containers.Images(ctx)
	if err != nil {
		return err
	}
	for _, img := range have {
		if img == ref {
			p.pulls.succeeded(ref)
			return nil
		}
	}
	return p.pulls.forApp(a)
}

// ImportImage loads images from an OCI or docker archive for apps to use,
// and returns their names.
func (p *Platform) ImportImage(ctx context.Context, archive io.Reader, progress func(string)) ([]string, error) {
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	names, err := p.containers.Import(ctx, archive, progress)
	if err != nil {
		return nil, fmt.Errorf("import: %v: %w", err, store.ErrInvalid)
	}
	p.log.Info("images imported", "images", names)
	return names, nil
}

func (p *Platform) needRuntime() error {
	if p.containers == nil {
		return fmt.Errorf("this server runs no container runtime: %w", store.ErrInvalid)
	}
	return nil
}

// PullImage fetches an image from its registry.
func (p *Platform) PullImage(ctx context.Context, ref string) error {
	if err := p.needRuntime(); err != nil {
		return err
	}
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return FieldError("ref", "must be an image reference such as docker.io/library/node:22-alpine")
	}
	if err := p.pulls.pull(ctx, ref); err != nil {
		return fmt.Errorf("pull %s: %v: %w", ref, err, store.ErrInvalid)
	}
	return nil
}

// Images lists the images present.
func (p *Platform) Images(ctx context.Context) ([]string, error) {
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	return p.containers.Images(ctx)
}

// RemoveUnusedImages deletes images that neither an app nor a runtime of
// the catalogue refers to.
func (p *Platform) RemoveUnusedImages(ctx context.Context) ([]string, error) {
	if err := p.needRuntime(); err != nil {
		return nil, err
	}
	apps, err := p.store.Apps()
	if err != nil {
		return nil, err
	}
	rts, err := p.store.Runtimes()
	if err != nil {
		return nil, err
	}
	var inUse []string
	for _, a := range apps {
		inUse = append(inUse, a.Image)
	}
	for _, rt := range rts {
		inUse = append(inUse, rt.Image)
	}
	removed, err := p.containers.RemoveUnusedImages(ctx, inUse)
	if len(removed) > 0 {
		p.log.Info("unused images removed", "images", removed)
	}
	return removed, err
}

// appEnv is the environment the app's processes see.
func appEnv(a store.App) []string {
	return []string{"PORT=" + strconv.Itoa(a.AppPort), "HOME=" + rtm.VolumePath, "ROSTI_APP=" + a.Name}
}
