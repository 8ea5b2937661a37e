-- Whether anybody could authenticate at all: `serve` refuses to listen on a
-- non-loopback address when no API key is active and OAuth is not
-- configured. The server's role cannot read api_keys, so it asks this
-- SECURITY DEFINER function, which answers yes or no and nothing else.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION api_keys_active()
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM public.api_keys
                    WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION api_keys_active() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_keys_active() TO order_mcp_app;

-- +goose Down
DROP FUNCTION api_keys_active();
