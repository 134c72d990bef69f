package projection

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildNATS); url != "" {
		os.Exit(runProjectorProcess(url, os.Getenv(envChildDSN)))
	}
	goleak.VerifyTestMain(m)
}

// runProjectorProcess runs a cases projector until it is killed or gets
// SIGTERM.
func runProjectorProcess(url, dsn string) int {
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
	p, err := NewProjector(ProjectorConfig{JetStream: js, Store: store, Projection: NewCasesProjection(nil)})
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
