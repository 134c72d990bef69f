package testenv

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestWithDatabase(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct{ name, dsn string }{
		{"URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
		{"URLNoPath", "postgresql://u:secret@db.example:6543?sslmode=require"},
		{"KeywordValue", "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable"},
		{"KeywordValueNoDB", "host=/var/run/postgresql user=postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			orig, err := pgconn.ParseConfig(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			dsn, err := withDatabase(tc.dsn, "modledger_test_0123")
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgconn.ParseConfig(dsn)
			if err != nil {
				t.Fatalf("parse %q: %v", dsn, err)
			}
			if got.Database != "modledger_test_0123" {
				t.Fatalf("database = %q in %q", got.Database, dsn)
			}
			if got.Host != orig.Host || got.Port != orig.Port || got.User != orig.User || got.Password != orig.Password {
				t.Fatalf("%q changed more than the database: %+v", dsn, got)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()

	for _, dsn := range []string{
		"postgres://u:secret@h/db",
		"postgres://u@h/db?password=secret",
		"host=h user=u password=secret dbname=db",
		"host=h password = 'sec ret' dbname=db",
	} {
		if got := redactDSN(dsn); strings.Contains(got, "secret") || strings.Contains(got, "sec ret") {
			t.Errorf("redactDSN(%q) = %q, leaks the password", dsn, got)
		}
	}
}
