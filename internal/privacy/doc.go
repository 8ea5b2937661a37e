// Package privacy is the output policy for personal data: for every kind of
// personal data a tool can return, exactly one function here decides how
// much of it leaves the server.
//
// Checklist: "Output filtering: avoid returning sensitive fields" and "mask
// confidential fields". The policy is the same for every caller: a staff
// caller never sees more of a customer than the customer's own assistant
// does. Fields with no function here (street address, internal notes, costs,
// fraud flags, surrogate keys) are not masked: they are never read at all
// (see the column grants in migrations/00005_least_privilege.sql).
//
// Imports: the standard library only.
package privacy
