package command_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// BenchmarkOpen measures opens through the command service over NATS, with
// the embedded server fsyncing before every acknowledgement (durable).
// Sub-benchmarks vary the number of concurrent clients and of guilds; each
// reports opens/s.
func BenchmarkOpen(b *testing.B) {
	for _, bc := range []struct {
		clients, guilds int
	}{
		{1, 1}, {64, 1}, {64, 1000},
	} {
		b.Run(fmt.Sprintf("clients=%d/guilds=%d", bc.clients, bc.guilds), func(b *testing.B) {
			bundle := setup(b, func(c *command.Config) { c.Logger = nil })
			var n atomic.Uint64
			b.SetParallelism(max(1, bc.clients/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					guild := events.Snowflake(1 + i%uint64(bc.guilds))
					_, err := bundle.client.CaseOpen(b.Context(), guild, command.OpenParams{CaseFields: events.CaseFields{
						Type: aggregate.TypeBan, UserID: events.Snowflake(1000 + i), ModeratorID: 42, Reason: "raid",
					}})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "opens/s")
		})
	}
}
