package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Container labels: the one vocabulary for what a container is. The
// driver sets the rosti.* ones on every container it creates; the app.*
// ones are its callers' (platform's), given in ContainerSpec.Labels, and
// name the app, process type and version a container runs. Their values
// never change between releases of rosti, because a restarted rosti adopts
// the containers it finds by them.
const (
	LabelAppID   = "app.id"
	LabelAppName = "app.name"
	LabelCompany = "app.company"
	LabelProcess = "app.process"
	LabelSpec    = "app.spec" // the fingerprint of what the container runs
	LabelPort    = "app.port" // the port the container's app listens on

	LabelManaged   = "rosti.managed"
	LabelGroup     = "rosti.group"
	LabelIP        = "rosti.ip"
	labelNetns     = "rosti.netns"
	labelStartedAt = "rosti.started-at"
	labelExitCode  = "rosti.exit-code"
	labelExitedAt  = "rosti.exited-at"
	labelOOM       = "rosti.oom-killed"
)

// Paths inside every container.
const (
	VolumePath = "/srv"
	InitPath   = "/rosti"
	// ToolsDir gets the init binary as rosti, supervisorctl and crontab
	// (it dispatches on its name), by bind mounts rather than files of the
	// built-in images: so they exist in every image, pulled ones included,
	// are always the running rosti's, and read-only. /usr/local/bin is on
	// the PATH of practically every image and empty in most.
	ToolsDir = "/usr/local/bin"
)

const runcRuntime = "io.containerd.runc.v2"

// shimGroupAnnotation makes the runc shim serve every container whose spec
// names the same group, as it does for the containers of a Kubernetes pod,
// instead of starting one shim (about 3 MB) per container. The driver
// groups by isolation group, a company: a crash of the shim, which would
// take the containers it serves down with it, stays within one company,
// and a company of many small apps pays for one shim rather than one each.
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// ContainerSpec is one process instance to run.
type ContainerSpec struct {
	Name        string            // "<app>-<type>-<n>"
	Labels      map[string]string // app id, release, process type...; keys starting "rosti." are the driver's
	Image       string            // a reference present in containerd (Pull, Import or EnsureStaticImage)
	Command     []string          // default command when the Procfile has no matching line; empty: the image's
	ProcessType string            // "web", "worker", ... (the Procfile line)
	Env         []string          // KEY=VALUE, PORT included
	UID, GID    uint32            // never 0
	VolumeDir   string            // host dir mounted read-write at /srv
	MemoryMB    int64             // hard limit; 0: none
	CPUMillis   int64             // CPU quota in millicores; 0: none
	Pids        int64             // pids limit; 0: none
	Group       string            // isolation group: different groups cannot reach each other
}

// Instance is what the driver knows about one container.
type Instance struct {
	Name      string
	Labels    map[string]string // the caller's labels, without the driver's own
	Group     string
	IP        string
	Status    string // running, stopped, created, unknown
	Pid       uint32
	ExitCode  uint32
	ExitedAt  time.Time
	OOMKilled bool
	StartedAt time.Time
}

// Instance statuses.
const (
	StatusRunning = "running"
	StatusStopped = "stopped"
	StatusCreated = "created"
	StatusUnknown = "unknown"
)

// validName says whether name is a container name: 1-128 letters, digits,
// '_', '.' and '-', starting with a letter or digit. A loop rather than a
// regexp, whose compiled form (50 KB) every process of the binary, the
// init of each container included, would build and keep at start.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func (spec ContainerSpec) validate() error {
	switch {
	case !validName(spec.Name):
		return fmt.Errorf("runtime: invalid container name %q", spec.Name)
	case spec.UID == 0 || spec.GID == 0:
		return fmt.Errorf("runtime: %s: refusing to run as uid/gid 0", spec.Name)
	case spec.Image == "":
		return fmt.Errorf("runtime: %s: no image", spec.Name)
	case !filepath.IsAbs(spec.VolumeDir):
		return fmt.Errorf("runtime: %s: volume dir %q is not absolute", spec.Name, spec.VolumeDir)
	}
	if fi, err := os.Stat(spec.VolumeDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("runtime: %s: volume dir %q is not a directory", spec.Name, spec.VolumeDir)
	}
	for k := range spec.Labels {
		if strings.HasPrefix(k, "rosti.") && k != LabelManaged {
			return fmt.Errorf("runtime: %s: label %q is reserved", spec.Name, k)
		}
	}
	return nil
}

// Run creates the container with its network and starts it. If the container
// exists already it is started when it is not running, and returned as is
// otherwise, so a caller adopting containers after a restart may call Run
// again safely.
func (d *Driver) Run(ctx context.Context, spec ContainerSpec) (Instance, error) {
	if err := spec.validate(); err != nil {
		return Instance{}, err
	}
	client, err := d.conn(ctx)
	if err != nil {
		return Instance{}, err
	}
	if inst, err := d.Inspect(ctx, spec.Name); err == nil {
		if inst.Status == StatusRunning {
			return inst, nil
		}
		return d.Start(ctx, spec.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return Instance{}, err
	}

	image, err := client.GetImage(ctx, spec.Image)
	if err != nil {
		return Instance{}, fmt.Errorf("runtime: %s: image %s: %w", spec.Name, spec.Image, err)
	}
	if err := ensureUnpacked(ctx, image); err != nil {
		return Instance{}, err
	}

	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	cleanupCtx := context.WithoutCancel(ctx)

	netnsPath := filepath.Join(d.netnsRoot(), spec.Name)
	// What a Run or Remove that died half way left under this name.
	if err := d.releaseName(ctx, spec.Name, netnsPath); err != nil {
		return Instance{}, err
	}
	if err := d.dropLeftoverSnapshot(ctx, spec.Name); err != nil {
		return Instance{}, err
	}
	if err := createNetns(netnsPath); err != nil {
		return Instance{}, fmt.Errorf("runtime: %w", err)
	}
	undo = append(undo, func() { _ = removeNetns(netnsPath) })
	ip, err := d.nets.setup(ctx, spec.Name, netnsPath, spec.Group)
	if err != nil {
		return Instance{}, err
	}
	undo = append(undo, func() { _ = d.releaseName(cleanupCtx, spec.Name, netnsPath) })

	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	labels[LabelGroup] = spec.Group
	labels[LabelIP] = ip
	labels[labelNetns] = netnsPath

	container, err := client.NewContainer(ctx, spec.Name,
		containerd.WithImage(image),
		containerd.WithNewSnapshot(spec.Name, image),
		// runc keeps its state under <data>/runc, not in the default
		// /run/containerd/runc/<namespace> that every containerd on the
		// host shares: there a system containerd's (or another rosti's)
		// container of the same name would clash with this one.
		containerd.WithRuntime(runcRuntime, &runcoptions.Options{Root: filepath.Join(d.cfg.DataDir, "runc")}),
		containerd.WithContainerLabels(labels),
		containerd.WithNewSpec(d.specOpts(image, spec, netnsPath)...),
	)
	if err != nil {
		return Instance{}, fmt.Errorf("runtime: create %s: %w", spec.Name, err)
	}
	undo = append(undo, func() { _ = container.Delete(cleanupCtx, containerd.WithSnapshotCleanup) })

	if err := d.startTask(ctx, container); err != nil {
		return Instance{}, err
	}
	undo = nil
	d.log.Info("container started", "name", spec.Name, "ip", ip, "image", spec.Image, "group", spec.Group)
	return d.Inspect(ctx, spec.Name)
}

// dropLeftoverSnapshot removes the root file system snapshot a Run killed
// between making it and making its container left under name; no
// container holds it, since Run is only asked for names without one.
func (d *Driver) dropLeftoverSnapshot(ctx context.Context, name string) error {
	err := d.client.SnapshotService(defaults.DefaultSnapshotter).Remove(ctx, name)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("runtime: remove the leftover snapshot of %s: %w", name, err)
	}
	return nil
}

func ensureUnpacked(ctx context.Context, image containerd.Image) error {
	ok, err := image.IsUnpacked(ctx, "")
	if err != nil {
		return fmt.Errorf("runtime: image %s: %w", image.Name(), err)
	}
	if !ok {
		if err := image.Unpack(ctx, ""); err != nil {
			return fmt.Errorf("runtime: unpack %s: %w", image.Name(), err)
		}
	}
	return nil
}

func (d *Driver) specOpts(image containerd.Image, spec ContainerSpec, netnsPath string) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithImageConfig(image),
		oci.WithEnv(spec.Env),
		wrapInInit(spec.ProcessType, spec.Command),
		oci.WithHostname(spec.Name),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath}),
		oci.WithMounts([]specs.Mount{
			{Destination: VolumePath, Type: "bind", Source: spec.VolumeDir, Options: []string{"rbind", "rw", "nosuid", "nodev"}},
			{Destination: InitPath, Type: "bind", Source: d.cfg.InitBinary, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			{Destination: ToolsDir + "/rosti", Type: "bind", Source: d.cfg.InitBinary, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			{Destination: ToolsDir + "/supervisorctl", Type: "bind", Source: d.cfg.InitBinary, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			{Destination: ToolsDir + "/crontab", Type: "bind", Source: d.cfg.InitBinary, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(d.etcDir(), "resolv.conf"), Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
			{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(d.etcDir(), "hosts"), Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
		}),
		oci.WithMounts(scratchMounts(spec.MemoryMB)),
		asUser(spec.UID, spec.GID),
		oci.WithNoNewPrivileges,
		withoutCapabilities,
		seccomp.WithDefaultProfile(),
	}
	if spec.Group != "" {
		opts = append(opts, oci.WithAnnotations(map[string]string{shimGroupAnnotation: spec.Group}))
	}
	if spec.MemoryMB > 0 {
		limit := spec.MemoryMB << 20
		opts = append(opts, oci.WithMemoryLimit(uint64(limit)))
		if swapAccounted() {
			opts = append(opts, oci.WithMemorySwap(limit))
		}
	}
	if spec.CPUMillis > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(spec.CPUMillis*period/1000, period))
	}
	if spec.Pids > 0 {
		opts = append(opts, oci.WithPidsLimit(spec.Pids))
	}
	return opts
}

// swapAccounted says whether a swap limit can be set: always on cgroup v2,
// only with memsw accounting on v1.
func swapAccounted() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// wrapInInit makes `rosti init` PID 1 with the fallback command (the given
// one, else the image's entrypoint and cmd) after "--"; in web containers
// it also runs the app's supervisor programs and cron jobs.
func wrapInInit(processType string, command []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		fallback := s.Process.Args
		if len(command) > 0 {
			fallback = command
		}
		if processType == "" {
			processType = "web"
		}
		args := []string{InitPath, "init", "--type", processType}
		if processType == "web" {
			// Supervisor programs and cron jobs are the app's, not each
			// process type's: they run beside its web process.
			args = append(args, "--programs")
		}
		s.Process.Args = append(append(args, "--"), fallback...)
		return nil
	}
}

func asUser(uid, gid uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.User = specs.User{UID: uid, GID: gid}
		return nil
	}
}

func withoutCapabilities(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Process.Capabilities = &specs.LinuxCapabilities{}
	return nil
}

// startTask replaces a finished task by a new one and starts it.
func (d *Driver) startTask(ctx context.Context, container containerd.Container) error {
	name := container.ID()
	if old, err := container.Task(ctx, nil); err == nil {
		if _, err := old.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("runtime: delete old task of %s: %w", name, err)
		}
	}
	d.finishOutput(name)
	output, creator, err := d.newTaskOutput(name)
	if err != nil {
		return err
	}
	task, err := container.NewTask(ctx, creator)
	if errdefs.IsAlreadyExists(err) {
		// A shim of this name outlived its task's record: a rosti killed
		// while containerd was creating or deleting the task leaves one.
		d.dropStaleTask(ctx, name)
		task, err = container.NewTask(ctx, creator)
	} else if err != nil && d.dropStaleBundle(name, err) {
		task, err = container.NewTask(ctx, creator)
	}
	if err != nil {
		output.stop()
		return fmt.Errorf("runtime: create task %s: %w", name, err)
	}
	output.shimAttached()
	d.setOOM(name, false)
	if _, err := container.SetLabels(ctx, map[string]string{
		labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano),
		labelExitCode:  "",
		labelExitedAt:  "",
		labelOOM:       "",
	}); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return fmt.Errorf("runtime: label %s: %w", name, err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return fmt.Errorf("runtime: start %s: %w", name, err)
	}
	return nil
}

// Start starts the task of an existing container again, e.g. after it exited.
// A running container is left alone.
func (d *Driver) Start(ctx context.Context, name string) (Instance, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return Instance{}, err
	}
	container, err := d.load(ctx, client, name)
	if err != nil {
		return Instance{}, err
	}
	if task, err := container.Task(ctx, nil); err == nil {
		if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
			return d.Inspect(ctx, name)
		}
	}
	if err := d.startTask(ctx, container); err != nil {
		return Instance{}, err
	}
	return d.Inspect(ctx, name)
}

// Stop sends SIGTERM to the container's init (which passes it to the app)
// and SIGKILL when the task has not exited after grace. The container, its
// network and its IP stay; Start runs it again.
func (d *Driver) Stop(ctx context.Context, name string, grace time.Duration) error {
	client, err := d.conn(ctx)
	if err != nil {
		return err
	}
	container, err := d.load(ctx, client, name)
	if err != nil {
		return err
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("runtime: stop %s: %w", name, err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("runtime: stop %s: %w", name, err)
	}
	if st, err := task.Status(ctx); err == nil && st.Status == containerd.Stopped {
		return nil
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("runtime: stop %s: %w", name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("runtime: kill %s: %w", name, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove kills the task and deletes the container, its snapshot, its network
// namespace and its IP allocation. Logs stay until RemoveLogs. Removing a
// container that does not exist is not an error.
func (d *Driver) Remove(ctx context.Context, name string) error {
	client, err := d.conn(ctx)
	if err != nil {
		return err
	}
	container, err := d.load(ctx, client, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	labels, err := container.Labels(ctx)
	if err != nil {
		return fmt.Errorf("runtime: remove %s: %w", name, err)
	}
	if task, err := container.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("runtime: remove task %s: %w", name, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("runtime: remove %s: %w", name, err)
	}
	if netnsPath := labels[labelNetns]; netnsPath != "" {
		// Whatever the network still holds: a Remove cut off half way may
		// have released part of it already.
		if err := d.releaseName(ctx, name, netnsPath); err != nil {
			return err
		}
	}
	if err := container.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("runtime: remove %s: %w", name, err)
	}
	d.finishOutput(name) // so that RemoveLogs after Remove finds nothing still writing
	if err := d.removeTaskOutput(name); err != nil {
		return err
	}
	d.setOOM(name, false)
	d.log.Info("container removed", "name", name)
	return nil
}

// RemoveLogs deletes the log files of the named container.
func (d *Driver) RemoveLogs(name string) error {
	if !validName(name) {
		return fmt.Errorf("runtime: invalid container name %q", name)
	}
	if err := os.RemoveAll(d.LogDir(name)); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}

func (d *Driver) load(ctx context.Context, client *containerd.Client, name string) (containerd.Container, error) {
	container, err := client.LoadContainer(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	} else if err != nil {
		return nil, fmt.Errorf("runtime: load %s: %w", name, err)
	}
	return container, nil
}

// List returns the driver's containers whose labels include all of labelFilter.
func (d *Driver) List(ctx context.Context, labelFilter map[string]string) ([]Instance, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	filter := fmt.Sprintf("labels.%q==%q", LabelManaged, "true")
	keys := make([]string, 0, len(labelFilter))
	for k := range labelFilter {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filter += fmt.Sprintf(",labels.%q==%q", k, labelFilter[k])
	}
	list, err := client.Containers(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("runtime: list: %w", err)
	}
	out := make([]Instance, 0, len(list))
	for _, c := range list {
		inst, err := d.inspect(ctx, c)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns the state of the named container, ErrNotFound if missing.
func (d *Driver) Inspect(ctx context.Context, name string) (Instance, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return Instance{}, err
	}
	container, err := d.load(ctx, client, name)
	if err != nil {
		return Instance{}, err
	}
	return d.inspect(ctx, container)
}

func (d *Driver) inspect(ctx context.Context, container containerd.Container) (Instance, error) {
	name := container.ID()
	labels, err := container.Labels(ctx)
	if errdefs.IsNotFound(err) {
		return Instance{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	} else if err != nil {
		return Instance{}, fmt.Errorf("runtime: inspect %s: %w", name, err)
	}
	inst := Instance{Name: name, Labels: map[string]string{}, Group: labels[LabelGroup], IP: labels[LabelIP], Status: StatusCreated}
	for k, v := range labels {
		if !strings.HasPrefix(k, "rosti.") {
			inst.Labels[k] = v
		}
	}
	inst.StartedAt, _ = time.Parse(time.RFC3339Nano, labels[labelStartedAt])
	inst.ExitedAt, _ = time.Parse(time.RFC3339Nano, labels[labelExitedAt])
	if code, err := strconv.ParseUint(labels[labelExitCode], 10, 32); err == nil {
		inst.ExitCode = uint32(code)
	}
	oomMarked := labels[labelOOM] == "true" || d.isOOM(name)
	result := func() (Instance, error) {
		inst.OOMKilled = inst.Status != StatusRunning && endedByOOM(oomMarked, inst.ExitCode)
		return inst, nil
	}
	if !inst.StartedAt.IsZero() {
		inst.Status = StatusStopped
	}

	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return result()
	} else if err != nil {
		inst.Status = StatusUnknown
		return result()
	}
	st, err := task.Status(ctx)
	if err != nil {
		inst.Status = StatusUnknown
		return result()
	}
	inst.Pid = task.Pid()
	switch st.Status {
	case containerd.Running, containerd.Pausing, containerd.Paused:
		inst.Status = StatusRunning
	case containerd.Created:
		inst.Status = StatusCreated
	case containerd.Stopped:
		inst.Status = StatusStopped
		inst.Pid = 0
		inst.ExitCode = st.ExitStatus
		if !st.ExitTime.IsZero() {
			inst.ExitedAt = st.ExitTime
		}
	default:
		inst.Status = StatusUnknown
	}
	return result()
}

// endedByOOM says whether a run that ended with code was the OOM killer's
// doing, given whether its container's cgroup is marked for an OOM kill.
// The mark is set as well when the kernel killed another process in it
// (an SSH command, which is told so itself); a run the OOM killer ended
// ends with its SIGKILL.
func endedByOOM(marked bool, code uint32) bool { return marked && code == 128+9 }

func (d *Driver) setOOM(name string, oom bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if oom {
		d.oom[name] = true
	} else {
		delete(d.oom, name)
	}
}

func (d *Driver) isOOM(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.oom[name]
}
