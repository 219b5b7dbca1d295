package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
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
	Import(ctx context.Context, archive io.Reader, progress func(string)) ([]string, error)
	RemoveUnusedImages(ctx context.Context, inUse []string) ([]string, error)
}

// HealthCheck waits until addr answers (a TCP connect, or an HTTP GET of
// path when it is not empty) or ctx ends.
type HealthCheck func(ctx context.Context, addr, path string) error

// stopGrace is how long a process has between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

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
	fingerprint, _ := json.Marshal([]any{a.Image, rt.Command, plan.MemoryMB, plan.CPUMillis, plan.Pids, a.AppPort, a.Generation, a.UID, a.Release, configEnv(a.Config)})
	sum := sha256.Sum256(fingerprint)
	return desired{app: a, plan: plan, runtime: rt, hash: hex.EncodeToString(sum[:6])}, nil
}

func (d desired) spec(name, process, volume string) rtm.ContainerSpec {
	a := d.app
	return rtm.ContainerSpec{
		Name: name,
		Labels: map[string]string{
			rtm.LabelAppID: strconv.FormatInt(a.ID, 10), rtm.LabelAppName: a.Name, rtm.LabelCompany: strconv.FormatInt(a.CompanyID, 10),
			rtm.LabelProcess: process, rtm.LabelSpec: d.hash, rtm.LabelPort: strconv.Itoa(a.AppPort),
		},
		Image: a.Image, Command: d.runtime.Command, ProcessType: process,
		Env: containerEnv(a),
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
	return p.containers.List(ctx, map[string]string{rtm.LabelAppID: strconv.FormatInt(appID, 10)})
}

// execIn runs a process in one of the app's running web containers, as
// the app's uid.
func (p *Platform) execIn(ctx context.Context, a store.App, spec rtm.ExecSpec) (int, error) {
	cs, err := p.containersOf(ctx, a.ID)
	if err != nil {
		return -1, err
	}
	for _, c := range cs {
		if c.Status == rtm.StatusRunning && c.Labels[rtm.LabelProcess] == "web" {
			spec.UID, spec.GID = a.UID, a.UID
			return p.containers.Exec(ctx, c.Name, spec)
		}
	}
	return -1, ErrAppStopped
}

// ErrAppStopped says an app has no running container to work in.
var ErrAppStopped = fmt.Errorf("the app is not running; start it first: %w", store.ErrInvalid)

func (p *Platform) needRuntime() error {
	if p.containers == nil {
		return fmt.Errorf("this server runs no container runtime: %w", store.ErrInvalid)
	}
	return nil
}

// containerEnv is the environment the app's processes see: its config,
// then what rosti sets (config cannot name those; see checkConfigKey).
func containerEnv(a store.App) []string {
	return append(configEnv(a.Config),
		"PORT="+strconv.Itoa(a.AppPort), "HOME="+rtm.VolumePath, "ROSTI_APP="+a.Name)
}

// configEnv is config as KEY=VALUE, sorted by key.
func configEnv(config map[string]string) []string {
	env := make([]string, 0, len(config))
	for _, k := range slices.Sorted(maps.Keys(config)) {
		env = append(env, k+"="+config[k])
	}
	return env
}
