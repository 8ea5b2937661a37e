-- Timeline descriptions are free text that other systems may write; the
-- tools describe each status with fixed text of their own (see
-- internal/tools/output.go), so the server's role no longer reads them.

-- +goose Up
REVOKE SELECT (description) ON order_events FROM order_mcp_app;

-- +goose Down
GRANT SELECT (description) ON order_events TO order_mcp_app;
