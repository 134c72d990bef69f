package projection

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// benchSmoke reports whether the benchmarks run once each (-benchtime 1x),
// as the suite's smoke run does: they then use their smallest sizes, so
// that the run is quick and only proves they still work.
func benchSmoke() bool {
	f := flag.Lookup("test.benchtime")
	return f != nil && f.Value.String() == "1x"
}

// benchBacklogs returns the backlog sizes of the projector benchmarks:
// MODLEDGER_BENCH_BACKLOG (a comma-separated list) or the defaults, the
// first of them only in a smoke run.
func benchBacklogs(b *testing.B, defaults ...int) []int {
	v := os.Getenv("MODLEDGER_BENCH_BACKLOG")
	if v == "" {
		if benchSmoke() {
			return defaults[:1]
		}
		return defaults
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("MODLEDGER_BENCH_BACKLOG: %q is not a positive number", s)
		}
		out = append(out, n)
	}
	return out
}

// benchStream generates a deterministic stream of valid case events, the
// shape of a busy bot's backlog: opens of every kind of case spread over
// many guilds, and a share of changes (reason amendments, notes, closes,
// reopens, mod-log links, metadata, expiry changes, a few deletions and
// redactions) to recent cases of the same guild. It keeps one number per
// guild, nothing per case.
type benchStream struct {
	r       *rand.Rand
	changes float64 // share of events that change an existing case
	seq     uint64
	at      time.Time
	last    []uint32 // per guild, its last case number
}

// newBenchStream returns a stream over guilds guilds in which a share
// changes of the events change existing cases.
func newBenchStream(guilds int, changes float64) *benchStream {
	return &benchStream{r: rand.New(rand.NewPCG(7, uint64(guilds))), changes: changes,
		at: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), last: make([]uint32, guilds)}
}

// benchTypes are the opened types, weighted by repetition.
var benchTypes = []string{
	aggregate.TypeBan, aggregate.TypeBan, aggregate.TypeTempban, aggregate.TypeKick, aggregate.TypeWarn,
	aggregate.TypeWarn, aggregate.TypeWarn, aggregate.TypeTimeout, aggregate.TypeTimeout, aggregate.TypeJail,
	aggregate.TypeNote, aggregate.TypeUnban, aggregate.TypeSnippetban,
}

var benchWords = []string{"spam", "raid", "links", "scam", "slurs", "nsfw", "alt", "account", "evading", "ban",
	"toxic", "harassment", "advertising", "phishing", "mass", "mentions", "flood", "bot", "invite", "impersonation"}

// benchID is a deterministic UUID (version 7, RFC 4122 variant) made of a
// (64 bits) and the low 48 bits of b.
func benchID(a, b uint64) uuid.UUID {
	var u uuid.UUID
	var w [8]byte
	binary.BigEndian.PutUint64(w[:], a)
	copy(u[0:6], w[2:8]) // a's low 48 bits
	u[6] = 0x70
	u[8] = 0x80
	copy(u[9:11], w[0:2]) // a's high 16 bits
	binary.BigEndian.PutUint64(w[:], b)
	u[7] = w[2]
	copy(u[11:16], w[3:8]) // b's low 48 bits, 8 of them above
	return u
}

func (s *benchStream) reason() string {
	n := 3 + s.r.IntN(6)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(benchWords[s.r.IntN(len(benchWords))])
	}
	fmt.Fprintf(&b, " #%d", s.r.IntN(10000))
	return b.String()
}

// next returns the next event, with its stream sequence.
func (s *benchStream) next() events.Event {
	s.seq++
	s.at = s.at.Add(37 * time.Millisecond)
	g := s.r.IntN(len(s.last))
	guild := events.Snowflake(100_000_000_000_000_000 + uint64(g))
	moderator := events.Snowflake(200_000_000_000_000_000 + uint64(1+s.r.IntN(10)))
	env := events.Envelope{EventID: benchID(s.seq, 1), SchemaVersion: 1, GuildID: guild, OccurredAt: s.at,
		ActorID: moderator, CommandID: benchID(s.seq, 2), CorrelationID: benchID(s.seq, 2)}
	var data events.Payload
	if s.last[g] > 0 && s.r.Float64() < s.changes {
		lo := uint32(1)
		if s.last[g] > 20 {
			lo = s.last[g] - 20
		}
		env.CaseNumber = lo + uint32(s.r.IntN(int(s.last[g]-lo+1)))
		env.Command = "update"
		switch k := s.r.IntN(100); {
		case k < 30:
			data = events.CaseReasonAmended{Reason: s.reason()}
		case k < 55:
			data = events.CaseNoteAdded{NoteID: benchID(s.seq, 3), AuthorID: moderator, Text: "note: " + s.reason(),
				EvidenceURLs: []string{"https://cdn.example.com/evidence/" + strconv.FormatUint(s.seq, 10) + ".png"}}
			env.Command = "add_note"
		case k < 65:
			data = events.CaseClosed{Reason: "appealed"}
			env.Command = "close"
		case k < 70:
			data = events.CaseReopened{}
			env.Command = "reopen"
		case k < 85:
			data = events.ModLogMessageLinked{MessageID: events.Snowflake(300_000_000_000_000_000 + s.seq), ChannelID: 400_000_000_000_000_001}
			env.Command = "link_mod_log"
		case k < 95:
			data = events.CaseMetadataUpdated{Metadata: json.RawMessage(fmt.Sprintf(`{"channel": "c%d", "messages": %d}`, s.r.IntN(20), s.r.IntN(100)))}
		case k < 98:
			exp := s.at.Add(time.Duration(1+s.r.IntN(72)) * time.Hour).Truncate(time.Microsecond)
			data = events.CaseExpiryChanged{ExpiresAt: &exp}
		case k < 99:
			data = events.CaseDeleted{Reason: "mistake"}
			env.Command = "delete"
		default:
			data = events.CaseRedacted{Reason: "gdpr request"}
			env.Command = "redact"
		}
	} else {
		s.last[g]++
		env.CaseNumber = s.last[g]
		env.Command = "open"
		f := events.CaseFields{Type: benchTypes[s.r.IntN(len(benchTypes))],
			UserID:      events.Snowflake(500_000_000_000_000_000 + uint64(1+s.r.IntN(100))),
			ModeratorID: moderator, Reason: s.reason(), Source: aggregate.SourceCommand}
		switch f.Type {
		case aggregate.TypeTempban, aggregate.TypeTimeout:
			exp := s.at.Add(time.Duration(1+s.r.IntN(72)) * time.Hour).Truncate(time.Microsecond)
			f.ExpiresAt = &exp
		case aggregate.TypeJail:
			f.UserRoles = []events.Snowflake{600_000_000_000_000_001, 600_000_000_000_000_002}
		}
		if s.r.IntN(4) == 0 {
			f.Metadata = json.RawMessage(fmt.Sprintf(`{"channel": "c%d", "messages": %d}`, s.r.IntN(20), s.r.IntN(100)))
		}
		data = events.CaseOpened{CaseFields: f}
	}
	env.CaseID = benchID(uint64(guild), uint64(env.CaseNumber))
	env.Event = data.EventName()
	return events.Event{Envelope: env, Data: data, Seq: s.seq}
}

// batch returns the next n events.
func (s *benchStream) batch(n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = s.next()
	}
	return evs
}

// benchGuildsFor is how many guilds a backlog of n events spreads over:
// ten events a guild, so 1M events fall on 100k guilds.
func benchGuildsFor(n int) int { return max(1, n/10) }

// benchChangeShare is the share of a benchmark backlog's events that
// change an existing case; the rest open one.
const benchChangeShare = 0.3

// publishBenchBacklog puts n events of a benchStream in the stream as a
// bot's commands would have (same subjects and encoding), in atomic
// batches of 1000 so that the durable server fsyncs once a batch.
func publishBenchBacklog(b testing.TB, nc *nats.Conn, n int) {
	b.Helper()
	codec, err := events.NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	subjects := events.Subjects{Prefix: PrefixDefault}
	s := newBenchStream(benchGuildsFor(n), benchChangeShare)
	const size = 1000
	for i := 0; i < n; i += size {
		id := uuid.NewString()
		k := min(size, n-i)
		for j := range k {
			e := s.next()
			data, err := codec.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			m := nats.NewMsg(subjects.Case(e.GuildID, e.CaseNumber, e.Event))
			m.Data = data
			m.Header.Set("Modledger-Event", string(e.Event))
			if k > 1 {
				m.Header.Set("Nats-Batch-Id", id)
				m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(j+1))
				if j < k-1 {
					if err := nc.PublishMsg(m); err != nil {
						b.Fatal(err)
					}
					continue
				}
				m.Header.Set("Nats-Batch-Commit", "1")
			}
			reply, err := nc.RequestMsg(m, 30*time.Second)
			if err != nil {
				b.Fatalf("publish backlog: %v", err)
			}
			var ack struct {
				Error *struct {
					Description string `json:"description"`
				} `json:"error"`
			}
			if err := json.Unmarshal(reply.Data, &ack); err != nil || ack.Error != nil {
				b.Fatalf("publish backlog: %s", reply.Data)
			}
		}
	}
}

// copyCeiling measures a plain COPY of n rows shaped and sized like the
// audit log's (the same events' envelopes and payloads) into a scratch
// table with a primary key, batch rows per COPY, each COPY committed on
// its own: the most a projection that writes every event could do. It
// returns rows per second, timing only the COPYs.
func copyCeiling(b testing.TB, pool *pgxpool.Pool, n, batch int) float64 {
	b.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE public.bench_copy_ceiling (
		seq bigint PRIMARY KEY, guild_id bigint NOT NULL, case_number bigint NOT NULL, case_id uuid NOT NULL,
		event text NOT NULL, event_id uuid NOT NULL, schema_version integer NOT NULL, actor_id bigint NOT NULL,
		command_id uuid NOT NULL, command text, correlation_id uuid NOT NULL, occurred_at timestamptz NOT NULL,
		data jsonb NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if _, err := pool.Exec(ctx, `DROP TABLE public.bench_copy_ceiling`); err != nil {
			b.Error(err)
		}
	}()
	cols := []string{"seq", "guild_id", "case_number", "case_id", "event", "event_id", "schema_version", "actor_id",
		"command_id", "command", "correlation_id", "occurred_at", "data"}
	s := newBenchStream(benchGuildsFor(n), benchChangeShare)
	var spent time.Duration
	for i := 0; i < n; i += batch {
		evs := s.batch(min(batch, n-i))
		rows := make([][]any, len(evs))
		for j, e := range evs {
			data, err := json.Marshal(e.Data)
			if err != nil {
				b.Fatal(err)
			}
			// UUIDs as [16]byte, the fast way (see copyEvents).
			rows[j] = []any{int64(e.Seq), int64(e.GuildID), int64(e.CaseNumber), [16]byte(e.CaseID), string(e.Event),
				[16]byte(e.EventID), int32(e.SchemaVersion), int64(e.ActorID), [16]byte(e.CommandID), e.Command,
				[16]byte(e.CorrelationID), e.OccurredAt, data}
		}
		start := time.Now()
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"public", "bench_copy_ceiling"}, cols, pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
	}
	return float64(n) / spent.Seconds()
}
