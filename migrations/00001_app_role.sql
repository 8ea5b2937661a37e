-- The least-privilege role the server runs as.
--
-- Checklist: "Capability access: only expose what's strictly necessary",
-- applied to the database. The server never runs its queries as the user in
-- DATABASE_URL: every pooled connection does SET ROLE order_mcp_app first
-- (internal/store/pool.go), and `serve`/`stdio` refuse to start if that role
-- turns out to be a superuser, to own the tables, or to bypass row-level
-- security.
--
-- Roles are cluster-wide while migrations run per database, and several
-- databases may be migrated at the same moment (one per test package, or
-- replicas starting together), so creation tolerates a concurrent twin.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'order_mcp_app') THEN
        BEGIN
            CREATE ROLE order_mcp_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another migration created it a moment ago
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- The user running migrations must be able to SET ROLE to the app role when
-- it also runs the server (the development setup). A superuser can already.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT pg_catalog.pg_has_role(current_user, 'order_mcp_app', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT order_mcp_app TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege OR unique_violation THEN
            RAISE NOTICE 'could not grant order_mcp_app to %: grant it to the serving login role yourself', current_user;
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The role is shared by every database in the cluster: it is left in place.
SELECT 1;
