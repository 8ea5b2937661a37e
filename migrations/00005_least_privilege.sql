-- What the server's database role may do: the whole permission model on one
-- screen.
--
-- Checklist: "Capability access" and "Output filtering", enforced by Postgres
-- itself so that a bug in Go cannot widen them:
--
--  * Column grants: order_mcp_app reads only the columns the tools return.
--    It cannot read orders.internal_note, cost_cents or fraud_flag, nor a
--    customer's street address, and it cannot read api_keys at all.
--  * It updates only the columns cancel_order changes, inserts only timeline
--    events and audit rows, and can neither update nor delete an audit row.
--  * Row-level security, FORCEd so that it also binds the table owner,
--    limits every statement to the customer bound to the current
--    transaction (set_config('app.customer_id', ..., true) in
--    internal/store/access.go) unless the transaction is a staff one
--    (app.any_customer = 'on'). An unset binding matches nothing: a
--    statement that forgot to set it reads no rows instead of all rows.

-- +goose Up

-- +goose StatementBegin
DO $$
BEGIN
    -- Postgres 15 already does this; older servers let everyone create
    -- objects in public, which would let the app role shadow our functions.
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not revoke CREATE on schema public; check it yourself';
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA public TO order_mcp_app;

GRANT SELECT (id, name, email, phone, city, country_code) ON customers TO order_mcp_app;

GRANT SELECT (id, customer_id, status, placed_at, updated_at, item_count, total_cents,
              currency, card_brand, card_last4, delivery_instructions, cancelled_at)
    ON orders TO order_mcp_app;
GRANT UPDATE (status, updated_at, cancelled_at, cancel_reason) ON orders TO order_mcp_app;

GRANT SELECT (id, order_id, customer_id, status, occurred_at, description) ON order_events TO order_mcp_app;
GRANT INSERT (order_id, customer_id, status, occurred_at, description) ON order_events TO order_mcp_app;

GRANT SELECT ON shipments TO order_mcp_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON api_key_usage, auth_lockouts TO order_mcp_app;

-- Append-only for the server: it reads back only the chain link (seq, hmac).
GRANT INSERT ON audit_log TO order_mcp_app;
GRANT SELECT (seq, hmac) ON audit_log TO order_mcp_app;

-- The one way the server reaches api_keys: a lookup by public key id.
-- SECURITY DEFINER runs it with the owner's rights; the pinned search_path
-- stops a caller from substituting its own objects.
-- +goose StatementBegin
CREATE FUNCTION lookup_api_key(p_key_id text)
RETURNS TABLE (key_id text, name text, secret_sha256 bytea, scopes text[], customer_id text,
               expires_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.key_id, k.name, k.secret_sha256, k.scopes, k.customer_id, k.expires_at, k.revoked_at
    FROM public.api_keys AS k
    WHERE k.key_id = p_key_id
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION lookup_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lookup_api_key(text) TO order_mcp_app;

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customers
    USING (id = current_setting('app.customer_id', true)
           OR current_setting('app.any_customer', true) = 'on');

ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orders
    USING (customer_id = current_setting('app.customer_id', true)
           OR current_setting('app.any_customer', true) = 'on');

ALTER TABLE order_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON order_events
    USING (customer_id = current_setting('app.customer_id', true)
           OR current_setting('app.any_customer', true) = 'on');

ALTER TABLE shipments ENABLE ROW LEVEL SECURITY;
ALTER TABLE shipments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON shipments
    USING (customer_id = current_setting('app.customer_id', true)
           OR current_setting('app.any_customer', true) = 'on');

-- +goose Down
DROP POLICY tenant_isolation ON shipments;
DROP POLICY tenant_isolation ON order_events;
DROP POLICY tenant_isolation ON orders;
DROP POLICY tenant_isolation ON customers;
ALTER TABLE shipments NO FORCE ROW LEVEL SECURITY;
ALTER TABLE shipments DISABLE ROW LEVEL SECURITY;
ALTER TABLE order_events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE order_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
ALTER TABLE customers NO FORCE ROW LEVEL SECURITY;
ALTER TABLE customers DISABLE ROW LEVEL SECURITY;
DROP FUNCTION lookup_api_key(text);
REVOKE ALL ON audit_log, api_key_usage, auth_lockouts, shipments, order_events, orders, customers FROM order_mcp_app;
REVOKE USAGE ON SCHEMA public FROM order_mcp_app;
