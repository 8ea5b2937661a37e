// Package dbtest gives each test package a fresh, migrated Postgres
// database of its own and drops it afterwards. Tests run against real
// Postgres, never a mock of it.
//
// Use it from TestMain:
//
//	var dsn string
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }
//
// The server is found the way `make test` documents: TEST_DATABASE_URL,
// else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres. If
// none answers, the package fails with a message that says so: a missing
// database is a failure, never a skip.
//
// Imports: internal/auth (to mint keys), internal/demo, internal/store and
// pgx.
package dbtest
