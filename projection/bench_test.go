package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// The backlog benchmarks run the projector, or the rebuild, in a child
// process (the test binary, see TestMain), as production runs it: beside,
// not inside, the NATS server, whose heap (a million subjects) would
// otherwise make the projector's garbage collection scan it too. The
// benchmark process holds the embedded NATS server and PostgreSQL's test
// database, puts the backlog in the durable stream (the benchmark stream:
// 30% changes, ten events a guild) and times the child. Each reports
// events/s, the COPY ceiling of as many same-sized rows measured right
// after on the same database and their ratio, and the child's CPU time a
// event, peak resident memory and Go allocations.

// BenchmarkProjectorCatchUp times a projector that starts from nothing over
// a backlog until its checkpoint reaches the head: as configured by default
// ("default": a backlog of BulkCatchUpDefault or more is rebuilt in bulk
// and swapped in) and batch by batch ("incremental").
func BenchmarkProjectorCatchUp(b *testing.B) {
	for _, backlog := range benchBacklogs(b, 10_000, 100_000) {
		for _, mode := range []string{"default", "incremental"} {
			b.Run(fmt.Sprintf("backlog=%d/%s", backlog, mode), func(b *testing.B) {
				for range b.N {
					lb := setupLedger(b)
					publishBenchBacklog(b, lb.env.Conn(b), backlog)
					head := lb.lastCaseSeq(b)
					childMode := ""
					if mode == "incremental" {
						childMode = "incremental"
					}
					r := runBenchChild(b, lb, childMode, func() bool {
						cp, _, err := lb.store.Checkpoint(context.Background(), CasesName)
						return err == nil && cp >= head
					})
					reportBenchChild(b, lb, backlog, r, BatchSizeDefault)
				}
			})
		}
	}
}

// BenchmarkRebuild times a rebuild of the cases projection over a backlog,
// from its start to the swap, with no live traffic: in bulk (the default)
// and batch by batch.
func BenchmarkRebuild(b *testing.B) {
	for _, backlog := range benchBacklogs(b, 10_000, 100_000) {
		for _, mode := range []string{"bulk", "incremental"} {
			b.Run(fmt.Sprintf("backlog=%d/%s", backlog, mode), func(b *testing.B) {
				for range b.N {
					lb := setupLedger(b)
					publishBenchBacklog(b, lb.env.Conn(b), backlog)
					if _, err := lb.store.Activate(context.Background(), NewCasesProjection(nil)); err != nil {
						b.Fatal(err)
					}
					childMode := "rebuild"
					if mode == "incremental" {
						childMode = "rebuild-incremental"
					}
					r := runBenchChild(b, lb, childMode, nil)
					gen, err := lb.store.Activate(context.Background(), NewCasesProjection(nil))
					cp, _, err2 := lb.store.Checkpoint(context.Background(), CasesName)
					if err != nil || err2 != nil || cp != lb.lastCaseSeq(b) || gen.Number != 2 {
						b.Fatalf("rebuild ended at generation %d, checkpoint %d (%v, %v)", gen.Number, cp, err, err2)
					}
					reportBenchChild(b, lb, backlog, r, RebuildBatchSizeDefault)
				}
			})
		}
	}
}

// benchChildRun is what a child process took.
type benchChildRun struct {
	elapsed time.Duration
	cpu     time.Duration // user and system
	stats   childStats
	// pgCPU is the CPU time of the PostgreSQL backends serving the test
	// database meanwhile, and parentCPU that of this process (the NATS
	// server), where /proc tells (Linux, a local server); else zero.
	pgCPU, parentCPU time.Duration
}

// runBenchChild runs a child process in mode against lb, timed from its
// start until done reports true (then it is stopped with SIGTERM) or, when
// done is nil, until it exits, which it must do with status 0.
func runBenchChild(b *testing.B, lb *ledgerBundle, mode string, done func() bool) benchChildRun {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envChildNATS+"="+lb.env.URL, envChildDSN+"="+lb.dsn, envChildMode+"="+mode)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	exited := make(chan error, 1)
	pg := sampleBackendCPU(lb.pool.Config().ConnConfig.Database)
	parent0 := procCPU("self")
	b.ResetTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start child process: %v", err)
	}
	go func() { exited <- cmd.Wait() }()
	var elapsed time.Duration
	if done == nil {
		if err := <-exited; err != nil {
			b.Fatalf("child process (%s): %v", mode, err)
		}
		elapsed = time.Since(start)
		b.StopTimer()
	} else {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for !done() {
			select {
			case err := <-exited:
				b.Fatalf("child process (%s) ended before it was done: %v", mode, err)
			case <-tick.C:
			}
		}
		elapsed = time.Since(start)
		b.StopTimer()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			b.Fatalf("child process (%s): %v", mode, err)
		}
	}
	r := benchChildRun{elapsed: elapsed, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
		pgCPU: pg(), parentCPU: procCPU("self") - parent0}
	for line := range strings.Lines(out.String()) {
		if rest, ok := strings.CutPrefix(line, childStatsPrefix); ok {
			if err := json.Unmarshal([]byte(rest), &r.stats); err != nil {
				b.Fatalf("child stats %q: %v", rest, err)
			}
		}
	}
	return r
}

// reportBenchChild reports a child's run over n events, against the COPY
// ceiling of n same-sized rows in batches of batch.
func reportBenchChild(b *testing.B, lb *ledgerBundle, n int, r benchChildRun, batch int) {
	b.Helper()
	reportAgainstCeiling(b, lb.pool, n, r.elapsed, batch)
	b.ReportMetric(float64(r.cpu.Microseconds())/float64(n), "child-cpu-µs/event")
	if r.pgCPU > 0 {
		b.ReportMetric(float64(r.pgCPU.Microseconds())/float64(n), "pg-cpu-µs/event")
		b.ReportMetric(float64(r.parentCPU.Microseconds())/float64(n), "nats-cpu-µs/event")
	}
	b.ReportMetric(float64(r.stats.PeakRSS)/(1<<20), "child-peak-RSS-MB")
	b.ReportMetric(float64(r.stats.Mallocs)/float64(n), "child-allocs/event")
	b.ReportMetric(float64(r.stats.TotalAlloc)/float64(n), "child-B/event")
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

// procCPU returns the user and system time of process pid ("self" for
// this one) from /proc, or zero.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// sampleBackendCPU samples, every 100ms until the returned function is
// called, the CPU time of the local PostgreSQL backends connected to
// database, and returns their total: a backend's time counts up to its
// last sample, so one that ends between samples loses at most 100ms.
// Parallel workers of an index build are not counted. Zero where /proc
// does not show the server's processes.
func sampleBackendCPU(database string) func() time.Duration {
	last := map[string]time.Duration{}
	sample := func() {
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, st := range stats {
			dir := filepath.Dir(st)
			cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
			if err != nil || !bytes.HasPrefix(cmdline, []byte("postgres: ")) || !bytes.Contains(cmdline, []byte(" "+database+" ")) {
				continue
			}
			pid := filepath.Base(dir)
			if cpu := procCPU(pid); cpu > last[pid] {
				last[pid] = cpu
			}
		}
	}
	sample()
	base := map[string]time.Duration{}
	for pid, cpu := range last {
		base[pid] = cpu
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() time.Duration {
		close(stop)
		<-done
		sample()
		var total time.Duration
		for pid, cpu := range last {
			total += cpu - base[pid]
		}
		return total
	}
}
