package aggregate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// Realistic ids used across the tests.
const (
	guildID     events.Snowflake = 1128457362048573440
	userID      events.Snowflake = 934871256019738654
	moderatorID events.Snowflake = 272937604339466240
	botID       events.Snowflake = 1097204518803394560
	roleA       events.Snowflake = 1128459011873853470
	roleB       events.Snowflake = 1131920475628843049
	messageID   events.Snowflake = 1310594827103211571
	channelID   events.Snowflake = 1128460376495259688

	// maxSnowflake is the largest valid snowflake; tooBig is one more.
	maxSnowflake events.Snowflake = math.MaxInt64
	tooBig       events.Snowflake = math.MaxInt64 + 1
)

var (
	caseID = uuid.MustParse("01936c2e-7b4f-7a10-8d2c-3e9b1f0a6c55")
	noteID = uuid.MustParse("01936c2f-0c12-7e4a-9b37-2f5d8c1a6e04")

	// t0 is the time the tests' cases are opened at.
	t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

	// cet is a non-UTC zone, so that tests see times normalised to UTC.
	cet = time.FixedZone("CET", 3600)
)

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// env returns an Env at now, acting as the moderator, with the built-in types.
func env(now time.Time) aggregate.Env {
	return aggregate.Env{Now: now, ActorID: moderatorID}
}

// openCmd returns a valid OpenCase of type typ with an expiry when the type
// needs one.
func openCmd(typ string) aggregate.OpenCase {
	f := events.CaseFields{
		Type:        typ,
		UserID:      userID,
		ModeratorID: moderatorID,
		Reason:      "spamming invite links",
	}
	if spec, ok := aggregate.DefaultRegistry().Lookup(typ); ok && spec.Expiry == aggregate.ExpiryRequired {
		f.ExpiresAt = ptr(t0.Add(24 * time.Hour))
	}
	return aggregate.OpenCase{CaseFields: f}
}

// ledger is one case's history in a test: the events appended so far and
// the state they fold to, kept up to date one event at a time.
type ledger struct {
	tb     testing.TB
	guild  events.Snowflake
	number uint32
	id     uuid.UUID
	seq    uint64
	evs    []events.Event
	state  *aggregate.Case
}

func newLedger(tb testing.TB) *ledger {
	tb.Helper()
	return &ledger{tb: tb, guild: guildID, number: 42, id: caseID, seq: 1000, state: &aggregate.Case{}}
}

// wrap puts payloads in events with a fake envelope and increasing Seq.
func (l *ledger) wrap(e aggregate.Env, ps []events.Payload) []events.Event {
	out := make([]events.Event, 0, len(ps))
	for _, p := range ps {
		l.seq += 7 // stream sequences of one case are increasing, not contiguous
		actor := e.ActorID
		if actor.IsZero() {
			actor = moderatorID
		}
		cmdID := uuid.New()
		out = append(out, events.Event{
			Envelope: events.Envelope{
				EventID:       uuid.New(),
				Event:         p.EventName(),
				SchemaVersion: events.CurrentVersion,
				GuildID:       l.guild,
				CaseNumber:    l.number,
				CaseID:        l.id,
				OccurredAt:    e.Now,
				ActorID:       actor,
				CommandID:     cmdID,
				CorrelationID: cmdID,
			},
			Data: p,
			Seq:  l.seq,
		})
	}
	return out
}

// apply folds payloads into the ledger's state; it fails the test when an
// event does not fold.
func (l *ledger) apply(e aggregate.Env, ps []events.Payload) {
	l.tb.Helper()
	for _, ev := range l.wrap(e, ps) {
		if err := l.state.Apply(ev); err != nil {
			l.tb.Fatalf("apply %s: %v", ev.Event, err)
		}
		l.evs = append(l.evs, ev)
	}
}

// decide decides cmd against the ledger's state and folds the result.
func (l *ledger) decide(e aggregate.Env, cmd aggregate.Command) ([]events.Payload, error) {
	l.tb.Helper()
	ps, err := aggregate.Decide(e, l.state, cmd)
	if err == nil {
		l.apply(e, ps)
	}
	return ps, err
}

// must decides cmd and fails the test on an error.
func (l *ledger) must(e aggregate.Env, cmd aggregate.Command) []events.Payload {
	l.tb.Helper()
	ps, err := l.decide(e, cmd)
	if err != nil {
		l.tb.Fatalf("%s: %v", cmd.CommandName(), err)
	}
	return ps
}

// opened returns a ledger with a case opened by cmd at t0.
func opened(tb testing.TB, cmd aggregate.Command) *ledger {
	tb.Helper()
	l := newLedger(tb)
	l.must(env(t0), cmd)
	return l
}

// names returns the event names of payloads.
func names(ps []events.Payload) []events.Name {
	out := make([]events.Name, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.EventName())
	}
	return out
}

// wantField fails the test unless err is a *ValidationError for field that
// wraps ErrInvalidArgument.
func wantField(tb testing.TB, err error, field string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want a validation error for field %q", field)
	}
	if !errors.Is(err, aggregate.ErrInvalidArgument) {
		tb.Fatalf("error %v does not wrap ErrInvalidArgument", err)
	}
	var ve *aggregate.ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if ve.Field != field {
		tb.Fatalf("error %q is for field %q, want %q", err, ve.Field, field)
	}
	if ve.Message == "" {
		tb.Fatalf("error for field %q has no message", field)
	}
}

// wantNoop fails the test unless Decide accepted the command and returned no
// payloads.
func wantNoop(tb testing.TB, ps []events.Payload, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("got error %v, want a no-op", err)
	}
	if len(ps) != 0 {
		tb.Fatalf("got payloads %v, want none", names(ps))
	}
}

// sameState fails the test unless a and b are deeply equal.
func sameState(tb testing.TB, got, want *aggregate.Case) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(want, "", " ")
		tb.Fatalf("states differ:\ngot  %s\nwant %s\n(go: %+v\n vs %+v)", gb, wb, got, want)
	}
}

// runes returns n copies of r.
func runes(r rune, n int) string { return strings.Repeat(string(r), n) }

// metadataOfSize returns a compact JSON object of exactly n bytes (n >= 8).
func metadataOfSize(n int) json.RawMessage {
	// {"k":"<pad>"} is 8 bytes plus the padding.
	return json.RawMessage(fmt.Sprintf(`{"k":"%s"}`, strings.Repeat("x", n-8)))
}
