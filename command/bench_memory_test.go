package command_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// BenchmarkServiceMemory shows that a command service's memory stays bounded
// however many guilds and cases the ledger holds: its guild and case
// positions are caches of at most Config.CacheSize entries each
// (100 000 by default). It opens MODLEDGER_BENCH_MEMORY_CASES cases (default
// 1 000 000) over a tenth as many guilds, ten per guild with open_many, then
// closes as many cases as there are guilds, at random, so that the case cache
// keeps loading and evicting. After every tenth of the work it collects
// garbage and logs the heap in use and the cache entries; it reports the heap
// at the end of the opens and of the closes, and the largest seen.
//
// The NATS server runs as its own process (built from the module), so the
// heap measured is the command service's and its client's only. Each
// iteration is one whole run. A smoke run (-benchtime 1x, as the suite runs
// every benchmark) uses 10 000 cases; MODLEDGER_BENCH_FULL=1 makes it the
// full run:
//
//	MODLEDGER_BENCH_FULL=1 go test -run '^$' -bench BenchmarkServiceMemory -benchtime 1x ./command
func BenchmarkServiceMemory(b *testing.B) {
	cases := 1_000_000
	if v := os.Getenv("MODLEDGER_BENCH_MEMORY_CASES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			b.Fatalf("MODLEDGER_BENCH_MEMORY_CASES=%q: want a number of cases, at least 10", v)
		}
		cases = n
	} else if benchSmoke() {
		cases = 10_000
	}
	bin := buildNATSServer(b)
	for range b.N {
		srv := configureNATSServer(b, bin, "memory", freePorts(b, 1)[0], "")
		srv.start(b)
		runServiceMemory(b, srv.url(), cases)
		srv.kill()
	}
}

// benchSmoke reports whether the benchmarks run once each as the suite's
// smoke run does (-benchtime 1x): they then use their smallest sizes.
func benchSmoke() bool {
	f := flag.Lookup("test.benchtime")
	return f != nil && f.Value.String() == "1x" && os.Getenv("MODLEDGER_BENCH_FULL") == ""
}

func runServiceMemory(b *testing.B, url string, cases int) {
	const perGuild = 10
	guilds := cases / perGuild
	conns := make([]*nats.Conn, 2)
	for i := range conns {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1))
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	svc, err := command.NewService(command.Config{Conn: conns[0]})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := svc.Stop(context.Background()); err != nil {
			b.Errorf("stop: %v", err)
		}
	}()
	client, err := command.NewClient(conns[1])
	if err != nil {
		b.Fatal(err)
	}

	var peak uint64
	sample := func(phase string, done, total int) uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		// To stderr: the testing package keeps only the first lines of a
		// benchmark's log.
		fmt.Fprintf(os.Stderr, "%-6s %8d/%d  heap in use %6.1f MiB  (objects %d, goroutines %d)\n",
			phase, done, total, mib(ms.HeapInuse), ms.HeapObjects, runtime.NumGoroutine())
		return ms.HeapInuse
	}

	// run calls op for 0..n-1 from 64 goroutines, sampling after every
	// tenth.
	run := func(phase string, n int, op func(i int) error) uint64 {
		var next, done atomic.Int64
		step := int64(max(1, n/10))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) || b.Failed() {
						return
					}
					if err := op(int(i)); err != nil {
						b.Errorf("%s %d: %v", phase, i, err)
						return
					}
					if d := done.Add(1); d%step == 0 {
						mu.Lock()
						sample(phase, int(d), n)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return sample(phase, int(done.Load()), n)
	}

	base := events.Snowflake(rand.Uint64N(1<<40) + 1<<41)
	b.ResetTimer()
	afterOpens := run("opens", guilds, func(i int) error {
		fs := make([]events.CaseFields, perGuild)
		for j := range fs {
			fs[j] = events.CaseFields{Type: aggregate.TypeWarn, UserID: events.Snowflake(1000 + j), ModeratorID: 42, Reason: "spam in #general"}
		}
		_, err := client.CaseOpenMany(b.Context(), base+events.Snowflake(i), command.OpenManyParams{Cases: fs})
		return err
	})
	afterCloses := run("closes", guilds, func(i int) error {
		g := base + events.Snowflake(rand.IntN(guilds))
		// A case closed already is a no-op reply, not an error.
		_, err := client.CaseClose(b.Context(), g, command.CloseParams{
			Meta: command.Meta{ActorID: 42}, CaseRef: command.CaseRef{CaseNumber: uint32(1 + rand.IntN(perGuild))},
		})
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(cases), "cases")
	b.ReportMetric(mib(afterOpens), "MiB-after-opens")
	b.ReportMetric(mib(afterCloses), "MiB-after-closes")
	b.ReportMetric(mib(peak), "MiB-peak")
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
