-- A correction record: the trail is append-only, so when it turns out that
-- a record says more than what happened, a later record says so.
--
-- The one case today: a tool call's record was committed, but the commit's
-- acknowledgement was lost (Postgres went away between the two). The
-- server could not know the record was there, so it withheld the call's
-- result (the client got an internal error with the call's reference) and
-- spilled a copy of the record marked "withheld". When the spill is
-- replayed and finds the original already in the trail, it appends a
-- correction instead: same correlation id, outcome "withheld", naming the
-- original record_id. `server audit tail` and anyone reading the trail
-- see both: what was decided, and that the result never left.

-- +goose Up
ALTER TABLE audit_log DROP CONSTRAINT audit_log_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_kind_check
    CHECK (kind IN ('tool_call', 'refusal', 'admin', 'correction'));

-- +goose Down
-- The trail is append-only: a trail holding corrections cannot go back.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log WHERE kind = 'correction') THEN
        RAISE EXCEPTION 'audit_log holds correction records; the trail cannot be migrated down past them';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE audit_log DROP CONSTRAINT audit_log_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_kind_check
    CHECK (kind IN ('tool_call', 'refusal', 'admin'));
