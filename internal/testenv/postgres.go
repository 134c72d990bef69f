package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Environment variables and default for the PostgreSQL server that tests
// create their databases on. The first one set wins.
const (
	// DatabaseURLEnv is the test-specific server URL.
	DatabaseURLEnv = "MODLEDGER_TEST_DATABASE_URL"
	// DatabaseURLFallbackEnv is the general one, also read by the binary.
	DatabaseURLFallbackEnv = "DATABASE_URL"
	// DatabaseURLDefault is what deploy/dev/ensure-postgres.sh provides.
	DatabaseURLDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

// DatabasePrefix starts the name of every database Postgres creates, so
// leftovers from killed test runs are easy to find and drop.
const DatabasePrefix = "modledger_test_"

// postgresTimeout bounds each administrative step (connect, create, drop).
const postgresTimeout = 30 * time.Second

// Postgres creates an empty database with a random name and returns a DSN for
// it, in the same form (URL or keyword/value) as the configured one. The
// database is dropped, disconnecting any remaining sessions, when t ends.
// The test fails when the server cannot be reached.
func Postgres(t testing.TB) string {
	t.Helper()
	adminDSN, source := postgresAdminDSN()

	name := DatabasePrefix + randomHex(t, 8)
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(t.Context(), postgresTimeout)
	defer cancel()
	conn := postgresConnect(ctx, t, adminDSN, source)
	defer conn.Close(context.WithoutCancel(ctx))
	// CREATE DATABASE takes no parameters; the name is our own hex string,
	// quoted as an identifier.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("testenv: create database %s on %s: %v", name, redactDSN(adminDSN), err)
	}

	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			t.Errorf("testenv: drop database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	dsn, err := withDatabase(adminDSN, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// PostgresPool creates a database as Postgres does and returns a pool
// connected to it, closed when t ends (before the database is dropped).
func PostgresPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := Postgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), postgresTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("testenv: open pool on %s: %v", redactDSN(dsn), err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("testenv: ping %s: %v", redactDSN(dsn), err)
	}
	return pool
}

// postgresAdminDSN returns the configured server DSN and where it came from.
func postgresAdminDSN() (dsn, source string) {
	for _, env := range []string{DatabaseURLEnv, DatabaseURLFallbackEnv} {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v, env
		}
	}
	return DatabaseURLDefault, "the default"
}

func postgresConnect(ctx context.Context, t testing.TB, dsn, source string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL is not reachable at %s (%s): %v\n"+
			"Start a local server with deploy/dev/ensure-postgres.sh, or set %s to a server "+
			"where the user may create databases.",
			redactDSN(dsn), source, err, DatabaseURLEnv)
	}
	return conn
}

// withDatabase returns dsn pointing at database name instead.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse database URL %s: %w", redactDSN(dsn), err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value form: a later keyword overrides an earlier one.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN hides the password in a DSN of either form.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return passwordKV.ReplaceAllString(dsn, "${1}xxxxx")
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random name: %v", err)
	}
	return hex.EncodeToString(b)
}
