package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// Environment of a projector child process: the test binary runs a
// projector instead of tests, so that a test can kill it for real.
const (
	envChildNATS = "MODLEDGER_TEST_PROJECTOR_NATS_URL"
	envChildDSN  = "MODLEDGER_TEST_PROJECTOR_DATABASE_URL"
	// envChildMode picks what the child does: "" runs a projector with
	// the default configuration, "incremental" one that never catches up
	// in bulk, "rebuild" and "rebuild-incremental" run one rebuild and
	// exit (the benchmarks).
	envChildMode = "MODLEDGER_TEST_PROJECTOR_MODE"
)

// childStatsPrefix starts the line a child process prints on stdout as it
// ends: its Go memory statistics as JSON (childStats).
const childStatsPrefix = "modledger-child-stats "

// childStats is what a child process reports of its memory.
type childStats struct {
	Mallocs    uint64 `json:"mallocs"`
	TotalAlloc uint64 `json:"total_alloc"`
	// PeakRSS is the process's peak resident memory in bytes (VmHWM; 0
	// where /proc does not tell). The rusage a parent gets counts the
	// parent's own memory before the child's exec.
	PeakRSS uint64 `json:"peak_rss"`
}

// peakRSS returns this process's peak resident memory (VmHWM) in bytes.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildNATS); url != "" {
		code := runProjectorProcess(url, os.Getenv(envChildDSN), os.Getenv(envChildMode))
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		stats, _ := json.Marshal(childStats{Mallocs: ms.Mallocs, TotalAlloc: ms.TotalAlloc, PeakRSS: peakRSS()})
		fmt.Println(childStatsPrefix + string(stats))
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// runProjectorProcess runs a cases projector until it is killed or gets
// SIGTERM, or a rebuild (see envChildMode).
func runProjectorProcess(url, dsn, mode string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "projector process:", err); return 1 }
	nc, err := nats.Connect(url)
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	store, err := NewStore(pool, SchemaDefault)
	if err != nil {
		return fail(err)
	}
	switch mode {
	case "rebuild", "rebuild-incremental":
		_, err := Rebuild(ctx, RebuildConfig{JetStream: js, Store: store, Projection: NewCasesProjection(nil),
			Incremental: mode == "rebuild-incremental"})
		if err != nil {
			return fail(err)
		}
		return 0
	}
	cfg := ProjectorConfig{JetStream: js, Store: store, Projection: NewCasesProjection(nil)}
	if mode == "incremental" {
		cfg.BulkCatchUp = -1
	}
	p, err := NewProjector(cfg)
	if err != nil {
		return fail(err)
	}
	if err := p.Start(ctx); err != nil {
		return fail(err)
	}
	<-p.Stopped()
	if err := p.Err(); err != nil {
		return fail(err)
	}
	return 0
}
