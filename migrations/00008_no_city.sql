-- The tools return the destination country only: a city is free text the
-- customer typed, and a few words of it can read as an instruction to the
-- model (see internal/privacy). The server's role no longer reads it.

-- +goose Up
REVOKE SELECT (city) ON customers FROM order_mcp_app;

-- +goose Down
GRANT SELECT (city) ON customers TO order_mcp_app;
