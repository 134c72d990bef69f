package subscription_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/subscription"
	"github.com/modledger/modledger/internal/testenv"
)

func TestFilterDeliversEveryEventOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.populate(t)
	all := b.stored(t)

	names := func(ns ...events.Name) func(events.Event) bool {
		return func(e events.Event) bool { return slices.Contains(ns, e.Event) }
	}
	for _, tc := range []struct {
		name    string
		durable string
		filter  subscription.Filter
		keep    func(events.Event) bool
	}{
		{"All", "", subscription.Filter{}, func(events.Event) bool { return true }},
		{"AllDurable", "everything", subscription.Filter{}, func(events.Event) bool { return true }},
		{"Guild", "", subscription.Filter{Guild: guildB}, func(e events.Event) bool { return e.GuildID == guildB }},
		{"Case", "case-a2", subscription.Filter{Guild: guildA, Case: 2},
			func(e events.Event) bool { return e.GuildID == guildA && e.CaseNumber == 2 }},
		{"Events", "", subscription.Filter{Events: []events.Name{events.NameCaseClosed, events.NameCaseReopened}},
			names(events.NameCaseClosed, events.NameCaseReopened)},
		{"Opened", "", subscription.Filter{Events: []events.Name{events.NameCaseOpened}}, names(events.NameCaseOpened)},
		{"Imported", "imports", subscription.Filter{Events: []events.Name{events.NameCaseImported}}, names(events.NameCaseImported)},
		{"OpenedAndImported", "", subscription.Filter{Events: []events.Name{events.NameCaseImported, events.NameCaseOpened}},
			names(events.NameCaseOpened, events.NameCaseImported)},
		{"GuildEvents", "", subscription.Filter{Guild: guildA, Events: []events.Name{events.NameCaseOpened, events.NameCaseNoteAdded}},
			func(e events.Event) bool {
				return e.GuildID == guildA && names(events.NameCaseOpened, events.NameCaseNoteAdded)(e)
			}},
		{"CaseEvents", "", subscription.Filter{Guild: guildA, Case: 1, Events: []events.Name{events.NameCaseClosed}},
			func(e events.Event) bool {
				return e.GuildID == guildA && e.CaseNumber == 1 && e.Event == events.NameCaseClosed
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := selectEvents(all, tc.keep)
			if len(want) == 0 {
				t.Fatal("the workload has no event for this filter")
			}
			rec := &recorder{}
			var poisoned []subscription.Poison
			var mu sync.Mutex
			sub := b.subscribe(t, nil, subscription.Config{
				Durable: tc.durable,
				Filter:  tc.filter,
				Start:   subscription.StartBeginning(),
				OnPoison: func(_ context.Context, p subscription.Poison) {
					mu.Lock()
					defer mu.Unlock()
					poisoned = append(poisoned, p)
				},
			}, rec.handle)
			b.waitHandled(t, sub, rec, len(want))

			got := rec.events()
			if !slices.Equal(seqsOf(got), seqsOf(want)) {
				t.Fatalf("handled sequences %v, want %v", seqsOf(got), seqsOf(want))
			}
			for i, e := range got {
				if e.EventID != want[i].EventID || e.Event != want[i].Event || e.Data == nil {
					t.Fatalf("event %d: got %s %s, want %s %s", i, e.Event, e.EventID, want[i].Event, want[i].EventID)
				}
			}
			for _, d := range rec.deliveries {
				if d.NumDelivered != 1 {
					t.Fatalf("seq %d delivered %d times", d.Seq, d.NumDelivered)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(poisoned) != 0 {
				t.Fatalf("poisoned: %+v", poisoned)
			}
		})
	}
}

func TestHandlerErrorRedeliversWithBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 3 {
		b.open(t, guildA, 1)
	}
	all := b.stored(t)
	s1, s2, s3 := all[0].Seq, all[1].Seq, all[2].Seq

	rec := &recorder{fail: func(e events.Event, d subscription.Delivery) error {
		switch {
		case e.Seq == s2 && d.NumDelivered <= 2:
			return errors.New("platform unavailable")
		case e.Seq == s3 && d.NumDelivered == 1:
			panic("handler bug")
		}
		return nil
	}}
	sub := b.subscribe(t, nil, subscription.Config{
		Durable: "retry",
		Start:   subscription.StartBeginning(),
		Backoff: []time.Duration{time.Millisecond, 2 * time.Millisecond},
	}, rec.handle)
	// One event outstanding at a time: a failing event holds back the next
	// one, so redeliveries keep the stream order.
	want := []uint64{s1, s2, s2, s2, s3, s3}
	b.waitHandled(t, sub, rec, len(want))
	if got := rec.seqs(); !slices.Equal(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	var nd []uint64
	for _, d := range rec.deliveries {
		nd = append(nd, d.NumDelivered)
	}
	if want := []uint64{1, 1, 2, 3, 1, 2}; !slices.Equal(nd, want) {
		t.Fatalf("delivery counts %v, want %v", nd, want)
	}
}

func TestPoisonEventsAreReportedAndSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.open(t, guildA, 1) // fails on every delivery: given up after MaxDeliver
	b.open(t, guildA, 2) // permanent error: given up at once
	all := b.stored(t)
	first, second := all[0].Seq, all[1].Seq
	subj := events.Subjects{}
	if _, err := b.js.Publish(t.Context(), subj.Case(guildA, 90, events.NameCaseOpened), []byte(`{"event":`)); err != nil {
		t.Fatal(err)
	}
	newer := `{"event_id":"01a21297-7380-7a10-b3e2-c4d5f6a7b8c9","event":"closed","schema_version":99,"guild_id":"111111111111111111",` +
		`"case_number":91,"case_id":"01a21297-7380-7c3d-a41f-2b8c9e07d5a6","occurred_at":"2026-11-25T12:04:05Z","actor_id":"1",` +
		`"command_id":"01a21297-737d-7e71-9c8b-7a6f5d4c2e3b","correlation_id":"01a21297-737d-7e71-9c8b-7a6f5d4c2e3b","data":{}}`
	if _, err := b.js.Publish(t.Context(), subj.Case(guildA, 91, events.NameCaseClosed), []byte(newer)); err != nil {
		t.Fatal(err)
	}
	b.open(t, guildA, 3) // fine
	last := second + 3

	var (
		mu       sync.Mutex
		poisoned []subscription.Poison
	)
	rec := &recorder{fail: func(e events.Event, d subscription.Delivery) error {
		switch e.Seq {
		case first:
			return errors.New("always fails")
		case second:
			return subscription.Permanent(errors.New("guild left"))
		}
		return nil
	}}
	sub := b.subscribe(t, nil, subscription.Config{
		Durable:    "poison",
		Start:      subscription.StartBeginning(),
		MaxDeliver: 3,
		Backoff:    []time.Duration{time.Millisecond},
		OnPoison: func(_ context.Context, p subscription.Poison) {
			mu.Lock()
			defer mu.Unlock()
			poisoned = append(poisoned, p)
		},
	}, rec.handle)
	b.waitHandled(t, sub, rec, 5)

	if got, want := rec.seqs(), []uint64{first, first, first, second, last}; !slices.Equal(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(poisoned) != 4 {
		t.Fatalf("%d poisoned messages, want 4: %+v", len(poisoned), poisoned)
	}
	p := poisoned[0]
	if p.Seq != first || p.NumDelivered != 3 || p.Event == nil || p.Event.Seq != first || p.Err == nil || subscription.IsPermanent(p.Err) {
		t.Errorf("after max deliver: %+v", p)
	}
	p = poisoned[1]
	if p.Seq != second || p.NumDelivered != 1 || p.Event == nil || !subscription.IsPermanent(p.Err) || p.Err.Error() != "permanent: guild left" {
		t.Errorf("permanent: %+v", p)
	}
	p = poisoned[2]
	if p.Seq != second+1 || p.Event != nil || !errors.Is(p.Err, events.ErrMalformedEvent) || string(p.Data) != `{"event":` {
		t.Errorf("malformed: %+v", p)
	}
	p = poisoned[3]
	if p.Seq != second+2 || p.Event != nil || !errors.Is(p.Err, events.ErrUnsupportedVersion) || p.Subject != subj.Case(guildA, 91, events.NameCaseClosed) {
		t.Errorf("newer version: %+v", p)
	}
}

func TestDurableResumesWhereItStopped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &recorder{}
	// A delivery the server makes to the crashed connection below, before
	// it has noticed the crash, comes back after AckWait.
	cfg := subscription.Config{Durable: "modlog", Filter: subscription.Filter{Guild: guildA}, Start: subscription.StartBeginning(),
		AckWait: time.Second}
	b.open(t, guildA, 1)
	b.open(t, guildB, 1)
	b.open(t, guildA, 2)

	sub := b.subscribe(t, nil, cfg, rec.handle)
	b.waitHandled(t, sub, rec, 2)
	stop(t, sub)
	if n := rec.count(); n != 2 {
		t.Fatalf("first run handled %d events, want 2", n)
	}

	// While nobody listens.
	b.open(t, guildA, 3)
	b.open(t, guildB, 2)
	b.open(t, guildA, 4)

	// Binding keeps the durable's position: a Start of "new" does not skip
	// what arrived while it was stopped.
	again := cfg
	again.Start = subscription.StartNew()
	sub = b.subscribe(t, nil, again, rec.handle)
	b.waitHandled(t, sub, rec, 4)
	stop(t, sub)

	// A restart: another connection, as a new process would have; the
	// first one goes away without a Stop of the subscription on it.
	b.open(t, guildA, 5)
	js2, err := jetstream.New(b.env.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	crashConn := b.env.Conn(t)
	crashJS, err := jetstream.New(crashConn)
	if err != nil {
		t.Fatal(err)
	}
	crashCfg := cfg
	crashCfg.Logger = testenv.Logger(t)
	crashed, err := subscription.Subscribe(t.Context(), crashJS, crashCfg, rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	b.waitHandled(t, crashed, rec, 5)
	crashConn.Close()
	<-crashed.Stopped()
	if !errors.Is(crashed.Err(), jetstream.ErrConnectionClosed) && !errors.Is(crashed.Err(), jetstream.ErrMsgIteratorClosed) {
		t.Fatalf("subscription on a closed connection: Err = %v", crashed.Err())
	}

	b.open(t, guildA, 6)
	b.open(t, guildA, 7)
	sub = b.subscribe(t, js2, cfg, rec.handle)
	b.waitHandled(t, sub, rec, 7)

	want := seqsOf(selectEvents(b.stored(t), func(e events.Event) bool { return e.GuildID == guildA }))
	if len(want) != 7 {
		t.Fatalf("%d events in guild A, want 7", len(want))
	}
	if got := rec.seqs(); !slices.Equal(got, want) {
		t.Fatalf("handled %v over four runs, want each of %v once", got, want)
	}
}

func TestResetRecreatesTheDurable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.open(t, guildA, 1)
	b.open(t, guildA, 2)
	first := &recorder{}
	sub := b.subscribe(t, nil, subscription.Config{Durable: "replay", Start: subscription.StartBeginning()}, first.handle)
	b.waitHandled(t, sub, first, 2)
	stop(t, sub)

	b.open(t, guildA, 3)
	all := b.stored(t)
	again := &recorder{}
	sub = b.subscribe(t, nil, subscription.Config{Durable: "replay", Start: subscription.StartSeq(all[1].Seq), Reset: true}, again.handle)
	b.waitHandled(t, sub, again, 2)
	if got, want := again.seqs(), seqsOf(all[1:]); !slices.Equal(got, want) {
		t.Fatalf("after reset handled %v, want %v", got, want)
	}
}

func TestStartPositions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.populate(t)
	all := b.stored(t)

	t.Run("Seq", func(t *testing.T) {
		t.Parallel()
		from := len(all) / 2
		rec := &recorder{}
		sub := b.subscribe(t, nil, subscription.Config{Start: subscription.StartSeq(all[from].Seq)}, rec.handle)
		b.waitHandled(t, sub, rec, len(all)-from)
		if got, want := rec.seqs(), seqsOf(all[from:]); !slices.Equal(got, want) {
			t.Fatalf("handled %v, want %v", got, want)
		}
	})

	t.Run("Time", func(t *testing.T) {
		t.Parallel()
		s, err := b.js.Stream(t.Context(), command.StreamNameDefault)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[uint64]time.Time{}
		for _, e := range all {
			m, err := s.GetMsg(t.Context(), e.Seq)
			if err != nil {
				t.Fatal(err)
			}
			stored[e.Seq] = m.Time
		}
		at := stored[all[len(all)/2].Seq]
		want := seqsOf(selectEvents(all, func(e events.Event) bool { return !stored[e.Seq].Before(at) }))
		if len(want) == 0 || len(want) == len(all) {
			t.Fatalf("start time %s selects %d of %d events", at, len(want), len(all))
		}
		rec := &recorder{}
		sub := b.subscribe(t, nil, subscription.Config{Start: subscription.StartAt(at)}, rec.handle)
		b.waitHandled(t, sub, rec, len(want))
		if got := rec.seqs(); !slices.Equal(got, want) {
			t.Fatalf("handled %v, want %v", got, want)
		}
	})
}

func TestStartNewSkipsHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.populate(t)
	before := len(b.stored(t))
	rec := &recorder{}
	sub := b.subscribe(t, nil, subscription.Config{Durable: "tail"}, rec.handle)
	b.open(t, guildA, 9)
	b.open(t, guildB, 9)
	b.waitHandled(t, sub, rec, 2)
	if got, want := rec.seqs(), seqsOf(b.stored(t)[before:]); !slices.Equal(got, want) || len(want) != 2 {
		t.Fatalf("handled %v, want only the %v stored after subscribing", got, want)
	}
}

func TestClaimsAreNeverDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.populate(t)
	all := b.stored(t)
	if n := b.msgCount(t); n <= uint64(len(all)) {
		t.Fatalf("the stream holds %d messages for %d events: no claim to test with", n, len(all))
	}

	// A durable someone made with a filter that takes claims too: binding
	// narrows it to case events.
	if _, err := b.js.CreateConsumer(t.Context(), command.StreamNameDefault, jetstream.ConsumerConfig{
		Durable: "wide", FilterSubject: "modledger.>", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	for _, durable := range []string{"wide", ""} {
		rec := &recorder{}
		var poisoned int
		var mu sync.Mutex
		sub := b.subscribe(t, nil, subscription.Config{
			Durable: durable,
			Start:   subscription.StartBeginning(),
			OnPoison: func(context.Context, subscription.Poison) {
				mu.Lock()
				poisoned++
				mu.Unlock()
			},
		}, rec.handle)
		b.waitHandled(t, sub, rec, len(all))
		if got, want := rec.seqs(), seqsOf(all); !slices.Equal(got, want) {
			t.Fatalf("durable %q handled %v, want the case events %v", durable, got, want)
		}
		mu.Lock()
		if poisoned != 0 {
			t.Fatalf("durable %q: %d poisoned", durable, poisoned)
		}
		mu.Unlock()
		c, err := b.js.Consumer(t.Context(), command.StreamNameDefault, sub.ConsumerName())
		if err != nil {
			t.Fatal(err)
		}
		if cfg := c.CachedInfo().Config; cfg.FilterSubject != "modledger.case.>" {
			t.Fatalf("consumer %s filters %q %q", sub.ConsumerName(), cfg.FilterSubject, cfg.FilterSubjects)
		}
	}
}

func TestStopWaitsForTheHandlerInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.open(t, guildA, 1)
	b.open(t, guildA, 2)
	all := b.stored(t)

	entered := make(chan uint64, 2)
	release := make(chan struct{})
	var finished sync.WaitGroup
	finished.Add(1)
	h := func(ctx context.Context, e events.Event) error {
		entered <- e.Seq
		<-release
		finished.Done()
		return nil
	}
	cfg := subscription.Config{Durable: "slow", Start: subscription.StartBeginning(), Logger: testenv.Logger(t)}
	sub, err := subscription.Subscribe(t.Context(), b.js, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if seq := <-entered; seq != all[0].Seq {
		t.Fatalf("first handled seq %d, want %d", seq, all[0].Seq)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- sub.Stop(context.Background()) }()
	<-sub.StopRequested()
	select {
	case <-sub.Stopped():
		t.Fatal("the subscription stopped while its handler was running")
	case err := <-stopped:
		t.Fatalf("Stop returned %v while the handler was running", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	finished.Wait()
	select {
	case seq := <-entered:
		t.Fatalf("seq %d handled after Stop", seq)
	default:
	}

	// The event in flight was acknowledged before Stop returned: the next
	// subscriber starts after it.
	rec := &recorder{}
	sub = b.subscribe(t, nil, cfg, rec.handle)
	b.waitHandled(t, sub, rec, 1)
	if got, want := rec.seqs(), []uint64{all[1].Seq}; !slices.Equal(got, want) {
		t.Fatalf("after restart handled %v, want %v", got, want)
	}
}

func TestStopCancelsHandlersWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.open(t, guildA, 1)
	entered := make(chan struct{})
	h := func(ctx context.Context, e events.Event) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	cfg := subscription.Config{Durable: "stuck", Start: subscription.StartBeginning(), Logger: testenv.Logger(t)}
	sub, err := subscription.Subscribe(t.Context(), b.js, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sub.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with an ended context: %v", err)
	}
	<-sub.Stopped()
	if err := sub.Stop(context.Background()); err != nil || sub.Err() != nil {
		t.Fatalf("Stop again: %v, Err %v", err, sub.Err())
	}

	// The canceled handler's event was handed back, not acknowledged.
	rec := &recorder{}
	sub = b.subscribe(t, nil, cfg, rec.handle)
	b.waitHandled(t, sub, rec, 1)
	if len(rec.deliveries) != 1 || rec.deliveries[0].NumDelivered != 2 {
		t.Fatalf("after restart: %+v", rec.deliveries)
	}
}

func TestSubscribeContextEndStopsIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := subscription.Subscribe(ctx, b.js, subscription.Config{Logger: testenv.Logger(t)}, func(context.Context, events.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	name := sub.ConsumerName()
	cancel()
	<-sub.Stopped()
	if sub.Err() != nil {
		t.Fatalf("Err = %v after the context ended", sub.Err())
	}
	// An ephemeral consumer goes with its subscription.
	if _, err := b.js.Consumer(t.Context(), command.StreamNameDefault, name); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("ephemeral consumer %s after stop: %v", name, err)
	}
}

func TestDeletedConsumerStopsTheSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := subscription.Config{Durable: "doomed", Logger: testenv.Logger(t)}
	sub, err := subscription.Subscribe(t.Context(), b.js, cfg, func(context.Context, events.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// Once its pull request waits on the server, the server tells it that
	// the consumer is gone.
	testenv.Eventually(t, waitTimeout, func() bool {
		c, err := b.js.Consumer(t.Context(), command.StreamNameDefault, "doomed")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumWaiting > 0
	}, "a pull request to wait on the server")
	if err := b.js.DeleteConsumer(t.Context(), command.StreamNameDefault, "doomed"); err != nil {
		t.Fatal(err)
	}
	<-sub.Stopped()
	if !errors.Is(sub.Err(), jetstream.ErrConsumerDeleted) {
		t.Fatalf("Err = %v, want consumer deleted", sub.Err())
	}
}

func TestBindRefusesAnIncompatibleConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.js.CreateConsumer(t.Context(), command.StreamNameDefault, jetstream.ConsumerConfig{
		Durable: "acknone", AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatal(err)
	}
	_, err := subscription.Subscribe(t.Context(), b.js, subscription.Config{Durable: "acknone"}, func(context.Context, events.Event) error { return nil })
	if !errors.Is(err, subscription.ErrConsumerIncompatible) {
		t.Fatalf("err = %v, want ErrConsumerIncompatible", err)
	}
}

func TestConcurrencyKeepsEachCaseInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const cases = 12
	for i := range cases {
		n := b.open(t, guildA, events.Snowflake(1000+i))
		ref := command.CaseRef{CaseNumber: n}
		if _, err := b.client.CaseClose(t.Context(), guildA, command.CloseParams{Meta: newMeta(42), CaseRef: ref}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.CaseReopen(t.Context(), guildA, command.ReopenParams{Meta: newMeta(42), CaseRef: ref}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		running int
		most    int
	)
	rec := &recorder{}
	h := func(ctx context.Context, e events.Event) error {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		defer func() {
			mu.Lock()
			running--
			mu.Unlock()
		}()
		return rec.handle(ctx, e)
	}
	sub := b.subscribe(t, nil, subscription.Config{Start: subscription.StartBeginning(), Concurrency: 4, MaxAckPending: 8}, h)
	b.waitHandled(t, sub, rec, 3*cases)

	got := rec.events()
	if len(got) != 3*cases {
		t.Fatalf("handled %d events, want %d", len(got), 3*cases)
	}
	seen := map[uint64]bool{}
	last := map[uint32]uint64{}
	for _, e := range got {
		if seen[e.Seq] {
			t.Fatalf("seq %d handled twice", e.Seq)
		}
		seen[e.Seq] = true
		if e.Seq < last[e.CaseNumber] {
			t.Fatalf("case %d: seq %d handled after %d", e.CaseNumber, e.Seq, last[e.CaseNumber])
		}
		last[e.CaseNumber] = e.Seq
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 4 {
		t.Fatalf("%d handlers ran at once, want at most 4", most)
	}
}
