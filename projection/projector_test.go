package projection

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/internal/testenv"
)

// ledgerBundle is a real ledger for projection tests: NATS with a command
// service, and a PostgreSQL database with a migrated store.
type ledgerBundle struct {
	env    *testenv.NATSEnv
	js     jetstream.JetStream
	client *command.Client
	clock  *testClock
	pool   *pgxpool.Pool
	dsn    string
	store  *Store
}

func setupLedger(t testing.TB) *ledgerBundle {
	t.Helper()
	env := testenv.NATS(t)
	b := &ledgerBundle{env: env, js: env.JetStream(t), clock: &testClock{now: time.Now().UTC()}}
	svc, err := command.NewService(command.Config{Conn: env.Conn(t), Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	if b.client, err = command.NewClient(env.Conn(t)); err != nil {
		t.Fatal(err)
	}
	b.dsn = testenv.Postgres(t)
	cfg, err := pgxpool.ParseConfig(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	if b.pool, err = pgxpool.NewWithConfig(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Close)
	if b.store, err = NewStore(b.pool, SchemaDefault); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

// startProjector runs a projector of the cases projection until t ends.
func (b *ledgerBundle) startProjector(t *testing.T) *Projector {
	t.Helper()
	p, err := NewProjector(ProjectorConfig{JetStream: b.js, Store: b.store, Projection: NewCasesProjection(nil),
		Logger: testenv.Logger(t), StandbyPoll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if err := p.Err(); err != nil {
			t.Errorf("projector stopped with %v", err)
		}
	})
	return p
}

// lastSeq returns the stream's last sequence of a case event.
func (b *ledgerBundle) lastCaseSeq(t testing.TB) uint64 {
	t.Helper()
	s, err := b.js.Stream(context.Background(), StreamDefault)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "modledger.case.>")
	if err != nil {
		t.Fatal(err)
	}
	return m.Sequence
}

// waitCaughtUp waits until the cases projection has applied every event.
func (b *ledgerBundle) waitCaughtUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	want := b.lastCaseSeq(t)
	testenv.Eventually(t, timeout, func() bool {
		cp, _, err := b.store.Checkpoint(context.Background(), CasesName)
		return err == nil && cp >= want
	}, "projection did not reach sequence %d", want)
}

func TestProjectionConvergesToTheFoldOfTheStream(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	b.startProjector(t)
	b.startProjector(t) // a standby: only one applies
	w := newWorkload(b.client, b.clock, 20)
	w.run(t.Context(), t, 5000, 16, 1)
	t.Logf("workload: %d commands, %d rejected by the domain", w.sent, w.rejected)
	b.waitCaughtUp(t, 60*time.Second)
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
}

func TestProjectorBuildsALongBacklogInBulk(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	publishBenchBacklog(t, b.env.Conn(t), 3000)
	p, err := NewProjector(ProjectorConfig{JetStream: b.js, Store: b.store, Projection: NewCasesProjection(nil),
		Logger: testenv.Logger(t), StandbyPoll: 100 * time.Millisecond, BulkCatchUp: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if err := p.Err(); err != nil {
			t.Errorf("projector stopped with %v", err)
		}
	})
	b.waitCaughtUp(t, 60*time.Second)
	gen, err := b.store.Activate(t.Context(), NewCasesProjection(nil))
	if err != nil {
		t.Fatal(err)
	}
	if gen.Number != 2 {
		t.Fatalf("the backlog was applied in generation %d, not rebuilt in bulk into generation 2", gen.Number)
	}
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
	// It goes on batch by batch.
	newWorkload(b.client, b.clock, 5).run(t.Context(), t, 300, 4, 9)
	b.waitCaughtUp(t, 60*time.Second)
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
}
