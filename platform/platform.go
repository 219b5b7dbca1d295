package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/rosti-paas/rosti/internal/keyedmutex"
	"github.com/rosti-paas/rosti/store"
)

// Registration policies for new accounts.
const (
	RegistrationOpen      = "open"
	RegistrationAdminOnly = "admin_only"
	RegistrationClosed    = "closed"
)

// Config is what platform needs to know about the server it runs on.
type Config struct {
	DataDir      string // volumes/<app-id> live here
	AppsDomain   string // apps get <name>.<AppsDomain>
	SSHHost      string // host name users connect to for SSH deploys
	SSHPort      int
	Registration string // RegistrationOpen, RegistrationAdminOnly or RegistrationClosed
	// HealthTimeout is how long a new version of an app has to pass its
	// health check before a restart or deploy gives up on it; 0 is
	// DefaultHealthTimeout.
	HealthTimeout time.Duration
	// PanelDomain is where the proxy serves the API; no app may claim it
	// or a name under it.
	PanelDomain string
	// WildcardDomains lets apps claim "*.example.com" names; off, since a
	// wildcard takes every name below it from whoever else owns them.
	WildcardDomains bool
}

// DefaultHealthTimeout gives slow-starting apps (a JVM, a cold cache) time
// to come up before a restart is called failed.
const DefaultHealthTimeout = 60 * time.Second

// Deps are the parts platform drives.
type Deps struct {
	Store *store.Store
	// Containers runs apps; nil for a platform that only keeps descriptions
	// (the API's own tests), where actions and status answer a clear 400.
	Containers Containers
	// Health checks a new version; nil is WaitHealthy.
	Health HealthCheck
	// Router is the proxy; nil serves no traffic to apps.
	Router Router
	// Databases are the database servers of storages; nil answers a clear
	// 400 to making one. Gateways says where apps reach them; nil is
	// 127.0.0.1.
	Databases Databases
	Gateways  Gateways
	Log       *slog.Logger
	// Passwords checks account passwords against their bcrypt hashes;
	// rosti passes helper processes (internal/hashworker), nil checks
	// in-process.
	Passwords PasswordChecker
	// Disks give app volumes a file system of their plan's size; nil
	// keeps volumes as plain directories without a limit (a platform that
	// runs no containers, the unit tests).
	Disks Disks
}

// Platform is rosti's use-case layer.
type Platform struct {
	cfg        Config
	store      *store.Store
	containers Containers
	health     HealthCheck
	router     Router
	databases  Databases
	gateways   Gateways
	reconciler *reconciler
	pulls      *puller
	usage      *usageSampler
	probes     *statusCache          // what Status learns slowly: DNS, volume sizes
	deploys    keyedmutex.Map[int64] // an app's deploys, restarts and scaling take turns
	shellless  sync.Map              // app id -> the image an exec found without /bin/sh
	throttle   *loginThrottle
	passwords  PasswordChecker
	disks      Disks
	log        *slog.Logger
	now        func() time.Time
}

// New returns a Platform over its deps.
func New(cfg Config, deps Deps) *Platform {
	if cfg.Registration == "" {
		cfg.Registration = RegistrationOpen
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
	}
	if deps.Health == nil {
		deps.Health = WaitHealthy
	}
	p := &Platform{cfg: cfg, store: deps.Store, containers: deps.Containers, health: deps.Health, router: deps.Router,
		databases: deps.Databases, gateways: deps.Gateways, log: deps.Log.With("component", "platform"), now: time.Now, usage: newUsageSampler()}
	p.throttle = newLoginThrottle(p.now)
	p.probes = newStatusCache(p.now)
	p.passwords = deps.Passwords
	p.disks = deps.Disks
	if p.containers != nil {
		p.reconciler = newReconciler(p)
		p.pulls = newPuller(p)
	}
	return p
}

// Serve reconciles apps with their containers until ctx ends.
func (p *Platform) Serve(ctx context.Context) error {
	if p.reconciler == nil {
		<-ctx.Done()
		return nil
	}
	p.mountVolumes()
	go p.sampleUsage(ctx)
	return p.reconciler.serve(ctx)
}

// Shutdown stops the image pulls under way and marks their jobs; the
// containers keep running without rosti.
func (p *Platform) Shutdown(ctx context.Context) error {
	if p.pulls == nil {
		return nil
	}
	return p.pulls.shutdown(ctx)
}

// changed tells the reconciler an app's description changed.
func (p *Platform) changed(appID int64) {
	if p.reconciler != nil {
		p.reconciler.kick(appID)
	}
}

// applied reconciles an app and waits for the result, or for ctx.
func (p *Platform) applied(ctx context.Context, appID int64) error {
	if p.reconciler == nil {
		return nil
	}
	select {
	case err := <-p.reconciler.kick(appID):
		if errors.Is(err, errPulling) {
			return nil // it carries on when its image is there
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("still in progress: %w", ctx.Err())
	}
}

// Config returns the configuration the platform runs with.
func (p *Platform) Config() Config { return p.cfg }

// Revision grows with every change to the stored state; see store.Revision.
func (p *Platform) Revision() uint64 { return p.store.Revision() }

// Backup writes a consistent copy of the store while it stays in use.
func (p *Platform) Backup(_ context.Context, actor store.User, w io.Writer) (int64, error) {
	if err := requireSuperuser(actor); err != nil {
		return 0, err
	}
	return p.store.Backup(w)
}

// Operator is the actor of the operator's own commands (`rosti admin`),
// which reach platform only through the root-owned admin socket.
func Operator() store.User {
	return store.User{Username: "operator", IsSuperuser: true, IsActive: true}
}
