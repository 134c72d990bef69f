package command_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// TestOpensInOneGuildAreCombined: 100 moderators open cases in one guild at
// once. The numbers are exactly 1..100, each reply is its own case, and the
// service made far fewer appends than opens.
func TestOpensInOneGuildAreCombined(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := setup(t, func(c *command.Config) { c.Registerer = reg })
	const n = 100
	numbers := make([]uint32, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := events.Snowflake(5000 + i)
			r, err := b.client.CaseOpen(t.Context(), 77, command.OpenParams{CaseFields: events.CaseFields{
				Type: aggregate.TypeBan, UserID: user, ModeratorID: 42}})
			if err != nil {
				t.Error(err)
				return
			}
			if r.Case.UserID != user || r.Appended != 1 || r.Seq != r.Case.Version {
				t.Errorf("open for user %d answered %+v", user, r.Case)
			}
			numbers[i] = r.Case.CaseNumber
		}()
	}
	wg.Wait()
	slices.Sort(numbers)
	for i, got := range numbers {
		if got != uint32(i+1) {
			t.Fatalf("numbers %v, want 1..%d", numbers, n)
		}
	}
	appends := gatherCount(t, reg, "modledger_append_batch_messages")
	if appends >= n {
		t.Fatalf("%d appends for %d opens: nothing was combined", appends, n)
	}
	t.Logf("%d opens in one guild took %d appends", n, appends)
}

// gatherCount returns a histogram's sample count from reg.
func gatherCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
