package dbserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newPostgres is the operator's PostgreSQL when PostgresDSN names one,
// else a managed one under <data>/storages/pgsql.
func (m *Manager) newPostgres() (*server, error) {
	if m.cfg.PostgresDSN != "" {
		cfg, err := pgx.ParseConfig(m.cfg.PostgresDSN)
		if err != nil {
			return nil, fmt.Errorf("dbserver: --postgres-dsn: %w", err)
		}
		if strings.HasPrefix(cfg.Host, "/") {
			return nil, fmt.Errorf("dbserver: --postgres-dsn names the socket %s: it must name a TCP host apps can reach", cfg.Host)
		}
		e := &pgEngine{dsn: func() string { return m.cfg.PostgresDSN }, host: endpointHost(cfg.Host), port: func() int { return int(cfg.Port) }}
		return &server{engine: e}, nil
	}
	dir := filepath.Join(m.cfg.DataDir, "storages", Postgres)
	data := filepath.Join(dir, "data")
	s := &managed{
		name: "postgres", dir: dir, account: "postgres", defaultPort: 5432, wantPort: m.cfg.PostgresPort,
		subnet: m.cfg.AppsSubnet, stopSignal: syscall.SIGINT, log: m.log,
		pidFile: filepath.Join(data, "postmaster.pid"), marker: data,
	}
	runDir := filepath.Join(dir, "run")
	s.initialize = func(ctx context.Context, uid, gid int) error {
		bin, err := postgresBin(data)
		if err != nil {
			return err
		}
		if err := os.RemoveAll(data); err != nil { // a half-made one of an earlier try
			return fmt.Errorf("dbserver: %w", err)
		}
		if err := ownedDir(data, uid, gid); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
			"-E", "UTF8", "--locale=C.UTF-8", "--no-instructions")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return run(ctx, cmd)
	}
	s.command = func(port, uid, gid int) (*exec.Cmd, error) {
		bin, err := postgresBin(data)
		if err != nil {
			return nil, err
		}
		if err := ownedDir(runDir, uid, gid); err != nil {
			return nil, err
		}
		// Rosti's own admin account logs in over the socket, which only root
		// and postgres can reach; tenants log in over TCP with their
		// password, each to its own database only (sameuser).
		hba := fmt.Sprintf(`# Written by rosti on every start of the server; edits are lost.
local  all       postgres                trust
local  all       all                     reject
host   all       postgres  0.0.0.0/0     reject
host   sameuser  all       127.0.0.1/32  scram-sha-256
host   sameuser  all       %s  scram-sha-256
`, m.cfg.AppsSubnet)
		hbaFile := filepath.Join(dir, "pg_hba.conf")
		if err := os.WriteFile(hbaFile, []byte(hba), 0o644); err != nil {
			return nil, fmt.Errorf("dbserver: %w", err)
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=0.0.0.0", "-c", "unix_socket_directories="+runDir, "-c", "hba_file="+hbaFile,
			"-c", "max_connections=300", "-c", "password_encryption=scram-sha-256")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return cmd, nil
	}
	e := &pgEngine{
		dsn: func() string {
			return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", runDir, s.currentPort())
		},
		port: s.currentPort,
	}
	return &server{engine: e, managed: s}, nil
}

// postgresBin is the bin directory of the PostgreSQL that made data, or of
// the newest one installed for a new data directory.
func postgresBin(data string) (string, error) {
	if v, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil {
		bin := filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(v)), "bin")
		if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
			return "", fmt.Errorf("dbserver: %s was made by PostgreSQL %s, which is not installed (package postgresql-%s)", data, strings.TrimSpace(string(v)), strings.TrimSpace(string(v)))
		}
		return bin, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		return "", errors.New("dbserver: PostgreSQL is not installed (apt-get install postgresql)")
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	return filepath.Dir(found[0]), nil
}

// ownedDir makes dir (if needed) private to uid.
func ownedDir(dir string, uid, gid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dbserver: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("dbserver: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("dbserver: %w", err)
	}
	return nil
}

// endpointHost is what apps connect to for an operator's server: its host,
// unless that is loopback, which apps reach at their gateway ("").
func endpointHost(host string) string {
	if host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return host
}

// pgEngine provisions in PostgreSQL. Each storage is a role that logs in,
// owns a database of its name and its public schema; PUBLIC may not
// connect to the database.
type pgEngine struct {
	dsn  func() string
	host string
	port func() int

	mu   sync.Mutex
	pool *pgxpool.Pool
}

func (e *pgEngine) conn() (*pgxpool.Pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool == nil {
		cfg, err := pgxpool.ParseConfig(e.dsn())
		if err != nil {
			return nil, fmt.Errorf("dbserver: postgres admin DSN: %w", err)
		}
		cfg.MaxConns = 4
		if e.pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			return nil, fmt.Errorf("dbserver: postgres: %w", err)
		}
	}
	return e.pool, nil
}

func (e *pgEngine) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool != nil {
		e.pool.Close()
		e.pool = nil
	}
}

func (e *pgEngine) endpoint() (string, int) { return e.host, e.port() }

func (e *pgEngine) ping(ctx context.Context) error {
	pool, err := e.conn()
	if err != nil {
		return err
	}
	return pool.Ping(ctx)
}

// exec runs statements one by one, outside any transaction (CREATE
// DATABASE may not run in one).
func (e *pgEngine) exec(ctx context.Context, statements ...string) error {
	pool, err := e.conn()
	if err != nil {
		return err
	}
	for _, stmt := range statements {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("dbserver: postgres: %w", err)
		}
	}
	return nil
}

func (e *pgEngine) create(ctx context.Context, name, password string, connLimit int) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	if err := e.exec(ctx,
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s' CONNECTION LIMIT %d`, name, verifier, connLimit),
		// An operator's admin need not be a superuser (a managed cloud
		// database's is not): as a member of the role it may give it a
		// database, change its schema and drop both.
		fmt.Sprintf(`GRANT %s TO CURRENT_USER`, name),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s ENCODING 'UTF8'`, name, name),
		fmt.Sprintf(`REVOKE ALL ON DATABASE %s FROM PUBLIC`, name),
		fmt.Sprintf(`GRANT ALL ON DATABASE %s TO %s`, name, name),
	); err != nil {
		return err
	}
	// The schema is changed from inside the new database.
	pool, err := e.conn()
	if err != nil {
		return err
	}
	cfg := pool.Config().ConnConfig.Copy()
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("dbserver: postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{
		fmt.Sprintf(`ALTER SCHEMA public OWNER TO %s`, name),
		`REVOKE ALL ON SCHEMA public FROM PUBLIC`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("dbserver: postgres: %w", err)
		}
	}
	return nil
}

func (e *pgEngine) setPassword(ctx context.Context, name, password string) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	return e.exec(ctx, fmt.Sprintf(`ALTER ROLE %s PASSWORD '%s'`, name, verifier))
}

func (e *pgEngine) size(ctx context.Context, name string) (int64, error) {
	pool, err := e.conn()
	if err != nil {
		return 0, err
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT pg_database_size($1)`, name).Scan(&n); err != nil {
		return 0, fmt.Errorf("dbserver: postgres: size of %s: %w", name, err)
	}
	return n, nil
}

func (e *pgEngine) drop(ctx context.Context, name string) error {
	return e.exec(ctx,
		fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name),
		fmt.Sprintf(`DROP ROLE IF EXISTS %s`, name),
	)
}
