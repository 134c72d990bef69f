package projection

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/internal/testenv"
)

// Projection benchmarks. Each reports events/s; the backlog ones also
// measure, in the same run and on the same database, a plain COPY of
// same-sized rows (copyCeiling) and report the projection's share of it.
// In a smoke run (-benchtime 1x) they use their smallest sizes; the
// figures in docs/benchmarks.md come from the commands given there.

// BenchmarkProjectionApplyBatch measures Store.ApplyBatch, one batch per
// op, on a generation that already holds a backlog (so that changes load
// cases from the table and indexes are not empty): opens only, and the
// benchmark stream's mix of opens and changes.
func BenchmarkProjectionApplyBatch(b *testing.B) {
	for _, mix := range []struct {
		name    string
		changes float64
	}{{"opens", 0}, {"mixed", benchChangeShare}} {
		for _, size := range []int{1000, 10_000} {
			b.Run(fmt.Sprintf("%s/batch=%d", mix.name, size), func(b *testing.B) {
				ctx := context.Background()
				pool := testenv.PostgresPool(b)
				store, err := NewStore(pool, SchemaDefault)
				if err != nil {
					b.Fatal(err)
				}
				if err := store.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				p := NewCasesProjection(nil)
				if _, err := store.Activate(ctx, p); err != nil {
					b.Fatal(err)
				}
				preload := 20_000
				if benchSmoke() {
					preload = 2000
				}
				s := newBenchStream(benchGuildsFor(preload+size), mix.changes)
				for range preload / 1000 {
					if _, _, err := store.ApplyBatch(ctx, p, s.batch(1000)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				var spent time.Duration
				for range b.N {
					b.StopTimer()
					evs := s.batch(size)
					b.StartTimer()
					start := time.Now()
					if _, _, err := store.ApplyBatch(ctx, p, evs); err != nil {
						b.Fatal(err)
					}
					spent += time.Since(start)
				}
				b.ReportMetric(float64(b.N*size)/spent.Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkProjectorCatchUp measures how fast a projector, as configured by
// default, applies a backlog: backlog events of the benchmark stream (30%
// changes, ten events a guild) are put in the durable stream, then a
// projector starts from nothing and is timed until its checkpoint reaches
// the head. It reports events/s, the COPY ceiling of as many same-sized
// rows measured right after, the ratio of the two, and the largest Go heap
// seen meanwhile (the process also runs the embedded NATS server).
func BenchmarkProjectorCatchUp(b *testing.B) {
	for _, backlog := range benchBacklogs(b, 10_000, 100_000) {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				lb := setupLedger(b)
				publishBenchBacklog(b, lb.env.Conn(b), backlog)
				head := lb.lastCaseSeq(b)
				done := make(chan struct{})
				var once sync.Once
				p, err := NewProjector(ProjectorConfig{JetStream: lb.js, Store: lb.store, Projection: NewCasesProjection(nil),
					Logger: testenv.Logger(b), OnBatch: func(_ int, cp uint64) {
						if cp >= head {
							once.Do(func() { close(done) })
						}
					}})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				heap := sampleHeap()
				b.StartTimer()
				start := time.Now()
				if err := p.Start(b.Context()); err != nil {
					b.Fatal(err)
				}
				select {
				case <-done:
				case <-time.After(30 * time.Minute):
					b.Fatal("projector did not catch up in 30 minutes")
				}
				elapsed := time.Since(start)
				b.StopTimer()
				peak := heap()
				if err := p.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				reportAgainstCeiling(b, lb.pool, backlog, elapsed, BatchSizeDefault)
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			}
		})
	}
}

// BenchmarkRebuild measures a rebuild of the cases projection from a
// backlog (the benchmark stream, as in BenchmarkProjectorCatchUp) to the
// swap, with no live traffic, in bulk (the default) and batch by batch,
// and reports events/s against the COPY ceiling measured right after in
// batches of the rebuild's size.
func BenchmarkRebuild(b *testing.B) {
	for _, backlog := range benchBacklogs(b, 10_000, 100_000) {
		for _, incremental := range []bool{false, true} {
			mode := "bulk"
			if incremental {
				mode = "incremental"
			}
			b.Run(fmt.Sprintf("backlog=%d/%s", backlog, mode), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					b.StopTimer()
					lb := setupLedger(b)
					publishBenchBacklog(b, lb.env.Conn(b), backlog)
					p := NewCasesProjection(nil)
					if _, err := lb.store.Activate(context.Background(), p); err != nil {
						b.Fatal(err)
					}
					runtime.GC()
					heap := sampleHeap()
					b.StartTimer()
					start := time.Now()
					gen, err := Rebuild(context.Background(), RebuildConfig{JetStream: lb.js, Store: lb.store, Projection: p,
						Incremental: incremental, Logger: testenv.Logger(b)})
					if err != nil {
						b.Fatal(err)
					}
					elapsed := time.Since(start)
					b.StopTimer()
					peak := heap()
					cp, _, err := lb.store.Checkpoint(context.Background(), CasesName)
					if err != nil || cp != lb.lastCaseSeq(b) || gen.Number != 2 {
						b.Fatalf("rebuild ended at generation %d, checkpoint %d (%v)", gen.Number, cp, err)
					}
					reportAgainstCeiling(b, lb.pool, backlog, elapsed, RebuildBatchSizeDefault)
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
				}
			})
		}
	}
}

// reportAgainstCeiling reports n events in elapsed as events/s, the COPY
// ceiling of n same-sized rows in batches of batch, and their ratio.
func reportAgainstCeiling(b *testing.B, pool *pgxpool.Pool, n int, elapsed time.Duration, batch int) {
	b.Helper()
	rate := float64(n) / elapsed.Seconds()
	ceiling := copyCeiling(b, pool, n, batch)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(ceiling, "copy-rows/s")
	b.ReportMetric(rate/ceiling, "of-copy")
}

// sampleHeap samples the Go heap in use every 50ms until the returned
// function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		read()
		return peak.Load()
	}
}
