package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
)

// EnvDSN is the environment variable Main sets to the test database's URL.
const EnvDSN = "DBTEST_DATABASE_URL"

// DefaultAdminURL is the Postgres the tests use when no URL is configured.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the URL of the server to create test databases on.
func AdminURL() string {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return DefaultAdminURL
}

// Main creates a database for the test binary, migrates and seeds it, sets
// *dsn to its URL, runs the tests and drops the database.
func Main(m *testing.M, dsn *string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	admin := AdminURL()
	name := dbName()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		cancel()
		fmt.Fprintf(os.Stderr, "dbtest: cannot reach Postgres at %s: %v\n"+
			"Start Postgres on 127.0.0.1:5432 or set TEST_DATABASE_URL (see README, \"Running the tests\").\n",
			redactURL(admin), err)
		return 1
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		conn.Close(ctx)
		cancel()
		fmt.Fprintf(os.Stderr, "dbtest: create database %s: %v\n", name, err)
		return 1
	}
	*dsn = WithDatabase(admin, name)
	// In-package tests of internal/store cannot import this package (it
	// imports store), so they read the URL from the environment.
	os.Setenv(EnvDSN, *dsn)
	code := func() int {
		if _, err := store.Migrate(ctx, *dsn, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: migrate %s: %v\n", name, err)
			return 1
		}
		owner, err := store.Open(ctx, *dsn, store.Options{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: open %s: %v\n", name, err)
			return 1
		}
		_, err = owner.Seed(ctx, demo.Dataset(time.Now()))
		owner.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: seed %s: %v\n", name, err)
			return 1
		}
		cancel()
		return m.Run()
	}()
	dropCtx, dropCancel := context.WithTimeout(context.Background(), time.Minute)
	defer dropCancel()
	if _, err := conn.Exec(dropCtx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: drop database %s: %v\n", name, err)
	}
	conn.Close(dropCtx)
	return code
}

// Scratch creates a database of its own for one test, migrated and
// seeded, and drops it when the test ends. Tests that change the schema
// (dropping a constraint, planting a table) use it so that the package's
// shared database stays as the migrations made it.
func Scratch(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: cannot reach Postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := dbName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
		}
	})
	dsn := WithDatabase(admin, name)
	if _, err := store.Migrate(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", name, err)
	}
	owner, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.Seed(ctx, demo.Dataset(time.Now())); err != nil {
		t.Fatalf("dbtest: seed %s: %v", name, err)
	}
	return dsn
}

// dbName is unique per test binary run: test_<package>_<random>.
func dbName() string {
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	pkg = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, strings.ToLower(pkg))
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("test_%.30s_%s", pkg, hex.EncodeToString(b[:]))
}

// WithDatabase returns dsn pointing at database name instead.
func WithDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name // keyword/value form: the last dbname wins
}

func redactURL(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return "(connection string)"
}

// Owner opens the database as its owner, for test setup.
func Owner(t testing.TB, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// App opens the database as the server does: as the least-privilege role.
func App(t testing.TB, dsn string, opts store.Options) *store.Store {
	t.Helper()
	opts.AsAppRole = true
	s, err := store.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.CheckLeastPrivilege(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// KeyOptions describes a key to mint for a test.
type KeyOptions struct {
	Name       string
	Scopes     []auth.Scope
	CustomerID string
	ExpiresAt  *time.Time
}

// MintKey creates an API key and returns it with its id.
func MintKey(t testing.TB, owner *store.Store, o KeyOptions) (key, keyID string) {
	t.Helper()
	k, err := auth.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if o.Name == "" {
		o.Name = t.Name()
	}
	err = owner.CreateAPIKey(context.Background(), store.APIKey{
		KeyID: k.KeyID, Name: o.Name, SecretSHA256: k.SecretSHA256, Scopes: auth.ScopeNames(o.Scopes),
		CustomerID: o.CustomerID, ExpiresAt: o.ExpiresAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k.Key, k.KeyID
}
