package dbserver

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// newMariaDB is the operator's MariaDB when MariaDBDSN names one, else a
// managed one under <data>/storages/mariadb.
func (m *Manager) newMariaDB() (*server, error) {
	if m.cfg.MariaDBDSN != "" {
		cfg, err := mysql.ParseDSN(m.cfg.MariaDBDSN)
		if err != nil {
			return nil, fmt.Errorf("dbserver: --mariadb-dsn: %w", err)
		}
		if cfg.Net != "tcp" {
			return nil, fmt.Errorf("dbserver: --mariadb-dsn: it must name a TCP host apps can reach, as user:password@tcp(host:3306)/")
		}
		host, portText, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("dbserver: --mariadb-dsn address %q: %w", cfg.Addr, err)
		}
		port, _ := strconv.Atoi(portText)
		e := &myEngine{config: func() *mysql.Config { return cfg.Clone() }, host: endpointHost(host), port: func() int { return port },
			clientHosts: []string{"%"}}
		return &server{engine: e}, nil
	}
	dir := filepath.Join(m.cfg.DataDir, "storages", MariaDB)
	data := filepath.Join(dir, "data")
	runDir := filepath.Join(dir, "run")
	s := &managed{
		name: "mariadb", dir: dir, account: "mysql", defaultPort: 3306, wantPort: m.cfg.MariaDBPort,
		subnet: m.cfg.AppsSubnet, stopSignal: syscall.SIGTERM, log: m.log,
		pidFile: filepath.Join(runDir, "mysqld.pid"), marker: "--datadir=" + data,
	}
	s.initialize = func(ctx context.Context, uid, gid int) error {
		if err := os.RemoveAll(data); err != nil { // a half-made one of an earlier try
			return fmt.Errorf("dbserver: %w", err)
		}
		if err := ownedDir(data, uid, gid); err != nil {
			return err
		}
		// root@localhost without a password, reachable only over the socket
		// in a directory private to mysql (and root, rosti).
		cmd := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir="+data,
			"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
		cmd.Dir = dir
		return run(ctx, cmd)
	}
	s.command = func(port, uid, gid int) (*exec.Cmd, error) {
		bin, err := exec.LookPath("mariadbd")
		if err != nil {
			if bin, err = exec.LookPath("/usr/sbin/mariadbd"); err != nil {
				return nil, fmt.Errorf("dbserver: MariaDB is not installed (apt-get install mariadb-server): %w", err)
			}
		}
		if err := ownedDir(runDir, uid, gid); err != nil {
			return nil, err
		}
		// It starts as root and switches to mysql itself.
		cmd := exec.Command(bin, "--no-defaults", "--datadir="+data, "--user=mysql",
			"--socket="+filepath.Join(runDir, "mysqld.sock"), "--pid-file="+s.pidFile,
			"--port="+strconv.Itoa(port), "--bind-address=0.0.0.0", "--skip-name-resolve",
			"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", "--max-connections=300")
		cmd.Dir = dir
		return cmd, nil
	}
	e := &myEngine{
		config: func() *mysql.Config {
			cfg := mysql.NewConfig()
			cfg.User, cfg.Net, cfg.Addr = "root", "unix", filepath.Join(runDir, "mysqld.sock")
			return cfg
		},
		port:        s.currentPort,
		managed:     true,
		clientHosts: []string{"127.0.0.1", subnetHost(m.cfg.AppsSubnet)},
	}
	return &server{engine: e, managed: s}, nil
}

// subnetHost is an IPv4 CIDR as a MariaDB account host: "10.213.0.0/255.255.0.0".
func subnetHost(cidr string) string {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return cidr // New has checked it
	}
	return n.IP.String() + "/" + net.IP(n.Mask).String()
}

// myEngine provisions in MariaDB. Each storage is a database and a user of
// its name with every privilege on that database and none elsewhere.
type myEngine struct {
	config  func() *mysql.Config
	host    string
	port    func() int
	managed bool // rosti made the server: remove the accounts install-db adds
	// clientHosts are where a storage's user may log in from, one account
	// each: on rosti's own server loopback and the apps' subnet only, so
	// that it stays closed to the world without its firewall chain too.
	clientHosts []string

	mu       sync.Mutex
	db       *sql.DB
	hardened bool
}

func (e *myEngine) conn() (*sql.DB, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.db == nil {
		cfg := e.config()
		cfg.Timeout = 5 * time.Second
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("dbserver: mariadb admin DSN: %w", err)
		}
		e.db = sql.OpenDB(connector)
		e.db.SetMaxOpenConns(4)
		e.db.SetConnMaxIdleTime(time.Minute)
	}
	return e.db, nil
}

func (e *myEngine) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.db != nil {
		e.db.Close()
		e.db = nil
	}
}

func (e *myEngine) endpoint() (string, int) { return e.host, e.port() }

func (e *myEngine) ping(ctx context.Context) error {
	db, err := e.conn()
	if err != nil {
		return err
	}
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	return e.harden(ctx, db)
}

// harden drops every account but root@localhost (the socket) that
// mariadb-install-db makes, such as root@127.0.0.1 without a password.
func (e *myEngine) harden(ctx context.Context, db *sql.DB) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.managed || e.hardened {
		return nil
	}
	rows, err := db.QueryContext(ctx, `SELECT user, host FROM mysql.user WHERE user IN ('root', '') AND host <> 'localhost'`)
	if err != nil {
		return fmt.Errorf("dbserver: mariadb: %w", err)
	}
	var accounts [][2]string
	for rows.Next() {
		var a [2]string
		if err := rows.Scan(&a[0], &a[1]); err != nil {
			rows.Close()
			return fmt.Errorf("dbserver: mariadb: %w", err)
		}
		accounts = append(accounts, a)
	}
	rows.Close()
	for _, a := range accounts {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("DROP USER %s@%s", quote(a[0]), quote(a[1]))); err != nil {
			return fmt.Errorf("dbserver: mariadb: %w", err)
		}
	}
	e.hardened = true
	return nil
}

// quote makes a string literal of an account name MariaDB itself holds.
func quote(s string) string {
	out := []byte{'\''}
	for _, c := range []byte(s) {
		if c == '\'' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return string(append(out, '\''))
}

func (e *myEngine) exec(ctx context.Context, statements ...string) error {
	db, err := e.conn()
	if err != nil {
		return err
	}
	for _, stmt := range statements {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("dbserver: mariadb: %w", err)
		}
	}
	return nil
}

func (e *myEngine) create(ctx context.Context, name, password string, connLimit int) error {
	statements := []string{fmt.Sprintf("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", name)}
	for _, h := range e.clientHosts {
		statements = append(statements,
			fmt.Sprintf("CREATE USER '%s'@'%s' IDENTIFIED BY PASSWORD '%s' WITH MAX_USER_CONNECTIONS %d", name, h, mysqlNativeHash(password), connLimit),
			fmt.Sprintf("GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%s'", name, name, h))
	}
	return e.exec(ctx, statements...)
}

func (e *myEngine) setPassword(ctx context.Context, name, password string) error {
	hash := mysqlNativeHash(password)
	var statements []string
	for _, h := range e.clientHosts {
		statements = append(statements, fmt.Sprintf("ALTER USER '%s'@'%s' IDENTIFIED BY PASSWORD '%s'", name, h, hash))
	}
	return e.exec(ctx, statements...)
}

func (e *myEngine) size(ctx context.Context, name string) (int64, error) {
	db, err := e.conn()
	if err != nil {
		return 0, err
	}
	var n int64
	err = db.QueryRowContext(ctx, `SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = ?`, name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("dbserver: mariadb: size of %s: %w", name, err)
	}
	return n, nil
}

func (e *myEngine) drop(ctx context.Context, name string) error {
	db, err := e.conn()
	if err != nil {
		return err
	}
	// Sessions of the user would otherwise go on after it is dropped.
	rows, err := db.QueryContext(ctx, `SELECT id FROM information_schema.processlist WHERE user = ?`, name)
	if err != nil {
		return fmt.Errorf("dbserver: mariadb: %w", err)
	}
	var sessions []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			sessions = append(sessions, id)
		}
	}
	rows.Close()
	for _, id := range sessions {
		_, _ = db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)) // it may have ended meanwhile
	}
	statements := []string{fmt.Sprintf("DROP DATABASE IF EXISTS `%s`", name)}
	for _, h := range e.clientHosts {
		statements = append(statements, fmt.Sprintf("DROP USER IF EXISTS '%s'@'%s'", name, h))
	}
	return e.exec(ctx, statements...)
}
