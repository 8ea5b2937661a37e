-- The durable audit trail (internal/audit).
--
-- Checklist: "audit everything". Every tool call that reaches the MCP layer,
-- allowed or denied, is one row; refusals before it (bad credentials, rate
-- limits, lockouts, foreign Origin) are aggregated per source, reason and
-- minute; administrative commands are rows too.
--
-- Rows form a hash chain: hmac = HMAC-SHA256(AUDIT_HMAC_KEY, prev_hmac ||
-- canonical row). The key is not in the database, so whoever can write this
-- table cannot recompute the chain after editing it; `server audit verify`
-- finds the first broken link. seq is assigned by the writer under an
-- advisory lock, so it is gapless and a deleted row shows as a gap.

-- +goose Up
CREATE TABLE audit_log (
    seq            bigint PRIMARY KEY CHECK (seq > 0),
    recorded_at    timestamptz NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('tool_call', 'refusal', 'admin')),
    principal      text NOT NULL DEFAULT '',
    credential_id  text NOT NULL DEFAULT '',
    transport      text NOT NULL DEFAULT '',
    action         text NOT NULL DEFAULT '',
    object_ids     text[] NOT NULL DEFAULT '{}',
    decision       text NOT NULL CHECK (decision IN ('allowed', 'denied')),
    outcome        text NOT NULL,
    reason         text NOT NULL DEFAULT '',
    source         text NOT NULL DEFAULT '',
    count          integer NOT NULL DEFAULT 1 CHECK (count > 0),
    latency_us     bigint NOT NULL DEFAULT 0,
    correlation_id text NOT NULL DEFAULT '',
    -- Redacted arguments, stored as the exact text that was sealed (jsonb
    -- would reorder keys and break the chain).
    arguments      text NOT NULL DEFAULT '',
    prev_hmac      bytea NOT NULL,
    hmac           bytea NOT NULL CHECK (length(hmac) = 32)
);

CREATE INDEX audit_log_principal ON audit_log (principal, recorded_at);

-- +goose Down
DROP TABLE audit_log;
