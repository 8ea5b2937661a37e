package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/example/order-mcp/migrations"
)

// migrationLockID is the advisory lock goose holds while migrating, so that
// several `server migrate` runs at once (replicas starting together) apply
// each migration exactly once.
const migrationLockID int64 = 0x6f72646d63706d67 // "ordmcpmg"

// Migrate applies the embedded migrations to the database at dsn and
// returns the names of the files it applied (none when already current).
// It runs as the user in dsn, which becomes the owner of the schema.
func Migrate(ctx context.Context, dsn string, logger *slog.Logger) ([]string, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL is not a valid Postgres connection string")
	}
	cc.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	db := stdlib.OpenDB(*cc)
	defer db.Close()

	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID),
		lock.WithLockTimeout(1, 300), // retry every second for up to five minutes
	)
	if err != nil {
		return nil, err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithSlog(logger),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		// Unlike query errors, a failed migration's message is kept: it names
		// the DDL statement that failed, which is what the operator needs,
		// and DDL carries no customer data.
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}
