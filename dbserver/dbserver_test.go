package dbserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// syncBuffer collects a Manager's log lines for the test to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dataDir is a rosti data dir the database servers' own users can reach:
// the test's temporary directories are private to root.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	return data
}

func needServers(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the servers run as their own system users")
	}
	for _, tool := range []string{"mariadb-install-db", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	if _, err := postgresBin(""); err != nil {
		t.Skip(err)
	}
}

// freePort is a port nothing listens on now, so that these servers never
// race others (the end-to-end tests' ones) for the standard ports.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startManager(t *testing.T, data string, log *syncBuffer) *Manager {
	t.Helper()
	m, err := New(Config{DataDir: data, AppsSubnet: "10.251.0.0/16", PostgresPort: freePort(t), MariaDBPort: freePort(t),
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; _ = m.Shutdown(context.Background()) })
	return m
}

// login connects as a storage's user to a database over TCP, the way an
// app does, and runs statements.
func login(typ string, port int, user, password, database string, statements ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch typ {
	case Postgres:
		conn, err := pgConnect(ctx, port, user, password, database)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		for _, s := range statements {
			if _, err := conn.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	default:
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", port), database
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return err
		}
		db := sql.OpenDB(connector)
		defer db.Close()
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, s := range statements {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
}

func pgConnect(ctx context.Context, port int, user, password, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", port))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password, cfg.Database = user, password, database
	return pgx.ConnectConfig(ctx, cfg)
}

// visibleDatabases lists the databases user sees (MariaDB's SHOW DATABASES).
func visibleDatabases(t *testing.T, port int, user, password string) string {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	rows, err := db.Query("SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

// TestManagedServers runs both managed servers for real: provisioning,
// passwords, sizes, isolation between storages, connection limits, drops,
// restarts after a crash and adoption by the next rosti.
func TestManagedServers(t *testing.T) {
	needServers(t)
	data := dataDir(t)
	var log syncBuffer
	m := startManager(t, data, &log)
	t.Cleanup(func() {
		ports := []int{m.servers[Postgres].managed.currentPort(), m.servers[MariaDB].managed.currentPort()}
		if err := m.StopServers(context.Background()); err != nil {
			t.Errorf("stop servers: %v", err)
		}
		for _, port := range ports {
			if port != 0 && iptables("-n", "-L", chainFor(port)) == nil {
				t.Errorf("chain %s left behind", chainFor(port))
			}
		}
	})
	const (
		alicePW, alicePW2, bobPW = "alice-first-pw", "alice-second-pw", "bob's-pw-1234"
	)
	ctx := context.Background()
	for _, typ := range []string{Postgres, MariaDB} {
		t.Run(typ, func(t *testing.T) {
			if pid := m.serverPID(typ); pid != 0 {
				t.Fatalf("%s runs (pid %d) before its first use", typ, pid)
			}
			host, port, err := m.Create(ctx, typ, "t_alice", alicePW, 3)
			if err != nil {
				t.Fatalf("create: %v\n%s", err, log.String())
			}
			if host != "" || port == 0 {
				t.Fatalf("endpoint %q:%d, want this host", host, port)
			}
			if _, _, err := m.Create(ctx, typ, "t_bob", bobPW, 3); err != nil {
				t.Fatal(err)
			}
			before, err := m.Size(ctx, typ, "t_alice")
			if err != nil {
				t.Fatal(err)
			}
			rows := "INSERT INTO notes (body) SELECT 'a fairly long line of text to take some room' FROM information_schema.columns"
			if err := login(typ, port, "t_alice", alicePW, "t_alice",
				"CREATE TABLE notes (id int PRIMARY KEY "+map[string]string{Postgres: "GENERATED ALWAYS AS IDENTITY", MariaDB: "AUTO_INCREMENT"}[typ]+", body text)",
				rows, rows, rows); err != nil {
				t.Fatalf("alice uses her database: %v", err)
			}
			if typ == MariaDB {
				// InnoDB's table statistics catch up when asked to.
				if err := login(typ, port, "t_alice", alicePW, "t_alice", "ANALYZE TABLE notes"); err != nil {
					t.Fatal(err)
				}
			}
			after, err := m.Size(ctx, typ, "t_alice")
			if err != nil || after <= before {
				t.Fatalf("size %d -> %d (%v), want it to grow", before, after, err)
			}

			if err := login(typ, port, "t_bob", bobPW, "t_alice"); err == nil {
				t.Fatal("bob logged in to alice's database")
			}
			if err := login(typ, port, "t_bob", alicePW, "t_alice"); err == nil {
				t.Fatal("bob's user logged in with alice's password")
			}
			if typ == MariaDB {
				if dbs := visibleDatabases(t, port, "t_bob", bobPW); strings.Contains(dbs, "t_alice") {
					t.Fatalf("bob sees alice's database: %s", dbs)
				}
			} else if err := login(typ, port, "t_bob", bobPW, "postgres"); err == nil {
				t.Fatal("bob logged in to the postgres database")
			}

			if err := m.SetPassword(ctx, typ, "t_alice", alicePW2); err != nil {
				t.Fatal(err)
			}
			if err := login(typ, port, "t_alice", alicePW, "t_alice"); err == nil {
				t.Fatal("the old password still works")
			}
			if err := login(typ, port, "t_alice", alicePW2, "t_alice", "SELECT count(*) FROM notes"); err != nil {
				t.Fatalf("the new password: %v", err)
			}

			t.Run("connection limit", func(t *testing.T) {
				// Open 3 and keep them, then a fourth must be refused.
				var keep []func()
				for range 3 {
					// Earlier sessions may still be ending on the server's side.
					var c func()
					var err error
					for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
						if c, err = openHeld(typ, port, "t_alice", alicePW2); err == nil || time.Now().After(deadline) {
							break
						}
					}
					if err != nil {
						t.Fatal(err)
					}
					keep = append(keep, c)
				}
				err := login(typ, port, "t_alice", alicePW2, "t_alice")
				for _, c := range keep {
					c()
				}
				if err == nil {
					t.Fatal("a fourth connection was let in past the limit of 3")
				}
			})

			if err := m.Drop(ctx, typ, "t_alice"); err != nil {
				t.Fatal(err)
			}
			if err := login(typ, port, "t_alice", alicePW2, "t_alice"); err == nil {
				t.Fatal("alice logs in after the drop")
			}
			if _, err := m.Size(ctx, typ, "t_alice"); typ == Postgres && err == nil {
				t.Fatal("the database is still there after the drop")
			}
			if err := m.Drop(ctx, typ, "t_alice"); err != nil {
				t.Fatalf("a second drop: %v", err)
			}
			if err := login(typ, port, "t_bob", bobPW, "t_bob"); err != nil {
				t.Fatalf("bob's database after alice's drop: %v", err)
			}
		})
	}

	t.Run("closed to the world", func(t *testing.T) {
		for _, typ := range []string{Postgres, MariaDB} {
			port := m.servers[typ].managed.currentPort()
			out, err := exec.Command("iptables", "-w", "-S", chainFor(port)).CombinedOutput()
			if err != nil {
				t.Fatalf("%s's chain: %v %s", typ, err, out)
			}
			want := "-A ROSTI-DB-" + fmt.Sprint(port) + " -i lo -j ACCEPT\n-A ROSTI-DB-" + fmt.Sprint(port) + " -s 10.251.0.0/16 -j ACCEPT\n-A ROSTI-DB-" + fmt.Sprint(port) + " -j DROP"
			if !strings.Contains(string(out), want) {
				t.Fatalf("%s's chain:\n%s\nwant:\n%s", typ, out, want)
			}
			if err := iptables("-C", "INPUT", "-p", "tcp", "--dport", fmt.Sprint(port), "-j", chainFor(port)); err != nil {
				t.Fatalf("%s: no jump from INPUT: %v", typ, err)
			}
		}
		// Behind the firewall, MariaDB's accounts admit loopback and the
		// apps' subnet only.
		db, err := m.servers[MariaDB].engine.(*myEngine).conn()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query("SELECT host FROM mysql.user WHERE user = 't_bob' ORDER BY host")
		if err != nil {
			t.Fatal(err)
		}
		var hosts []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				t.Fatal(err)
			}
			hosts = append(hosts, h)
		}
		rows.Close()
		if got := strings.Join(hosts, " "); got != "10.251.0.0/255.255.0.0 127.0.0.1" {
			t.Fatalf("t_bob may log in from %q", got)
		}
	})

	t.Run("restarted when it dies", func(t *testing.T) {
		pid := m.serverPID(Postgres)
		if pid == 0 {
			t.Fatal("postgres is not running")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if now := m.serverPID(Postgres); now != 0 && now != pid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("postgres was not started again:\n%s", log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, _, err := m.Create(ctx, Postgres, "t_carol", "carol-pw-123", 3); err != nil {
			t.Fatalf("create after the restart: %v", err)
		}
	})

	t.Run("adopted by the next rosti", func(t *testing.T) {
		pids := map[string]int{Postgres: m.serverPID(Postgres), MariaDB: m.serverPID(MariaDB)}
		if err := m.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		var log2 syncBuffer
		next := startManager(t, data, &log2)
		for typ, pid := range pids {
			if _, err := next.Size(ctx, typ, "t_bob"); err != nil {
				t.Fatalf("%s after the restart: %v\n%s", typ, err, log2.String())
			}
			if now := next.serverPID(typ); now != pid {
				t.Fatalf("%s pid %d, want the adopted %d\n%s", typ, now, pid, log2.String())
			}
		}
		if n := strings.Count(log2.String(), "msg=\"started "); n != 0 {
			t.Fatalf("the next rosti started %d servers instead of adopting them:\n%s", n, log2.String())
		}
		if n := strings.Count(log2.String(), "msg=\"adopted "); n != 2 {
			t.Fatalf("adopted %d servers, want 2:\n%s", n, log2.String())
		}
		m = next
	})

	t.Run("operator's servers", func(t *testing.T) {
		// The managed servers stand in for an operator's, with admin
		// accounts that are not superusers.
		pgPort, myPort := m.servers[Postgres].engine.(*pgEngine).port(), m.servers[MariaDB].engine.(*myEngine).port()
		if _, _, err := m.Create(ctx, Postgres, "t_admin", "admin-pw-1234", 10); err != nil {
			t.Fatal(err)
		}
		// An operator's admin reaches every database, as the provisioning's
		// own connection to a new database needs.
		hbaFile := filepath.Join(data, "storages", Postgres, "pg_hba.conf")
		hba, err := os.ReadFile(hbaFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hbaFile, append([]byte("host all t_admin 127.0.0.1/32 scram-sha-256\n"), hba...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := m.servers[Postgres].engine.(*pgEngine).exec(ctx, "ALTER ROLE t_admin CREATEROLE CREATEDB", "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		if err := m.servers[MariaDB].engine.(*myEngine).exec(ctx,
			"CREATE USER 't_admin'@'%' IDENTIFIED BY 'admin-pw-1234'", "GRANT ALL PRIVILEGES ON *.* TO 't_admin'@'%' WITH GRANT OPTION"); err != nil {
			t.Fatal(err)
		}
		op, err := New(Config{DataDir: t.TempDir(),
			PostgresDSN: fmt.Sprintf("postgres://t_admin:admin-pw-1234@127.0.0.1:%d/t_admin?sslmode=disable", pgPort),
			MariaDBDSN:  fmt.Sprintf("t_admin:admin-pw-1234@tcp(127.0.0.1:%d)/", myPort),
			Logger:      slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Shutdown(ctx)
		for typ, port := range map[string]int{Postgres: pgPort, MariaDB: myPort} {
			host, gotPort, err := op.Create(ctx, typ, "t_ext", "ext-pw-12345", 3)
			if err != nil {
				t.Fatalf("%s: create on the operator's server: %v", typ, err)
			}
			if host != "" || gotPort != port {
				t.Fatalf("%s: endpoint %q:%d, want the apps' gateway and %d", typ, host, gotPort, port)
			}
			if err := login(typ, port, "t_ext", "ext-pw-12345", "t_ext", "CREATE TABLE t (id int)"); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			if err := op.SetPassword(ctx, typ, "t_ext", "ext-pw-67890"); err != nil {
				t.Fatal(err)
			}
			if err := login(typ, port, "t_ext", "ext-pw-67890", "t_ext", "SELECT 1"); err != nil {
				t.Fatalf("%s: the new password: %v", typ, err)
			}
			if _, err := op.Size(ctx, typ, "t_ext"); err != nil {
				t.Fatal(err)
			}
			if err := op.Drop(ctx, typ, "t_ext"); err != nil {
				t.Fatalf("%s: drop: %v", typ, err)
			}
			if err := login(typ, port, "t_ext", "ext-pw-67890", "t_ext"); err == nil {
				t.Fatalf("%s: logged in after the drop", typ)
			}
		}
		if pid := op.serverPID(Postgres); pid != 0 {
			t.Fatalf("an operator's server reported as managed (pid %d)", pid)
		}
	})

	t.Run("passwords never reach the servers' logs", func(t *testing.T) {
		// A failing statement is written to the log with its text.
		if err := m.SetPassword(ctx, Postgres, "t_nobody", "nobody-pw-123"); err == nil {
			t.Fatal("set the password of a user that does not exist")
		}
		for _, typ := range []string{Postgres, MariaDB} {
			raw, err := os.ReadFile(filepath.Join(data, "storages", typ, "server.log"))
			if err != nil {
				t.Fatal(err)
			}
			for _, pw := range []string{alicePW, alicePW2, bobPW, "nobody-pw-123"} {
				if bytes.Contains(raw, []byte(pw)) {
					t.Fatalf("%s's log holds a password", typ)
				}
			}
		}
	})
}

// openHeld opens one connection and returns what closes it.
func openHeld(typ string, port int, user, password string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if typ == Postgres {
		conn, err := pgConnect(ctx, port, user, password, user)
		if err != nil {
			return nil, err
		}
		return func() { conn.Close(context.Background()) }, nil
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", port), user
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	return func() { conn.Close(); db.Close() }, nil
}

func TestValidPassword(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"long enough", "correct horse", true},
		{"punctuation", `a'b"c\d$e;f`, true},
		{"too short", "short", false},
		{"too long", strings.Repeat("x", 129), false},
		{"control character", "abc\ndefghi", false},
		{"not ASCII", "heslo-žluťoučký", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := ValidPassword(tc.password, 8); (msg == "") != tc.ok {
				t.Fatalf("ValidPassword(%q) = %q", tc.password, msg)
			}
		})
	}
}

func TestOperatorDSNs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
		host    string
	}{
		{"postgres over TCP", Config{PostgresDSN: "postgres://admin:pw@db.example:5433/postgres", MariaDBDSN: "admin:pw@tcp(db.example:3307)/"}, "", "db.example"},
		{"loopback is reached at the gateway", Config{PostgresDSN: "postgres://admin:pw@127.0.0.1:5433/postgres", MariaDBDSN: "admin:pw@tcp(localhost:3307)/"}, "", ""},
		{"postgres socket", Config{PostgresDSN: "host=/run/postgresql user=admin", MariaDBDSN: "admin:pw@tcp(db:3306)/"}, "TCP host", ""},
		{"mariadb socket", Config{PostgresDSN: "postgres://a@db/postgres", MariaDBDSN: "admin@unix(/run/mysqld/mysqld.sock)/"}, "TCP host", ""},
		{"managed needs the subnet", Config{}, "AppsSubnet", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			m, err := New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range []string{Postgres, MariaDB} {
				if host, _ := m.servers[typ].engine.endpoint(); host != tc.host {
					t.Fatalf("%s endpoint host %q, want %q", typ, host, tc.host)
				}
			}
			if _, _, err := m.Create(context.Background(), "mongodb", "x", "password-1", 1); !errors.Is(err, ErrUnknownType) {
				t.Fatalf("unknown type: %v", err)
			}
		})
	}
}
