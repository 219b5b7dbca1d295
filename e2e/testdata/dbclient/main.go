// Command dbclient connects to a database the way an app does and runs
// one SQL statement, printing the first column of each row it returns:
//
//	dbclient pgsql|mariadb HOST PORT USER PASSWORD DATABASE SQL
//
// The end-to-end tests run it inside app containers, whose images have no
// database clients of their own.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) != 8 {
		fmt.Fprintln(os.Stderr, "usage: dbclient pgsql|mariadb HOST PORT USER PASSWORD DATABASE SQL")
		os.Exit(2)
	}
	typ, host, port, user, password, database, query := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rows []string
	var err error
	if typ == "pgsql" {
		rows, err = postgres(ctx, host, port, user, password, database, query)
	} else {
		rows, err = mariadb(ctx, host, port, user, password, database, query)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbclient:", err)
		os.Exit(1)
	}
	for _, r := range rows {
		fmt.Println(r)
	}
}

func postgres(ctx context.Context, host, port, user, password, database, query string) ([]string, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable host=" + host + " port=" + port)
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password, cfg.Database = user, password, database
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rs, err := conn.Query(ctx, query, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			return nil, err
		}
		if len(vals) > 0 {
			out = append(out, fmt.Sprint(vals[0]))
		}
	}
	return out, rs.Err()
}

func mariadb(ctx context.Context, host, port, user, password, database, query string) ([]string, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", net.JoinHostPort(host, port), database
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	rs, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		if len(vals) > 0 {
			if b, ok := vals[0].([]byte); ok {
				out = append(out, string(b))
			} else {
				out = append(out, fmt.Sprint(vals[0]))
			}
		}
	}
	return out, rs.Err()
}
