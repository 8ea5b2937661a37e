package migrations

import "embed"

// FS is the set of migration files.
//
//go:embed *.sql
var FS embed.FS
