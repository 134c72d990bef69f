package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/internal/scheduler"
	"github.com/modledger/modledger/projection"
)

// A child process of the test binary runs a scheduler when these are set,
// so that a test can kill it for real.
const (
	envChildNATS = "MODLEDGER_TEST_SCHEDULER_NATS_URL"
	envChildDSN  = "MODLEDGER_TEST_SCHEDULER_DATABASE_URL"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildNATS); url != "" {
		os.Exit(runSchedulerProcess(url, os.Getenv(envChildDSN)))
	}
	goleak.VerifyTestMain(m)
}

func runSchedulerProcess(url, dsn string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "scheduler process:", err); return 1 }
	nc, err := nats.Connect(url)
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	client, err := command.NewClient(nc)
	if err != nil {
		return fail(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	store, err := projection.NewStore(pool, projection.SchemaDefault)
	if err != nil {
		return fail(err)
	}
	s, err := scheduler.New(scheduler.Config{Store: store, Expire: scheduler.CommandExpirer(client, scheduler.SystemActorDefault),
		StandbyPoll: 200 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	if err := s.Start(ctx); err != nil {
		return fail(err)
	}
	for ctx.Err() == nil && !s.Leading() {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("leading")
	<-s.Stopped()
	return 0
}
