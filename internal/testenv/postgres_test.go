package testenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/internal/testenv"
)

func TestPostgres(t *testing.T) {
	t.Parallel()

	var (
		name string
		conn *pgx.Conn
	)
	// Closed only after the subtest's cleanup has dropped the database, so
	// the drop has to force this session out.
	t.Cleanup(func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	})
	t.Run("Use", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		var err error
		conn, err = pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect to the test database: %v", err)
		}
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if len(name) != len(testenv.DatabasePrefix)+16 || !strings.HasPrefix(name, testenv.DatabasePrefix) {
			t.Fatalf("database name = %q, want %s<16 hex digits>", name, testenv.DatabasePrefix)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE probe (id bigint PRIMARY KEY, note text NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), "INSERT INTO probe (id, note) VALUES ($1, $2)", 1, "hello"); err != nil {
			t.Fatal(err)
		}
		var note string
		if err := conn.QueryRow(t.Context(), "SELECT note FROM probe WHERE id = $1", 1).Scan(&note); err != nil {
			t.Fatal(err)
		}
		if note != "hello" {
			t.Fatalf("note = %q, want hello", note)
		}
	})
	if t.Failed() {
		return
	}

	pool := testenv.PostgresPool(t)
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestPostgresPoolsAreIsolated(t *testing.T) {
	t.Parallel()

	a, b := testenv.PostgresPool(t), testenv.PostgresPool(t)
	if _, err := a.Exec(t.Context(), "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var found bool
	if err := b.QueryRow(t.Context(), "SELECT to_regclass('only_in_a') IS NOT NULL").Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found {
		t.Fatal("a table created in one test database is visible in another")
	}
}

func TestPostgresParallel(t *testing.T) {
	t.Parallel()

	// Many tests create databases at once; none may trip over another.
	for i := range 16 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			pool := testenv.PostgresPool(t)
			var got int
			if err := pool.QueryRow(t.Context(), "SELECT $1::int", i).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != i {
				t.Fatalf("got %d, want %d", got, i)
			}
		})
	}
}
