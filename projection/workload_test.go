package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// testClock is the command service's clock in these tests; the workload
// moves it forward so that expiries pass.
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

// workload sends a random mix of every command kind to the ledger.
type workload struct {
	client *command.Client
	clock  *testClock
	guilds []events.Snowflake

	mu    sync.Mutex
	known map[events.Snowflake][]uint32 // case numbers per guild
	next  events.Snowflake              // next fresh guild for imports

	sent, failed, rejected int
}

func newWorkload(client *command.Client, clock *testClock, guilds int) *workload {
	w := &workload{client: client, clock: clock, known: map[events.Snowflake][]uint32{}, next: 900_000}
	for g := range guilds {
		w.guilds = append(w.guilds, events.Snowflake(1000+g))
	}
	return w
}

var caseTypes = []string{
	aggregate.TypeBan, aggregate.TypeHackban, aggregate.TypeTempban, aggregate.TypeKick, aggregate.TypeTimeout,
	aggregate.TypeWarn, aggregate.TypeJail, aggregate.TypeSnippetban, aggregate.TypePollban, aggregate.TypeUnban,
	aggregate.TypeUntimeout, aggregate.TypeUnjail, aggregate.TypeSnippetunban, aggregate.TypePollunban, aggregate.TypeNote,
}

// randomFields returns fields for a valid case of a random type.
func (w *workload) randomFields(r *rand.Rand) events.CaseFields {
	typ := caseTypes[r.IntN(len(caseTypes))]
	f := events.CaseFields{
		Type:        typ,
		UserID:      events.Snowflake(1 + r.IntN(30)),
		ModeratorID: events.Snowflake(500 + r.IntN(5)),
		Reason:      fmt.Sprintf("reason %d ünïcödé '; DROP TABLE cases; --", r.IntN(1000)),
	}
	if r.IntN(3) == 0 {
		f.UserRoles = []events.Snowflake{events.Snowflake(70 + r.IntN(5)), events.Snowflake(80 + r.IntN(5))}
	}
	if r.IntN(4) == 0 {
		f.Metadata = json.RawMessage(fmt.Sprintf(`{"channel": "c%d", "count": %d, "big": 1234567890123456789}`, r.IntN(3), r.IntN(10)))
	}
	if r.IntN(5) == 0 {
		f.Source = aggregate.SourceAuditLog
		f.ExternalID = fmt.Sprintf("audit-%d", r.IntN(400)) // repeats: the same action seen twice
	}
	now := w.clock.Now()
	switch typ {
	case aggregate.TypeTempban:
		f.ExpiresAt = ptr(now.Add(time.Duration(1+r.IntN(48)) * time.Hour))
	case aggregate.TypeTimeout:
		f.ExpiresAt = ptr(now.Add(time.Duration(1+r.IntN(600)) * time.Minute))
	case aggregate.TypeJail, aggregate.TypeSnippetban, aggregate.TypePollban:
		if r.IntN(2) == 0 {
			f.ExpiresAt = ptr(now.Add(time.Duration(1+r.IntN(72)) * time.Hour))
		}
	}
	return f
}

func ptr[T any](v T) *T { return &v }

func (w *workload) remember(g events.Snowflake, cases ...*aggregate.Case) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range cases {
		w.known[g] = append(w.known[g], c.CaseNumber)
	}
}

func (w *workload) pick(r *rand.Rand, g events.Snowflake) (uint32, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ns := w.known[g]
	if len(ns) == 0 {
		return 0, false
	}
	return ns[r.IntN(len(ns))], true
}

// step sends one random command.
func (w *workload) step(ctx context.Context, r *rand.Rand) error {
	w.mu.Lock()
	g := w.guilds[r.IntN(len(w.guilds))]
	w.mu.Unlock()
	actor := events.Snowflake(500 + r.IntN(5))
	meta := command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: actor}
	roll := r.IntN(100)
	n, haveCase := w.pick(r, g)
	if !haveCase && roll >= 40 {
		roll = 0
	}
	ref := command.CaseRef{CaseNumber: n}
	var err error
	switch {
	case roll < 35:
		var res *command.Result
		res, err = w.client.CaseOpen(ctx, g, command.OpenParams{Meta: meta, CaseFields: w.randomFields(r)})
		if err == nil {
			w.remember(g, res.Case)
		}
	case roll < 38:
		p := command.OpenManyParams{Meta: meta}
		for range 1 + r.IntN(5) {
			f := w.randomFields(r)
			f.ExternalID = ""
			p.Cases = append(p.Cases, f)
		}
		var res *command.ManyResult
		res, err = w.client.CaseOpenMany(ctx, g, p)
		if err == nil {
			w.remember(g, res.Cases...)
		}
	case roll < 39:
		w.mu.Lock()
		w.next++
		fresh := w.next
		w.guilds = append(w.guilds, fresh)
		w.mu.Unlock()
		p := command.ImportParams{Meta: meta}
		created := w.clock.Now().Add(-30 * 24 * time.Hour)
		for i := range 3 {
			f := w.randomFields(r)
			f.ExpiresAt = nil
			if f.Type == aggregate.TypeTempban || f.Type == aggregate.TypeTimeout {
				f.Type = aggregate.TypeWarn
			}
			p.Cases = append(p.Cases, aggregate.ImportCase{CaseFields: f, CaseNumber: uint32(3 + 2*i), CreatedAt: created, ImportedFrom: "tux"})
		}
		var res *command.ManyResult
		res, err = w.client.CaseImport(ctx, fresh, p)
		if err == nil {
			w.remember(fresh, res.Cases...)
		}
	case roll < 50:
		p := command.UpdateParams{Meta: meta, CaseRef: ref}
		switch r.IntN(4) {
		case 0:
			p.Reason = ptr(fmt.Sprintf("amended %d", r.IntN(50)))
		case 1:
			p.ExpiresAt = command.SetTime(w.clock.Now().Add(time.Duration(1+r.IntN(20)) * time.Hour))
		case 2:
			p.Metadata = json.RawMessage(fmt.Sprintf(`{"v":%d}`, r.IntN(3)))
		default:
			p.Reason = ptr("both")
			p.Status = ptr(aggregate.StatusClosed)
		}
		_, err = w.client.CaseUpdate(ctx, g, p)
	case roll < 58:
		_, err = w.client.CaseClose(ctx, g, command.CloseParams{Meta: meta, CaseRef: ref, Reason: "voided"})
	case roll < 63:
		_, err = w.client.CaseReopen(ctx, g, command.ReopenParams{Meta: meta, CaseRef: ref})
	case roll < 73:
		_, err = w.client.CaseAddNote(ctx, g, command.AddNoteParams{Meta: meta, CaseRef: ref, Text: fmt.Sprintf("note %d", r.IntN(100)),
			EvidenceURLs: []string{"https://example.com/e.png"}})
	case roll < 81:
		_, err = w.client.CaseLinkModLog(ctx, g, command.LinkModLogParams{Meta: meta, CaseRef: ref, ModLogMessageID: events.Snowflake(1 + r.IntN(1e6))})
	case roll < 90:
		_, err = w.client.CaseMarkExpiryProcessed(ctx, g, command.MarkExpiryProcessedParams{Meta: meta, CaseRef: ref})
	case roll < 95:
		_, err = w.client.CaseDelete(ctx, g, command.DeleteParams{Meta: meta, CaseRef: ref, Reason: "privacy"})
	case roll < 97:
		_, err = w.client.CaseRedact(ctx, g, command.RedactParams{Meta: meta, CaseRef: ref})
	default:
		w.clock.Advance(time.Duration(1+r.IntN(12)) * time.Hour)
	}
	if ctx.Err() != nil {
		return nil // the test stopped the workload
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent++
	var we *command.Error
	switch {
	case err == nil:
	case errors.As(err, &we) && we.Code != command.CodeUnavailable && we.Code != command.CodeInternal:
		w.rejected++ // the domain said no (not due, processed, deleted): fine
	default:
		w.failed++
		return err
	}
	return nil
}

// run sends n commands from workers goroutines.
func (w *workload) run(ctx context.Context, t testing.TB, n, workers int, seed uint64) {
	t.Helper()
	var wg sync.WaitGroup
	per := n / workers
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			for range per {
				if ctx.Err() != nil {
					return
				}
				if err := w.step(ctx, r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("workload: %v", err)
	}
}

// streamEvents reads every case event of the stream, in order.
func streamEvents(t testing.TB, js jetstream.JetStream) []events.Event {
	t.Helper()
	ctx := context.Background()
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, StreamDefault, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"modledger.case.>"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for uint64(len(out)) < info.NumPending {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := codec.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			md, _ := m.Metadata()
			e.Seq = md.Sequence.Stream
			out = append(out, e)
		}
	}
	keys, err := shred.NewStore(shred.Config{Conn: js.Conn(), Stream: shred.StreamName(StreamDefault)})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.OpenEvents(ctx, out); err != nil {
		t.Fatal(err)
	}
	return out
}
