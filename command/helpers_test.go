package command_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/internal/testenv"
)

// testClock is a clock a test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Now().UTC().Truncate(time.Millisecond)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	env    *testenv.NATSEnv
	nc     *nats.Conn
	js     jetstream.JetStream
	client *command.Client
	svc    *command.Service
	clock  *testClock
	codec  *events.Codec
	keys   *shred.Store
}

// setup starts a NATS server and one command service on it.
func setup(t testing.TB, mods ...func(*command.Config)) *testBundle {
	t.Helper()
	env := testenv.NATS(t)
	b := &testBundle{env: env, nc: env.Conn(t), clock: newTestClock()}
	b.js = env.JetStream(t)
	b.svc = b.startService(t, mods...)
	var err error
	if b.client, err = command.NewClient(b.nc); err != nil {
		t.Fatal(err)
	}
	if b.codec, err = events.NewCodec(); err != nil {
		t.Fatal(err)
	}
	if b.keys, err = shred.NewStore(shred.Config{Conn: b.nc, Stream: shred.StreamName(command.StreamNameDefault)}); err != nil {
		t.Fatal(err)
	}
	return b
}

// startService starts another command service instance on its own
// connection, stopped when t ends.
func (b *testBundle) startService(t testing.TB, mods ...func(*command.Config)) *command.Service {
	t.Helper()
	cfg := command.Config{Conn: b.env.Conn(t), Now: b.clock.Now, Logger: testenv.Logger(t)}
	for _, m := range mods {
		m(&cfg)
	}
	svc, err := command.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stop service: %v", err)
		}
	})
	return svc
}

// msgCount returns the number of messages in the ledger's stream.
func (b *testBundle) msgCount(t *testing.T) uint64 {
	t.Helper()
	s, err := b.js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// storedEvents returns every case event in the stream on filter, in order,
// opened with their keys.
func (b *testBundle) storedEvents(t *testing.T, filter string) []events.Event {
	t.Helper()
	cons, err := b.js.OrderedConsumer(t.Context(), command.StreamNameDefault, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pending := info.NumPending
	var out []events.Event
	for uint64(len(out)) < pending {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := b.codec.Decode(m.Data())
			if err != nil {
				t.Fatalf("decode %s: %v", m.Subject(), err)
			}
			md, _ := m.Metadata()
			e.Seq = md.Sequence.Stream
			out = append(out, e)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.keys.OpenEvents(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	return out
}

const testGuild events.Snowflake = 111111111111111111

func tempbanParams(clock *testClock, user events.Snowflake) command.OpenParams {
	exp := clock.Now().Add(24 * time.Hour)
	return command.OpenParams{CaseFields: events.CaseFields{
		Type: aggregate.TypeTempban, UserID: user, ModeratorID: 42, Reason: "spam", ExpiresAt: &exp,
	}}
}

func warnParams(user events.Snowflake) command.OpenParams {
	return command.OpenParams{CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: user, ModeratorID: 42, Reason: "be nice"}}
}

func meta(actor events.Snowflake) command.Meta {
	return command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: actor}
}
