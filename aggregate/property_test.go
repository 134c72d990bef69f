package aggregate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// gen makes random commands for one case, with a clock that moves forward.
type gen struct {
	r   *rand.Rand
	now time.Time
	reg *aggregate.Registry
}

func (g *gen) pick(n int) int { return g.r.IntN(n) }

// tick moves the clock by a random step, often zero.
func (g *gen) tick() {
	steps := []time.Duration{0, 0, time.Nanosecond, time.Second, time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 10 * 24 * time.Hour}
	g.now = g.now.Add(steps[g.pick(len(steps))])
}

func (g *gen) snowflake() events.Snowflake {
	switch g.pick(20) {
	case 0:
		return 0
	case 1:
		return tooBig
	case 2:
		return maxSnowflake
	default:
		return events.Snowflake(1 + g.r.Int64N(1<<62))
	}
}

func (g *gen) actor() events.Snowflake {
	switch g.pick(12) {
	case 0:
		return 0
	case 1:
		return tooBig
	case 2, 3:
		return botID
	default:
		return moderatorID
	}
}

func (g *gen) text() string {
	texts := []string{"", "spam", "raid", "evading a ban", " ", runes('ö', 2000), runes('ö', 2001), "a\x00b", "bad \xff utf-8", "🔨🔨"}
	return texts[g.pick(len(texts))]
}

func (g *gen) metadata() json.RawMessage {
	ms := []string{"", `{}`, `{"a":1}`, ` { "a" : 1 } `, `{"a":2,"b":[1,2]}`, `{"b":[1,2],"a":2}`, `{"id":1310594827103211571}`,
		`{"id":1310594827103211572}`, `[]`, `{`, `null`, `{"a":"\u0000"}`, string(metadataOfSize(8<<10 + 1))}
	m := ms[g.pick(len(ms))]
	if m == "" {
		return nil
	}
	return json.RawMessage(m)
}

// expiry returns a random expiry around now or around the case's own.
func (g *gen) expiry(c *aggregate.Case) *time.Time {
	offsets := []time.Duration{-24 * time.Hour, -time.Second, 0, time.Nanosecond, time.Minute, time.Hour, 3 * 24 * time.Hour,
		aggregate.MaxTimeout, aggregate.MaxTimeout + time.Second, 90 * 24 * time.Hour}
	if c.Exists() && c.ExpiresAt != nil && g.pick(3) == 0 {
		t := *c.ExpiresAt
		if g.pick(2) == 0 {
			t = t.Add(offsets[g.pick(len(offsets))])
		}
		return &t
	}
	t := g.now.Add(offsets[g.pick(len(offsets))])
	if g.pick(4) == 0 {
		t = t.In(cet)
	}
	return &t
}

func (g *gen) fields(c *aggregate.Case) events.CaseFields {
	types := g.reg.Types()
	f := events.CaseFields{
		Type:        types[g.pick(len(types))].Name,
		UserID:      g.snowflake(),
		ModeratorID: g.snowflake(),
		Reason:      g.text(),
		Metadata:    g.metadata(),
	}
	switch g.pick(6) {
	case 0:
		f.Type = "NOPE"
	case 1:
		f.Type = ""
	}
	if spec, ok := g.reg.Lookup(f.Type); ok && spec.CanExpire() && g.pick(8) != 0 || g.pick(10) == 0 {
		f.ExpiresAt = g.expiry(c)
	}
	for range g.pick(4) {
		f.UserRoles = append(f.UserRoles, g.snowflake())
	}
	sources := []string{"", "", aggregate.SourceCommand, aggregate.SourceAuditLog, aggregate.SourceAutomod, aggregate.SourceImport, "bogus"}
	f.Source = sources[g.pick(len(sources))]
	if g.pick(3) == 0 {
		f.ExternalID = fmt.Sprint(g.r.Uint64())
	}
	return f
}

// command returns a random command for c.
func (g *gen) command(c *aggregate.Case) aggregate.Command {
	if !c.Exists() && g.pick(4) != 0 || g.pick(40) == 0 {
		if g.pick(5) == 0 {
			return aggregate.ImportCase{
				CaseFields: g.fields(c), CaseNumber: 42, CreatedAt: g.now.Add(-time.Duration(g.pick(100)) * time.Hour),
				Closed: g.pick(4) == 0, ExpiryProcessed: g.pick(4) == 0, ModLogMessageID: events.Snowflake(g.pick(3)),
			}
		}
		return aggregate.OpenCase{CaseFields: g.fields(c)}
	}
	switch g.pick(12) {
	case 0, 1:
		u := aggregate.UpdateCase{}
		if g.pick(2) == 0 {
			u.Reason = ptr(g.text())
		}
		if g.pick(3) == 0 {
			statuses := []aggregate.Status{aggregate.StatusActive, aggregate.StatusClosed, "bogus"}
			u.Status = ptr(statuses[g.pick(len(statuses))])
		}
		switch g.pick(4) {
		case 0:
			u.ExpiresAt = g.expiry(c)
		case 1:
			u.ClearExpiry = true
		}
		if g.pick(3) == 0 {
			u.Metadata = g.metadata()
		}
		return u
	case 2:
		return aggregate.CloseCase{Reason: g.text()}
	case 3:
		return aggregate.ReopenCase{Reason: g.text()}
	case 4:
		n := aggregate.AddNote{NoteID: uuid.New(), Text: g.text()}
		urls := []string{"https://example.com/a.png", "http://x.example/b", "ftp://nope", "nope", ""}
		for range g.pick(3) {
			n.EvidenceURLs = append(n.EvidenceURLs, urls[g.pick(len(urls))])
		}
		return n
	case 5:
		return aggregate.LinkModLog{MessageID: g.snowflake(), ChannelID: events.Snowflake(g.pick(3))}
	case 6, 7:
		return aggregate.MarkExpiryProcessed{}
	case 8:
		if g.pick(3) == 0 {
			return aggregate.DeleteCase{Reason: g.text()}
		}
		return aggregate.CloseCase{}
	case 9:
		return aggregate.RedactCase{Reason: g.text()}
	default:
		at := g.now
		if c.ExpiresAt != nil && g.pick(4) != 0 {
			at = *c.ExpiresAt
		}
		return aggregate.ExpireCase{ExpiresAt: at}
	}
}

// decideSafely runs Decide and turns a panic into a test failure.
func decideSafely(tb testing.TB, e aggregate.Env, c *aggregate.Case, cmd aggregate.Command, where string) (ps []events.Payload, err error) {
	tb.Helper()
	defer func() {
		if r := recover(); r != nil {
			tb.Fatalf("%s: Decide(%#v) panicked: %v", where, cmd, r)
		}
	}()
	return aggregate.Decide(e, c, cmd)
}

// identity is what never changes after a case is opened.
type identity struct {
	guild      events.Snowflake
	number     uint32
	id         uuid.UUID
	typ        string
	user, mod  events.Snowflake
	created    time.Time
	source     string
	externalID string
}

func identityOf(c *aggregate.Case) identity {
	return identity{c.GuildID, c.CaseNumber, c.CaseID, c.Type, c.UserID, c.ModeratorID, c.CreatedAt, c.Source, c.ExternalID}
}

// TestDecideProperty runs thousands of random command sequences over one
// case and checks the invariants after every step.
func TestDecideProperty(t *testing.T) {
	t.Parallel()
	reg, err := aggregate.NewRegistry(
		aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryRequired, MaxDuration: time.Hour},
		aggregate.TypeSpec{Name: "UNMUTE", Lifts: "mute"},
	)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	sequences, steps := 3000, 40
	if testing.Short() {
		sequences = 400
	}
	const shards = 8
	for shard := range shards {
		t.Run(fmt.Sprint("shard", shard), func(t *testing.T) {
			t.Parallel()
			for seed := uint64(shard); seed < uint64(sequences); seed += shards {
				runSequence(t, seed, steps, reg, codec)
			}
		})
	}
}

func runSequence(t *testing.T, seed uint64, steps int, reg *aggregate.Registry, codec *events.Codec) {
	t.Helper()
	g := &gen{r: rand.New(rand.NewPCG(seed, 0xca5e)), now: t0, reg: reg}
	l := newLedger(t)
	var id identity
	for step := range steps {
		g.tick()
		where := fmt.Sprintf("seed %d step %d", seed, step)
		cmd := g.command(l.state)
		e := aggregate.Env{Now: g.now, ActorID: g.actor(), Registry: reg}
		before := l.state.Clone()
		existed, wasDeleted, wasRedacted, wasProcessed := l.state.Exists(), l.state.Deleted, l.state.Redacted, l.state.ExpiryProcessed
		processedAt := l.state.ExpiryProcessedAt

		ps, err := decideSafely(t, e, l.state, cmd, where)
		// Decide never changes the state it is given.
		if !reflect.DeepEqual(l.state, before) {
			t.Fatalf("%s: Decide(%T) changed its input state", where, cmd)
		}
		if err != nil {
			if ps != nil {
				t.Fatalf("%s: payloads %v with error %v", where, names(ps), err)
			}
			var ve *aggregate.ValidationError
			switch {
			case errors.As(err, &ve):
				if !errors.Is(err, aggregate.ErrInvalidArgument) {
					t.Fatalf("%s: ValidationError does not wrap ErrInvalidArgument", where)
				}
			case errors.Is(err, aggregate.ErrCaseNotFound), errors.Is(err, aggregate.ErrCaseDeleted), errors.Is(err, aggregate.ErrConflict):
			default:
				t.Fatalf("%s: untyped error %v", where, err)
			}
		}
		if errors.Is(err, aggregate.ErrCaseNotFound) && existed {
			t.Fatalf("%s: ErrCaseNotFound for an existing case", where)
		}
		// Once deleted, only delete and redact are accepted (and the
		// scheduler's expire is a no-op); only redact appends.
		if wasDeleted {
			switch cmd.(type) {
			case aggregate.DeleteCase, aggregate.ExpireCase:
				if err == nil && len(ps) != 0 {
					t.Fatalf("%s: %T on a deleted case appended %v", where, cmd, names(ps))
				}
			case aggregate.RedactCase:
			default:
				if err == nil {
					t.Fatalf("%s: %T accepted on a deleted case", where, cmd)
				}
			}
		}
		l.apply(e, ps) // fails the test if an event does not fold
		c := l.state
		if len(ps) == 0 && !reflect.DeepEqual(c, before) {
			t.Fatalf("%s: a no-op changed the state", where)
		}
		if !c.Exists() {
			continue
		}
		if !existed {
			id = identityOf(c)
			if len(ps) != 1 || !ps[0].EventName().Creates() {
				t.Fatalf("%s: the case was created by %v", where, names(ps))
			}
		} else if got := identityOf(c); got != id {
			t.Fatalf("%s: identity changed from %+v to %+v", where, id, got)
		}
		if wasDeleted && !c.Deleted || wasRedacted && !c.Redacted {
			t.Fatalf("%s: deleted or redacted went back", where)
		}
		if wasProcessed && (!c.ExpiryProcessed || !c.ExpiryProcessedAt.Equal(*processedAt)) {
			t.Fatalf("%s: ExpiryProcessed went back or moved", where)
		}
		if c.Events != len(l.evs) || c.Version != l.evs[len(l.evs)-1].Seq {
			t.Fatalf("%s: Events %d Version %d, want %d and %d", where, c.Events, c.Version, len(l.evs), l.evs[len(l.evs)-1].Seq)
		}
		if c.Status != aggregate.StatusActive && c.Status != aggregate.StatusClosed {
			t.Fatalf("%s: status %q", where, c.Status)
		}
		spec, _ := reg.Lookup(c.Type)
		if c.ExpiresAt != nil && !spec.CanExpire() || c.ExpiresAt == nil && spec.Expiry == aggregate.ExpiryRequired {
			t.Fatalf("%s: a %s case has expiry %v", where, c.Type, c.ExpiresAt)
		}
		if c.ExpiryProcessed && c.ExpiresAt == nil {
			t.Fatalf("%s: processed without an expiry", where)
		}
		if c.UpdatedAt.Before(c.CreatedAt) {
			t.Fatalf("%s: updated_at %v before created_at %v", where, c.UpdatedAt, c.CreatedAt)
		}
		for _, p := range ps {
			if p, ok := p.(events.CaseExpiryChanged); ok && p.ExpiresAt != nil && (!p.ExpiresAt.After(g.now) || p.ExpiresAt.Location() != time.UTC) {
				t.Fatalf("%s: expiry changed to %v at %v", where, p.ExpiresAt, g.now)
			}
		}
		// An accepted command sent again changes nothing, except a note
		// (each is new) and the creating commands (now a conflict).
		if err == nil && len(ps) > 0 {
			switch cmd.(type) {
			case aggregate.AddNote, aggregate.OpenCase, aggregate.ImportCase:
			default:
				again, err := decideSafely(t, e, c, cmd, where+" (again)")
				if err != nil || len(again) != 0 {
					t.Fatalf("%s: %T again gave %v, %v; want a no-op", where, cmd, names(again), err)
				}
			}
		}
	}
	if len(l.evs) == 0 {
		return
	}
	// The fold of all events equals the state applied one at a time, and
	// so does the fold of the events after a trip through the codec.
	folded, err := aggregate.Fold(l.evs)
	if err != nil {
		t.Fatalf("seed %d: Fold: %v", seed, err)
	}
	sameState(t, folded, l.state)
	decoded := make([]events.Event, len(l.evs))
	for i, ev := range l.evs {
		b, err := codec.Encode(ev)
		if err != nil {
			t.Fatalf("seed %d: encode %s: %v", seed, ev.Event, err)
		}
		if decoded[i], err = codec.Decode(b); err != nil {
			t.Fatalf("seed %d: decode %s: %v", seed, ev.Event, err)
		}
		decoded[i].Seq = ev.Seq
	}
	refolded, err := aggregate.Fold(decoded)
	if err != nil {
		t.Fatalf("seed %d: Fold of decoded events: %v", seed, err)
	}
	sameState(t, refolded, l.state)
}
