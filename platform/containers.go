package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	EnsureShellImage(ctx context.Context) (string, error)
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
		Env: append(containerEnv(a), "ROSTI_TECH="+d.runtime.Name),
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
			code, err := p.containers.Exec(ctx, c.Name, spec)
			if errors.Is(err, rtm.ErrProgramNotFound) {
				if spec.Args[0] == "/bin/sh" {
					p.shellless.Store(a.ID, a.Image) // for the status to say so
				}
				return code, &ProgramNotFoundError{App: a.Name, Image: a.Image, Program: spec.Args[0]}
			}
			return code, err
		}
	}
	return -1, p.whyNotRunning(a)
}

// ErrProgramNotFound says a command cannot run in an app's container
// because its image lacks the program (often: it has no shell).
var ErrProgramNotFound = fmt.Errorf("no such program in the app's image: %w", store.ErrInvalid)

// ProgramNotFoundError is an ErrProgramNotFound that says which program,
// and what the user can do instead.
type ProgramNotFoundError struct{ App, Image, Program string }

func (e *ProgramNotFoundError) Error() string {
	return fmt.Sprintf("the image of app %s (%s) has no %s, so it runs no shell or commands; pick a runtime with a shell (the app's image field), or use sftp, scp, rsync or git push for files",
		e.App, e.Image, e.Program)
}

// Unwrap makes errors.Is(err, ErrProgramNotFound) hold.
func (e *ProgramNotFoundError) Unwrap() error { return ErrProgramNotFound }

// Sentinels of NotRunningError, for errors.Is.
var (
	// ErrAppNotRunning: no container of the app runs, whatever the reason.
	ErrAppNotRunning = errors.New("the app is not running")
	// ErrAppStopped: the app is stopped on purpose.
	ErrAppStopped = errors.New("the app is stopped")
)

// NotRunningError says an app has no running container to work in, and
// why: stopped, waiting for its image, failing to start, or starting.
type NotRunningError struct {
	App     string
	Reason  string
	Stopped bool
}

func (e *NotRunningError) Error() string { return "app " + e.App + " is not running: " + e.Reason }

// Is makes errors.Is(err, ErrAppNotRunning) hold, and ErrAppStopped for a
// stopped app.
func (e *NotRunningError) Is(target error) bool {
	return target == ErrAppNotRunning || target == ErrAppStopped && e.Stopped
}

// Unwrap makes it an ErrInvalid: the user's to fix or to wait for.
func (e *NotRunningError) Unwrap() error { return store.ErrInvalid }

// whyNotRunning says why app a has no running container, in the words its
// status uses.
func (p *Platform) whyNotRunning(a store.App) error {
	e := &NotRunningError{App: a.Name}
	switch {
	case !a.Enabled():
		e.Reason, e.Stopped = "it is stopped; start it first", true
	case p.pulls != nil && p.pulls.describe(a.Image) != "":
		e.Reason = "it waits for its image (" + p.pulls.describe(a.Image) + "); it starts once the image is there"
	case p.reconciler != nil && p.reconciler.lastError(a.ID) != "":
		e.Reason = "it does not start: " + p.reconciler.lastError(a.ID)
	default:
		e.Reason = "it is starting; try again in a moment"
	}
	return e
}

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
