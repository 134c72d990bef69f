package projection

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// BenchmarkProjectorCatchUp measures how fast a projector applies a backlog:
// open_many puts backlog cases in the stream (durable), then a projector
// starts from nothing and the benchmark times it to the head. It reports
// events/s.
func BenchmarkProjectorCatchUp(b *testing.B) {
	for _, backlog := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				lb := setupLedger(b)
				fillBacklog(b, lb, backlog)
				b.StartTimer()
				start := time.Now()
				p, err := NewProjector(ProjectorConfig{JetStream: lb.js, Store: lb.store, Projection: NewCasesProjection(nil)})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Start(b.Context()); err != nil {
					b.Fatal(err)
				}
				lb.waitCaughtUp(b, 10*time.Minute)
				elapsed := time.Since(start)
				b.StopTimer()
				if err := p.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(backlog)/elapsed.Seconds(), "events/s")
			}
		})
	}
}

// fillBacklog opens n cases over 100 guilds with open_many batches of 1000.
func fillBacklog(b testing.TB, lb *ledgerBundle, n int) {
	b.Helper()
	for i := 0; i < n; i += 1000 {
		p := command.OpenManyParams{Meta: command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: 9}}
		for j := range min(1000, n-i) {
			p.Cases = append(p.Cases, events.CaseFields{Type: aggregate.TypeBan, UserID: events.Snowflake(1 + (i+j)%5000),
				ModeratorID: events.Snowflake(1 + j%7), Reason: "raid wave"})
		}
		if _, err := lb.client.CaseOpenMany(context.Background(), events.Snowflake(1+(i/1000)%100), p); err != nil {
			b.Fatal(err)
		}
	}
}
