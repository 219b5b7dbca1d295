package cmd

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rosti-paas/rosti/dbserver"
	"github.com/rosti-paas/rosti/internal/connlimit"
	"github.com/rosti-paas/rosti/internal/diskimage"
	"github.com/rosti-paas/rosti/internal/hashworker"
	"github.com/rosti-paas/rosti/internal/initbin"
	"github.com/rosti-paas/rosti/internal/logbuf"
	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/proxy"
	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/server"
	"github.com/rosti-paas/rosti/sshd"
	"github.com/rosti-paas/rosti/store"
)

// serveConfig is everything `rosti serve` is told.
type serveConfig struct {
	DataDir       string
	APIAddr       string
	HTTPAddr      string
	HTTPSAddr     string
	SSHAddr       string
	SSHHost       string
	AppsDomain    string
	Registration  string
	LogLevel      string
	Containerd    string
	Bridge        string
	Subnet        string
	ACMEEmail     string
	ACMECA        string
	ACMECARoot    string
	PanelDomain   string
	HealthTimeout time.Duration
	Procs         int
	PostgresDSN   string
	MariaDBDSN    string
	PostgresPort  int
	MariaDBPort   int
	Wildcards     bool

	// ShutdownBudget is how long sessions in flight (SSH uploads, git
	// pushes and their deploys, API requests) may take to finish on
	// SIGTERM before they are cut.
	ShutdownBudget time.Duration
	// SparseDisks makes the apps' disk images sparse: overcommitted,
	// taking the host's disk only as apps write (internal/diskimage).
	SparseDisks bool
}

// Paths inside the data dir.
func (c serveConfig) storePath() string   { return filepath.Join(c.DataDir, "rosti.db") }
func (c serveConfig) adminSocket() string { return filepath.Join(c.DataDir, "admin.sock") }
func (c serveConfig) hostKeyPath() string { return filepath.Join(c.DataDir, "ssh_host_ed25519_key") }

// sandboxCgroup is the cgroup of the SSH sandbox's app cgroups, named after
// the data dir so that rostis on one host never share one.
func (c serveConfig) sandboxCgroup() string {
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		dir = c.DataDir
	}
	sum := sha256.Sum256([]byte(dir))
	return "rosti-sandbox-" + hex.EncodeToString(sum[:6])
}

func newServeCmd() *cobra.Command {
	host, _ := os.Hostname()
	cfg := serveConfig{
		DataDir: "/var/lib/rosti", APIAddr: ":8080", HTTPAddr: ":80", HTTPSAddr: ":443", SSHAddr: ":2222",
		SSHHost: host, AppsDomain: "localhost", Registration: platform.RegistrationOpen, LogLevel: "info",
		Bridge: "rosti0", Subnet: "10.213.0.0/16", HealthTimeout: platform.DefaultHealthTimeout,
		ShutdownBudget: 30 * time.Second,
	}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the rosti server",
		Long: `Run the rosti server: the REST API, and (as they are enabled) the container
runtime, the HTTP(S) proxy and the SSH gateway.

On first start it creates the data dir, seeds the default plans and runtimes,
and creates an account "admin" whose password is printed once.
The operator's commands (rosti admin ...) talk to it through the socket
<data>/admin.sock.` + envNote,
		Args:    cobra.NoArgs,
		PreRunE: func(c *cobra.Command, _ []string) error { return bindEnv(c) },
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// A second signal stops rosti at once, drain or not.
			context.AfterFunc(ctx, stop)
			return runServe(ctx, cfg, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (store, keys, volumes, logs)")
	f.StringVar(&cfg.APIAddr, "api", cfg.APIAddr, "address of the REST API and web UI")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "address of the HTTP proxy to apps (and ACME HTTP-01 challenges)")
	f.StringVar(&cfg.HTTPSAddr, "https", cfg.HTTPSAddr, "address of the HTTPS proxy to apps; empty serves no HTTPS")
	f.StringVar(&cfg.ACMEEmail, "acme-email", cfg.ACMEEmail, "contact e-mail for the ACME account of apps in mode https+le")
	f.StringVar(&cfg.ACMECA, "acme-ca", cfg.ACMECA, "ACME directory URL; empty is Let's Encrypt")
	f.StringVar(&cfg.ACMECARoot, "acme-ca-root", cfg.ACMECARoot, "PEM file of the CA that signs the ACME directory's own HTTPS certificate, for a private ACME CA")
	f.StringVar(&cfg.PanelDomain, "panel-domain", cfg.PanelDomain, "also serve the API and web UI through the proxy at this host name, with a certificate like an app in https+le")
	f.StringVar(&cfg.SSHAddr, "ssh", cfg.SSHAddr, "address of the SSH gateway: shell, sftp, scp, rsync and git push to apps")
	f.StringVar(&cfg.SSHHost, "ssh-host", cfg.SSHHost, "host name shown to users in their apps' ssh_access")
	f.StringVar(&cfg.AppsDomain, "apps-domain", cfg.AppsDomain, "apps are served at <app>.<apps-domain>")
	f.StringVar(&cfg.Registration, "registration", cfg.Registration, fmt.Sprintf("who may create accounts: %s, %s or %s",
		platform.RegistrationOpen, platform.RegistrationAdminOnly, platform.RegistrationClosed))
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.Containerd, "containerd", cfg.Containerd, "containerd socket to use; empty: the system's if one runs, else rosti starts its own under <data>/containerd")
	f.StringVar(&cfg.Bridge, "bridge", cfg.Bridge, "name prefix of the CNI bridges apps are attached to (one per company)")
	f.IntVar(&cfg.Procs, "procs", cfg.Procs, "threads running Go code (GOMAXPROCS); 0: half the CPUs, leaving the rest to apps, unless GOMAXPROCS is set")
	f.DurationVar(&cfg.HealthTimeout, "health-timeout", cfg.HealthTimeout, "how long a new version of an app has to pass its health check on a restart or deploy; past it the old version keeps serving")
	f.BoolVar(&cfg.SparseDisks, "sparse-disks", cfg.SparseDisks, "make apps' disks sparse: they take the host's disk as apps write, so plans may promise more than the host has (the default allocates each app's disk in full when it is made, so no tenant can fill the disk rosti needs)")
	f.DurationVar(&cfg.ShutdownBudget, "shutdown-budget", cfg.ShutdownBudget, "how long, on SIGTERM, SSH sessions (uploads, git pushes and their deploys) and API requests in flight may take to finish before they are cut; keep it below systemd's TimeoutStopSec")
	f.BoolVar(&cfg.Wildcards, "wildcard-domains", cfg.Wildcards, "let apps claim wildcard domains (*.example.com), which take every name below them")
	f.StringVar(&cfg.Subnet, "subnet", cfg.Subnet, "IPv4 range for app containers, split into one /24 per company")
	f.StringVar(&cfg.PostgresDSN, "postgres-dsn", cfg.PostgresDSN, "admin DSN of an existing PostgreSQL for storages (postgres://admin:pw@host:5432/postgres); empty: rosti runs its own under <data>/storages")
	f.StringVar(&cfg.MariaDBDSN, "mariadb-dsn", cfg.MariaDBDSN, "admin DSN of an existing MariaDB for storages (admin:pw@tcp(host:3306)/); empty: rosti runs its own under <data>/storages")
	f.IntVar(&cfg.PostgresPort, "postgres-port", cfg.PostgresPort, "port of rosti's own PostgreSQL, fixed on its first start; 0: 5432 when free, else any free port")
	f.IntVar(&cfg.MariaDBPort, "mariadb-port", cfg.MariaDBPort, "port of rosti's own MariaDB, fixed on its first start; 0: 3306 when free, else any free port")
	return c
}

func (c serveConfig) validate() error {
	switch c.Registration {
	case platform.RegistrationOpen, platform.RegistrationAdminOnly, platform.RegistrationClosed:
	default:
		return fmt.Errorf("--registration %q: must be open, admin_only or closed", c.Registration)
	}
	if c.AppsDomain == "" || strings.ContainsAny(c.AppsDomain, " /:") {
		return fmt.Errorf("--apps-domain %q: must be a host name", c.AppsDomain)
	}
	if c.Procs < 0 {
		return fmt.Errorf("--procs %d: must be 0 (automatic) or more", c.Procs)
	}
	for flag, port := range map[string]int{"--postgres-port": c.PostgresPort, "--mariadb-port": c.MariaDBPort} {
		if port < 0 || port > 65535 {
			return fmt.Errorf("%s %d: must be a port (1-65535), or 0 to choose one", flag, port)
		}
	}
	if c.HealthTimeout <= 0 {
		return fmt.Errorf("--health-timeout %s: must be positive, like 60s", c.HealthTimeout)
	}
	if c.ShutdownBudget <= 0 {
		return fmt.Errorf("--shutdown-budget %s: must be positive, like 30s", c.ShutdownBudget)
	}
	return nil
}

func parseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return l, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return l, nil
}

// runServe wires every part of rosti and runs them until ctx ends, then
// shuts them down in reverse order and closes the store last.
func runServe(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	switch {
	case cfg.Procs > 0:
		goruntime.GOMAXPROCS(cfg.Procs)
	case os.Getenv("GOMAXPROCS") == "":
		goruntime.GOMAXPROCS(defaultProcs(goruntime.NumCPU()))
	}
	public, apiConns, err := connLimits(log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(cfg.storePath())
	if err != nil {
		return err
	}
	defer st.Close()

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the rosti binary: %w", err)
	}
	initDir := filepath.Join(cfg.DataDir, "bin")
	initBinary, err := initbin.Install(initDir)
	if err != nil {
		return err
	}
	if initBinary == "" { // a build without its own init binary: rosti is the init
		initBinary = self
	}
	containers, err := rtm.New(rtm.Config{
		DataDir: cfg.DataDir, Socket: cfg.Containerd, InitBinary: initBinary, OldInits: initbin.Installed(initDir), Bridge: cfg.Bridge, Subnet: cfg.Subnet, Logger: log,
		HostPorts: cfg.hostPorts(),
	})
	if err != nil {
		return err
	}
	// One line per proxied request, at level info: batched, written out
	// off the request's path.
	accessOut := logbuf.New(stderr, 100*time.Millisecond)
	var accessLog io.Writer
	if level <= slog.LevelInfo {
		accessLog = accessOut
	}
	acmeRoots, err := loadRoots(cfg.ACMECARoot)
	if err != nil {
		return err
	}
	// Password checks run in niced helper processes, beside the proxy
	// rather than on its threads.
	passwords := hashworker.New(self, []string{"hash-worker"}, max(1, goruntime.NumCPU()/2), log)
	defer passwords.Close()
	front, err := proxy.New(proxy.Config{
		HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr, DataDir: cfg.DataDir, ACMEEmail: cfg.ACMEEmail, ACMECA: cfg.ACMECA, ACMERoots: acmeRoots,
		AccessLog: accessLog, Logger: log, Listen: public.Listen,
	})
	if err != nil {
		return err
	}
	databases, err := dbserver.New(dbserver.Config{
		DataDir: cfg.DataDir, AppsSubnet: cfg.Subnet, PostgresDSN: cfg.PostgresDSN, MariaDBDSN: cfg.MariaDBDSN,
		PostgresPort: cfg.PostgresPort, MariaDBPort: cfg.MariaDBPort, Logger: log,
	})
	if err != nil {
		return err
	}
	plat := platform.New(platform.Config{
		DataDir: cfg.DataDir, AppsDomain: cfg.AppsDomain, SSHHost: cfg.SSHHost, SSHPort: portOf(cfg.SSHAddr), Registration: cfg.Registration,
		HealthTimeout: cfg.HealthTimeout, PanelDomain: cfg.PanelDomain, WildcardDomains: cfg.Wildcards,
	}, platform.Deps{Store: st, Containers: containers, Router: front,
		Databases: databases, Gateways: containers, Log: log, Passwords: passwords, Disks: diskimage.New(diskimage.Config{Sparse: cfg.SparseDisks})})
	if err := plat.SeedCatalog(); err != nil {
		return err
	}
	if err := plat.FailInterruptedJobs(); err != nil {
		return err
	}
	plat.WarnUsernameClashes()
	if err := plat.RemoveOrphanedFiles(); err != nil {
		log.Warn("remove the files of deleted apps", "err", err)
	}
	if password, created, err := plat.Bootstrap(); err != nil {
		return err
	} else if created {
		fmt.Fprintf(stdout, "rosti: created the admin account; this password is shown only once.\n  username: %s\n  password: %s\n", platform.AdminUsername, password)
	}

	// The host key is made on the first start only: users' known_hosts
	// must keep matching across restarts.
	if err := sshd.EnsureHostKey(cfg.hostKeyPath()); err != nil {
		return err
	}
	gateway, err := sshd.New(sshd.Config{Addr: cfg.SSHAddr, HostKeyPath: cfg.hostKeyPath(), SandboxBinary: self, SandboxCgroup: cfg.sandboxCgroup(), Logger: log, Listen: public.Listen}, plat.SSH())
	if err != nil {
		return err
	}
	api := server.New(server.Config{Addr: cfg.APIAddr, AdminSocket: cfg.adminSocket(), Version: version, Listen: apiConns.Listen}, plat, log)
	if cfg.PanelDomain != "" {
		front.SetPanel([]string{cfg.PanelDomain}, server.Handler(plat, version, log), cfg.HTTPSAddr != "")
	}
	// Shut down last-first: the API and the gateway stop taking work (at
	// once, and drain side by side) before the platform and containers
	// they drive, and the access log flushes after the proxy drained.
	return runParts(ctx, log, cfg.ShutdownBudget, accessOut, containers, databases, front, plat, together{gateway, api})
}

// part is the shape of every long-running piece of rosti.
type part interface {
	Serve(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// together is parts that serve side by side and shut down at once.
type together []part

// Serve serves every part until one of them ends.
func (t together) Serve(ctx context.Context) error {
	errc := make(chan error, len(t))
	for _, p := range t {
		go func() { errc <- p.Serve(ctx) }()
	}
	return <-errc
}

func (t together) Shutdown(ctx context.Context) error {
	errs := make([]error, len(t))
	var wg sync.WaitGroup
	for i, p := range t {
		wg.Go(func() { errs[i] = p.Shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// minPartStop is the time each part has to stop even when the parts
// before it spent the whole shutdown budget draining.
const minPartStop = 5 * time.Second

// runParts serves every part until ctx ends or one fails, then shuts them
// down last-started first, within budget (and minPartStop each at least).
// Each part serves until its own turn to stop, so that the parts shut down
// later keep working for those draining first: a deploy the gateway lets
// finish still has the platform, the proxy and containerd.
func runParts(ctx context.Context, log *slog.Logger, budget time.Duration, parts ...part) error {
	errc := make(chan error, len(parts))
	stops := make([]context.CancelFunc, len(parts))
	for i, p := range parts {
		partCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		defer stop()
		stops[i] = stop
		go func() { errc <- p.Serve(partCtx) }()
	}
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
	}
	log.Info("shutting down", "budget", budget)
	deadline := time.Now().Add(budget)
	for i := len(parts) - 1; i >= 0; i-- {
		shutdownCtx, done := context.WithDeadline(context.Background(), later(deadline, time.Now().Add(minPartStop)))
		if err := parts[i].Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("shutdown", "err", err)
		}
		done()
		stops[i]()
	}
	return failed
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// hostPorts are the ports of rosti's own listeners, which apps may reach
// on the host as anyone can (an app calling another through the proxy, or
// the API); every other host port is closed to containers.
func (c serveConfig) hostPorts() []int {
	var ports []int
	for _, addr := range []string{c.HTTPAddr, c.HTTPSAddr, c.SSHAddr, c.APIAddr} {
		if port := portOf(addr); port > 0 {
			ports = append(ports, port)
		}
	}
	return ports
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	var port int
	if i >= 0 {
		fmt.Sscanf(addr[i+1:], "%d", &port)
	}
	return port
}

// loadRoots reads a PEM bundle into a pool; no file means the system's.
func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// connLimits raises the open files limit and shares it out: the proxy and
// the SSH gateway share one budget, the API has its own, and a reserve
// stays for the store, logs, containerd and the admin socket, so that no
// flood of connections leaves rosti without file descriptors.
func connLimits(log *slog.Logger) (public, api *connlimit.Limiter, err error) {
	files, err := connlimit.RaiseFileLimit()
	if err != nil {
		return nil, nil, err
	}
	b := connlimit.BudgetsFor(files)
	log.Info("connection limits", "open_files", files, "public", b.Public, "public_per_source", b.PublicPerSource,
		"api", b.API, "api_per_source", b.APIPerSource, "reserved", b.Reserved)
	public = connlimit.New(connlimit.Config{Name: "public", MaxConns: b.Public, PerSource: b.PublicPerSource, Logger: log})
	api = connlimit.New(connlimit.Config{Name: "api", MaxConns: b.API, PerSource: b.APIPerSource, Logger: log})
	return public, api, nil
}
