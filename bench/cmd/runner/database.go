package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultDatabaseURL is the development and CI machines' Postgres.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// adminURL is the Postgres the benchmark creates its database on, found
// as make test finds it: TEST_DATABASE_URL, DATABASE_URL, else the local
// default. It must be able to create databases (a superuser on the
// development machine).
func adminURL(getenv func(string) string) string {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return defaultDatabaseURL
}

// database is the benchmark's own database, created fresh for one run of
// the runner and dropped at its end.
type database struct {
	name  string
	admin string // URL of the server's maintenance database, for CREATE and DROP
	url   string // URL of the benchmark database, same user
}

// createDatabase creates bench_<random> next to the database admin names.
func createDatabase(ctx context.Context, admin string) (*database, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("the database URL must be a postgres:// URL")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := &database{name: "bench_" + hex.EncodeToString(b[:]), admin: admin}
	u.Path = "/" + db.name
	db.url = u.String()

	conn, err := connect(ctx, admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db.name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db.name, err)
	}
	return db, nil
}

// drop drops the database even if connections are still open (a server
// that did not stop in time). It runs during clean-up, so it does not use
// the run's context, which Ctrl-C may have ended.
func (db *database) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, db.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.name}.Sanitize()+" WITH (FORCE)")
	return err
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres: %w", err)
	}
	return conn, nil
}

// orderIDs returns every order's id. The benchmark's key is staff
// (orders:read:any), so all of them are readable: a call that is refused
// or not found is a failure, never an expected outcome.
func (db *database) orderIDs(ctx context.Context) ([]string, error) {
	conn, err := connect(ctx, db.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id FROM orders ORDER BY id")
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(ids) == 0 {
		err = errors.New("no orders: did seed run?")
	}
	return ids, err
}

// version returns Postgres's version string, for the report.
func (db *database) version(ctx context.Context) string {
	conn, err := connect(ctx, db.url)
	if err != nil {
		return "unknown"
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}
