package platform

import (
	"io"
	"log/slog"
	"time"

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
	AppsDomain   string // apps get <name>.<AppsDomain>
	SSHHost      string // host name users connect to for SSH deploys
	SSHPort      int
	Registration string // RegistrationOpen, RegistrationAdminOnly or RegistrationClosed
}

// Platform is rosti's use-case layer.
type Platform struct {
	cfg   Config
	store *store.Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Platform over st.
func New(cfg Config, st *store.Store, log *slog.Logger) *Platform {
	if cfg.Registration == "" {
		cfg.Registration = RegistrationOpen
	}
	return &Platform{cfg: cfg, store: st, log: log.With("component", "platform"), now: time.Now}
}

// Config returns the configuration the platform runs with.
func (p *Platform) Config() Config { return p.cfg }

// Revision grows with every change to the stored state; see store.Revision.
func (p *Platform) Revision() uint64 { return p.store.Revision() }

// Backup writes a consistent copy of the store while it stays in use.
func (p *Platform) Backup(w io.Writer) (int64, error) { return p.store.Backup(w) }

// Operator is the actor of the operator's own commands (`rosti admin`),
// which reach platform only through the root-owned admin socket.
func Operator() store.User {
	return store.User{Username: "operator", IsSuperuser: true, IsActive: true}
}
