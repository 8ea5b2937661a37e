// Package migrations holds the database schema as plain SQL files, embedded
// into the server binary so `server migrate` needs nothing but DATABASE_URL.
//
// Files are applied in order by goose (internal/store/migrate.go). Read them
// in order to learn the data model: 00001 creates the server's role, 00002
// is the domain, 00003 credentials, 00004 the audit trail, 00005 the whole
// permission model of that role (column grants and row-level security),
// 00006 the one question the role may ask about keys, and 00007 and 00008
// take back columns no tool needs any more.
//
// Imports: the standard library only (embed).
package migrations
