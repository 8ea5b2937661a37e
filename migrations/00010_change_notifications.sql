-- Change notifications for what the server keeps in memory.
--
-- The server answers two questions per request from memory instead of the
-- database (internal/store/notify.go): "is this API key valid?" (a cache
-- of lookup_api_key rows) and "is this lockout bucket locked?" (a mirror of
-- the locks in auth_lockouts). Every replica keeps one connection that
-- LISTENs on the channels below, and these triggers NOTIFY them on every
-- change, so that:
--
--  * a key revoked, expired, re-scoped or deleted by any means (`server keys
--    revoke`, or plain SQL by an operator) is dropped from every replica's
--    cache when the change commits: the trigger is on the table, not in the
--    application;
--  * a lock earned on one replica holds on all of them at once.
--
-- A notification sent while a replica's LISTEN connection is down is lost:
-- the server therefore reads the database on every request while that
-- connection is down, and throws its whole memory away on every reconnect.
-- NOTIFY is transactional: a rolled-back change notifies nobody.

-- +goose Up

-- Payload: the key id (12 characters). A TRUNCATE names no rows: '*'
-- tells the replicas to forget every key.
-- +goose StatementBegin
CREATE FUNCTION notify_api_key_change() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('order_mcp_credentials', '*');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('order_mcp_credentials', OLD.key_id);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.key_id IS DISTINCT FROM OLD.key_id THEN
        PERFORM pg_notify('order_mcp_credentials', NEW.key_id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- An INSERT needs no notification: a key id that was unknown was never
-- cached (unknown ids never are).
CREATE TRIGGER api_keys_notify AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();
CREATE TRIGGER api_keys_notify_truncate AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_api_key_change();

-- Payload: the bucket, a tab, and the lock's end in Unix microseconds (empty
-- when the bucket is not locked). A bucket name too long for a payload
-- (NOTIFY takes under 8000 bytes) sends '*': reload every lock. Only
-- changes of locked_until notify: counting failures stays in the table and
-- is read there, so N replicas never allow N times the threshold.
-- +goose StatementBegin
CREATE FUNCTION notify_lockout_change() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text;
    u timestamptz;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('order_mcp_lockouts', '*');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF OLD.locked_until IS NULL THEN
            RETURN NULL;
        END IF;
        b := OLD.bucket;
        u := NULL;
    ELSIF TG_OP = 'UPDATE' AND NEW.locked_until IS NOT DISTINCT FROM OLD.locked_until
          AND NEW.bucket = OLD.bucket THEN
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' AND NEW.locked_until IS NULL THEN
        RETURN NULL;
    ELSE
        b := NEW.bucket;
        u := NEW.locked_until;
    END IF;
    IF octet_length(b) > 4000 THEN
        PERFORM pg_notify('order_mcp_lockouts', '*');
    ELSE
        PERFORM pg_notify('order_mcp_lockouts',
            b || E'\t' || coalesce((floor(extract(epoch FROM u) * 1000000))::bigint::text, ''));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER auth_lockouts_notify AFTER INSERT OR UPDATE OR DELETE ON auth_lockouts
    FOR EACH ROW EXECUTE FUNCTION notify_lockout_change();
CREATE TRIGGER auth_lockouts_notify_truncate AFTER TRUNCATE ON auth_lockouts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_lockout_change();

-- +goose Down
DROP TRIGGER auth_lockouts_notify_truncate ON auth_lockouts;
DROP TRIGGER auth_lockouts_notify ON auth_lockouts;
DROP FUNCTION notify_lockout_change();
DROP TRIGGER api_keys_notify_truncate ON api_keys;
DROP TRIGGER api_keys_notify ON api_keys;
DROP FUNCTION notify_api_key_change();
