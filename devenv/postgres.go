package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
	"github.com/jackc/pgx/v5"
)

// localAdminURL is the Postgres of the development and CI machines.
const localAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// embeddedPort is where the embedded Postgres listens (off the standard
// port, so it never collides with a system Postgres that starts later).
const embeddedPort = 54329

// database is a Postgres to use: the URL of its maintenance database and a
// function that stops it if this program started it.
type database struct {
	adminURL string
	stop     func()
}

// findDatabase returns the Postgres to use; see the package comment.
func findDatabase(ctx context.Context, configured string, log io.Writer) (*database, error) {
	embedded := os.Getenv("DEVENV_POSTGRES") == "embedded"
	if configured != "" && !embedded {
		return &database{adminURL: configured, stop: func() {}}, nil
	}
	if answers("127.0.0.1:5432") && !embedded {
		fmt.Fprintln(log, "devenv: using the Postgres on 127.0.0.1:5432")
		return &database{adminURL: localAdminURL, stop: func() {}}, nil
	}
	return startEmbedded(ctx, log)
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// errRoot explains why an embedded Postgres cannot start as root.
var errRoot = fmt.Errorf("no Postgres answers on 127.0.0.1:5432 and DATABASE_URL is not set, and an embedded Postgres " +
	"cannot start because Postgres refuses to run as root. Either start a Postgres server " +
	"(Debian: apt-get install postgresql && pg_ctlcluster <version> main start), set DATABASE_URL " +
	"(or TEST_DATABASE_URL for tests) to a Postgres you can reach, or run make as a regular user")

func startEmbedded(ctx context.Context, log io.Writer) (*database, error) {
	if os.Geteuid() == 0 {
		return nil, errRoot
	}
	dir, err := filepath.Abs(".pgdata")
	if err != nil {
		return nil, err
	}
	cfg := embeddedpostgres.DefaultConfig().
		Port(embeddedPort).
		RuntimePath(filepath.Join(dir, "runtime")). // deleted on every start: ours alone
		DataPath(filepath.Join(dir, "data")).
		CachePath(filepath.Join(dir, "cache")).
		StartTimeout(60 * time.Second).
		// Distribution builds put the socket in /var/run/postgresql, which
		// a regular user cannot write: keep it in our own directory.
		StartParameters(map[string]string{"unix_socket_directories": filepath.Join(dir, "runtime"), "listen_addresses": "127.0.0.1"}).
		Logger(log)
	if bin, version, ok := installedPostgres(); ok {
		fmt.Fprintf(log, "devenv: starting an embedded Postgres on the installed binaries in %s\n", bin)
		cfg = cfg.BinariesPath(bin).Version(version)
	} else {
		fmt.Fprintln(log, "devenv: starting an embedded Postgres (downloading its binaries once)")
	}
	pg := embeddedpostgres.NewDatabase(cfg)
	if err := pg.Start(); err != nil {
		return nil, fmt.Errorf("embedded Postgres: %w", err)
	}
	return &database{
		adminURL: fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/postgres?sslmode=disable", embeddedPort),
		stop:     func() { _ = pg.Stop() },
	}, nil
}

// installedPostgres finds the system's Postgres binaries with pg_config:
// BinariesPath is the parent of its bindir, and the version is its major
// version (embedded-postgres would otherwise pick a newer major).
func installedPostgres() (string, embeddedpostgres.PostgresVersion, bool) {
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return "", "", false
	}
	bin := filepath.Dir(strings.TrimSpace(string(out)))
	if _, err := os.Stat(filepath.Join(bin, "bin", "pg_ctl")); err != nil {
		return "", "", false
	}
	out, err = exec.Command(filepath.Join(bin, "bin", "postgres"), "--version").Output()
	if err != nil {
		return "", "", false
	}
	v, ok := versionFor(string(out))
	return bin, v, ok
}

var majorRE = regexp.MustCompile(`\b(1[0-9])\.\d+`)

// versionFor maps "postgres (PostgreSQL) 15.19" to embedded-postgres's V15.
func versionFor(versionOutput string) (embeddedpostgres.PostgresVersion, bool) {
	m := majorRE.FindStringSubmatch(versionOutput)
	if m == nil {
		return "", false
	}
	v, ok := map[string]embeddedpostgres.PostgresVersion{
		"12": embeddedpostgres.V12, "13": embeddedpostgres.V13, "14": embeddedpostgres.V14,
		"15": embeddedpostgres.V15, "16": embeddedpostgres.V16, "17": embeddedpostgres.V17,
		"18": embeddedpostgres.V18,
	}[m[1]]
	return v, ok
}

// ensureDatabase creates database name on the server at adminURL if it
// does not exist, and returns its URL.
func ensureDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", err
		}
	}
	cfg := conn.Config()
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + name, RawQuery: "sslmode=disable"}
	u.User = url.User(cfg.User)
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	}
	return u.String(), nil
}

// dropDatabase drops database name on the server at adminURL, closing any
// connection still open to it (Postgres 13 and later).
func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
