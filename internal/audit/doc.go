// Package audit is the durable, tamper-evident audit trail.
//
// Checklist: "audit everything". What is recorded:
//
//   - every tool call that reaches the MCP layer, allowed or denied: one
//     record each (Call, written by the MCP layer when the call ends);
//   - refusals before the MCP layer (bad credentials, rate limits,
//     lockouts, foreign Origin...), aggregated per source, reason and
//     minute so that a flood cannot fill the table (Writer.Refusal);
//   - administrative commands: migrate, seed, keys create/revoke
//     (Writer.Admin).
//
// Durability (writer.go): Writer.Write returns nil only once the record is
// committed, and the MCP layer does not release a tool result before that.
// Concurrent calls share commits (group commit): while one batch is being
// committed the next one gathers, so under load one fsync covers many
// calls. cancel_order's change and its record commit in one transaction
// (Call.ForTx and store.CancelOrder). When Postgres cannot take a batch
// after retries, it goes to the spill directory (spill.go), fsynced, and is
// appended when Postgres is back; every record has an id the trail never
// holds twice, so nothing is recorded twice.
//
// Tamper evidence (chain.go): each row carries HMAC-SHA256(key, previous
// row's HMAC || canonical encoding of the row) and the id of the key that
// sealed it. The key (AUDIT_HMAC_KEY) is never in the database, so someone
// who can edit rows cannot recompute the chain. Verify walks it with the
// current and previous keys. Several processes append at once (replicas,
// stdio processes, the command line); each has one Writer, and the store
// orders the chain across processes with an advisory lock held for each
// batch's transaction.
//
// Imports: internal/store. Nothing above it.
package audit
