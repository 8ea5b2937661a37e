// Package faultenv gives fault-injection tests services of their own that
// they may stop, kill and start again: a throwaway Postgres cluster
// (Postgres) and a throwaway Redis (Redis), each on a free loopback port,
// made from the binaries installed on the machine and removed when the
// test ends.
//
// The shared Postgres (127.0.0.1:5432) and Redis (6379) that the rest of
// the suite uses are never touched: a test that wants to see what the
// server does when its database restarts, or its Redis dies, needs a
// database and a Redis nobody else depends on.
//
// The cluster is made for durability tests: fsync and synchronous commit
// are on, so a record the server was told is committed survives a
// SIGKILL of the postmaster. Postgres refuses to run as root, so when the
// test runs as root, initdb and pg_ctl run as the `postgres` operating
// system user (runuser), in a directory that user owns.
//
// A missing binary fails the test with a message that says what to
// install; it is never a skip, like a missing database elsewhere in the
// suite (internal/dbtest).
//
// Only tests import this package.
//
// Imports: pgx (to create the database) and the standard library. Never
// anything of the server: it stands for the infrastructure, not the code
// under test.
package faultenv
