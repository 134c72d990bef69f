package projection

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// Query benchmarks run against a read model of MODLEDGER_BENCH_CASES cases
// (default 1,000,000; 10,000 in a smoke run) over 1000 guilds, built once per run through the
// cases projection itself (Store.ApplyBatch), so the tables and indexes are
// what a projector makes.
const benchGuilds = 1000

var benchModel struct {
	once  sync.Once
	pool  *pgxpool.Pool
	q     *Queries
	cases int
	err   error
}

func benchQueries(b *testing.B) (*Queries, int) {
	b.Helper()
	benchModel.once.Do(func() {
		n := 1_000_000
		if benchSmoke() {
			n = 10_000
		}
		if v, err := strconv.Atoi(os.Getenv("MODLEDGER_BENCH_CASES")); err == nil && v > 0 {
			n = v
		}
		benchModel.cases = n
		dsn := testenv.Postgres(b) // dropped when the first benchmark using it ends
		pool, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			benchModel.err = err
			return
		}
		benchModel.pool = pool
		b.Cleanup(func() {
			if benchModel.q != nil {
				benchModel.q.Close()
			}
			pool.Close()
		})
		store, err := NewStore(pool, SchemaDefault)
		if err == nil {
			err = store.Migrate(context.Background())
		}
		p := NewCasesProjection(nil)
		if err == nil {
			_, err = store.Activate(context.Background(), p)
		}
		if err != nil {
			benchModel.err = err
			return
		}
		start := time.Now()
		r := rand.New(rand.NewPCG(1, 1))
		types := []string{aggregate.TypeBan, aggregate.TypeWarn, aggregate.TypeKick, aggregate.TypeNote, aggregate.TypeUnban, aggregate.TypeTimeout}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var seq uint64
		evs := make([]events.Event, 0, 1000)
		for i := range n {
			g := events.Snowflake(1 + i%benchGuilds)
			num := uint32(1 + i/benchGuilds)
			typ := types[r.IntN(len(types))]
			f := events.CaseFields{Type: typ, UserID: events.Snowflake(1 + r.IntN(200)), ModeratorID: events.Snowflake(1 + r.IntN(10)),
				Reason: "benchmark case " + strconv.Itoa(i), Source: aggregate.SourceCommand}
			if typ == aggregate.TypeTimeout {
				f.ExpiresAt = ptr(at.Add(time.Hour))
			}
			seq++
			id := uuid.Must(uuid.NewV7())
			evs = append(evs, events.Event{Envelope: events.Envelope{EventID: id, Event: events.NameCaseOpened, SchemaVersion: 1,
				GuildID: g, CaseNumber: num, CaseID: id, OccurredAt: at, ActorID: f.ModeratorID, CommandID: id, CorrelationID: id},
				Data: events.CaseOpened{CaseFields: f}, Seq: seq})
			at = at.Add(time.Second)
			if len(evs) == cap(evs) || i == n-1 {
				if _, _, err := store.ApplyBatch(context.Background(), p, evs); err != nil {
					benchModel.err = err
					return
				}
				evs = evs[:0]
			}
		}
		if _, err := pool.Exec(context.Background(), `ANALYZE`); err != nil {
			benchModel.err = err
			return
		}
		fmt.Fprintf(os.Stderr, "benchmark read model: %d cases projected in %s (%.0f events/s)\n", n, time.Since(start).Round(time.Second),
			float64(n)/time.Since(start).Seconds())
		benchModel.q, benchModel.err = NewQueries(pool, SchemaDefault, nil)
	})
	if benchModel.err != nil {
		b.Fatal(benchModel.err)
	}
	return benchModel.q, benchModel.cases
}

// latencies runs op b.N times and reports p50, p99 and max in µs.
func latencies(b *testing.B, op func(r *rand.Rand) error) {
	r := rand.New(rand.NewPCG(2, 2))
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t := time.Now()
		if err := op(r); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(d)
	pct := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(d[len(d)-1].Microseconds()), "max-µs")
}

func BenchmarkQueryLatency(b *testing.B) {
	q, n := benchQueries(b)
	perGuild := n / benchGuilds
	ctx := context.Background()
	b.Run("case_by_number", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			_, err := q.CaseGet(ctx, events.Snowflake(1+r.IntN(benchGuilds)), CaseGetParams{CaseNumber: uint32(1 + r.IntN(perGuild))})
			return err
		})
	})
	b.Run("user_history_page", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			_, err := q.UserCases(ctx, events.Snowflake(1+r.IntN(benchGuilds)), UserCasesParams{UserID: events.Snowflake(1 + r.IntN(200))})
			return err
		})
	})
	b.Run("restriction_check", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			_, err := q.UserRestriction(ctx, events.Snowflake(1+r.IntN(benchGuilds)), UserRestrictionParams{UserID: events.Snowflake(1 + r.IntN(200)), Family: aggregate.FamilyBan})
			return err
		})
	})
	// The cases are opened a second apart from 2026-01-01: a month covers
	// every day of them (12 days at 1M cases).
	b.Run("guild_statistics", func(b *testing.B) {
		from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
		latencies(b, func(r *rand.Rand) error {
			_, err := q.GuildStatistics(ctx, events.Snowflake(1+r.IntN(benchGuilds)), GuildStatisticsParams{From: from, To: to})
			return err
		})
	})
}
