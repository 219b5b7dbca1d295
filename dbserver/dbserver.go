package dbserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"
)

// Database types, as the API names them.
const (
	Postgres = "pgsql"
	MariaDB  = "mariadb"
)

// ErrUnknownType is returned for a database type other than Postgres and MariaDB.
var ErrUnknownType = errors.New("unknown database type")

// namePattern is what database and user names must look like: they are
// written into SQL statements as identifiers, so nothing else may pass.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ValidPassword says what is wrong with a password for a database user, or
// "" when there is nothing. Passwords are printable ASCII so that every
// client and shell passes them on unchanged.
func ValidPassword(password string, minLength int) string {
	if len(password) < minLength {
		return fmt.Sprintf("must be at least %d characters", minLength)
	}
	if len(password) > 128 {
		return "must be at most 128 characters"
	}
	for _, c := range []byte(password) {
		if c < 0x20 || c > 0x7e {
			return "may contain only printable ASCII characters (letters, digits, spaces and punctuation)"
		}
	}
	return ""
}

// Config configures a Manager. Zero values get the defaults noted.
type Config struct {
	DataDir    string // rosti's data dir; managed servers live in <DataDir>/storages/<type> (required)
	AppsSubnet string // IPv4 range apps connect from, let in by the firewall (required for managed servers)
	// PostgresDSN and MariaDBDSN name existing servers by an admin account
	// ("postgres://admin:pw@db.example:5432/postgres",
	// "admin:pw@tcp(db.example:3306)/"); empty runs a managed one.
	PostgresDSN, MariaDBDSN string
	// PostgresPort and MariaDBPort are the ports of managed servers, chosen
	// on their first start and kept; 0 is the standard port when it is
	// free, else any free port.
	PostgresPort, MariaDBPort int
	// StartTimeout bounds the wait for a managed server to answer; default 60s.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Manager provisions databases in their servers. Create it with New, run
// Serve; its other calls start a managed server when needed.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	ctx     context.Context // supervision of managed servers; ends with Shutdown
	stop    context.CancelFunc
	servers map[string]*server
}

// server is one database server: an engine speaking its SQL, and the
// process behind it when rosti runs it.
type server struct {
	engine  engine
	managed *managed // nil for an operator's server
}

// engine is the SQL of one kind of server, spoken over an admin connection.
type engine interface {
	ping(ctx context.Context) error
	create(ctx context.Context, name, password string, connLimit int) error
	setPassword(ctx context.Context, name, password string) error
	size(ctx context.Context, name string) (int64, error)
	drop(ctx context.Context, name string) error
	// endpoint is where clients connect; host "" is this host.
	endpoint() (host string, port int)
	close()
}

// New validates cfg and prepares the servers; nothing runs until used.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("dbserver: DataDir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.PostgresDSN == "" || cfg.MariaDBDSN == "" {
		if _, subnet, err := net.ParseCIDR(cfg.AppsSubnet); err != nil || subnet.IP.To4() == nil {
			return nil, fmt.Errorf("dbserver: AppsSubnet %q is not an IPv4 CIDR", cfg.AppsSubnet)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "dbserver"), ctx: ctx, stop: stop, servers: map[string]*server{}}
	pg, err := m.newPostgres()
	if err != nil {
		return nil, err
	}
	my, err := m.newMariaDB()
	if err != nil {
		return nil, err
	}
	m.servers[Postgres], m.servers[MariaDB] = pg, my
	return m, nil
}

// Serve starts supervising the managed servers that hold databases
// already (adopting those still running), then waits for ctx.
func (m *Manager) Serve(ctx context.Context) error {
	for _, s := range m.servers {
		if s.managed != nil && s.managed.initialized() {
			s.managed.supervise(m.ctx)
		}
	}
	<-ctx.Done()
	return nil
}

// Shutdown stops supervising and closes the admin connections. The managed
// servers keep running, so that apps keep their databases while rosti
// restarts; the next start adopts them.
func (m *Manager) Shutdown(context.Context) error {
	m.stop()
	for _, s := range m.servers {
		s.engine.close()
	}
	return nil
}

// StopServers stops the managed servers and waits for them to exit. It is
// for uninstalling and for tests; apps lose their databases.
func (m *Manager) StopServers(ctx context.Context) error {
	m.stop()
	var errs []error
	for _, s := range m.servers {
		s.engine.close()
		if s.managed != nil {
			errs = append(errs, s.managed.terminate(ctx))
		}
	}
	return errors.Join(errs...)
}

// ready returns the server of a type, started and answering.
func (m *Manager) ready(ctx context.Context, typ string) (*server, error) {
	s, ok := m.servers[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	if s.managed != nil {
		if err := s.managed.ensure(m.ctx); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.engine.ping(ctx)
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dbserver: %s does not answer: %w", typ, err)
		case <-tick.C:
		}
	}
}

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("dbserver: database name %q: must be lowercase letters, digits and _", name)
	}
	return nil
}

// Create makes a database and a user of the same name that owns it, may
// open at most connLimit connections and logs in with password. It
// returns where clients connect; host "" means this host.
func (m *Manager) Create(ctx context.Context, typ, name, password string, connLimit int) (string, int, error) {
	if err := checkName(name); err != nil {
		return "", 0, err
	}
	s, err := m.ready(ctx, typ)
	if err != nil {
		return "", 0, err
	}
	if err := s.engine.create(ctx, name, password, connLimit); err != nil {
		// Leave nothing half made behind.
		if dropErr := s.engine.drop(context.WithoutCancel(ctx), name); dropErr != nil {
			m.log.Warn("clean up a database that failed to be created", "type", typ, "name", name, "err", dropErr)
		}
		return "", 0, err
	}
	m.log.Info("database created", "type", typ, "name", name)
	host, port := s.engine.endpoint()
	return host, port, nil
}

// SetPassword gives a database's user a new password; logins with the old
// one fail from now on.
func (m *Manager) SetPassword(ctx context.Context, typ, name, password string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s, err := m.ready(ctx, typ)
	if err != nil {
		return err
	}
	if err := s.engine.setPassword(ctx, name, password); err != nil {
		return err
	}
	m.log.Info("database password changed", "type", typ, "name", name)
	return nil
}

// Size is the space a database takes, in bytes.
func (m *Manager) Size(ctx context.Context, typ, name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	s, err := m.ready(ctx, typ)
	if err != nil {
		return 0, err
	}
	return s.engine.size(ctx, name)
}

// Drop removes a database and its user, ending their sessions. A database
// that is not there is no error.
func (m *Manager) Drop(ctx context.Context, typ, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s, err := m.ready(ctx, typ)
	if err != nil {
		return err
	}
	if err := s.engine.drop(ctx, name); err != nil {
		return err
	}
	m.log.Info("database dropped", "type", typ, "name", name)
	return nil
}

// serverPID is the process id of the managed server of a type, 0 when it
// does not run (or is the operator's).
func (m *Manager) serverPID(typ string) int {
	s, ok := m.servers[typ]
	if !ok || s.managed == nil {
		return 0
	}
	return s.managed.runningPID()
}
