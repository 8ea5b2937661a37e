// Package migrations holds the database schema as plain SQL files, embedded
// into the server binary so `server migrate` needs nothing but DATABASE_URL.
//
// Files are applied in order by goose (internal/store/migrate.go). Read them
// in order to learn the data model: 00002 is the domain, 00003 credentials,
// 00004 the audit trail and 00005 the whole permission model of the
// server's database role (column grants and row-level security).
//
// This package imports nothing but embed.
package migrations

import "embed"

// FS is the set of migration files.
//
//go:embed *.sql
var FS embed.FS
