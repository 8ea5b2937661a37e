package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// APIKey is a stored API key. The secret itself is never stored, only its
// SHA-256.
type APIKey struct {
	KeyID        string
	Name         string
	SecretSHA256 []byte
	Scopes       []string
	CustomerID   string // "" when the key is not bound to a customer
	CreatedAt    time.Time
	ExpiresAt    *time.Time
	RevokedAt    *time.Time
}

// ErrUnknownCustomer is returned by CreateAPIKey when the customer to bind
// the key to does not exist.
var ErrUnknownCustomer = errors.New("no such customer")

const lookupAPIKeySQL = `-- name: lookup_api_key
SELECT key_id, name, secret_sha256, scopes, customer_id, expires_at, revoked_at
  FROM lookup_api_key($1)`

// LookupAPIKey finds a key by its public id. The server's role has no
// privilege on api_keys; it goes through the SECURITY DEFINER function
// lookup_api_key, which returns at most this one row.
func (s *Store) LookupAPIKey(ctx context.Context, keyID string) (APIKey, error) {
	var (
		k          APIKey
		customerID *string
	)
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, lookupAPIKeySQL, keyID).Scan(
			&k.KeyID, &k.Name, &k.SecretSHA256, &k.Scopes, &customerID, &k.ExpiresAt, &k.RevokedAt)
	})
	if err != nil {
		return APIKey{}, translate("lookup api key", err)
	}
	if customerID != nil {
		k.CustomerID = *customerID
	}
	return k, nil
}

const touchAPIKeySQL = `-- name: touch_api_key
INSERT INTO api_key_usage AS u (key_id, last_used_at)
VALUES ($1, now())
ON CONFLICT (key_id) DO UPDATE SET last_used_at = now()
 WHERE u.last_used_at < now() - interval '1 minute'`

// TouchAPIKey records that a key was used. It writes at most once a minute
// per key, so a busy key does not turn every request into a write.
func (s *Store) TouchAPIKey(ctx context.Context, keyID string) error {
	err := s.run(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, touchAPIKeySQL, keyID)
		return err
	})
	return translate("touch api key", err)
}

const createAPIKeySQL = `-- name: create_api_key
INSERT INTO api_keys (key_id, name, secret_sha256, scopes, customer_id, expires_at)
VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6)`

// CreateAPIKey stores a new key. Administrative: it needs the schema
// owner's connection.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey) error {
	_, err := s.pool.Exec(ctx, createAPIKeySQL, k.KeyID, k.Name, k.SecretSHA256, k.Scopes, k.CustomerID, k.ExpiresAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return ErrUnknownCustomer
	}
	return translate("create api key", err)
}

const listAPIKeysSQL = `-- name: list_api_keys
SELECT k.key_id, k.name, k.scopes, coalesce(k.customer_id, ''), k.created_at, k.expires_at, k.revoked_at
  FROM api_keys k
 ORDER BY k.created_at, k.key_id`

// ListAPIKeys returns every key without its hash. Administrative.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, listAPIKeysSQL)
	if err != nil {
		return nil, translate("list api keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) {
		var k APIKey
		err := r.Scan(&k.KeyID, &k.Name, &k.Scopes, &k.CustomerID, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt)
		return k, err
	})
	return keys, translate("list api keys", err)
}

const revokeAPIKeySQL = `-- name: revoke_api_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1`

// RevokeAPIKey revokes a key; revoking a revoked key is a no-op. The next
// request made with it fails, on every transport, without a restart.
// Administrative.
func (s *Store) RevokeAPIKey(ctx context.Context, keyID string) error {
	tag, err := s.pool.Exec(ctx, revokeAPIKeySQL, keyID)
	if err != nil {
		return translate("revoke api key", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

const apiKeysActiveSQL = `-- name: api_keys_active
SELECT api_keys_active()`

// HasActiveAPIKey reports whether any key is neither revoked nor expired.
func (s *Store) HasActiveAPIKey(ctx context.Context) (bool, error) {
	var active bool
	err := s.run(ctx, func(c *pgxpool.Conn) error { return c.QueryRow(ctx, apiKeysActiveSQL).Scan(&active) })
	return active, translate("api keys active", err)
}

const revokeAPIKeysNamedSQL = `-- name: revoke_api_keys_named
UPDATE api_keys SET revoked_at = now()
 WHERE name = $1 AND revoked_at IS NULL
RETURNING key_id`

// RevokeAPIKeysNamed revokes every active key called name and returns
// their ids. Administrative.
func (s *Store) RevokeAPIKeysNamed(ctx context.Context, name string) ([]string, error) {
	rows, err := s.pool.Query(ctx, revokeAPIKeysNamedSQL, name)
	if err != nil {
		return nil, translate("revoke api keys named", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, translate("revoke api keys named", err)
}
