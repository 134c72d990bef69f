package projection

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// openEvent returns a valid CaseOpened event at seq for case n of guild 1.
func openEvent(seq uint64, n uint32) events.Event {
	id := uuid.Must(uuid.NewV7())
	return events.Event{
		Envelope: events.Envelope{EventID: uuid.Must(uuid.NewV7()), Event: events.NameCaseOpened, SchemaVersion: 1,
			GuildID: 1, CaseNumber: n, CaseID: uuid.Must(uuid.NewV7()), OccurredAt: aggregate.Instant(time.Now()),
			ActorID: 9, CommandID: id, CorrelationID: id},
		Data: events.CaseOpened{CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 2, ModeratorID: 9}},
		Seq:  seq,
	}
}

func TestCheckpointWaiterWakesOnNotifications(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := testenv.PostgresPool(t)
	store, err := NewStore(pool, SchemaDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p := NewCasesProjection(nil)
	if _, err := store.Activate(ctx, p); err != nil {
		t.Fatal(err)
	}
	w := newCheckpointWaiter(store, time.Minute, testenv.Logger(t))
	w.poll = time.Hour // while listening only a notification can end a wait
	w.start()
	t.Cleanup(w.stop)

	// waitFor waits for seq in a goroutine, applies the event at seq once
	// the wait is in progress, and checks that the wait ends.
	waitFor := func(seq uint64) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, w.isReady, "the listener is up")
		done := make(chan error, 1)
		go func() { done <- w.wait(ctx, seq) }()
		testenv.Eventually(t, 10*time.Second, func() bool { return w.waiting.Load() == 1 }, "the wait is in progress")
		if _, _, err := store.ApplyBatch(ctx, p, []events.Event{openEvent(seq, uint32(seq))}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := w.seq.Load(); got != seq {
			t.Fatalf("checkpoint %d, want %d", got, seq)
		}
	}
	waitFor(1)
	// A reached sequence returns at once.
	if err := w.wait(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// The listener's connection is killed: it comes back, and waits work
	// again.
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return w.listens.Load() == 2 }, "the listener reconnects")
	waitFor(2)

	// Stop ends the waits in progress.
	done := make(chan error, 1)
	go func() { done <- w.wait(ctx, 100) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return w.waiting.Load() == 1 }, "the wait is in progress")
	w.stop()
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("wait after stop: %v", err)
	}
}

func TestCheckpointWaiterPollsWithoutListener(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := testenv.PostgresPool(t)
	store, err := NewStore(pool, SchemaDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p := NewCasesProjection(nil)
	if _, err := store.Activate(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Never started: the wait polls the checkpoint.
	w := newCheckpointWaiter(store, time.Minute, testenv.Logger(t))
	done := make(chan error, 1)
	go func() { done <- w.wait(ctx, 1) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return w.waiting.Load() == 1 }, "the wait is in progress")
	if _, _, err := store.ApplyBatch(ctx, p, []events.Event{openEvent(1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestParseCheckpointNotice(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		seq  uint64
		good bool
	}{
		{"cases 42", 42, true},
		{"cases 0", 0, true},
		{"other 42", 0, false},
		{"cases", 0, false},
		{"cases -1", 0, false},
		{"cases 42 x", 0, false},
	} {
		seq, ok := parseCheckpointNotice(tt.in)
		if seq != tt.seq || ok != tt.good {
			t.Errorf("%q: %d %v, want %d %v", tt.in, seq, ok, tt.seq, tt.good)
		}
	}
}
