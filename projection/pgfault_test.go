package projection

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/internal/pgcluster"
	"github.com/modledger/modledger/internal/testenv"
)

// TestProjectionSurvivesPostgresCrashes projects a steady workload into a
// private PostgreSQL cluster that is stopped with `pg_ctl stop -m
// immediate` (no checkpoint, as a crash) twice and started again: the
// projector reconnects with backoff and the read model converges to the
// fold of the stream.
func TestProjectionSurvivesPostgresCrashes(t *testing.T) {
	t.Parallel()
	dir := testenv.ReachableTempDir(t)
	cluster, err := pgcluster.Start(t.Context(), dir)
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })

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
	cfg, err := pgxpool.ParseConfig(cluster.URL())
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
	b.startProjector(t)

	w := newWorkload(b.client, b.clock, 20)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(t.Context(), t, 3000, 8, 3)
	}()
	var outages []time.Duration
	for range 2 {
		time.Sleep(400 * time.Millisecond)
		if err := cluster.Kill(t.Context()); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		time.Sleep(time.Second)
		if cluster, err = pgcluster.Start(t.Context(), dir); err != nil {
			t.Fatal(err)
		}
		outages = append(outages, time.Since(down))
	}
	wg.Wait()
	restarted := time.Now()
	b.waitCaughtUp(t, 90*time.Second)
	t.Logf("workload: %d commands; PostgreSQL killed twice (down %v); caught up %s after the last restart",
		w.sent, outages, time.Since(restarted).Round(time.Millisecond))
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
}
