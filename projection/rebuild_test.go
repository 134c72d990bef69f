package projection

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

func TestRebuildSwapsInTheSameModelWhileQueriesAnswer(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	b.startProjector(t)
	w := newWorkload(b.client, b.clock, 10)
	w.run(t.Context(), t, 1500, 8, 3)
	b.waitCaughtUp(t, 60*time.Second)
	before, err := b.store.Activate(t.Context(), NewCasesProjection(nil))
	if err != nil {
		t.Fatal(err)
	}
	indexesBefore := schemaIndexes(t, b.pool, before.Schema)

	// Queries and commands go on during the rebuild.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var queries, lastCount atomic.Int64
	queryErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var n int64
			if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM modledger.cases`).Scan(&n); err != nil {
				if ctx.Err() == nil {
					queryErr <- err
				}
				return
			}
			if n < lastCount.Load() {
				queryErr <- fmt.Errorf("case count went back from %d to %d", lastCount.Load(), n)
				return
			}
			lastCount.Store(n)
			queries.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		w.run(ctx, t, 500, 4, 4)
	}()
	var reports int
	gen, err := Rebuild(t.Context(), RebuildConfig{JetStream: b.js, Store: b.store, Projection: NewCasesProjection(nil),
		BatchSize: 200, Progress: func(RebuildProgress) { reports++ }})
	if err != nil {
		t.Fatal(err)
	}
	// Queries go on against the new generation too.
	after := queries.Load()
	testenv.Eventually(t, 10*time.Second, func() bool { return queries.Load() > after+10 }, "queries stopped after the swap")
	cancel()
	wg.Wait()
	select {
	case err := <-queryErr:
		t.Fatalf("a query failed during the rebuild: %v", err)
	default:
	}
	if gen.Number != before.Number+1 || reports < 2 || queries.Load() == 0 {
		t.Fatalf("generation %d after %d, %d progress reports, %d queries", gen.Number, before.Number, reports, queries.Load())
	}
	// The bulk load dropped the secondary indexes and constraints: they
	// are all back, as the migrations make them.
	if after := schemaIndexes(t, b.pool, gen.Schema); !slices.Equal(after, indexesBefore) {
		t.Fatalf("indexes after the rebuild:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(indexesBefore, "\n"))
	}
	var oldSchemas int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, before.Schema).Scan(&oldSchemas); err != nil || oldSchemas != 0 {
		t.Fatalf("old generation schema still there: %d %v", oldSchemas, err)
	}
	// The live projector carries on in the new generation.
	w.run(t.Context(), t, 200, 4, 5)
	b.waitCaughtUp(t, 60*time.Second)
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
}

// schemaIndexes lists the definitions of every index and constraint of the
// tables in schema, with the schema's name taken out, sorted.
func schemaIndexes(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
		UNION ALL
		SELECT con.conname || ' ' || c.relname || ' ' || pg_get_constraintdef(con.oid) FROM pg_constraint con
		JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range defs {
		defs[i] = strings.ReplaceAll(d, schema+".", "")
	}
	slices.Sort(defs)
	if len(defs) < 10 {
		t.Fatalf("schema %s has only %d indexes and constraints", schema, len(defs))
	}
	return defs
}

// casesV2 is the cases projection with a newer code version, as a new
// build of modledger would have it.
type casesV2 struct{ *CasesProjection }

func (casesV2) Version() int { return CasesVersion + 1 }

func TestProjectorRebuildsWhenItsCodeIsNewer(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	old := b.startProjector(t)
	w := newWorkload(b.client, b.clock, 5)
	w.run(t.Context(), t, 300, 4, 6)
	b.waitCaughtUp(t, 30*time.Second)
	if err := old.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := NewProjector(ProjectorConfig{JetStream: b.js, Store: b.store, Projection: casesV2{NewCasesProjection(nil)},
		Logger: testenv.Logger(t), StandbyPoll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	testenv.Eventually(t, 30*time.Second, func() bool {
		st, err := Status(t.Context(), b.js, b.store, "", "", casesV2{NewCasesProjection(nil)})
		return err == nil && st[0].Version == CasesVersion+1 && st[0].Building == 0
	}, "the projector did not rebuild into a version %d generation", CasesVersion+1)
	w.run(t.Context(), t, 100, 4, 7)
	b.waitCaughtUp(t, 30*time.Second)
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
}

// casesUpTo is the cases projection with only its first n migrations, as
// an older build had it.
type casesUpTo struct {
	*CasesProjection
	n int
}

func (c casesUpTo) Migrations() fs.FS {
	all := c.CasesProjection.Migrations()
	names, _ := fs.Glob(all, "*.sql")
	out := fstest.MapFS{}
	for _, name := range names[:c.n] {
		b, _ := fs.ReadFile(all, name)
		out[name] = &fstest.MapFile{Data: b}
	}
	return out
}

// A migration applied in place to the active generation shows through the
// control schema's views: they are made again.
func TestInPlaceMigrationRepointsTheViews(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	store, err := NewStore(pool, SchemaDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	hasCommand := func() bool {
		var n int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = 'modledger' AND table_name = 'case_events' AND column_name = 'command'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if _, err := store.Activate(t.Context(), casesUpTo{NewCasesProjection(nil), 2}); err != nil {
		t.Fatal(err)
	}
	if hasCommand() {
		t.Fatal("the old generation's view already has the command column")
	}
	gen, err := store.Activate(t.Context(), NewCasesProjection(nil))
	if err != nil {
		t.Fatal(err)
	}
	if gen.Number != 1 || !hasCommand() {
		t.Fatalf("generation %d; the view shows the new column: %v", gen.Number, hasCommand())
	}
}

// TestBulkRebuildEqualsTheFold rebuilds, in bulk and batch by batch, a
// backlog of the benchmark stream (opens of every kind and changes of every
// kind, deletions and redactions among them, over many guilds and users;
// more counting cases than the restriction cursor reads at once), and
// checks each read model against the fold of the stream.
func TestBulkRebuildEqualsTheFold(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	publishBenchBacklog(t, b.env.Conn(t), 30_000)
	evs := streamEvents(t, b.js)
	var redactions int
	for _, e := range evs {
		if e.Event == events.NameCaseRedacted {
			redactions++
		}
	}
	if redactions == 0 {
		t.Fatal("the backlog has no redaction")
	}
	for _, incremental := range []bool{false, true} {
		_, err := Rebuild(t.Context(), RebuildConfig{JetStream: b.js, Store: b.store, Projection: NewCasesProjection(nil),
			BatchSize: 4000, Incremental: incremental, Logger: testenv.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), evs)
	}
}
