package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// DefaultSocket is where a system containerd listens.
const DefaultSocket = "/run/containerd/containerd.sock"

// ErrNotFound is returned when a named container does not exist.
var ErrNotFound = errors.New("container not found")

// ErrNotReady is returned by calls made before Serve connected.
var ErrNotReady = errors.New("runtime not connected to containerd")

// Config configures a Driver. Zero values get the defaults noted.
type Config struct {
	DataDir    string // rosti data dir (required)
	Socket     string // containerd socket; "": DefaultSocket if it answers, else a managed containerd
	Managed    bool   // with Socket "": always use a managed containerd, even if a system one answers
	Namespace  string // containerd namespace, default "rosti"
	InitBinary string // host path of the init binary, rosti or cmd/rosti-init (required)
	// OldInits is a glob of init binaries earlier rosti versions installed;
	// at start, those no container mounts any more are removed.
	OldInits    string
	Bridge      string // bridge name prefix, at most 11 bytes, default "rosti0"; group n uses <Bridge>-<n>
	Subnet      string // IPv4 range split into one /24 per group, default "10.213.0.0/16"
	CNIBinDir   string // default /usr/lib/cni
	Containerd  string // containerd binary for managed mode, default "containerd" from PATH
	LogMaxBytes int64  // rotate a container's log past this size, default 10 MiB
	LogKeep     int    // rotated log files kept, default 3
	Logger      *slog.Logger

	// HostPorts are the TCP ports of the host that containers may reach:
	// what rosti serves to apps on purpose. Every other port of the host,
	// and link-local addresses, are closed to them.
	HostPorts []int
}

// Driver drives containerd for rosti. Create it with New, run Serve, and
// wait for Ready before other calls (they also wait for it themselves).
type Driver struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}
	exits chan Exit

	client        *containerd.Client // set before ready is closed
	managed       *exec.Cmd          // the managed containerd child, nil when external
	adopted       int                // pid of a managed containerd of an earlier run, adopted
	managedExited chan struct{}

	nets *networks

	serveCtx     context.Context // cancelled by Shutdown, ends the event watch
	serveDone    chan struct{}   // closed when Serve returns; nil until it runs (guarded by mu)
	stopServing  context.CancelFunc
	shutdownOnce sync.Once
	shutdownErr  error

	mu    sync.Mutex // guards oom, pumps and serveDone
	oom   map[string]bool
	pumps map[string]*logPump // by container name: whose output is being copied into its log
}

// New validates cfg and returns a Driver that has not connected yet.
func New(cfg Config) (*Driver, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("runtime: DataDir is required")
	}
	if cfg.InitBinary == "" || !filepath.IsAbs(cfg.InitBinary) {
		return nil, fmt.Errorf("runtime: InitBinary must be an absolute path, got %q", cfg.InitBinary)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "rosti"
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "rosti0"
	}
	if cfg.Subnet == "" {
		cfg.Subnet = "10.213.0.0/16"
	}
	if cfg.CNIBinDir == "" {
		cfg.CNIBinDir = "/usr/lib/cni"
	}
	if cfg.Containerd == "" {
		cfg.Containerd = "containerd"
	}
	if cfg.LogMaxBytes <= 0 {
		cfg.LogMaxBytes = 10 << 20
	}
	if cfg.LogKeep <= 0 {
		cfg.LogKeep = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	nets, err := newNetworks(cfg)
	if err != nil {
		return nil, err
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	return &Driver{
		serveCtx:    serveCtx,
		stopServing: stopServing,
		cfg:         cfg,
		log:         cfg.Logger.With("component", "runtime"),
		ready:       make(chan struct{}),
		exits:       make(chan Exit, 256),
		nets:        nets,
		oom:         map[string]bool{},
		pumps:       map[string]*logPump{},
	}, nil
}

// Ready is closed once Serve has connected to containerd and set up the network.
func (d *Driver) Ready() <-chan struct{} { return d.ready }

// Serve connects to containerd, starting a managed one when needed, sets up
// the firewall chain and watches task events until ctx is done.
func (d *Driver) Serve(ctx context.Context) error {
	d.mu.Lock()
	if d.serveCtx.Err() != nil { // shut down before it started
		d.mu.Unlock()
		return nil
	}
	d.serveDone = make(chan struct{})
	d.mu.Unlock()
	defer close(d.serveDone)
	// Shutdown ends the setup too, so that nothing (a firewall rule, a
	// managed containerd) is made after it has cleaned up.
	ctx, cancelSetup := context.WithCancel(ctx)
	defer cancelSetup()
	context.AfterFunc(d.serveCtx, cancelSetup)
	for _, dir := range []string{d.logRoot(), d.netnsRoot(), d.etcDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	if err := d.writeEtcFiles(); err != nil {
		return err
	}
	socket, err := d.connectOrStart(ctx)
	if err != nil {
		return err
	}
	client, err := containerd.New(socket, containerd.WithDefaultNamespace(d.cfg.Namespace))
	if err != nil {
		return fmt.Errorf("runtime: connect %s: %w", socket, err)
	}
	d.client = client
	if ctx.Err() != nil {
		return nil
	}
	if err := d.nets.setupFirewall(); err != nil {
		return err
	}
	if err := d.repairNetwork(ctx); err != nil {
		// What is left holds an address or a rule, and stops no other app.
		d.log.Error("release what interrupted runs left", "err", err)
	}
	d.attachAllOutput(ctx)
	if err := d.removeOldInits(ctx); err != nil {
		d.log.Warn("remove init binaries of earlier versions", "err", err)
	}
	v, err := client.Version(ctx)
	if err != nil {
		return fmt.Errorf("runtime: containerd version: %w", err)
	}
	d.log.Info("connected to containerd", "socket", socket, "version", v.Version, "managed", d.managed != nil, "namespace", d.cfg.Namespace)
	close(d.ready)
	d.watchEvents(ctx)
	return nil
}

// Shutdown closes the client and stops a managed containerd. Tasks keep
// running: they belong to their shims, not to containerd or rosti.
func (d *Driver) Shutdown(ctx context.Context) error {
	d.shutdownOnce.Do(func() { d.shutdownErr = d.shutdown(ctx) })
	return d.shutdownErr
}

func (d *Driver) shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.stopServing()
	serving := d.serveDone
	d.mu.Unlock()
	if serving != nil {
		// Serve may be half-way through its setup: let it stop first.
		select {
		case <-serving:
		case <-ctx.Done():
		}
	}
	d.stopPumps()
	var errs []error
	select {
	case <-d.ready:
		errs = append(errs, d.client.Close())
	default:
	}
	if d.adopted != 0 {
		errs = append(errs, stopAdopted(ctx, d.adopted))
	}
	if d.managed != nil {
		_ = d.managed.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.managedExited:
		case <-ctx.Done():
			_ = d.managed.Process.Kill()
			<-d.managedExited
			errs = append(errs, fmt.Errorf("runtime: managed containerd killed: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// conn waits for Serve to connect and returns the client.
func (d *Driver) conn(ctx context.Context) (*containerd.Client, error) {
	select {
	case <-d.ready:
		return d.client, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	}
}

func (d *Driver) managedDir() string     { return filepath.Join(d.cfg.DataDir, "containerd") }
func (d *Driver) managedSocket() string  { return filepath.Join(d.managedDir(), "containerd.sock") }
func (d *Driver) managedPidFile() string { return filepath.Join(d.managedDir(), "containerd.pid") }
func (d *Driver) logRoot() string        { return filepath.Join(d.cfg.DataDir, "logs") }
func (d *Driver) netnsRoot() string      { return filepath.Join(d.cfg.DataDir, "netns") }
func (d *Driver) etcDir() string         { return filepath.Join(d.cfg.DataDir, "network", "etc") }

// LogDir is where the logs of the named container are written.
func (d *Driver) LogDir(name string) string { return filepath.Join(d.logRoot(), name) }

// connectOrStart returns the socket to use: the configured one, the system
// one if it answers, a managed containerd left running by an earlier rosti,
// or a freshly started managed containerd.
func (d *Driver) connectOrStart(ctx context.Context) (string, error) {
	if d.cfg.Socket != "" {
		if err := waitServing(ctx, d.cfg.Socket, 30*time.Second, nil); err != nil {
			return "", fmt.Errorf("runtime: containerd at %s: %w", d.cfg.Socket, err)
		}
		return d.cfg.Socket, nil
	}
	candidates := []string{DefaultSocket, d.managedSocket()}
	if d.cfg.Managed {
		candidates = candidates[1:]
	}
	for _, s := range candidates {
		if serving(ctx, s) {
			if s == d.managedSocket() {
				d.adoptManaged()
			}
			return s, nil
		}
	}
	if err := d.startManaged(); err != nil {
		return "", err
	}
	if err := waitServing(ctx, d.managedSocket(), 60*time.Second, d.managedExited); err != nil {
		_ = d.managed.Process.Kill()
		return "", fmt.Errorf("runtime: managed containerd: %w", err)
	}
	return d.managedSocket(), nil
}

func serving(ctx context.Context, socket string) bool {
	if _, err := os.Stat(socket); err != nil {
		return false
	}
	c, err := containerd.New(socket, containerd.WithTimeout(time.Second))
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ok, err := c.IsServing(ctx)
	return err == nil && ok
}

// waitServing polls socket until containerd answers, the timeout passes or
// exited is closed.
func waitServing(ctx context.Context, socket string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !serving(ctx, socket) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("no answer within %s", timeout)
		case <-exited:
			return errors.New("exited before serving")
		case <-tick.C:
		}
	}
	return nil
}

// startManaged runs containerd with root, state and sockets under
// DataDir/containerd. It gets its own process group so a terminal's ^C reaches
// rosti only, which then stops it in order.
func (d *Driver) startManaged() error {
	dir := d.managedDir()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.managedSocket(), d.managedSocket()+".ttrpc")
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(d.logRoot(), "containerd.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	cmd := exec.Command(d.cfg.Containerd, "--config", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("runtime: start managed containerd: %w", err)
	}
	logFile.Close()
	if err := os.WriteFile(d.managedPidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		d.log.Warn("record managed containerd pid", "err", err)
	}
	d.managed = cmd
	d.managedExited = make(chan struct{})
	go func() {
		err := cmd.Wait()
		d.log.Info("managed containerd exited", "err", err)
		close(d.managedExited)
	}()
	d.log.Info("started managed containerd", "pid", cmd.Process.Pid, "socket", d.managedSocket())
	return nil
}

// adoptManaged takes over a managed containerd that an earlier rosti
// started and could not stop (it was killed), so that this one stops it on
// exit as if it had started it.
func (d *Driver) adoptManaged() {
	raw, err := os.ReadFile(d.managedPidFile())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(d.managedDir(), "config.toml")) {
		return // that pid is gone or is another process now
	}
	d.adopted = pid
	d.log.Info("adopted managed containerd of an earlier run", "pid", pid)
}

// stopAdopted ends a containerd that is not our child: SIGTERM, then
// SIGKILL when ctx ends. It is gone once it has exited, zombie or not.
func stopAdopted(ctx context.Context, pid int) error {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || processState(stat) == 'Z' {
			return nil
		}
		select {
		case <-ctx.Done():
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("runtime: adopted containerd killed: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// processState reads the state letter of /proc/<pid>/stat, which follows
// the command name in parentheses.
func processState(stat []byte) byte {
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}
