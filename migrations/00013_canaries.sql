-- Canary records (docs/BEYOND-THE-CHECKLIST.md#canary-records): ids of customers and orders that no
-- legitimate flow touches. `server seed --canary` plants a customer with
-- orders that look like any other and lists their ids here; an operator
-- may list ids of their own (INSERT INTO canaries (id) VALUES (...)),
-- each order id as well as its customer's.
--
-- The tools' statements never return or change a row named here, or an
-- order of a customer named here (they read "not found", "no orders"),
-- and every lookup also asks whether the id it was given is listed, in
-- the same round trip, whatever the answer: a call that reaches a canary
-- runs exactly the statements a call for a missing id runs. The server
-- then answers "not found", logs an ERROR, audits the call with outcome
-- "canary" and counts it: an early warning of enumeration, of a leaked
-- key, or of a leaked copy of the data (the ids are in a dump too).
--
-- Ids only, no customer data: no row-level security needed. The server
-- may read the ids, never change them.

-- +goose Up
CREATE TABLE canaries (
    id         text PRIMARY KEY CHECK (id ~ '^(cus|ord)_[0-9A-HJKMNP-TV-Z]{16}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT (id) ON canaries TO order_mcp_app;

-- +goose Down
DROP TABLE canaries;
