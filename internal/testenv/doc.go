// Package testenv gives tests real services: an embedded NATS server with
// JetStream ([NATS]) and a fresh PostgreSQL database ([Postgres],
// [PostgresPool]), plus a [Logger] that writes to the test's output and a
// polling helper, [Eventually], so that no test sleeps.
//
// Import it only from _test.go files.
//
// # NATS
//
// Each call to [NATS] starts its own server on a random port with its store
// in t.TempDir() and sync_interval: always, the mode production runs in. A
// server starts in a few milliseconds, so there is no shared server to
// coordinate.
//
// # PostgreSQL
//
// [Postgres] creates a database with a random name on the server named by
// MODLEDGER_TEST_DATABASE_URL, else DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, and drops it
// when the test ends. The user needs the CREATEDB privilege. When the server
// cannot be reached the test fails (it is not skipped): run
// deploy/dev/ensure-postgres.sh to start one.
//
// # Logging
//
// [Logger] writes through t.Output, so lines show up with the test that
// produced them (always with -v, otherwise only when it fails). Set
// MODLEDGER_TEST_LOG_LEVEL (debug, info, warn, error) to change its level;
// it defaults to debug. Embedded NATS servers log at info or above unless
// that variable asks for debug.
package testenv
