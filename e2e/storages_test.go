package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/dbserver"
)

type storageInfo struct {
	ID       int64  `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Note     string `json:"note"`
	Size     *int64 `json:"size"`
}

// freePort is a TCP port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// storagesDataDir is a data dir under a temporary directory the database
// servers' system users can traverse (t.TempDir is private to root).
func storagesDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "data")
}

// stopDatabaseServers stops the servers rosti left running for its apps,
// and their firewall chains.
func stopDatabaseServers(t *testing.T, dataDir string) {
	m, err := dbserver.New(dbserver.Config{DataDir: dataDir, AppsSubnet: "127.0.0.0/8"})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = m.StopServers(ctx)
	}
	if err != nil {
		t.Errorf("stop the database servers: %v", err)
	}
}

// dbLogin runs one statement with the stock psql or mariadb client, as a
// user does from the host, and returns its output and whether it worked.
func dbLogin(t *testing.T, s storageInfo, user, password, database, statement string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if s.Type == "pgsql" {
		cmd = exec.CommandContext(ctx, "psql", "-X", "-w", "-v", "ON_ERROR_STOP=1", "-tA", "-h", s.Host, "-p", strconv.Itoa(s.Port),
			"-U", user, "-d", database, "-c", statement)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10")
	} else {
		cmd = exec.CommandContext(ctx, "mariadb", "--no-defaults", "-N", "-B", "--connect-timeout=10", "-h", s.Host, "-P", strconv.Itoa(s.Port),
			"-u", user, "-D", database, "-e", statement)
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+password)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", cmd.Args[0], err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// adminQuery asks a managed server, over its private socket as its
// superuser, one thing (a count).
func adminQuery(t *testing.T, dataDir string, s storageInfo, query string) string {
	t.Helper()
	var cmd *exec.Cmd
	if s.Type == "pgsql" {
		cmd = exec.Command("psql", "-X", "-tA", "-h", filepath.Join(dataDir, "storages", "pgsql", "run"), "-p", strconv.Itoa(s.Port),
			"-U", "postgres", "-d", "postgres", "-c", query)
	} else {
		cmd = exec.Command("mariadb", "--no-defaults", "-N", "-B", "-S", filepath.Join(dataDir, "storages", "mariadb", "run", "mysqld.sock"),
			"-u", "root", "-e", query)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// serverPID is the pid a managed server wrote down, "" when there is none.
func serverPID(dataDir, typ string) string {
	file := map[string]string{"pgsql": "data/postmaster.pid", "mariadb": "run/mysqld.pid"}[typ]
	raw, err := os.ReadFile(filepath.Join(dataDir, "storages", typ, file))
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	return strings.TrimSpace(first)
}

// TestStorages runs storages end to end: real PostgreSQL and MariaDB run by
// rosti, the stock clients on the host, a client inside an app container at
// the address the API gave, password changes, sizes, isolation between
// companies, bad input, adoption after kill -9, and deletion.
func TestStorages(t *testing.T) {
	needTools(t, "psql", "mariadb", "mariadb-install-db", "ssh", "ssh-keygen", "scp", "ctr", "go")
	bin := rostiBin(t)
	data := storagesDataDir(t)
	t.Cleanup(func() { stopDatabaseServers(t, data) }) // after rosti has stopped
	in := startRosti(t, bin, data, "--postgres-port", freePort(t), "--mariadb-port", freePort(t))
	admin := in.adminUser(t)
	bob := in.register(t, "bob")

	// An app with a shell and a database client, to connect as apps do.
	in.importBusybox(t)
	sshPort := in.sshPort(t)
	client := newSSHClient(t, sshPort)
	app := in.createApp(t, admin, map[string]any{"name": "dbapp", "image": "busybox", "plan": 1, "ssh_keys": []string{client.pub}})
	_, appIP := in.running(t, admin, app)
	tools := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(tools, "dbclient"), "./testdata/dbclient")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build dbclient: %v\n%s", err, out)
	}
	must(t)(client.run(t, tools, "scp", "-F", client.config, "-P", sshPort, "dbclient", "dbapp@127.0.0.1:dbclient"))
	must(t)(client.ssh(t, "dbapp", "chmod 755 /srv/dbclient"))
	inApp := func(s storageInfo, password, statement string) (string, error) {
		code, out, errOut := client.ssh(t, "dbapp", fmt.Sprintf("/srv/dbclient %s %s %d %s '%s' %s \"%s\"", s.Type, s.Host, s.Port, s.Username, password, s.Name, statement))
		if code != 0 {
			return out, fmt.Errorf("exit %d: %s", code, errOut)
		}
		return strings.TrimSpace(out), nil
	}

	storages := pathf("/api/v1/%d/storages/", admin.company)
	created := map[string]storageInfo{}
	for _, typ := range []string{"pgsql", "mariadb"} {
		t.Run(typ, func(t *testing.T) {
			const pw1, pw2 = "first-db-pass", "second-db-pass"
			var s storageInfo
			in.expect(t, 200, admin.token, "POST", storages, map[string]any{"type": typ, "password": pw1, "note": "blog"}).decode(t, &s)
			created[typ] = s
			gateway := appIP[:strings.LastIndexByte(appIP, '.')] + ".1"
			if s.Host != gateway || s.Port == 0 || s.Name == "" || s.Username != s.Name || s.Note != "blog" || s.Size == nil {
				t.Fatalf("storage %+v; want the host at the app's gateway %s", s, gateway)
			}

			if _, err := dbLogin(t, s, s.Username, pw1, s.Name, "CREATE TABLE posts (id int PRIMARY KEY, body text)"); err != nil {
				t.Fatalf("from the host: %v", err)
			}
			if out, err := inApp(s, pw1, "INSERT INTO posts VALUES (1, 'hello from the app')"); err != nil {
				t.Fatalf("from the app's container: %v %s", err, out)
			}
			if out, err := dbLogin(t, s, s.Username, pw1, s.Name, "SELECT body FROM posts"); err != nil || out != "hello from the app" {
				t.Fatalf("read back on the host: %q %v", out, err)
			}

			in.expect(t, 200, admin.token, "PUT", pathf("%s%d/", storages, s.ID), map[string]any{"password": pw2})
			if _, err := dbLogin(t, s, s.Username, pw1, s.Name, "SELECT 1"); err == nil {
				t.Fatal("the old password still works")
			}
			if out, err := inApp(s, pw2, "SELECT count(*) FROM posts"); err != nil || out != "1" {
				t.Fatalf("the new password in the app: %q %v", out, err)
			}

			before := *s.Size
			grow := "INSERT INTO posts SELECT id + 1000, repeat('x', 2000) FROM posts"
			if typ == "pgsql" {
				grow = "INSERT INTO posts SELECT g, repeat('x', 200) FROM generate_series(2, 20000) g"
			}
			if _, err := dbLogin(t, s, s.Username, pw2, s.Name, grow); err != nil {
				t.Fatal(err)
			}
			if typ == "mariadb" {
				for range 10 {
					if _, err := dbLogin(t, s, s.Username, pw2, s.Name, "INSERT INTO posts SELECT id + (SELECT max(id) FROM posts), repeat('x', 2000) FROM posts"); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := dbLogin(t, s, s.Username, pw2, s.Name, "ANALYZE TABLE posts"); err != nil {
					t.Fatal(err)
				}
			}
			var now storageInfo
			in.expect(t, 200, admin.token, "GET", pathf("%s%d/", storages, s.ID), nil).decode(t, &now)
			if now.Size == nil || *now.Size <= before {
				t.Fatalf("size %d, then %v: it did not grow", before, now.Size)
			}
		})
	}
	if t.Failed() {
		return
	}

	t.Run("isolation", func(t *testing.T) {
		for typ, s := range created {
			var theirs storageInfo
			in.expect(t, 200, bob.token, "POST", pathf("/api/v1/%d/storages/", bob.company), map[string]any{"storage_type": typ, "password": "bobs-db-pass"}).decode(t, &theirs)
			in.expect(t, 404, bob.token, "GET", pathf("%s%d/", storages, s.ID), nil)
			in.expect(t, 404, bob.token, "GET", pathf("/api/v1/%d/storages/%d/", bob.company, s.ID), nil)
			in.expect(t, 404, bob.token, "PUT", pathf("/api/v1/%d/storages/%d/", bob.company, s.ID), map[string]any{"password": "taken-over-1"})
			in.expect(t, 404, bob.token, "DELETE", pathf("/api/v1/%d/storages/%d/", bob.company, s.ID), nil)
			if _, err := dbLogin(t, s, theirs.Username, "bobs-db-pass", s.Name, "SELECT 1"); err == nil {
				t.Fatalf("%s: bob's user connected to admin's database", typ)
			}
			// Bob has no app, so his bridge (and the host he was given) does
			// not exist yet; from the host, any of its addresses will do.
			theirs.Host = s.Host
			if typ == "mariadb" {
				out, err := dbLogin(t, theirs, theirs.Username, "bobs-db-pass", theirs.Name, "SHOW DATABASES")
				if err != nil || strings.Contains(out, s.Name) || !strings.Contains(out, theirs.Name) {
					t.Fatalf("bob's user lists databases %q (%v); admin's %s must not be among them", out, err, s.Name)
				}
			}
			in.expect(t, 200, bob.token, "DELETE", pathf("/api/v1/%d/storages/%d/", bob.company, theirs.ID), nil)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			path   string
			body   map[string]any
			status int
		}{
			{"unknown type", storages, map[string]any{"type": "mongodb", "password": "long-enough-1"}, 400},
			{"weak password", storages, map[string]any{"type": "pgsql", "password": "123"}, 400},
			{"1 MB note", storages, map[string]any{"type": "pgsql", "password": "long-enough-1", "note": strings.Repeat("n", 1_000_000)}, 400},
			// bob in admin's company (admin, a superuser, may manage any).
			{"another company's id", storages, map[string]any{"type": "pgsql", "password": "long-enough-1"}, 404},
		} {
			token := admin.token
			if tc.status == 404 {
				token = bob.token
			}
			r := in.call(t, token, "POST", tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), "message") {
				t.Errorf("%s: %d %.200s, want %d with a message", tc.name, r.status, r.body, tc.status)
			}
		}
		var list []storageInfo
		in.expect(t, 200, admin.token, "GET", storages, nil).decode(t, &list)
		if len(list) != 2 {
			t.Fatalf("%d storages after bad input, want 2", len(list))
		}
		if n := adminQuery(t, data, created["pgsql"], "SELECT count(*) FROM pg_database WHERE datname LIKE 'c%'"); n != "1" {
			t.Fatalf("%s tenant databases in PostgreSQL, want 1", n)
		}
	})

	outer := t // the restarted rosti must outlive the subtest
	var earlierLogs string
	t.Run("kill -9 and restart", func(t *testing.T) {
		pids := map[string]string{"pgsql": serverPID(data, "pgsql"), "mariadb": serverPID(data, "mariadb")}
		if pids["pgsql"] == "" || pids["mariadb"] == "" {
			t.Fatalf("server pids: %v", pids)
		}
		if err := in.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = in.cmd.Wait()
		earlierLogs = in.logs()
		again := startRosti(outer, bin, data)
		for typ, s := range created {
			if out, err := dbLogin(t, s, s.Username, "second-db-pass", s.Name, "SELECT count(*) FROM posts WHERE id = 1"); err != nil || out != "1" {
				t.Fatalf("%s after the restart: %q %v", typ, out, err)
			}
			var listed storageInfo
			again.expect(t, 200, admin.token, "GET", pathf("%s%d/", storages, s.ID), nil).decode(t, &listed)
			if listed.Size == nil {
				t.Fatalf("%s: the restarted rosti does not reach the server: %+v", typ, listed)
			}
			if now := serverPID(data, typ); now != pids[typ] {
				t.Fatalf("%s runs as pid %s, not the adopted %s", typ, now, pids[typ])
			}
		}
		logs := again.logs()
		for _, name := range []string{"postgres", "mariadb"} {
			if !strings.Contains(logs, `msg="adopted `+name) || strings.Contains(logs, `msg="started `+name) {
				t.Fatalf("%s was not adopted (or was started again):\n%s", name, logs)
			}
		}
		in = again

		// An adopted server that dies is started again.
		pid, err := strconv.Atoi(pids["pgsql"])
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s := created["pgsql"]
		waitFor(t, "postgres started again", 60*time.Second, func() (bool, string) {
			out, err := dbLogin(t, s, s.Username, "second-db-pass", s.Name, "SELECT count(*) FROM posts WHERE id = 1")
			return err == nil && out == "1" && serverPID(data, "pgsql") != pids["pgsql"], fmt.Sprint(out, err)
		})
	})

	t.Run("delete", func(t *testing.T) {
		for typ, s := range created {
			in.expect(t, 200, admin.token, "DELETE", pathf("%s%d/", storages, s.ID), nil)
			in.expect(t, 404, admin.token, "GET", pathf("%s%d/", storages, s.ID), nil)
			if _, err := dbLogin(t, s, s.Username, "second-db-pass", s.Name, "SELECT 1"); err == nil {
				t.Fatalf("%s: logged in after the delete", typ)
			}
			query := map[string]string{
				"pgsql":   fmt.Sprintf("SELECT (SELECT count(*) FROM pg_database WHERE datname = '%s') + (SELECT count(*) FROM pg_roles WHERE rolname = '%s')", s.Name, s.Username),
				"mariadb": fmt.Sprintf("SELECT (SELECT count(*) FROM information_schema.schemata WHERE schema_name = '%s') + (SELECT count(*) FROM mysql.user WHERE user = '%s')", s.Name, s.Username),
			}[typ]
			if n := adminQuery(t, data, s, query); n != "0" {
				t.Fatalf("%s: the database or its user is still there (%s)", typ, n)
			}
		}
	})
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)

	// The passwords went to the database servers only.
	files := []string{filepath.Join(data, "rosti.db"), filepath.Join(data, "storages", "pgsql", "server.log"), filepath.Join(data, "storages", "mariadb", "server.log")}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{"first-db-pass", "second-db-pass", "bobs-db-pass"} {
			if strings.Contains(string(raw), pw) || strings.Contains(earlierLogs+in.logs(), pw) {
				t.Fatalf("a storage password is in %s or rosti's log", f)
			}
		}
	}
}
