// Package confirm is the human confirmation of destructive tool calls
// (docs/BEYOND-THE-CHECKLIST.md#human-confirmation-of-destructive-calls): the part of it that does not depend on any one
// tool.
//
// A prompt injection can make a model call cancel_order; budgets and quotas
// only bound the damage. So before a destructive tool acts, the server asks
// the user, through the client, with a form elicitation, and acts only on
// the user's "accept". This package provides what that takes:
//
//   - Policy, the operator's CANCEL_CONFIRMATION: required, if-supported or
//     off;
//   - CanAsk, whether the client of a call can be asked at all (it
//     declared form elicitation, and an answer can come back: over
//     2026-07-28 in the retried call, in older protocols only inside a
//     session);
//   - the question (Question: a form with one boolean, "confirm") and the
//     reading of its answer (ReadAnswer);
//   - Sealer, which seals the state the client must hand back with its
//     answer (requestState) with AES-256-GCM under CONFIRMATION_SECRET,
//     bound to the caller (subject and customer binding), the tool, a
//     digest of the arguments, an expiry and a random nonce, and opens it
//     again, refusing a state that is forged, altered, expired, or issued
//     for another caller, tool or set of arguments.
//
// The state and the answer are input from the client, in every protocol
// version (a 2025-11-25 client can send both in its first call, looking
// exactly like the SDK's own retry), so nothing in them is trusted before
// Open has checked it. That a nonce is answered once, across replicas, is
// recorded in Postgres by the caller (internal/store, confirmation_nonces);
// the tools package runs the whole exchange (tools.Call.Confirm).
//
// Imports: the go-sdk and jsonschema-go (the question's form) only. Never
// another internal package: the tools and the MCP layer build on it.
package confirm
