-- Single-use confirmations of destructive tool calls (docs/BEYOND-THE-CHECKLIST.md#human-confirmation-of-destructive-calls).
--
-- Before a destructive tool runs, the server asks the user through the
-- client and hands the client a sealed state (requestState) naming a
-- random nonce. The answer comes back with that state, possibly to another
-- replica. The first answer to a nonce is recorded here, and the primary
-- key makes it the only one: an answer replayed (to this replica or any
-- other), or a "decline" turned into an "accept", finds the row and is
-- refused.
--
-- Bookkeeping, not customer data: a random nonce, the answer and when the
-- state expires. Nothing here names a caller or an order (the sealed state
-- does, and it never reaches the database). Rows are useless once the
-- state has expired, and the server deletes them after that.

-- +goose Up
CREATE TABLE confirmation_nonces (
    nonce       text PRIMARY KEY CHECK (nonce ~ '^[A-Za-z0-9_-]{22}$'),
    answer      text NOT NULL CHECK (answer IN ('accept', 'decline', 'cancel')),
    answered_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX confirmation_nonces_expires_at ON confirmation_nonces (expires_at);

-- The server records an answer and prunes expired rows. It can neither
-- read an answer back nor change one: no UPDATE, so a recorded "decline"
-- cannot become an "accept". DELETE cannot be granted column by column,
-- which is why store.CheckCatalog lists this table as an exception.
GRANT INSERT (nonce, answer, expires_at) ON confirmation_nonces TO order_mcp_app;
GRANT SELECT (expires_at) ON confirmation_nonces TO order_mcp_app;
GRANT DELETE ON confirmation_nonces TO order_mcp_app;

-- +goose Down
DROP TABLE confirmation_nonces;
