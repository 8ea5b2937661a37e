-- What each audit record needs beyond the first version of the trail.
--
--  * record_id: a random id given to every record when it is made. It is
--    how a record that may or may not have been committed (the commit was
--    sent, then the connection died) is told apart from a new one: the
--    writer never inserts a record_id twice, so a retry or a replay from
--    the spill directory cannot record one call twice.
--  * seal_key_id: which HMAC key sealed the row (a key id derived from the
--    key, never the key). `server audit verify` checks each row with the
--    key it names, so a key rotation, or a database used in development
--    (the public development key) and then in production, reads as what
--    it is rather than as tampering. Rows from before this migration have
--    '' and are checked in the first version's form.
--  * replayed: the record was spilled to local disk while Postgres could
--    not take it and appended later; it sits at the head of the chain as
--    of its replay, with its original recorded_at.
--  * trace_id: the W3C trace id of the request, when the client sent one.
--
-- The server's role reads record_id back (to skip records already
-- committed); it still cannot read the records themselves.

-- +goose Up
ALTER TABLE audit_log
    ADD COLUMN record_id   text,
    ADD COLUMN seal_key_id text    NOT NULL DEFAULT '',
    ADD COLUMN replayed    boolean NOT NULL DEFAULT false,
    ADD COLUMN trace_id    text    NOT NULL DEFAULT '';
CREATE UNIQUE INDEX audit_log_record_id ON audit_log (record_id);
GRANT SELECT (record_id) ON audit_log TO order_mcp_app;

-- +goose Down
REVOKE SELECT (record_id) ON audit_log FROM order_mcp_app;
DROP INDEX audit_log_record_id;
ALTER TABLE audit_log DROP COLUMN trace_id, DROP COLUMN replayed, DROP COLUMN seal_key_id, DROP COLUMN record_id;
