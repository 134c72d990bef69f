package projection_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/projection"
)

// TestSnapshotBatch: the statements of a list or statistics query share one
// snapshot, sent in one round trip with their BEGIN and COMMIT; a statement
// that fails fails the query, and the connection (its transaction left open
// by the skipped COMMIT) is not handed to the next query.
func TestSnapshotBatch(t *testing.T) {
	b := setupQueries(t, nil)
	cfg := b.pool.Config().Copy()
	cfg.MaxConns = 1 // every query gets the same connection, unless it was discarded
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q, err := projection.NewQueries(pool, projection.SchemaDefault, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// One snapshot: both statements see the same transaction, which is
	// repeatable read and read only.
	var tx1, tx2 int64
	var iso, ro string
	err = q.SnapshotBatchForTest(t.Context(), func(batch *pgx.Batch) {
		batch.Queue("SELECT pg_current_xact_id()::text::bigint, current_setting('transaction_isolation'), current_setting('transaction_read_only')").QueryRow(func(r pgx.Row) error {
			return r.Scan(&tx1, &iso, &ro)
		})
		batch.Queue("SELECT pg_current_xact_id()::text::bigint").QueryRow(func(r pgx.Row) error { return r.Scan(&tx2) })
	})
	if err != nil || tx1 != tx2 || iso != "repeatable read" || ro != "on" {
		t.Fatalf("transaction %d then %d, %q, read only %q (%v): want one repeatable-read read-only transaction", tx1, tx2, iso, ro, err)
	}

	// A failing statement fails the batch; the next query still works.
	err = q.SnapshotBatchForTest(t.Context(), func(batch *pgx.Batch) {
		batch.Queue("SELECT 1/0")
	})
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("failing batch: %v, want division by zero", err)
	}
	if _, err := q.GuildStatistics(t.Context(), qGuild, projection.GuildStatisticsParams{}); err != nil {
		t.Fatalf("the query after a failed batch: %v", err)
	}
	c, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if st := c.Conn().PgConn().TxStatus(); st != 'I' {
		t.Fatalf("the pool's connection is in transaction status %q, want idle", st)
	}
}
