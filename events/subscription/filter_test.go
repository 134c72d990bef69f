package subscription_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/subscription"
)

func TestFilterSubjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		prefix string
		f      subscription.Filter
		want   []string
	}{
		{"All", "", subscription.Filter{}, []string{"modledger.case.>"}},
		{"Guild", "", subscription.Filter{Guild: 12}, []string{"modledger.case.12.>"}},
		{"Case", "", subscription.Filter{Guild: 12, Case: 7}, []string{"modledger.case.12.7.>"}},
		{"Events", "", subscription.Filter{Events: []events.Name{events.NameCaseExpired, events.NameCaseClosed}},
			[]string{"modledger.case.*.*.expired", "modledger.case.*.*.closed"}},
		{"GuildEvents", "acme.ledger", subscription.Filter{Guild: 12, Events: []events.Name{events.NameCaseDeleted}},
			[]string{"acme.ledger.case.12.*.deleted"}},
		{"CaseEvents", "", subscription.Filter{Guild: 12, Case: 7, Events: []events.Name{events.NameCaseNoteAdded}},
			[]string{"modledger.case.12.7.note_added"}},
		{"ImportedIsOpened", "", subscription.Filter{Events: []events.Name{events.NameCaseImported}},
			[]string{"modledger.case.*.*.opened"}},
		{"OpenedAndImportedOnce", "", subscription.Filter{Events: []events.Name{events.NameCaseOpened, events.NameCaseImported, events.NameCaseOpened}},
			[]string{"modledger.case.*.*.opened"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.f.Subjects(events.Subjects{Prefix: tc.prefix})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Subjects = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	ev := func(g events.Snowflake, n uint32, name events.Name) events.Event {
		return events.Event{Envelope: events.Envelope{GuildID: g, CaseNumber: n, Event: name}}
	}
	opened := subscription.Filter{Events: []events.Name{events.NameCaseOpened}}
	if !opened.Match(ev(1, 1, events.NameCaseOpened)) || opened.Match(ev(1, 1, events.NameCaseImported)) {
		t.Fatal("an opened filter must take opened and not imported")
	}
	imported := subscription.Filter{Events: []events.Name{events.NameCaseImported}}
	if imported.Match(ev(1, 1, events.NameCaseOpened)) || !imported.Match(ev(1, 1, events.NameCaseImported)) {
		t.Fatal("an imported filter must take imported and not opened")
	}
	c := subscription.Filter{Guild: 5, Case: 2}
	if !c.Match(ev(5, 2, events.NameCaseClosed)) || c.Match(ev(5, 3, events.NameCaseClosed)) || c.Match(ev(6, 2, events.NameCaseClosed)) {
		t.Fatal("a case filter must take its case only")
	}
	if !(subscription.Filter{}).Match(ev(9, 9, events.NameCaseRedacted)) {
		t.Fatal("the zero filter must take everything")
	}
}

func TestStartString(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for s, want := range map[subscription.Start]string{
		{}:                            "new",
		subscription.StartNew():       "new",
		subscription.StartBeginning(): "beginning",
		subscription.StartSeq(42):     "seq 42",
		subscription.StartAt(at):      "time 2026-11-25T12:00:00Z",
	} {
		if got := s.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	def := subscription.Config{}
	for n, want := range map[uint64]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 5 * time.Second, 4: 10 * time.Second,
		5: 30 * time.Second, 6: 30 * time.Second, 1000: 30 * time.Second,
	} {
		if got := def.BackoffFor(n); got != want {
			t.Errorf("default backoff after delivery %d = %s, want %s", n, got, want)
		}
	}
	custom := subscription.Config{Backoff: []time.Duration{time.Millisecond, time.Minute}}
	if custom.BackoffFor(1) != time.Millisecond || custom.BackoffFor(2) != time.Minute || custom.BackoffFor(9) != time.Minute {
		t.Fatal("a custom schedule must be followed and its last value repeated")
	}
}

func TestSubscribeRejectsBadConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := func(context.Context, events.Event) error { return nil }
	_, err := subscription.Subscribe(t.Context(), b.js, subscription.Config{
		Durable:       "bad.name",
		Filter:        subscription.Filter{Case: 3, Events: []events.Name{"banned"}},
		Start:         subscription.StartSeq(0),
		MaxDeliver:    -5,
		Backoff:       []time.Duration{time.Second, -time.Second},
		AckWait:       time.Millisecond,
		Concurrency:   -1,
		MaxAckPending: -1,
	}, h)
	if !errors.Is(err, subscription.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, part := range []string{"durable", "needs its guild", "banned", "start", "max deliver", "backoff", "ack wait", "concurrency", "max ack pending"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %s", err, part)
		}
	}
	if _, err := subscription.Subscribe(t.Context(), b.js, subscription.Config{Reset: true}, h); !errors.Is(err, subscription.ErrInvalidConfig) {
		t.Errorf("reset without a durable: err = %v", err)
	}
	if _, err := subscription.Subscribe(t.Context(), b.js, subscription.Config{}, nil); !errors.Is(err, subscription.ErrInvalidConfig) {
		t.Errorf("no handler: err = %v", err)
	}
	if _, err := subscription.Subscribe(t.Context(), nil, subscription.Config{}, h); !errors.Is(err, subscription.ErrInvalidConfig) {
		t.Errorf("no JetStream: err = %v", err)
	}
}
