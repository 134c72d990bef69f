package pgcluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/internal/pgcluster"
)

func TestStartCreatesReusesAndStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The postgres user must reach the directory when the test runs as
	// root: open up the test's own directories, up to the system's temp
	// directory (left as it is).
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := pgcluster.Start(t.Context(), dir)
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	conn, err := pgx.Connect(t.Context(), c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	// Starting again while it runs reuses it.
	again, err := pgcluster.Start(t.Context(), dir)
	if err != nil || again.URL() != c.URL() {
		t.Fatalf("second start: %v %v", again, err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A restart keeps the data and the port.
	third, err := pgcluster.Start(t.Context(), dir)
	if err != nil || third.URL() != c.URL() {
		t.Fatalf("restart: %v %v", third, err)
	}
	conn, err = pgx.Connect(t.Context(), third.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var v int
	if err := conn.QueryRow(t.Context(), `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("data after a restart: %d %v", v, err)
	}
}
