package projection_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// eventLog builds a stream of valid events with increasing sequences by
// deciding commands with the aggregate, as the command service would.
type eventLog struct {
	t     testing.TB
	seq   uint64
	now   time.Time
	cases map[[2]uint64]*aggregate.Case
	last  map[events.Snowflake]uint32
	evs   []events.Event
}

func newEventLog(t testing.TB) *eventLog {
	return &eventLog{t: t, now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		cases: map[[2]uint64]*aggregate.Case{}, last: map[events.Snowflake]uint32{}}
}

func (l *eventLog) emit(guild events.Snowflake, number uint32, caseID uuid.UUID, actor events.Snowflake, payloads []events.Payload) []events.Event {
	cmd := uuid.Must(uuid.NewV7())
	var out []events.Event
	for _, p := range payloads {
		l.seq++
		e := events.Event{Envelope: events.Envelope{EventID: uuid.Must(uuid.NewV7()), Event: p.EventName(), SchemaVersion: 1,
			GuildID: guild, CaseNumber: number, CaseID: caseID, OccurredAt: l.now, ActorID: actor, CommandID: cmd, CorrelationID: cmd},
			Data: p, Seq: l.seq}
		c := l.cases[[2]uint64{uint64(guild), uint64(number)}]
		if err := c.Apply(e); err != nil {
			l.t.Fatal(err)
		}
		out = append(out, e)
	}
	l.evs = append(l.evs, out...)
	l.now = l.now.Add(time.Second)
	return out
}

// open opens a case and returns its number.
func (l *eventLog) open(guild events.Snowflake, f events.CaseFields) uint32 {
	l.t.Helper()
	ps, err := aggregate.Decide(aggregate.Env{Now: l.now, ActorID: f.ModeratorID}, nil, aggregate.OpenCase{CaseFields: f})
	if err != nil {
		l.t.Fatal(err)
	}
	l.last[guild]++
	n := l.last[guild]
	l.cases[[2]uint64{uint64(guild), uint64(n)}] = &aggregate.Case{}
	l.emit(guild, n, uuid.Must(uuid.NewV7()), f.ModeratorID, ps)
	return n
}

// do decides cmd on a case and appends its events.
func (l *eventLog) do(guild events.Snowflake, n uint32, actor events.Snowflake, cmd aggregate.Command) {
	l.t.Helper()
	c := l.cases[[2]uint64{uint64(guild), uint64(n)}]
	ps, err := aggregate.Decide(aggregate.Env{Now: l.now, ActorID: actor}, c, cmd)
	if err != nil {
		l.t.Fatal(err)
	}
	l.emit(guild, n, c.CaseID, actor, ps)
}

func TestApplyBatchBuildsCasesAndSkipsApplied(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	store, err := projection.NewStore(pool, "modledger")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := projection.NewCasesProjection(nil)
	if _, err := store.Activate(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	l := newEventLog(t)
	const g = 100
	ban := l.open(g, events.CaseFields{Type: aggregate.TypeBan, UserID: 1, ModeratorID: 9, Reason: "raid"})
	l.open(g, events.CaseFields{Type: aggregate.TypeWarn, UserID: 1, ModeratorID: 9})
	l.do(g, ban, 9, aggregate.AddNote{NoteID: uuid.Must(uuid.NewV7()), Text: "evidence"})
	applied, cp, err := store.ApplyBatch(t.Context(), p, l.evs)
	if err != nil || applied != 3 || cp != 3 {
		t.Fatalf("applied %d checkpoint %d err %v", applied, cp, err)
	}
	// Redelivery of the same events applies nothing.
	if applied, _, err := store.ApplyBatch(t.Context(), p, l.evs); err != nil || applied != 0 {
		t.Fatalf("redelivery applied %d, err %v", applied, err)
	}
	var restricted int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM modledger.restrictions WHERE guild_id = $1 AND user_id = 1 AND family = 'ban'`, g).Scan(&restricted); err != nil || restricted != 1 {
		t.Fatalf("restrictions: %d %v", restricted, err)
	}
	var total, active, notes int
	if err := pool.QueryRow(t.Context(), `SELECT total, active FROM modledger.stats_guild WHERE guild_id = $1`, g).Scan(&total, &active); err != nil || total != 2 || active != 2 {
		t.Fatalf("stats: %d %d %v", total, active, err)
	}
	if err := pool.QueryRow(t.Context(), `SELECT note_count FROM modledger.cases WHERE guild_id = $1 AND case_number = $2`, g, ban).Scan(&notes); err != nil || notes != 1 {
		t.Fatalf("note count: %d %v", notes, err)
	}
}
