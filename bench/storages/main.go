// Command storages-bench measures what the storages issue budgets: the
// time from the create call to the first successful connection with the
// new user and password (the first storage of each type including the
// start of its server, then p50/p95 over the next ones), and how the
// resident memory of `rosti serve` grows with 100 storages (half
// PostgreSQL, half MariaDB), plus the time to list them with their sizes.
//
// It runs the real binary with its own data dir and database servers: run
// it as root through bench/storages/run.sh. Connections are made from the
// host at 127.0.0.1 and the port the API gave.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/rosti-paas/rosti/bench/internal/benchrosti"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	timed := flag.Int("timed", 20, "storages of each type whose create-to-first-connection is timed")
	total := flag.Int("total", 100, "storages for the memory figure")
	flag.Parse()
	if err := run(*bin, *timed, *total); err != nil {
		fmt.Fprintln(os.Stderr, "storages-bench:", err)
		os.Exit(1)
	}
}

type storage struct {
	ID       int64  `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Port     int    `json:"port"`
}

const password = "bench-password-1"

// connect logs in as the storage's user once.
func connect(s storage) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.Type == "pgsql" {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", s.Port))
		if err != nil {
			return err
		}
		cfg.User, cfg.Password, cfg.Database = s.Username, password, s.Name
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = s.Username, password, "tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), s.Name
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	return db.PingContext(ctx)
}

// createAndConnect creates a storage and returns how long it took until
// its user could log in.
func createAndConnect(s *benchrosti.Server, typ string) (time.Duration, error) {
	start := time.Now()
	var st storage
	if err := s.Call("POST", s.CompanyPath("storages/"), map[string]any{"type": typ, "password": password}, &st); err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		err := connect(st)
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s %s: no connection within 30s: %w", typ, st.Name, err)
		}
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(float64(len(sorted)-1)*p+0.5)]
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func run(bin string, timed, total int) error {
	s, err := benchrosti.Start(bin)
	if err != nil {
		return err
	}
	defer s.Stop()
	time.Sleep(2 * time.Second) // settle before the idle figure (a benchmark, not a test)
	idle, err := benchrosti.RSSMB(s.Pid())
	if err != nil {
		return err
	}
	types := []string{"pgsql", "mariadb"}
	for _, typ := range types {
		d, err := createAndConnect(s, typ)
		if err != nil {
			return err
		}
		fmt.Printf("first %s storage, starting its server: %v  (budget 10s)\n", typ, ms(d))
	}
	withServers, err := benchrosti.RSSMB(s.Pid())
	if err != nil {
		return err
	}
	made := len(types)
	for _, typ := range types {
		var ds []time.Duration
		for range timed {
			d, err := createAndConnect(s, typ)
			if err != nil {
				return err
			}
			ds = append(ds, d)
			made++
		}
		fmt.Printf("create -> first connection, %d %s storages: p50 %v  p95 %v  max %v  (budget p95 <= 2s)\n",
			len(ds), typ, ms(percentile(ds, 0.5)), ms(percentile(ds, 0.95)), ms(percentile(ds, 1)))
	}
	for ; made < total; made++ {
		if _, err := createAndConnect(s, types[made%2]); err != nil {
			return err
		}
	}
	start := time.Now()
	var list []storage
	if err := s.Call("GET", s.CompanyPath("storages/"), nil, &list); err != nil {
		return err
	}
	listed := time.Since(start)
	time.Sleep(2 * time.Second)
	loaded, err := benchrosti.RSSMB(s.Pid())
	if err != nil {
		return err
	}
	fmt.Printf("list of %d storages with their sizes: %v\n", len(list), ms(listed))
	fmt.Printf("rosti serve RSS: idle %.1f MB, with both servers in use %.1f MB, with %d storages %.1f MB: +%.1f MB for the storages (budget 5)\n",
		idle, withServers, len(list), loaded, loaded-withServers)
	for _, st := range list {
		if err := s.Call("DELETE", s.CompanyPath("storages/%d/", st.ID), nil, nil); err != nil {
			return err
		}
	}
	return nil
}
