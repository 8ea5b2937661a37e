package faultenv_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/example/order-mcp/internal/faultenv"
)

// TestPostgresKeepsCommittedRowsThroughEveryFault: what was committed
// before a stop, a restart or a crash is there afterwards, and the cluster
// starts again each time on the same port.
func TestPostgresKeepsCommittedRowsThroughEveryFault(t *testing.T) {
	pg := faultenv.Postgres(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM committed").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exec("CREATE TABLE committed (n int)")

	faults := []struct {
		name  string
		fault func()
	}{
		{"Restart", pg.Restart},
		{"StopAndStart", func() {
			pg.Stop()
			if _, err := pgx.Connect(ctx, pg.URL()); err == nil {
				t.Fatal("a stopped cluster accepted a connection")
			}
			pg.Start()
		}},
		{"KillAndStart", func() {
			pg.Kill()
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(pg.Port()), time.Second); err == nil {
				c.Close()
				t.Fatal("a killed cluster still listens")
			}
			pg.Start()
		}},
	}
	for i, f := range faults {
		exec("INSERT INTO committed VALUES ($1)", i)
		f.fault()
		if n := count(); n != i+1 {
			t.Fatalf("after %s: %d rows, want %d", f.name, n, i+1)
		}
	}
	if !strings.HasPrefix(pg.URL(), "postgres://postgres@127.0.0.1:") {
		t.Fatalf("URL %q", pg.URL())
	}
}

// TestRedisStartsAgainOnItsPortEmpty: a killed Redis refuses connections;
// started again it answers on the same URL, without the keys it had.
func TestRedisStartsAgainOnItsPortEmpty(t *testing.T) {
	r := faultenv.Redis(t)
	opts, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("a killed Redis answered")
	}
	r.Start()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("restarted Redis: %v", err)
	}
	if err := client.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("a Redis without persistence kept a key across a kill: %v", err)
	}
}
