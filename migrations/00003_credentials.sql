-- API keys and the state that authentication changes per request.
--
-- Checklist: "Authentication: restrict access to authorized clients".
-- A key is osmcp_<key_id>_<secret>. Only the SHA-256 of the secret is kept:
-- the secret has 256 random bits, so a fast hash is enough (a slow one would
-- cost tens of milliseconds per request and add nothing). The server's role
-- cannot read this table at all: it calls lookup_api_key (00005), which
-- returns one row by its public key_id.

-- +goose Up
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- surrogate: never leaves the server
    key_id        text NOT NULL UNIQUE CHECK (key_id ~ '^[a-z2-7]{12}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes        text[] NOT NULL,
    customer_id   text REFERENCES customers (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz
);

-- Per-request state lives apart from the keys, so the server's role can
-- write it without being able to touch a key.
CREATE TABLE api_key_usage (
    key_id       text PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- Brute-force lockout buckets (internal/security/lockout.go). Kept in
-- Postgres so the state survives a restart and is shared by replicas.
CREATE TABLE auth_lockouts (
    bucket           text PRIMARY KEY,
    failures         integer NOT NULL,
    window_start     timestamptz NOT NULL,
    strikes          integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE auth_lockouts;
DROP TABLE api_key_usage;
DROP TABLE api_keys;
