package subscription_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/events/subscription"
	"github.com/modledger/modledger/internal/testenv"
)

const (
	guildA events.Snowflake = 111111111111111111
	guildB events.Snowflake = 222222222222222222
	// waitTimeout bounds every wait for deliveries.
	waitTimeout = 20 * time.Second
)

// testClock is the command service's clock, moved by hand to pass expiries.
type testClock struct {
	mu  sync.Mutex
	now time.Time
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
	js     jetstream.JetStream
	client *command.Client
	clock  *testClock
	codec  *events.Codec
}

// setup starts a NATS server and a command service that appends real
// events to the ledger's stream.
func setup(t *testing.T) *testBundle {
	t.Helper()
	env := testenv.NATS(t)
	b := &testBundle{env: env, clock: &testClock{now: time.Now().UTC().Truncate(time.Millisecond)}}
	svc, err := command.NewService(command.Config{Conn: env.Conn(t), Now: b.clock.Now, Logger: testenv.Logger(t)})
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
			t.Errorf("stop command service: %v", err)
		}
	})
	if b.client, err = command.NewClient(env.Conn(t)); err != nil {
		t.Fatal(err)
	}
	if b.codec, err = events.NewCodec(); err != nil {
		t.Fatal(err)
	}
	b.js = env.JetStream(t)
	return b
}

// subscribe subscribes on js (the bundle's when nil) and stops the
// subscription when t ends.
func (b *testBundle) subscribe(t *testing.T, js jetstream.JetStream, cfg subscription.Config, h subscription.Handler) *subscription.Subscription {
	t.Helper()
	if js == nil {
		js = b.js
	}
	if cfg.Logger == nil {
		cfg.Logger = testenv.Logger(t)
	}
	sub, err := subscription.Subscribe(t.Context(), js, cfg, h)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { stop(t, sub) })
	return sub
}

// stop stops sub and checks that it stopped cleanly.
func stop(t *testing.T, sub *subscription.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Stop(ctx); err != nil {
		t.Errorf("stop subscription: %v", err)
	}
	if err := sub.Err(); err != nil {
		t.Errorf("subscription ended with %v", err)
	}
}

func newMeta(actor events.Snowflake) command.Meta {
	return command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: actor}
}

// open opens a WARN case in guild and returns its number.
func (b *testBundle) open(t *testing.T, guild events.Snowflake, user events.Snowflake) uint32 {
	t.Helper()
	r, err := b.client.CaseOpen(t.Context(), guild, command.OpenParams{CaseFields: events.CaseFields{
		Type: aggregate.TypeWarn, UserID: user, ModeratorID: 42, Reason: "be nice",
	}})
	if err != nil {
		t.Fatalf("open case in guild %d: %v", guild, err)
	}
	return r.Case.CaseNumber
}

// populate appends a mix of events in two guilds: opened, imported,
// closed, reopened, note_added, reason_amended and mod_log_linked, and a
// claim (a case with an external id).
func (b *testBundle) populate(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	a1 := b.open(t, guildA, 1001)
	a2 := b.open(t, guildA, 1002)
	b1 := b.open(t, guildB, 2001)
	must := func(_ *command.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.client.CaseClose(ctx, guildA, command.CloseParams{Meta: newMeta(42), CaseRef: command.CaseRef{CaseNumber: a1}, Reason: "appeal"}))
	must(b.client.CaseAddNote(ctx, guildA, command.AddNoteParams{Meta: newMeta(42), CaseRef: command.CaseRef{CaseNumber: a2}, Text: "again"}))
	must(b.client.CaseReopen(ctx, guildA, command.ReopenParams{Meta: newMeta(42), CaseRef: command.CaseRef{CaseNumber: a1}}))
	reason := "spam, and an alt"
	must(b.client.CaseUpdate(ctx, guildB, command.UpdateParams{Meta: newMeta(42), CaseRef: command.CaseRef{CaseNumber: b1}, Reason: &reason}))
	must(b.client.CaseLinkModLog(ctx, guildB, command.LinkModLogParams{Meta: newMeta(42), CaseRef: command.CaseRef{CaseNumber: b1}, ModLogMessageID: 777}))
	if _, err := b.client.CaseImport(ctx, guildB, command.ImportParams{Meta: newMeta(42), Cases: []aggregate.ImportCase{{
		CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 2002, ModeratorID: 42, Reason: "old"},
		CaseNumber: 50, CreatedAt: b.clock.Now().AddDate(-1, 0, 0), ImportedFrom: "tux",
	}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CaseOpen(ctx, guildA, command.OpenParams{CaseFields: events.CaseFields{
		Type: aggregate.TypeWarn, UserID: 1003, ModeratorID: 42, ExternalID: "audit-1",
	}}); err != nil {
		t.Fatal(err)
	}
	b.open(t, guildB, 2003) // number 51, after the import
	must(b.client.CaseClose(ctx, guildA, command.CloseParams{Meta: newMeta(42), CaseRef: command.CaseRef{CaseNumber: a2}}))
}

// stored returns every case event in the stream, in order.
func (b *testBundle) stored(t *testing.T) []events.Event {
	t.Helper()
	cons, err := b.js.OrderedConsumer(t.Context(), command.StreamNameDefault, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.Subjects{}.AllCases()},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for uint64(len(out)) < info.NumPending {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := b.codec.Decode(m.Data())
			if err != nil {
				t.Fatalf("decode %s: %v", m.Subject(), err)
			}
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			e.Seq = md.Sequence.Stream
			out = append(out, e)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := shred.NewStore(shred.Config{Conn: b.js.Conn(), Stream: shred.StreamName("MODLEDGER")})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.OpenEvents(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	return out
}

// msgCount is the number of messages (events and claims) in the stream.
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

// waitHandled waits until rec has handled n events (deliveries, counting
// redeliveries) and the subscription's consumer has nothing left to deliver
// or to have answered, so that a test can then compare exactly what was
// handled: an extra delivery would show. The count comes first because the
// server's pending count can lag an append by a moment.
func (b *testBundle) waitHandled(t *testing.T, sub *subscription.Subscription, rec *recorder, n int) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, func() bool {
		if rec.count() < n {
			return false
		}
		c, err := b.js.Consumer(t.Context(), command.StreamNameDefault, sub.ConsumerName())
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0
	}, "%d deliveries on consumer %s, and nothing left to settle; handled %v", n, sub.ConsumerName(), rec.seqs())
}

// recorder is a handler that records what it handled.
type recorder struct {
	mu         sync.Mutex
	evs        []events.Event
	deliveries []subscription.Delivery
	// fail, when set, is asked about each delivery; its error is returned.
	fail func(e events.Event, d subscription.Delivery) error
}

func (r *recorder) handle(ctx context.Context, e events.Event) error {
	d, ok := subscription.DeliveryFrom(ctx)
	if !ok {
		return subscription.Permanent(errNoDelivery)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	r.deliveries = append(r.deliveries, d)
	if r.fail != nil {
		return r.fail(e, d)
	}
	return nil
}

type testError string

func (e testError) Error() string { return string(e) }

const errNoDelivery = testError("handler context has no delivery")

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// seqs returns the sequences handled, in the order handled.
func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.evs))
	for i, e := range r.evs {
		out[i] = e.Seq
	}
	return out
}

func seqsOf(evs []events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func selectEvents(evs []events.Event, keep func(events.Event) bool) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
